#!/usr/bin/env bash
# The offline AWS stand-ins used by the tests of the Lambda build, kept in a cache
# folder outside the repository: ${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}.
#
#   scripts/aws-standins.sh install            install what is missing (quick no-op when all is there)
#   scripts/aws-standins.sh dynamodb-jar-dir   print the folder holding DynamoDBLocal.jar and DynamoDBLocal_lib
#   scripts/aws-standins.sh fauxqs-bin         print the path of the fauxqs (SNS + SQS) executable
#   scripts/aws-standins.sh osls-bin           print the path of osls (Serverless Framework v3, open source)
#   scripts/aws-standins.sh cache-dir          print the cache folder
#
# DynamoDB Local comes from the npm package amplify-dynamodb-simulator, which ships
# emulator/DynamoDBLocal.jar; only that folder is used (it runs on java), so the package
# is fetched with `npm pack` and unpacked, without its JavaScript dependencies.
# fauxqs (SNS + SQS) and osls (which turns serverless.yml into a CloudFormation template,
# offline) run on node and are npm-installed with their dependencies.
set -euo pipefail

DDB_PACKAGE=amplify-dynamodb-simulator
DDB_VERSION=2.9.30
FAUXQS_PACKAGE=fauxqs
FAUXQS_VERSION=1.9.2 # newer majors need a newer node than Node 20
OSLS_PACKAGE=osls
OSLS_VERSION=4.3.1

cache=${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}
ddb_root="$cache/$DDB_PACKAGE-$DDB_VERSION"
jar_dir="$ddb_root/emulator"
fauxqs_root="$cache/$FAUXQS_PACKAGE-$FAUXQS_VERSION"
fauxqs_bin="$fauxqs_root/node_modules/.bin/fauxqs"
osls_root="$cache/$OSLS_PACKAGE-$OSLS_VERSION"
osls_bin="$osls_root/node_modules/.bin/osls"

die() {
    echo "aws-standins: $*" >&2
    exit 1
}

ddb_installed() { [ -f "$jar_dir/DynamoDBLocal.jar" ] && [ -d "$jar_dir/DynamoDBLocal_lib" ]; }
fauxqs_installed() { [ -x "$fauxqs_bin" ]; }
osls_installed() { [ -x "$osls_bin" ]; }

need_npm() {
    command -v npm >/dev/null 2>&1 ||
        die "npm not found: install Node.js 20 with npm (scripts/install-deps.sh --test does)"
}

# Run a command quietly; on failure show its output and stop.
quiet() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        echo "aws-standins: failed: $*" >&2
        tail -n 40 "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

npm_flags=(--no-audit --no-fund --no-update-notifier --loglevel=error)

install_ddb() {
    ddb_installed && return 0
    need_npm
    local tmp
    tmp=$(mktemp -d "$cache/.install.XXXXXX")
    quiet npm pack "${npm_flags[@]}" --pack-destination "$tmp" "$DDB_PACKAGE@$DDB_VERSION"
    quiet tar -xzf "$tmp"/"$DDB_PACKAGE"-*.tgz -C "$tmp"
    [ -f "$tmp/package/emulator/DynamoDBLocal.jar" ] ||
        die "$DDB_PACKAGE@$DDB_VERSION has no emulator/DynamoDBLocal.jar"
    rm -rf "$ddb_root"
    mv "$tmp/package" "$ddb_root"
    rm -rf "$tmp"
}

# npm-install package@version with its dependencies into root, providing bin.
install_npm() {
    local package=$1 version=$2 root=$3 bin=$4
    [ -x "$root/node_modules/.bin/$bin" ] && return 0
    need_npm
    local tmp
    tmp=$(mktemp -d "$cache/.install.XXXXXX")
    # A package.json of its own, so npm never walks up to another project's.
    echo '{"name": "taskd-standins", "private": true}' >"$tmp/package.json"
    quiet npm install "${npm_flags[@]}" --prefix "$tmp" --no-package-lock --omit=dev \
        "$package@$version"
    [ -x "$tmp/node_modules/.bin/$bin" ] || die "$package@$version installed no $bin executable"
    chmod 755 "$tmp"
    rm -rf "$root"
    mv "$tmp" "$root"
}

cmd_install() {
    command -v java >/dev/null 2>&1 ||
        die "java not found: install a Java 17 runtime (scripts/install-deps.sh --test does)"
    if ddb_installed && fauxqs_installed && osls_installed; then
        return 0
    fi
    mkdir -p "$cache"
    # One installer at a time (two test runs may start together).
    exec 9>"$cache/.install.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    install_ddb
    install_npm "$FAUXQS_PACKAGE" "$FAUXQS_VERSION" "$fauxqs_root" fauxqs
    install_npm "$OSLS_PACKAGE" "$OSLS_VERSION" "$osls_root" osls
}

case "${1:-}" in
install) cmd_install ;;
dynamodb-jar-dir) echo "$jar_dir" ;;
fauxqs-bin) echo "$fauxqs_bin" ;;
osls-bin) echo "$osls_bin" ;;
cache-dir) echo "$cache" ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
