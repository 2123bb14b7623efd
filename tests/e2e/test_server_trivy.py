"""The embedded server end to end: a real Trivy pulls every asset from it (anonymously, through the token flow
with htpasswd users, with a static ``--registry-token``, through ``registry.mirrors``), and skopeo pushes to it.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import bcrypt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.trivy import TrivySandbox, misconfig_ids, vuln_ids
from support.trivy_assets import (
    CHECK_ID,
    CHECKS_REPOSITORY,
    MAVEN_CVE,
    PIP_CVE,
    Artifact,
    AssetSet,
)
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor
from trivy_mirror.server.runner import serve
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.store import Store

pytestmark = pytest.mark.e2e

USER, PASSWORD = "scanner", "correct-horse-battery"  # Trivy splits TRIVY_PASSWORD on spaces and commas
TOKEN = "static-token-for-trivy"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _fill(store: Store, assets: AssetSet) -> None:
    for repository, tag, artifact in assets.upstream_tags():
        layout = store.layout(repository)
        for blob in (artifact.config, *artifact.layers):
            descriptor = Descriptor("application/octet-stream", Digest.of(blob), len(blob))
            await layout.push_blob(descriptor, _chunks(blob))
        await layout.tag(tag, ManifestBytes(artifact.manifest, artifact.media_type))


class ServerThread:
    """``serve()`` on a free loopback port, in a thread with its own event loop (Trivy runs in the test's)."""

    def __init__(self, settings: ServerSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def _run(self) -> None:
        def started(url: str) -> None:
            self.url = url
            self._started.set()

        self._task = self._loop.create_task(serve(self.settings, self.store, lambda: [], None, on_started=started))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._started.set()
            self._loop.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._started.wait(30) and self.url, "the server did not start"
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory, assets: AssetSet) -> Store:
    store = Store(tmp_path_factory.mktemp("served") / "store")
    asyncio.run(_fill(store, assets))
    return store


@pytest.fixture
def credentials(tmp_path: Path) -> tuple[Path, Path]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()}\n")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    return htpasswd, tokens


@pytest.fixture
def open_server(filled_store: Store) -> Iterator[ServerThread]:
    with ServerThread(ServerSettings(listen="127.0.0.1:0"), filled_store) as server:
        yield server


@pytest.fixture
def auth_server(filled_store: Store, credentials: tuple[Path, Path]) -> Iterator[ServerThread]:
    htpasswd, tokens = credentials
    with ServerThread(ServerSettings(listen="127.0.0.1:0", htpasswd=htpasswd, token_file=tokens),
                      filled_store) as server:
        yield server


def scan_all(trivy: TrivySandbox, assets: AssetSet, base: str, extra: list[str] | None = None,
             env: dict[str, str] | None = None) -> None:
    """DB, Java DB and checks bundle, each pulled from ``base`` and each proven by its planted finding."""
    extra = extra or []
    fs = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{base}/aquasec/trivy-db:2", *extra,
                     str(assets.targets.requirements_dir)], env=env)
    assert vuln_ids(fs) == {PIP_CVE}
    rootfs = trivy.scan(["rootfs", "--scanners", "vuln", "--skip-db-update",
                         "--java-db-repository", f"{base}/aquasec/trivy-java-db:1", *extra,
                         str(assets.targets.rootfs_dir)], env=env)
    assert vuln_ids(rootfs) == {MAVEN_CVE}
    config = trivy.scan(["config", "--checks-bundle-repository", f"{base}/aquasec/trivy-checks:2", *extra,
                         str(assets.targets.dockerfile_dir)], env=env)
    assert CHECK_ID in misconfig_ids(config)


def test_trivy_pulls_every_asset(open_server: ServerThread, assets: AssetSet, trivy: TrivySandbox) -> None:
    scan_all(trivy, assets, open_server.host)


def test_trivy_pulls_through_the_ghcr_alias(open_server: ServerThread, assets: AssetSet,
                                             trivy: TrivySandbox) -> None:
    fs = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{open_server.host}/aquasecurity/trivy-db:2",
                     str(assets.targets.requirements_dir)])
    assert vuln_ids(fs) == {PIP_CVE}


