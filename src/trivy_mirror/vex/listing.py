"""``GET /vex/``: the list of VEX repositories a trivy-mirror serve serves, which ``trivy-config`` and a child
mirror (``--parent``) read. One home for its path, its size bound and how it is read."""

from __future__ import annotations

import json

LISTING_PATH = "/vex/"
"""Where a serve lists the VEX repositories it serves."""

MAX_LISTING = 1 << 20
"""The largest listing a reader accepts (a few hundred bytes per repository)."""


def listing_names(data: bytes) -> list[str]:
    """The repository names of a listing (``{"repositories": [{"name": ..., "url": ...}, ...]}``), in its order.

    ValueError when ``data`` is not one (too large, not JSON, a missing key, a name that is not a string); each
    reader words the refusal for its own user.
    """
    if len(data) > MAX_LISTING:
        raise ValueError("the listing is too large")
    try:
        names = [entry["name"] for entry in json.loads(data)["repositories"]]
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a VEX listing: {err}") from None
    if not all(isinstance(name, str) for name in names):
        raise ValueError("a repository name is not a string")
    return names
