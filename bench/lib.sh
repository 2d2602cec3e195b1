# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): messages, checks of the settings and
# the taskd binary, and stopping background processes.

# Print "<script>: message" to stderr and exit 1.
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Sourced, this sees the script's own arguments: the benchmarks take none, their options are
# environment variables (each script's header lists them), so an argument is refused rather
# than ignored.
(($# == 0)) || die "takes no arguments (got '$*'); its options are environment variables \
listed in its header, set as NAME=value before the command"

# Die unless each variable named holds a positive integer.
require_positive() {
  local v
  for v in "$@"; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer (got '${!v}')"
  done
}

# Make $TASKD absolute and check it is built; print how to build it if not.
require_taskd() {
  [[ $TASKD == /* ]] || TASKD=$PWD/$TASKD
  if [[ ! -x $TASKD ]]; then
    echo "$(basename "$0"): taskd binary not found at $TASKD" >&2
    echo "Build it first (from $ROOT):" >&2
    echo "  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && cmake --build build-release" >&2
    exit 1
  fi
}

# stop_pid PID SIGNAL TIMEOUT_S: signal, wait up to TIMEOUT_S, then SIGKILL.
stop_pid() {
  local pid=$1 sig=$2 t=$3 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# taskd_port LOG: print the port from the first "listening" line taskd wrote to
# LOG (its JSON log on stderr); fails while there is none yet.
taskd_port() {
  "${PYTHON:-python3}" - "$1" <<'PY'
import json, sys
try:
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and o.get("message") == "listening" and "address" in o:
                print(str(o["address"]).rsplit(":", 1)[1])
                sys.exit(0)
except FileNotFoundError:
    pass
sys.exit(1)
PY
}

# free_port: print a TCP port on 127.0.0.1 that is free now (the kernel's pick
# for port 0), for a server that cannot report the port it bound itself.
free_port() {
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_on_free_port START READY FAILED: start a server on a loopback port that is free when
# picked, in up to 5 attempts. The port is not held once picked: another program may bind it
# first (a client's connection too), so the server that answers there must be the one started.
# Each attempt sets PORT (free_port) and runs START, which starts the server in the background;
# READY succeeds once that server answers on PORT as the one started, else FAILED ATTEMPT says
# why and stops it, and the next attempt picks another port. Fails when no attempt worked.
start_on_free_port() {
  local start=$1 ready=$2 failed=$3 attempt
  for attempt in 1 2 3 4 5; do
    # shellcheck disable=SC2034 # read by the steps and the caller
    PORT=$(free_port)
    "$start"
    if "$ready"; then return 0; fi
    "$failed" "$attempt"
  done
  return 1
}

# wait_tcp PORT PID TIMEOUT_S: wait until 127.0.0.1:PORT accepts a connection;
# fails if process PID exits first or the time is up.
wait_tcp() {
  local port=$1 pid=$2 t=$3 i
  for ((i = 0; i < t * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# warn_if_loaded: a warning on stdout when the load average at start is above 1: other work then
# shares the CPUs, and the figures are not comparable with a quiet machine's.
warn_if_loaded() {
  local l
  l=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null) || return 0
  if awk -v l="$l" 'BEGIN { exit !(l > 1.0) }'; then
    echo "  WARNING: load average $l at start: other work shares the CPUs, so the figures are" \
      "a smoke check only"
  fi
}
