"""One access-log line and one metrics observation per request, written once the response is complete.

aiohttp calls the access logger after the last byte (a blob sent with sendfile included), so this is the one
place that knows the final status, size and duration of every answer, errors raised by aiohttp itself too.
The line names the user but never a credential, and the path without its query string.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from trivy_mirror.server.metrics import Metrics

ACCESS_LOGGER = logging.getLogger("trivy_mirror.access")
ROUTE_KEY = web.RequestKey("trivy_mirror_route", str)
NOT_HTTP_ROUTE = "not-http"
"""The route label of bytes that were not an HTTP request: aiohttp answers them 400 under the method ``UNKNOWN``.
Nearly always a TLS handshake on the plain-HTTP port: Trivy (go-containerregistry) tries https first on every
host that is not loopback-looking, then falls back to http, so each scan of a plain-HTTP mirror sends some."""
USER_KEY = web.RequestKey("trivy_mirror_user", str)


def access_logger_class(metrics: Metrics, json_lines: bool) -> type[AbstractAccessLogger]:
    """An access logger bound to ``metrics``; aiohttp makes one per connection from the class."""

    class AccessLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
            not_http = request.method == "UNKNOWN"
            route = NOT_HTTP_ROUTE if not_http else request.get(ROUTE_KEY, "other")
            sent = 0 if request.method == "HEAD" else response.content_length or response.body_length
            metrics.observe(route, request.method, response.status, sent, time)
            if not_http:
                # Not worth a line per scan at INFO: the client retries over plain HTTP at once.
                self.logger.debug("%s sent bytes that are not HTTP (a TLS handshake from a client trying https "
                                  "first, most likely); answered %s", request.remote, response.status)
                return
            if not self.logger.isEnabledFor(logging.INFO):
                return
            user = request.get(USER_KEY, "-")
            if json_lines:
                line = json.dumps({
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "remote": request.remote, "user": user, "method": request.method,
                    "path": request.rel_url.raw_path,
                    "status": response.status, "bytes": sent, "duration": round(time, 6), "route": route,
                    "user_agent": request.headers.get("User-Agent"),
                })
            else:
                agent = json.dumps(request.headers.get("User-Agent", "-"))
                line = (f'{request.remote} {user} "{request.method} {request.rel_url.raw_path}" '
                        f"{response.status} {sent} {time:.6f}s {agent}")
            self.logger.info("%s", line)

        @property
        def enabled(self) -> bool:
            return True  # metrics need every request even when the log itself is off

    return AccessLogger

