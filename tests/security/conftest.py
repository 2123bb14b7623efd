"""Fixtures of the security suite: ``serve`` as a real process with users of both roles, tokens and a store
holding the DB synced from the session's upstream registry.

Every test replays one attack from the adversarial review against it on loopback and asserts the fixed
behaviour; each is bounded in requests and time so the whole suite stays well under a minute and a half.
"""

from __future__ import annotations

import base64
import http.client
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryProcess
from support.serve import ServeProcess

ROBOT, ROBOT_PASSWORD = "robot", "robot-pushes-dbs"
SCANNER, SCANNER_PASSWORD = "scanner", "scanner-only-reads"
AUDITOR, AUDITOR_PASSWORD = "auditor", "auditor-logs-in-once"
PULL_TOKEN = "pull-token-handed-to-trivy-0123456789"
PUSH_TOKEN = "push-token-for-the-feeder-9876543210"
BCRYPT_COST = 11
"""About 0.1 s a check, near what ``htpasswd -B`` costs on a server: slow enough for a flood to queue."""


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_htpasswd(path: Path, users: Mapping[str, str], cost: int = BCRYPT_COST) -> Path:
    """An htpasswd file written by Apache's own ``htpasswd -B`` tool."""
    path.write_text("")
    for user, password in users.items():
        subprocess.run(["htpasswd", "-bB", "-C", str(cost), str(path), user, password], check=True,
                       capture_output=True)
    return path


@dataclass
class Served:
    """A running ``serve`` and what it was started with."""

    process: ServeProcess
    store: Path
    htpasswd: Path
    db_digest: str

    @property
    def port(self) -> int:
        return self.process.port

    def served_digest(self) -> str:
        """The digest of ``aquasec/trivy-db:2`` as a scanner sees it."""
        status, headers, _ = self.request("HEAD", "/v2/aquasec/trivy-db/manifests/2",
                                          headers={"Authorization": basic(SCANNER, SCANNER_PASSWORD)})
        assert status == 200
        return headers["docker-content-digest"]

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None,
                source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="session")
def synced_store(tmp_path_factory: pytest.TempPathFactory, upstream: RegistryProcess) -> Path:
    """A store holding ``aquasec/trivy-db:2`` synced from the session's upstream by the CLI."""
    root = tmp_path_factory.mktemp("security-store")
    cli = MirrorCli(root / "home")
    store = root / "store"
    result = cli.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db"])
    assert result.returncode == 0, result.stderr
    return store


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, synced_store: Path) -> Iterator[Served]:
    """``serve --allow-push --push-user robot`` with a pull-only user, a pull token and a push token."""
    root = tmp_path_factory.mktemp("security-serve")
    htpasswd = write_htpasswd(root / "htpasswd", {ROBOT: ROBOT_PASSWORD, SCANNER: SCANNER_PASSWORD,
                                                  AUDITOR: AUDITOR_PASSWORD})
    tokens = root / "tokens"
    tokens.write_text(f"# scanners\n{PULL_TOKEN}\n# the feeder\n{PUSH_TOKEN} push\n")
    process = ServeProcess(MirrorCli(root / "home"), [
        "--store", str(synced_store), "--no-sync", "--assets", "db", "--htpasswd", str(htpasswd),
        "--token-file", str(tokens), "--allow-push", "--push-user", ROBOT])
    with process:
        served = Served(process, synced_store, htpasswd, "")
        served.db_digest = served.served_digest()
        yield served


@pytest.fixture
def upstream_host(upstream: RegistryProcess) -> str:
    return upstream.host


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    return MirrorCli(tmp_path / "mirror-home")
