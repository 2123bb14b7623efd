"""A mixed fleet against one mirror: every Trivy release from 0.59.1 to 0.76.0 scans through ``serve`` with only
the files ``trivy-config --out`` wrote, in three mirror set-ups (no VEX, VEX under a name other than vexhub, two
VEX repositories); old clients keep their VEX after a re-download; the census sees every version.

Affordable on 2 cores: one mirror (store, serve, generated files) per set-up for the whole module, and the Trivy
versions of a set-up run in parallel. The binaries come from ``scripts/fetch_trivy.py`` (never downloaded here).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryProcess, push_artifact
from support.serve import ServeProcess
from support.trivy import TrivySandbox, misconfig_ids, vuln_ids
from support.trivy_assets import (
    CHECK_AVD_ID,
    CHECK_ID,
    CHECKS_REPOSITORY,
    MAVEN_CVE,
    PIP_CVE,
    AssetSet,
    build_checks_bundle,
)
from support.trivy_versions import VERSIONS, TrivyRelease, trivy_binary
from support.vex_repo import (
    UpstreamVex,
    VexUpstreamThread,
    flat_tarball,
    github_tarball,
    manifest,
    repository_files,
)

pytestmark = pytest.mark.e2e

PARALLEL = 3
CHECK_IDS = {CHECK_ID, "TEST-001", CHECK_AVD_ID}
"""0.67/0.68 report a custom check under its older ID form, 0.69+ the dashed one (TRIVY-ASSETS.md 14)."""


@pytest.fixture(scope="module")
def vex_upstream() -> Iterator[UpstreamVex]:
    """``/gh`` in GitHub's shape (``//vexhub-main``) and ``/flat`` (index.json at the root); both mark the
    planted CVE-2099-0001 not_affected for requests 1.0.0."""
    with VexUpstreamThread() as server:
        server.files["/gh/.well-known/vex-repository.json"] = manifest(f"{server.url}/gh/main.tar.gz//vexhub-main")
        server.files["/gh/main.tar.gz"] = github_tarball(repository_files())
        server.files["/flat/.well-known/vex-repository.json"] = manifest(f"{server.url}/flat/vex.tar.gz")
        server.files["/flat/vex.tar.gz"] = flat_tarball(repository_files())
        yield server


@dataclass
class Fleet:
    """One mirror set-up: its store, its serve and the directory ``trivy-config --out`` wrote."""

    name: str
    vex: tuple[str, ...]
    store: Path
    server: ServeProcess
    config: Path
    mirror: MirrorCli
    root: Path
    assets: AssetSet

    def client(self, release: TrivyRelease, label: str = "") -> TrivySandbox:
        """A Trivy of ``release`` whose home holds the generated repository.yaml, and nothing else."""
        home = self.root / f"home-{release.version}{label}"
        vex_home = home / ".local" / "share" / ".trivy" / "vex"  # XDG_DATA_HOME of the sandbox
        vex_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.config / "repository.yaml", vex_home / "repository.yaml")
        return TrivySandbox(self.root / f"cache-{release.version}{label}", home, trivy_binary(release.version),
                            scan_flags=False)


SETUPS = {"no-vex": (), "renamed": ("internal",), "two": ("alpha", "beta")}
SOURCES = {"internal": "/gh", "alpha": "/gh", "beta": "/flat"}


def build_fleet(name: str, root: Path, upstream: RegistryProcess, vex_upstream: UpstreamVex,
                assets: AssetSet) -> Fleet:
    """Sync a store (with the set-up's VEX repositories), serve it, and write the client files from it."""
    mirror, store = MirrorCli(root / "mirror-home"), root / "store"
    args = ["sync", "--store", str(store), "--from", f"{upstream.host}/aquasec"]
    for vex in SETUPS[name]:
        args += ["--vex-from", f"{vex}={vex_upstream.url}{SOURCES[vex]}"]
    synced = mirror.run(args)
    assert synced.returncode == 0, synced.stderr
    server = ServeProcess(mirror, ["--store", str(store), "--no-sync"]).start()
    written = mirror.run(["trivy-config", "--mirror", server.url, "--out", str(root / "config")])
    if written.returncode != 0:
        server.stop()
        raise AssertionError(written.stderr)
    return Fleet(name, SETUPS[name], store, server, root / "config", mirror, root, assets)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess, vex_upstream: UpstreamVex,
           assets: AssetSet) -> Iterator[Callable[[str], Fleet]]:
    """``fleets(NAME)``: the mirror of set-up NAME, built on first use and shared by the whole module."""
    built: dict[str, Fleet] = {}

    def get(name: str) -> Fleet:
        if name not in built:
            built[name] = build_fleet(name, tmp_path_factory.mktemp(f"fleet-{name}"), upstream, vex_upstream, assets)
        return built[name]

    yield get
    codes = {name: fleet.server.stop() for name, fleet in built.items()}
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope="module", params=list(SETUPS))
def fleet(request: pytest.FixtureRequest, fleets: Callable[[str], Fleet]) -> Fleet:
    return fleets(request.param)


