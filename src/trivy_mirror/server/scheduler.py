"""The long-running sync loop of ``serve``.

It runs one sync as soon as it starts (in the background: serving does not wait), then every ``every`` seconds
(± ``jitter``, so a fleet of mirrors does not hit upstream at the same instant), and earlier when the served
DB's NextUpdate has passed. A failed sync, or one after which the DB is still overdue, is retried with
exponential backoff (``retry_base`` doubling up to ``every``). Nothing a sync raises stops the loop. After every
sync, failed or not (a failed one may still have updated some assets), ``after_run`` runs. Time is read from
an injected ``clock`` (the system clock by default), so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import MirrorError
from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.timefmt import iso

log = logging.getLogger(__name__)

POLL = 60.0
"""How often a sleeping loop re-reads ``next_due`` (another process may have synced meanwhile)."""


@dataclass(frozen=True)
class SchedulerState:
    """A snapshot for ``/readyz`` and ``/metrics``; times are UTC."""

    running: bool
    runs: int
    successes: int
    failures: int
    consecutive_failures: int
    last_success: datetime | None
    last_failure: datetime | None
    last_duration: float | None
    last_error: str | None
    next_run: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"running": self.running, "runs": self.runs, "successes": self.successes, "failures": self.failures,
                "consecutive_failures": self.consecutive_failures, "last_success": iso(self.last_success),
                "last_failure": iso(self.last_failure), "last_duration": self.last_duration,
                "last_error": self.last_error, "next_run": iso(self.next_run)}


def _never_due() -> datetime | None:
    return None


class SyncScheduler:
    def __init__(
        self,
        sync_once: Callable[[], Awaitable[SyncOutcome]],
        every: float,
        jitter: float = 0.1,
        next_due: Callable[[], datetime | None] = _never_due,
        *,
        retry_base: float = 30.0,
        after_run: Callable[[SyncOutcome], Awaitable[None]] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        if every <= 0 or not 0 <= jitter < 1 or retry_base <= 0:
            raise ValueError("every and retry_base must be positive and jitter in [0, 1)")
        self._sync_once = sync_once
        self._every = every
        self._jitter = jitter
        self._next_due = next_due
        self._retry_base = retry_base
        self._after_run = after_run
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running = False
        self._runs = 0
        self._successes = 0
        self._failures = 0
        self._consecutive = 0
        self._last_success: datetime | None = None
        self._last_failure: datetime | None = None
        self._last_duration: float | None = None
        self._last_error: str | None = None
        self._next_run: float | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="trivy-mirror-sync")

    async def stop(self) -> None:
        """Cancel the loop (a sync in progress is cancelled too) and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def trigger(self) -> None:
        """Run a sync now instead of at the next scheduled time."""
        self._wake.set()

    def state(self) -> SchedulerState:
        next_run = datetime.fromtimestamp(self._next_run, UTC) if self._next_run is not None else None
        return SchedulerState(self._running, self._runs, self._successes, self._failures, self._consecutive,
                              self._last_success, self._last_failure, self._last_duration, self._last_error, next_run)

    async def _loop(self) -> None:
        while True:
            succeeded = await self._run()
            overdue = succeeded and self._due_passed()
            if overdue:
                self._consecutive += 1
            if succeeded and not overdue:
                self._consecutive = 0
                delay = self._every * random.uniform(1 - self._jitter, 1 + self._jitter)  # noqa: S311
            else:
                delay = min(self._every, self._retry_base * 2 ** (self._consecutive - 1))
            if overdue:
                log.warning("the served DB is still past its NextUpdate after a sync; retrying in %.0f s", delay)
            # Only a good sync wakes early for NextUpdate: after a failure the backoff must hold.
            await self._sleep(self._clock.time() + delay, watch_due=succeeded and not overdue)

    async def _run(self) -> bool:
        self._wake.clear()
        self._running = True
        self._runs += 1
        started = self._clock.monotonic()
        log.info("sync %d started", self._runs)
        try:
            outcome = await self._sync_once()
        except MirrorError as err:
            outcome = SyncOutcome(False, str(err), self._clock.monotonic() - started)
        except Exception as err:
            log.exception("sync crashed")
            outcome = SyncOutcome(False, f"internal error: {err!r}", self._clock.monotonic() - started)
        finally:
            self._running = False
        self._last_duration = outcome.duration
        if outcome.ok:
            self._successes += 1
            self._last_success, self._last_error = self._now(), None
            log.info("sync finished in %.1f s: %s", outcome.duration, outcome.message)
        else:
            self._failures += 1
            self._consecutive += 1
            self._last_failure, self._last_error = self._now(), outcome.message
            log.warning("sync failed (attempt %d): %s", self._consecutive, outcome.message)
        if self._after_run is not None:
            try:
                await self._after_run(outcome)
            except Exception:
                log.exception("post-sync step failed")
        return outcome.ok

    async def _sleep(self, deadline: float, watch_due: bool) -> None:
        """Until ``deadline``, or earlier when triggered or (``watch_due``) when ``next_due`` passes."""
        while True:
            target = deadline
            due = self._due() if watch_due else None
            if due is not None:
                target = min(target, due.timestamp())
            self._next_run = target
            remaining = target - self._clock.time()
            if remaining <= 0:
                return
            if await self._clock.wait(self._wake, min(remaining, POLL)):
                self._next_run = self._clock.time()
                return

    def _due(self) -> datetime | None:
        try:
            return self._next_due()
        except Exception:
            log.exception("cannot tell when the served DB is due")
            return None

    def _due_passed(self) -> bool:
        due = self._due()
        return due is not None and due <= self._now()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), UTC)
