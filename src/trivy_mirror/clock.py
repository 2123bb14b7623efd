"""The time the package reads, behind one small interface: the product uses :data:`SYSTEM`, and a test passes a
clock it moves itself, so what depends on time is checked exactly and without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """The wall clock, in seconds since the epoch (what is shown and compared with dates)."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes back, for intervals and expiry."""
        ...

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Until ``event`` is set (True) or ``seconds`` have passed (False)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Until ``seconds`` have passed."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM: Clock = SystemClock()
