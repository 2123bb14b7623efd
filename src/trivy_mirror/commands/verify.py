"""``trivy-mirror verify``: the facade's :func:`~trivy_mirror.facade.verify`, printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from trivy_mirror.facade import verify
from trivy_mirror.ui import console

if TYPE_CHECKING:
    from trivy_mirror import VerifyReport


def run_verify(store: Path | None, *, repair: bool, as_json: bool, lock_timeout: float) -> int:
    """Verify (and repair) the store and report; the exit code: 0 clean (or fully repaired), 1 otherwise."""
    report = verify(store=store, repair=repair, lock_timeout=lock_timeout)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print(report)
    return 0 if report.ok else 1


def _print(report: VerifyReport) -> None:
    for problem in report.problems:
        (console.stderr.print if problem.repaired else console.error)(problem.line())
    summary = (f"{report.repositories} repositories, {report.tags} tags, {report.blobs} blobs "
               f"({report.bytes / 1e6:.1f} MB), {report.vex_repositories} VEX repositories in {report.store}")
    unrepaired = [p for p in report.problems if not p.repaired]
    if not report.problems:
        print(f"ok: {summary}")
    elif not unrepaired:
        print(f"repaired {len(report.problems)} problems (run sync to restore what was removed): {summary}")
    else:
        print(f"{len(unrepaired)} problems (run verify --repair, then sync): {summary}")
