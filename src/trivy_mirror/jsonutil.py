"""Reading one JSON object: parse, check that it is an object, refuse with one line naming what was read.

Every document the package reads (manifests, metadata.json, bundle manifests, signature envelopes, state files)
must be a JSON object; the checks are the same, only the wording and the error class differ, so the caller
passes those. Deep nesting is refused too: ``json.loads`` raises ``RecursionError`` on it, which would otherwise
escape as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_DETAIL = 100
"""How much of the parser's own message a refusal quotes (the input may come from a request)."""


def load_object(data: bytes | str, what: str, error: Callable[[str], Exception], *,
                not_json: str = "{what} is not valid JSON: {detail}",
                not_object: str = "{what} is not a JSON object",
                too_deep: str = "{what} JSON is nested too deeply") -> dict[str, Any]:
    """The object in ``data``, or ``error(message)`` raised with one line.

    The messages are format strings over ``{what}`` (the caller's name for the document) and, for ``not_json``,
    ``{detail}`` (the parser's reason).
    """
    try:
        obj = json.loads(data)
    except RecursionError:
        raise error(too_deep.format(what=what)) from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError both are
        raise error(not_json.format(what=what, detail=str(err)[:MAX_DETAIL])) from None
    if not isinstance(obj, dict):
        raise error(not_object.format(what=what))
    return obj


def object_or_none(data: bytes | str) -> dict[str, Any] | None:
    """The object in ``data``, or None when it is not one (for records a damaged copy of is simply ignored)."""
    try:
        return load_object(data, "", ValueError)
    except ValueError:
        return None
