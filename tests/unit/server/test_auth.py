"""The auth matrix: challenge, Basic, the token flow Trivy follows, static tokens, anonymous pull."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from pathlib import Path

import bcrypt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from trivy_mirror.errors import UsageError
from trivy_mirror.server.app import create_app
from trivy_mirror.server.settings import ServerSettings
from trivy_mirror.server.watch import CHECK_INTERVAL
from trivy_mirror.store import Store

from .conftest import PASSWORD, PULL_PASSWORD, PULL_USER, PUSH_TOKEN, STATIC_TOKEN, USER, ClientFactory
from .helpers import Artifact, basic, bearer, error_codes

Client = TestClient[web.Request, web.Application]


def pull_paths(db: Artifact) -> list[str]:
    return ["/v2/", "/v2/_catalog", "/v2/aquasec/trivy-db/tags/list", "/v2/aquasec/trivy-db/manifests/2",
            f"/v2/aquasec/trivy-db/blobs/{db.layer_digest}", "/v2/aquasec/nothing/manifests/2",
            "/v2/Bad Name/manifests/2", "/v2/whatever/endpoint"]


async def token_for(client: Client, headers: dict[str, str]) -> str:
    response = await client.get("/token", params={"service": "x", "scope": "repository:aquasec/trivy-db:pull"},
                                headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    return str(body["token"])


async def test_every_route_needs_credentials(make_client: ClientFactory, htpasswd: Path, db: Artifact) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    for path in pull_paths(db):
        for method in ("GET", "HEAD"):
            response = await client.request(method, path)
            assert response.status == 401, (method, path)
            challenge = response.headers["WWW-Authenticate"]
            host = f"127.0.0.1:{client.port}"
            assert challenge.startswith(f'Bearer realm="http://{host}/token",service="{host}"'), challenge
    response = await client.get("/v2/aquasec/trivy-db/manifests/2")
    assert error_codes(await response.read()) == ["UNAUTHORIZED"]
    assert 'scope="repository:aquasec/trivy-db:pull"' in response.headers["WWW-Authenticate"]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status == 200, path


async def test_basic_credentials_on_every_request(make_client: ClientFactory, htpasswd: Path, db: Artifact) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    for path in pull_paths(db)[:5]:
        response = await client.get(path, headers=basic(USER, PASSWORD))
        assert response.status == 200, path
    response = await client.get("/v2/", headers=basic(USER, "wrong"))
    assert (response.status, error_codes(await response.read())) == (401, ["UNAUTHORIZED"])
    response = await client.get("/v2/", headers=basic("mallory", PASSWORD))
    assert response.status == 401
    response = await client.get("/v2/", headers=basic(PULL_USER, PASSWORD))  # another user's password
    assert response.status == 401


async def test_token_flow_as_trivy_does_it(make_client: ClientFactory, htpasswd: Path, db: Artifact) -> None:
    """GET /v2/ → 401 Bearer challenge → GET realm with Basic → Bearer on the pulls."""
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    challenge = (await client.get("/v2/")).headers["WWW-Authenticate"]
    realm = challenge.split('realm="')[1].split('"')[0]
    assert realm == f"http://127.0.0.1:{client.port}/token"
    token = await token_for(client, basic(USER, PASSWORD))
    for path in pull_paths(db)[:5]:
        assert (await client.get(path, headers=bearer(token))).status == 200, path
    response = await client.get("/v2/", headers=bearer(token + "x"))
    assert response.status == 401
    response = await client.get("/v2/", headers=bearer("tm1.e30.AAAA"))
    assert response.status == 401


async def test_token_endpoint_refusals(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    for headers in ({}, basic(USER, "wrong"), {"Authorization": "Basic !!!"}, bearer("x"),
                    {"Authorization": "Basic " + "bm9jb2xvbg=="}):
        response = await client.get("/token", headers=headers)
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


async def test_token_endpoint_oauth2_password_grant(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    response = await client.post("/token", data={"grant_type": "password", "username": USER, "password": PASSWORD,
                                                 "service": "x", "scope": "repository:a/b:pull"})
    assert response.status == 200
    token = (await response.json())["access_token"]
    assert (await client.get("/v2/", headers=bearer(token))).status == 200
    response = await client.post("/token", data={"grant_type": "password", "username": USER, "password": "no"})
    assert response.status == 401
    response = await client.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert (response.status, (await response.json())["error"]) == (400, "unsupported_grant_type")
    response = await client.post("/token", data={"grant_type": "password"})
    assert response.status == 400
    metrics = await (await client.get("/metrics")).text()
    assert 'trivy_mirror_http_requests_total{method="POST",route="token",status="200"} 1.0' in metrics


async def test_static_tokens(make_client: ClientFactory, token_file: Path, db: Artifact) -> None:
    client = await make_client(ServerSettings(token_file=token_file))
    for path in pull_paths(db)[:5]:
        assert (await client.get(path, headers=bearer(STATIC_TOKEN))).status == 200, path
    assert (await client.get("/v2/", headers=bearer("not-a-token"))).status == 401
    assert (await client.get("/v2/", headers=bearer("# tokens"))).status == 401
    # Basic credentials cannot work without an htpasswd file.
    assert (await client.get("/v2/", headers=basic(USER, PASSWORD))).status == 401


async def test_token_file_is_reread_when_it_changes(make_client: ClientFactory, token_file: Path) -> None:
    client = await make_client(ServerSettings(token_file=token_file))
    assert (await client.get("/v2/", headers=bearer(STATIC_TOKEN))).status == 200
    await asyncio.to_thread(token_file.write_text, "rotated-token\n")
    await asyncio.sleep(CHECK_INTERVAL + 0.05)
    assert (await client.get("/v2/", headers=bearer("rotated-token"))).status == 200
    assert (await client.get("/v2/", headers=bearer(STATIC_TOKEN))).status == 401


async def test_anonymous_pull(make_client: ClientFactory, htpasswd: Path, db: Artifact) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, anonymous_pull=True, allow_push=True,
                                              push_users=frozenset({USER})))
    for path in pull_paths(db)[1:5]:
        assert (await client.get(path)).status == 200, path
        assert (await client.head(path)).status == 200, path
    # The ping still challenges, so clients with credentials learn the realm; anonymous clients get a pull token.
    assert (await client.get("/v2/")).status == 401
    token = await token_for(client, {})
    assert (await client.get("/v2/", headers=bearer(token))).status == 200
    # Writes need real credentials: none → 401, a pull-only token → 403.
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/")
    assert (response.status, error_codes(await response.read())) == (401, ["UNAUTHORIZED"])
    assert 'scope="repository:aquasec/trivy-db:pull,push"' in response.headers["WWW-Authenticate"]
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=bearer(token))
    assert (response.status, error_codes(await response.read())) == (403, ["DENIED"])
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=basic(USER, PASSWORD))
    assert response.status == 202
    # Wrong credentials are refused even where anonymous access would do.
    assert (await client.get("/v2/aquasec/trivy-db/tags/list", headers=basic(USER, "wrong"))).status == 401


async def test_push_with_user_token(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER})))
    token = await token_for(client, basic(USER, PASSWORD))
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=bearer(token))
    assert response.status == 202


async def test_no_push_without_allow_push_even_authenticated(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=basic(USER, PASSWORD))
    assert (response.status, error_codes(await response.read())) == (405, ["UNSUPPORTED"])
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/")
    assert response.status == 401


async def test_public_url_sets_the_realm(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, public_url="https://mirror.example:8443/"))
    challenge = (await client.get("/v2/")).headers["WWW-Authenticate"]
    assert challenge == 'Bearer realm="https://mirror.example:8443/token",service="mirror.example:8443"'


async def test_bad_host_header_falls_back_to_listen_address(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, listen="[::1]:5000"))
    response = await client.get("/v2/", headers={"Host": 'evil"host'})
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="http://[::1]:5000/token"')


async def test_no_auth_has_no_token_endpoint(make_client: ClientFactory) -> None:
    client = await make_client()
    assert (await client.get("/token")).status == 404


async def test_failures_are_logged_without_secrets(make_client: ClientFactory, htpasswd: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    with caplog.at_level(logging.INFO):
        await client.get("/v2/", headers=basic(USER, "hunter2-wrong"))
        await client.get("/v2/", headers=bearer("secret-bearer-value"))
        await client.get("/v2/", headers=basic(USER, PASSWORD))
        await client.get("/token", headers=basic(USER, "another-wrong-one"))
    text = caplog.text
    assert "authentication failed" in text
    assert USER in text
    for secret in ("hunter2-wrong", "secret-bearer-value", PASSWORD, "another-wrong-one"):
        assert secret not in text


async def test_successful_checks_are_cached(make_client: ClientFactory, htpasswd: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from trivy_mirror.server import htpasswd as module

    calls = []
    original = module._checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(1)
        return original(password, hashed)

    monkeypatch.setattr(module, "_checkpw", counting)
    client = await make_client(ServerSettings(htpasswd=htpasswd))
    for _ in range(5):
        assert (await client.get("/v2/", headers=basic(USER, PASSWORD))).status == 200
    assert len(calls) == 1
    for _ in range(3):
        assert (await client.get("/v2/", headers=basic(USER, "wrong"))).status == 401
    assert len(calls) == 2  # a failure is remembered briefly, and never as a success


@pytest.fixture
def htpasswd_by_tool(tmp_path: Path) -> Path:
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd (apache2-utils) is not installed")
    path = tmp_path / "htpasswd-tool"
    subprocess.run(["htpasswd", "-cbB", "-C", "5", str(path), "carol", "pw with spaces"], check=True,
                   capture_output=True)
    return path


async def test_file_written_by_htpasswd_tool(make_client: ClientFactory, htpasswd_by_tool: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd_by_tool))
    assert (await client.get("/v2/", headers=basic("carol", "pw with spaces"))).status == 200


@pytest.fixture
def long_password_htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd-long"
    path.write_text(f"dave:{bcrypt.hashpw(('p' * 72).encode(), bcrypt.gensalt(4)).decode()}\n")
    return path


async def test_long_password_is_checked_like_htpasswd(make_client: ClientFactory,
                                                      long_password_htpasswd: Path) -> None:
    """bcrypt only reads 72 bytes; bcrypt>=5 raises for longer input instead: never a 500."""
    password = "p" * 100
    client = await make_client(ServerSettings(htpasswd=long_password_htpasswd))
    assert (await client.get("/v2/", headers=basic("dave", password))).status == 200
    assert (await client.get("/v2/", headers=basic("dave", "q" * 100))).status == 401


def test_missing_credential_files_are_usage_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        create_app(ServerSettings(htpasswd=tmp_path / "missing"), store)
    with pytest.raises(UsageError, match="cannot read"):
        create_app(ServerSettings(token_file=tmp_path / "missing"), store)


PUSH_ROUTES = [
    ("POST", "/v2/aquasec/trivy-db/blobs/uploads/"),
    ("POST", "/v2/aquasec/trivy-db/blobs/uploads/?digest=sha256:" + "a" * 64),
    ("POST", "/v2/aquasec/trivy-db/blobs/uploads/?mount=sha256:" + "a" * 64 + "&from=team/tool"),
    ("PATCH", "/v2/aquasec/trivy-db/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("PUT", "/v2/aquasec/trivy-db/blobs/uploads/00000000-0000-0000-0000-000000000000?digest=sha256:" + "a" * 64),
    ("PUT", "/v2/aquasec/trivy-db/manifests/2"),
    ("PUT", "/v2/aquasecurity/trivy-db/manifests/2"),
    ("DELETE", "/v2/aquasec/trivy-db/blobs/uploads/00000000-0000-0000-0000-000000000000"),
]


async def test_only_push_users_and_push_tokens_may_push(make_client: ClientFactory, htpasswd: Path,
                                                       token_file: Path) -> None:
    """Credentials handed to scanners pull; pushing needs a named push user or a token marked ``push``."""
    client = await make_client(ServerSettings(htpasswd=htpasswd, token_file=token_file, allow_push=True,
                                              push_users=frozenset({USER})))
    pull_token = await token_for(client, basic(PULL_USER, PULL_PASSWORD))
    for headers in (basic(PULL_USER, PULL_PASSWORD), bearer(pull_token), bearer(STATIC_TOKEN)):
        for method, path in PUSH_ROUTES:
            response = await client.request(method, path, headers=headers)
            assert (response.status, error_codes(await response.read())) == (403, ["DENIED"]), (method, path)
        assert (await client.get("/v2/", headers=headers)).status == 200
    push_token = await token_for(client, basic(USER, PASSWORD))
    for headers in (basic(USER, PASSWORD), bearer(push_token), bearer(PUSH_TOKEN)):
        response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=headers)
        assert response.status == 202, headers


async def test_push_marks_mean_nothing_without_allow_push(make_client: ClientFactory, token_file: Path) -> None:
    client = await make_client(ServerSettings(token_file=token_file))
    response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=bearer(PUSH_TOKEN))
    assert (response.status, error_codes(await response.read())) == (405, ["UNSUPPORTED"])


def test_push_settings_are_checked(store: Store, htpasswd: Path, token_file: Path) -> None:
    with pytest.raises(UsageError, match="--push-user"):
        create_app(ServerSettings(htpasswd=htpasswd, allow_push=True), store)
    with pytest.raises(UsageError, match="needs --allow-push"):
        create_app(ServerSettings(htpasswd=htpasswd, push_users=frozenset({USER})), store)
    create_app(ServerSettings(token_file=token_file, allow_push=True), store)


def test_token_file_syntax(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("good-token push\nsecret-value pull\n")
    with pytest.raises(UsageError, match="line 2: expected TOKEN or 'TOKEN push'") as raised:
        create_app(ServerSettings(token_file=path), store)
    assert "secret-value" not in str(raised.value)
