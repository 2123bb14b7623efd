#!/usr/bin/env bash
# Build the trivy-mirror container image from deploy/Containerfile without pulling any base image.
#
#   bash deploy/image/build.sh [OUT.tar]                 # buildah: an OCI archive (default trivy-mirror.oci.tar)
#   bash deploy/image/build.sh --engine docker            # docker build, base python:3.11-slim-bookworm
#
# With buildah (Debian packages buildah and mmdebstrap, run as root): mmdebstrap makes a minimal Debian bookworm
# root filesystem with python3 and its venv module, buildah imports it as the base image, builds the Containerfile
# on it (vfs storage, chroot isolation: no daemon, no user namespaces needed), and writes the image as an OCI
# archive, also kept in buildah's storage as localhost/trivy-mirror:VERSION. The project and its dependencies are
# installed from wheels built here on the host (pip wheel), so the build itself needs no network.
set -euo pipefail
cd "$(dirname "$0")/../.."

engine=buildah
out=trivy-mirror.oci.tar
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) engine="${2:?--engine needs buildah or docker}"; shift 2 ;;
        -*) echo "build.sh: error: unknown option $1" >&2; exit 2 ;;
        *) out="$1"; shift ;;
    esac
done
case "$engine" in buildah|docker) ;; *) echo "build.sh: error: --engine is buildah or docker" >&2; exit 2 ;; esac

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "build.sh: error: $python is not Python 3.11, the Python of Debian bookworm the wheels are built for" \
         "(set PYTHON=python3.11)" >&2
    exit 1
fi
version="$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
image="localhost/trivy-mirror:$version"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/context"
"$python" -m pip wheel -q --disable-pip-version-check --wheel-dir "$work/context/wheels" . 2>/dev/null

if [ "$engine" = docker ]; then
    docker build -f deploy/Containerfile -t "trivy-mirror:$version" "$work/context"
    exit 0
fi

for tool in buildah mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "build.sh: error: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
base="localhost/trivy-mirror-base:bookworm"
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    echo "build.sh: making the base image $base with mmdebstrap" >&2
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/{doc,man,info,locale}/*' bookworm "$work/rootfs.tar"
    container="$(buildah from scratch)"
    buildah add "$container" "$work/rootfs.tar" / >/dev/null
    buildah commit -q --rm "$container" "$base" >/dev/null
fi
buildah build -q --format docker --layers=false --build-arg "BASE=$base" -f deploy/Containerfile -t "$image" \
    "$work/context" >/dev/null
rm -f "$out"
buildah push -q "$image" "oci-archive:$out:trivy-mirror:$version"
echo "build.sh: $image written to $out" >&2
