"""One repository on a remote registry, as a :class:`~trivy_mirror.target.WriteTarget`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from trivy_mirror.errors import (
    InvalidDigest,
    InvalidManifest,
    InvalidReference,
    NotFound,
    RegistryError,
    VerificationError,
)
from trivy_mirror.http.failures import error_from_response
from trivy_mirror.http.transport import host_label, read_limited, wire_errors
from trivy_mirror.jsonutil import object_or_none
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import MAX_MANIFEST_SIZE, Descriptor
from trivy_mirror.oci.reference import validate_tag
from trivy_mirror.registry.auth import repository_scope
from trivy_mirror.registry.download import download_blob
from trivy_mirror.registry.pages import Pages
from trivy_mirror.registry.referrers import SUBJECT_HEADER, list_in_fallback_tag, list_referrers
from trivy_mirror.registry.upload import cancel_upload, upload_blob, upload_location
from trivy_mirror.target import ReadTarget

if TYPE_CHECKING:
    from trivy_mirror.registry.client import RegistryClient

MAX_TAGS_PAGE = 16 * 1024 * 1024
_HEAD_UNSUPPORTED = frozenset({405, 501})


def _parse_reference(reference: str) -> tuple[str, Digest | None]:
    """What goes after ``/manifests/`` and, for a digest reference, the digest to verify against."""
    if ":" in reference:
        try:
            digest = Digest.parse(reference)
        except InvalidDigest as err:
            raise InvalidReference(str(err)) from None
        return str(digest), digest
    return validate_tag(reference), None


def _header_digest(response: aiohttp.ClientResponse) -> Digest | None:
    try:
        return Digest.parse(response.headers.get("Docker-Content-Digest", "").strip())
    except InvalidDigest:
        return None


class RemoteRepository:
    """``registry/name``; obtained from :meth:`RegistryClient.repository`, valid while the client is open."""

    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client = client
        self.name = name
        self.pull_scopes = (repository_scope(name, "pull"),)
        self.push_scopes = (repository_scope(name, "pull,push"),)

    @property
    def location(self) -> str:
        return f"{self.client.registry}/{self.name}"

    def __repr__(self) -> str:
        return f"RemoteRepository({self.location!r})"

    def _display(self, reference: str) -> str:
        return f"{self.name}@{reference}" if ":" in reference else f"{self.name}:{reference}"

    async def resolve(self, reference: str) -> Descriptor | None:
        """HEAD the manifest; falls back to GET when HEAD is refused or lacks the digest or type."""
        ref, digest = _parse_reference(reference)
        operation = f"resolve {self._display(ref)}"
        async with await self.client.request(
            "HEAD", f"/v2/{self.name}/manifests/{ref}", operation=operation, repository=self.name,
            scopes=self.pull_scopes, headers={"Accept": mediatype.MANIFEST_ACCEPT}, follow_redirects=True,
        ) as response:
            if response.status == 404:
                return None
            if response.status == 200:
                found = _descriptor_from_headers(response)
                if found is not None:
                    if digest is not None and found.digest != digest:
                        raise VerificationError(
                            f"{self.location}: {operation}: the registry answered for {found.digest.short}"
                        )
                    return found
            elif response.status not in _HEAD_UNSUPPORTED:
                raise await error_from_response(response, host_label(response.url), operation)
        try:
            return (await self.get_manifest(reference)).descriptor
        except NotFound:
            return None

    async def get_manifest(self, reference: str) -> ManifestBytes:
        """The exact manifest bytes and media type; a digest reference (and Docker-Content-Digest) verified."""
        ref, digest = _parse_reference(reference)
        operation = f"get manifest {self._display(ref)}"
        async with await self.client.request(
            "GET", f"/v2/{self.name}/manifests/{ref}", operation=operation, repository=self.name,
            scopes=self.pull_scopes, headers={"Accept": mediatype.MANIFEST_ACCEPT}, follow_redirects=True,
        ) as response:
            if response.status != 200:
                raise await error_from_response(response, host_label(response.url), operation)
            async with wire_errors(host_label(response.url), operation):
                data = await read_limited(response, MAX_MANIFEST_SIZE)
            content_type = response.headers.get("Content-Type")
            announced = _header_digest(response)
        if data is None:
            raise InvalidManifest(
                f"{self.location}: {operation}: manifest is over the {MAX_MANIFEST_SIZE}-byte limit"
            )
        for expected, source in ((digest, "the requested digest"), (announced, "Docker-Content-Digest")):
            if expected is not None and Digest.of(data, expected.algorithm) != expected:
                raise VerificationError(
                    f"{self.location}: {operation}: the manifest does not match {source} {expected.short}"
                )
        try:
            return ManifestBytes.of(data, content_type)
        except InvalidManifest as err:
            raise InvalidManifest(f"{self.location}: {operation}: {err}") from None

    def fetch_blob(self, descriptor: Descriptor) -> AsyncIterator[bytes]:
        """Stream a blob, resuming dropped connections; the caller verifies the digest."""
        return download_blob(self, descriptor)

    async def blob_exists(self, descriptor: Descriptor) -> bool:
        operation = f"check blob {self.name}@{descriptor.digest.short}"
        # Redirects are not followed: a signed storage URL may be valid for GET only, and a redirect already
        # says the registry has the blob.
        async with await self.client.request(
            "HEAD", f"/v2/{self.name}/blobs/{descriptor.digest}", operation=operation, repository=self.name,
            scopes=self.pull_scopes,
        ) as response:
            if response.status == 404:
                return False
            if response.status == 200 or 300 <= response.status < 400:
                return True
            raise await error_from_response(response, self.client.host, operation)

    async def push_blob(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        await upload_blob(self, descriptor, chunks)

    async def mount_blob(self, descriptor: Descriptor, source: ReadTarget) -> bool:
        """Cross-repository mount; only for a source repository on the same registry."""
        if not isinstance(source, RemoteRepository) or source.client.registry != self.client.registry:
            return False
        operation = f"mount blob {descriptor.digest.short} from {source.name} into {self.name}"
        async with await self.client.request(
            "POST", f"/v2/{self.name}/blobs/uploads/", operation=operation, repository=self.name,
            scopes=(*self.push_scopes, *source.pull_scopes),
            query={"mount": str(descriptor.digest), "from": source.name},
        ) as response:
            if response.status == 201:
                return True
            if response.status != 202:
                raise await error_from_response(response, self.client.host, operation)
            location = upload_location(response, operation)
        # The registry opened an ordinary upload instead (blob unknown there, or mounting not allowed).
        await cancel_upload(self, location)
        return False

    async def push_manifest(self, manifest: ManifestBytes) -> None:
        await self._put_manifest(manifest, str(manifest.digest))

    async def tag(self, tag: str, manifest: ManifestBytes) -> None:
        """A PUT of the manifest's bytes under the tag: the registry stores them (again) and moves the tag."""
        await self._put_manifest(manifest, validate_tag(tag))

    async def push_tagged(self, manifest: ManifestBytes, tag: str) -> None:
        """One request: the PUT under the tag stores the manifest too."""
        await self.tag(tag, manifest)

    async def _put_manifest(self, manifest: ManifestBytes, ref: str) -> None:
        operation = f"push manifest {self._display(ref)}"
        async with await self.client.request(
            "PUT", f"/v2/{self.name}/manifests/{ref}", operation=operation, repository=self.name,
            scopes=self.push_scopes, headers={"Content-Type": manifest.media_type}, data=manifest.data,
        ) as response:
            if not 200 <= response.status < 300:
                raise await error_from_response(response, self.client.host, operation)
            stored = _header_digest(response)
            indexed = SUBJECT_HEADER in response.headers
        if stored is not None and stored.algorithm == manifest.digest.algorithm and stored != manifest.digest:
            raise VerificationError(
                f"{self.location}: {operation}: the registry stored {stored.short}, "
                f"not the pushed {manifest.digest.short}"
            )
        subject = manifest.parsed.subject
        if subject is not None and not indexed:
            await list_in_fallback_tag(self, manifest, subject.digest)

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        """The manifests whose subject is ``subject``: the referrers API, else the tag schema fallback."""
        return await list_referrers(self, subject)

    async def tags(self) -> list[str]:
        """Every tag, following ``Link: <...>; rel="next"`` pagination (:class:`~.pages.Pages`)."""
        operation = f"list tags of {self.name}"
        target: str | URL = f"/v2/{self.name}/tags/list"
        tags: list[str] = []
        pages = Pages(self.client.host, operation, await self.client.base_url())
        while True:
            async with await self.client.request(
                "GET", target, operation=operation, repository=self.name, scopes=self.pull_scopes
            ) as response:
                if response.status != 200:
                    raise await error_from_response(response, self.client.host, operation)
                async with wire_errors(self.client.host, operation):
                    data = await read_limited(response, MAX_TAGS_PAGE)
                following = pages.next(response)
            page = _tags_page(data)
            if page is None:
                raise RegistryError(f"{self.client.host}: {operation}: the registry sent an invalid tag list")
            tags += page
            if following is None:
                return tags
            target = following


def _tags_page(data: bytes | None) -> list[str] | None:
    if data is None:
        return None
    doc = object_or_none(data)
    if doc is None:
        return None
    tags = doc.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return None
    return tags


def _descriptor_from_headers(response: aiohttp.ClientResponse) -> Descriptor | None:
    """The manifest descriptor a HEAD describes, or None when a header is missing (then GET instead)."""
    digest = _header_digest(response)
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    size = response.content_length
    if digest is None or size is None or media_type not in mediatype.IMAGE_MANIFESTS | mediatype.INDEXES:
        return None
    return Descriptor(media_type, digest, size)
