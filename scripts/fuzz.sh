#!/usr/bin/env bash
# Build the libFuzzer harnesses (tests/fuzz) into build-fuzz with clang, ASan and UBSan, then run
# each for FUZZ_SECONDS (default 10) over a copy of its seed corpus (tests/fuzz/corpus/<target>) in
# a temporary directory: nothing new is written into the repository. Non-zero on any crash, leak,
# UB or failed invariant, with the reproducer's path.
#   scripts/fuzz.sh                        every target, 10 s each (CI: 5 s each)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh config   one target for an hour
#   scripts/fuzz.sh --list                 the targets
# Reproduce a finding: build-fuzz/fuzz_<target> <crash file>
# Extra libFuzzer flags: FUZZ_ARGS="-jobs=2 -workers=2" (passed as they are). Targets run
# FUZZ_PARALLEL at a time (default: one per CPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds=${FUZZ_SECONDS:-10}

targets=()
for f in "$root"/tests/fuzz/fuzz_*.c; do
    n=$(basename "$f" .c)
    targets+=("${n#fuzz_}")
done
if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${targets[@]}"
    exit 0
fi
if [ $# -gt 0 ]; then
    for t in "$@"; do
        [ -f "$root/tests/fuzz/fuzz_${t#fuzz_}.c" ] || { echo "fuzz.sh: no target $t (--list)" >&2; exit 2; }
    done
    targets=("${@#fuzz_}")
fi

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (scripts/install-deps.sh --test)" >&2; exit 2; }
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S "$root" -B "$build" "${gen[@]}" -DTASKD_FUZZ=ON -DBUILD_TESTING=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target "${targets[@]/#/fuzz_}" -j "$(nproc)"

work=$(mktemp -d "${TMPDIR:-/tmp}/taskd-fuzz.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target over its corpus copy: its log, and a "clean" mark when it ran and found nothing (a
# target without the mark failed, in its setup as well).
run_target() {
    local t=$1 corpus="$work/$1/corpus" artifacts="$work/$1/artifacts" dict=()
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$root/tests/fuzz/corpus/$t" ]; then
        cp -r "$root/tests/fuzz/corpus/$t/." "$corpus/"
    fi
    [ -f "$root/tests/fuzz/$t.dict" ] && dict=("-dict=$root/tests/fuzz/$t.dict")
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-} \
        "$corpus" >"$work/$t/log" 2>&1 && touch "$work/$t/clean"
}

# As many targets at once as there are CPUs (FUZZ_PARALLEL), each on a core of its own.
parallel=${FUZZ_PARALLEL:-$(nproc)}
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
        wait -n || true
    done
    run_target "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
    echo "== fuzz_$t: ${seconds}s" >&2
    if [ -e "$work/$t/clean" ]; then
        { grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec' \
            "$work/$t/log" || true; } | tr '\n' ' ' >&2
        echo >&2
    else
        tail -n 60 "$work/$t/log" >&2 || echo "fuzz_$t: no log (its setup failed)" >&2
        for a in "$work/$t/artifacts"/*; do
            [ -e "$a" ] && echo "fuzz_$t: reproducer $a (run: $build/fuzz_$t $a)" >&2
        done
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (logs and reproducers kept in $work)" >&2
    exit 1
fi
rm -rf "$work"
echo "fuzz.sh: ${#targets[@]} target(s) clean, ${seconds}s each" >&2
