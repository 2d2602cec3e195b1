#!/usr/bin/env bash
# bench/pipeline.sh - end-to-end pipeline benchmark for taskd.
#
# A task goes POST /tasks -> tasks row + change record (one commit) -> stream
# consumer "publisher" -> topic -> subscription -> queue "bench" -> handler
# "noop" -> COMPLETED. This script measures that whole path, per run on a
# fresh taskd with a fresh db (--sync full, or SYNC):
#   1. throughput: N tasks POSTed as fast as possible by wrk over CONNECTIONS
#      keep-alive connections (exactly N POSTs), then the time until all N are
#      COMPLETED, seen by polling taskd's count of COMPLETED transitions
#      (GET /metrics) every POLL_MS ms;
#      tasks/s = N / (t_all_completed - t_first_post);
#   2. latency at low load: LAT_N tasks one at a time; time from sending the
#      POST to a GET /tasks/{id} that shows COMPLETED (polled every
#      LAT_POLL_MS ms on one keep-alive connection), by bench/latency_client.c
#      (built beside taskd as latency_client) or, with LAT_CLIENT=python, by
#      Python's http.client;
#   3. taskd VmRSS and VmHWM after the run; taskd's CPU seconds (all threads, and the
#      store writer thread alone) from the start to all N COMPLETED, and the store
#      transactions by then (taskd_store_commit_writes from GET /metrics).
# Reports per-run values and medians over RUNS runs. See bench/README.md.
#
# Env options: RUNS (3), N (20000), CONNECTIONS (50), THREADS (2, wrk threads),
#   LAT_N (500), LAT_WARMUP (20), LAT_POLL_MS (0.5), LAT_CLIENT (c or python), POLL_MS (20),
#   DATA_BYTES (0: each throughput POST's data also carries a string of that many bytes),
#   HANDLER_BATCH (100), HANDLER_CONCURRENCY (2), HANDLER_TIMEOUT (10),
#   CONSUMER_BATCH (500), VISIBILITY_TIMEOUT (60), MAX_RECEIVE_COUNT (3),
#   TASKD (build-release/taskd), SYNC (full: taskd --sync full or normal),
#   TASKD_THREADS (taskd --threads; unset = taskd's default),
#   POST_TIMEOUT (300 s), COMPLETE_TIMEOUT (120 s),
#   EXPORTER ("VAR=value ..." added to taskd's environment, e.g.
#   EXPORTER="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"; taskd also
#   inherits this script's whole environment, OTEL_* included),
#   PYTHON (python3 interpreter; default: the real path behind python3),
#   KEEP_TMP (1 = keep the temp dir with dbs, logs and raw outputs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

RUNS=${RUNS:-3}
N=${N:-20000}
DATA_BYTES=${DATA_BYTES:-0}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
LAT_N=${LAT_N:-500}
LAT_WARMUP=${LAT_WARMUP:-20}
LAT_POLL_MS=${LAT_POLL_MS:-0.5}
LAT_CLIENT=${LAT_CLIENT:-c}
POLL_MS=${POLL_MS:-20}
HANDLER_BATCH=${HANDLER_BATCH:-100}
HANDLER_CONCURRENCY=${HANDLER_CONCURRENCY:-2}
HANDLER_TIMEOUT=${HANDLER_TIMEOUT:-10}
CONSUMER_BATCH=${CONSUMER_BATCH:-500}
MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-3}
POST_TIMEOUT=${POST_TIMEOUT:-300}
COMPLETE_TIMEOUT=${COMPLETE_TIMEOUT:-120}
TASKD_THREADS=${TASKD_THREADS:-}
EXPORTER=${EXPORTER:-}
TASKD=${TASKD:-$ROOT/build-release/taskd}
SYNC=${SYNC:-full}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_positive RUNS N CONNECTIONS THREADS LAT_N HANDLER_BATCH HANDLER_CONCURRENCY HANDLER_TIMEOUT \
  CONSUMER_BATCH POST_TIMEOUT COMPLETE_TIMEOUT
for v in LAT_WARMUP MAX_RECEIVE_COUNT DATA_BYTES; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for v in LAT_POLL_MS POLL_MS; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number of milliseconds (got '${!v}')"
done
[[ -z $TASKD_THREADS || $TASKD_THREADS =~ ^[0-9]+$ ]] || die "TASKD_THREADS must be a number"
[[ $SYNC == full || $SYNC == normal ]] || die "SYNC must be full or normal (got '$SYNC')"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be >= THREADS ($THREADS)"
((N >= THREADS)) || die "N ($N) must be >= THREADS ($THREADS)"
VISIBILITY_TIMEOUT=${VISIBILITY_TIMEOUT:-60}
[[ $VISIBILITY_TIMEOUT =~ ^[0-9]+$ ]] || die "VISIBILITY_TIMEOUT must be a number of seconds"

EXPORTER_VARS=()
if [[ -n $EXPORTER ]]; then
  read -r -a EXPORTER_VARS <<<"$EXPORTER"
  for kv in "${EXPORTER_VARS[@]}"; do
    [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "EXPORTER must be space-separated VAR=value words (got '$kv')"
  done
fi

# --- tools -----------------------------------------------------------------
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
# Resolve the interpreter once: a version-manager shim (pyenv) can take most
# of a second to start, which would skew the poller's start.
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)}
[[ -n $PYTHON && -x $PYTHON ]] || die "python3 not found"
"$PYTHON" -c 'import sqlite3' 2>/dev/null || die "$PYTHON has no sqlite3 module"

