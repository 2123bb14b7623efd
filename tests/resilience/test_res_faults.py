"""The fault matrix: the real CLI syncs a newer DB through :class:`FaultProxy` in front of a real registry.

Every scenario must end in exactly one of: recovered with the correct bytes (the new version served), or one
clear error line with the previous version still served. Always: ``verify`` clean, no traceback, a bounded
number of requests.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import trivy_mirror
from support.cli import MirrorCli, assert_one_error_line
from support.faultproxy import FAST, Fault, FaultProxy
from support.newer_source import NewerSource, newer_source, served_digest
from support.registry import RegistryProcess
from support.trivy_assets import DB_REPOSITORY, AssetSet

pytestmark = pytest.mark.resilience

RECOVERED, KEPT = "recovered", "kept previous"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess,
          assets: AssetSet) -> Iterator[NewerSource]:
    """A store holding the current DB (synced once, copied per test) and a registry holding a newer one."""
    with newer_source(tmp_path_factory.mktemp("base"), upstream, assets, filler_bytes=1_500_000) as prepared:
        yield prepared


def manifest_path() -> str:
    return f"/v2/{DB_REPOSITORY}/manifests/"


def blob_path(digest: str) -> str:
    return f"/v2/{DB_REPOSITORY}/blobs/{digest}"


@dataclass(frozen=True)
class Scenario:
    faults: tuple[Fault, ...]
    outcome: str
    message: str = ""
    """In the error line, for a failure."""
    max_requests: int = 12


def scenarios(layer: str) -> dict[str, Scenario]:
    blob = blob_path(layer)
    return {
        "reset mid-blob": Scenario((Fault("reset", blob),), RECOVERED),
        "truncated body": Scenario((Fault("truncate", blob),), RECOVERED),
        "reset mid-blob, three times": Scenario((Fault("reset", blob, times=3),), RECOVERED),
        "one flipped byte": Scenario((Fault("flip", blob),), KEPT, "digest"),
        "wrong Content-Length": Scenario((Fault("wrong-length", blob),), KEPT, "bytes"),
        "429 Retry-After 0.000035": Scenario((Fault("status", manifest_path(), status=429,
                                                    retry_after="0.000035", times=2),), RECOVERED),
        "429 Retry-After 0.000035 on the blob": Scenario((Fault("status", blob, status=429,
                                                                retry_after="0.000035", times=2),), RECOVERED),
        "429 Retry-After 3600": Scenario((Fault("status", manifest_path(), status=429, retry_after="3600",
                                                times=None),), KEPT, "retry after 3600"),
        "500/502/503 burst": Scenario(tuple(Fault("status", manifest_path(), status=s) for s in (500, 502, 503)),
                                      RECOVERED),
        "503 burst on the blob": Scenario((Fault("status", blob, status=503, times=3),), RECOVERED),
        "503 forever": Scenario((Fault("status", manifest_path(), status=503, times=None),), KEPT, "503"),
        "stalled connection": Scenario((Fault("stall", blob, stall=20),), RECOVERED),
        "stalled forever": Scenario((Fault("stall", manifest_path(), stall=20, times=None),), KEPT,
                                    "timed out", max_requests=14),
        "manifest digest mismatch": Scenario((Fault("manifest-mismatch", manifest_path(), times=None),), KEPT,
                                             "digest"),
        "oversize manifest": Scenario((Fault("oversize-manifest", manifest_path(), times=None),), KEPT, "limit"),
    }


SCENARIOS = list(scenarios("sha256:" + "0" * 64))


@pytest.mark.parametrize("name", SCENARIOS)
def test_fault_scenario(name: str, world: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    scenario = scenarios(world.layer)[name]
    store = tmp_path / "store"
    shutil.copytree(world.base_store, store)
    assert served_digest(store) == world.old.digest
    with FaultProxy(world.source.host) as proxy:
        for fault in scenario.faults:
            proxy.add(fault)
        started = time.monotonic()
        result = mirror.run(["sync", "--from", f"{proxy.host}/aquasec", "--store", str(store), "--assets", "db"],
                            env=FAST, timeout=60)
        elapsed = time.monotonic() - started
        seen = proxy.requests()
    assert "Traceback" not in result.stderr
    assert all(f.applied for f in scenario.faults), f"fault not triggered: {scenario.faults}"
    assert len(seen) <= scenario.max_requests, [(s.method, s.path, s.fault) for s in seen]
    assert elapsed < 30
    if scenario.outcome == RECOVERED:
        assert result.returncode == 0, result.stderr
        assert served_digest(store) == world.new.digest
        layer = store / DB_REPOSITORY / "blobs" / "sha256" / world.layer.split(":")[1]
        assert layer.read_bytes() == world.new.layers[0]
    else:
        line = assert_one_error_line(result)
        assert scenario.message.lower() in line.lower(), line
        assert served_digest(store) == world.old.digest
    report = trivy_mirror.verify(store=store)
    assert report.ok and not report.problems, report.problems
    assert not list((store / ".tmp").glob("*")), "temp files left behind"


def test_retry_after_floor_is_honoured(world: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    """ghcr's 0.000035 s Retry-After must not turn into a tight loop: the retries are spaced by the floor."""
    store = tmp_path / "store"
    shutil.copytree(world.base_store, store)
    with FaultProxy(world.source.host) as proxy:
        proxy.add(Fault("status", manifest_path(), status=429, retry_after="0.000035", times=None))
        result = mirror.run(["sync", "--from", f"{proxy.host}/aquasec", "--store", str(store), "--assets", "db"],
                            env=FAST, timeout=60)
        hits = proxy.requests(lambda s: s.fault == "status")
    assert_one_error_line(result)
    assert 1 < len(hits) <= 5, len(hits)  # bounded by the retry policy
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    assert min(gaps) >= 0.04, gaps  # the floor (0.05 s here, 0.5 s by default), not 35 microseconds
    assert served_digest(store) == world.old.digest


def test_resume_uses_range(world: NewerSource, mirror: MirrorCli, tmp_path: Path) -> None:
    """A reset mid-blob is resumed from the first missing byte, not restarted."""
    store = tmp_path / "store"
    shutil.copytree(world.base_store, store)
    with FaultProxy(world.source.host) as proxy:
        proxy.add(Fault("reset", blob_path(world.layer)))
        result = mirror.run(["sync", "--from", f"{proxy.host}/aquasec", "--store", str(store), "--assets", "db"],
                            env=FAST, timeout=60)
        ranges = [s.headers.get("Range") for s in proxy.requests(lambda s: s.path == blob_path(world.layer))]
    assert result.returncode == 0, result.stderr
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1].startswith("bytes=")
    assert int(ranges[-1].removeprefix("bytes=").rstrip("-")) > 0
