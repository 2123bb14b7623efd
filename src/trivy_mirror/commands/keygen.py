"""``trivy-mirror keygen``: the public API's ``trivy_mirror.keygen``, printed."""

from __future__ import annotations

import logging
from pathlib import Path

from trivy_mirror import keygen

log = logging.getLogger("trivy_mirror.keygen")


def run_keygen(path: Path) -> int:
    """Write ``path`` and ``path.pub``; print the key id on stdout (what import messages name the key by)."""
    pair = keygen(path)
    log.info("wrote the private key %s (mode 0600: keep it on the signing side) and the public key %s (give it "
             "to the importing side, out of band)", pair.private, pair.public)
    print(pair.keyid)
    return 0
