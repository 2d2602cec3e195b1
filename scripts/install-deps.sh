#!/usr/bin/env bash
# Install the Debian 12 packages taskd needs to build, test and benchmark.
# Idempotent: installs only what is missing; uses sudo only when not root.
#   --test   also what the tests of the Lambda build need: a Java runtime and npm
#            (each only when absent), the original's FastAPI app's packages, then the
#            AWS stand-ins (scripts/aws-standins.sh) and the OpenAPI validators
#            and the browser driver (scripts/node-tools.sh); chromium for the dashboard's
#            browser test; clang and libclang-rt-14-dev for scripts/fuzz.sh
#   --bench  also the benchmark tools: wrk and nginx (bench/api.sh, bench/pipeline.sh), and the
#            peers of bench/peers.sh: beanstalkd, redis-server, npm (only when absent) and BullMQ
#            (scripts/node-tools.sh install-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}

packages=(
    build-essential cmake ninja-build pkg-config
    libjansson-dev libsqlite3-dev libcurl4-openssl-dev
    libprotobuf-c-dev protobuf-c-compiler
    libcmocka-dev python3 curl jq sqlite3 zip binutils zlib1g-dev
)
if [ "$mode" = "--bench" ]; then
    packages+=(wrk nginx-light beanstalkd redis-server)
    command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
if [ "$mode" = "--test" ]; then
    command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
    command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
    # the original's FastAPI app, run beside taskd by the compatibility suite
    packages+=(python3-fastapi python3-uvicorn python3-pydantic)
    # the libFuzzer harnesses (scripts/fuzz.sh): clang and its fuzzer/sanitizer runtimes
    packages+=(clang libclang-rt-14-dev)
    # the dashboard's browser tests (tests/integration/test_dashboard_*.py), driven by playwright-core
    packages+=(chromium)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    echo "Installing: ${missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$mode" = "--bench" ]; then
    "$root/scripts/node-tools.sh" install-bench
fi
if [ "$mode" = "--test" ]; then
    "$root/scripts/aws-standins.sh" install
    "$root/scripts/node-tools.sh" install
fi
