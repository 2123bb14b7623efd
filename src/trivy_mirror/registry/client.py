"""The registry client: one registry, its connection pool, its credentials and its authentication state.

:meth:`RegistryClient.request` is the one place requests are sent from: it picks the scheme, authorizes,
re-authorizes once on a 401, and follows redirects without ever sending ``Authorization`` to another host.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import aiohttp
from yarl import URL

from trivy_mirror.clock import SYSTEM, Clock
from trivy_mirror.errors import RegistryError
from trivy_mirror.http.failures import error_for_status, error_from_response, read_error_body
from trivy_mirror.http.transport import Body, RetryPolicy, Timeouts, Transport
from trivy_mirror.oci.reference import api_host, validate_registry, validate_repository
from trivy_mirror.registry.auth import Authorizer
from trivy_mirror.registry.credentials import Credentials, Keychain
from trivy_mirror.registry.repository import RemoteRepository
from trivy_mirror.version import __version__

USER_AGENT = f"trivy-mirror/{__version__}"
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class RegistryClient:
    """An async context manager owning the HTTP session for one registry (``host[:port]``).

    ``credentials``, when given, are used for every repository; otherwise ``keychain`` (by default docker's
    and podman's credential files, see :class:`Keychain`) is asked per repository. Plain HTTP is used only
    for loopback/RFC 1918 hosts that do not answer https, or for any host when ``insecure`` (which also
    skips certificate verification); ``scheme`` (``https`` or ``http``), when given, is used without probing.
    ``ca_file`` adds a PEM bundle to the system trust store.
    """

    def __init__(
        self, registry: str, credentials: Credentials | None = None, *, insecure: bool = False,
        ca_file: str | Path | None = None, retry: RetryPolicy | None = None, timeouts: Timeouts | None = None,
        keychain: Keychain | None = None, user_agent: str = USER_AGENT, scheme: str | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.registry = validate_registry(registry)
        """The registry's name (``docker.io`` for Docker Hub); the API may live elsewhere, see ``host``."""
        self.host = api_host(self.registry)
        self._credentials = credentials
        self._keychain = keychain
        self._found: dict[str, Credentials | None] = {}
        self._transport = Transport(
            insecure=insecure, ca_file=ca_file, retry=retry, timeouts=timeouts, user_agent=user_agent, scheme=scheme,
            clock=clock,
        )
        self._auth = Authorizer(self.host, self._transport)
        self.monolithic_uploads = True
        """Cleared once the registry rejects a monolithic blob upload; later uploads go chunked directly."""

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.close()

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries and token requests included."""
        return self._transport.requests

    @property
    def retry(self) -> RetryPolicy:
        return self._transport.retry

    def repository(self, name: str) -> RemoteRepository:
        return RemoteRepository(self, validate_repository(name))

    async def ping(self) -> None:
        """Check that the registry answers the OCI API and accepts our credentials (if any)."""
        async with await self.request("GET", "/v2/", operation="GET /v2/") as response:
            if response.status != 200:
                raise await error_from_response(response, self.host, "GET /v2/")

    async def base_url(self) -> URL:
        return await self._transport.base_url(self.host)

    async def credentials(self, repository: str | None) -> Credentials | None:
        if self._credentials is not None:
            return self._credentials
        key = repository or ""
        if key not in self._found:
            if self._keychain is None:
                self._keychain = Keychain.from_environment()
            self._found[key] = await asyncio.to_thread(self._keychain.resolve, self.registry, repository)
        return self._found[key]

    async def request(
        self, method: str, target: str | URL, *, operation: str, repository: str | None = None,
        scopes: Sequence[str] = (), query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None, data: Body = None, follow_redirects: bool = False,
        retry: bool = True,
    ) -> aiohttp.ClientResponse:
        """Send an authorized request; ``target`` is an API path or an absolute URL (e.g. an upload location).

        Returns the response (the caller releases it) for every status except 401 and 403 from the
        registry, which raise :class:`~trivy_mirror.errors.AuthError`. Redirects are followed only when
        asked, and ``Authorization`` goes only to the registry's own origin.
        """
        base = await self.base_url()
        url = target if isinstance(target, URL) else base.with_path(target).with_query(query or {})
        credentials = await self.credentials(repository)
        authorization = await self._auth.authorization(credentials, scopes)
        challenged = False
        hops = 0
        while True:
            trusted = url.origin() == base.origin()
            send_headers = dict(headers or {})
            if authorization is not None and trusted:
                send_headers["Authorization"] = authorization
            response = await self._transport.send(
                method, url, operation=operation, headers=send_headers, data=data, retry=retry
            )
            if response.status in (401, 403) and trusted:
                body = await read_error_body(response)
                response.release()
                if response.status == 401 and not challenged and not isinstance(data, AsyncIterable):
                    challenged = True
                    renewed = await self._auth.challenged(
                        response.headers.getall("WWW-Authenticate", []), credentials, scopes, authorization, base
                    )
                    if renewed is not None:
                        authorization = renewed
                        continue
                raise error_for_status(
                    self.host, operation, response.status, body, self._hint(response.status, credentials)
                )
            location = response.headers.get("Location")
            if follow_redirects and response.status in REDIRECT_STATUSES and location:
                response.release()
                hops += 1
                if hops > MAX_REDIRECTS:
                    raise RegistryError(f"{self.host}: {operation}: more than {MAX_REDIRECTS} redirects")
                try:
                    url = response.url.join(URL(location, encoded=True))
                except ValueError:
                    raise RegistryError(f"{self.host}: {operation}: invalid redirect location") from None
                continue
            return response

    def _hint(self, status: int, credentials: Credentials | None) -> str:
        if credentials is None:
            return f"no credentials found for {self.registry}"
        if status == 401:
            return f"the credentials for {self.registry} were rejected"
        return f"the credentials for {self.registry} do not grant this access, or its policy refuses it"
