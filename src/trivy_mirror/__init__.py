"""trivy-mirror: self-host Trivy's scan assets."""

from trivy_mirror.version import __version__

__all__ = ["__version__"]
