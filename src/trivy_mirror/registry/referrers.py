"""Referrers on a remote registry: listed through the referrers API, or through the tag schema where the registry
has no such API (distribution 2.8 answers 404), and kept listed there when a referrer is pushed, as oras does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from yarl import URL

from trivy_mirror.errors import InvalidManifest, NotFound, RegistryError
from trivy_mirror.http.failures import error_from_response
from trivy_mirror.http.transport import host_label, read_limited, wire_errors
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor
from trivy_mirror.oci.referrers import MAX_REFERRERS, fallback_tag, listed, referrer_descriptor, referrers_index
from trivy_mirror.registry.pages import Pages

if TYPE_CHECKING:
    from trivy_mirror.registry.repository import RemoteRepository

NO_REFERRERS_API = frozenset({400, 404, 405, 501})
"""Answers of a registry without the referrers API: 404 as the spec says, and what some others send for a path
they do not know."""
SUBJECT_HEADER = "OCI-Subject"
"""Sent back by a registry with the referrers API when it stored a manifest with a subject."""


async def list_referrers(repository: RemoteRepository, subject: Digest) -> list[Descriptor]:
    """The referrers API's answer, every page of it (at most :data:`MAX_REFERRERS` entries), or where there is
    no such API the fallback tag's index (none when that tag does not exist)."""
    operation = f"list referrers of {repository.name}@{subject.short}"
    client = repository.client
    pages = Pages(client.host, operation, await client.base_url())
    target: str | URL = f"/v2/{repository.name}/referrers/{subject}"
    found: list[Descriptor] = []
    while True:
        async with await client.request(
            "GET", target, operation=operation, repository=repository.name, scopes=repository.pull_scopes,
            headers={"Accept": mediatype.OCI_INDEX}, follow_redirects=True,
        ) as response:
            if response.status != 200:
                if pages.read == 0 and response.status in NO_REFERRERS_API:
                    return await _tagged(repository, subject)
                raise await error_from_response(response, host_label(response.url), operation)
            async with wire_errors(host_label(response.url), operation):
                data = await read_limited(response, MAX_MANIFEST_SIZE)
            try:
                if data is None:
                    raise InvalidManifest(f"the list is over the {MAX_MANIFEST_SIZE}-byte limit")
                found += listed(data, response.headers.get("Content-Type"))
            except InvalidManifest as err:
                raise RegistryError(f"{repository.location}: {operation}: {err}") from None
            following = pages.next(response)
        if following is None or len(found) >= MAX_REFERRERS:
            return found[:MAX_REFERRERS]
        target = following


async def _tagged(repository: RemoteRepository, subject: Digest) -> list[Descriptor]:
    try:
        index = await repository.get_manifest(fallback_tag(subject))
    except NotFound:
        return []
    try:
        return listed(index.data, index.media_type)
    except InvalidManifest as err:
        raise RegistryError(f"{repository.location}: tag {fallback_tag(subject)}: {err}") from None


async def list_in_fallback_tag(repository: RemoteRepository, referrer: ManifestBytes, subject: Digest) -> None:
    """Add ``referrer`` to the fallback tag's index of ``subject`` (created when absent), for a registry that
    did not say it indexed the referrer itself. Not atomic: two writers at once may lose one entry, as with
    every client of the tag schema."""
    entries = await _tagged(repository, subject)
    if any(entry.digest == referrer.digest for entry in entries) or len(entries) >= MAX_REFERRERS:
        return
    await repository.tag(fallback_tag(subject), referrers_index([*entries, referrer_descriptor(referrer)]))
