"""The report's marked sections: each stand-alone benchmark (soak, startup, herd) owns one section of
bench/RESULTS.md, between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, and rewrites only that; bench/run.py,
which rewrites the rest of the report, keeps every marked section as it is."""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- (\w+):start -->.*?<!-- \1:end -->\n?", re.S)


def marks(name: str) -> tuple[str, str]:
    """The start and end marks of section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(out: Path, name: str, text: str) -> None:
    """Replace section ``name`` of ``out`` with ``text`` (which carries its marks), or append it."""
    start, end = marks(name)
    current = out.read_text() if out.exists() else ""
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        current = before + text + ("\n" + after if after else "")
    else:
        current = (current.rstrip("\n") + "\n\n" if current else "") + text
    out.write_text(current)


def marked_sections(report: str) -> str:
    """Every marked section of ``report``, in order, one blank line apart."""
    return "\n".join(match.group(0).rstrip("\n") + "\n" for match in _SECTION.finditer(report))
