"""RFC 3339 times as Go writes them (Trivy's metadata) and as we write them (state, JSON output)."""

from __future__ import annotations

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
