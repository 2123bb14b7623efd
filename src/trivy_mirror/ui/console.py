"""The stderr console shared by logs, progress bars and error lines.

The rich consoles are made on first use (``console.stderr``, ``console.stdout``): importing rich costs more than
a quick command takes, and most runs off a terminal never draw with it.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    stderr: Console
    stdout: Console

WIDTH_WHEN_PIPED = 200
"""Tables written to a file or pipe are not cut to 80 columns."""

RICH_TERMINAL_VARIABLES = ("FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
"""Variables by which rich may call a pipe a terminal: with one set, rich decides."""

_json_errors = [False]


@cache
def _console(to_stderr: bool) -> Console:
    from rich.console import Console

    console = Console(stderr=to_stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=to_stderr, highlight=False, width=WIDTH_WHEN_PIPED)
    return console


def __getattr__(name: str) -> Console:
    if name in ("stderr", "stdout"):
        return _console(name == "stderr")
    raise AttributeError(name)


def use_json(enabled: bool) -> None:
    """With ``--log-format json`` error lines are JSON log records too, so a log collector keeps every line."""
    _json_errors[0] = enabled


def error(message: str) -> None:
    """The one line a failed command leaves."""
    if _json_errors[0]:
        record = {"time": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "level": "error",
                  "logger": "trivy_mirror", "message": message}
        print(json.dumps(record), file=sys.stderr)
    else:
        print(f"trivy-mirror: error: {message}", file=sys.stderr)


def interactive() -> bool:
    """Whether stderr is a terminal (progress bars, rich logs); decided without rich when it plainly is not."""
    if not sys.stderr.isatty() and not any(os.environ.get(v) for v in RICH_TERMINAL_VARIABLES):
        return False
    return _console(True).is_terminal
