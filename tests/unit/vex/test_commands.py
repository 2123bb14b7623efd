"""Which VEX repositories ``sync``/``serve``/``status`` work on, from ``--assets`` and ``--vex-from``."""

from __future__ import annotations

import pytest

from support.vex_repo import UpstreamVex
from trivy_mirror.errors import UsageError
from trivy_mirror.orchestrate import select_vex_sources as vex_sources
from trivy_mirror.orchestrate import vex_status_rows
from trivy_mirror.store import Store
from trivy_mirror.vex import DEFAULT_SOURCE

from .conftest import sync


def test_selection() -> None:
    assert vex_sources((), []) == []
    assert vex_sources((), ["db"]) == []
    assert vex_sources((), ["vex"]) == [DEFAULT_SOURCE]
    assert [s.name for s in vex_sources(("a=https://a", "https://github.com/o/b"), ["db"])] == ["a", "b"]
    with pytest.raises(UsageError, match="'b' is given twice"):
        vex_sources(("b=https://a", "https://github.com/o/b"), [])


async def test_status_rows(store: Store, vex_upstream: UpstreamVex) -> None:
    assert vex_status_rows(store, []) == []
    assert [(r.reference, r.state) for r in vex_status_rows(store, ["vex"])] == [("vex/vexhub", "missing")]
    await sync(store, vex_upstream)
    assert vex_status_rows(store, ["db"]) == []
    assert [(r.reference, r.state) for r in vex_status_rows(store, [])] == [("vex/gh", "fresh")]
    assert [(r.reference, r.state) for r in vex_status_rows(store, ["vex"])] == \
        [("vex/vexhub", "missing"), ("vex/gh", "fresh")]
    assert [r.reference for r in vex_status_rows(store, [], ["gh=https://h", "other=https://o"])] == \
        ["vex/gh", "vex/other"]
