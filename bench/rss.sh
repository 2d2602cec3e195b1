#!/usr/bin/env bash
# bench/rss.sh - taskd's memory after many tasks through the whole pipeline.
#
# Starts one taskd on a fresh db with --sync normal and pushes N tasks of type
# BENCH (default 1,000,000) through POST /tasks -> stream consumer -> queue ->
# noop handler -> COMPLETED, with wrk over CONNECTIONS keep-alive connections
# (exactly N POSTs). Every INTERVAL seconds it samples taskd's VmRSS and VmHWM
# (/proc/<pid>/status) and the COMPLETED count (taskd's counter in GET /metrics).
# When all N are COMPLETED it prints the peak and final RSS, the RSS after
# SETTLE more idle seconds, and the throughput.
#
# --sync normal: the memory paths are the same as with --sync full, but each
# commit does not wait for fsync, so a million tasks take minutes, not the
# disk's time; the result measures taskd's memory, not the disk. The retention
# sweep runs every SWEEP_INTERVAL seconds as it would in service (taskd's
# default, 60): it trims the change log the publisher has passed.
#
# Env options: N (1000000), CONNECTIONS (50), THREADS (2, wrk threads),
#   INTERVAL (5 s between samples), SETTLE (10 s idle before the last sample),
#   HANDLER_BATCH (100), HANDLER_CONCURRENCY (2), CONSUMER_BATCH (500),
#   TIMEOUT (3600 s for the whole push and drain), TASKD (build-release/taskd),
#   SWEEP_INTERVAL (60 s),
#   KEEP_TMP (1 = keep the temp dir). See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

N=${N:-1000000}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
INTERVAL=${INTERVAL:-5}
SETTLE=${SETTLE:-10}
HANDLER_BATCH=${HANDLER_BATCH:-100}
HANDLER_CONCURRENCY=${HANDLER_CONCURRENCY:-2}
CONSUMER_BATCH=${CONSUMER_BATCH:-500}
TIMEOUT=${TIMEOUT:-3600}
SWEEP_INTERVAL=${SWEEP_INTERVAL:-60}
TASKD=${TASKD:-$ROOT/build-release/taskd}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_positive N CONNECTIONS THREADS INTERVAL HANDLER_BATCH HANDLER_CONCURRENCY CONSUMER_BATCH TIMEOUT \
  SWEEP_INTERVAL
