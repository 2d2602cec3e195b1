#!/usr/bin/env bash
# bench/lambda.sh - benchmark of the Lambda build (bootstrap, role api) on this
# machine, through the Lambda emulator (tests/lambda/emulator.py) over DynamoDB
# Local. Per round (RUNS rounds):
#   1. cold init, exec -> first /next: INIT_N starts of bootstrap with the
#      emulator's --bench-init; baselines in the same round: a minimal C
#      runtime (null runtime, built here) measured the same way, and
#      /bin/true and `python3 -c pass` measured exec -> exit, and bootstrap
#      without a Runtime API (it exits at its first check) the same way;
#   2. warm invocations of GET /tasks/{id} and POST /tasks through the
#      emulator's API Gateway front (one environment, one client, sequential,
#      N each after WARMUP): the emulator's duration_ms and the client's
#      latency, each request followed by the equivalent raw DynamoDB call
#      (GetItem ConsistentRead / conditional PutItem) timed on its own; then
#      bootstrap's VmRSS/VmHWM; and the null runtime's warm invocations;
# and prints per-round medians and the median of the rounds with their range.
# See bench/README.md.
#
# Env options: RUNS (3), INIT_N (30 starts per round), N (500 requests of each
#   kind per round), WARMUP (50), BUILD_DIR (build-release), BOOTSTRAP
#   ($BUILD_DIR/bootstrap), PYTHON (the real interpreter behind python3),
#   CC (cc, for the null runtime), EMULATOR (tests/lambda/emulator.py; another
#   copy with the same command line), KEEP_TMP (1 = keep logs and raw results).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

RUNS=${RUNS:-3}
INIT_N=${INIT_N:-30}
N=${N:-500}
WARMUP=${WARMUP:-50}
BUILD_DIR=${BUILD_DIR:-build-release}
CC=${CC:-cc}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_positive RUNS INIT_N N WARMUP

