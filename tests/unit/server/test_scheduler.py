"""The sync loop: runs at start, on interval, early when NextUpdate passes, backs off, never dies.

Time is a :class:`FakeClock` the tests move: every expected run is checked to happen exactly when due, and not
a second earlier, without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from support.clock import START, FakeClock, settle, until
from trivy_mirror.errors import Unreachable
from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.server.scheduler import SyncScheduler


class FakeSync:
    """Plays a list of behaviours (an outcome or an exception), then succeeds; records when it ran."""

    def __init__(self, clock: FakeClock, *script: SyncOutcome | BaseException) -> None:
        self.clock = clock
        self.script = list(script)
        self.times: list[float] = []

    async def __call__(self) -> SyncOutcome:
        self.times.append(self.clock.now - START)
        step = self.script.pop(0) if self.script else OK
        if isinstance(step, BaseException):
            raise step
        return step


OK = SyncOutcome(True, "everything up to date", 0.01)
FAILED = SyncOutcome(False, "cannot reach mirror.gcr.io", 0.02)


def when(clock: FakeClock, seconds: float) -> datetime:
    """The fake clock's now plus ``seconds``, as a date (what ``next_due`` answers)."""
    return datetime.fromtimestamp(clock.now + seconds, UTC)


async def expect_runs(clock: FakeClock, sync: FakeSync, gaps: Sequence[float]) -> None:
    """The next runs come exactly ``gaps`` seconds apart: not a second before, at once when due."""
    for gap in gaps:
        runs = len(sync.times)
        await clock.advance(gap - 1)
        assert len(sync.times) == runs, f"ran {clock.now - START - sync.times[-1]} s after the last run, not {gap}"
        await clock.advance(1)
        await until(lambda runs=runs: len(sync.times) > runs)  # type: ignore[misc]
        assert sync.times[-1] - sync.times[-2] == gap


async def started(scheduler: SyncScheduler, sync: FakeSync) -> None:
    scheduler.start()
    await until(lambda: len(sync.times) == 1)
    await settle()


async def test_runs_at_start_then_every_interval() -> None:
    clock = FakeClock()
    sync = FakeSync(clock)
    scheduler = SyncScheduler(sync, every=3600, jitter=0.0, clock=clock)
    try:
        await started(scheduler, sync)
        assert sync.times == [0]
        await expect_runs(clock, sync, [3600, 3600])
        state = scheduler.state()
        assert state.runs == 3 and state.failures == 0
        assert state.last_success == when(clock, 0) and state.last_error is None
        assert state.last_duration == pytest.approx(0.01)
        assert state.next_run == when(clock, 3600)
    finally:
        await scheduler.stop()


async def test_start_does_not_wait_for_the_first_sync() -> None:
    release = asyncio.Event()

    async def slow() -> SyncOutcome:
        await release.wait()
        return OK

    scheduler = SyncScheduler(slow, every=10, clock=FakeClock())
    scheduler.start()
    await settle()
    assert scheduler.state().running
    await scheduler.stop()  # cancels the sync in progress


async def test_failures_back_off_exponentially_then_recover() -> None:
    clock = FakeClock()
    sync = FakeSync(clock, FAILED, FAILED, FAILED, OK)
    scheduler = SyncScheduler(sync, every=3600, jitter=0.0, retry_base=30, clock=clock)
    try:
        await started(scheduler, sync)
        await expect_runs(clock, sync, [30, 60, 120])
        state = scheduler.state()
        assert state.failures == 3
        assert state.consecutive_failures == 0
        assert state.last_failure == when(clock, -120) and state.last_success == when(clock, 0)
        await expect_runs(clock, sync, [3600])  # recovered: back to the interval
    finally:
        await scheduler.stop()


