"""Anonymous clients cannot grow the server's memory by naming repositories that do not exist (issue 12, item 2).

Every made-up repository name once left a lock in a module-level dict of ``store/layout.py``, for good.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.junk import open_files, rss_mib, send
from support.serve import ServeProcess

pytestmark = pytest.mark.security

JUNK_REQUESTS = 100_000
RSS_BOUND_MIB = 8.0


def junk_path(i: int) -> str:
    if i % 2:
        return f"/v2/junk/n{i}/manifests/latest"
    return f"/v2/junk/n{i}/blobs/sha256:{i:064x}"


def test_100000_requests_for_made_up_repositories_leave_memory_flat(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with ServeProcess(MirrorCli(tmp_path / "home"), ["--store", str(store), "--no-sync"]) as serve:
        warm = send(serve.host, 10_000, lambda i: junk_path(10**7 + i))
        before, files_before = rss_mib(serve.pid), open_files(serve.pid)
        statuses = send(serve.host, JUNK_REQUESTS, junk_path)
        after, files_after = rss_mib(serve.pid), open_files(serve.pid)
    assert set(warm) == {404}
    assert Counter(statuses) == {404: JUNK_REQUESTS}
    assert after - before < RSS_BOUND_MIB, f"RSS grew from {before:.1f} to {after:.1f} MiB"
    assert files_after <= files_before + 2
