"""A clock a test moves by hand (``trivy_mirror.clock.Clock``): code waiting on it wakes when the test advances
time past its deadline, so timing is asserted exactly and no test sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

START = 1_750_000_000.0
"""An arbitrary wall-clock start (June 2025), far from any real "now" a bug could mix in."""


class FakeClock:
    def __init__(self, start: float = START) -> None:
        self.now = start
        self._tick = asyncio.Event()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        deadline = self.now + seconds
        while self.now < deadline:
            if event.is_set():
                return True
            waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._tick.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        return False

    async def sleep(self, seconds: float) -> None:
        await self.wait(asyncio.Event(), seconds)

    async def advance(self, seconds: float) -> None:
        """Move time on and let every task that was waiting react."""
        self.now += seconds
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
        await settle()


class RecordingClock(FakeClock):
    """For code that only sleeps (retry waits): a sleep takes no real time, moves the clock on and is recorded."""

    def __init__(self, start: float = START) -> None:
        super().__init__(start)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def settle(rounds: int = 50) -> None:
    """Give the event loop's other tasks their turns (they need no real time: the clock is fake)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], rounds: int = 10_000) -> None:
    """Let other tasks run until ``condition`` holds; fails if it never does (no wall-clock deadline needed)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")
