"""The writer lock between processes: waiting, telling who holds it, giving up, and the async variant."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trivy_mirror.errors import StoreError
from trivy_mirror.store import Store

HOLDER = """
import sys
from pathlib import Path
from trivy_mirror.store import Store

with Store(Path(sys.argv[1])).lock(purpose="sync"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(store: Store) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store lock until its stdin is closed."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.root)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    try:
        assert process.stdout.readline() == "locked\n"
        yield process
    finally:
        if process.stdin and not process.stdin.closed:
            process.stdin.close()
        process.wait(timeout=10)


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()


def test_lock_is_exclusive_reports_holder_and_times_out(store: Store, holder: subprocess.Popen[str]) -> None:
    messages: list[str] = []
    started = time.monotonic()
    with pytest.raises(StoreError) as caught, store.lock(timeout=0.6, on_wait=messages.append):
        pass
    assert time.monotonic() - started >= 0.6
    assert str(caught.value) == (
        f"store {store.root} is locked by another trivy-mirror (pid {holder.pid}); gave up after 0.6s"
    )
    assert len(messages) == 1, "on_wait is called once"
    assert messages[0].startswith(f"store {store.root} is locked by pid {holder.pid} (sync started ")
    assert messages[0].endswith("); waiting up to 0.6s")


def test_waiter_gets_the_lock_when_the_holder_exits(store: Store, holder: subprocess.Popen[str]) -> None:
    messages: list[str] = []
    threading.Timer(0.5, release, [holder]).start()
    started = time.monotonic()
    with store.lock(timeout=30, on_wait=messages.append):
        assert time.monotonic() - started >= 0.5
        assert f'"pid": {os.getpid()}' in (store.root / ".lock").read_text()
    assert len(messages) == 1
    assert (store.root / ".lock").read_text() == "", "released: no holder recorded"


def test_lock_is_not_reentrant(store: Store) -> None:
    with store.lock(), pytest.raises(StoreError, match=f"pid {os.getpid()}"), store.lock(timeout=0):
        pass


def test_holder_that_dies_releases_the_lock(store: Store, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    with store.lock(timeout=5):
        pass


def test_taking_the_lock_removes_leftover_temp_files(store: Store) -> None:
    tmp = store.root / ".tmp"
    tmp.mkdir(parents=True)
    (tmp / "crashed-blob.tmp").write_bytes(b"partial")
    with store.lock():
        assert list(tmp.iterdir()) == []


async def test_async_lock_waits_without_blocking_the_loop(store: Store, holder: subprocess.Popen[str]) -> None:
    messages: list[str] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        with pytest.raises(StoreError, match=r"gave up after 0\.5s"):
            async with store.alock(timeout=0.5, on_wait=messages.append):
                pass
        assert ticks >= 20, "the event loop kept running while waiting"
        assert len(messages) == 1 and f"pid {holder.pid}" in messages[0]

        asyncio.get_running_loop().call_later(0.3, release, holder)
        async with store.alock(timeout=30):
            assert f'"pid": {os.getpid()}' in (store.root / ".lock").read_text()
    finally:
        ticking.cancel()


def test_lock_on_an_unwritable_place_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot lock store"), Store(tmp_path / "file" / "store").lock():
        pass


async def test_shared_holders_coexist_and_keep_an_exclusive_one_and_its_cleanup_out(store: Store) -> None:
    (store.root / ".tmp").mkdir(parents=True)
    async with store.alock(5, shared=True), store.alock(5, shared=True):
        (store.root / ".tmp" / "push-in-progress").write_bytes(b"x")
        with pytest.raises(StoreError, match="gave up"):
            async with store.alock(0.3):
                pass
        assert (store.root / ".tmp" / "push-in-progress").exists()
    async with store.alock(5):
        assert not (store.root / ".tmp" / "push-in-progress").exists(), "the exclusive holder cleans up"


def test_links_in_place_of_control_files_are_refused(store: Store, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "file").write_text("keep")
    store.root.mkdir(parents=True)
    (store.root / ".tmp").symlink_to(elsewhere)
    with pytest.raises(StoreError, match=r"\.tmp is a symbolic link"), store.lock(timeout=1):
        pass
    with store.lock(timeout=1, allow_links=True):
        pass  # verify --repair: the lock's clean-up does not follow the link
    assert (elsewhere / "file").read_text() == "keep"


def test_writer_names_the_exclusive_holder_only(store: Store, tmp_path: Path) -> None:
    """``Store.writer()``: None before any lock and after release, the holder's record while another process
    holds it, None while only shared holders (pushes) are in."""
    assert store.writer() is None
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.root)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        assert process.stdout.readline() == "locked\n"
        writer = store.writer()
        assert writer is not None and writer["pid"] == process.pid and writer["purpose"] == "sync"
    finally:
        release(process)
        process.wait(timeout=10)
    assert store.writer() is None

    async def shared() -> object:
        async with store.alock(1, shared=True):
            return store.writer()

    assert asyncio.run(shared()) is None
