"""The auth matrix: challenge, Basic, the token flow Trivy follows, static tokens, anonymous pull."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import threading
from pathlib import Path

import bcrypt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from support.clock import FakeClock, settle
from trivy_mirror.errors import UsageError
from trivy_mirror.server.app import create_app
from trivy_mirror.server.errors import OciError
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
    clock = FakeClock()
    client = await make_client(ServerSettings(token_file=token_file), clock=clock)
    assert (await client.get("/v2/", headers=bearer(STATIC_TOKEN))).status == 200
    await asyncio.to_thread(token_file.write_text, "rotated-token\n")
    await clock.advance(CHECK_INTERVAL - 0.1)  # looked at no more than once per interval: still the old file
    assert (await client.get("/v2/", headers=bearer(STATIC_TOKEN))).status == 200
    await clock.advance(0.1)
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


async def test_wrong_passwords_cannot_lock_out_other_clients(htpasswd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One address flooding wrong passwords gets 429 beyond its share; other addresses and known-good
    credentials still log in, and a repeated wrong password costs no bcrypt at all."""
    from trivy_mirror.server import htpasswd as module

    calls: list[bytes] = []
    original = module._checkpw
    gate = threading.Event()  # holds every password check until all the attempts are in the queue

    def slow(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        gate.wait(10)
        return original(password, hashed)

    async def open_gate_once_queued() -> str:
        await settle()  # every attempt started before this task: each is now waiting for a check or refused
        gate.set()
        return "gate"

    monkeypatch.setattr(module, "_checkpw", slow)
    users = module.Htpasswd(htpasswd)
    try:
        gate.set()
        assert await users.verify(USER, PASSWORD, "192.0.2.1")  # known good from now on
        calls.clear()
        gate.clear()

        async def attempt(password: str, client: str) -> str:
            try:
                return "ok" if await users.verify(USER, password, client) else "wrong"
            except OciError as err:
                return err.code

        flood = [attempt(f"guess-{n}", "198.51.100.7") for n in range(40)]
        others = [attempt(PASSWORD, "192.0.2.1"), attempt(PULL_PASSWORD, "203.0.113.9")]
        results = await asyncio.gather(*flood, *others, open_gate_once_queued())
        assert results[:40].count("wrong") == module.MAX_PENDING_PER_CLIENT
        assert results[:40].count("TOOMANYREQUESTS") == 40 - module.MAX_PENDING_PER_CLIENT
        assert results[40] == "ok"  # cached: no bcrypt, no queue
        assert results[41] == "wrong"  # PULL_PASSWORD is not USER's: checked, not refused for load
        calls.clear()
        for _ in range(5):
            assert not await users.verify(USER, "guess-0", "198.51.100.7")
        assert calls == []  # the failure is remembered
    finally:
        users.close()


async def test_password_answers_are_remembered_for_their_ttl(htpasswd: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong password costs one bcrypt per FAILURE_TTL, a right one one per CACHE_TTL; then it is checked
    again (a changed or revoked password takes effect)."""
    from trivy_mirror.server import htpasswd as module

    calls: list[bytes] = []
    original = module._checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return original(password, hashed)

    monkeypatch.setattr(module, "_checkpw", counted)
    clock = FakeClock()
    users = module.Htpasswd(htpasswd, clock)
    try:
        for password, expected, ttl in (("wrong", False, module.FAILURE_TTL), (PASSWORD, True, module.CACHE_TTL)):
            calls.clear()
            assert await users.verify(USER, password, "192.0.2.1") is expected
            await clock.advance(ttl - 0.1)
            assert await users.verify(USER, password, "192.0.2.1") is expected
            assert len(calls) == 1, password
            await clock.advance(0.1)
            assert await users.verify(USER, password, "192.0.2.1") is expected
            assert len(calls) == 2, password
    finally:
        users.close()


@pytest.mark.parametrize(("content", "message"), [
    ("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "line 1 is not a bcrypt entry; create the user again with "
                                                  "htpasswd -B"),
    ("# only a comment\n\nalice:$apr1$abc$def\n", "line 3 is not a bcrypt entry"),
    ("# nobody yet\n", "has no users: add one with htpasswd -B"),
])
def test_htpasswd_without_bcrypt_entries_is_refused_at_start(store: Store, tmp_path: Path, content: str,
                                                             message: str) -> None:
    path = tmp_path / "users"
    path.write_text(content)
    with pytest.raises(UsageError, match=re.escape(message)) as raised:
        create_app(ServerSettings(htpasswd=path), store)
    assert "W6ph5" not in str(raised.value) and "\n" not in str(raised.value)


async def test_deleted_htpasswd_keeps_the_last_good_copy_and_says_so(
        make_client: ClientFactory, htpasswd: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    client = await make_client(ServerSettings(htpasswd=htpasswd), clock=clock)
    assert (await client.get("/v2/", headers=basic(USER, PASSWORD))).status == 200
    await asyncio.to_thread(htpasswd.unlink)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            await clock.advance(CHECK_INTERVAL)
            assert (await client.get("/v2/", headers=basic(PULL_USER, PULL_PASSWORD))).status == 200
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "is missing" in errors[0].getMessage(), caplog.text
    body = await (await client.get("/readyz", headers=basic(USER, PASSWORD))).json()
    assert body["credentials"] == ["the htpasswd file is missing; the last good version stays in force"]
    # A refused replacement (not bcrypt) is the same: logged, the last good copy stays, /readyz says why.
    await asyncio.to_thread(htpasswd.write_text, "alice:plaintext\n")
    await clock.advance(CHECK_INTERVAL)
    assert (await client.get("/v2/", headers=basic(USER, PASSWORD))).status == 200
    body = await (await client.get("/readyz", headers=basic(USER, PASSWORD))).json()
    assert "line 1 is not a bcrypt entry" in body["credentials"][0]
    # An empty file is a deliberate "nobody": it is accepted and locks everyone out.
    await asyncio.to_thread(htpasswd.write_text, "# revoked\n")
    await clock.advance(CHECK_INTERVAL)
    assert (await client.get("/v2/", headers=basic(USER, PASSWORD))).status == 401


async def test_readyz_without_credentials_shows_only_states(make_client: ClientFactory, htpasswd: Path) -> None:
    """Probes need no credentials, but sources, sync errors and digests are for authenticated eyes only."""
    from trivy_mirror.catalog.freshness import AssetStatus

    row = AssetStatus("db", "aquasec/trivy-db:2", digest="sha256:" + "a" * 64, source="upstream.internal:5000",
                      last_result="error: cannot reach upstream.internal:5000", state="stale")
    client = await make_client(ServerSettings(htpasswd=htpasswd), statuses=lambda: [row])
    for headers in ({}, basic(USER, "wrong"), bearer("nope")):
        response = await client.get("/readyz", headers=headers)
        text = await response.text()
        assert response.status == 503
        assert json.loads(text) == {"ready": False, "assets": [{"asset": "db", "state": "stale"}]}
        assert "upstream.internal" not in text
    response = await client.get("/readyz", headers=basic(PULL_USER, PULL_PASSWORD))
    body = await response.json()
    assert body["assets"][0]["source"] == "upstream.internal:5000" and body["credentials"] == []


async def test_tokens_say_which_scopes_were_granted(make_client: ClientFactory, htpasswd: Path) -> None:
    client = await make_client(ServerSettings(htpasswd=htpasswd, allow_push=True, push_users=frozenset({USER})))
    asked = {"service": "x", "scope": "repository:aquasec/trivy-db:pull,push"}
    for credentials, granted in ((basic(PULL_USER, PULL_PASSWORD), "repository:aquasec/trivy-db:pull"),
                                 (basic(USER, PASSWORD), "repository:aquasec/trivy-db:pull,push")):
        body = await (await client.get("/token", params=asked, headers=credentials)).json()
        assert body["scope"] == granted
        response = await client.post("/v2/aquasec/trivy-db/blobs/uploads/", headers=bearer(body["token"]))
        assert response.status == (202 if "push" in granted else 403)
    response = await client.post("/token", data={"grant_type": "password", "username": PULL_USER,
                                                 "password": PULL_PASSWORD, "scope": "repository:a/b:push"})
    assert "scope" not in await response.json()  # nothing of what was asked is granted
