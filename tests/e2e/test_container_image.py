"""The container image, built for real from deploy/Containerfile by deploy/image/build.sh (mmdebstrap + buildah,
no base image pulled) and run with ``buildah run``: it starts as its non-root user, syncs from a registry, serves,
and travels through the project's own ``serve --allow-push`` and back with skopeo, digest for digest.

``buildah run`` (chroot isolation) shares the host's network, so the image reaches the loopback registries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from support.cli import MirrorCli
from support.registry import RegistryProcess, free_port
from support.serve import ServeProcess

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BUILDAH_ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
USER, PASSWORD = "publisher", "image-pass"


def buildah(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False,
                            env={**os.environ, **BUILDAH_ENV})
    assert result.returncode == 0, f"buildah {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def skopeo(*args: str) -> bytes:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.fixture(scope="module")
def image_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OCI archive build.sh writes (the image also stays in buildah's storage)."""
    archive = tmp_path_factory.mktemp("image") / "trivy-mirror.oci.tar"
    result = subprocess.run(["bash", "deploy/image/build.sh", str(archive)], cwd=REPO, capture_output=True,
                            text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    return archive


@pytest.fixture
def container(image_archive: Path) -> Iterator[str]:
    """A working container of the built image; removed afterwards."""
    name = buildah("from", "--pull-never", f"oci-archive:{image_archive}")
    try:
        yield name
    finally:
        buildah("rm", name)


def test_image_runs_as_its_user_and_prints_the_version(container: str) -> None:
    assert buildah("run", container, "--", "id", "-u") == "10001"
    assert buildah("run", container, "--", "trivy-mirror", "--version").startswith("trivy-mirror, version ")
    config = json.loads(buildah("inspect", "--type", "container", container))["OCIv1"]["config"]
    assert config["Entrypoint"] == ["trivy-mirror"]
    assert "/var/lib/trivy-mirror" in config["Volumes"]


def test_image_syncs_from_a_registry_and_serves(container: str, upstream: RegistryProcess) -> None:
    synced = subprocess.run(
        ["buildah", "run", container, "--", "trivy-mirror", "sync", "--from", f"{upstream.host}/aquasec"],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **BUILDAH_ENV})
    assert synced.returncode == 0, synced.stderr
    port = free_port()
    serve = subprocess.Popen(
        ["buildah", "run", container, "--", "trivy-mirror", "serve", "--no-sync", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **BUILDAH_ENV},
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        status = None
        while status != 200:
            assert serve.poll() is None, serve.stderr.read().decode() if serve.stderr else ""
            assert time.monotonic() < deadline, "serve in the image never answered"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/aquasec/trivy-db/manifests/2",
                                            timeout=5) as response:
                    status = response.status
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)


def test_image_travels_through_the_mirrors_own_registry(image_archive: Path, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()}\n")
    cli = MirrorCli(tmp_path / "home")
    server = ServeProcess(cli, ["--no-sync", "--store", str(tmp_path / "store"), "--htpasswd", str(htpasswd),
                                "--allow-push", "--push-user", USER]).start()
    try:
        creds = f"{USER}:{PASSWORD}"
        target = f"docker://{server.host}/tools/trivy-mirror:0.1.0"
        skopeo("copy", "--dest-creds", creds, "--dest-tls-verify=false", f"oci-archive:{image_archive}", target)
        pulled = tmp_path / "pulled"
        skopeo("copy", "--src-creds", creds, "--src-tls-verify=false", target, f"oci:{pulled}:0.1.0")
        original = skopeo("inspect", "--raw", f"oci-archive:{image_archive}")
        assert skopeo("inspect", "--raw", "--creds", creds, "--tls-verify=false", target) == original
        assert skopeo("inspect", "--raw", f"oci:{pulled}:0.1.0") == original
    finally:
        server.stop()
