#!/usr/bin/env bash
# bench/conns.sh - taskd's memory and service under many connections.
#
# Starts a fresh taskd and reports its VmRSS (and VmHWM, the peak) at each
# step: idle; during and after wrk with CONNECTIONS keep-alive connections
# (GET /tasks/{id}); during and after HOLD connections that are idle, then
# trickling a request head a byte at a time, all from 127.0.0.1; and how long
# GET /health takes meanwhile from another client (127.0.0.2). HOLD over the
# per-client bound (1024 by default) shows the bound: the rest are refused
# and the other client is still served. See bench/README.md.
#
# Env options: CONNECTIONS (1000), THREADS (2), DURATION (10, seconds of wrk),
#   HOLD (1000, idle/trickling connections), HOLD_SECONDS (5), TASKD
#   (build-release/taskd under the repo root), PYTHON.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

CONNECTIONS=${CONNECTIONS:-1000}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10}
HOLD=${HOLD:-1000}
HOLD_SECONDS=${HOLD_SECONDS:-5}
TASKD=${TASKD:-$ROOT/build-release/taskd}
PYTHON=${PYTHON:-python3}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_positive CONNECTIONS THREADS DURATION HOLD HOLD_SECONDS
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
require_taskd
need=$((CONNECTIONS > HOLD ? CONNECTIONS : HOLD))
(($(ulimit -n) > need + 64)) || die "ulimit -n ($(ulimit -n)) is too low for $need connections"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskd-conns.XXXXXX")
TASKD_PID=""
WRK_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$WRK_PID" TERM 2
  stop_pid "$TASKD_PID" TERM 5
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench/conns.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

