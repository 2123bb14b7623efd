"""The HTTP engine under the registry client: one aiohttp session, scheme choice, retries, timeouts.

It knows nothing about the OCI API: it sends one request (retrying what is safe to retry) and hands back the
response. Authentication and redirects are the client's job, one layer up.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import math
import random
import ssl
import urllib.request
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from yarl import URL

from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import Unreachable, UsageError
from trivy_mirror.http.failures import describe_connection_error, error_from_response
from trivy_mirror.oci.reference import is_plain_http_allowed

log = logging.getLogger(__name__)

READ_BUFSIZE = 2 * 1024 * 1024
"""aiohttp's per-connection read buffer: large, so fast links are not throttled by pause/resume cycles."""
MAX_FIELD_SIZE = 64 * 1024
"""Longest response header accepted: signed storage redirects can exceed aiohttp's 8 KiB default."""
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

Body = bytes | AsyncIterable[bytes] | None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Delays grow as ``backoff_base * 2**n`` (capped), with jitter.

    A ``Retry-After`` from the registry replaces the backoff, but never below ``retry_after_floor`` (ghcr
    sends microseconds, e.g. ``0.000035``) and never above ``retry_after_cap``: a longer wait gives up with
    an error saying how long the registry asked for.
    """

    attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_floor: float = 0.5
    retry_after_cap: float = 60.0

    def backoff(self, failures: int) -> float:
        """Delay after the ``failures``-th consecutive failure: half fixed, half random."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not cryptography

    def delay(self, failures: int, retry_after: float | None) -> float:
        if retry_after is None:
            return self.backoff(failures)
        return max(self.retry_after_floor, retry_after)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``read`` is the longest silence tolerated on a connection: it detects stalled servers
    without limiting how long a large, steadily flowing download may take."""

    connect: float = 30.0
    read: float = 120.0
    probe: float = 5.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta seconds (fractions allowed) or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def host_label(url: URL) -> str:
    """``host[:port]`` of a URL, for messages."""
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{url.port}" if url.explicit_port is not None else host


@asynccontextmanager
async def wire_errors(host: str, operation: str) -> AsyncIterator[None]:
    """Turn aiohttp failures inside the block (e.g. while reading a body) into :class:`Unreachable`."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as err:
        raise Unreachable(f"cannot reach {host}: {describe_connection_error(err)} ({operation})") from err


