"""The two ends of a sync: registry clients pooled per host, and the destination its place names (store,
registry or static tree)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trivy_mirror.catalog.state import Destination, DirectoryStateBook, StateBook
from trivy_mirror.http.transport import RetryPolicy, Timeouts
from trivy_mirror.oci.place import REGISTRY, STATIC, STORE, Place
from trivy_mirror.registry.client import RegistryClient
from trivy_mirror.registry.credentials import Credentials
from trivy_mirror.store import Store
from trivy_mirror.target import WriteTarget

if TYPE_CHECKING:
    from trivy_mirror.static import StaticDestination


@dataclass(frozen=True)
class ConnectionOptions:
    """How to reach the registries of one side of a copy.

    ``insecure`` skips TLS verification and allows plain HTTP to any host of this side only; ``schemes`` maps a
    registry to the scheme its ``--from``/``--to`` named (``https``: TLS only; ``http``: plain HTTP, that host
    only).
    """

    credentials: Credentials | None = None
    insecure: bool = False
    ca_file: Path | None = None
    retry: RetryPolicy | None = None
    """How to retry (None: the default policy)."""
    timeouts: Timeouts | None = None
    """How long to wait (None: the default timeouts)."""
    schemes: Mapping[str, str] = field(default_factory=dict)


class RegistryPool:
    """One client (one connection pool, one token cache) per registry host, closed together."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.options = options
        self._clients: dict[str, RegistryClient] = {}
        self._stack = contextlib.AsyncExitStack()

    async def client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            client = RegistryClient(registry, self.options.credentials, insecure=self.options.insecure,
                                    ca_file=self.options.ca_file, retry=self.options.retry,
                                    timeouts=self.options.timeouts,
                                    scheme=self.options.schemes.get(registry))
            self._clients[registry] = await self._stack.enter_async_context(client)
        return self._clients[registry]

    async def __aenter__(self) -> RegistryPool:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._stack.aclose()


class StoreDestination:
    """The local store; state lives in each layout."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.label = str(store.root)
        self.state: StateBook = _LayoutStateBook(store)

    async def target(self, repository: str) -> WriteTarget:
        return self.store.layout(repository)


class _LayoutStateBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, repository: str) -> dict[str, object]:
        return self.store.layout(repository).read_state()

    def save(self, repository: str, state: dict[str, object]) -> None:
        self.store.layout(repository).write_state(state)


class RegistryDestination:
    """A registry prefix; state lives under the state directory, one folder per destination."""

    def __init__(self, prefix: Place, pool: RegistryPool, state_dir: Path) -> None:
        self.prefix = prefix
        self.pool = pool
        self.label = str(prefix)
        self.state: StateBook = DirectoryStateBook(state_dir / "registries" / str(prefix).replace(":", "_"))

    async def target(self, repository: str) -> WriteTarget:
        client = await self.pool.client(self.prefix.registry)
        return client.repository(self.prefix.repository(repository))


def open_destination(store: Path | None, destination: str | None, pool: RegistryPool) -> Destination:
    """``--to`` names a place (a registry prefix, or ``static:DIR`` for a static tree); without it the store
    (``--store`` or the default). The place's scheme decides which destination opens."""
    from trivy_mirror.catalog.state import default_state_dir
    from trivy_mirror.errors import UsageError
    from trivy_mirror.static import StaticDestination
    from trivy_mirror.store.paths import default_store_dir

    if store and destination:
        raise UsageError("--store and --to cannot be used together")
    place = Place.parse(destination) if destination else Place.store(store or default_store_dir())
    if place.scheme == STATIC:
        return StaticDestination(place.directory)
    if place.scheme == REGISTRY:
        return RegistryDestination(place, pool, default_state_dir())
    if place.scheme == STORE:
        return StoreDestination(Store(place.directory))
    raise UsageError(f"--to {destination}: an OCI layout holds one artifact (trivy-mirror copy); sync writes to "
                     f"a registry prefix, static:DIR or the store")


PUBLIC_URL_ONLY_STATIC = "--public-url applies to --to static:DIR only (serve has its own --public-url)"


def retention(target: Destination, keep: int | None, public_url: str | None) -> tuple[StaticDestination | None, int]:
    """What a writer into ``target`` (a sync, an import) keeps and publishes: the static tree it is (None for the
    store or a registry) and how many versions to keep. UsageError where ``--keep`` or ``--public-url`` do not
    apply (a registry keeps everything; only a static tree is served at a URL the writer names)."""
    from trivy_mirror.errors import UsageError
    from trivy_mirror.static import StaticDestination, check_keep
    from trivy_mirror.store.retention import DEFAULT_KEEP

    static = target if isinstance(target, StaticDestination) else None
    versions = (keep or DEFAULT_KEEP) if isinstance(target, StoreDestination) else check_keep(keep, target)
    if public_url is not None and static is None:
        raise UsageError(PUBLIC_URL_ONLY_STATIC)
    return static, versions
