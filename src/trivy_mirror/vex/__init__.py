"""Mirroring and serving VEX repositories (VEX Repository Spec 0.1, as Trivy 0.76 reads it).

``sync_vex`` fetches each repository's manifest and archive, checks and repacks it into ``STORE/vex/NAME``;
``add_vex_routes`` serves it at ``PUBLIC_URL/vex/NAME``; ``vex_statuses`` gives its ``status`` rows.

The names load on first use: the client configuration writer reads ``vex.source`` without loading the fetcher,
the server routes and aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trivy_mirror.lazy import lazy_names

if TYPE_CHECKING:
    from trivy_mirror.vex.extract import Limits
    from trivy_mirror.vex.serve import add_vex_routes, archive_url
    from trivy_mirror.vex.source import DEFAULT_SOURCE, VexSource
    from trivy_mirror.vex.status import vex_statuses
    from trivy_mirror.vex.sync import sync_vex

_LAZY = {
    "Limits": "trivy_mirror.vex.extract", "add_vex_routes": "trivy_mirror.vex.serve",
    "archive_url": "trivy_mirror.vex.serve", "DEFAULT_SOURCE": "trivy_mirror.vex.source",
    "VexSource": "trivy_mirror.vex.source", "vex_statuses": "trivy_mirror.vex.status",
    "sync_vex": "trivy_mirror.vex.sync",
}


__getattr__ = lazy_names(__name__, _LAZY)


__all__ = ["DEFAULT_SOURCE", "Limits", "VexSource", "add_vex_routes", "archive_url", "sync_vex", "vex_statuses"]
