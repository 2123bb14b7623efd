#!/usr/bin/env bash
# Install trivy-mirror from this checkout into a virtual environment (default: .venv in the checkout), so it works
# with Debian's own Python, which refuses `pip install` outside a venv (PEP 668), as well as with any other Python
# 3.11+. Installs Debian's python3-venv when the venv module cannot bootstrap pip. Idempotent.
#
#   bash scripts/install.sh            # the tool:       .venv/bin/trivy-mirror
#   bash scripts/install.sh --dev      # plus the test and lint tools (what scripts/test.sh uses)
#   VENV=/opt/trivy-mirror bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
case "${1:-}" in
    "") ;;
    --dev) extras="[dev]" ;;
    *) echo "install.sh: error: unknown argument ${1} (expected nothing or --dev)" >&2; exit 2 ;;
esac
venv="${VENV:-$PWD/.venv}"

python=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$python" ]; then
    echo "install.sh: error: trivy-mirror needs Python 3.11 or newer (apt-get install python3)" >&2
    exit 1
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -x "$venv/bin/python" ]; then
    probe="$(mktemp -d)"
    if ! "$python" -m venv "$probe/venv" >/dev/null 2>&1; then
        # Debian splits ensurepip out of the interpreter: python3.11-venv for python3.11.
        version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        echo "install.sh: installing python${version}-venv (Debian's venv support)" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "python${version}-venv" >/dev/null
    fi
    rm -rf "$probe"
    "$python" -m venv "$venv"
fi

"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=23.1"
if [ -n "$extras" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".$extras"
else
    "$venv/bin/python" -m pip install -q --disable-pip-version-check .
fi
echo "install.sh: trivy-mirror installed: $venv/bin/trivy-mirror" >&2
