"""The sync of Trivy's OCI assets into one destination: sources tried in order (:mod:`.assetsync`), and the
destinations and registry pools it works with (:mod:`.endpoints`)."""
