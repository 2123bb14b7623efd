"""Progress from the event stream: periodic log lines off a terminal, and never ``copied`` after a failure."""

from __future__ import annotations

import logging

import pytest

from trivy_mirror.engine.events import Event, Item, TransferLog, fan_out, item_listener, progress_listener
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor

LAYER = Descriptor(mediatype.TRIVY_DB_LAYER, Digest.of(b"x"), 300_000_000)
CONFIG = Descriptor(mediatype.OCI_EMPTY, Digest.of(b"{}"), 2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _transfer(caplog: pytest.LogCaptureFixture, last: str) -> list[str]:
    clock = Clock()
    listen = progress_listener(TransferLog(interval=5, clock=clock), "db", "db (upstream)",
                               lambda blob: blob == LAYER)
    caplog.set_level(logging.INFO, "trivy_mirror.progress")
    await listen(Event("start", CONFIG))
    await listen(Event("start", LAYER))
    for _ in range(15):  # 10 MB a second for 15 s
        clock.now += 1
        await listen(Event("bytes", LAYER, b"\0" * 10_000_000))
    await listen(Event(last, LAYER))  # type: ignore[arg-type]
    return [record.getMessage() for record in caplog.records]


async def test_long_transfers_log_bytes_rate_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    lines = await _transfer(caplog, "done")
    assert lines[0] == "copying db (upstream): 300.0 MB"
    assert lines[1:4] == [f"copying db (upstream): {mb}.0 of 300.0 MB (10.0 MB/s, about {left}s left)"
                          for mb, left in ((50, 25), (100, 20), (150, 15))]
    assert lines[4] == "copied db (upstream): 150.0 MB in 15.0s (10.0 MB/s)"
    assert len(lines) == 5


async def test_a_failed_transfer_never_reads_copied(caplog: pytest.LogCaptureFixture) -> None:
    lines = await _transfer(caplog, "failed")
    assert lines[-1] == "stopped copying db (upstream) after 150.0 of 300.0 MB"
    assert not any(line.startswith("copied") for line in lines)


async def test_named_items_are_their_own_transfers_and_blob_listeners_ignore_them(
        caplog: pytest.LogCaptureFixture) -> None:
    """A bundle or a VEX archive (an :class:`Item`) shows as the layers do; a size not known ahead says so."""
    clock = Clock()
    log = TransferLog(interval=5, clock=clock)
    listen = fan_out(item_listener(log), progress_listener(log, "db", "db", lambda blob: True))
    assert listen is not None
    caplog.set_level(logging.INFO, "trivy_mirror.progress")
    bundle, archive = Item("bundle b.tar", 20_000_000), Item("vex/hub (upstream)")
    await listen(Event("start", bundle))
    await listen(Event("start", archive))
    for _ in range(6):
        clock.now += 1
        await listen(Event("bytes", bundle, b"\0" * 2_000_000))
        await listen(Event("bytes", archive, b"\0" * 1_000_000))
    await listen(Event("done", bundle))
    await listen(Event("failed", archive))
    await listen(Event("skipped", Item("vex/other (upstream)")))
    assert [record.getMessage() for record in caplog.records] == [
        "copying bundle b.tar: 20.0 MB", "copying vex/hub (upstream)",
        "copying bundle b.tar: 10.0 of 20.0 MB (2.0 MB/s, about 5s left)",
        "copying vex/hub (upstream): 5.0 MB (1.0 MB/s)",
        "copied bundle b.tar: 12.0 MB in 6.0s (2.0 MB/s)", "stopped copying vex/hub (upstream) after 6.0 MB"]