require_taskd
[[ $LAT_CLIENT == c || $LAT_CLIENT == python ]] || die "LAT_CLIENT must be c or python (got '$LAT_CLIENT')"
LATENCY_CLIENT=$(dirname "$TASKD")/latency_client
if [[ $LAT_CLIENT == c && ! -x $LATENCY_CLIENT ]]; then
  die "$LATENCY_CLIENT not found: it is built with taskd (cmake --build $(dirname "$TASKD")), or use LAT_CLIENT=python"
fi

# --- temp dir and cleanup ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskd-pipeline.XXXXXX")
TASKD_PID=""
WRK_PID=""
POLL_PID=""
LAT_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$WRK_PID" TERM 2
  stop_pid "$POLL_PID" TERM 2
  stop_pid "$LAT_PID" TERM 2
  stop_pid "$TASKD_PID" TERM 5
  wait 2>/dev/null || true
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    echo "bench/pipeline.sh: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
# A descriptor that never has data, to nap on with read -t (a builtin) in loops
exec {NAP_FD}<> <(:)
trap 'echo; echo "bench/pipeline.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# --- config ------------------------------------------------------------------
CONFIG=$TMP/config.json
cat >"$CONFIG" <<EOF
{"task_types":["BENCH"],
 "queues":[{"name":"bench","visibility_timeout":$VISIBILITY_TIMEOUT,"max_receive_count":$MAX_RECEIVE_COUNT,"dead_letter_queue":"bench-dlq"},
           {"name":"bench-dlq"}],
 "subscriptions":[{"queue":"bench","filter_policy":{"TaskType":["BENCH"]}}],
 "stream_consumers":[{"name":"publisher","filter_patterns":[{"eventName":["INSERT"]}],"batch_size":$CONSUMER_BATCH}],
 "handlers":[{"queue":"bench","handler":"noop","batch_size":$HANDLER_BATCH,"concurrency":$HANDLER_CONCURRENCY,"timeout":$HANDLER_TIMEOUT}],
 "sweep_interval":86400}
EOF

# --- helper (python) ----------------------------------------------------------
cat >"$TMP/helper.py" <<'PY'
import json, math, os, sqlite3, statistics, sys, time

def ro_connect(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5, isolation_level=None)
    c.execute("PRAGMA query_only = 1")
    return c

SERIES = 'taskd_task_transitions_total{task_type="BENCH",status="%s"} '
COMPLETED_SERIES, FAILED_SERIES = SERIES % "COMPLETED", SERIES % "FAILED"

def final_counts(conn):
    # taskd's counts of committed COMPLETED and FAILED transitions, from GET
    # /metrics: counters the server keeps, as the peers' pollers read
    # beanstalkd's cmd-delete and BullMQ's completed count (a scan of the
    # tasks table would cost time that grows with the run).
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    if r.status != 200:
        raise OSError("GET /metrics answered %d" % r.status)
    done = failed = 0
    for line in body.splitlines():
        if line.startswith(COMPLETED_SERIES):
            done = int(float(line[len(COMPLETED_SERIES):]))
        elif line.startswith(FAILED_SERIES):
            failed = int(float(line[len(FAILED_SERIES):]))
    return done, failed

def poll(port, n, out, pid, interval_ms, deadline_s, ready):
    # Poll the COMPLETED count until it reaches n, or until COMPLETED and
    # FAILED (both final) reach n together: a task that failed is never
    # completed, so the run is over. Record every sample's wall time
    # (time.time(), the same clock as wrk's CLOCK_REALTIME stamps). Creates
    # the file `ready` after the first successful query.
    import http.client
    n, pid = int(n), int(pid)
    interval = float(interval_ms) / 1000.0
    deadline = time.time() + float(deadline_s)
    samples, t_all, why, conn, qerr = [], None, "deadline", None, None
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            why = "taskd exited"
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
            cnt, failed = final_counts(conn)
        except (OSError, http.client.HTTPException, ValueError) as e:
            qerr = str(e)
            if conn is not None:
                conn.close()
                conn = None
            time.sleep(interval)
            continue
        t = time.time()
        if not samples:
            open(ready, "w").close()
        samples.append((round(t, 6), cnt))
        if cnt >= n:
            t_all, why = t, "all completed"
            break
        if cnt + failed >= n:
            why = "%d FAILED" % failed
            break
        time.sleep(interval)
    if conn is not None:
        conn.close()
    with open(out, "w") as f:
        json.dump({"t_all_completed": t_all, "stop": why, "samples": samples,
                   "last_query_error": qerr}, f)

def db_check(db):
    # The tasks by status (and the queues, changes and checkpoints) as the db holds them; a read
    # that fails gives {"error": why}, a check the run then fails.
    try:
        c = ro_connect(db)
        status = dict(c.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
        msgs = dict(c.execute("SELECT queue, count(*) FROM messages GROUP BY queue").fetchall())
        changes = c.execute("SELECT count(*), max(seq) FROM changes").fetchone()
        ckpt = dict(c.execute("SELECT consumer, seq FROM checkpoints").fetchall())
    except sqlite3.Error as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return
    print(json.dumps({"status": status, "messages": msgs, "changes": changes[0],
                      "max_change_seq": changes[1], "checkpoints": ckpt}))

def pct(sorted_vals, p):
    # nearest-rank percentile
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]

