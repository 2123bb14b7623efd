"""``sync_vex`` against a local upstream: store layout, 304s, refusals that keep the last good version, location
fallback, redirects, checksums, dry runs and the status rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from support.vex_repo import UpstreamVex, flat_tarball, github_tarball, manifest, repository_files, zip_archive
from trivy_mirror.errors import UsageError
from trivy_mirror.http.transport import RetryPolicy, Transport
from trivy_mirror.store import Store
from trivy_mirror.vex import VexSource, sync_vex, vex_statuses
from trivy_mirror.vex.extract import Limits
from trivy_mirror.vex.storage import VexRepository

from .conftest import ARCHIVE, MANIFEST, sync


def served_digest(store: Store, name: str = "gh") -> str | None:
    current = VexRepository(store.root, name).load().current
    return current.digest if current else None


async def test_github_shape_is_stored_then_kept_with_304s(store: Store, vex_upstream: UpstreamVex) -> None:
    first = await sync(store, vex_upstream)
    assert (first.outcome, first.asset, first.reference) == ("updated", "vex", "vex/gh")
    assert first.source == f"{vex_upstream.url}{ARCHIVE}//vexhub-main"
    assert first.digest is not None and first.digest == served_digest(store)
    assert first.metadata is not None and first.metadata.updated_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    files = sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    assert files == ["vex/gh/blobs/sha256/" + first.digest.removeprefix("sha256:"), "vex/gh/repository.json"]
    assert store.repositories() == []  # the OCI side never mistakes a VEX directory for a layout

    since = len(vex_upstream.log)
    second = await sync(store, vex_upstream)
    assert (second.outcome, second.message, second.digest) == ("unchanged", "not modified upstream (304)",
                                                               first.digest)
    [get] = vex_upstream.requests(ARCHIVE, since)
    assert (get.method, get.status) == ("GET", 304) and get.if_none_match
    [row] = vex_statuses(store.root)
    assert (row.asset, row.reference, row.state, row.digest, row.last_result) == \
        ("vex", "vex/gh", "fresh", first.digest, "ok")
    assert row.next_update is not None
    assert row.next_update - datetime.now(UTC) > timedelta(hours=23)


async def test_refused_candidate_keeps_the_last_good_version(store: Store, vex_upstream: UpstreamVex) -> None:
    good = await sync(store, vex_upstream)
    bad_index = {"updated_at": "2026-02-01T00:00:00Z",
                 "packages": [{"id": "pkg:pypi/requests", "location": "../../etc/passwd.json"}]}
    vex_upstream.files[ARCHIVE] = github_tarball(
        {**repository_files(), "index.json": json.dumps(bad_index).encode()})
    refused = await sync(store, vex_upstream)
    assert refused.outcome == "refused"
    assert refused.message.startswith("kept the current version: ")
    assert "points outside the repository" in refused.message and "\n" not in refused.message
    assert served_digest(store) == good.digest
    [row] = vex_statuses(store.root)
    assert row.digest == good.digest and row.state == "fresh"
    assert row.last_result == "refused" and row.last_message.startswith("kept the current version")
    assert row.last_failed


async def test_refused_first_version_leaves_nothing_served(store: Store, vex_upstream: UpstreamVex) -> None:
    vex_upstream.files[ARCHIVE] = flat_tarball(repository_files())  # no vexhub-main/ directory
    result = await sync(store, vex_upstream)
    assert result.outcome == "refused"
    assert "nothing to serve yet: " in result.message and "//vexhub-main is not in the archive" in result.message
    [row] = vex_statuses(store.root, ["gh"])
    assert row.state == "missing" and row.last_result == "refused"


async def test_changed_upstream_is_picked_up_and_old_archives_pruned(store: Store,
                                                                     vex_upstream: UpstreamVex) -> None:
    digests = []
    for day, status in ((3, "affected"), (4, "not_affected"), (5, "under_investigation")):
        when = datetime(2026, 1, day, tzinfo=UTC)
        vex_upstream.files[ARCHIVE] = github_tarball(repository_files(status, updated_at=when))
        result = await sync(store, vex_upstream)
        assert result.outcome == "updated", result.message
        digests.append(result.digest)
    assert len(set(digests)) == 3
    blobs = sorted(p.name for p in (store.root / "vex/gh/blobs/sha256").iterdir())
    assert blobs == sorted(d.removeprefix("sha256:") for d in digests[1:] if d)
    assert VexRepository(store.root, "gh").load().previous == digests[1]


async def test_older_index_is_refused(store: Store, vex_upstream: UpstreamVex) -> None:
    await sync(store, vex_upstream)
    vex_upstream.files[ARCHIVE] = github_tarball(repository_files("affected", updated_at=datetime(2025, 1, 1,
                                                                                                  tzinfo=UTC)))
    result = await sync(store, vex_upstream)
    assert result.outcome == "refused" and "is older than the served 2026-01-02T03:04:05Z" in result.message


async def test_same_content_under_a_new_etag_is_unchanged(store: Store, vex_upstream: UpstreamVex) -> None:
    first = await sync(store, vex_upstream)
    vex_upstream.files[ARCHIVE] = github_tarball(repository_files(), mtime=12345)  # new bytes, same files
    result = await sync(store, vex_upstream)
    assert (result.outcome, result.message, result.digest) == ("unchanged", "same content as served", first.digest)


async def test_locations_are_tried_in_order_through_redirects(store: Store, vex_upstream: UpstreamVex) -> None:
    vex_upstream.files["/flat/.well-known/vex-repository.json"] = manifest(
        f"{vex_upstream.url}/missing.tar.gz", f"{vex_upstream.url}/bad.zip", f"{vex_upstream.url}/gh-archive.zip")
    vex_upstream.files["/bad.zip"] = b"not a zip"
    vex_upstream.redirects["/gh-archive.zip"] = f"{vex_upstream.url}/codeload/flat.zip"
    vex_upstream.files["/codeload/flat.zip"] = zip_archive(repository_files())
    result = await sync(store, vex_upstream, name="flat", path="/flat")
    assert result.outcome == "updated", result.message
    assert result.source == f"{vex_upstream.url}/gh-archive.zip"
    assert [e.status for e in vex_upstream.log if e.path.endswith(".zip") or e.path.endswith(".tar.gz")] == \
        [404, 200, 302, 200]


async def test_all_locations_failing_is_reported_per_location(store: Store, vex_upstream: UpstreamVex) -> None:
    vex_upstream.files[MANIFEST] = manifest(f"{vex_upstream.url}/a.tar.gz", f"{vex_upstream.url}/b.zip")
    result = await sync(store, vex_upstream)
    assert result.outcome == "failed"
    assert result.message == (f"{vex_upstream.url}/a.tar.gz: 127.0.0.1:{vex_upstream.port}: fetch archive: "
                              f"404 not found; {vex_upstream.url}/b.zip: 127.0.0.1:{vex_upstream.port}: "
                              f"fetch archive: 404 not found")


async def test_checksum_mismatch_is_refused(store: Store, vex_upstream: UpstreamVex) -> None:
    vex_upstream.files[MANIFEST] = manifest(f"{vex_upstream.url}{ARCHIVE}//vexhub-main?checksum=sha256:{'0' * 64}")
    result = await sync(store, vex_upstream)
    assert result.outcome == "refused" and "the location's checksum= says 0000" in result.message


@pytest.mark.parametrize(("document", "outcome", "message"), [
    (None, "failed", "fetch vex-repository.json: 404 not found"),
    (b"{}", "refused", "invalid vex-repository.json: name is missing"),
    (b"x" * 2000, "refused", "vex-repository.json is 2000 bytes, more than the 1000 allowed"),
])
async def test_bad_manifests(store: Store, vex_upstream: UpstreamVex, document: bytes | None, outcome: str,
                             message: str) -> None:
    if document is None:
        del vex_upstream.files[MANIFEST]
    else:
        vex_upstream.files[MANIFEST] = document
    result = await sync(store, vex_upstream, limits=Limits(max_manifest_bytes=1000))
    assert result.outcome == outcome and message in result.message


async def test_unreachable_upstream(store: Store, vex_upstream: UpstreamVex) -> None:
    await vex_upstream.stop()
    result = await sync(store, vex_upstream)
    assert result.outcome == "failed"
    assert result.message == f"cannot reach 127.0.0.1:{vex_upstream.port}: connection refused (fetch " \
                             f"vex-repository.json)"


async def test_dry_run_writes_nothing(store: Store, vex_upstream: UpstreamVex) -> None:
    result = await sync(store, vex_upstream, dry_run=True)
    assert result.outcome == "would-update" and not store.root.exists()
    await sync(store, vex_upstream)
    state_before = (store.root / "vex/gh/repository.json").read_bytes()
    again = await sync(store, vex_upstream, dry_run=True)
    assert again.outcome == "unchanged"
    assert vex_upstream.log[-1].method == "HEAD" and vex_upstream.log[-1].status == 304
    assert (store.root / "vex/gh/repository.json").read_bytes() == state_before


async def test_crash_leftovers_are_cleaned(store: Store, vex_upstream: UpstreamVex) -> None:
    leftover = store.root / ".tmp" / "vex-crashed"
    (leftover / "tree").mkdir(parents=True)
    await sync(store, vex_upstream)
    assert not leftover.exists()
    assert list((store.root / ".tmp").iterdir()) == []


async def test_plain_http_to_a_public_host_needs_insecure(store: Store) -> None:
    transport = Transport(retry=RetryPolicy(attempts=1))
    try:
        [result] = await sync_vex(store, [VexSource.parse("x=http://vex.example.com")], transport)
    finally:
        await transport.close()
    assert result.outcome == "failed"
    assert result.message == "vex.example.com: plain HTTP is only allowed to loopback and private addresses; " \
                             "use https or --insecure"


async def test_duplicate_names_are_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="'a' is given twice"):
        await sync_vex(store, [VexSource.parse("a=https://x"), VexSource.parse("a=https://y")], Transport())
