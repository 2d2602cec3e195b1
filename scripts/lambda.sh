#!/usr/bin/env bash
# Build the AWS Lambda deployment package for provided.al2023 (x86_64).
# Usage: scripts/lambda.sh [-o OUT.zip]           (default dist/lambda.zip)
#   BUILD_DIR=DIR   where bootstrap is built, Release (default build-lambda)
#   BIN_DIR=DIR     programs for exec handlers, shipped as bin/ (default deploy/bin, if any)
#
# The zip holds:
#   bootstrap    the runtime: Release, stripped, mode 0755, DT_RPATH $ORIGIN/lib
#   lib/         every shared library bootstrap needs, recursively, except glibc's own
#                (Amazon Linux 2023 has glibc 2.34; nothing else of the base image is
#                relied on)
#   taskd.json   deploy/taskd.json, when it exists (else bootstrap's built-in defaults)
#   bin/         BIN_DIR's files, modes kept: exec handlers run from the function's folder,
#                so a binding's "command": ["./bin/resize"] finds them
# It is written only when scripts/check-lambda-zip.py passes it. Same inputs, same zip:
# files in sorted order, fixed timestamps, no extra attributes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/dist/lambda.zip
while [ $# -gt 0 ]; do
    case $1 in
        -o)
            [ $# -ge 2 ] || { echo "lambda.sh: -o needs a path" >&2; exit 2; }
            out=$2
            shift 2
            ;;
        -h | --help)
            sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "lambda.sh: unknown argument $1 (usage: scripts/lambda.sh [-o OUT.zip])" >&2
            exit 2
            ;;
    esac
done
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$root"
build=${BUILD_DIR:-build-lambda}

missing=()
for tool in cmake ninja zip strip objdump python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "lambda.sh: missing: ${missing[*]} (scripts/install-deps.sh installs them)" >&2
    exit 1
fi
if [ ! -f src/aws/bootstrap.c ]; then
    echo "lambda.sh: src/aws/bootstrap.c is missing: there is no bootstrap to package" >&2
    exit 1
fi

# 1. bootstrap. Its DT_RPATH $ORIGIN/lib (an RPATH, not a RUNPATH: --disable-new-dtags) is
# searched before LD_LIBRARY_PATH, where Lambda lists /lib64 and /usr/lib64 ahead of
# /var/task/lib: the bundled libraries win over any of the same name in the base image.
echo "lambda.sh: building bootstrap (Release) in $build" >&2
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic linker, not the shell
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_C_FLAGS="-ffunction-sections -fdata-sections" \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,--gc-sections -Wl,--as-needed -Wl,-O1 -Wl,--disable-new-dtags" \
    -DCMAKE_BUILD_RPATH='$ORIGIN/lib' \
    >/dev/null
if ! cmake --build "$build" --target bootstrap >&2; then
    echo "lambda.sh: bootstrap did not build (see above)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lambda-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/package
mkdir -p "$stage/lib"
install -m 0755 "$build/bootstrap" "$stage/bootstrap"
strip --strip-all "$stage/bootstrap"

# 2. lib/: the libraries as this machine's dynamic linker would find them, named by SONAME
if ! needs=$(python3 -B scripts/check-lambda-zip.py --needs "$stage/bootstrap"); then
    echo "lambda.sh: cannot collect the libraries bootstrap needs (see above)" >&2
    exit 1
fi
while read -r soname path; do
    [ -n "$soname" ] || continue
    install -m 0644 "$path" "$stage/lib/$soname"
done <<<"$needs"

# 3. the configuration
if [ -f deploy/taskd.json ]; then
    install -m 0644 deploy/taskd.json "$stage/taskd.json"
else
    echo "lambda.sh: note: no deploy/taskd.json, so no taskd.json in the package:" \
        "bootstrap will use its built-in configuration" >&2
fi

# 4. programs for exec handlers
bin_dir=${BIN_DIR:-deploy/bin}
if [ -d "$bin_dir" ]; then
    cp -R --preserve=mode "$bin_dir" "$stage/bin"
fi

# 5. the zip, checked before it replaces the previous one
find "$stage" -exec touch -h -d '2000-01-01 00:00:00 UTC' {} +
(cd "$stage" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | TZ=UTC zip -q -X -9 "$work/lambda.zip" -@)
if ! python3 -B scripts/check-lambda-zip.py "$work/lambda.zip" >&2; then
    echo "lambda.sh: the package fails the check above; $out left unchanged" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
mv -f "$work/lambda.zip" "$out"

size=$(stat -c %s "$out")
unpacked=$(du -sb "$stage" | cut -f1)
mib=$(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }')
echo "$out: $size bytes zipped ($mib MiB), $unpacked bytes unpacked"
echo "bootstrap: $(stat -c %s "$stage/bootstrap") bytes"
n=$(find "$stage/lib" -type f | wc -l)
echo "lib/ ($n libraries, bytes unpacked):"
(cd "$stage/lib" && find . -type f -printf '%f %s\n' | LC_ALL=C sort | awk '{ printf "  %-24s %9d\n", $1, $2 }')
