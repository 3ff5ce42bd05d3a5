#!/bin/sh
# A base image for docker/Dockerfile made from Debian packages alone, for hosts that reach a
# Debian mirror but not Docker Hub (where python:3.11-slim lives). Debian bookworm's python3 is
# 3.11; the Dockerfile puts everything in a venv, so python3-venv is all it needs from Python.
#   sudo docker/build-debian-base.sh [TAG] [MIRROR]
#   docker build -f docker/Dockerfile --build-arg BASE_IMAGE=hpo-base:bookworm -t hpo-service .
# Needs root, debootstrap (apt-get install debootstrap) and a running Docker engine.
set -eu

TAG="${1:-hpo-base:bookworm}"
MIRROR="${2:-http://deb.debian.org/debian}"
SUITE="${SUITE:-bookworm}"
# passwd brings useradd; ca-certificates lets pip verify PyPI.
PACKAGES="python3,python3-venv,ca-certificates,passwd"

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/hpo-rootfs.XXXXXX")"
trap 'rm -rf "$ROOTFS"' EXIT

debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR"
# An image needs no package lists, apt caches or man pages: about 40 MB less.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/doc/*

tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$TAG"
docker image inspect --format '{{.RepoTags}} {{.Size}} bytes' "$TAG"
