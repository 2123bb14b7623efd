"""Trivy knowledge: the assets, their metadata, freshness, the recorded state, status, and the publish policy.

The copy engine (:mod:`trivy_mirror.engine`) is generic; this package is what makes a copy Trivy-aware.
Everything that decides whether an artifact may be served to Trivy lives here, in :mod:`.policy`.
"""
