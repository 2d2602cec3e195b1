#!/usr/bin/env bash
# Node.js tools kept in a cache folder outside the repository:
# ${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}.
#
#   scripts/node-tools.sh install         install the test tools when missing (quick no-op when all is there)
#   scripts/node-tools.sh dir             print their folder (its node_modules holds ajv, ajv-formats and playwright-core)
#   scripts/node-tools.sh redocly-bin     print the path of the redocly executable (@redocly/cli)
#   scripts/node-tools.sh install-bench   install BullMQ and ioredis for bench/peers.sh when missing
#   scripts/node-tools.sh bench-dir       print their folder (its node_modules holds bullmq and ioredis)
#
# The test tools check the OpenAPI document (tests/integration/test_openapi.py) and drive the
# dashboard in Chromium (tests/integration/test_dashboard_*.py): @redocly/cli lints the document; Ajv
# (JSON Schema 2020-12, which OpenAPI 3.1 uses) with ajv-formats compiles its schemas and validates
# the server's answers against them; playwright-core drives Debian's chromium (apt) and downloads no
# browser of its own. BullMQ, with ioredis as its Redis client, is one of the peers that
# bench/peers.sh measures taskd against. Each set is npm-installed, pinned, into one folder named
# after its versions, so that changing a pin installs afresh beside the old folder.
set -euo pipefail

REDOCLY_VERSION=2.77.0 # needs node >= 20.19 (20.x) or >= 22.12
AJV_VERSION=8.20.0
AJV_FORMATS_VERSION=3.0.1
BULLMQ_VERSION=6.7.0
IOREDIS_VERSION=5.9.3
PLAYWRIGHT_VERSION=1.65.1

cache=${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}
root="$cache/node-tools-$REDOCLY_VERSION-$AJV_VERSION-$AJV_FORMATS_VERSION-$PLAYWRIGHT_VERSION"
redocly_bin="$root/node_modules/.bin/redocly"
bench_root="$cache/node-bench-bullmq-$BULLMQ_VERSION-ioredis-$IOREDIS_VERSION"

die() {
    echo "node-tools: $*" >&2
    exit 1
}

installed() {
    [ -x "$redocly_bin" ] && [ -f "$root/node_modules/ajv/package.json" ] &&
        [ -f "$root/node_modules/ajv-formats/package.json" ] &&
        [ -f "$root/node_modules/playwright-core/package.json" ]
}

bench_installed() {
    [ -f "$bench_root/node_modules/bullmq/package.json" ] &&
        [ -f "$bench_root/node_modules/ioredis/package.json" ]
}

# Run a command quietly; on failure show its output and stop.
quiet() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        echo "node-tools: failed: $*" >&2
        tail -n 40 "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

# npm_install DIR CHECK VERIFY PACKAGE@VERSION...: unless CHECK (a function) succeeds, install the
# packages into a fresh folder and move it to DIR once VERIFY (a function given the folder) accepts
# it, so that a failed install leaves nothing behind. One installer at a time.
npm_install() {
    local dir=$1 check=$2 verify=$3
    shift 3
    "$check" && return 0
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        die "node and npm not found: install Node.js 20 with npm (scripts/install-deps.sh --test does)"
    fi
    mkdir -p "$cache"
    # One installer at a time (two test runs may start together).
    exec 9>"$cache/.install.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    "$check" && return 0
    tmp=$(mktemp -d "$cache/.install.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT # a failed install leaves nothing behind (once moved, nothing is there)
    # A package.json of its own, so npm never walks up to another project's.
    echo '{"name": "taskd-node-tools", "private": true}' >"$tmp/package.json"
    # playwright-core downloads no browser; the variable keeps it so should a version try to
    quiet env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
        --no-update-notifier --loglevel=error --prefix "$tmp" --no-package-lock --omit=dev "$@"
    "$verify" "$tmp"
    chmod 755 "$tmp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

verify_openapi_tools() {
    [ -x "$1/node_modules/.bin/redocly" ] || die "@redocly/cli@$REDOCLY_VERSION installed no redocly"
    quiet env REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
        "$1/node_modules/.bin/redocly" --version
}

verify_bench_tools() {
    quiet env NODE_PATH="$1/node_modules" node -e 'require("bullmq"); require("ioredis")'
}

case "${1:-}" in
install)
    npm_install "$root" installed verify_openapi_tools "@redocly/cli@$REDOCLY_VERSION" \
        "ajv@$AJV_VERSION" "ajv-formats@$AJV_FORMATS_VERSION" "playwright-core@$PLAYWRIGHT_VERSION"
    ;;
dir) echo "$root" ;;
redocly-bin) echo "$redocly_bin" ;;
install-bench)
    npm_install "$bench_root" bench_installed verify_bench_tools "bullmq@$BULLMQ_VERSION" \
        "ioredis@$IOREDIS_VERSION"
    ;;
bench-dir) echo "$bench_root" ;;
*)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