async def read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed ``limit`` bytes."""
    if response.content_length is not None and response.content_length > limit:
        return None
    data = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def _is_retryable_error(err: BaseException) -> bool:
    """Connection-level failures worth another try; TLS and DNS failures do not heal in seconds."""
    return not isinstance(err, aiohttp.ClientSSLError | aiohttp.ClientConnectorDNSError | aiohttp.InvalidURL)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Transport:
    """One connection pool and the retry loop for one client."""

    def __init__(
        self, *, insecure: bool = False, ca_file: str | Path | None = None, retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None, user_agent: str = "trivy-mirror", scheme: str | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        if scheme not in (None, "https", "http"):
            raise ValueError(f"scheme must be https or http, not {scheme!r}")
        self.insecure = insecure
        self.scheme = scheme
        """``https`` or ``http`` when the user named one: used as is, never probed nor fallen back from."""
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self._clock = clock
        """What the waits between retries sleep on (tests record them instead of waiting)."""
        self.requests = 0
        """HTTP requests sent so far (every attempt counts)."""
        # True: aiohttp's default verified context (the system trust store), built once when aiohttp is imported;
        # building another one here would block ~50 ms per client for the same result.
        self._ssl: ssl.SSLContext | bool = False if insecure else True if ca_file is None else _ssl_context(ca_file)
        self._user_agent = user_agent
        self._proxies = urllib.request.getproxies_environment()
        self._session: aiohttp.ClientSession | None = None
        self._bases: dict[str, URL] = {}
        self._scheme_lock = asyncio.Lock()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeouts.connect, sock_read=self.timeouts.read
                ),
                headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
                # Blobs are stored byte for byte: a storage backend's Content-Encoding must not be undone.
                auto_decompress=False,
                read_bufsize=READ_BUFSIZE,
                max_field_size=MAX_FIELD_SIZE,
                cookie_jar=aiohttp.DummyCookieJar(),
                # No trust_env: it would add ~/.netrc logins next to ours; proxies are chosen below.
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def proxy_for(self, url: URL) -> str | None:
        """The proxy from ``HTTP(S)_PROXY``/``NO_PROXY`` for ``url``; loopback hosts never use one."""
        host = url.host or ""
        if not self._proxies or _is_loopback(host):
            return None
        if urllib.request.proxy_bypass_environment(host, self._proxies):  # type: ignore[attr-defined]
            return None
        return self._proxies.get(url.scheme)

    async def base_url(self, registry: str) -> URL:
        """``https://registry`` or ``http://registry``, chosen once and remembered.

        A scheme the user named (``scheme``) is used as is. Otherwise hosts that may be reached over plain HTTP
        without a flag (loopback, RFC 1918; any host when ``insecure``) are probed over https first, with a short
        timeout, and fall back to http when that fails, as go-containerregistry does. A certificate error means
        the host does speak TLS: no fallback.
        """
        base = self._bases.get(registry)
        if base is None:
            async with self._scheme_lock:
                base = self._bases.get(registry)
                if base is None:
                    base = await self._choose_scheme(registry)
                    self._bases[registry] = base
        return base

    async def _choose_scheme(self, registry: str) -> URL:
        if self.scheme is not None:
            return URL(f"{self.scheme}://{registry}")
        https = URL(f"https://{registry}")
        if not (self.insecure or is_plain_http_allowed(registry)):
            return https
        self.requests += 1
        try:
            async with self._open().get(
                https.with_path("/v2/"), allow_redirects=False, proxy=self.proxy_for(https),
                timeout=aiohttp.ClientTimeout(total=self.timeouts.probe),
            ):
                return https
        except aiohttp.ClientConnectorCertificateError:
            return https
        except (TimeoutError, aiohttp.ClientError) as err:
            log.debug("%s: no https (%s); using plain http", registry, describe_connection_error(err))
            return URL(f"http://{registry}")

    async def send(
        self, method: str, url: URL, *, operation: str, headers: Mapping[str, str] | None = None,
        data: Body = None, retry: bool = True,
    ) -> aiohttp.ClientResponse:
        """Send one request, retrying connection failures and 408/429/5xx answers with backoff.

        Returns the response for any other status (the caller reads and releases it). A streamed body
        cannot be replayed, so it gets one attempt. Raises :class:`Unreachable` when the connection keeps
        failing and the mapped registry error when the retryable status persists.
        """
        session = self._open()
        host = host_label(url)
        attempts = max(1, self.retry.attempts) if retry and not isinstance(data, AsyncIterable) else 1
        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            try:
                response = await session.request(
                    method, url, headers=headers, data=data, allow_redirects=False,
                    proxy=self.proxy_for(url),
                )
            except (TimeoutError, aiohttp.ClientError) as err:
                if attempt >= attempts or not _is_retryable_error(err):
                    tries = f", {attempt} attempts" if attempt > 1 else ""
                    raise Unreachable(
                        f"cannot reach {host}: {describe_connection_error(err)} ({operation}{tries})"
                    ) from err
                delay = self.retry.backoff(attempt)
                log.info("%s: %s: %s; retrying in %.1f s", host, operation, describe_connection_error(err), delay)
                await self._clock.sleep(delay)
                continue
            if response.status not in RETRYABLE_STATUSES or attempts == 1:
                return response
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > self.retry.retry_after_cap:
                async with response:
                    raise await error_from_response(
                        response, host, operation,
                        f"the registry asks to retry after {wait:.0f} s, longer than the "
                        f"{self.retry.retry_after_cap:g} s this tool waits",
                    )
            if attempt >= attempts:
                async with response:
                    raise await error_from_response(response, host, operation, f"{attempt} attempts")
            response.release()
            delay = self.retry.delay(attempt, wait)
            log.info("%s: %s: HTTP %d; retrying in %.2f s", host, operation, response.status, delay)
            await self._clock.sleep(delay)


def _ssl_context(ca_file: str | Path) -> ssl.SSLContext:
    """The system trust store plus ``ca_file`` (added to it, as Trivy's ``--cacert`` does)."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as err:
        raise UsageError(f"cannot use CA file {ca_file}: {err.strerror or err}") from None
    return context