[[ $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be a number of seconds"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be >= THREADS ($THREADS)"
((N >= THREADS)) || die "N ($N) must be >= THREADS ($THREADS)"
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
require_taskd

TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskd-rss.XXXXXX")
TASKD_PID=""
WRK_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$WRK_PID" TERM 2
  stop_pid "$TASKD_PID" TERM 10
  wait 2>/dev/null || true
  if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "bench/rss.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench/rss.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

cat >"$TMP/config.json" <<EOF
{"task_types":["BENCH"],
 "queues":[{"name":"bench","visibility_timeout":60,"max_receive_count":3,"dead_letter_queue":"bench-dlq"},
           {"name":"bench-dlq"}],
 "subscriptions":[{"queue":"bench","filter_policy":{"TaskType":["BENCH"]}}],
 "stream_consumers":[{"name":"publisher","filter_patterns":[{"eventName":["INSERT"]}],"batch_size":$CONSUMER_BATCH}],
 "handlers":[{"queue":"bench","handler":"noop","batch_size":$HANDLER_BATCH,"concurrency":$HANDLER_CONCURRENCY,"timeout":10}],
 "sweep_interval":$SWEEP_INTERVAL}
EOF

# Each wrk thread sends exactly its share of the N POSTs, then GET /health (after a 5 ms pause)
# until its POSTs are answered, and stops; the script stops wrk when every thread is done.
cat >"$TMP/post.lua" <<'LUA'
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
quota, sent, answered, failed = 0, 0, 0, 0
local verify, filler, done_path, finished = false, nil, nil, false
function init(args)
  local n, nthreads = tonumber(args[1]), tonumber(args[2])
  done_path = args[3]
  quota = math.floor(n / nthreads)
  if tid <= n % nthreads then quota = quota + 1 end
  verify = (tid == 1) -- wrk calls request() once on thread 1 only to check it; never sent
  filler = wrk.format("GET", "/health")
end
function request()
  if verify then
    verify = false
    return wrk.format("POST", "/tasks")
  end
  if sent < quota then
    sent = sent + 1
    return wrk.format("POST", "/tasks", {["Content-Type"] = "application/json"},
                      '{"task_type":"BENCH","data":{"i":' .. sent .. '}}')
  end
  return filler
end
function delay()
  if sent < quota then return 0 end
  return 5
end
function response(status)
  if status == 200 then return end
  answered = answered + 1
  if status ~= 201 then failed = failed + 1 end
  if not finished and answered >= quota then
    finished = true
    local f = io.open(done_path, "a")
    if f then f:write(string.format("%d %d %d\n", tid, answered, failed)); f:close() end
    wrk.thread:stop()
  end
end
function done()
  local a, e = 0, 0
  for _, t in ipairs(threads) do
    a = a + (t:get("answered") or 0)
    e = e + (t:get("failed") or 0)
  end
  io.write(string.format("POSTS answered %d not-201 %d\n", a, e))
end
LUA

# completed: taskd's count of committed COMPLETED transitions (GET /metrics), -1 if unanswered
completed() {
  local m
  m=$(curl -sf "http://127.0.0.1:$PORT/metrics") || { echo -1; return; }
  awk '/^taskd_task_transitions_total\{task_type="BENCH",status="COMPLETED"\} / {n = $NF}
    END {printf "%d\n", n + 0}' <<<"$m"
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }
mib() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench/rss.sh: taskd RSS with N=$N noop tasks through the pipeline (--sync normal)"
echo "  nproc=$(nproc) loadavg=$LOADAVG CONNECTIONS=$CONNECTIONS THREADS=$THREADS INTERVAL=${INTERVAL}s" \
  "handler batch=$HANDLER_BATCH concurrency=$HANDLER_CONCURRENCY consumer batch=$CONSUMER_BATCH" \
  "sweep every ${SWEEP_INTERVAL}s"

mkdir -p "$TMP/db"
"$TASKD" --listen 127.0.0.1:0 --db "$TMP/db/taskd.db" --config "$TMP/config.json" --sync normal \
  >"$TMP/taskd.stdout" 2>"$TMP/taskd.log" &
TASKD_PID=$!
PORT=""
for ((i = 0; i < 100; i++)); do
  kill -0 "$TASKD_PID" 2>/dev/null || { tail -n 20 "$TMP/taskd.log" >&2; die "taskd exited at startup"; }
  if PORT=$(taskd_port "$TMP/taskd.log"); then break; fi
  PORT=""
  sleep 0.1
done
[[ -n $PORT ]] || die "taskd logged no \"listening\" line within 10s"
sleep 0.5
IDLE_KB=$(status_kb "$TASKD_PID" VmRSS)
echo "  idle VmRSS $(mib "$IDLE_KB") MiB"

: >"$TMP/wrk-done"
T0=$(date +%s.%N)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${TIMEOUT}s" --timeout 10s -s "$TMP/post.lua" \
  "http://127.0.0.1:$PORT/tasks" -- "$N" "$THREADS" "$TMP/wrk-done" >"$TMP/wrk.out" 2>&1 &
WRK_PID=$!

printf '  %8s %10s %10s %10s %10s\n' "t s" "POSTing" "COMPLETED" "VmRSS MiB" "VmHWM MiB"
PEAK_RSS=0
T_POSTED=""
T_ALL=""
while :; do
  sleep "$INTERVAL"
  kill -0 "$TASKD_PID" 2>/dev/null || { tail -n 20 "$TMP/taskd.log" >&2; die "taskd died"; }
  if [[ -n $WRK_PID ]]; then
    mapfile -t lines <"$TMP/wrk-done"
    if ((${#lines[@]} >= THREADS)) || ! kill -0 "$WRK_PID" 2>/dev/null; then
      kill -INT "$WRK_PID" 2>/dev/null || true
      wait "$WRK_PID" || true
      WRK_PID=""
      T_POSTED=$(date +%s.%N)
      # a POST not answered 201 made no task: the COMPLETED count would never reach N
      read -r answered failed < <(awk '{a += $2; f += $3} END {print a + 0, f + 0}' "$TMP/wrk-done")
      ((answered == N && failed == 0)) ||
        die "$((answered - failed)) of $N POSTs answered 201 ($failed other answers):" \
          "not all $N tasks can be COMPLETED"
    fi
  fi
  rss=$(status_kb "$TASKD_PID" VmRSS)
  hwm=$(status_kb "$TASKD_PID" VmHWM)
  ((rss > PEAK_RSS)) && PEAK_RSS=$rss
  done_n=$(completed)
  now=$(date +%s.%N)
  printf '  %8.0f %10s %10s %10s %10s\n' "$(awk -v a="$now" -v b="$T0" 'BEGIN {print a - b}')" "$([[ -n $WRK_PID ]] && echo yes || echo no)" \
    "$done_n" "$(mib "$rss")" "$(mib "$hwm")"
  if ((done_n >= N)); then
    T_ALL=$now
    break
  fi
  awk -v a="$now" -v b="$T0" -v t="$TIMEOUT" 'BEGIN {exit !(a - b > t)}' &&
    die "not all $N tasks COMPLETED within ${TIMEOUT}s"
done
[[ -n $T_POSTED ]] || { wait "$WRK_PID" 2>/dev/null || true; WRK_PID=""; T_POSTED=$T_ALL; }
FINAL_KB=$(status_kb "$TASKD_PID" VmRSS)
sleep "$SETTLE"
SETTLED_KB=$(status_kb "$TASKD_PID" VmRSS)
HWM_KB=$(status_kb "$TASKD_PID" VmHWM)
CPU_S=$(sed 's/^.*) //' "/proc/$TASKD_PID/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($12 + $13) / hz}')
stop_pid "$TASKD_PID" TERM 30
rc=0
wait "$TASKD_PID" || rc=$?
TASKD_PID=""
DB_MIB=$(du -cm "$TMP/db" | tail -n 1 | cut -f1)

echo
echo "== results (N=$N, --sync normal, loadavg at start $LOADAVG, at end $(cut -d' ' -f1-3 /proc/loadavg))"
grep '^POSTS' "$TMP/wrk.out" | sed 's/^/  /' || echo "  wrk printed no summary"
echo "  VmRSS idle $(mib "$IDLE_KB") MiB; peak $(mib "$HWM_KB") MiB (VmHWM; highest sample $(mib "$PEAK_RSS"))"
echo "  VmRSS when all COMPLETED $(mib "$FINAL_KB") MiB; after ${SETTLE}s idle $(mib "$SETTLED_KB") MiB"
awk -v n="$N" -v t0="$T0" -v tp="$T_POSTED" -v ta="$T_ALL" 'BEGIN {
  printf "  throughput %.0f tasks/s end to end (%.1f s for %d; POSTs done after about %.1f s)\n",
    n / (ta - t0), ta - t0, n, tp - t0 }'
echo "  taskd CPU ${CPU_S} s; db files ${DB_MIB} MiB; SIGTERM exit status $rc;" \
  "log: $(grep -ciE '"level" *: *"(error|fatal|crit|warn)' "$TMP/taskd.log" || true) error/warn lines"
