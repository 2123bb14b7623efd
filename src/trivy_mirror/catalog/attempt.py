"""The last attempt to write one asset (a sync, an import), as ``status``, ``/readyz`` and ``/metrics`` report it.

Every attempt is recorded, successful or not, so monitoring sees a failing sync while the data served is still
fresh. ``result`` is one word of :data:`RESULTS`; what a person reads is in ``message``.

=========  =====================================================================================
result     meaning
=========  =====================================================================================
ok         a sync found the asset up to date or published a new version
imported   an import wrote the asset from a bundle
held       a candidate is not published by decision (a pin, a hold); the current version is kept
refused    every candidate was refused (unsafe or older); the current version is kept
failed     no source could be used, or the destination could not be written
=========  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from trivy_mirror.timefmt import iso, parse_time

Result = Literal["ok", "imported", "held", "refused", "failed"]
RESULTS: tuple[str, ...] = get_args(Result)
FAILED_RESULTS = frozenset({"refused", "failed"})
"""Results after which ``status`` exits non-zero (:data:`EXIT_LAST_SYNC_FAILED`)."""

HISTORY = 10
"""Attempts remembered per asset (the status page shows them): a state file stays small."""
MAX_MESSAGE = 2000
"""Messages are cut to this many characters: a state file stays small whatever an upstream answered."""


@dataclass(frozen=True)
class Attempt:
    """When the last attempt ran, its result, and the line a person reads (empty when there is nothing to say)."""

    at: datetime | None
    result: Result | None
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.result in FAILED_RESULTS

    @classmethod
    def now(cls, result: Result, message: str = "") -> Attempt:
        return cls(datetime.now(UTC), result, message[:MAX_MESSAGE])

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "result": self.result, "message": self.message}

    @classmethod
    def from_json(cls, obj: Any) -> Attempt:
        """The recorded attempt; state written by earlier versions (``"error: ..."``, ``"ok (...)"``) is read too."""
        if not isinstance(obj, dict):
            return cls(None, None)
        message = obj.get("message")
        result, legacy_message = parse_result(obj.get("result"))
        return cls(parse_time(obj.get("at")), result, message if isinstance(message, str) else legacy_message)


def parse_result(value: Any) -> tuple[Result | None, str]:
    """(result, message) from a stored result word, or from the free text earlier versions stored."""
    if not isinstance(value, str) or not value:
        return None, ""
    if value in RESULTS:
        return cast(Result, value), ""
    if value.startswith("error: "):
        message = value.removeprefix("error: ")
        return ("refused" if message.startswith(("kept the current version", "nothing to serve yet")) else "failed",
                message)
    if "imported" in value:
        return "imported", ""
    return ("ok", "") if value.startswith("ok") else ("failed", value)


NO_ATTEMPT = Attempt(None, None)
"""Nothing recorded yet."""


def push_history(history: Sequence[Attempt], attempt: Attempt) -> tuple[Attempt, ...]:
    """The last :data:`HISTORY` attempts, newest first, once ``attempt`` is added."""
    return (attempt, *history)[:HISTORY]


def history_to_json(history: Sequence[Attempt]) -> list[dict[str, Any]]:
    return [attempt.to_json() for attempt in history]


def history_from_json(obj: Any) -> tuple[Attempt, ...]:
    """The recorded history (newest first); empty for state written before histories were kept."""
    if not isinstance(obj, list):
        return ()
    return tuple(attempt for attempt in map(Attempt.from_json, obj[:HISTORY]) if attempt.at is not None)