def latency(port, n, warmup, poll_ms, first_i, out):
    import http.client
    n, warmup, first_i = int(n), int(warmup), int(first_i)
    poll_s = float(poll_ms) / 1000.0
    hdr = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    lat, post_ms, polls, get_rtt = [], [], [], []
    bad = {}
    def note(k):
        bad[k] = bad.get(k, 0) + 1
    for j in range(warmup + n):
        body = json.dumps({"task_type": "BENCH", "data": {"i": first_i + j}})
        try:
            t0 = time.perf_counter()
            conn.request("POST", "/tasks", body, hdr)
            r = conn.getresponse()
            data = r.read()
            t1 = time.perf_counter()
            if r.status != 201:
                note("POST %d" % r.status)
                continue
            tid = json.loads(data)["id"]
            npoll, state = 0, None
            while True:
                g0 = time.perf_counter()
                conn.request("GET", "/tasks/" + tid)
                r = conn.getresponse()
                data = r.read()
                g1 = time.perf_counter()
                npoll += 1
                get_rtt.append(g1 - g0)
                if r.status != 200:
                    note("GET %d" % r.status)
                    state = "error"
                    break
                state = json.loads(data)["status"]
                if state in ("COMPLETED", "FAILED"):
                    break
                if g1 - t0 > 10.0:
                    state = "timeout"
                    break
                time.sleep(poll_s)
            if state != "COMPLETED":
                note(state if state else "unknown")
                continue
            if j >= warmup:
                lat.append((g1 - t0) * 1000.0)
                post_ms.append((t1 - t0) * 1000.0)
                polls.append(npoll)
        except Exception as e:  # count, reconnect, go on
            note(type(e).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    s, sp = sorted(lat), sorted(post_ms)
    r = {"n": n, "ok": len(lat), "problems": bad,
         "p50_ms": pct(s, 50), "p90_ms": pct(s, 90), "p99_ms": pct(s, 99),
         "max_ms": s[-1] if s else None, "mean_ms": statistics.mean(s) if s else None,
         "post_p50_ms": pct(sp, 50), "post_p99_ms": pct(sp, 99),
         "polls_mean": statistics.mean(polls) if polls else None,
         "get_rtt_p50_ms": pct(sorted(get_rtt), 50) * 1000.0 if get_rtt else None}
    for k in list(r):
        if isinstance(r[k], float):
            r[k] = round(r[k], 3)
    with open(out, "w") as f:
        json.dump(r, f)

def wrk_checks(w, n):
    # The failed checks of the POST phase (w: wrk's WRKJSON, None when it gave none).
    if not w:
        return ["wrk produced no result"]
    checks = []
    if w["posts_sent"] != n:
        checks.append("POSTs sent %d != N %d" % (w["posts_sent"], n))
    if w["posts_ok"] != n:
        checks.append("POST 201 responses %d != N %d (other: %s)" % (
            w["posts_ok"], n, w["post_err_status"]))
    se = sum(w["sock_err"].values())
    if se:
        checks.append("wrk socket errors %s" % w["sock_err"])
    return checks

def post_checks(wrkjson, n):
    # Stop the run when its POST phase failed a check: a POST not answered 201 made no task,
    # and the poller would wait out its deadline for a count that cannot be reached.
    checks = wrk_checks(json.loads(wrkjson) if wrkjson else None, int(n))
    for c in checks:
        print("         CHECK FAILED: " + c)
    if checks:
        sys.exit(1)

def combine(run, wrkjson, pollfile, dbjson, latfile, n, out):
    # One run's record from the pieces; prints a per-run summary line.
    n = int(n)
    w = json.loads(wrkjson) if wrkjson else None
    p = json.load(open(pollfile)) if os.path.exists(pollfile) else {}
    d = json.loads(dbjson) if dbjson else None
    lat = json.load(open(latfile)) if latfile and os.path.exists(latfile) else None
    E = os.environ
    rec = {"run": int(run), "wrk": w, "db": d, "latency": lat,
           "poll_stop": p.get("stop"), "poll_samples": len(p.get("samples") or [])}
    t_first = w["t_first_post"] if w else None
    t_lastr = w["t_last_post_response"] if w else None
    t_all = p.get("t_all_completed")
    rec["post_seconds"] = round(t_lastr - t_first, 4) if w and t_lastr and t_first else None
    rec["post_rate"] = round(n / rec["post_seconds"], 1) if rec["post_seconds"] else None
    rec["e2e_seconds"] = round(t_all - t_first, 4) if t_all and t_first else None
    rec["tasks_per_s"] = round(n / rec["e2e_seconds"], 1) if rec["e2e_seconds"] else None
    # wrk stamps the last POST's answer when its Lua callback runs, which a loaded machine can
    # put off past the poller's sample of all completed: a drain that comes out negative is 0,
    # the two stamps' disorder kept apart (drain_stamps_behind_s) and noted
    drain = t_all - t_lastr if t_all and t_lastr else None
    rec["drain_after_posts_s"] = round(max(drain, 0.0), 4) if drain is not None else None
    rec["drain_stamps_behind_s"] = round(-drain, 4) if drain is not None and drain < 0 else None
    backlog = None
    if t_lastr and p.get("samples"):
        before = [c for t, c in p["samples"] if t <= t_lastr]
        backlog = n - before[-1] if before else n
    rec["backlog_at_last_post"] = backlog
    checks = wrk_checks(w, n)
    if t_all is None:
        checks.append("not all N tasks COMPLETED (poller: %s)" % p.get("stop"))
    if not d or "error" in d:
        checks.append("the tasks' statuses after phase 1 could not be read from the db (%s)" % (
            d["error"] if d else "the helper gave no answer"))
        d = None
    else:
        st = d["status"]
        if sum(st.values()) != n or st.get("COMPLETED", 0) != n:
            checks.append("tasks by status after phase 1: %s (want COMPLETED=%d only)" % (st, n))
    if lat is None:
        checks.append("the latency client wrote no result")
    elif lat["ok"] != lat["n"] or lat["problems"]:
        checks.append("latency phase: %d of %d tasks measured, problems %s" % (
            lat["ok"], lat["n"], lat["problems"]))
    rec["checks"] = checks
    for k in ("VMRSS_KB", "VMHWM_KB"):
        v = E.get("B_" + k, "")
        rec[k.lower()] = int(v) if v.isdigit() else None
    for k in ("CPU_S", "WRITER_CPU_S"):
        v = E.get("B_" + k, "")
        rec[k.lower()] = float(v) if v else None
    c = E.get("B_COMMITS", "").split()
    rec["commits"], rec["commit_writes"] = (int(c[0]), int(c[1])) if len(c) == 2 else (None, None)
    rec["taskd_exit"] = E.get("B_TASKD_EXIT", "")
    rec["log_errors"] = int(E.get("B_LOG_ERRORS", "0") or 0)
    rec["log_warnings"] = int(E.get("B_LOG_WARNINGS", "0") or 0)
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    def f(v, fmt):
        return (fmt % v) if v is not None else "n/a"
    print("  run %d: %s tasks/s end-to-end (%s s for %d), POST phase %s/s (%s s), backlog at last POST %s, "
          "drain %s s" % (rec["run"], f(rec["tasks_per_s"], "%.0f"), f(rec["e2e_seconds"], "%.3f"), n,
                          f(rec["post_rate"], "%.0f"), f(rec["post_seconds"], "%.3f"),
                          f(backlog, "%d"), f(rec["drain_after_posts_s"], "%.3f")))
    if rec["drain_stamps_behind_s"] is not None:
        print("         (drain 0: all were completed %.3f s before wrk stamped the last POST's answer,"
              " which its callback stamps late on a loaded machine)" % rec["drain_stamps_behind_s"])
    if lat:
        print("         latency (POST -> COMPLETED seen) p50 %s p90 %s p99 %s max %s ms; ok %d/%d%s" % (
            f(lat["p50_ms"], "%.2f"), f(lat["p90_ms"], "%.2f"), f(lat["p99_ms"], "%.2f"),
            f(lat["max_ms"], "%.2f"), lat["ok"], lat["n"],
            ("; problems %s" % lat["problems"]) if lat["problems"] else ""))
    us = lambda v: v * 1e6 / n if v is not None else None
    print("         taskd CPU for the N tasks %s s (%s us/task), of it the store writer %s s (%s us/task)" % (
        f(rec["cpu_s"], "%.2f"), f(us(rec["cpu_s"]), "%.0f"), f(rec["writer_cpu_s"], "%.2f"),
        f(us(rec["writer_cpu_s"]), "%.0f")))
    if rec["commits"]:
        print("         store transactions %d (%.2f per task), %d writes in them" % (
            rec["commits"], rec["commits"] / n, rec["commit_writes"]))
    print("         taskd VmRSS %s MiB, VmHWM %s MiB; db %s" % (
        f(rec["vmrss_kb"] / 1024 if rec["vmrss_kb"] else None, "%.1f"),
        f(rec["vmhwm_kb"] / 1024 if rec["vmhwm_kb"] else None, "%.1f"),
        json.dumps(d["status"]) if d else "n/a"))
    for c in checks:
        print("         CHECK FAILED: " + c)

def report(results, cfgfile):
    E = os.environ
    rows = [json.loads(l) for l in open(results) if l.strip()]
    def med(key, sub=None):
        vals = []
        for r in rows:
            v = r.get(key) if sub is None else (r.get(key) or {}).get(sub)
            if v is not None:
                vals.append(v)
        return round(statistics.median(vals), 3) if vals else None
    m = {"tasks_per_s": med("tasks_per_s"), "post_rate": med("post_rate"),
         "e2e_seconds": med("e2e_seconds"), "drain_after_posts_s": med("drain_after_posts_s"),
         "latency_p50_ms": med("latency", "p50_ms"), "latency_p90_ms": med("latency", "p90_ms"),
         "latency_p99_ms": med("latency", "p99_ms"), "latency_max_ms": med("latency", "max_ms"),
         "post_only_p50_ms": med("latency", "post_p50_ms"),
         "vmrss_mib": round(med("vmrss_kb") / 1024, 1) if med("vmrss_kb") else None,
         "vmhwm_mib": round(med("vmhwm_kb") / 1024, 1) if med("vmhwm_kb") else None,
         "cpu_s": med("cpu_s"), "writer_cpu_s": med("writer_cpu_s"), "commits": med("commits"),
         "commit_writes": med("commit_writes")}
    all_checks = [c for r in rows for c in r["checks"]]
    tgt = {"tasks_per_s_min": 10000, "latency_p50_ms_max": 3.0}
    met = {"throughput": m["tasks_per_s"] is not None and m["tasks_per_s"] >= tgt["tasks_per_s_min"],
           "latency_p50": m["latency_p50_ms"] is not None and m["latency_p50_ms"] < tgt["latency_p50_ms_max"]}
    print()
    print("== machine")
    print("nproc=%s kernel=%s cpu=%s loadavg-at-start=%s db-fs=%s" % (
        E["B_NPROC"], E["B_KERNEL"], E["B_CPU"], E["B_LOADAVG"], E["B_DBFS"]))
    print("== settings")
    print("RUNS=%s N=%s CONNECTIONS=%s THREADS=%s (wrk %s) LAT_N=%s LAT_WARMUP=%s LAT_POLL_MS=%s POLL_MS=%s"
          " DATA_BYTES=%s"
          % (E["RUNS"], E["N"], E["B_CONN_ACTUAL"], E["THREADS"], E["B_WRK_VERSION"], E["LAT_N"],
             E["LAT_WARMUP"], E["LAT_POLL_MS"], E["POLL_MS"], E["DATA_BYTES"]))
    print("taskd: %s" % E["B_TASKD_CMD"])
    print("config: %s" % json.dumps(json.load(open(cfgfile)), separators=(",", ":")))
    if E.get("B_EXPORTER_DESC"):
        print("exporter env: %s" % E["B_EXPORTER_DESC"])
    print("== results (median of %d run%s)" % (len(rows), "" if len(rows) == 1 else "s"))
    def f(v, fmt):
        return (fmt % v) if v is not None else "n/a"
    print("end-to-end throughput  %s tasks/s   (target >= %d)  %s   per run: %s" % (
        f(m["tasks_per_s"], "%.0f"), tgt["tasks_per_s_min"], "MET" if met["throughput"] else "NOT MET",
        " ".join(f(r["tasks_per_s"], "%.0f") for r in rows)))
    print("POST phase             %s POST/s    per run: %s" % (
        f(m["post_rate"], "%.0f"), " ".join(f(r["post_rate"], "%.0f") for r in rows)))
    print("drain after last POST  %s s" % f(m["drain_after_posts_s"], "%.3f"))
    print("latency POST->COMPLETED p50 %s  p90 %s  p99 %s  max %s ms   (target p50 < %.0f)  %s" % (
        f(m["latency_p50_ms"], "%.2f"), f(m["latency_p90_ms"], "%.2f"), f(m["latency_p99_ms"], "%.2f"),
        f(m["latency_max_ms"], "%.2f"), tgt["latency_p50_ms_max"],
        "MET" if met["latency_p50"] else "NOT MET"))
    print("  (%s client; POST alone p50 %s ms; latency includes up to one poll interval, %s ms sleep"
          " + one GET round trip, p50 %s ms)" % (
              E["LAT_CLIENT"], f(m["post_only_p50_ms"], "%.2f"), E["LAT_POLL_MS"],
              f(med("latency", "get_rtt_p50_ms"), "%.2f")))
    n = int(E["N"])
    print("taskd CPU for the N tasks %s s (%s us/task), store writer %s s (%s us/task)   per run: %s" % (
        f(m["cpu_s"], "%.2f"), f(m["cpu_s"] * 1e6 / n if m["cpu_s"] else None, "%.0f"),
        f(m["writer_cpu_s"], "%.2f"),
        f(m["writer_cpu_s"] * 1e6 / n if m["writer_cpu_s"] else None, "%.0f"),
        " ".join("%s/%s" % (f(r.get("cpu_s"), "%.2f"), f(r.get("writer_cpu_s"), "%.2f")) for r in rows)))
    if m["commits"]:
        print("store transactions %.0f (%.2f per task), %.0f writes in them   per run: %s" % (
            m["commits"], m["commits"] / n, m["commit_writes"],
            " ".join(str(r.get("commits")) for r in rows)))
    print("taskd memory after run VmRSS %s MiB, VmHWM %s MiB" % (
        f(m["vmrss_mib"], "%.1f"), f(m["vmhwm_mib"], "%.1f")))
    print("taskd log: %d error, %d warn lines; SIGTERM exit status per run: %s" % (
        sum(r["log_errors"] for r in rows), sum(r["log_warnings"] for r in rows),
        " ".join(str(r["taskd_exit"]) for r in rows)))
    print("checks: %s" % ("all N POSTs 201, all N tasks COMPLETED, none FAILED/CREATED, every task of the"
                          " latency phase COMPLETED"
                          if not all_checks else "%d FAILED (see the run lines above)" % len(all_checks)))
    strip = []
    for r in rows:
        r = dict(r)
        r.pop("wrk", None)
        strip.append(r)
    result = {
        "machine": {"nproc": int(E["B_NPROC"]), "kernel": E["B_KERNEL"], "cpu": E["B_CPU"],
                    "loadavg_at_start": E["B_LOADAVG"], "db_fs": E["B_DBFS"]},
        "settings": {"runs": int(E["RUNS"]), "n": int(E["N"]), "connections": int(E["B_CONN_ACTUAL"]),
                     "threads": int(E["THREADS"]), "lat_n": int(E["LAT_N"]),
                     "lat_poll_ms": float(E["LAT_POLL_MS"]), "lat_client": E["LAT_CLIENT"], "poll_ms": float(E["POLL_MS"]),
                     "sync": E["SYNC"], "wrk": E["B_WRK_VERSION"], "taskd": E["B_TASKD_CMD"],
                     "config": json.load(open(cfgfile)),
                     "exporter": E.get("B_EXPORTER_DESC") or None},
        "targets": tgt, "targets_met": met,
        "median": m,
        "runs": strip,
        "checks_failed": all_checks,
    }
    print("RESULT " + json.dumps(result, separators=(",", ":")))
    if all_checks:
        sys.exit("bench/pipeline.sh: %d check%s failed: the figures above do not stand" % (
            len(all_checks), "" if len(all_checks) == 1 else "s"))

cmd = sys.argv[1]
args = sys.argv[2:]
{"poll": poll, "post_checks": post_checks, "db_check": db_check, "latency": latency,
 "combine": combine, "report": report}[cmd](*args)
PY
helper() { "$PYTHON" "$TMP/helper.py" "$@"; }

# --- wrk Lua script ------------------------------------------------------------
# Each wrk thread sends exactly its share of the N POSTs. Once a thread has
# sent its share, connections that are free again send GET /health (cheap, 200;
# after a 5 ms pause each) until all its POSTs are answered (201 = POST ok,
# anything but 200/201 = POST error), so no extra tasks are created. The thread then appends a line to the
# done file and stops; the script sends wrk SIGINT when all threads are done.
# Wall-clock stamps (CLOCK_REALTIME through LuaJIT's ffi) of the first POST
# and the last POST response are kept per thread and merged in done().
cat >"$TMP/post.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } pipebench_timespec;
int clock_gettime(int clk, pipebench_timespec *tp);
]]
local ts = ffi.new("pipebench_timespec")
local function now()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME, same clock as python's time.time()
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