[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
BOOTSTRAP=${BOOTSTRAP:-$BUILD_DIR/bootstrap}
[[ $BOOTSTRAP == /* ]] || BOOTSTRAP=$PWD/$BOOTSTRAP
if [[ ! -x $BOOTSTRAP ]]; then
  echo "$(basename "$0"): bootstrap not found at $BOOTSTRAP" >&2
  echo "Build it first (from the repository root):" >&2
  echo "  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && cmake --build build-release --target bootstrap" >&2
  exit 1
fi

# --- tools -------------------------------------------------------------------
# Resolve the interpreter once: a version-manager shim (pyenv) takes most of a
# second to start, and `python3 -c pass` is one of the baselines.
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)}
[[ -n $PYTHON && -x $PYTHON ]] || die "python3 not found"
command -v java >/dev/null || die "java not found: DynamoDB Local needs a Java runtime (scripts/install-deps.sh --test)"
JAR_DIR=${DYNAMODB_LOCAL_DIR:-$("$ROOT/scripts/aws-standins.sh" dynamodb-jar-dir)}
[[ -f $JAR_DIR/DynamoDBLocal.jar ]] || die "DynamoDB Local not installed: run scripts/aws-standins.sh install"
EMULATOR=${EMULATOR:-$ROOT/tests/lambda/emulator.py}
[[ $EMULATOR == /* ]] || EMULATOR=$PWD/$EMULATOR
HELPER=$ROOT/bench/lambda_bench.py
[[ -f $EMULATOR ]] || die "Lambda emulator not found at $EMULATOR"

# --- temp dir and cleanup ------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskd-lambda-bench.XXXXXX")
CHILD_PID=""
DDB_PID=""

# stop_pidfile FILE PATTERN: stop the process FILE names if it still runs and its
# command line contains PATTERN (a process this run started, not a reused pid).
stop_pidfile() {
  local pid
  [[ -s $1 ]] || return 0
  pid=$(tr -dc '0-9' <"$1")
  [[ -n $pid ]] || return 0
  [[ -r /proc/$pid/cmdline ]] || return 0
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 0
  stop_pid "$pid" TERM 5
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$CHILD_PID" TERM 10
  stop_pidfile "$TMP/emulator.pid" emulator.py
  stop_pid "$DDB_PID" TERM 10
  stop_pidfile "$TMP/java.pid" DynamoDBLocal.jar
  wait 2>/dev/null || true
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    echo "bench/lambda.sh: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench/lambda.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# run CMD...: run in the background (so the traps can stop it), wait for it.
run() {
  local rc=0
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}

helper() { run "$PYTHON" -B "$HELPER" "$@"; }

# --- the null runtime: the cheapest custom runtime -------------------------------
# exec -> connect -> GET /next; every invocation answered with a fixed 200 on
# one keep-alive connection. Its init and its invocations are the floor of what
# the emulator can measure on this machine.
cat >"$TMP/null_runtime.c" <<'C'
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd;
static char buf[65536];
static size_t len;

static int fill(void)
{
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0)
        return -1;
    len += (size_t)n;
    buf[len] = '\0';
    return 0;
}

static int send_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One response: the head, then Content-Length bytes (dropped). rid: the request id header. */
static int read_response(char *rid, size_t rlen)
{
    char *end;
    while (!(end = strstr(buf, "\r\n\r\n")))
        if (len >= sizeof buf - 1 || fill() < 0)
            return -1;
    *end = '\0';
    size_t head = (size_t)(end - buf) + 4;
    long body = 0;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        char *h = line + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            body = strtol(h + 15, NULL, 10);
        else if (rid && strncasecmp(h, "Lambda-Runtime-Aws-Request-Id:", 30) == 0) {
            h += 30;
            h += strspn(h, " ");
            size_t n = strcspn(h, "\r");
            if (n >= rlen)
                return -1;
            memcpy(rid, h, n);
            rid[n] = '\0';
        }
    }
    memmove(buf, buf + head, len - head);
    len -= head;
    buf[len] = '\0';
    while (body > 0) {
        if (len == 0 && fill() < 0)
            return -1;
        size_t take = (size_t)body < len ? (size_t)body : len;
        memmove(buf, buf + take, len - take);
        len -= take;
        body -= (long)take;
        buf[len] = '\0';
    }
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *colon = api ? strrchr(api, ':') : NULL;
    if (!colon)
        return 2;
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - api), api);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return 2;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return 2;
    static const char next[] = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n";
    static const char answer[] =
        "{\"statusCode\":200,\"headers\":{\"Content-Type\":\"application/json\"},\"body\":\"{}\"}";
    char rid[128], req[512];
    for (;;) {
        if (send_all(next, sizeof next - 1) < 0 || read_response(rid, sizeof rid) < 0)
            return 0;
        int n = snprintf(req, sizeof req,
                         "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: runtime\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         rid, sizeof answer - 1, answer);
        if (send_all(req, (size_t)n) < 0 || read_response(NULL, 0) < 0)
            return 0;
    }
}
C
command -v "$CC" >/dev/null || die "no C compiler ($CC) for the null runtime baseline; set CC"
"$CC" -O2 -o "$TMP/null-runtime" "$TMP/null_runtime.c" || die "could not build the null runtime"
NULL_RUNTIME=$TMP/null-runtime

# --- machine / settings ----------------------------------------------------------
export RUNS INIT_N N WARMUP
export B_NPROC B_KERNEL B_CPU B_LOADAVG B_LOADAVG_END B_BOOTSTRAP_REL B_BUILD_TYPE B_BOOTSTRAP_SIZE \
  B_BOOTSTRAP_LIBS B_EMULATOR_REL B_PYTHON_REL B_PYTHON_VERSION B_JAVA_VERSION B_DDB_VERSION B_DDB_START_S B_NULL_RUNTIME
B_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
B_NPROC=$(nproc)
B_KERNEL=$(uname -r)
B_CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
B_CPU=${B_CPU:-unknown}
B_BOOTSTRAP_REL=${BOOTSTRAP#"$ROOT"/}
B_EMULATOR_REL=${EMULATOR#"$ROOT"/}
B_BUILD_TYPE=unknown
bdir=$(dirname "$BOOTSTRAP")
if [[ -f $bdir/CMakeCache.txt ]]; then
  B_BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$bdir/CMakeCache.txt")
  B_BUILD_TYPE=${B_BUILD_TYPE:-"(empty: the project's default, RelWithDebInfo)"}
fi
B_BOOTSTRAP_SIZE=$(stat -c %s "$BOOTSTRAP")
B_BOOTSTRAP_LIBS=$( (ldd "$BOOTSTRAP" 2>/dev/null || true) | grep -c '=>' || true)
B_PYTHON_REL=$(basename "$PYTHON")
B_PYTHON_VERSION=$("$PYTHON" -c 'import platform; print(platform.python_version())')
B_JAVA_VERSION=$(java -version 2>&1 | head -n 1 | sed 's/^[^"]*"\([^"]*\)".*/\1/')
B_DDB_VERSION=$(sed -n 's/^DDB_VERSION=\([^ #]*\).*/amplify-dynamodb-simulator \1/p' "$ROOT/scripts/aws-standins.sh")
B_NULL_RUNTIME="C, $("$CC" --version 2>/dev/null | head -n 1) -O2, built into the temp dir"

echo "bench/lambda.sh: nproc=$B_NPROC kernel=$B_KERNEL loadavg=$B_LOADAVG; RUNS=$RUNS INIT_N=$INIT_N N=$N WARMUP=$WARMUP"
echo "bootstrap: $B_BOOTSTRAP_REL (CMAKE_BUILD_TYPE=$B_BUILD_TYPE)"
[[ $B_BUILD_TYPE == Release ]] ||
  echo "WARNING: bootstrap is not a Release build; the figures will not be comparable"
warn_if_loaded

# --- DynamoDB Local, one for the whole run -----------------------------------------
TABLE=bench-tasks
echo
echo "== starting DynamoDB Local"
"$PYTHON" -B "$HELPER" ddb --info "$TMP/ddb.json" --table "$TABLE" >"$TMP/ddb.log" 2>&1 &
DDB_PID=$!
for ((i = 0; i < 600; i++)); do
  [[ -s $TMP/ddb.json ]] && break
  kill -0 "$DDB_PID" 2>/dev/null || { cat "$TMP/ddb.log" >&2; die "DynamoDB Local did not start"; }
  sleep 0.1
done
[[ -s $TMP/ddb.json ]] || { cat "$TMP/ddb.log" >&2; die "DynamoDB Local did not start within 60 s"; }
read -r ENDPOINT JAVA_PID B_DDB_START_S < <("$PYTHON" -c \
  'import json,sys; o=json.load(open(sys.argv[1])); print(o["endpoint"], o["java_pid"], o["start_s"])' "$TMP/ddb.json")
echo "$JAVA_PID" >"$TMP/java.pid"
echo "  DynamoDB Local on $ENDPOINT (started in ${B_DDB_START_S}s), table $TABLE"

FN_ENV=(--env "TABLE_NAME=$TABLE" --env "AWS_ENDPOINT_URL_DYNAMODB=$ENDPOINT" --env AWS_REGION=eu-west-1
  --env AWS_ACCESS_KEY_ID=ASIATASKDBENCHKEY001 --env AWS_SECRET_ACCESS_KEY=taskdBenchSecretAccessKey00000000000000
  --env AWS_SESSION_TOKEN=taskd-bench-session-token)

# bench_init NAME BOOTSTRAP [--env ...]: the emulator's --bench-init, INIT_N starts. It exits 1
# when starts failed their init, having written its statistics with their count: the report
# warns of them and fails its checks; any other failure stops the run here.
bench_init() {
  local name=$1 boot=$2 rc=0
  local out=$TMP/init-$name-$r.json
  shift 2
  run "$PYTHON" -B "$EMULATOR" --bootstrap "$boot" --handler api --bench-init "$INIT_N" "$@" \
    >"$out" 2>>"$TMP/init-$name.log" || rc=$?
  if ((rc == 1)) && "$PYTHON" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["failures"] < 1)' \
    "$out" 2>/dev/null; then
    echo "  round $r: starts of $name failed their init (KEEP_TMP=1 keeps init-$name.log)"
  elif ((rc != 0)); then
    tail -n 20 "$TMP/init-$name.log" >&2
    die "--bench-init of $name failed in round $r"
  fi
}

for ((r = 1; r <= RUNS; r++)); do
  echo
  echo "== round $r/$RUNS"
  bench_init bootstrap "$BOOTSTRAP" "${FN_ENV[@]}"
  bench_init null "$NULL_RUNTIME"
  helper spawn --n "$INIT_N" --out "$TMP/spawn-true-$r.json" -- /bin/true
  helper spawn --n "$INIT_N" --out "$TMP/spawn-python-$r.json" -- "$PYTHON" -c pass
  helper spawn --n "$INIT_N" --any-status --out "$TMP/spawn-bootstrap-$r.json" -- "$BOOTSTRAP"
  "$PYTHON" - "$TMP" "$r" <<'PY'
import json, os, sys
d, r = sys.argv[1], sys.argv[2]
def m(name, key):
    o = json.load(open(os.path.join(d, "%s-%s.json" % (name, r))))
    return "%.2f ms" % o[key]["median"] if o[key] else "- (no start ended its init)"
print("  round %s cold init medians: bootstrap %s, null runtime %s, /bin/true %s, "
      "python3 -c pass %s" % (r, m("init-bootstrap", "init_ms"), m("init-null", "init_ms"),
                              m("spawn-true", "stats"), m("spawn-python", "stats")))
PY
  helper warm --emulator "$EMULATOR" --kind bootstrap --bootstrap "$BOOTSTRAP" --round "$r" --n "$N" --warmup "$WARMUP" \
    --endpoint "$ENDPOINT" --table "$TABLE" --out "$TMP/warm-bootstrap-$r.json" \
    --log "$TMP/emulator-bootstrap-$r.log" --pidfile "$TMP/emulator.pid" ||
    { tail -n 30 "$TMP/emulator-bootstrap-$r.log" >&2 || true; die "warm round $r failed"; }
  helper warm --emulator "$EMULATOR" --kind null --bootstrap "$NULL_RUNTIME" --round "$r" --n "$N" --warmup "$WARMUP" \
    --out "$TMP/warm-null-$r.json" --log "$TMP/emulator-null-$r.log" --pidfile "$TMP/emulator.pid" ||
    { tail -n 30 "$TMP/emulator-null-$r.log" >&2 || true; die "null runtime warm round $r failed"; }
done

stop_pid "$DDB_PID" TERM 10
wait "$DDB_PID" 2>/dev/null || true
DDB_PID=""
B_LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

helper report --dir "$TMP"