def test_trivy_follows_the_token_flow(auth_server: ServerThread, assets: AssetSet, trivy: TrivySandbox) -> None:
    scan_all(trivy, assets, auth_server.host, env={"TRIVY_USERNAME": USER, "TRIVY_PASSWORD": PASSWORD})
    assert _requests(auth_server, "token", 200) >= 3  # one token per pull: the Bearer flow, not Basic


def test_trivy_anonymous_pull_gets_a_pull_token(filled_store: Store, credentials: tuple[Path, Path],
                                                 assets: AssetSet, trivy: TrivySandbox) -> None:
    settings = ServerSettings(listen="127.0.0.1:0", htpasswd=credentials[0], anonymous_pull=True)
    with ServerThread(settings, filled_store) as server:
        fs = trivy.scan(["fs", "--scanners", "vuln", "--db-repository", f"{server.host}/aquasec/trivy-db:2",
                         str(assets.targets.requirements_dir)])
        assert vuln_ids(fs) == {PIP_CVE}
        assert _requests(server, "token", 200) >= 1


def test_trivy_static_registry_token(auth_server: ServerThread, assets: AssetSet, trivy: TrivySandbox) -> None:
    fs = trivy.scan(["fs", "--scanners", "vuln", "--registry-token", TOKEN,
                     "--db-repository", f"{auth_server.host}/aquasec/trivy-db:2", str(assets.targets.requirements_dir)])
    assert vuln_ids(fs) == {PIP_CVE}


def test_trivy_without_credentials_is_refused(auth_server: ServerThread, assets: AssetSet,
                                              trivy: TrivySandbox) -> None:
    result = trivy.run(["fs", "--scanners", "vuln", "--db-repository", f"{auth_server.host}/aquasec/trivy-db:2",
                        str(assets.targets.requirements_dir)])
    assert result.returncode != 0
    assert "UNAUTHORIZED" in result.stderr


def test_trivy_registry_mirrors_redirect_the_defaults(open_server: ServerThread, assets: AssetSet,
                                                      trivy: TrivySandbox, tmp_path: Path) -> None:
    """One ``registry.mirrors`` line sends Trivy's default DB pull (mirror.gcr.io/aquasec/...) to the mirror."""
    config = tmp_path / "trivy.yaml"
    config.write_text(f"registry:\n  mirrors:\n    mirror.gcr.io:\n      - {open_server.host}\n")
    result = trivy.run(["fs", "--config", str(config), "--scanners", "vuln", "--format", "json",
                        str(assets.targets.requirements_dir)])
    assert result.returncode == 0, result.stderr
    assert "Using the mirror registry" in result.stderr


def test_skopeo_pushes_and_reads_back(filled_store: Store, credentials: tuple[Path, Path], assets: AssetSet,
                                      tmp_path: Path) -> None:
    store = Store(tmp_path / "push-store")
    htpasswd, _ = credentials
    source = _oci_dir(filled_store, CHECKS_REPOSITORY)
    settings = ServerSettings(listen="127.0.0.1:0", htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER}))
    with ServerThread(settings, store) as server:
        creds = f"{USER}:{PASSWORD}"
        _skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false", f"oci:{source}:2",
                f"docker://{server.host}/pushed/trivy-checks:2")
        raw = _skopeo("inspect", "--raw", "--creds", creds, "--tls-verify=false",
                      f"docker://{server.host}/pushed/trivy-checks:2")
        assert raw == _artifact(assets, CHECKS_REPOSITORY, "2").manifest
        # A second copy finds every blob already there (HEAD) and only re-puts the manifest.
        _skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false", f"oci:{source}:2",
                f"docker://{server.host}/pushed/trivy-checks:2")
    assert store.layout("pushed/trivy-checks").tags()["2"].digest == Digest.parse(
        _artifact(assets, CHECKS_REPOSITORY, "2").digest)


def _requests(server: ServerThread, route: str, status: int) -> float:
    """How many requests of a route the server answered with a status, from its /metrics."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "trivy_mirror_http_requests_total" and sample.labels["route"] == route
               and sample.labels["status"] == str(status))


def _oci_dir(store: Store, repository: str) -> Path:
    return store.layout(repository).path


def _artifact(assets: AssetSet, repository: str, tag: str) -> Artifact:
    return next(a for r, t, a in assets.upstream_tags() if (r, t) == (repository, tag))


def _skopeo(*args: str) -> bytes:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout
