"""The sync loop: runs at start, on interval, early when NextUpdate passes, backs off, never dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from trivy_mirror.errors import Unreachable
from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.server.scheduler import SyncScheduler


class FakeSync:
    """Plays a list of behaviours (an outcome or an exception), then succeeds; records when it ran."""

    def __init__(self, *script: SyncOutcome | BaseException) -> None:
        self.script = list(script)
        self.times: list[float] = []
        self.ran = asyncio.Event()

    async def __call__(self) -> SyncOutcome:
        self.times.append(time.monotonic())
        self.ran.set()
        step = self.script.pop(0) if self.script else OK
        if isinstance(step, BaseException):
            raise step
        return step

    async def wait_runs(self, count: int, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while len(self.times) < count:
            assert time.monotonic() < deadline, f"only {len(self.times)} runs"
            await asyncio.sleep(0.005)


OK = SyncOutcome(True, "everything up to date", 0.01)
FAILED = SyncOutcome(False, "cannot reach mirror.gcr.io", 0.02)


async def run(scheduler: SyncScheduler, until: Callable[[], bool], within: float = 5.0) -> None:
    scheduler.start()
    try:
        deadline = time.monotonic() + within
        while not until():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
    finally:
        await scheduler.stop()


async def test_runs_at_start_then_every_interval() -> None:
    sync = FakeSync()
    scheduler = SyncScheduler(sync, every=0.1, jitter=0.0)
    await run(scheduler, lambda: len(sync.times) >= 3)
    gaps = [b - a for a, b in zip(sync.times, sync.times[1:], strict=False)]
    assert all(0.08 <= gap < 0.5 for gap in gaps), gaps
    state = scheduler.state()
    assert state.runs >= 3 and state.failures == 0
    assert state.last_success is not None and state.last_error is None
    assert state.last_duration == pytest.approx(0.01)


async def test_start_does_not_wait_for_the_first_sync() -> None:
    release = asyncio.Event()

    async def slow() -> SyncOutcome:
        await release.wait()
        return OK

    scheduler = SyncScheduler(slow, every=10)
    scheduler.start()
    await asyncio.sleep(0.01)
    assert scheduler.state().running
    await scheduler.stop()  # cancels the sync in progress


async def test_failures_back_off_exponentially_then_recover() -> None:
    sync = FakeSync(FAILED, FAILED, FAILED, OK)
    scheduler = SyncScheduler(sync, every=10, jitter=0.0, retry_base=0.04)
    await run(scheduler, lambda: len(sync.times) >= 4)
    gaps = [b - a for a, b in zip(sync.times, sync.times[1:], strict=False)]
    # Lower bounds are exact (the loop sleeps at least that long); upper bounds leave room for a busy machine.
    assert 0.035 <= gaps[0] < 1 and 0.075 <= gaps[1] < 1 and 0.155 <= gaps[2] < 1, gaps
    state = scheduler.state()
    assert state.failures == 3
    assert state.consecutive_failures == 0
    assert state.last_failure is not None and state.last_success is not None
    assert state.last_success > state.last_failure


async def test_backoff_is_capped_by_the_interval() -> None:
    sync = FakeSync(*[FAILED] * 10)
    scheduler = SyncScheduler(sync, every=0.05, jitter=0.0, retry_base=0.04)
    await run(scheduler, lambda: len(sync.times) >= 5)
    gaps = [b - a for a, b in zip(sync.times, sync.times[1:], strict=False)]
    assert max(gaps) < 0.1
    assert scheduler.state().last_error == "cannot reach mirror.gcr.io"


async def test_exceptions_do_not_kill_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    sync = FakeSync(RuntimeError("boom"), Unreachable("no route to ghcr.io"), OK)
    scheduler = SyncScheduler(sync, every=10, retry_base=0.01)
    await run(scheduler, lambda: scheduler.state().successes >= 1)
    state = scheduler.state()
    assert state.failures == 2
    assert "sync crashed" in caplog.text
    assert "no route to ghcr.io" in caplog.text


async def test_runs_early_when_next_update_passes() -> None:
    sync = FakeSync()
    due = {"at": datetime.now(UTC) + timedelta(days=1)}
    scheduler = SyncScheduler(sync, every=3600, next_due=lambda: due["at"])
    scheduler.start()
    try:
        await sync.wait_runs(1)
        await asyncio.sleep(0.05)
        assert len(sync.times) == 1
        next_run = scheduler.state().next_run
        assert next_run is not None and next_run > datetime.now(UTC) + timedelta(minutes=50)
        # The first sync brought a DB due in 0.1 s (in practice: the sleeping loop re-reads it every minute).
        due["at"] = datetime.now(UTC) + timedelta(seconds=0.1)
        scheduler.trigger()
        await sync.wait_runs(2)
        due["at"] = datetime.now(UTC) + timedelta(seconds=0.1)
        started = time.monotonic()
        await sync.wait_runs(3)
        assert time.monotonic() - started < 1.0
    finally:
        await scheduler.stop()


async def test_still_overdue_after_sync_backs_off() -> None:
    """Upstream has not published yet: NextUpdate stays in the past; retry with backoff, not in a tight loop."""
    sync = FakeSync()
    past = datetime.now(UTC) - timedelta(hours=1)
    scheduler = SyncScheduler(sync, every=10, retry_base=0.05, next_due=lambda: past)
    await run(scheduler, lambda: len(sync.times) >= 3)
    gaps = [b - a for a, b in zip(sync.times, sync.times[1:], strict=False)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09
    assert scheduler.state().failures == 0


async def test_next_due_raising_is_ignored() -> None:
    def broken() -> datetime | None:
        raise OSError("cannot read metadata")

    sync = FakeSync()
    scheduler = SyncScheduler(sync, every=0.05, jitter=0.0, next_due=broken)
    await run(scheduler, lambda: len(sync.times) >= 2)


async def test_after_run_hook_runs_after_failures_too_and_its_failure_is_contained() -> None:
    seen: list[SyncOutcome] = []

    async def hook(outcome: SyncOutcome) -> None:
        seen.append(outcome)
        raise RuntimeError("gc failed")

    sync = FakeSync(FAILED, OK, OK)
    scheduler = SyncScheduler(sync, every=0.05, jitter=0.0, retry_base=0.01, after_run=hook)
    await run(scheduler, lambda: len(seen) >= 3)
    assert [outcome.ok for outcome in seen[:3]] == [False, True, True]


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
