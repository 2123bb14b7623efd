"""WWW-Authenticate parsing, the Bearer token flow (cache per scope, refresh on 401) and Basic auth."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import AuthError, RegistryError
from trivy_mirror.registry import Credentials
from trivy_mirror.registry.auth import Challenge, parse_www_authenticate

from .conftest import MakeClient, Serve
from .fake_registry import FakeRegistry, manifest_for, oci_error

# --- parsing -------------------------------------------------------------------------------------------------


def test_parses_bearer_with_commas_inside_quotes() -> None:
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:aquasec/trivy-db:pull,push"')
    assert parse_www_authenticate(header) == [Challenge("bearer", {
        "realm": "https://auth.example/token", "service": "registry.example",
        "scope": "repository:aquasec/trivy-db:pull,push"})]


def test_parses_several_challenges_escapes_and_case() -> None:
    header = 'Negotiate, BASIC Realm="say \\"hi\\", please" , Bearer realm=https://t/x, error="insufficient_scope"'
    assert parse_www_authenticate(header) == [
        Challenge("negotiate", {}),
        Challenge("basic", {"realm": 'say "hi", please'}),
        Challenge("bearer", {"realm": "https://t/x", "error": "insufficient_scope"}),
    ]


def test_token68_is_skipped() -> None:
    assert parse_www_authenticate("Basic dXNlcjpwYXNz==, Bearer realm=\"r\"") == [
        Challenge("basic", {}), Challenge("bearer", {"realm": "r"})]


def test_scopes_of_a_challenge() -> None:
    challenge = parse_www_authenticate('Bearer realm="r",scope="repository:a:pull repository:b:pull,push"')[0]
    assert challenge.scopes == {"repository:a:pull", "repository:b:pull,push"}


_token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~", min_size=1,
                 max_size=12)
_value = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.lists(st.tuples(_token, st.dictionaries(_token.map(str.lower), _value, max_size=4)), min_size=1,
                max_size=3))
def test_round_trips_any_challenges(challenges: list[tuple[str, dict[str, str]]]) -> None:
    header = ", ".join(
        scheme + (" " + ", ".join(f"{name}={_quote(value)}" for name, value in params.items()) if params else "")
        for scheme, params in challenges
    )
    assert parse_www_authenticate(header) == [Challenge(s.lower(), p) for s, p in challenges]


@given(st.text(max_size=200))
def test_never_raises_on_garbage(header: str) -> None:
    for challenge in parse_www_authenticate(header):
        assert challenge.scheme


# --- Bearer --------------------------------------------------------------------------------------------------

USERS = {"alice": "s3cret-pass"}


@dataclass
class TokenService:
    """A token endpoint at ``/token`` and a guard that demands its tokens on every ``/v2/`` request."""

    expires_in: int | None = 300
    key: str = "token"
    requests: list[web.Request] = field(default_factory=list)
    forms: list[dict[str, list[str]]] = field(default_factory=list)
    valid: dict[str, set[str]] = field(default_factory=dict)

    async def token(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        scopes = set(request.query.getall("scope", []))
        if request.method == "POST":
            form = parse_qs((await request.read()).decode())
            self.forms.append(form)
            if form.get("refresh_token") != ["refresh-me"]:
                return web.json_response({"error": "invalid_grant"}, status=401)
            scopes = set(form.get("scope", [""])[0].split())
        elif "Authorization" in request.headers:
            user, _, password = base64.b64decode(request.headers["Authorization"][6:]).decode().partition(":")
            if USERS.get(user) != password:
                return oci_error(401, "UNAUTHORIZED", "bad credentials")
        value = f"tok-{len(self.requests)}"
        self.valid[value] = scopes
        answer: dict[str, object] = {self.key: value}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return web.json_response(answer)

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        if request.path == "/token":
            return None
        parts = request.path.split("/")
        name = "/".join(parts[2:-2]) if len(parts) > 4 else ""
        action = "pull" if request.method in ("GET", "HEAD") else "push"
        auth = request.headers.get("Authorization", "")
        scopes = self.valid.get(auth.removeprefix("Bearer "), None) if auth.startswith("Bearer ") else None
        if scopes is not None and (not name or any(
            s.split(":")[1] == name and action in s.split(":")[2].split(",") for s in scopes
        )):
            return None
        challenge = f'Bearer realm="http://{request.host}/token",service="fake"'
        if name:
            challenge += f',scope="repository:{name}:{action}"'
        return oci_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})


@pytest.fixture
async def bearer(fake: FakeRegistry, serve: Serve) -> tuple[str, TokenService]:
    service = TokenService()
    fake.hooks.append(service.guard)
    app = fake.app()
    app.router.add_route("*", "/token", service.token)
    server = await serve(app)
    for repo in ("aquasec/trivy-db", "aquasec/trivy-java-db"):
        fake.put_manifest(repo, "1", manifest_for(b"{}", b"layer"))
    return f"127.0.0.1:{server.port}", service


async def test_token_cached_per_scope(bearer: tuple[str, TokenService], make_client: MakeClient) -> None:
    host, service = bearer
    client = make_client(host, Credentials("alice", "s3cret-pass"))
    db, java = client.repository("aquasec/trivy-db"), client.repository("aquasec/trivy-java-db")
    await db.get_manifest("1")
    await db.get_manifest("1")
    await db.resolve("1")
    assert len(service.requests) == 1
    first = service.requests[0]
    assert first.query.getall("scope") == ["repository:aquasec/trivy-db:pull"]
    assert first.query["service"] == "fake"
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret-pass").decode()
    await java.get_manifest("1")
    await db.get_manifest("1")
    assert [r.query.getall("scope") for r in service.requests] == [
        ["repository:aquasec/trivy-db:pull"], ["repository:aquasec/trivy-java-db:pull"]]


async def test_refreshes_token_once_on_401(bearer: tuple[str, TokenService], make_client: MakeClient,
                                           fake: FakeRegistry) -> None:
    host, service = bearer
    repo = make_client(host, Credentials("alice", "s3cret-pass")).repository("aquasec/trivy-db")
    await repo.get_manifest("1")
    service.valid.clear()  # the registry revokes every token it issued
    await repo.get_manifest("1")
    assert len(service.requests) == 2
    assert [s.headers.get("Authorization") for s in fake.requests("GET", "/manifests/")] == [
        None, "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_gives_up_when_a_fresh_token_is_refused_too(bearer: tuple[str, TokenService],
                                                          make_client: MakeClient) -> None:
    host, service = bearer
    repo = make_client(host, Credentials("alice", "s3cret-pass")).repository("aquasec/trivy-db")
    service.valid = _Forgetful()
    with pytest.raises(AuthError) as caught:
        await repo.get_manifest("1")
    assert caught.value.status == 401
    assert caught.value.codes == ("UNAUTHORIZED",)
    assert len(service.requests) == 1


class _Forgetful(dict[str, set[str]]):
    def __setitem__(self, key: str, value: set[str]) -> None:
        pass


async def test_short_lived_tokens_are_fetched_again(bearer: tuple[str, TokenService],
                                                    make_client: MakeClient, fake: FakeRegistry) -> None:
    host, service = bearer
    service.expires_in = 1  # shorter than the safety margin: never reused
    repo = make_client(host).repository("aquasec/trivy-db")
    for _ in range(3):
        await repo.get_manifest("1")
    assert len(service.requests) == 3
    assert len([s for s in fake.requests("GET", "/manifests/") if "Authorization" not in s.headers]) == 1


async def test_access_token_and_anonymous(bearer: tuple[str, TokenService], make_client: MakeClient) -> None:
    host, service = bearer
    service.key, service.expires_in = "access_token", None
    await make_client(host).repository("aquasec/trivy-db").get_manifest("1")
    assert "Authorization" not in service.requests[0].headers


async def test_rejected_credentials(bearer: tuple[str, TokenService], make_client: MakeClient) -> None:
    host, _ = bearer
    repo = make_client(host, Credentials("alice", "wrong-password")).repository("aquasec/trivy-db")
    with pytest.raises(AuthError) as caught:
        await repo.get_manifest("1")
    message = str(caught.value)
    assert host in message and "rejected" in message and "\n" not in message
    assert "wrong-password" not in message and "wrong-password" not in repr(caught.value)


async def test_identity_token_uses_oauth2_refresh_grant(bearer: tuple[str, TokenService],
                                                        make_client: MakeClient) -> None:
    host, service = bearer
    credentials = Credentials("", "", identity_token="refresh-me")
    await make_client(host, credentials).repository("aquasec/trivy-db").get_manifest("1")
    assert service.requests[0].method == "POST"
    form = service.forms[0]
    assert form["grant_type"] == ["refresh_token"]
    assert form["service"] == ["fake"]
    assert form["scope"] == ["repository:aquasec/trivy-db:pull"]


async def test_registry_token_is_sent_as_is(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    fake.put_manifest("a/b", "1", manifest_for(b"{}", b"x"))
    await make_client(fake_host, Credentials("", "", token="static")).repository("a/b").get_manifest("1")
    assert fake.requests("GET", "/manifests/")[0].headers["Authorization"] == "Bearer static"


async def test_invalid_realm_is_refused(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    async def challenge(request: web.Request) -> web.Response:
        return oci_error(401, "UNAUTHORIZED", headers={"WWW-Authenticate": 'Bearer realm="file:///etc/passwd"'})

    fake.hooks.append(challenge)
    with pytest.raises(RegistryError, match="invalid realm"):
        await make_client(fake_host).repository("a/b").get_manifest("1")


# --- Basic ---------------------------------------------------------------------------------------------------


def _basic_guard(fake: FakeRegistry) -> None:
    expected = "Basic " + base64.b64encode(b"alice:s3cret-pass").decode()

    async def guard(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == expected:
            return None
        return oci_error(401, "UNAUTHORIZED", headers={"WWW-Authenticate": 'Basic realm="fake"'})

    fake.hooks.append(guard)


async def test_basic_is_sent_preemptively_after_the_first_challenge(
    fake: FakeRegistry, fake_host: str, make_client: MakeClient
) -> None:
    _basic_guard(fake)
    fake.put_manifest("a/b", "1", manifest_for(b"{}", b"x"))
    client = make_client(fake_host, Credentials("alice", "s3cret-pass"))
    await client.ping()
    for _ in range(3):
        await client.repository("a/b").get_manifest("1")
    assert [s.headers.get("Authorization") is None for s in fake.seen] == [True] + [False] * 4


async def test_basic_without_credentials(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    _basic_guard(fake)
    with pytest.raises(AuthError, match=f"^{fake_host}: GET /v2/: 401 UNAUTHORIZED .*no credentials found"):
        await make_client(fake_host).ping()


async def test_basic_wrong_password(fake: FakeRegistry, fake_host: str, make_client: MakeClient) -> None:
    _basic_guard(fake)
    with pytest.raises(AuthError, match="were rejected") as caught:
        await make_client(fake_host, Credentials("alice", "hunter2")).ping()
    assert "hunter2" not in str(caught.value)
    assert len(fake.seen) == 2


async def test_forbidden_is_an_auth_error_with_codes(fake: FakeRegistry, fake_host: str,
                                                     make_client: MakeClient) -> None:
    async def deny(request: web.Request) -> web.Response:
        return oci_error(403, "DENIED", "requested access to the resource is denied")

    fake.hooks.append(deny)
    with pytest.raises(AuthError) as caught:
        await make_client(fake_host).repository("a/b").get_manifest("1")
    assert caught.value.codes == ("DENIED",)
    assert str(caught.value) == (f"{fake_host}: get manifest a/b:1: 403 DENIED requested access to the resource "
                                 f"is denied (no credentials found for {fake_host})")


async def test_concurrent_requests_share_one_token(bearer: tuple[str, TokenService], make_client: MakeClient) -> None:
    host, service = bearer
    repo = make_client(host, Credentials("alice", "s3cret-pass")).repository("aquasec/trivy-db")
    await asyncio.gather(*(repo.get_manifest("1") for _ in range(8)))
    assert len(service.requests) == 1