quota, sent, ok, perr, fillers_sent, fillers_ok = 0, 0, 0, 0, 0, 0
t_first, t_last = 0, 0
errstat = {}
local finished, verify_call = false, false
local filler_req, done_path, first_i, pad

function init(args)
  local n, nthreads = tonumber(args[1]), tonumber(args[2])
  done_path = args[3]
  local pad_bytes = tonumber(args[4]) or 0
  pad = pad_bytes > 0 and (',"pad":"' .. string.rep("x", pad_bytes) .. '"') or ""
  quota = math.floor(n / nthreads)
  if tid <= n % nthreads then quota = quota + 1 end
  -- data.i runs 1..N over all threads
  first_i = (tid - 1) * math.floor(n / nthreads) + math.min(tid - 1, n % nthreads) + 1
  -- wrk calls request() once on thread 1 right after init, only to verify the
  -- request; that one is never sent.
  verify_call = (tid == 1)
  filler_req = wrk.format("GET", "/health")
end

local function post(i)
  local body = '{"task_type":"BENCH","data":{"i":' .. i .. pad .. '}}'
  return wrk.format("POST", "/tasks", {["Content-Type"] = "application/json"}, body)
end

function request()
  if verify_call then
    verify_call = false
    return post(-1)
  end
  if sent < quota then
    sent = sent + 1
    if sent == 1 then t_first = now() end
    return post(first_i + sent - 1)
  end
  fillers_sent = fillers_sent + 1
  return filler_req
