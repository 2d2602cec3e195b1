#!/usr/bin/env bash
# Install what is missing, build build-release/ in Release, and start taskd on 127.0.0.1:8080
# with ./tasks.db (in the folder it is run from). build/ is the test command's (with debug
# information, which the tests that hold taskd's threads with gdb need): a ctest in build/ tests
# what scripts/test.sh built, and neither command rebuilds the other's build.
# Extra arguments go to taskd (e.g. --token-file tokens --listen 0.0.0.0:8080: a
# non-loopback address needs tokens, see docs/auth.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build-release" -DCMAKE_BUILD_TYPE=Release
exec "$root/build-release/taskd" "$@"
