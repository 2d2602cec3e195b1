#!/usr/bin/env bash
# bench/api.sh - HTTP API benchmark for taskd, with an nginx baseline.
#
# Measures (with wrk, fixed connection count):
#   1. nginx returning a fixed 150-byte JSON body (upper bound of this
#      machine + wrk + loopback for a trivial HTTP reply), on kept-alive
#      connections and with a new connection per request (Connection: close),
#   2. taskd (fresh temp db, --sync full): GET /tasks/{id} (random seeded id),
#      POST /tasks, GET /tasks (list, default limit), on kept-alive
#      connections, and GET /tasks/{id} with a new connection per request,
# in RUNS rounds, each round running nginx and then the taskd scenarios
# back to back. Reports median req/s, median p50/p99
# latency, non-2xx counts, each round's taskd/nginx ratios (GET and POST kept
# alive, GET with a connection per request) with their median and range, and
# taskd RSS (idle and after load). See bench/README.md.
#
# Env options: RUNS (5), DURATION (5, seconds per wrk run), CONNECTIONS (50),
#   THREADS (2), TASKD (build-release/taskd under the repo root), SEED (1000 tasks
#   created before the load), SKIP_TASKD (1 = nginx baseline only),
#   NGINX (nginx binary, found on PATH or /usr/sbin/nginx).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

RUNS=${RUNS:-5}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
SEED=${SEED:-1000}
SKIP_TASKD=${SKIP_TASKD:-0}
TASKD=${TASKD:-$ROOT/build-release/taskd}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_positive RUNS DURATION CONNECTIONS THREADS SEED
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be >= THREADS ($THREADS)"

