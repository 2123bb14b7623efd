"""The ``/v2/`` dispatcher: recognise the endpoint, check credentials, call the handler, answer OCI errors.

One catch-all route instead of one aiohttp route per endpoint, because repository names contain slashes and
because every failure under ``/v2/`` (unknown endpoint, wrong method, bad name) must be an OCI error body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from trivy_mirror.server.accesslog import ROUTE_KEY, USER_KEY
from trivy_mirror.server.auth import Authenticator
from trivy_mirror.server.delete import DeleteApi
from trivy_mirror.server.errors import OciError
from trivy_mirror.server.pull import PullApi
from trivy_mirror.server.push import PushApi
from trivy_mirror.server.routes import Route, match_v2

log = logging.getLogger(__name__)

Handler = Callable[[web.Request, Route], Awaitable[web.StreamResponse]]
READ_METHODS = frozenset({"GET", "HEAD"})


class V2:
    """Routes every ``/v2/`` request to its handler; push handlers exist only with ``allow_push``, delete
    handlers only with ``allow_delete`` (without them a DELETE is 405 UNSUPPORTED, as the spec allows)."""

    def __init__(self, auth: Authenticator, pull: PullApi, push: PushApi | None,
                 delete: DeleteApi | None = None) -> None:
        self._auth = auth
        self._handlers: dict[tuple[str, str], Handler] = {
            ("ping", "GET"): pull.ping,
            ("catalog", "GET"): pull.catalog,
            ("tags", "GET"): pull.tags,
            ("manifests", "GET"): pull.manifest,
            ("referrers", "GET"): pull.referrers,
            ("blobs", "GET"): pull.blob,
        }
        if push is not None:
            self._handlers.update({
                ("uploads", "POST"): push.start_upload,
                ("uploads", "GET"): push.upload_status,
                ("uploads", "PATCH"): push.patch_upload,
                ("uploads", "PUT"): push.finish_upload,
                ("uploads", "DELETE"): push.cancel_upload,
                ("manifests", "PUT"): push.put_manifest,
            })
        if delete is not None:
            self._handlers.update({("manifests", "DELETE"): delete.manifest, ("blobs", "DELETE"): delete.blob})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        route = match_v2(request.match_info.get("path", ""))
        request[ROUTE_KEY] = route.endpoint if route else "other"
        method = request.method
        try:
            identity = await self._auth.require(request, write=method not in READ_METHODS,
                                                ping=route is not None and route.endpoint == "ping",
                                                name=route.name if route else None)
            if identity is not None and identity.user is not None:
                request[USER_KEY] = identity.user
            if route is None:
                raise OciError("UNSUPPORTED", "no such endpoint", status=404)
            handler = self._handlers.get((route.endpoint, "GET" if method == "HEAD" else method))
            if handler is None:
                raise OciError("UNSUPPORTED", f"{method} is not supported on this endpoint")
            return await handler(request, route)
        except OciError as err:
            return err.response()
        except web.HTTPException:
            raise
        except ConnectionResetError:
            # The client went away in the middle of its request body; nothing was stored.
            log.info("%s %s: the client disconnected before its request body ended", method,
                     request.rel_url.raw_path)
            return OciError("BLOB_UPLOAD_INVALID", "the request body ended early").response()
        except Exception:
            log.exception("internal error answering %s %s", method, request.rel_url.raw_path)
            return OciError("UNKNOWN", "internal error").response()
