"""RFC 3339 times as Go writes them (Trivy's metadata) and as we write them (state, JSON output)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any


def iso(moment: datetime | None) -> str | None:
    """``2026-01-02T03:04:05Z`` style, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def go_time(moment: datetime) -> str:
    """RFC 3339 in UTC with trailing fraction zeros trimmed, as Go's ``time.Time`` marshals to JSON."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def short_time(moment: datetime | None) -> str:
    """``11-30 07:54`` in UTC, for tables (their caption says UTC; the year is in ``--json``); ``-`` when unset."""
    return moment.astimezone(UTC).strftime("%m-%d %H:%M") if moment else "-"


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


_GO_DURATION_ELEMENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string (``24h``, ``1h30m``, ``90s``); ValueError otherwise.

    Negative durations are refused too: an update interval cannot be negative.
    """
    if text == "0":
        return 0.0
    body = text[1:] if text.startswith("+") else text
    position, total = 0, 0.0
    for match in _GO_DURATION_ELEMENT.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"{text!r} is not a Go duration such as 24h, 30m or 1h30m")
    return total
