"""trivy-mirror: self-host Trivy's scan assets."""

__version__ = "0.1.0"