end

-- Fillers wait 5 ms first, so they do not busy-loop the server
-- while it answers the last POSTs. (With delay() defined wrk arms a 0 ms
-- timer before every request: a negligible cost.)
function delay()
  if sent < quota or verify_call then return 0 end
  return 5
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
  elseif status == 200 then
    fillers_ok = fillers_ok + 1
  else
    perr = perr + 1
    errstat[tostring(status)] = (errstat[tostring(status)] or 0) + 1
  end
  if not finished and ok + perr >= quota then
    finished = true
    t_last = now()
    local f = io.open(done_path, "a")
    if f then
      f:write(string.format("%d %d %d\n", tid, ok, perr))
      f:close()
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local s_sent, s_ok, s_err, s_fs, s_fo = 0, 0, 0, 0, 0
  local tf, tl, unfinished = nil, nil, false
  local es = {}
  for _, t in ipairs(threads) do
    s_sent = s_sent + (t:get("sent") or 0)
    s_ok = s_ok + (t:get("ok") or 0)
    s_err = s_err + (t:get("perr") or 0)
    s_fs = s_fs + (t:get("fillers_sent") or 0)
    s_fo = s_fo + (t:get("fillers_ok") or 0)
    local a, b = t:get("t_first") or 0, t:get("t_last") or 0
    if a > 0 and (tf == nil or a < tf) then tf = a end
    if b > 0 and (tl == nil or b > tl) then tl = b end
    if b == 0 then unfinished = true end -- its POSTs were not all answered
    for k, v in pairs(t:get("errstat") or {}) do es[k] = (es[k] or 0) + v end
  end
  if unfinished then tl = nil end
  local parts = {}
  for k, v in pairs(es) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"posts_sent":%d,"posts_ok":%d,"posts_err":%d,"post_err_status":{%s},' ..
    '"fillers_sent":%d,"fillers_ok":%d,"t_first_post":%s,"t_last_post_response":%s,' ..
    '"requests":%d,"duration_us":%d,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"sock_err":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    s_sent, s_ok, s_err, table.concat(parts, ","), s_fs, s_fo,
    tf and string.format("%.6f", tf) or "null", tl and string.format("%.6f", tl) or "null",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout))
