"""Pushes into the catalog's repositories pass the checks ``sync`` applies before it publishes.

A push to ``aquasec/trivy-db:2`` (or an alias) replaces what every scanner downloads next, so it must be what
Trivy accepts and no older than what is served: one layer with the right media type and title, the schema
version the tag stands for (read from the pushed layer's ``metadata.json``), the checks bundle's major version,
and an UpdatedAt not in the future: :mod:`trivy_mirror.catalog.policy`, as for ``sync`` and ``import``. A
referrer (a manifest with a subject) pushed by digest is accepted there too: it is only listed by the referrers
API. Other repositories take any well-formed artifact.
"""

from __future__ import annotations

from collections.abc import Mapping

from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import CATALOG, AssetSpec
from trivy_mirror.catalog.layerinfo import LayerInfoError, read_layer_metadata
from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.manifest import Manifest
from trivy_mirror.target import WriteTarget

CATALOG_REPOSITORIES: Mapping[str, AssetSpec] = {spec.mirror_repository: spec for spec in CATALOG}
"""Store names of the catalog (aliases resolve to these before the check)."""


async def check_catalog_push(repository: str, target: WriteTarget, manifest: ManifestBytes,
                             tag: str | None) -> None:
    """Raise :class:`RefusedCandidate` when a push into a catalog repository is not one sync would publish.

    The blobs the manifest references must already be in ``target`` (the layer is read from there).
    """
    spec = CATALOG_REPOSITORIES.get(repository)
    if spec is None:
        return
    tags = [tag_spec.tag for tag_spec in spec.tags]
    if tag is None and manifest.parsed.subject is not None:
        return  # a referrer (a signature, an attestation): Trivy never reads it in place of the asset
    if tag is None:
        raise RefusedCandidate(f"{spec.name}: push Trivy's {spec.name} by tag ({', '.join(tags)}), not by digest")
    if policy.is_dated_tag(spec, tag):
        existing = await target.resolve(tag)
        policy.check_dated_tag(spec, tag, str(manifest.digest), await target.resolve(str(manifest.digest)) is not None,
                               str(existing.digest) if existing is not None else None)
        return
    if tag not in tags:
        raise RefusedCandidate(f"{spec.name}: Trivy reads only the tag(s) {', '.join(tags)} of {repository}, "
                               f"not {tag!r}")
    parsed = manifest.parsed
    layer = policy.check_shape(spec, parsed)
    assert isinstance(parsed, Manifest)  # check_shape refuses an index
    metadata = None
    if spec.has_metadata:
        try:
            metadata = await read_layer_metadata(target, layer)
        except LayerInfoError as err:
            raise RefusedCandidate(f"{spec.name}: {err}") from None
    policy.check_version(spec, tag, parsed, metadata)
    current = await target.resolve(tag)
    if current is not None and current.digest != manifest.digest:
        served = await policy.served_version(spec, target, {}, tag, current)
        policy.check_not_older(spec, parsed, metadata, served)
