"""A private CA and a server certificate signed by it, made with openssl, for TLS tests on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_tls(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    key, csr, cert, ext = tmp_path / "tls.key", tmp_path / "tls.csr", tmp_path / "tls.pem", tmp_path / "ext.cnf"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_cert),
        "-days", "2", "-subj", "/CN=trivy-mirror test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca_cert, cert, key
