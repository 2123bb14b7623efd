"""``/token``: trades Basic credentials (GET, as go-containerregistry and Docker do) or an OAuth2 password
grant (POST) for a short-lived signed bearer token. With ``anonymous_pull`` a request without credentials gets
a pull-only token, which is how clients that follow the challenge pull anonymously.
"""

from __future__ import annotations

import logging

from aiohttp import web

from trivy_mirror.server.auth import Authenticator, BadCredentials
from trivy_mirror.server.errors import OciError
from trivy_mirror.server.tokens import Identity

log = logging.getLogger("trivy_mirror.auth")

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="trivy-mirror"'}


class TokenEndpoint:
    """The ``/token`` handlers (GET and POST)."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    async def get(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "").strip()
        if not header:
            if not self._auth.anonymous_pull:
                return _unauthorized()
            return self._issue(Identity(None, push=False))
        scheme, _, value = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise BadCredentials("the token endpoint takes Basic credentials")
            identity = await self._auth.basic(value.strip(), request.remote)
        except BadCredentials as err:
            return self._refused(request, err)
        except OciError as err:
            return err.response()
        return self._issue(identity)

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
        return self._issue(identity)

    def _issue(self, identity: Identity) -> web.Response:
        issued = self._auth.signer.issue(identity)
        return web.json_response({
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at.isoformat().replace("+00:00", "Z"),
        }, headers={"Cache-Control": "no-store"})

    def _refused(self, request: web.Request, err: BadCredentials) -> web.Response:
        log.warning("token request refused from %s: %s", request.remote, err)
        return _unauthorized()


def _unauthorized() -> web.Response:
    return OciError("UNAUTHORIZED", "authentication required", headers=BASIC_CHALLENGE).response()