# --- tools -----------------------------------------------------------------
if [[ -z ${NGINX:-} ]]; then
  NGINX=$(command -v nginx || true)
  [[ -n $NGINX ]] || { [[ -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx; } || true
fi
[[ -n ${NGINX:-} && -x $NGINX ]] || die "nginx not found (Debian: apt-get install nginx-light)"
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"

if [[ $SKIP_TASKD != 1 ]]; then
  require_taskd
fi

# --- temp dir and cleanup ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskd-bench.XXXXXX")
NGINX_PID=""
TASKD_PID=""
WRK_PID=""
SEED_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$WRK_PID" TERM 2
  stop_pid "$SEED_PID" TERM 2
  stop_pid "$NGINX_PID" QUIT 5
  stop_pid "$TASKD_PID" TERM 5
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench/api.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# --- helper (python) ----------------------------------------------------------
cat >"$TMP/helper.py" <<'PY'
import json, os, statistics, sys, time
from collections import Counter

def seed(port, n, out):
    import http.client
    body = json.dumps({"task_type": "TASK1", "data": {"foo": "bar"}})
    hdr = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    ids, statuses, excs = [], Counter(), Counter()
    t0 = time.monotonic()
    for _ in range(int(n)):
        try:
            conn.request("POST", "/tasks", body, hdr)
            r = conn.getresponse()
            data = r.read()
            statuses[r.status] += 1
            if 200 <= r.status < 300:
                tid = json.loads(data).get("id")
                if tid:
                    ids.append(str(tid))
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
        except Exception as e:  # count and reconnect
            excs[type(e).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    dt = time.monotonic() - t0
    with open(out, "w") as f:
        f.write("".join(i + "\n" for i in ids))
    print(json.dumps({"requested": int(n), "ids": len(ids), "seconds": round(dt, 3),
                      "per_sec": round(int(n) / dt, 1) if dt > 0 else None,
                      "statuses": {str(k): v for k, v in sorted(statuses.items())},
                      "exceptions": dict(excs)}))

def runline(jline):
    w = json.loads(jline)
    print("%10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  non-2xx %d  sock-err %d" % (
        w["rps"], w["p50_us"] / 1000, w["p99_us"] / 1000, w["non2xx"],
        w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]))

SCEN = [("nginx", "nginx fixed 150B JSON"),
        ("get_id", "taskd GET /tasks/{id}"),
        ("post", "taskd POST /tasks"),
        ("list", "taskd GET /tasks"),
        ("nginx_close", "nginx, conn per request"),
        ("get_close", "taskd GET, conn per req")]

# each taskd scenario with a ratio, and the nginx run it is divided by
RATIOS = [("get_id", "nginx", "GET /tasks/{id}"), ("post", "nginx", "POST /tasks"),
          ("get_close", "nginx_close", "GET /tasks/{id}, a connection per request")]

def report(results_path):
    E = os.environ
    rows = {}
    with open(results_path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.setdefault(r["scenario"], []).append(r)
    summary = {}
    for key, _ in SCEN:
        rs = rows.get(key)
        if not rs:
            continue
        w = [r["wrk"] for r in rs]
        summary[key] = {
            "runs": len(w),
            "median_rps": round(statistics.median(x["rps"] for x in w), 1),
            "median_p50_ms": round(statistics.median(x["p50_us"] for x in w) / 1000, 3),
            "median_p99_ms": round(statistics.median(x["p99_us"] for x in w) / 1000, 3),
            "runs_rps": [round(x["rps"], 1) for x in w],
            "requests": sum(x["requests"] for x in w),
            "non2xx": sum(x["non2xx"] for x in w),
            "socket_errors": {k: sum(x["err_" + k] for x in w)
                              for k in ("connect", "read", "write", "timeout")},
        }
    def num(k):
        v = E.get(k, "")
        try:
            return float(v)
        except ValueError:
            return None
    # Each round's taskd figure over the nginx run of the same round: the machine drifts
    # between rounds, so a ratio is only taken between runs a few seconds apart.
    by_run = {key: {r["run"]: r["wrk"]["rps"] for r in rows.get(key, [])} for key, _ in SCEN}
    ratios = {}
    for key, base, _ in RATIOS:
        per = [by_run[key][n] / by_run[base][n] for n in sorted(by_run[key])
               if by_run[base].get(n)]
        if per:
            ratios[key] = {"median": round(statistics.median(per), 3),
                           "min": round(min(per), 3), "max": round(max(per), 3),
                           "rounds": [round(x, 3) for x in per]}
    ratio = ratios["get_id"]["median"] if "get_id" in ratios else None

    print()
    print("== machine")
    print("nproc=%s kernel=%s cpu=%s loadavg-at-start=%s" % (
        E["B_NPROC"], E["B_KERNEL"], E["B_CPU"], E["B_LOADAVG"]))
    print("== settings")
    print("RUNS=%s DURATION=%ss CONNECTIONS=%s THREADS=%s SEED=%s  (wrk; median over runs)"
          % (E["RUNS"], E["DURATION"], E["CONNECTIONS"], E["THREADS"], E["SEED"]))
    print("wrk: %s | nginx: %s" % (E["B_WRK_VERSION"], E["B_NGINX_VERSION"]))
    if E.get("B_TASKD_CMD"):
        print("taskd: %s" % E["B_TASKD_CMD"])
    print("== results")
    hdr = "%-24s %12s %9s %9s %8s %8s  %s" % ("scenario", "median rq/s", "p50 ms", "p99 ms",
                                              "non-2xx", "sock-err", "per-run req/s")
    print(hdr)
    print("-" * len(hdr))
    for key, label in SCEN:
        s = summary.get(key)
        if not s:
            continue
        print("%-24s %12.0f %9.3f %9.3f %8d %8d  %s" % (
            label, s["median_rps"], s["median_p50_ms"], s["median_p99_ms"], s["non2xx"],
            sum(s["socket_errors"].values()), " ".join("%.0f" % x for x in s["runs_rps"])))
    # A figure stands only on 2xx answers: an error answer is often quicker than the work
    # (a refused connection's 429), so its runs would read faster than taskd is.
    checks = []
    for key, label in SCEN:
        s = summary.get(key)
        if s and (s["non2xx"] or sum(s["socket_errors"].values())):
            checks.append("%s: %d non-2xx answers and %d socket errors in its measured runs" % (
                label, s["non2xx"], sum(s["socket_errors"].values())))
    for c in checks:
        print("CHECK FAILED: " + c)
    for key, _, what in RATIOS:
        r = ratios.get(key)
        if r:
            print("ratio taskd %s / nginx, same round: median %.3f (range %.3f-%.3f; rounds %s)" % (
                what, r["median"], r["min"], r["max"], " ".join("%.3f" % x for x in r["rounds"])))
    rss = None
    if E.get("B_RSS_IDLE_KB"):
        rss = {"idle": round(num("B_RSS_IDLE_KB") / 1024, 1) if num("B_RSS_IDLE_KB") is not None else None,
               "after_load": round(num("B_RSS_AFTER_KB") / 1024, 1) if num("B_RSS_AFTER_KB") is not None else None,
               "peak": round(num("B_RSS_PEAK_KB") / 1024, 1) if num("B_RSS_PEAK_KB") is not None else None}
        print("taskd RSS (MiB): idle %s, after load %s, peak (VmHWM) %s" % (
            rss["idle"], rss["after_load"], rss["peak"]))
    seedinfo = json.loads(E["B_SEED_JSON"]) if E.get("B_SEED_JSON") else None
    if seedinfo:
        print("seed: %d/%d tasks created sequentially on 1 connection in %.2fs (%.0f/s), statuses %s" % (
            seedinfo["ids"], seedinfo["requested"], seedinfo["seconds"], seedinfo["per_sec"] or 0,
            seedinfo["statuses"]))
        if seedinfo["ids"] != seedinfo["requested"] or seedinfo["exceptions"]:
            checks.append("seed: %d of %d tasks created, statuses %s, exceptions %s" % (
                seedinfo["ids"], seedinfo["requested"], seedinfo["statuses"], seedinfo["exceptions"]))
            print("CHECK FAILED: " + checks[-1])
    taskd_info = None
    if E.get("B_TASKD_CMD"):
        taskd_info = {"log_lines": int(E.get("B_LOG_LINES", "0")),
                      "log_errors": int(E.get("B_LOG_ERRORS", "0")),
                      "log_warnings": int(E.get("B_LOG_WARNINGS", "0")),
                      "exit_status": E.get("B_TASKD_EXIT", ""),
                      "db_bytes": int(E.get("B_DB_BYTES", "0") or 0)}
        print("taskd log: %d lines, %d error, %d warn; SIGTERM exit: %s; db files after run: %.1f MiB" % (
            taskd_info["log_lines"], taskd_info["log_errors"], taskd_info["log_warnings"],
            taskd_info["exit_status"], taskd_info["db_bytes"] / 1048576))
    result = {
        "machine": {"nproc": int(E["B_NPROC"]), "kernel": E["B_KERNEL"], "cpu": E["B_CPU"],
                    "loadavg_at_start": E["B_LOADAVG"]},
        "settings": {"runs": int(E["RUNS"]), "duration_s": int(E["DURATION"]),
                     "connections": int(E["CONNECTIONS"]), "threads": int(E["THREADS"]),
                     "seed": int(E["SEED"]), "sync": "full",
                     "wrk": E["B_WRK_VERSION"], "nginx": E["B_NGINX_VERSION"],
                     "taskd": E.get("B_TASKD_CMD") or None},
        "scenarios": summary,
        "ratio_get_id_vs_nginx": ratio,
        "ratios_vs_nginx": ratios,
        "rss_mib": rss,
        "seed": seedinfo,
        "taskd": taskd_info,
        "checks_failed": checks,
    }
    print("RESULT " + json.dumps(result, separators=(",", ":")))
    if checks:
        sys.exit("bench/api.sh: %d check%s failed: the figures above do not stand" % (
            len(checks), "" if len(checks) == 1 else "s"))

cmd = sys.argv[1]
args = sys.argv[2:]
{"seed": seed,
 "runline": runline, "report": report}[cmd](*args)
PY
helper() { python3 "$TMP/helper.py" "$@"; }

# --- wrk Lua scripts -----------------------------------------------------------
# Common part: count non-2xx per thread via response(), print one JSON line in
# done(). Each wrk thread has its own Lua state; setup() runs in the main one.
cat >"$TMP/common.lua" <<'LUA'
local threads = {}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end
non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("non2xx") or 0) end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%.0f,"p90_us":%.0f,' ..
    '"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f,"non2xx":%d,"err_status":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, n, e.status, e.connect, e.read, e.write, e.timeout))
end
LUA

cat "$TMP/common.lua" >"$TMP/plain.lua"
# a new connection for every request: wrk reconnects after each answer that closes
{
  cat "$TMP/common.lua"
  echo 'wrk.headers["Connection"] = "close"'
} >"$TMP/close.lua"

{
  cat "$TMP/common.lua"
  cat <<'LUA'
local ids = {}
function init(args)
  math.randomseed(os.time() * 100 + (tid or 0))
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  f:close()
  assert(#ids > 0, "no ids in " .. args[1])
end
function request()
  return wrk.format("GET", "/tasks/" .. ids[math.random(#ids)])
end
LUA
} >"$TMP/get_id.lua"
{
  cat "$TMP/get_id.lua"
  echo 'wrk.headers["Connection"] = "close"'
} >"$TMP/get_close.lua"

{
  cat "$TMP/common.lua"
  cat <<'LUA'
wrk.method = "POST"
wrk.body = '{"task_type":"TASK1","data":{"foo":"bar"}}'
wrk.headers["Content-Type"] = "application/json"
LUA
} >"$TMP/post.lua"

# --- wrk runner ----------------------------------------------------------------
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# run_wrk SCENARIO RUN(0 = warmup) SECONDS URL LUA [lua args...]
run_wrk() {
  local scen=$1 run=$2 secs=$3 url=$4 lua=$5
  shift 5
  local out=$TMP/wrk-$scen-$run.out rc=0
  local -a extra=()
  (($# == 0)) || extra=(-- "$@")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --timeout 5s -s "$lua" "$url" "${extra[@]}" \
    >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  local j
  j=$(grep '^WRKJSON ' "$out" | tail -n 1 | cut -d' ' -f2- || true)
  if ((rc != 0)) || [[ -z $j ]]; then
    echo "wrk failed (rc=$rc) for $scen run $run; its output:" >&2
    cat "$out" >&2
    return 1
  fi
  if ((run > 0)); then
    printf '{"scenario":"%s","run":%d,"wrk":%s}\n' "$scen" "$run" "$j" >>"$RESULTS"
    printf '  %-11s run %d/%d: %s\n' "$scen" "$run" "$RUNS" "$(helper runline "$j")"
  fi
}

WARMUP=$((DURATION < 2 ? 1 : 2))

# --- machine / settings ------------------------------------------------------------
export RUNS DURATION CONNECTIONS THREADS SEED
export B_NPROC B_KERNEL B_CPU B_WRK_VERSION B_NGINX_VERSION B_LOADAVG
B_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
B_NPROC=$(nproc)
B_KERNEL=$(uname -r)
B_CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
B_CPU=${B_CPU:-unknown}
B_WRK_VERSION=$(wrk -v 2>&1 | head -n 1 | awk '{print $2}' || true)
B_NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //' || true)

echo "bench/api.sh: nproc=$B_NPROC kernel=$B_KERNEL loadavg=$B_LOADAVG; RUNS=$RUNS DURATION=${DURATION}s" \
  "CONNECTIONS=$CONNECTIONS THREADS=$THREADS SEED=$SEED"
warn_if_loaded

# --- 1. nginx baseline -------------------------------------------------------------
# 150 bytes, no newline.
BODY='{"id":"01890a5d-ac96-774b-bcce-b302099a8057","task_type":"TASK1","status":"pending","data":{"foo":"bar"},"created_at":"2024-01-01T00:00:00.00Z","n":1}'
((${#BODY} == 150)) || die "internal: baseline body is ${#BODY} bytes, not 150"

NGX=$TMP/nginx
mkdir -p "$NGX/logs" "$NGX/tmp"
NGINX_USER=""
# As root, nginx would switch workers to "nobody"; keep them as the current user.
((EUID == 0)) && NGINX_USER="user $(id -un) $(id -gn);"
NGX_WC=$((CONNECTIONS * 2 + 256))
((NGX_WC >= 1024)) || NGX_WC=1024

# nginx_start, nginx_ready, nginx_failed ATTEMPT: start_on_free_port's steps for nginx.
nginx_start() {
  NGX_PORT=$PORT
  cat >"$NGX/nginx.conf" <<EOF
$NGINX_USER
worker_processes auto;
daemon off;
master_process on;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections $NGX_WC; }
http {
  access_log off;
  client_body_temp_path $NGX/tmp/client_body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  keepalive_timeout 65s;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      default_type application/json;
      return 200 '$BODY';
    }
  }
}
EOF
  "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" \
    >"$NGX/logs/stdout.log" 2>&1 &
  NGINX_PID=$!
}
# The port was free when picked, not held: it is nginx's once nginx wrote its pid file, which it
# does only after it bound its port, and then it answers with the body.
nginx_ready() {
  local i
  for ((i = 0; i < 50; i++)); do
    if ! kill -0 "$NGINX_PID" 2>/dev/null; then return 1; fi
    if [[ $(cat "$NGX/nginx.pid" 2>/dev/null) == "$NGINX_PID" &&
      $(curl -fsS "http://127.0.0.1:$NGX_PORT/" 2>/dev/null) == "$BODY" ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
nginx_failed() {
  echo "nginx did not start on port $NGX_PORT (attempt $1):" >&2
  cat "$NGX/logs/error.log" "$NGX/logs/stdout.log" >&2 || true
  stop_pid "$NGINX_PID" QUIT 3
  NGINX_PID=""
}

echo
echo "== nginx baseline (fixed 150-byte JSON)"
start_on_free_port nginx_start nginx_ready nginx_failed || die "could not start nginx"
got=$(curl -fsS "http://127.0.0.1:$NGX_PORT/")
[[ $got == "$BODY" ]] || die "nginx returned an unexpected body: $got"
echo "  nginx pid $NGINX_PID on 127.0.0.1:$NGX_PORT; warmup ${WARMUP}s"
NGX_URL="http://127.0.0.1:$NGX_PORT/"
run_wrk nginx 0 "$WARMUP" "$NGX_URL" "$TMP/plain.lua"
if [[ $SKIP_TASKD == 1 ]]; then
  for ((r = 1; r <= RUNS; r++)); do
    run_wrk nginx "$r" "$DURATION" "$NGX_URL" "$TMP/plain.lua"
    run_wrk nginx_close "$r" "$DURATION" "$NGX_URL" "$TMP/close.lua"
  done
fi
# With taskd, nginx stays up (idle) and runs once per round beside taskd's runs.

# --- 2. taskd ------------------------------------------------------------------------
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }

taskd_alive_or_die() {
  if ! kill -0 "$TASKD_PID" 2>/dev/null; then
    local rc=0
    wait "$TASKD_PID" 2>/dev/null || rc=$?
    TASKD_PID=""
    echo "bench/api.sh: taskd died (exit status $rc) during: $1; last log lines:" >&2
    tail -n 30 "$TMP/taskd.log" >&2 || true
    exit 1
  fi
}

if [[ $SKIP_TASKD == 1 ]]; then
  stop_pid "$NGINX_PID" QUIT 5
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=""
else
  echo
  echo "== taskd (fresh db, --sync full), with nginx run once per round"
  DB=$TMP/db/taskd.db
  mkdir -p "$TMP/db"
  export B_TASKD_CMD="$TASKD --listen 127.0.0.1:0 --db <tmp>/taskd.db --sync full"
  "$TASKD" --listen 127.0.0.1:0 --db "$DB" --sync full >"$TMP/taskd.stdout" 2>"$TMP/taskd.log" &
  TASKD_PID=$!
  TASKD_PORT=""
  for ((i = 0; i < 100; i++)); do
    taskd_alive_or_die "startup"
    if TASKD_PORT=$(taskd_port "$TMP/taskd.log"); then break; fi
    TASKD_PORT=""
    sleep 0.1
  done
  [[ -n $TASKD_PORT ]] || { tail -n 30 "$TMP/taskd.log" >&2; die "taskd logged no \"listening\" line within 10s"; }
  BASE="http://127.0.0.1:$TASKD_PORT"
  sleep 0.5
  export B_RSS_IDLE_KB
  B_RSS_IDLE_KB=$(rss_kb "$TASKD_PID" VmRSS)
  echo "  taskd pid $TASKD_PID on 127.0.0.1:$TASKD_PORT; idle VmRSS ${B_RSS_IDLE_KB} kB"

  echo "  seeding $SEED tasks (sequential POSTs, one keep-alive connection)..."
  # In the background, waited for: a signal then ends the wait at once (bash runs a trap only
  # once a command in the foreground has ended, the whole seed), and cleanup stops it.
  python3 "$TMP/helper.py" seed "$TASKD_PORT" "$SEED" "$TMP/ids.txt" >"$TMP/seed.json" &
  SEED_PID=$!
  wait "$SEED_PID" || die "seeding failed"
  SEED_PID=""
  export B_SEED_JSON
  B_SEED_JSON=$(<"$TMP/seed.json")
  echo "  seed: $B_SEED_JSON"
  taskd_alive_or_die "seeding"
  NIDS=$(wc -l <"$TMP/ids.txt")
  ((NIDS > 0)) || { tail -n 30 "$TMP/taskd.log" >&2; die "seeding created no tasks"; }

  # Smoke check before loading.
  first_id=$(head -n 1 "$TMP/ids.txt")
  s_get=$(curl -sS -o "$TMP/smoke_get.json" -w '%{http_code}' "$BASE/tasks/$first_id" || true)
  s_list=$(curl -sS -o "$TMP/smoke_list.json" -w '%{http_code}' "$BASE/tasks" || true)
  s_miss=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/tasks/00000000-0000-7000-8000-000000000000" || true)
  echo "  smoke: GET /tasks/{id} -> $s_get, GET /tasks -> $s_list ($(wc -c <"$TMP/smoke_list.json") bytes)," \
    "GET /tasks/<unknown> -> $s_miss"
  [[ $s_get == 2* ]] || echo "  WARNING: GET /tasks/{id} of a seeded id returned $s_get: $(head -c 300 "$TMP/smoke_get.json")"
  [[ $s_list == 2* ]] || echo "  WARNING: GET /tasks returned $s_list: $(head -c 300 "$TMP/smoke_list.json")"

  echo "  warmup ${WARMUP}s per scenario"
  run_wrk get_id 0 "$WARMUP" "$BASE/tasks" "$TMP/get_id.lua" "$TMP/ids.txt"
  run_wrk post 0 "$WARMUP" "$BASE/tasks" "$TMP/post.lua"
  run_wrk list 0 "$WARMUP" "$BASE/tasks" "$TMP/plain.lua"
  run_wrk get_close 0 "$WARMUP" "$BASE/tasks" "$TMP/get_close.lua" "$TMP/ids.txt"
  taskd_alive_or_die "warmup"
  for ((r = 1; r <= RUNS; r++)); do
    run_wrk nginx "$r" "$DURATION" "$NGX_URL" "$TMP/plain.lua"
    run_wrk get_id "$r" "$DURATION" "$BASE/tasks" "$TMP/get_id.lua" "$TMP/ids.txt" ||
      taskd_alive_or_die "GET /tasks/{id} run $r"
    taskd_alive_or_die "GET /tasks/{id} run $r"
    run_wrk post "$r" "$DURATION" "$BASE/tasks" "$TMP/post.lua" || taskd_alive_or_die "POST /tasks run $r"
    taskd_alive_or_die "POST /tasks run $r"
    run_wrk list "$r" "$DURATION" "$BASE/tasks" "$TMP/plain.lua" || taskd_alive_or_die "GET /tasks run $r"
    taskd_alive_or_die "GET /tasks run $r"
    run_wrk nginx_close "$r" "$DURATION" "$NGX_URL" "$TMP/close.lua"
    run_wrk get_close "$r" "$DURATION" "$BASE/tasks" "$TMP/get_close.lua" "$TMP/ids.txt" ||
      taskd_alive_or_die "GET /tasks/{id}, a connection per request, run $r"
    taskd_alive_or_die "GET /tasks/{id}, a connection per request, run $r"
  done
  stop_pid "$NGINX_PID" QUIT 5
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=""
  sleep 0.5
  export B_RSS_AFTER_KB B_RSS_PEAK_KB
  B_RSS_AFTER_KB=$(rss_kb "$TASKD_PID" VmRSS)
  B_RSS_PEAK_KB=$(rss_kb "$TASKD_PID" VmHWM)

  # Graceful stop: SIGTERM, wait up to 10s.
  kill -TERM "$TASKD_PID"
  export B_TASKD_EXIT="timeout (killed)"
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$TASKD_PID" 2>/dev/null; then
      rc=0
      wait "$TASKD_PID" || rc=$?
      B_TASKD_EXIT=$rc
      break
    fi
    sleep 0.1
  done
  if [[ $B_TASKD_EXIT == "timeout (killed)" ]]; then
    kill -KILL "$TASKD_PID" 2>/dev/null || true
    wait "$TASKD_PID" 2>/dev/null || true
  fi
  TASKD_PID=""

  export B_LOG_LINES B_LOG_ERRORS B_LOG_WARNINGS B_DB_BYTES
  B_LOG_LINES=$(wc -l <"$TMP/taskd.log")
  B_LOG_ERRORS=$(grep -ciE '"level" *: *"(error|fatal|crit)' "$TMP/taskd.log" || true)
  B_LOG_WARNINGS=$(grep -ciE '"level" *: *"warn' "$TMP/taskd.log" || true)
  B_DB_BYTES=$(find "$TMP/db" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  if ((B_LOG_ERRORS + B_LOG_WARNINGS > 0)); then
    echo "  taskd error/warn log lines (first 10):"
    grep -iE '"level" *: *"(error|fatal|crit|warn)' "$TMP/taskd.log" | head -n 10 | sed 's/^/    /'
  fi
  if [[ -s $TMP/taskd.stdout ]]; then
    echo "  taskd wrote $(wc -c <"$TMP/taskd.stdout") bytes to stdout (first lines):"
    head -n 5 "$TMP/taskd.stdout" | sed 's/^/    /'
  fi
fi

helper report "$RESULTS"
