#!/usr/bin/env bash
# Install the Debian 12 packages taskd needs to build, test and benchmark.
# Idempotent: installs only what is missing; uses sudo only when not root.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config
    libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev
    libprotobuf-c-dev protobuf-c-compiler
    libcmocka-dev python3 curl sqlite3
)
if [ "${1:-}" = "--bench" ]; then
    packages+=(wrk nginx-light)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
echo "Installing: ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
