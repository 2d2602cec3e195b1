#!/usr/bin/env bash
# The Node.js tools of the tests, kept in a cache folder outside the repository:
# ${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}. They check the OpenAPI document
# (tests/integration/test_openapi.py) and drive the dashboard in Chromium
# (tests/integration/test_dashboard.py).
#
#   scripts/node-tools.sh install       install what is missing (quick no-op when all is there)
#   scripts/node-tools.sh dir           print the folder (its node_modules holds ajv, ajv-formats
#                                       and playwright-core)
#   scripts/node-tools.sh redocly-bin   print the path of the redocly executable (@redocly/cli)
#
# @redocly/cli lints the document; Ajv (JSON Schema 2020-12, which OpenAPI 3.1 uses) with
# ajv-formats compiles its schemas and validates the server's answers against them.
# playwright-core drives Debian's chromium (apt); it downloads no browser of its own. All four
# are npm-installed, pinned, into one folder named after their versions, so that changing a pin
# installs afresh beside the old folder.
set -euo pipefail

REDOCLY_VERSION=2.77.0 # needs node >= 20.19 (20.x) or >= 22.12
AJV_VERSION=8.20.0
AJV_FORMATS_VERSION=3.0.1
PLAYWRIGHT_VERSION=1.65.1

cache=${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}
root="$cache/node-tools-$REDOCLY_VERSION-$AJV_VERSION-$AJV_FORMATS_VERSION-$PLAYWRIGHT_VERSION"
redocly_bin="$root/node_modules/.bin/redocly"

die() {
    echo "node-tools: $*" >&2
    exit 1
}

installed() {
    [ -x "$redocly_bin" ] && [ -f "$root/node_modules/ajv/package.json" ] &&
        [ -f "$root/node_modules/ajv-formats/package.json" ] &&
        [ -f "$root/node_modules/playwright-core/package.json" ]
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

cmd_install() {
    installed && return 0
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        die "node and npm not found: install Node.js 20 with npm (scripts/install-deps.sh --test does)"
    fi
    mkdir -p "$cache"
    # One installer at a time (two test runs may start together).
    exec 9>"$cache/.install.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    installed && return 0
    tmp=$(mktemp -d "$cache/.install.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT # a failed install leaves nothing behind (once moved, nothing is there)
    # A package.json of its own, so npm never walks up to another project's.
    echo '{"name": "taskd-node-tools", "private": true}' >"$tmp/package.json"
    # playwright-core downloads no browser; the variable keeps it so should a version try to
    quiet env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
        --no-update-notifier --loglevel=error --prefix "$tmp" --no-package-lock --omit=dev \
        "@redocly/cli@$REDOCLY_VERSION" "ajv@$AJV_VERSION" "ajv-formats@$AJV_FORMATS_VERSION" \
        "playwright-core@$PLAYWRIGHT_VERSION"
    [ -x "$tmp/node_modules/.bin/redocly" ] || die "@redocly/cli@$REDOCLY_VERSION installed no redocly"
    quiet env REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
        "$tmp/node_modules/.bin/redocly" --version
    chmod 755 "$tmp"
    rm -rf "$root"
    mv "$tmp" "$root"
}

case "${1:-}" in
install) cmd_install ;;
dir) echo "$root" ;;
redocly-bin) echo "$redocly_bin" ;;
*)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
