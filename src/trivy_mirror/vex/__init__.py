"""Mirroring and serving VEX repositories (VEX Repository Spec 0.1, as Trivy 0.76 reads it).

``sync_vex`` fetches each repository's manifest and archive, checks and repacks it into ``STORE/vex/NAME``;
``add_vex_routes`` serves it at ``PUBLIC_URL/vex/NAME``; ``vex_statuses`` gives its ``status`` rows.
"""

from trivy_mirror.vex.extract import Limits
from trivy_mirror.vex.serve import add_vex_routes, archive_url
from trivy_mirror.vex.source import DEFAULT_SOURCE, VexSource
from trivy_mirror.vex.status import vex_statuses
from trivy_mirror.vex.sync import sync_vex

__all__ = ["DEFAULT_SOURCE", "Limits", "VexSource", "add_vex_routes", "archive_url", "sync_vex", "vex_statuses"]
