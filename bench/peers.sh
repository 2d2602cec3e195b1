#!/usr/bin/env bash
# bench/peers.sh - taskd's pipeline against its peers, in one run, on one machine.
#
# Peers, each on its own server started here on a free loopback port with its data in a temp
# dir, and stopped afterwards; never two at once:
#   beanstalkd (Debian)  with a binlog (-b), default fsync (at most every 50 ms), and with -f0
#                        (fsync on every binlog write)
#   BullMQ (npm)         on Debian's redis-server with appendonly yes, appendfsync everysec
# Each does what bench/pipeline.sh does to taskd: N no-op jobs submitted by CLIENTS concurrent
# connections (one submit in flight each) while workers process them; jobs/s = N / (first
# submit -> last completion); then LAT_N jobs one at a time, submit -> done. The clients are
# bench/peers.js (Node); taskd is measured by bench/pipeline.sh (wrk; one at a time, its C
# latency_client), with --sync full and --sync normal. Before the rounds, the worker settings of BullMQ (worker processes x Worker
# concurrency) and of beanstalkd (worker processes x reserve/delete connections) are swept on
# SWEEP_N jobs and the best is kept. Then ROUNDS rounds, each running every system once in
# turn (BullMQ, taskd full, beanstalkd default, taskd normal, beanstalkd -f0), so drift hits
# all alike. Prints the medians over rounds with their ranges, and the ratios.
# See bench/README.md.
#
# Env options: N (20000), N_F0 (1000: beanstalkd -f0 jobs; it is fsync-bound), ROUNDS (3),
#   CLIENTS (50), SUBMIT_PROCS (2; taskd's wrk threads too), LAT_N (300), LAT_WARMUP (20),
#   LAT_POLL_MS (0.5), POLL_MS (20), SWEEP_N (N/4), SWEEP_REPEAT (2: runs per sweep point, the
#   best counts), BULLMQ_PROCS ("1 2"),
#   BULLMQ_CONCURRENCY ("1 4 16 64 256"), BEANSTALKD_PROCS ("1 2"), BEANSTALKD_CONNS ("1 4 16"),
#   TIMEOUT (300 s per run), TASKD (build-release/taskd), PYTHON, KEEP_TMP (1 = keep the temp dir),
#   QUICK (1 = a smoke check in well under a minute: small N, one round, a small sweep).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [[ ${QUICK:-0} == 1 ]]; then
  N=${N:-2000} N_F0=${N_F0:-100} ROUNDS=${ROUNDS:-1} LAT_N=${LAT_N:-30} LAT_WARMUP=${LAT_WARMUP:-5}
  SWEEP_N=${SWEEP_N:-500} SWEEP_REPEAT=${SWEEP_REPEAT:-1} BULLMQ_PROCS=${BULLMQ_PROCS:-1} BULLMQ_CONCURRENCY=${BULLMQ_CONCURRENCY:-"16 64"}
  BEANSTALKD_PROCS=${BEANSTALKD_PROCS:-1} BEANSTALKD_CONNS=${BEANSTALKD_CONNS:-4}
fi
N=${N:-20000}
N_F0=${N_F0:-1000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
SUBMIT_PROCS=${SUBMIT_PROCS:-2}
LAT_N=${LAT_N:-300}
LAT_WARMUP=${LAT_WARMUP:-20}
LAT_POLL_MS=${LAT_POLL_MS:-0.5}
POLL_MS=${POLL_MS:-20}
SWEEP_N=${SWEEP_N:-quarter}
SWEEP_REPEAT=${SWEEP_REPEAT:-2}
BULLMQ_PROCS=${BULLMQ_PROCS:-"1 2"}
BULLMQ_CONCURRENCY=${BULLMQ_CONCURRENCY:-"1 4 16 64 256"}
BEANSTALKD_PROCS=${BEANSTALKD_PROCS:-"1 2"}
BEANSTALKD_CONNS=${BEANSTALKD_CONNS:-"1 4 16"}
TIMEOUT=${TIMEOUT:-300}
TASKD=${TASKD:-$ROOT/build-release/taskd}

require_positive N
[[ $SWEEP_N != quarter ]] || SWEEP_N=$(((N + 3) / 4))
require_positive N_F0 ROUNDS CLIENTS SUBMIT_PROCS LAT_N SWEEP_N SWEEP_REPEAT TIMEOUT
[[ $LAT_WARMUP =~ ^[0-9]+$ ]] || die "LAT_WARMUP must be a non-negative integer"
for v in LAT_POLL_MS POLL_MS; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number of milliseconds (got '${!v}')"
done
for v in BULLMQ_PROCS BULLMQ_CONCURRENCY BEANSTALKD_PROCS BEANSTALKD_CONNS; do
  [[ ${!v} =~ ^[0-9]+( [0-9]+)*$ ]] || die "$v must be positive integers separated by spaces"
done
((CLIENTS >= SUBMIT_PROCS)) || die "CLIENTS ($CLIENTS) must be >= SUBMIT_PROCS ($SUBMIT_PROCS)"
for v in N N_F0 SWEEP_N; do
  ((${!v} >= SUBMIT_PROCS)) || die "$v (${!v}) must be >= SUBMIT_PROCS ($SUBMIT_PROCS)"
done

# --- tools: Debian packages, then BullMQ into the cache ------------------------------------
have_all() {
  command -v beanstalkd && command -v redis-server && command -v redis-cli && command -v wrk &&
    command -v node && command -v npm
} >/dev/null 2>&1
if ! have_all; then
  echo "bench/peers.sh: installing the benchmark packages (scripts/install-deps.sh --bench)" >&2
  "$ROOT/scripts/install-deps.sh" --bench
fi
"$ROOT/scripts/node-tools.sh" install-bench
NODE_PATH=$("$ROOT/scripts/node-tools.sh" bench-dir)/node_modules
export NODE_PATH
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)}
[[ -n $PYTHON && -x $PYTHON ]] || die "python3 not found"
export PYTHON
require_taskd

