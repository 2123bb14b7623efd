"""Session fixtures: real Trivy assets, a real upstream registry holding them, fresh registries, Trivy sandboxes.

The helpers live in ``tests/support`` (importable as ``support`` because pytest puts ``tests/`` on ``sys.path``
for this rootdir conftest).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.registry import Auth, RegistryFactory, RegistryProcess, push_artifact
from support.trivy import TrivySandbox
from support.trivy_assets import AssetSet, build_asset_set

REQUIRED_TOOLS = ("docker-registry", "skopeo", "htpasswd", "openssl", "trivy", "git", "buildah", "mmdebstrap",
                  "prometheus", "promtool", "nginx", "chromium", "groff", "ss")
"""What scripts/test.sh installs; a test that needs one fails rather than skips, so the session refuses to start."""


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.exit(f"not on PATH: {', '.join(missing)}; run bash scripts/test.sh, which installs them", returncode=4)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> AssetSet:
    """The planted artifacts (DB, Java DB, checks bundle :2 and :1) and the scan targets, built once."""
    return build_asset_set(tmp_path_factory.mktemp("targets"))


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory, assets: AssetSet) -> Iterator[RegistryProcess]:
    """A registry playing upstream, with ``aquasec/trivy-db:2``, ``aquasec/trivy-java-db:1`` and
    ``aquasec/trivy-checks:2`` / ``:1`` pushed. Shared by the whole session: treat it as read-only and use the
    ``registry`` fixture to push anything else.
    """
    with RegistryProcess(tmp_path_factory.mktemp("upstream")) as process:
        for repository, tag, artifact in assets.upstream_tags():
            push_artifact(process.host, repository, tag, artifact)
        yield process


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """A factory of fresh, empty registries, ``registry(auth=("user", "password"))`` for htpasswd auth.

    Every registry started through it is stopped when the test ends.
    """
    started: list[RegistryProcess] = []

    def start(*, auth: Auth | None = None) -> RegistryProcess:
        process = RegistryProcess(tmp_path_factory.mktemp("registry"), auth=auth)
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture
def trivy(tmp_path: Path) -> TrivySandbox:
    """A Trivy sandbox (empty cache dir and home) for this test."""
    return TrivySandbox(cache_dir=tmp_path / "trivy-cache", home=tmp_path / "trivy-home")
