#!/usr/bin/env bash
# Install what is missing, build into build/, and run every test through CTest, three at once
# (most wait on timers, taskd's, a browser's or a stand-in's: on two cores the whole run took
# 448 s where two at once took 607), two at once under SANITIZE=1; TEST_JOBS=N runs N at once.
# SANITIZE=1 builds into build-asan with AddressSanitizer + UBSan (leaks fail the run) and runs
# every test but those labelled unsanitized, whose subject no sanitizer sees (CMakeLists.txt).
# Extra arguments go to ctest: scripts/test.sh -R integration_test_api runs that test alone; a
# selection that names no test fails (an unsanitized check under SANITIZE=1 among them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" --test
only=()
if [ "${SANITIZE:-0}" = 1 ]; then
    dir="$root/build-asan"
    jobs=${TEST_JOBS:-2}
    only=(-LE unsanitized)
    "$root/scripts/build.sh" "$dir" -DCMAKE_BUILD_TYPE=Debug -DTASKD_SANITIZE=ON
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
    # the build type named, not left to the cache: a build/ configured in Release by hand has
    # no debug information for the tests that hold taskd's threads with gdb (the run command
    # builds build-release/)
    dir="$root/build"
    jobs=${TEST_JOBS:-3}
    "$root/scripts/build.sh" "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cd "$dir"
ctest --output-on-failure --no-tests=error -j"$jobs" "${only[@]}" "$@"
