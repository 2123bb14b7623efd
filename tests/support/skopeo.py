"""skopeo, the independent client that checks what the mirror wrote."""

from __future__ import annotations

import subprocess


def skopeo_raw(reference: str) -> bytes:
    """The exact manifest bytes skopeo reads at ``reference`` (``docker://...`` or ``oci:...``)."""
    return subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", reference], capture_output=True,
                          check=True, timeout=60).stdout
