#!/bin/sh
# base-image.sh: makes the Debian bookworm base image that packaging/Dockerfile
# builds on, for hosts that reach a Debian mirror but no image registry.
#
#   packaging/base-image.sh [TAG]     (default tasksolver-base:bookworm)
#
# Does nothing when TAG already exists, so it is cheap to call before every
# build. Otherwise debootstrap (minbase) makes a root file system from
# $DEBIAN_MIRROR (default http://deb.debian.org/debian) and `docker import`
# turns it into TAG; that took 2.5 minutes here (docs/platform-notes.md).
# Needs root, debootstrap and a running dockerd. Then:
#   docker build -f packaging/Dockerfile --build-arg BASE_IMAGE=TAG -t tasksolver .
set -eu
tag=${1:-tasksolver-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base-image.sh: $tag exists"
    exit 0
fi
command -v debootstrap >/dev/null || {
    echo "base-image.sh: debootstrap is missing (apt-get install debootstrap)" >&2
    exit 1
}
root=$(mktemp -d "${TMPDIR:-/tmp}/tasksolver-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "base-image.sh: debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
# debootstrap lists the release only: add its updates and security fixes,
# as Debian's own images do, and drop the downloaded packages.
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag"
echo "base-image.sh: made $tag"
