"""``trivy-mirror keygen``: a new Ed25519 key pair to sign bundles with (``export --sign``)."""

from __future__ import annotations

import logging
from pathlib import Path

from trivy_mirror.signing import generate_key, public_key_path

log = logging.getLogger("trivy_mirror.keygen")


def run_keygen(path: Path) -> int:
    """Write ``path`` and ``path.pub``; print the key id on stdout (what import messages name the key by)."""
    public = generate_key(path)
    log.info("wrote the private key %s (mode 0600: keep it on the signing side) and the public key %s (give it "
             "to the importing side, out of band)", path, public_key_path(path))
    print(public.keyid)
    return 0
