"""Logging to stderr: rich on a terminal, plain or JSON lines elsewhere."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from trivy_mirror.ui import console


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given with ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(verbose: int = 0, quiet: bool = False, fmt: str = "text") -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
    elif console.interactive():
        from rich.logging import RichHandler

        handler = RichHandler(console=console.stderr, show_path=False, markup=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    console.use_json(fmt == "json")
    root = logging.getLogger("trivy_mirror")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
