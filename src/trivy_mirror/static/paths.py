"""The static tree's shape: the files a pull-only OCI registry is made of, and where trivy-mirror keeps its notes.

::

    DIR/v2/index.json                                    {} : GET /v2/ answers 200 (the server's index file)
    DIR/v2/NAME/manifests/TAG                            what the tag points at, replaced by one rename
    DIR/v2/NAME/manifests/sha256:HEX                     every kept manifest, by digest
    DIR/v2/NAME/blobs/sha256:HEX                         blobs
    DIR/v2/aquasecurity/trivy-db -> ../aquasec/trivy-db  the ghcr names: symlinks to the mirror.gcr.io paths
    DIR/vex/NAME/.well-known/vex-repository.json         a VEX repository's manifest (one location, below)
    DIR/vex/NAME/archive.tar.gz                          its archive
    DIR/.trivy-mirror/                                   never served: lock, temp files, sync state, history,
                                                         the VEX work store, and the sidecar (headers.json and
                                                         the nginx maps made from it)

Every path is the URL path a client asks for, so any static HTTP server, object store or CDN serves the tree
as it is; only ``Content-Type`` (and ``Docker-Content-Digest``) need the sidecar.
"""

from __future__ import annotations

from trivy_mirror.catalog import assets
from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.reference import validate_repository, validate_tag

SCHEME = "static:"
V2_DIR = "v2"
VEX_DIR = "vex"
META_DIR = ".trivy-mirror"
"""trivy-mirror's own files inside the tree; servers must not serve it (the nginx config serves /v2/ and /vex/)."""
MANIFESTS_DIR = "manifests"
BLOBS_DIR = "blobs"
PING_FILE = "index.json"
PING_BODY = b"{}\n"
HEADERS_FILE = "headers.json"
NGINX_DIR = "nginx"
TYPES_MAP = "content-types.map"
DIGESTS_MAP = "digests.map"
SETTINGS_FILE = "static.json"

ALIASES = {f"aquasecurity/{spec.repository}": spec.mirror_repository for spec in assets.CATALOG}
"""The ghcr.io names Trivy knows -> the mirror.gcr.io paths the tree keeps (as the embedded server answers)."""

_RESERVED = frozenset({MANIFESTS_DIR, BLOBS_DIR})


def check_repository(repository: str) -> str:
    """A repository name usable as a directory of ``v2/``: valid, and no component that is a repository's own."""
    validate_repository(repository)
    reserved = _RESERVED.intersection(repository.split("/"))
    if reserved:
        raise InvalidReference(f"repository name {repository!r} cannot be written to a static tree: "
                               f"{sorted(reserved)[0]!r} is a reserved path component")
    return repository


def manifest_name(reference: str) -> str:
    """The file name of a tag or digest under ``manifests/``; raises InvalidReference or InvalidDigest."""
    return str(Digest.parse(reference)) if ":" in reference else validate_tag(reference)


def is_digest_name(name: str) -> bool:
    return ":" in name
