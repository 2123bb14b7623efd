"""Air-gap bundles: one tar carrying the current version of every mirrored asset, and its import.

A bundle is an uncompressed tar (the layers are already gzip) whose first member is the bundle manifest
(:mod:`trivy_mirror.bundle.format`), listing every other member with its digest and size. The rest are the OCI
image layouts of the assets under ``oci/<repository>/`` (readable as they are by skopeo or oras after ``tar x``)
and the VEX repositories under ``vex/<name>/``. Each kind of asset is a *section*
(:mod:`trivy_mirror.bundle.sections`). A signed bundle (``export --sign``) has a DSSE envelope right after the
manifest (:mod:`trivy_mirror.bundle.attestation`).
"""
