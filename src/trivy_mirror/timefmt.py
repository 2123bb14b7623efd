"""RFC 3339 times as Go writes them (Trivy's metadata) and as we write them (state, JSON output)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any


def iso(moment: datetime | None) -> str | None:
    """``2026-01-02T03:04:05Z`` style, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def parse_time(value: Any) -> datetime | None:
    """Go's RFC 3339 time (up to nanoseconds); the zero time and anything unparsable mean unset."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    date_part, _, rest = text.partition(".")
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:]
        text = f"{date_part}.{fraction[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: ``6h``, ``90m``, ``1h30m``, ``45s`` (``d`` for days too)."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    if text.replace(".", "", 1).isdigit():
        return float(text)
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 6h, 30m, 1h30m, 45s")
    return total
