"""A parent mirror (``--parent URL``): an edge trivy-mirror that takes everything from a central one.

The parent serves the assets under ``HOST/aquasec/...`` (the OCI registry API) and lists its VEX repositories at
``URL/vex/`` (``{"repositories": [{"name": ...}]}``); each one is a VEX repository at ``URL/vex/NAME``. The edge
therefore syncs from the prefix ``HOST/aquasec`` and mirrors every listed VEX repository under the same name.

The listing is read on every sync, so a repository added on the parent reaches the edges without a restart. The
sources' credentials go to the parent's host only (the registry API, the listing and its VEX files), never to a
redirect target elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from yarl import URL

from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.http.transport import Transport, host_label
from trivy_mirror.mirror.endpoints import ConnectionOptions
from trivy_mirror.oci.place import Place
from trivy_mirror.registry.credentials import Credentials, authorization_header
from trivy_mirror.vex.fetch import Fetcher
from trivy_mirror.vex.listing import LISTING_PATH, MAX_LISTING, listing_names
from trivy_mirror.vex.source import VexSource, check_name

ASSET_PATH = "aquasec"
"""Where a trivy-mirror serve holds the assets: ``HOST/aquasec/trivy-db`` and so on."""

@dataclass(frozen=True)
class Parent:
    """A central trivy-mirror serve at ``url`` (``scheme://host[:port]``, no path)."""

    url: str

    @classmethod
    def parse(cls, text: str) -> Parent:
        """``http(s)://HOST[:PORT]``; a bare ``HOST[:PORT]`` means https. Raises UsageError."""
        value = text.strip()
        if "://" not in value:
            value = f"https://{value}"
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
        except ValueError:
            valid = False
        if not valid or parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise UsageError(f"invalid --parent {text[:120]!r}: expected http(s)://HOST[:PORT] of a trivy-mirror "
                             f"serve (credentials go in --src-creds)")
        return cls(f"{parts.scheme}://{parts.netloc}")

    @property
    def host(self) -> str:
        """``host[:port]``: the registry the assets are read from."""
        return host_label(URL(self.url))

    @property
    def prefix(self) -> Place:
        return Place.parse(f"{self.host}/{ASSET_PATH}")

    def vex_source(self, name: str) -> VexSource:
        return VexSource(check_name(name), f"{self.url}/vex/{name}")

    def authorization(self, credentials: Credentials | None) -> dict[str, str]:
        """The ``Authorization`` header per host for the VEX fetches: the parent's host only."""
        header = authorization_header(credentials)
        return {self.host: header} if header else {}

    async def vex_sources(self, transport: Transport, credentials: Credentials | None) -> list[VexSource]:
        """The VEX repositories the parent serves now, sorted by name; MirrorError when it cannot say."""
        fetcher = Fetcher(transport, self.authorization(credentials))
        url = f"{self.url}{LISTING_PATH}"
        data = await fetcher.get_bytes(url, what=f"the VEX listing of the parent {self.url}", max_bytes=MAX_LISTING)
        try:
            return [self.vex_source(name) for name in sorted(set(listing_names(data)))]
        except (ValueError, UsageError):
            raise MirrorError(f"{url} is not a trivy-mirror VEX listing (is --parent a trivy-mirror serve?)") \
                from None


def merge_vex(explicit: list[VexSource], discovered: list[VexSource]) -> list[VexSource]:
    """``--vex-from`` first; a discovered repository whose name ``--vex-from`` also gives is left out."""
    names = {source.name for source in explicit}
    return [*explicit, *(source for source in discovered if source.name not in names)]



async def discover_vex(parent: Parent, options: ConnectionOptions,
                       stored: Sequence[str] = ()) -> tuple[list[VexSource], MirrorError | None]:
    """The parent's VEX repositories, and None; or, when it cannot be asked, the ``stored`` names taken from it
    (the edge keeps syncing, and reporting, what it has) and why."""
    transport = Transport(insecure=options.insecure, ca_file=options.ca_file, retry=options.retry,
                          timeouts=options.timeouts)
    try:
        return await parent.vex_sources(transport, options.credentials), None
    except MirrorError as err:
        return [parent.vex_source(name) for name in stored], err
    finally:
        await transport.close()