def suppressed(report: dict[str, Any]) -> set[str]:
    return {finding["Finding"]["VulnerabilityID"] for result in report.get("Results") or []
            for finding in result.get("ExperimentalModifiedFindings") or []}


def scan_with_generated_files(fleet: Fleet, release: TrivyRelease) -> None:
    """DB, Java DB and checks findings, and VEX applied exactly when the mirror serves it."""
    trivy = fleet.client(release)
    configured = ["--config", str(fleet.config / "trivy.yaml")]
    targets = fleet.assets.targets
    fs = trivy.scan(["fs", *configured, "--scanners", "vuln", "--show-suppressed", str(targets.requirements_dir)])
    if fleet.vex:
        assert vuln_ids(fs) == set() and suppressed(fs) == {PIP_CVE}, release.version
    else:
        assert vuln_ids(fs) == {PIP_CVE} and suppressed(fs) == set(), release.version
    rootfs = trivy.scan(["rootfs", *configured, "--scanners", "vuln", str(targets.rootfs_dir)])
    assert vuln_ids(rootfs) == {MAVEN_CVE}, release.version
    config = trivy.scan(["config", *configured, str(targets.dockerfile_dir)])
    assert misconfig_ids(config) & CHECK_IDS, (release.version, misconfig_ids(config))


def in_parallel(releases: tuple[TrivyRelease, ...], work: Any) -> None:
    """Run ``work(release)`` for every release on a small pool; fail with every version's failure at once."""
    failures: dict[str, str] = {}

    def guarded(release: TrivyRelease) -> None:
        try:
            work(release)
        except AssertionError as err:
            failures[release.version] = str(err)[-3000:]

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(guarded, releases))
    assert not failures, "\n\n".join(f"Trivy {version}: {text}" for version, text in sorted(failures.items()))


def test_every_trivy_scans_with_only_the_generated_files(fleet: Fleet) -> None:
    for release in VERSIONS:
        trivy_binary(release.version)  # one clear line, before any work, when a binary was never fetched
    document = yaml.safe_load((fleet.config / "trivy.yaml").read_text())
    repositories = yaml.safe_load((fleet.config / "repository.yaml").read_text())["repositories"]
    assert [r["name"] for r in repositories if r["enabled"]] == list(fleet.vex)
    assert ("vulnerability" in document) == bool(fleet.vex)

    in_parallel(VERSIONS, lambda release: scan_with_generated_files(fleet, release))

    # The census saw each version pull, with the checks tag of its own (:1 up to 0.68, :2 from 0.69).
    status, body = fleet.server.get("/metrics")
    assert status == 200
    for release in VERSIONS:
        assert f'trivy_mirror_client_requests_total{{client="{release.version}",outcome="ok"}}' in body.decode()
    expected = {release.version: {f"{CHECKS_REPOSITORY}:{release.default_checks_tag}", "aquasec/trivy-db:2",
                                  "aquasec/trivy-java-db:1",
                                  *(f"vex/{name}" for name in fleet.vex if release.names_itself_on_vex)}
                for release in VERSIONS}
    census = wait_for_census(fleet, expected)
    for release in VERSIONS:
        assert not [p for p in census[release.version]["problems"] if p["outcome"] == "not-found"]


