"""The stderr console shared by logs, progress bars and error lines."""

from __future__ import annotations

import sys

from rich.console import Console

WIDTH_WHEN_PIPED = 200
"""Tables written to a file or pipe are not cut to 80 columns."""


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=WIDTH_WHEN_PIPED)
    return console


stderr = _console(stderr=True)
stdout = _console(stderr=False)


def error(message: str) -> None:
    """The one line a failed command leaves."""
    print(f"trivy-mirror: error: {message}", file=sys.stderr)


def interactive() -> bool:
    return stderr.is_terminal
