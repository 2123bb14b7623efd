"""``sync_vex`` reports each archive download on the engine's event stream, as a named item."""

from __future__ import annotations

from support.vex_repo import UpstreamVex
from trivy_mirror.engine.events import Event, Item
from trivy_mirror.store import Store
from trivy_mirror.vex.extract import Limits

from .conftest import ARCHIVE, sync


class Collected:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def steps(self) -> list[tuple[str, Item]]:
        return [(e.kind, e.blob) for e in self.events if e.kind != "bytes" and isinstance(e.blob, Item)]

    def bytes(self) -> int:
        return sum(len(e.data) for e in self.events if e.kind == "bytes")


async def test_a_download_is_start_bytes_done_then_skipped_when_unchanged(store: Store,
                                                                          vex_upstream: UpstreamVex) -> None:
    name = f"vex/gh ({vex_upstream.url}{ARCHIVE}//vexhub-main)"
    size = len(vex_upstream.files[ARCHIVE])
    first = Collected()
    assert (await sync(store, vex_upstream, events=first)).outcome == "updated"
    assert first.steps() == [("start", Item(name, size)), ("done", Item(name, size))]
    assert first.bytes() == size and all(e.blob == Item(name, size) for e in first.events)

    second = Collected()
    assert (await sync(store, vex_upstream, events=second)).outcome == "unchanged"
    assert second.steps() == [("skipped", Item(name))] and second.bytes() == 0


async def test_a_download_cut_short_is_failed_never_done(store: Store, vex_upstream: UpstreamVex) -> None:
    events = Collected()
    limits = Limits(max_download_bytes=len(vex_upstream.files[ARCHIVE]) - 1)
    vex_upstream.chunked = True
    result = await sync(store, vex_upstream, events=events, limits=limits)
    assert result.outcome == "refused"
    assert [kind for kind, _item in events.steps()] == ["start", "failed"]
    assert events.steps()[0][1].size == 0  # no Content-Length: the size is not known ahead
