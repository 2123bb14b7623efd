"""Each side of a sync has its own TLS settings, and a scheme in ``--from``/``--to`` is honoured.

The source is a real docker-registry over TLS with a certificate from a private CA the system does not trust;
the destination a plain-HTTP docker-registry. Relaxing the destination (``--dest-insecure``) must leave the
source's certificate check on; trusting the CA for the source only (``--src-ca-file``) is what lets it through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.tls import make_tls
from support.trivy_assets import DB_REPOSITORY, AssetSet


@pytest.fixture
def tls_upstream(tmp_path: Path, registry: RegistryFactory, assets: AssetSet) -> tuple[RegistryProcess, Path]:
    """(an upstream holding the DB, served over https only; the CA that signed its certificate)."""
    process = registry()
    push_artifact(process.host, DB_REPOSITORY, "2", assets.db)
    ca, cert, key = make_tls(tmp_path)
    process.stop()
    process.tls = (cert, key)
    process.start()
    return process, ca


def test_dest_insecure_does_not_relax_the_source(mirror: MirrorCli, tls_upstream: tuple[RegistryProcess, Path],
                                                 registry: RegistryFactory, assets: AssetSet) -> None:
    upstream, ca = tls_upstream
    destination = registry()
    sync = ["sync", "--assets", "db", "--from", f"{upstream.host}/aquasec", "--to", f"{destination.host}/mirror"]

    refused = mirror.run([*sync, "--dest-insecure"])
    line = assert_one_error_line(refused)
    assert "certificate" in line and upstream.host in line, refused.stderr
    assert destination.requests_log() == [] or all("trivy-db" not in path for _, path in destination.requests_log())

    accepted = mirror.run([*sync, "--src-ca-file", str(ca)])
    assert accepted.returncode == 0, accepted.stderr
    assert any(method == "PUT" and path == f"/v2/mirror/{DB_REPOSITORY}/manifests/2"
               for method, path in destination.requests_log())


def test_https_scheme_in_from_never_falls_back_to_plain_http(mirror: MirrorCli,
                                                             private_upstream: RegistryProcess) -> None:
    before = len(private_upstream.requests_log())
    result = mirror.run(["sync", "--assets", "db", "--from", f"https://{private_upstream.host}/aquasec",
                         "--store", str(mirror.home / "store")])
    line = assert_one_error_line(result)
    assert private_upstream.host in line and "does not speak TLS" in line, result.stderr
    assert private_upstream.requests_log()[before:] == []


def test_http_scheme_in_to_names_plain_http_for_that_host(mirror: MirrorCli, private_upstream: RegistryProcess,
                                                           registry: RegistryFactory) -> None:
    destination = registry()
    result = mirror.run(["sync", "--assets", "db", "--from", f"http://{private_upstream.host}/aquasec",
                         "--to", f"http://{destination.host}/mirror"])
    assert result.returncode == 0, result.stderr
    assert any(path == f"/v2/mirror/{DB_REPOSITORY}/manifests/2" for _, path in destination.requests_log())


def test_copy_honours_the_scheme_of_each_end(mirror: MirrorCli, private_upstream: RegistryProcess,
                                             registry: RegistryFactory) -> None:
    destination = registry()
    source = f"{private_upstream.host}/{DB_REPOSITORY}:2"
    refused = mirror.run(["copy", f"https://{source}", f"{destination.host}/copied/trivy-db:2"])
    assert "does not speak TLS" in assert_one_error_line(refused), refused.stderr
    copied = mirror.run(["copy", f"http://{source}", f"http://{destination.host}/copied/trivy-db:2"])
    assert copied.returncode == 0, copied.stderr