end
LUA

# --- machine / settings ------------------------------------------------------------
export RUNS N SYNC THREADS LAT_N LAT_WARMUP LAT_POLL_MS LAT_CLIENT POLL_MS DATA_BYTES
export B_NPROC B_KERNEL B_CPU B_WRK_VERSION B_LOADAVG B_DBFS B_CONN_ACTUAL B_TASKD_CMD B_EXPORTER_DESC
B_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
B_NPROC=$(nproc)
B_KERNEL=$(uname -r)
B_CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
B_CPU=${B_CPU:-unknown}
B_WRK_VERSION=$(wrk -v 2>&1 | head -n 1 | awk '{print $2}' || true)
B_DBFS=$(stat -f -c %T "$TMP" 2>/dev/null || echo unknown)
B_CONN_ACTUAL=$((CONNECTIONS / THREADS * THREADS)) # wrk gives each thread CONNECTIONS/THREADS
TASKD_ARGS=(--listen 127.0.0.1:0 --db "<db>" --config "<config>" --sync "$SYNC")
[[ -z $TASKD_THREADS ]] || TASKD_ARGS+=(--threads "$TASKD_THREADS")
B_TASKD_CMD="$TASKD ${TASKD_ARGS[*]}"
B_EXPORTER_DESC=""
otel_names=$(env | grep -o '^OTEL_[A-Za-z0-9_]*' | sort | tr '\n' ' ' || true)
[[ -z $EXPORTER ]] || B_EXPORTER_DESC="EXPORTER: $EXPORTER"
[[ -z $otel_names ]] || B_EXPORTER_DESC="${B_EXPORTER_DESC:+$B_EXPORTER_DESC; }inherited: ${otel_names% }"

