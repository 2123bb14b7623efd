"""The copy engine and the sync of Trivy's assets built on it."""