async def test_backoff_is_capped_by_the_interval() -> None:
    clock = FakeClock()
    sync = FakeSync(clock, *[FAILED] * 10)
    scheduler = SyncScheduler(sync, every=100, jitter=0.0, retry_base=40, clock=clock)
    try:
        await started(scheduler, sync)
        await expect_runs(clock, sync, [40, 80, 100, 100])
        assert scheduler.state().last_error == "cannot reach mirror.gcr.io"
    finally:
        await scheduler.stop()


async def test_exceptions_do_not_kill_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    sync = FakeSync(clock, RuntimeError("boom"), Unreachable("no route to ghcr.io"), OK)
    scheduler = SyncScheduler(sync, every=3600, retry_base=10, clock=clock)
    try:
        await started(scheduler, sync)
        await expect_runs(clock, sync, [10, 20])
        state = scheduler.state()
        assert state.failures == 2 and state.successes == 1
        assert "sync crashed" in caplog.text
        assert "no route to ghcr.io" in caplog.text
    finally:
        await scheduler.stop()


async def test_runs_early_when_next_update_passes() -> None:
    clock = FakeClock()
    sync = FakeSync(clock)
    due = {"at": when(clock, 86400)}
    scheduler = SyncScheduler(sync, every=3600, jitter=0.0, next_due=lambda: due["at"], clock=clock)
    try:
        await started(scheduler, sync)
        assert scheduler.state().next_run == when(clock, 3600)
        # A sync brought a DB due in 100 s (in practice: the sleeping loop re-reads it every minute).
        due["at"] = when(clock, 100)
        scheduler.trigger()
        await until(lambda: len(sync.times) == 2)
        await settle()
        assert sync.times == [0, 0]
        assert scheduler.state().next_run == due["at"]
        await expect_runs(clock, sync, [100])
    finally:
        await scheduler.stop()


async def test_still_overdue_after_sync_backs_off() -> None:
    """Upstream has not published yet: NextUpdate stays in the past; retry with backoff, not in a tight loop."""
    clock = FakeClock()
    sync = FakeSync(clock)
    past = when(clock, -3600)
    scheduler = SyncScheduler(sync, every=3600, retry_base=50, next_due=lambda: past, clock=clock)
    try:
        await started(scheduler, sync)
        await expect_runs(clock, sync, [50, 100, 200])
        assert scheduler.state().failures == 0
    finally:
        await scheduler.stop()


async def test_next_due_raising_is_ignored() -> None:
    def broken() -> datetime | None:
        raise OSError("cannot read metadata")

    clock = FakeClock()
    sync = FakeSync(clock)
    scheduler = SyncScheduler(sync, every=100, jitter=0.0, next_due=broken, clock=clock)
    try:
        await started(scheduler, sync)
        await expect_runs(clock, sync, [100])
    finally:
        await scheduler.stop()


async def test_after_run_hook_runs_after_failures_too_and_its_failure_is_contained() -> None:
    seen: list[SyncOutcome] = []

    async def hook(outcome: SyncOutcome) -> None:
        seen.append(outcome)
        raise RuntimeError("gc failed")

    clock = FakeClock()
    sync = FakeSync(clock, FAILED, OK, OK)
    scheduler = SyncScheduler(sync, every=100, jitter=0.0, retry_base=10, after_run=hook, clock=clock)
    try:
        await started(scheduler, sync)
        await expect_runs(clock, sync, [10, 100])
        await until(lambda: len(seen) == 3)
        assert [outcome.ok for outcome in seen] == [False, True, True]
    finally:
        await scheduler.stop()


def test_invalid_parameters() -> None:
    async def never() -> SyncOutcome:
        return OK

    cases: list[dict[str, float]] = [{"every": 0}, {"every": 1, "jitter": 1.5}, {"every": 1, "retry_base": 0}]
    for kwargs in cases:
        with pytest.raises(ValueError):
            SyncScheduler(never, **kwargs)  # type: ignore[arg-type]


def test_state_to_json() -> None:
    async def never() -> SyncOutcome:
        return OK

    body = SyncScheduler(never, every=1).state().to_json()
    assert body["runs"] == 0 and body["last_success"] is None
