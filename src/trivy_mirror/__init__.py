"""trivy-mirror: self-host Trivy's scan assets.

The public API is this flat namespace (httpx style); the modules behind it are private. Importing the package
is cheap: the operations load on first use.

    import trivy_mirror

    report = trivy_mirror.sync(store="/srv/trivy-mirror", sources=["10.0.0.5:5000/aquasec"])
    if not report.ok:
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trivy_mirror.errors import (
    AuthError,
    BundleError,
    CopyError,
    MirrorError,
    NotFound,
    RefusedCandidate,
    RegistryError,
    SignatureError,
    StoreError,
    Unreachable,
    UsageError,
)
from trivy_mirror.lazy import lazy_names
from trivy_mirror.version import __version__

if TYPE_CHECKING:
    from trivy_mirror.bundle.exporting import ExportReport
    from trivy_mirror.bundle.importer import ImportReport
    from trivy_mirror.catalog.freshness import AssetStatus
    from trivy_mirror.catalog.policy import TrustSettings
    from trivy_mirror.catalog.result import TagResult
    from trivy_mirror.engine.events import Progress, TransferLog
    from trivy_mirror.facade import (
        ClientOptions,
        FanOutReport,
        StatusReport,
        approve,
        async_approve,
        async_copy,
        async_export_bundle,
        async_import_bundle,
        async_pin,
        async_rollback,
        async_status,
        async_sync,
        async_unpin,
        copy,
        export_bundle,
        import_bundle,
        pin,
        rollback,
        status,
        sync,
        unpin,
        verify,
    )
    from trivy_mirror.http.transport import RetryPolicy, Timeouts
    from trivy_mirror.mirror.copy import CopyResult
    from trivy_mirror.mirror.pins import PinResult
    from trivy_mirror.oci.place import Place
    from trivy_mirror.orchestrate import ApproveResult, SyncReport, VerifyReport
    from trivy_mirror.server.census import ClientRecord
    from trivy_mirror.signing import KeyPair, keygen

_LAZY = {
    "sync": "trivy_mirror.facade", "async_sync": "trivy_mirror.facade", "status": "trivy_mirror.facade",
    "async_status": "trivy_mirror.facade", "ClientOptions": "trivy_mirror.facade",
    "SyncReport": "trivy_mirror.orchestrate", "TagResult": "trivy_mirror.catalog.result",
    "AssetStatus": "trivy_mirror.catalog.freshness", "RetryPolicy": "trivy_mirror.http.transport",
    "Timeouts": "trivy_mirror.http.transport",
    "copy": "trivy_mirror.facade", "async_copy": "trivy_mirror.facade", "CopyResult": "trivy_mirror.mirror.copy",
    "export_bundle": "trivy_mirror.facade", "async_export_bundle": "trivy_mirror.facade",
    "import_bundle": "trivy_mirror.facade", "async_import_bundle": "trivy_mirror.facade",
    "ExportReport": "trivy_mirror.bundle.exporting", "ImportReport": "trivy_mirror.bundle.importer",
    "Progress": "trivy_mirror.engine.events", "TransferLog": "trivy_mirror.engine.events",
    "TrustSettings": "trivy_mirror.catalog.policy", "FanOutReport": "trivy_mirror.facade",
    "StatusReport": "trivy_mirror.facade", "Place": "trivy_mirror.oci.place",
    "ClientRecord": "trivy_mirror.server.census",
    "verify": "trivy_mirror.facade", "VerifyReport": "trivy_mirror.orchestrate",
    "pin": "trivy_mirror.facade", "async_pin": "trivy_mirror.facade", "unpin": "trivy_mirror.facade",
    "async_unpin": "trivy_mirror.facade", "rollback": "trivy_mirror.facade", "async_rollback": "trivy_mirror.facade",
    "PinResult": "trivy_mirror.mirror.pins", "approve": "trivy_mirror.facade", "async_approve": "trivy_mirror.facade",
    "ApproveResult": "trivy_mirror.orchestrate", "keygen": "trivy_mirror.signing", "KeyPair": "trivy_mirror.signing",
}


__getattr__ = lazy_names(__name__, _LAZY)


__all__ = [
    "ApproveResult",
    "AssetStatus",
    "AuthError",
    "BundleError",
    "ClientOptions",
    "ClientRecord",
    "CopyError",
    "CopyResult",
    "ExportReport",
    "FanOutReport",
    "ImportReport",
    "KeyPair",
    "MirrorError",
    "NotFound",
    "PinResult",
    "Place",
    "Progress",
    "RefusedCandidate",
    "RegistryError",
    "RetryPolicy",
    "SignatureError",
    "StatusReport",
    "StoreError",
    "SyncReport",
    "TagResult",
    "Timeouts",
    "TransferLog",
    "TrustSettings",
    "Unreachable",
    "UsageError",
    "VerifyReport",
    "__version__",
    "approve",
    "async_approve",
    "async_copy",
    "async_export_bundle",
    "async_import_bundle",
    "async_pin",
    "async_rollback",
    "async_status",
    "async_sync",
    "async_unpin",
    "copy",
    "export_bundle",
    "import_bundle",
    "keygen",
    "pin",
    "rollback",
    "status",
    "sync",
    "unpin",
    "verify",
]