# --- temp dir, servers and cleanup -----------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskd-peers.XXXXXX")
SERVER_PID=""
RUN_PID="" # the measuring client of a peer, or bench/pipeline.sh
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$RUN_PID" TERM 10
  stop_pid "$SERVER_PID" TERM 10
  wait 2>/dev/null || true
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    echo "bench/peers.sh: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench/peers.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# server_pid KIND PORT: the process id the server answering on 127.0.0.1:PORT gives for itself
# (beanstalkd's stats, Redis's INFO).
server_pid() {
  local line fd
  if [[ $1 == redis ]]; then
    redis-cli -p "$2" info server 2>/dev/null | awk -F: '/^process_id:/ {print $2 + 0}'
    return
  fi
  exec {fd}<>"/dev/tcp/127.0.0.1/$2" || return 1
  printf 'stats\r\n' >&"$fd"
  while IFS= read -r -t 5 line <&"$fd"; do
    line=${line%$'\r'}
    if [[ $line == "pid: "* ]]; then
      echo "${line#pid: }"
      break
    fi
  done
  exec {fd}>&-
}

# start_server KIND DIR [beanstalkd options...]: start a fresh server with its data in DIR on a
# free port (start_on_free_port); sets SERVER_PID and PORT. The server that answers there must
# give SERVER_PID as its own, or this one is stopped and started again on another port.
start_server() {
  local kind=$1 dir=$2
  shift 2
  local opts=("$@")
  start_on_free_port server_start server_ready server_failed || die "$kind did not start"
}
# server_start, server_ready, server_failed ATTEMPT: its steps, with start_server's kind, dir
# and opts.
server_start() {
  rm -rf "$dir"
  mkdir -p "$dir"
  case $kind in
  beanstalkd) beanstalkd -l 127.0.0.1 -p "$PORT" -b "$dir" "${opts[@]}" >>"$dir.log" 2>&1 & ;;
  redis)
    # AOF only (no RDB snapshots, which would fork mid-run), fsync once a second
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
      --appendfsync everysec --save '' --logfile "$dir.log" --daemonize no &
    ;;
  esac
  SERVER_PID=$!
}
server_ready() {
  wait_tcp "$PORT" "$SERVER_PID" 10 && [[ $(server_pid "$kind" "$PORT") == "$SERVER_PID" ]]
}
server_failed() {
  echo "  note: $kind (pid $SERVER_PID) is not the server on port $PORT (attempt $1 of 5)" >&2
  tail -n 3 "$dir.log" >&2 || true
  stop_pid "$SERVER_PID" TERM 10
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

stop_server() {
  local rc=0
  stop_pid "$SERVER_PID" TERM 10
  wait "$SERVER_PID" 2>/dev/null || rc=$?
  SERVER_PID=""
  # beanstalkd has no SIGTERM handler: 143 is its normal end
  ((rc == 0 || rc == 143)) || echo "  note: the server exited with status $rc after SIGTERM"
}

RESULTS=$TMP/results.jsonl
: >"$RESULTS"
RUN_SEQ=0

# run_bg OUT CMD...: run CMD in the background, its stdout and stderr to the file OUT, and wait
# for it; its status is run_bg's. A signal ends the wait at once (bash runs a trap only once a
# command in the foreground has ended, a whole bench/pipeline.sh run), and cleanup stops CMD.
# OUT is CMD's alone: a redirection of the run_bg call would hold for the trap and cleanup too,
# and take their messages into OUT.
run_bg() {
  local out=$1 rc=0
  shift
  "$@" >"$out" 2>&1 &
  RUN_PID=$!
  wait "$RUN_PID" || rc=$?
  RUN_PID=""
  return "$rc"
}

# peer_run NAME LABEL KIND ROUND N WORKER_PROCS WORKER_CONC LAT_N [beanstalkd options...]:
# one measurement on a fresh server; appends it to RESULTS (ROUND 0: a sweep run, not kept) and
# sets TPS to its jobs/s.
peer_run() {
  local name=$1 label=$2 kind=$3 round=$4 n=$5 procs=$6 conc=$7 lat_n=$8 peer out opts
  shift 8
  RUN_SEQ=$((RUN_SEQ + 1))
  peer=beanstalkd
  [[ $kind == redis ]] && peer=bullmq
  start_server "$kind" "$TMP/run-$RUN_SEQ-$name" "$@"
  opts=$(printf '{"n":%d,"clients":%d,"submit_procs":%d,"worker_procs":%d,"worker_conc":%d,"poll_ms":%s,"lat_n":%d,"lat_warmup":%d,"lat_poll_ms":%s,"timeout_s":%d}' \
    "$n" "$CLIENTS" "$SUBMIT_PROCS" "$procs" "$conc" "$POLL_MS" "$lat_n" "$LAT_WARMUP" "$LAT_POLL_MS" "$TIMEOUT")
  out=$TMP/run-$RUN_SEQ-$name.out
  if ! run_bg "$out" node "$ROOT/bench/peers.js" run "$peer" "$PORT" "$opts"; then
    cat "$out" >&2
    die "$label: the measurement failed (see above)"
  fi
  stop_server
  local result
  result=$(grep '^RESULT ' "$out" | cut -c8-)
  [[ -n $result ]] || die "$label: no RESULT line"
  "$PYTHON" - "$name" "$label" "$round" "$result" "$RESULTS" <<'PY'
import json, sys
name, label, rnd, res, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
lat = res.get("latency")
print("  %-44s %7.0f jobs/s  (submits %6.0f/s, drain %.2f s)%s" % (
    label, res["tasks_per_s"], res["submit_rate"], res["drain_after_submits_s"],
    "  submit->done p50 %.2f p99 %.2f ms" % (lat["p50_ms"], lat["p99_ms"]) if lat else ""))
if rnd > 0:
    with open(out, "a") as f:
        f.write(json.dumps({"name": name, "label": label, "round": rnd, "kind": "peer", "result": res}) + "\n")
with open(out + ".tps", "w") as f:
    f.write("%.0f\n" % res["tasks_per_s"])
PY
  TPS=$(cat "$RESULTS.tps")
}

# taskd_run NAME LABEL SYNC ROUND: one bench/pipeline.sh run (fresh taskd and db).
taskd_run() {
  local name=$1 label=$2 sync=$3 round=$4 out result
  RUN_SEQ=$((RUN_SEQ + 1))
  out=$TMP/run-$RUN_SEQ-$name.out
  # The settings through env, for pipeline.sh alone: set before the run_bg call they would hold
  # for the script's own trap and cleanup too (KEEP_TMP=0 among them).
  if ! run_bg "$out" env RUNS=1 N="$N" SYNC="$sync" CONNECTIONS="$CLIENTS" THREADS="$SUBMIT_PROCS" \
    LAT_N="$LAT_N" LAT_WARMUP="$LAT_WARMUP" LAT_POLL_MS="$LAT_POLL_MS" POLL_MS="$POLL_MS" \
    TASKD="$TASKD" KEEP_TMP=0 "$ROOT/bench/pipeline.sh"; then
    cat "$out" >&2
    die "$label: bench/pipeline.sh failed (see above)"
  fi
  result=$(grep '^RESULT ' "$out" | cut -c8-)
  [[ -n $result ]] || { cat "$out" >&2; die "$label: bench/pipeline.sh printed no RESULT line"; }
  "$PYTHON" - "$name" "$label" "$round" "$result" "$RESULTS" <<'PY' || { cat "$out" >&2; exit 1; }
import json, sys
name, label, rnd, res, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
if res["checks_failed"]:
    sys.exit("bench/peers.sh: %s: checks failed: %s" % (label, res["checks_failed"]))
r = res["runs"][0]
m = res["median"]
print("  %-44s %7.0f jobs/s  (POSTs %6.0f/s, drain %.2f s)  POST->COMPLETED p50 %.2f p99 %.2f ms" % (
    label, m["tasks_per_s"], m["post_rate"], m["drain_after_posts_s"], m["latency_p50_ms"],
    m["latency_p99_ms"]))
with open(out, "a") as f:
    f.write(json.dumps({"name": name, "label": label, "round": rnd, "kind": "taskd", "result": res}) + "\n")
PY
}

# --- header ------------------------------------------------------------------------------------
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
V_BEANSTALKD=$(beanstalkd -v 2>&1 | head -n 1)
V_REDIS=$(redis-server --version | awk '{print $3}' | sed 's/^v=//')
V_BULLMQ=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$NODE_PATH/bullmq/package.json")
V_IOREDIS=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$NODE_PATH/ioredis/package.json")
echo "bench/peers.sh: taskd's pipeline against beanstalkd and BullMQ, $ROUNDS round(s)"
echo "  nproc=$(nproc) kernel=$(uname -r) loadavg=$LOAD_START data-fs=$(stat -f -c %T "$TMP")"
echo "  $V_BEANSTALKD; redis-server $V_REDIS; bullmq $V_BULLMQ (ioredis $V_IOREDIS); node $(node --version);" \
  "$(wrk -v 2>&1 | head -n 1 | awk '{print "wrk", $2}')"
echo "  N=$N (beanstalkd -f0: N_F0=$N_F0) CLIENTS=$CLIENTS SUBMIT_PROCS=$SUBMIT_PROCS LAT_N=$LAT_N" \
  "LAT_WARMUP=$LAT_WARMUP LAT_POLL_MS=$LAT_POLL_MS POLL_MS=$POLL_MS SWEEP_N=$SWEEP_N"
echo "  taskd: $TASKD (bench/pipeline.sh, its default config; --sync full and --sync normal)"
warn_if_loaded

# --- sweep: the best worker settings of each peer ------------------------------------------
echo
echo "== sweep ($SWEEP_N jobs a run, $SWEEP_REPEAT run(s) a point, the best counts; no latency phase)"
echo "   BullMQ worker processes x concurrency"
# sweep SERVER LABEL PROCS COUNTS: a sweep run of each "process count x concurrency (or
# connections)" point, LABEL a printf format of the two; BEST gets the fastest point's pair.
# The repeats of a point are a whole pass apart, so that a burst of load elsewhere does not
# hit all runs of one point.
sweep() {
  local server=$1 label=$2 procs=$3 counts=$4 best_tps=0 k p c
  BEST=""
  for ((k = 1; k <= SWEEP_REPEAT; k++)); do
    for p in $procs; do
      for c in $counts; do
        # shellcheck disable=SC2059 # the label is a format
        peer_run sweep "$(printf "$label" "$p" "$c")" "$server" 0 "$SWEEP_N" "$p" "$c" 0
        if ((TPS > best_tps)); then best_tps=$TPS BEST="$p $c"; fi
      done
    done
  done
}
sweep redis "BullMQ %s proc x concurrency %s" "$BULLMQ_PROCS" "$BULLMQ_CONCURRENCY"
read -r BULLMQ_P BULLMQ_C <<<"$BEST"
echo "  best: $BULLMQ_P worker process(es), concurrency $BULLMQ_C"
echo "   beanstalkd (binlog, default fsync) worker processes x reserve/delete connections"
sweep beanstalkd "beanstalkd %s proc x %s conn" "$BEANSTALKD_PROCS" "$BEANSTALKD_CONNS"
read -r BS_P BS_C <<<"$BEST"
echo "  best: $BS_P worker process(es), $BS_C connection(s) each (also used with -f0)"

# --- rounds ------------------------------------------------------------------------------------
L_BULLMQ="BullMQ (AOF everysec; ${BULLMQ_P}x$BULLMQ_C)"
L_BS="beanstalkd binlog, default fsync (${BS_P}x$BS_C)"
L_F0="beanstalkd binlog -f0 (${BS_P}x$BS_C)"
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "== round $r/$ROUNDS"
  peer_run bullmq "$L_BULLMQ" redis "$r" "$N" "$BULLMQ_P" "$BULLMQ_C" "$LAT_N"
  taskd_run taskd_full "taskd --sync full" full "$r"
  peer_run beanstalkd_default "$L_BS" beanstalkd "$r" "$N" "$BS_P" "$BS_C" "$LAT_N"
  taskd_run taskd_normal "taskd --sync normal" normal "$r"
  peer_run beanstalkd_f0 "$L_F0" beanstalkd "$r" "$N_F0" "$BS_P" "$BS_C" "$LAT_N" -f0
done

echo
echo "== machine: loadavg at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg);" \
  "runtime $(($(date +%s) - T_START)) s"
node "$ROOT/bench/peers.js" report "$RESULTS"