echo "bench/pipeline.sh: taskd pipeline end to end (POST -> publisher -> queue -> noop handler -> COMPLETED)"
echo "  targets: >= 10000 tasks/s end to end with --sync full; latency p50 < 3 ms at low load (this run: --sync $SYNC)"
echo "  nproc=$B_NPROC kernel=$B_KERNEL loadavg=$B_LOADAVG db-fs=$B_DBFS"
echo "  RUNS=$RUNS N=$N CONNECTIONS=$B_CONN_ACTUAL THREADS=$THREADS LAT_N=$LAT_N" \
  "handler batch=$HANDLER_BATCH concurrency=$HANDLER_CONCURRENCY consumer batch=$CONSUMER_BATCH" \
  "visibility_timeout=$VISIBILITY_TIMEOUT"
[[ -z $B_EXPORTER_DESC ]] || echo "  exporter env: $B_EXPORTER_DESC"
warn_if_loaded

# --- one run -------------------------------------------------------------------------
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }
# cpu_s PATH: user + system CPU seconds of the process or thread whose stat file PATH is
# (fields 14 and 15 after the name in parentheses).
CLK_TCK=$(getconf CLK_TCK)
cpu_s() { sed 's/^.*) //' "$1" 2>/dev/null | awk -v hz="$CLK_TCK" '{printf "%.2f", ($12 + $13) / hz}' || true; }
# writer_cpu_s PID: the CPU seconds of taskd's store writer thread (named store-writer).
writer_cpu_s() {
  local t
  for t in /proc/"$1"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == store-writer ]] && { cpu_s "$t/stat"; return; }
  done
}

taskd_alive_or_die() {
  if ! kill -0 "$TASKD_PID" 2>/dev/null; then
    local rc=0
    wait "$TASKD_PID" 2>/dev/null || rc=$?
    TASKD_PID=""
    echo "bench/pipeline.sh: taskd died (exit status $rc) during: $1; last log lines:" >&2
    tail -n 30 "$RUNDIR/taskd.log" >&2 || true
    exit 1
  fi
}

