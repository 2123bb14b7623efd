"""A static registry tree: ``sync --to static:DIR`` writes what any static web server, object store or CDN
serves to Trivy as a pull-only OCI registry plus VEX repositories (layout in :mod:`trivy_mirror.static.paths`;
deploy/static has the nginx config and the object-storage recipes)."""

from trivy_mirror.static.destination import StaticDestination, check_keep
from trivy_mirror.static.repository import StaticRepository
from trivy_mirror.static.tree import StaticTree

__all__ = ["StaticDestination", "StaticRepository", "StaticTree", "check_keep"]
