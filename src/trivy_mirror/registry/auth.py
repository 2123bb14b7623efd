"""Registry authentication: ``WWW-Authenticate`` parsing, Basic, and the Bearer token flow.

One :class:`Authorizer` per registry learns the registry's challenge from its first 401, then authorizes
later requests up front: Basic credentials pre-emptively, or a Bearer token fetched from the realm and
cached per (credentials, scopes) until it expires. A 401 on a request that carried a token means the token
went stale: it is fetched again once (see ``RegistryClient.request``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from trivy_mirror.errors import AuthError, RegistryError
from trivy_mirror.http.failures import error_from_response, read_error_body
from trivy_mirror.http.transport import Transport, wire_errors
from trivy_mirror.registry.credentials import Credentials

log = logging.getLogger(__name__)

CLIENT_ID = "trivy-mirror"
DEFAULT_TOKEN_LIFETIME = 60.0
"""Seconds a token lives when the token service does not say (the distribution token spec's default)."""
EXPIRY_MARGIN = 5.0
MAX_TOKEN_RESPONSE = 1024 * 1024

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TCHARS)
# Bare values are taken up to the next comma or space: stricter than the RFC's token, lenient with
# registries that leave a URL unquoted.
_PARAM_RE = re.compile(rf'[ \t]*({_TCHARS})[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"=][^\s,"]*))', re.DOTALL)
_TOKEN68_RE = re.compile(r"[ \t]+[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: the scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str]

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.params.get("scope", "").split())


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse every challenge in a header value (RFC 9110 §11.6.1), e.g.

    ``Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"``.
    Quoted values may contain commas and escaped quotes; parameter names are case-insensitive. Anything
    unparseable is skipped rather than raised on: a registry's odd header must not crash a copy.
    """
    challenges: list[Challenge] = []
    pos, end = 0, len(header)
    while pos < end:
        while pos < end and header[pos] in " \t,":
            pos += 1
        scheme = _TOKEN_RE.match(header, pos)
        if scheme is None:
            comma = header.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        pos = scheme.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68_RE.match(header, pos)
        if token68 is not None and _PARAM_RE.match(header, pos) is None:
            pos = token68.end()
        while True:
            skip = pos
            while skip < end and header[skip] in " \t,":
                skip += 1
            param = _PARAM_RE.match(header, skip)
            if param is None:
                break
            name, quoted, bare = param.groups()
            value = _ESCAPE_RE.sub(r"\1", quoted) if quoted is not None else bare
            params.setdefault(name.lower(), value)
            pos = param.end()
        challenges.append(Challenge(scheme.group().lower(), params))
    return challenges


def repository_scope(repository: str, actions: str = "pull") -> str:
    """``repository:<name>:<actions>``, the scope a token must grant to touch ``repository``."""
    return f"repository:{repository}:{actions}"


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at - EXPIRY_MARGIN


_TokenKey = tuple[Credentials | None, frozenset[str]]


class Authorizer:
    """Authorization for one registry host."""

    def __init__(self, host: str, transport: Transport) -> None:
        self._host = host
        self._transport = transport
        self._challenge: Challenge | None = None
        self._tokens: dict[_TokenKey, _Token] = {}
        self._locks: dict[_TokenKey, asyncio.Lock] = {}

    async def authorization(self, credentials: Credentials | None, scopes: Iterable[str]) -> str | None:
        """The ``Authorization`` value to send up front, from what the registry asked for so far."""
        if credentials is not None and credentials.token:
            return f"Bearer {credentials.token}"
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return _basic(credentials)
        key = (credentials, frozenset(scopes))
        token = self._tokens.get(key)
        if token is not None and token.fresh:
            return f"Bearer {token.value}"
        async with self._locks.setdefault(key, asyncio.Lock()):
            token = self._tokens.get(key)
            if token is None or not token.fresh:
                token = await self._fetch(challenge, credentials, key[1])
                self._tokens[key] = token
        return f"Bearer {token.value}"

    async def challenged(
        self, headers: Iterable[str], credentials: Credentials | None, scopes: Iterable[str],
        sent: str | None, base: URL,
    ) -> str | None:
        """React to a 401: the ``Authorization`` to retry with, or None when retrying cannot help.

        ``headers`` are the response's ``WWW-Authenticate`` values and ``sent`` what the failed request
        carried. A Bearer challenge always gets a freshly fetched token (the old one may have been revoked
        or have expired early), merged with any scope the registry names in the challenge.
        """
        if credentials is not None and credentials.token:
            return None
        challenges = [c for h in headers for c in parse_www_authenticate(h)]
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return None
        if chosen.scheme == "basic":
            self._challenge = chosen
            header = _basic(credentials)
            return header if header is not None and header != sent else None
        _check_realm(chosen, base, self._host)
        self._challenge = chosen
        key = (credentials, frozenset(scopes))
        async with self._locks.setdefault(key, asyncio.Lock()):
            token = self._tokens.get(key)
            # Concurrent requests all meet the same 401: the first refreshes, the others reuse its token.
            if token is None or not token.fresh or f"Bearer {token.value}" == sent:
                token = await self._fetch(chosen, credentials, key[1] | chosen.scopes)
                self._tokens[key] = token
        return f"Bearer {token.value}"

    async def _fetch(self, challenge: Challenge, credentials: Credentials | None, scopes: frozenset[str]) -> _Token:
        realm = URL(challenge.params["realm"])
        service = challenge.params.get("service")
        operation = f"token request to {realm.host} for {' '.join(sorted(scopes)) or 'registry access'}"
        if credentials is not None and credentials.identity_token:
            response = await self._oauth2(realm, service, scopes, credentials.identity_token, operation)
        else:
            query = [("service", service)] if service else []
            query += [("scope", scope) for scope in sorted(scopes)]
            headers = {}
            basic = _basic(credentials)
            if basic is not None:
                headers["Authorization"] = basic
            response = await self._transport.send(
                "GET", realm.update_query(query), operation=operation, headers=headers
            )
        async with response:
            if response.status in (401, 403):
                body = await read_error_body(response)
                why = "the credentials were rejected" if credentials is not None else "anonymous access is denied"
                raise AuthError(f"{self._host}: {operation}: {response.status} {body.summary or why} ({why})",
                                response.status, body.codes)
            if response.status != 200:
                raise await error_from_response(response, self._host, operation)
            async with wire_errors(realm.host or self._host, operation):
                data = await response.content.read(MAX_TOKEN_RESPONSE)
            try:
                doc = json.loads(data)
            except (UnicodeDecodeError, json.JSONDecodeError):
                doc = None
        value = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{self._host}: {operation}: the token service answered without a token")
        lifetime = doc.get("expires_in") if isinstance(doc, dict) else None
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        log.debug("%s: got a token for %s valid %s s", self._host, sorted(scopes), lifetime)
        return _Token(value, time.monotonic() + float(lifetime))

    async def _oauth2(
        self, realm: URL, service: str | None, scopes: frozenset[str], refresh_token: str, operation: str
    ) -> aiohttp.ClientResponse:
        """Exchange an identity (refresh) token with the OAuth2 POST of the distribution token spec."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
        if service:
            form["service"] = service
        if scopes:
            form["scope"] = " ".join(sorted(scopes))
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self._transport.send("POST", realm, operation=operation, headers=headers, data=body)


def _basic(credentials: Credentials | None) -> str | None:
    if credentials is None or not credentials.has_basic:
        return None
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _check_realm(challenge: Challenge, base: URL, host: str) -> None:
    """Refuse realms that would leak credentials: not http(s), or plain http for an https registry."""
    realm = challenge.params.get("realm", "")
    try:
        url = URL(realm)
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise RegistryError(f"{host}: invalid realm in WWW-Authenticate: {realm[:100]!r}")
    if url.scheme == "http" and base.scheme == "https":
        raise RegistryError(f"{host}: refusing a plain-http token realm ({url.host}) for an https registry")
