"""``/token``: trades Basic credentials (GET, as go-containerregistry and Docker do) or an OAuth2 password
grant (POST) for a short-lived signed bearer token. With ``anonymous_pull`` a request without credentials gets
a pull-only token, which is how clients that follow the challenge pull anonymously.

The token carries what was granted, not what was asked: push only for push users and push tokens. The answer's
``scope`` lists the requested scopes with the actions actually granted (OAuth2's rule when they differ).
"""

from __future__ import annotations

import logging

from aiohttp import web

from trivy_mirror.oci.reference import REPOSITORY_RE
from trivy_mirror.server.auth import Authenticator, BadCredentials
from trivy_mirror.server.errors import OciError
from trivy_mirror.server.tokens import Identity
from trivy_mirror.timefmt import iso

log = logging.getLogger("trivy_mirror.auth")

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="trivy-mirror"'}
MAX_SCOPES = 10


class TokenEndpoint:
    """The ``/token`` handlers (GET and POST)."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    async def get(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "").strip()
        if not header:
            if not self._auth.anonymous_pull:
                return _unauthorized()
            return self._issue(Identity(None, push=False), request.query.getall("scope", []))
        scheme, _, value = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise BadCredentials("the token endpoint takes Basic credentials")
            identity = await self._auth.basic(value.strip(), request.remote)
        except BadCredentials as err:
            return self._refused(request, err)
        except OciError as err:
            return err.response()
        return self._issue(identity, request.query.getall("scope", []))

    async def post(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except ValueError:  # a malformed form body
            return web.json_response({"error": "invalid_request"}, status=400)
        grant = form.get("grant_type")
        if grant != "password":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        user, password = form.get("username"), form.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            return web.json_response({"error": "invalid_request"}, status=400)
        try:
            identity = await self._auth.password(user, password, request.remote)
        except BadCredentials as err:
            return self._refused(request, err)
        except OciError as err:
            return err.response()
        scope = form.get("scope")
        return self._issue(identity, scope.split() if isinstance(scope, str) else [])

    def _issue(self, identity: Identity, requested: list[str]) -> web.Response:
        issued = self._auth.signer.issue(identity)
        body: dict[str, object] = {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": iso(issued.issued_at),
        }
        granted = granted_scopes(requested, identity.push)
        if granted:
            body["scope"] = " ".join(granted)
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def _refused(self, request: web.Request, err: BadCredentials) -> web.Response:
        log.warning("token request refused from %s: %s", request.remote, err)
        return _unauthorized()


def granted_scopes(requested: list[str], push: bool) -> list[str]:
    """``repository:NAME:ACTIONS`` scopes with the actions this identity gets (pull, and push and delete for
    pushers: the server decides whether it accepts deletes at all); at most :data:`MAX_SCOPES`, anything else
    dropped."""
    allowed = ("pull", "push", "delete") if push else ("pull",)
    granted = []
    for scope in requested[:MAX_SCOPES]:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not REPOSITORY_RE.fullmatch(name):
            continue
        kept = [action for action in allowed if action in actions.split(",")]
        if kept:
            granted.append(f"repository:{name}:{','.join(kept)}")
    return granted


def _unauthorized() -> web.Response:
    return OciError("UNAUTHORIZED", "authentication required", headers=BASIC_CHALLENGE).response()