rss() { awk '/^VmRSS/ {print $2}' "/proc/$TASKD_PID/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$TASKD_PID/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# sample_rss SECONDS OUT: the largest VmRSS seen every 0.2 s for SECONDS, into OUT.
sample_rss() {
  local end=$((SECONDS + $1)) max=0 r
  while ((SECONDS < end)); do
    r=$(rss)
    ((r > max)) && max=$r
    sleep 0.2
  done
  echo "$max" >"$2"
}

"$TASKD" --listen 127.0.0.1:0 --db "$TMP/taskd.db" --sync normal 2>"$TMP/taskd.log" &
TASKD_PID=$!
for _ in $(seq 50); do taskd_port "$TMP/taskd.log" >/dev/null 2>&1 && break; sleep 0.1; done
PORT=$(taskd_port "$TMP/taskd.log") || die "taskd did not start; log: $(cat "$TMP/taskd.log")"
URL=http://127.0.0.1:$PORT
sleep 0.5
IDLE=$(rss)

ID=$(curl -sf -XPOST "$URL/tasks" -H 'Content-Type: application/json' \
  -d '{"task_type":"TASK1","data":{"foo":"bar"}}' | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# --- 1. wrk with CONNECTIONS keep-alive connections ------------------------------
sample_rss "$DURATION" "$TMP/wrk-rss" &
SAMPLER=$!
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s "$URL/tasks/$ID" >"$TMP/wrk.out" 2>&1 &
WRK_PID=$!
wait "$WRK_PID" || die "wrk failed: $(cat "$TMP/wrk.out")"
WRK_PID=""
wait "$SAMPLER"
sleep 1
WRK_DURING=$(cat "$TMP/wrk-rss")
WRK_AFTER=$(rss)
WRK_RPS=$(awk '/^Requests\/sec/ {print $2}' "$TMP/wrk.out")
WRK_ERRS=$(awk '/Socket errors/ {print}' "$TMP/wrk.out")
WRK_NON2XX=$(awk '/Non-2xx/ {print $NF}' "$TMP/wrk.out")

# --- 2. HOLD idle, then trickling connections --------------------------------------
cat >"$TMP/hold.py" <<'PY'
import json, socket, sys, time
port, n, secs, mode = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
# GET /health comes from another client address when there is one (127.0.0.2)
other = "127.0.0.2"
try:
    socket.create_server((other, 0)).close()
except OSError:
    other = "127.0.0.1"
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    socks.append(s)
head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 4096
lat, served = [], 0
t0, i = time.monotonic(), 0
while time.monotonic() - t0 < secs:
    if mode == "trickle":
        for s in socks:
            try:
                s.send(head[i:i + 1])
            except OSError:
                pass
        i += 1
    t = time.monotonic()
    data = b""
    try:  # a server that cannot take the connection leaves it in the backlog: 2 s, then failed
        c = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(other, 0))
        c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        while True:
            d = c.recv(4096)
            if not d:
                break
            data += d
        c.close()
    except OSError:
        pass
    lat.append((time.monotonic() - t) * 1000)
    served += data.startswith(b"HTTP/1.1 200")
    time.sleep(0.25)
open_now = refused = 0
for s in socks:
    try:
        refused += s.recv(16).startswith(b"HTTP/1.1 4")  # answered: refused (429)
    except BlockingIOError:
        open_now += 1  # nothing to read: still open
    except OSError:
        pass
lat.sort()
print(json.dumps({"health_from": other, "health_checks": len(lat), "health_200": served,
                  "health_p50_ms": round(lat[len(lat) // 2], 2), "health_max_ms": round(lat[-1], 2),
                  "still_open": open_now, "refused": refused}))
for s in socks:
    s.close()
PY
hold() { # hold MODE -> prints "rss_during json"
  local mode=$1
  sample_rss "$HOLD_SECONDS" "$TMP/hold-rss" &
  local sampler=$!
  "$PYTHON" "$TMP/hold.py" "$PORT" "$HOLD" "$HOLD_SECONDS" "$mode" >"$TMP/hold-$mode.json"
  wait "$sampler"
  echo "$(cat "$TMP/hold-rss") $(cat "$TMP/hold-$mode.json")"
}
read -r IDLE_DURING IDLE_JSON < <(hold idle)
read -r TRICKLE_DURING TRICKLE_JSON < <(hold trickle)
sleep 1
AFTER=$(rss)
PEAK=$(hwm)
REFUSED=$(curl -sf "$URL/metrics" | grep '^taskd_http_refused_total' | tr '\n' ' ' || true)
stop_pid "$TASKD_PID" TERM 10
wait "$TASKD_PID" && RC=0 || RC=$?
TASKD_PID=""

echo "== bench/conns.sh: nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: CONNECTIONS=$CONNECTIONS THREADS=$THREADS DURATION=${DURATION}s HOLD=$HOLD" \
  "HOLD_SECONDS=$HOLD_SECONDS taskd defaults (header_timeout 10 s)"
printf '%-44s %8s\n' "taskd VmRSS, MiB" ""
printf '  %-42s %8s\n' "idle" "$(mib "$IDLE")"
printf '  %-42s %8s\n' "during wrk -c $CONNECTIONS (max)" "$(mib "$WRK_DURING")"
printf '  %-42s %8s\n' "1 s after wrk" "$(mib "$WRK_AFTER")"
printf '  %-42s %8s\n' "during $HOLD idle connections (max)" "$(mib "$IDLE_DURING")"
printf '  %-42s %8s\n' "during $HOLD trickling connections (max)" "$(mib "$TRICKLE_DURING")"
printf '  %-42s %8s\n' "after all closed" "$(mib "$AFTER")"
printf '  %-42s %8s\n' "peak (VmHWM)" "$(mib "$PEAK")"
echo "wrk: $WRK_RPS req/s, non-2xx: ${WRK_NON2XX:-0}, ${WRK_ERRS:-no socket errors}"
echo "GET /health meanwhile, idle: $IDLE_JSON"
echo "GET /health meanwhile, trickling: $TRICKLE_JSON"
echo "refused: ${REFUSED:-none}"
echo "taskd exit status after SIGTERM: $RC"
# An error answer or a socket error means the wrk step's connections were not all served (taskd
# refuses a client's connections past its bound at once): its req/s and memory are not those of
# CONNECTIONS connections, as bench/api.sh fails a scenario for either.
CHECKS=()
[[ ${WRK_NON2XX:-0} == 0 ]] || CHECKS+=("wrk: $WRK_NON2XX answers not 2xx")
[[ -z $WRK_ERRS ]] || CHECKS+=("wrk: ${WRK_ERRS# }")
for c in "${CHECKS[@]}"; do echo "CHECK FAILED: $c"; done
printf 'RESULT {"rss_kib":{"idle":%s,"wrk_during":%s,"wrk_after":%s,"hold_idle":%s,"hold_trickle":%s,"after":%s,"peak":%s},"wrk_rps":%s,"wrk_non2xx":%s,"health_idle":%s,"health_trickle":%s,"exit":%s,"checks_failed":%s}\n' \
  "$IDLE" "$WRK_DURING" "$WRK_AFTER" "$IDLE_DURING" "$TRICKLE_DURING" "$AFTER" "$PEAK" \
  "${WRK_RPS:-null}" "${WRK_NON2XX:-0}" "$IDLE_JSON" "$TRICKLE_JSON" "$RC" \
  "$("$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${CHECKS[@]}")"
((${#CHECKS[@]} == 0)) || die "${#CHECKS[@]} check(s) failed: the wrk figures above do not stand"
