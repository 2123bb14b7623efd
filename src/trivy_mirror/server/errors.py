"""OCI Distribution error responses: ``{"errors": [{"code", "message", "detail"}]}`` with the matching status.

Handlers raise :class:`OciError`; the ``/v2/`` dispatcher turns it into a response. Clients act on the code:
Trivy falls back to its next repository on ``TOOMANYREQUESTS``, ``UNKNOWN`` and ``BLOB_UNKNOWN`` (not on
``MANIFEST_UNKNOWN``, ``UNAUTHORIZED`` or ``DENIED``), so the codes must be the right ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "PAGINATION_NUMBER_INVALID": 400,
    "RANGE_INVALID": 416,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "UNKNOWN": 500,
}


class OciError(Exception):
    """An error answer; ``status`` defaults to the one the code implies."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status if status is not None else STATUS[code]
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """The JSON error answer (aiohttp drops the body of a HEAD answer and keeps its length)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        body = json.dumps({"errors": [error]}).encode()
        headers = {**API_VERSION_HEADER, **self.headers}
        return web.Response(status=self.status, body=body, content_type="application/json", headers=headers)
