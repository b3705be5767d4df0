#!/bin/sh
# Installs what tasksolver needs to build and run on Debian bookworm; with
# the argument `test`, also what the test suite starts itself (dockerd and
# docker-compose for the packaged image, debootstrap for its base image,
# PostgreSQL for the shared store).
# Run as root. Safe to run again.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    build-essential cmake pkg-config python3 ca-certificates \
    libcivetweb-dev libcjson-dev uuid-dev libbsd-dev libcurl4-openssl-dev libsqlite3-dev \
    libpq-dev libcmocka-dev clang libclang-rt-14-dev libseccomp-dev
if [ "${1:-}" = test ]; then
    apt-get install -y -q --no-install-recommends docker.io docker-compose debootstrap \
        postgresql
fi
