"""Turning HTTP failures into the one-line errors of :mod:`trivy_mirror.errors`.

Messages name the host and the operation and quote the registry's own OCI error codes; they never contain
URLs (upload and storage URLs can carry signatures), headers or credentials.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from dataclasses import dataclass

import aiohttp

from trivy_mirror.errors import AuthError, MirrorError, NotFound, RegistryError

MAX_ERROR_BODY = 64 * 1024
"""Error bodies are read up to this size; anything longer is not a registry error document."""

_MAX_DETAIL = 200


@dataclass(frozen=True)
class ErrorBody:
    """The ``errors[]`` of an OCI error response: codes and a short human summary."""

    codes: tuple[str, ...]
    summary: str

    @classmethod
    def parse(cls, data: bytes) -> ErrorBody:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return cls((), "")
        entries = doc.get("errors") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            return cls((), "")
        codes: list[str] = []
        parts: list[str] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            code = entry.get("code")
            message = entry.get("message")
            if isinstance(code, str) and code:
                codes.append(code)
            text = " ".join(str(x) for x in (code, message) if isinstance(x, str) and x)
            if text:
                parts.append(text)
        return cls(tuple(codes), _one_line("; ".join(parts)))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


async def read_error_body(response: aiohttp.ClientResponse) -> ErrorBody:
    """Read at most :data:`MAX_ERROR_BODY` bytes of an error response and parse it; never raises."""
    if response.method == "HEAD":
        return ErrorBody((), "")
    try:
        data = await response.content.read(MAX_ERROR_BODY)
    except (TimeoutError, aiohttp.ClientError):
        data = b""
    return ErrorBody.parse(data)


def error_for_status(host: str, operation: str, status: int, body: ErrorBody, note: str = "") -> MirrorError:
    """The exception for an HTTP error status: AuthError, NotFound or RegistryError."""
    detail = body.summary or _REASONS.get(status, "error")
    message = f"{host}: {operation}: {status} {detail}"
    if note:
        message += f" ({note})"
    if status in (401, 403):
        return AuthError(message, status, body.codes)
    if status == 404:
        return NotFound(message)
    return RegistryError(message, status, body.codes)


async def error_from_response(
    response: aiohttp.ClientResponse, host: str, operation: str, note: str = ""
) -> MirrorError:
    body = await read_error_body(response)
    return error_for_status(host, operation, response.status, body, note)


_REASONS = {
    400: "bad request",
    401: "authentication required",
    403: "access denied",
    404: "not found",
    405: "method not allowed",
    408: "request timeout",
    413: "payload too large",
    416: "range not satisfiable",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def describe_connection_error(err: BaseException) -> str:
    """What went wrong on the wire, in a few words (``connection refused``, ``timed out``...)."""
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate verification failed: {_one_line(str(err.certificate_error))}"
    if isinstance(err, aiohttp.ClientSSLError):
        if "WRONG_VERSION_NUMBER" in str(err):
            return "TLS handshake failed: the server does not speak TLS (plain HTTP?)"
        return "TLS handshake failed"
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return "connection timed out"
    if isinstance(err, aiohttp.SocketTimeoutError):
        return "timed out waiting for data (stalled)"
    if isinstance(err, asyncio.TimeoutError):
        return "timed out"
    if isinstance(err, aiohttp.ClientConnectorDNSError) or isinstance(err.__cause__, socket.gaierror):
        return "cannot resolve host name"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(err, aiohttp.ClientPayloadError):
        return "response body was cut short"
    if isinstance(err, OSError) and err.errno is not None:
        return _ERRNO_TEXT.get(err.errno) or _one_line(err.strerror or type(err).__name__)
    return _one_line(str(err)) or type(err).__name__


_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed while sending",
}