def wait_for_census(fleet: Fleet, expected: dict[str, set[str]], timeout: float = 20) -> dict[str, Any]:
    """``status --json``'s clients, once the census the server writes (every few seconds) shows every version
    in ``expected`` having pulled its resources."""
    deadline = time.monotonic() + timeout
    while True:
        result = fleet.mirror.run(["status", "--store", str(fleet.store), "--json"])
        clients = {entry["client"]: entry for entry in json.loads(result.stdout).get("clients", [])}
        pulled = {version: {entry["resource"] for entry in clients[version]["pulled"]} if version in clients
                  else set() for version in expected}
        missing = {version: wanted - pulled[version] for version, wanted in expected.items()
                   if not wanted <= pulled[version]}
        if not missing:
            return clients
        assert time.monotonic() < deadline, f"not in the census: {missing}"
        time.sleep(1)


def expire_vex_cache(trivy: TrivySandbox, name: str) -> None:
    """Move the cache's UpdatedAt back past the repository's update_interval (24h): the next scan checks."""
    path = trivy.cache_dir / "vex" / "repositories" / name / "cache.json"
    cache = json.loads(path.read_text())
    cache["UpdatedAt"] = (datetime.now(UTC) - timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(cache))


def test_old_trivy_keeps_its_vex_after_a_redownload(fleets: Callable[[str], Fleet]) -> None:
    """Trivy < 0.73 loses its VEX cache on a 304 (trivy#10958); the mirror sends those the whole archive."""
    fleet = fleets("renamed")
    [name] = fleet.vex
    chosen = [r for r in VERSIONS if r.version in ("0.59.1", "0.67.2", "0.70.0", "0.76.0")]
    archive = f"/vex/{name}/archive.tar.gz"

    def three_scans(release: TrivyRelease) -> None:
        trivy = fleet.client(release, "-redownload")
        for attempt in range(3):
            report = trivy.scan(["fs", "--config", str(fleet.config / "trivy.yaml"), "--scanners", "vuln",
                                 "--show-suppressed", str(fleet.assets.targets.requirements_dir)])
            assert suppressed(report) == {PIP_CVE} and vuln_ids(report) == set(), (release.version, attempt)
            expire_vex_cache(trivy, name)

    in_parallel(tuple(chosen), three_scans)
    statuses: dict[str, list[int]] = {}
    for line in fleet.server.log().splitlines():
        found = re.search(rf'"GET {re.escape(archive)}" (\d{{3}}) .*"(trivy/\d+\.\d+\.\d+|Go-http-client)', line)
        if found:
            statuses.setdefault(found[2].removeprefix("trivy/"), []).append(int(found[1]))
    # 0.59.1 names itself only as Go-http-client on VEX requests.
    assert all(304 not in statuses[agent] for agent in ("Go-http-client", "0.67.2", "0.70.0")), statuses
    assert 304 in statuses["0.76.0"], statuses  # a client that can take it still saves the download


