"""The background integrity audit of ``serve``: the store's blobs are re-hashed after start and after each sync,
so a file that went bad on disk (bit rot, a failing disk, a hand edit) is noticed before clients trip on it.

What a finding changes:

* the corrupt blob is never served again: the pull API asks :meth:`StoreAudit.refuses` and answers
  ``BLOB_UNKNOWN`` instead of bytes that would fail every client's digest check;
* with a sync loop, the store is repaired as ``verify --repair`` does (the corrupt blob deleted, the tags whose
  manifest it completed dropped) and a sync is asked for at once, which copies them again from the sources;
  without one (``--no-sync``, an isolated mirror fed by ``import``) nothing is deleted: the operator decides;
* the findings are shown in ``/readyz`` (not ready while one is outstanding), ``/metrics`` and, through
  ``STORE/.integrity.json``, in ``status``.

A pass holds the store lock shared (a sync or a prune waits for it, pushes do not) and hashes in a worker thread;
hashlib releases the GIL on large reads, so requests are answered meanwhile. A pass over a real mirror (about
1.5 GB with two kept versions) costs a few seconds of one core, once per sync.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from trivy_mirror.errors import MirrorError
from trivy_mirror.fsutil import os_errors, write_atomic
from trivy_mirror.orchestrate import VerifyReport, verify_store
from trivy_mirror.store import Store
from trivy_mirror.store.paths import TMP_DIR
from trivy_mirror.store.verify import Problem
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

AUDIT_FILE = ".integrity.json"
"""Beside the store's repositories (a name no repository can take); read by ``status``."""
LOCK_TIMEOUT = 5.0
"""A pass gives way to a writer holding the store for longer (the pass after that writer's sync follows)."""
REPAIR_LOCK_TIMEOUT = 600.0


def audit_path(root: Path) -> Path:
    return root / AUDIT_FILE


@dataclass
class AuditState:
    """The last pass: when it ran, what it found, and whether the repair removed it."""

    checked_at: datetime | None = None
    problems: list[Problem] = field(default_factory=list)
    found_total: dict[str, int] = field(default_factory=dict)

    @property
    def outstanding(self) -> list[Problem]:
        return [problem for problem in self.problems if not problem.repaired]

    def to_json(self) -> dict[str, Any]:
        return {"checked_at": iso(self.checked_at) if self.checked_at else None,
                "problems": [problem.to_json() for problem in self.problems]}


def read_audit(root: Path) -> AuditState | None:
    """What the last pass of a ``serve`` on this store found, or None when none ran (or the file is unreadable)."""
    try:
        document = json.loads(audit_path(root).read_bytes())
        problems = [Problem(str(p["kind"]), str(p["path"]), str(p["detail"]), bool(p.get("repaired")))
                    for p in document["problems"]]
        checked = document.get("checked_at")
        return AuditState(datetime.fromisoformat(checked) if checked else None, problems)
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StoreAudit:
    """Audits ``store``; ``repair`` (a sync loop exists) also removes what is corrupt and calls ``resync``."""

    def __init__(self, store: Store, *, repair: bool, resync: Callable[[], None] | None = None) -> None:
        self.store = store
        self.repair = repair
        self.resync = resync
        self.state = AuditState()
        self._refused: frozenset[str] = frozenset()
        self._running = asyncio.Lock()

    def refuses(self, path: Path) -> bool:
        """Whether a blob file was found corrupt and is still on disk."""
        return bool(self._refused) and os.path.realpath(path) in self._refused

    def problems(self) -> list[str]:
        """The outstanding findings as lines for ``/readyz``, with paths relative to the store."""
        root = f"{self.store.root}{os.sep}"
        return [problem.line().replace(root, "") for problem in self.state.outstanding]

    async def run(self) -> None:
        """One pass (never two at once; a request for a pass while one runs waits for it). Never raises."""
        async with self._running:
            try:
                report = await self._check()
            except MirrorError as err:
                log.info("integrity audit skipped: %s", err)
                return
            if report.problems and self.repair:
                report = await self._repair(report)
            self._record(report)

    async def _check(self) -> VerifyReport:
        if not self.store.root.is_dir():
            return VerifyReport(self.store.root)
        async with self.store.alock(LOCK_TIMEOUT, purpose="integrity audit", shared=True):
            return await asyncio.to_thread(verify_store, self.store)

    async def _repair(self, found: VerifyReport) -> VerifyReport:
        for problem in found.problems:
            log.error("integrity audit: %s; repairing it and syncing again", problem.line())
        self._refuse(found.problems)  # until the repair has removed them
        try:
            repaired = await asyncio.to_thread(verify_store, self.store, repair=True, lock_timeout=REPAIR_LOCK_TIMEOUT)
        except MirrorError as err:
            log.error("integrity audit: cannot repair the store: %s", err)
            return found
        if self.resync is not None:
            self.resync()
        return repaired

    def _record(self, report: VerifyReport) -> None:
        previous = {problem.path for problem in self.state.outstanding}
        for problem in report.problems:
            if problem.path not in previous:
                self.state.found_total[problem.kind] = self.state.found_total.get(problem.kind, 0) + 1
                if not self.repair:
                    log.error("integrity audit: %s (not served; run verify --repair, then sync or import)",
                              problem.line())
        self.state.checked_at = datetime.now(UTC)
        self.state.problems = report.problems
        self._refuse(self.state.outstanding)
        if not self.store.root.is_dir():
            return  # recording would create the store (a typo in --store must stay visible as a missing store)
        try:
            data = json.dumps(self.state.to_json(), indent=1).encode() + b"\n"
            with os_errors(f"write {audit_path(self.store.root)}"):
                write_atomic(self.store.root / TMP_DIR, audit_path(self.store.root), data)
        except MirrorError as err:
            log.warning("cannot record the integrity audit: %s", err)

    def _refuse(self, problems: Iterable[Problem]) -> None:
        self._refused = frozenset(os.path.realpath(p.path) for p in problems if p.kind == "corrupt-blob")

    def collector(self) -> Collector:
        return _AuditCollector(self.state)


class _AuditCollector(Collector):
    def __init__(self, state: AuditState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        outstanding = GaugeMetricFamily("trivy_mirror_store_problems",
                                        "Problems the last integrity audit found and no repair removed",
                                        labels=["kind"])
        found = CounterMetricFamily("trivy_mirror_store_problems_found",
                                    "Problems the integrity audit has found since start", labels=["kind"])
        checked = GaugeMetricFamily("trivy_mirror_store_audit_timestamp_seconds",
                                    "When the last integrity audit of the store finished (unix time)")
        counts: dict[str, int] = {"corrupt-blob": 0}
        for problem in self._state.outstanding:
            counts[problem.kind] = counts.get(problem.kind, 0) + 1
        for kind, count in sorted(counts.items()):
            outstanding.add_metric([kind], count)
        for kind, count in sorted({"corrupt-blob": 0, **self._state.found_total}.items()):
            found.add_metric([kind], count)
        if self._state.checked_at is not None:
            checked.add_metric([], self._state.checked_at.timestamp())
        return outstanding, found, checked
