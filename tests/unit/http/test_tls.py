"""TLS: verified by default, a private CA via ``ca_file``, ``insecure``; and proxy selection."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from tests.unit.registry.conftest import MakeClient, Serve
from tests.unit.registry.fake_registry import FakeRegistry
from yarl import URL

from trivy_mirror.errors import Unreachable, UsageError
from trivy_mirror.http.transport import Transport


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.pem",
             "-days", "2", "-subj", "/CN=trivy-mirror test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "server.key", "-out", d / "server.csr",
             "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
             "-CAcreateserial", "-out", d / "server.pem", "-days", "2", "-extfile", d / "ext.cnf")
    return d


@pytest.fixture
async def tls_host(fake: FakeRegistry, serve: Serve, pki: Path) -> str:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    server = await serve(fake.app(), ssl=context)
    return f"127.0.0.1:{server.port}"


async def test_unknown_ca_fails_without_plain_http_fallback(tls_host: str, make_client: MakeClient,
                                                            fake: FakeRegistry) -> None:
    client = make_client(tls_host)
    with pytest.raises(Unreachable, match=f"^cannot reach {tls_host}: TLS certificate verification failed: .*"
                                          r"\(GET /v2/\)$"):
        await client.ping()
    assert str(await client.base_url()) == f"https://{tls_host}"
    assert client.requests == 2  # the probe and one attempt: certificate errors are not retried
    assert not fake.seen


async def test_private_ca_file(tls_host: str, make_client: MakeClient, pki: Path, fake: FakeRegistry) -> None:
    client = make_client(tls_host, ca_file=pki / "ca.pem")
    await client.ping()
    assert str(await client.base_url()) == f"https://{tls_host}"
    assert len(fake.seen) == 2  # the probe reached the app over https


async def test_insecure_skips_verification(tls_host: str, make_client: MakeClient) -> None:
    client = make_client(tls_host, insecure=True)
    await client.ping()
    assert str(await client.base_url()) == f"https://{tls_host}"


def test_missing_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot use CA file"):
        Transport(ca_file=tmp_path / "nope.pem")


def test_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "registry.internal")
    transport = Transport()
    assert transport.proxy_for(URL("https://ghcr.io/v2/")) == "http://proxy.internal:3128"
    assert transport.proxy_for(URL("https://registry.internal/v2/")) is None
    assert transport.proxy_for(URL("https://127.0.0.1:5000/v2/")) is None
    assert transport.proxy_for(URL("http://mirror.gcr.io/v2/")) is None