# show_log_problems: the run's first 10 error/warn lines of taskd's log, if any.
show_log_problems() {
  local lines
  mapfile -t lines < <(grep -iE '"level" *: *"(error|fatal|crit|warn)' "$RUNDIR/taskd.log" | head -n 10)
  ((${#lines[@]} > 0)) || return 0
  echo "         taskd error/warn log lines (first 10):"
  printf '           %s\n' "${lines[@]}"
}

RESULTS=$TMP/results.jsonl
: >"$RESULTS"
export B_VMRSS_KB B_VMHWM_KB B_TASKD_EXIT B_LOG_ERRORS B_LOG_WARNINGS B_CPU_S B_WRITER_CPU_S B_COMMITS

for ((r = 1; r <= RUNS; r++)); do
  RUNDIR=$TMP/run-$r
  mkdir -p "$RUNDIR/db"
  DB=$RUNDIR/db/taskd.db
  echo
  echo "== run $r/$RUNS (fresh db)"
  args=(--listen 127.0.0.1:0 --db "$DB" --config "$CONFIG" --sync "$SYNC")
  [[ -z $TASKD_THREADS ]] || args+=(--threads "$TASKD_THREADS")
  env "${EXPORTER_VARS[@]}" "$TASKD" "${args[@]}" >"$RUNDIR/taskd.stdout" 2>"$RUNDIR/taskd.log" &
  TASKD_PID=$!
  PORT=""
  for ((i = 0; i < 100; i++)); do
    taskd_alive_or_die "startup"
    if PORT=$(taskd_port "$RUNDIR/taskd.log"); then break; fi
    PORT=""
    sleep 0.1
  done
  [[ -n $PORT ]] || { tail -n 30 "$RUNDIR/taskd.log" >&2; die "taskd logged no \"listening\" line within 10s"; }
  sleep 0.3

  # 1. throughput
  helper poll "$PORT" "$N" "$RUNDIR/poll.json" "$TASKD_PID" "$POLL_MS" $((POST_TIMEOUT + COMPLETE_TIMEOUT)) \
    "$RUNDIR/poll-ready" &
  POLL_PID=$!
  for ((i = 0; i < 200; i++)); do
    [[ ! -e $RUNDIR/poll-ready ]] || break
    kill -0 "$POLL_PID" 2>/dev/null || die "the poller exited before its first answer"
    sleep 0.05
  done
  [[ -e $RUNDIR/poll-ready ]] || die "the poller had no answer from GET /metrics within 10s"
  DONEFILE=$RUNDIR/wrk-done
  : >"$DONEFILE"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${POST_TIMEOUT}s" --timeout 10s -s "$TMP/post.lua" \
    "http://127.0.0.1:$PORT/tasks" -- "$N" "$THREADS" "$DONEFILE" "$DATA_BYTES" >"$RUNDIR/wrk.out" 2>&1 &
  WRK_PID=$!
  # Each wrk thread stops itself after its share; this only makes sure wrk ends
  # then. It naps on a read that times out, not a sleep process, so it forks
  # nothing while the machine is measured.
  while kill -0 "$WRK_PID" 2>/dev/null; do
    mapfile -t done_lines <"$DONEFILE"
    if ((${#done_lines[@]} >= THREADS)); then
      kill -INT "$WRK_PID" 2>/dev/null || true
      break
    fi
    read -r -t 0.05 -u "$NAP_FD" || true
  done
  rc=0
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  WRKJSON=$(grep '^WRKJSON ' "$RUNDIR/wrk.out" | tail -n 1 | cut -d' ' -f2- || true)
  if ((rc != 0)) || [[ -z $WRKJSON ]]; then
    echo "  wrk failed (rc=$rc); its output:" >&2
    cat "$RUNDIR/wrk.out" >&2
  fi
  taskd_alive_or_die "POST phase"
  if ! helper post_checks "$WRKJSON" "$N"; then
    show_log_problems
    die "run $r: the POST phase failed its checks (above): the figures would not stand"
  fi
  rc=0
  wait "$POLL_PID" || rc=$?
  POLL_PID=""
  ((rc == 0)) || echo "  WARNING: the poller exited with status $rc" >&2
  taskd_alive_or_die "waiting for completion"
  # CPU time of phase 1 (startup's is a few ms): steadier than wall-clock time on a busy machine
  B_CPU_S=$(cpu_s "/proc/$TASKD_PID/stat")
  B_WRITER_CPU_S=$(writer_cpu_s "$TASKD_PID")
  # store transactions so far (the commit histogram's counts), and the writes they held
  B_COMMITS=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '
    /^taskd_store_commit_writes_count/ {c += $NF} /^taskd_store_commit_writes_sum/ {w += $NF}
    END {if (c) printf "%d %d", c, w}' || true)
  DBJSON=$(helper db_check "$DB" || true)

  # 2. latency at low load (same taskd, queue drained). The client runs in the background and
  # the script waits for it: a signal then ends the wait at once (bash runs a trap only once a
  # command in the foreground has ended), and cleanup stops the client.
  lat_args=("$PORT" "$LAT_N" "$LAT_WARMUP" "$LAT_POLL_MS" $((N + 1)) "$RUNDIR/latency.json")
  if [[ $LAT_CLIENT == c ]]; then
    "$LATENCY_CLIENT" "${lat_args[@]}" &
  else
    "$PYTHON" "$TMP/helper.py" latency "${lat_args[@]}" &
  fi
  LAT_PID=$!
  wait "$LAT_PID" || echo "  WARNING: latency client failed" >&2
  LAT_PID=""
  taskd_alive_or_die "latency phase"

  # 3. memory, then a graceful stop
  B_VMRSS_KB=$(rss_kb "$TASKD_PID" VmRSS)
  B_VMHWM_KB=$(rss_kb "$TASKD_PID" VmHWM)
  kill -TERM "$TASKD_PID"
  B_TASKD_EXIT="timeout (killed)"
  for ((i = 0; i < 150; i++)); do
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
  B_LOG_ERRORS=$(grep -ciE '"level" *: *"(error|fatal|crit)' "$RUNDIR/taskd.log" || true)
  B_LOG_WARNINGS=$(grep -ciE '"level" *: *"warn' "$RUNDIR/taskd.log" || true)

  helper combine "$r" "$WRKJSON" "$RUNDIR/poll.json" "$DBJSON" "$RUNDIR/latency.json" "$N" "$RESULTS"
  show_log_problems
  [[ $B_TASKD_EXIT == 0 ]] || echo "         taskd exit status after SIGTERM: $B_TASKD_EXIT"
  if [[ -s $RUNDIR/taskd.stdout ]]; then
    echo "         taskd wrote to stdout (first lines):"
    head -n 5 "$RUNDIR/taskd.stdout" | sed 's/^/           /'
  fi
  [[ ${KEEP_TMP:-0} == 1 ]] || rm -rf "$RUNDIR/db"
done

helper report "$RESULTS" "$CONFIG"