def test_a_missing_tag_shows_in_the_census_and_the_next_sync_adds_it(
    tmp_path: Path, upstream: RegistryProcess, registry: Any, assets: AssetSet,
) -> None:
    """Trivy 0.68 asks for trivy-checks:1; a mirror without it answers 404, which status and /metrics show."""
    source: RegistryProcess = registry()
    for repository, tag, artifact in assets.upstream_tags():
        if (repository, tag) != (CHECKS_REPOSITORY, "1"):
            push_artifact(source.host, repository, tag, artifact)
    mirror, store = MirrorCli(tmp_path / "mirror-home"), tmp_path / "store"
    assert mirror.run(["sync", "--store", str(store), "--from", f"{source.host}/aquasec"]).returncode == 0
    release = next(r for r in VERSIONS if r.version == "0.68.2")
    with ServeProcess(mirror, ["--store", str(store), "--no-sync"]) as server:
        written = mirror.run(["trivy-config", "--mirror", server.url, "--out", str(tmp_path / "config")])
        assert written.returncode == 0, written.stderr
        trivy = TrivySandbox(tmp_path / "cache", tmp_path / "home", trivy_binary(release.version), scan_flags=False)
        degraded = trivy.run(["config", "--config", str(tmp_path / "config" / "trivy.yaml"), "--format", "json",
                              str(assets.targets.dockerfile_dir)])
        assert "Falling back to embedded checks" in degraded.stderr  # the planted check is not run
        assert not misconfig_ids(json.loads(degraded.stdout)) & CHECK_IDS
        # A client asking for a checks tag no catalog names yet: the next sync adds it.
        request = urllib.request.Request(f"{server.url}/v2/{CHECKS_REPOSITORY}/manifests/3",
                                         headers={"User-Agent": "trivy/0.80.0"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
        metrics = server.get("/metrics")[1].decode()
        assert 'trivy_mirror_client_requests_total{client="0.68.2",outcome="not-found"}' in metrics
        assert "Trivy 0.68.2 asked for aquasec/trivy-checks:1" in server.log()
    status = mirror.json(["status", "--store", str(store)])
    clients = {entry["client"]: entry for entry in status["clients"]}
    assert {"resource": f"{CHECKS_REPOSITORY}:1", "outcome": "not-found"}.items() <= \
        clients["0.68.2"]["problems"][0].items()
    table = mirror.run(["status", "--store", str(store)])
    assert "clients" in table.stdout and "0.68.2" in table.stdout

    push_artifact(source.host, CHECKS_REPOSITORY, "1", assets.checks_v1)
    push_artifact(source.host, CHECKS_REPOSITORY, "3", build_checks_bundle(version="3.0.0"))
    resynced = mirror.json(["sync", "--store", str(store), "--from", f"{source.host}/aquasec"])
    outcomes = {entry["reference"]: entry["outcome"] for entry in resynced["results"]}
    assert outcomes[f"{CHECKS_REPOSITORY}:1"] == "updated" and outcomes[f"{CHECKS_REPOSITORY}:3"] == "updated"


def test_trivy_config_refuses_to_guess(tmp_path: Path, fleets: Callable[[str], Fleet]) -> None:
    """An unknown --vex-repo names what is served; an unreachable mirror writes nothing."""
    fleet = fleets("two")
    out = tmp_path / "out"
    refused = fleet.mirror.run(["trivy-config", "--mirror", fleet.server.url, "--vex-repo", "vexhub",
                                "--out", str(out)])
    assert "it serves alpha, beta" in assert_one_error_line(refused, code=2)
    for output in ("env", "flags"):  # the same rule for every format
        other_format = fleet.mirror.run(["trivy-config", "--mirror", fleet.server.url, "--vex-repo", "vexhub",
                                         "--format", output])
        assert "it serves alpha, beta" in assert_one_error_line(other_format, code=2)
    picked = fleet.mirror.run(["trivy-config", "--mirror", fleet.server.url, "--vex-repo", "beta", "--out", str(out)])
    assert picked.returncode == 0, picked.stderr
    enabled = [r["name"] for r in yaml.safe_load((out / "repository.yaml").read_text())["repositories"]
               if r["enabled"]]
    assert enabled == ["beta"]
    from_store = fleet.mirror.run(["trivy-config", "--mirror", fleet.server.url, "--store", str(fleet.store),
                                   "--format", "env"])
    assert from_store.returncode == 0 and "repository.yaml" in from_store.stdout
    gone = tmp_path / "gone"
    dead = fleet.mirror.run(["trivy-config", "--mirror", "http://127.0.0.1:9", "--out", str(gone)])
    assert "cannot ask the mirror" in assert_one_error_line(dead, code=1)
    assert not gone.exists()


def test_trivy_config_asks_a_mirror_behind_auth(tmp_path: Path, fleets: Callable[[str], Fleet]) -> None:
    """The listing sits behind the same auth as the VEX routes; the credentials given go into the files."""
    fleet = fleets("two")
    htpasswd, tokens = tmp_path / "htpasswd", tmp_path / "tokens"
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(4)).decode()
    htpasswd.write_text(f"scanner:{hashed}\n")
    tokens.write_text("static-token-for-trivy\n")
    with ServeProcess(fleet.mirror, ["--store", str(fleet.store), "--no-sync", "--htpasswd", str(htpasswd),
                                     "--token-file", str(tokens)]) as server:
        anonymous = fleet.mirror.run(["trivy-config", "--mirror", server.url, "--out", str(tmp_path / "a")])
        assert "--username/--password or --token" in assert_one_error_line(anonymous, code=1)
        assert not (tmp_path / "a").exists()
        basic = fleet.mirror.run(["trivy-config", "--mirror", server.url, "--username", "scanner", "--out",
                                  str(tmp_path / "b")], env={"TRIVY_MIRROR_CLIENT_PASSWORD": "s3cret-pass"})
        assert basic.returncode == 0, basic.stderr
        repositories = yaml.safe_load((tmp_path / "b" / "repository.yaml").read_text())["repositories"]
        assert [(r["name"], r.get("username")) for r in repositories if r["enabled"]] == [
            ("alpha", "scanner"), ("beta", "scanner")]
        token = fleet.mirror.run(["trivy-config", "--mirror", server.url, "--token", "static-token-for-trivy",
                                  "--format", "flags"])
        assert token.returncode == 0 and "--registry-token static-token-for-trivy" in token.stdout


def test_a_trivy_cache_naming_the_mirror_refreshes_vex_from_it(tmp_path: Path, fleets: Callable[[str], Fleet]) -> None:
    """trivy-cache --mirror: once update_interval passes, Trivy asks the mirror (a 304 for 0.76, thanks to the
    cached ETag; the whole archive for 0.67), never the upstream, and the suppression holds."""
    fleet = fleets("renamed")
    [name] = fleet.vex
    cache_dir = tmp_path / "trivy-cache"
    written = fleet.mirror.run(["trivy-cache", str(cache_dir), "--store", str(fleet.store), "--mirror",
                                fleet.server.url])
    assert written.returncode == 0, written.stderr
    configured = yaml.safe_load((cache_dir / "vex" / "repository.yaml").read_text())["repositories"]
    assert configured[0] == {"name": name, "url": f"{fleet.server.url}/vex/{name}", "enabled": True}
    archive = f'"GET /vex/{name}/archive.tar.gz"'
    for version in ("0.67.2", "0.76.0"):
        home = tmp_path / f"home-{version}"
        (home / ".local" / "share" / ".trivy" / "vex").mkdir(parents=True)
        shutil.copyfile(cache_dir / "vex" / "repository.yaml", home / ".local" / "share" / ".trivy" / "vex" /
                        "repository.yaml")
        copy = tmp_path / f"cache-{version}"
        shutil.copytree(cache_dir, copy)
        trivy = TrivySandbox(copy, home, trivy_binary(version), scan_flags=False)
        expire_vex_cache(trivy, name)
        before = fleet.server.log().count(archive)
        report = trivy.scan(["fs", "--scanners", "vuln", "--skip-db-update", "--offline-scan", "--vex", "repo",
                             "--show-suppressed", str(fleet.assets.targets.requirements_dir)])
        assert suppressed(report) == {PIP_CVE} and vuln_ids(report) == set(), version
        answers = [line for line in fleet.server.log().splitlines() if archive in line][before:]
        wanted = " 304 " if version == "0.76.0" else " 200 "
        assert any(wanted in line and f"trivy/{version}" in line for line in answers), (version, answers)
