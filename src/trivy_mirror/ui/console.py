"""The stderr console shared by logs, progress bars and error lines."""

from __future__ import annotations

import sys

from rich.console import Console

stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """The one line a failed command leaves."""
    print(f"trivy-mirror: error: {message}", file=sys.stderr)


def interactive() -> bool:
    return stderr.is_terminal
