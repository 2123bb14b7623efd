"""One event stream for the progress of copies, and the sinks that show it to a person.

The engine reports every blob of a copy to one :data:`Listener` as :class:`Event` values:

=========  ==========================================================================================
kind       meaning
=========  ==========================================================================================
start      a blob begins to stream (``blob.size`` bytes to come)
bytes      a chunk went through (``data``: the bytes, for readers such as the DB metadata reader)
done       the blob is stored at the destination
skipped    the destination already had the blob
mounted    the destination registry copied the blob server-side
failed     the copy of this blob stopped (the error is raised to the caller, not carried here)
=========  ==========================================================================================

Transfers that are not one content-addressed blob report on the same stream with an :class:`Item` in place of
the descriptor: a bundle written or read (every member's chunks are ``bytes`` of the one bundle item), a VEX
archive downloaded (``skipped`` when the upstream answers that it is unchanged).

A :class:`Progress` shows transfers to a person: rich bars on a terminal, :class:`TransferLog` lines
otherwise. :func:`progress_listener` turns the events of chosen blobs into its calls and :func:`item_listener`
those of items, so every command reports its transfers the same way and a failure never reads as ``copied``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from trivy_mirror.oci.manifest import Descriptor

log = logging.getLogger("trivy_mirror.progress")

EventKind = Literal["start", "bytes", "done", "skipped", "mounted", "failed"]


@dataclass(frozen=True)
class Item:
    """A named transfer that is not one blob of a copy: a bundle written or read, a VEX archive downloaded."""

    name: str
    """What a person reads (``bundle trivy-assets.tar``); also the key of its progress."""
    size: int = 0
    """The bytes to come; 0 when not known ahead (a download without Content-Length)."""


@dataclass(frozen=True)
class Event:
    """One step of one blob's copy, or of one named item's transfer."""

    kind: EventKind
    blob: Descriptor | Item
    data: bytes = b""


Listener = Callable[[Event], Awaitable[None]]
"""Receives every event of a copy, in order; awaiting it slows the copy down (a bounded reader keeps up)."""


class Progress(Protocol):
    """Shows transfers to a person; ``total`` 0 means the size is not known; ``finish`` says whether the transfer
    completed."""

    def start(self, key: str, description: str, total: int) -> None: ...

    def advance(self, key: str, amount: int) -> None: ...

    def finish(self, key: str, ok: bool = True) -> None: ...


class NoProgress:
    """Reports nothing (``--json``, tests, the server's background syncs)."""

    def start(self, key: str, description: str, total: int) -> None:
        pass

    def advance(self, key: str, amount: int) -> None:
        pass

    def finish(self, key: str, ok: bool = True) -> None:
        pass


LOG_INTERVAL = 5.0
"""Seconds between two progress lines of one transfer when stderr is not a terminal."""


@dataclass
class _Transfer:
    description: str
    total: int
    started: float
    logged: float
    done: int = 0


class TransferLog:
    """Progress as log lines (plain or JSON logs, no terminal): a start line, every :data:`LOG_INTERVAL`
    seconds the bytes so far with the rate and the time left, then ``copied`` only when the transfer completed."""

    def __init__(self, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._transfers: dict[str, _Transfer] = {}

    def __enter__(self) -> TransferLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def start(self, key: str, description: str, total: int) -> None:
        now = self.clock()
        self._transfers[key] = _Transfer(description, total, now, now)
        if total:
            log.info("copying %s: %.1f MB", description, total / 1e6)
        else:
            log.info("copying %s", description)

    def advance(self, key: str, amount: int) -> None:
        transfer = self._transfers.get(key)
        if transfer is None:
            return
        transfer.done += amount
        now = self.clock()
        if now - transfer.logged < self.interval:
            return
        transfer.logged = now
        rate = transfer.done / max(now - transfer.started, 1e-6)
        if not transfer.total:
            log.info("copying %s: %.1f MB (%.1f MB/s)", transfer.description, transfer.done / 1e6, rate / 1e6)
            return
        left = max(transfer.total - transfer.done, 0) / rate if rate else 0.0
        log.info("copying %s: %.1f of %.1f MB (%.1f MB/s, about %.0fs left)", transfer.description,
                 transfer.done / 1e6, transfer.total / 1e6, rate / 1e6, left)

    def finish(self, key: str, ok: bool = True) -> None:
        transfer = self._transfers.pop(key, None)
        if transfer is None:
            return
        seconds = max(self.clock() - transfer.started, 1e-6)
        if ok:
            log.info("copied %s: %.1f MB in %.1fs (%.1f MB/s)", transfer.description, transfer.done / 1e6, seconds,
                     transfer.done / 1e6 / seconds)
        elif transfer.total:
            log.info("stopped copying %s after %.1f of %.1f MB", transfer.description, transfer.done / 1e6,
                     transfer.total / 1e6)
        else:
            log.info("stopped copying %s after %.1f MB", transfer.description, transfer.done / 1e6)


def progress_listener(progress: Progress, key: str, description: str,
                      shown: Callable[[Descriptor], bool]) -> Listener:
    """The events of the ``shown`` blobs as ``progress`` calls, under one key and description."""

    async def listen(event: Event) -> None:
        if not isinstance(event.blob, Descriptor) or not shown(event.blob):
            return
        if event.kind == "start":
            progress.start(key, description, event.blob.size)
        elif event.kind == "bytes":
            progress.advance(key, len(event.data))
        elif event.kind in ("done", "failed"):
            progress.finish(key, ok=event.kind == "done")

    return listen


def item_listener(progress: Progress) -> Listener:
    """The events of named items (:class:`Item`) as ``progress`` calls, each item its own transfer; blob events
    are left to :func:`progress_listener`."""

    async def listen(event: Event) -> None:
        item = event.blob
        if not isinstance(item, Item):
            return
        if event.kind == "start":
            progress.start(item.name, item.name, item.size)
        elif event.kind == "bytes":
            progress.advance(item.name, len(event.data))
        elif event.kind in ("done", "failed"):
            progress.finish(item.name, ok=event.kind == "done")

    return listen


def as_item(events: Listener, name: str, shown: Callable[[Descriptor], bool]) -> Listener:
    """The events of the ``shown`` blobs told as those of the item ``name`` (an import pushing an asset's layer
    reports it under the asset's name); other events are dropped."""

    async def listen(event: Event) -> None:
        if isinstance(event.blob, Descriptor) and shown(event.blob):
            await events(Event(event.kind, Item(name, event.blob.size), event.data))

    return listen


def fan_out(*listeners: Listener | None) -> Listener | None:
    """One listener calling each of ``listeners`` in order (None when there is none)."""
    present = [listener for listener in listeners if listener is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    async def listen(event: Event) -> None:
        for listener in present:
            await listener(event)

    return listen
