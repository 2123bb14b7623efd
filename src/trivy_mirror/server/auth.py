"""Who may do what: credentials on each request, and the challenge that starts a client's token flow.

Every ``/v2/`` request needs Basic credentials from the htpasswd file, a static token, or a token issued by
``/token``; with ``anonymous_pull``, GET and HEAD of content need nothing, but the ``/v2/`` ping still
answers 401 so clients that have credentials (to push) learn where the token endpoint is. Credentials pull;
only the users named as push users and the tokens marked ``push`` may write (with ``allow_push``), so the
credentials handed to scanners cannot replace what the scanners read. The challenge is
always ``Bearer realm="<this server>/token"``: go-containerregistry (Trivy, crane) only accepts a realm on the
registry's own host. Basic credentials are accepted on every request too (skopeo sends them pre-emptively).
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import urlsplit

from aiohttp import web

from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.reference import REPOSITORY_RE, validate_registry
from trivy_mirror.server.errors import OciError
from trivy_mirror.server.htpasswd import Htpasswd
from trivy_mirror.server.settings import ServerSettings, parse_listen
from trivy_mirror.server.tokens import Identity, TokenSigner, hash_token, parse_token_file
from trivy_mirror.server.watch import ReloadingFile

log = logging.getLogger("trivy_mirror.auth")


class BadCredentials(Exception):
    """Credentials were presented and are wrong; the message is safe to log (it names no secret)."""


class Authenticator:
    """Checks the credentials of each request against the htpasswd file, the token file and issued tokens."""

    def __init__(self, settings: ServerSettings, clock: Clock = SYSTEM) -> None:
        self.enabled = settings.auth_enabled
        self.anonymous_pull = settings.anonymous_pull
        self.signer = TokenSigner(settings.token_ttl, settings.token_key)
        self.htpasswd = Htpasswd(settings.htpasswd, clock) if settings.htpasswd else None
        self._static = ReloadingFile(settings.token_file, parse_token_file, what="token file", clock=clock) \
            if settings.token_file else None
        self._push_users = settings.push_users if settings.allow_push else frozenset()
        self._allow_push = settings.allow_push
        self._public_url = settings.public_url.rstrip("/") if settings.public_url else None
        host, port = parse_listen(settings.listen)
        self._fallback_host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def require(self, request: web.Request, *, write: bool, ping: bool, name: str | None) -> Identity | None:
        """The identity a request acts as (None: anonymous), or the 401/403 error it gets."""
        if not self.enabled:
            return None
        try:
            identity = await self._identify(request)
        except BadCredentials as err:
            log.warning("authentication failed from %s: %s", request.remote, err)
            raise self._unauthorized(request, name, write, "authentication failed") from None
        if identity is None:
            if self.anonymous_pull and not write and not ping:
                return None
            raise self._unauthorized(request, name, write, "authentication required")
        if write and not identity.push and self._allow_push:
            # Without allow_push there are no write handlers: the dispatcher answers 405 UNSUPPORTED.
            raise OciError("DENIED", "these credentials may only pull; pushing needs a push user or a push token")
        return identity

    async def authenticated(self, request: web.Request) -> bool:
        """Whether the request carries valid credentials (never raises: for pages that only hide details)."""
        try:
            return await self._identify(request) is not None
        except (BadCredentials, OciError):
            return False

    async def _identify(self, request: web.Request) -> Identity | None:
        """The identity of the request's credentials; None when there are none. Raises :class:`BadCredentials`."""
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return await self.basic(value.strip(), request.remote)
        if scheme == "bearer":
            return self._bearer(value.strip())
        raise BadCredentials(f"unsupported authorization scheme {scheme[:20]!r}")

    async def basic(self, value: str, client: str | None) -> Identity:
        """The user of a Basic credential (the part after ``Basic ``); raises :class:`BadCredentials`."""
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, ValueError):
            raise BadCredentials("malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise BadCredentials("malformed Basic credentials")
        return await self.password(user, password, client)

    async def password(self, user: str, password: str, client: str | None) -> Identity:
        """The identity of a user name and password; only push users may push. ``client`` bounds the work."""
        if self.htpasswd is None or not await self.htpasswd.verify(user, password, client):
            raise BadCredentials(f"wrong user name or password for user {user[:64]!r}")
        return Identity(user, push=user in self._push_users)

    def problems(self) -> list[str]:
        """Credentials files whose last good version is in force because the current one is missing or bad."""
        files = [self.htpasswd.problem if self.htpasswd else None, self._static.problem if self._static else None]
        return [problem for problem in files if problem is not None]

    def _bearer(self, token: str) -> Identity:
        if self._static is not None:
            entry = self._static.value.get(hash_token(token))
            if entry is not None:
                return Identity(entry.label, push=entry.push and self._allow_push)
        identity = self.signer.verify(token)
        if identity is None:
            raise BadCredentials("invalid or expired bearer token")
        return identity

    def _challenge(self, request: web.Request, name: str | None, write: bool) -> str:
        realm, service = self._realm(request)
        value = f'Bearer realm="{realm}",service="{service}"'
        if name and REPOSITORY_RE.fullmatch(name):
            value += f',scope="repository:{name}:{"pull,push" if write else "pull"}"'
        return value

    def close(self) -> None:
        if self.htpasswd is not None:
            self.htpasswd.close()

    def _unauthorized(self, request: web.Request, name: str | None, write: bool, message: str) -> OciError:
        return OciError("UNAUTHORIZED", message, headers={"WWW-Authenticate": self._challenge(request, name, write)})

    def _realm(self, request: web.Request) -> tuple[str, str]:
        """The token URL on the host the client used (or the public URL), and the service name."""
        if self._public_url:
            return f"{self._public_url}/token", urlsplit(self._public_url).netloc
        try:
            host = validate_registry(request.host)
        except InvalidReference:
            host = self._fallback_host
        return f"{request.scheme}://{host}/token", host
