#!/usr/bin/env bash
# Configure and build. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# A new build folder gets Ninja; one configured before (by hand, with any generator)
# keeps its own, so the README's commands work in any order.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
generator=(-G Ninja)
[ -f "$dir/CMakeCache.txt" ] && generator=()
cmake -S . -B "$dir" "${generator[@]}" "$@" >/dev/null
cmake --build "$dir"
