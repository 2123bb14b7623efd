"""The server's TLS context from a certificate chain and key in PEM files."""

from __future__ import annotations

import ssl
from pathlib import Path

from trivy_mirror.errors import UsageError


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise UsageError(f"cannot load the TLS certificate {cert} and key {key}: {err}") from None
    return context
