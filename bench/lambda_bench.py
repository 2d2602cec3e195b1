#!/usr/bin/env python3
"""Helper of bench/lambda.sh (Python standard library only); see bench/README.md.

    lambda_bench.py spawn --n N --out FILE [--any-status] -- ARGV...
        exec -> exit of ARGV, N times, started the way the Lambda emulator starts a bootstrap
        (subprocess.Popen with a small environment, pipes, a preexec_fn); JSON samples to FILE.
    lambda_bench.py ddb --info FILE --table NAME
        starts DynamoDB Local, creates the table (deploy/table.json), writes
        {"endpoint", "java_pid"} to FILE, then waits for SIGTERM / SIGINT (or its parent's exit)
        and stops DynamoDB Local.
    lambda_bench.py warm [--emulator PATH] --kind bootstrap|null --bootstrap PATH --round R --n N --warmup W
                         --out FILE --log FILE --pidfile FILE [--endpoint URL --table NAME]
        one round of warm invocations through tests/lambda/emulator.py (one environment, one
        client, sequential requests); for --kind bootstrap also the raw DynamoDB calls.
    lambda_bench.py report --dir DIR
        reads the round files of DIR and prints the summary and a RESULT {...} line.
"""

import argparse
import http.client
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAMBDA_DIR = os.path.join(ROOT, "tests", "lambda")
EMULATOR = os.path.join(LAMBDA_DIR, "emulator.py")
sys.path.insert(0, LAMBDA_DIR)

POST_BODY = '{"task_type":"TASK1","data":{"foo":"bar"}}'
FAKE_CREDS = {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIATASKDBENCHKEY001",
              "AWS_SECRET_ACCESS_KEY": "taskdBenchSecretAccessKey00000000000000",
              "AWS_SESSION_TOKEN": "taskd-bench-session-token"}
INIT_AIM_MS = 10.0
RSS_AIM_KB = 16 * 1024


class Stop(Exception):
    pass


def on_term(signum, frame):
    raise Stop()


def install_signals():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)


def set_pdeathsig():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


# ---- statistics -----------------------------------------------------------------------------

def pct(sorted_vals, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[min(k, len(sorted_vals)) - 1]


def stats(vals):
    v = sorted(vals)
    if not v:
        return None
    return {"n": len(v), "min": v[0], "median": statistics.median(v), "p90": pct(v, 90),
            "p99": pct(v, 99), "max": v[-1]}


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


# ---- spawn: exec -> exit ----------------------------------------------------------------------

def cmd_spawn(a):
    install_signals()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    samples = []
    for _ in range(a.n):
        t0 = time.monotonic()
        p = subprocess.Popen(a.argv, env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=set_pdeathsig)
        p.wait()
        t1 = time.monotonic()
        p.stdout.close()
        p.stderr.close()
        if p.returncode < 0 or (p.returncode != 0 and not a.any_status):  # < 0: a signal's
            sys.exit("%s exited with status %s" % (a.argv, p.returncode))
        samples.append(round((t1 - t0) * 1000, 3))
    write_json(a.out, {"argv": a.argv, "samples_ms": samples, "stats": stats(samples)})


# ---- ddb: DynamoDB Local for the whole run ----------------------------------------------------

def cmd_ddb(a):
    from dynamodb_local import DynamoDBLocal, create_table
    install_signals()
    db = DynamoDBLocal(java_options=())  # the JVM's defaults: its steady state is measured
    parent = os.getppid()
    try:
        t0 = time.monotonic()
        db.start()
        create_table(db.endpoint, a.table)
        write_json(a.info, {"endpoint": db.endpoint, "java_pid": db.proc.pid,
                            "start_s": round(time.monotonic() - t0, 2)})
        while os.getppid() == parent:
            time.sleep(0.5)
    except Stop:
        pass
    finally:
        db.stop()


# ---- warm: one round of invocations ------------------------------------------------------------

class Emulator:
    """tests/lambda/emulator.py with one environment; its stderr parsed in a thread."""

    def __init__(self, emulator, bootstrap, env, log_path, pidfile):
        argv = [sys.executable, "-B", emulator, "--bootstrap", bootstrap, "--handler", "api",
                "--concurrency", "1", "--listen", "127.0.0.1:0"]
        for k, v in env.items():
            argv += ["--env", "%s=%s" % (k, v)]
        self.cond = threading.Condition()
        self.invocations = []     # the emulator's "invocation" lines, in order
        self.init = None
        self.environment = None
        self.address = None
        self.problems = []        # ERROR / WARN lines of the emulator or the function
        self.eof = False
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        with open(pidfile, "w") as f:
            f.write("%d\n" % self.proc.pid)
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        try:
            for raw in self.proc.stderr:
                self.log.write(raw)
                try:
                    o = json.loads(raw.decode("utf-8", "replace"))
                except ValueError:
                    o = None
                with self.cond:
                    if isinstance(o, dict):
                        msg, level = o.get("message"), str(o.get("level", "")).upper()
                        if o.get("service") == "emulator" and msg == "invocation":
                            self.invocations.append(o)
                        elif o.get("service") == "emulator" and msg == "init":
                            self.init = o
                        elif o.get("service") == "emulator" and msg == "environment":
                            self.environment = o
                        elif msg == "listening" and self.address is None:
                            self.address = o.get("address")
                        if level in ("ERROR", "WARN", "WARNING", "FATAL"):
                            self.problems.append(raw.decode("utf-8", "replace").rstrip())
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()
            self.log.flush()

    def wait_listening(self, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.address is None:
                if self.eof or time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not log \"listening\" (exit status %s); see its log"
                                       % self.proc.poll())
                self.cond.wait(0.1)
        host, _, port = self.address.rpartition(":")
        return host, int(port)

    def wait_invocations(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.invocations) < count:
                if self.eof or time.monotonic() > deadline:
                    raise RuntimeError("the emulator logged %d invocations, expected %d"
                                       % (len(self.invocations), count))
                self.cond.wait(0.1)
            return list(self.invocations)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.thread.join(5)
        self.log.close()


def proc_status(pid, keys=("VmRSS", "VmHWM")):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


class Client:
    """One keep-alive HTTP/1.1 connection; request() returns (status, body, milliseconds)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(self, method, path, body=None, headers=None):
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        t1 = time.perf_counter()
        return r.status, data, (t1 - t0) * 1000

    def close(self):
        self.conn.close()


class RawDynamoDB:
    """DynamoDB calls on one keep-alive connection. The request is encoded and signed before the
    clock starts; the clock stops when the answer's last byte is read (not parsed)."""

    def __init__(self, endpoint):
        from urllib.parse import urlsplit
        import dynamodb_local
        self.sign = dynamodb_local._sign
        u = urlsplit(endpoint)
        self.netloc = u.netloc
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def call(self, op, payload):
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = self.sign(self.netloc, "DynamoDB_20120810." + op, body)
        t0 = time.perf_counter()
        self.conn.request("POST", "/", body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        t1 = time.perf_counter()
        if r.status != 200:
            raise RuntimeError("DynamoDB %s: %s %s" % (op, r.status, data[:300]))
        return json.loads(data), (t1 - t0) * 1000

    def close(self):
        self.conn.close()


def uuid7():
    ms = int(time.time() * 1000)
    r = random.getrandbits(74)
    v = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1))
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def put_item_payload(table, template):
    """PutItem of a new task as the store writes it (dynamodb_store.c create_plain): the item of a
    task the API created, with a fresh id, time and trace; condition attribute_not_exists(id)."""
    item = json.loads(json.dumps(template))
    item["id"] = {"S": uuid7()}
    item["created_time"] = {"N": str(int(time.time()))}
    if "trace" in item:
        item["trace"] = {"S": "00-%032x-%016x-01" % (random.getrandbits(128), random.getrandbits(64))}
    return {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(id)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}


def get_item_payload(table, task_id):
    return {"TableName": table, "Key": {"id": {"S": task_id}}, "ConsistentRead": True}


def durations(invs, start, end, expect_status):
    sel = invs[start:end]
    bad = [i.get("status") for i in sel if i.get("status") != expect_status]
    return [i["duration_ms"] for i in sel], len(bad)


def warm_checks(out):
    """What makes a warm round's figures not stand: an answer with another status than the
    request's own (an error answer is timed as if it were the work), an environment started
    more than once (a cold start among the warm ones), an ERROR or WARN line of the emulator or
    the function, an emulator that did not exit cleanly."""
    checks = []
    parts = (("GET /tasks/{id}", out.get("get")), ("POST /tasks", out.get("post"))) \
        if out["kind"] == "bootstrap" else (("GET", out.get("null")),)
    for title, part in parts:
        if part and part["bad_status"]:
            checks.append("%s: %d of %d answers had an unexpected status" % (title, part["bad_status"], out["n"]))
    if out["environment_starts"] != 1:
        checks.append("the environment was started %s times, where once" % out["environment_starts"])
    if out["problem_count"]:
        checks.append("%d ERROR or WARN log lines of the emulator or the function" % out["problem_count"])
    if out["emulator_exit"] != 0:
        checks.append("the emulator exited with status %s" % out["emulator_exit"])
    return checks


def cmd_warm(a):
    install_signals()
    rnd = random.Random(1000 + a.round)
    env = {}
    if a.kind == "bootstrap":
        env = {"TABLE_NAME": a.table, "AWS_ENDPOINT_URL_DYNAMODB": a.endpoint}
        env.update(FAKE_CREDS)
    emu = Emulator(a.emulator, a.bootstrap, env, a.log, a.pidfile)
    client = raw = None
    out = {"kind": a.kind, "round": a.round, "n": a.n, "warmup": a.warmup}
    try:
        host, port = emu.wait_listening()
        client = Client(host, port)
        json_hdr = {"Content-Type": "application/json"}
        if a.kind == "null":
            # the null runtime answers every event with a fixed 200; the path does not matter
            for _ in range(a.warmup):
                st, body, _ = client.request("GET", "/tasks/x")
                if st != 200:
                    raise RuntimeError("warm-up GET answered %s: %s" % (st, body[:300]))
            client_ms, non200 = [], 0
            for _ in range(a.n):
                st, _, ms = client.request("GET", "/tasks/x")
                client_ms.append(ms)
                non200 += st != 200
            invs = emu.wait_invocations(a.warmup + a.n)
            dur, bad = durations(invs, a.warmup, a.warmup + a.n, 200)
            out["null"] = {"invocation_ms": stats(dur), "client_ms": stats(client_ms),
                           "bad_status": max(bad, non200)}
        else:
            raw = RawDynamoDB(a.endpoint)
            # warm-up: POSTs (their ids are what the GETs read), GETs, and the raw calls
            ids = []
            for _ in range(a.warmup):
                st, body, _ = client.request("POST", "/tasks", POST_BODY, json_hdr)
                if st != 201:
                    raise RuntimeError("warm-up POST /tasks answered %s: %s" % (st, body[:300]))
                ids.append(json.loads(body)["id"])
            for _ in range(a.warmup):
                st, body, _ = client.request("GET", "/tasks/" + rnd.choice(ids))
                if st != 200:
                    raise RuntimeError("warm-up GET /tasks/{id} answered %s: %s" % (st, body[:300]))
            item = raw.call("GetItem", get_item_payload(a.table, ids[0]))[0].get("Item")
            if not item:
                raise RuntimeError("GetItem of task %s found no item" % ids[0])
            for _ in range(a.warmup):
                raw.call("GetItem", get_item_payload(a.table, rnd.choice(ids)))
                raw.call("PutItem", put_item_payload(a.table, item))
            base = 2 * a.warmup
            emu.wait_invocations(base)

            # GET /tasks/{id}, each request followed by the equivalent raw GetItem
            get_client, get_ddb, non2xx = [], [], 0
            for _ in range(a.n):
                st, _, ms = client.request("GET", "/tasks/" + rnd.choice(ids))
                get_client.append(ms)
                non2xx += st != 200
                get_ddb.append(raw.call("GetItem", get_item_payload(a.table, rnd.choice(ids)))[1])
            invs = emu.wait_invocations(base + a.n)
            get_dur, get_bad = durations(invs, base, base + a.n, 200)

            # POST /tasks, each request followed by the equivalent raw PutItem
            post_client, post_ddb, post_non201 = [], [], 0
            for _ in range(a.n):
                st, _, ms = client.request("POST", "/tasks", POST_BODY, json_hdr)
                post_client.append(ms)
                post_non201 += st != 201
                post_ddb.append(raw.call("PutItem", put_item_payload(a.table, item))[1])
            invs = emu.wait_invocations(base + 2 * a.n)
            post_dur, post_bad = durations(invs, base + a.n, base + 2 * a.n, 201)

            pid = (emu.init or {}).get("pid")
            mem = proc_status(pid) if pid else {}
            out["get"] = {"invocation_ms": stats(get_dur), "client_ms": stats(get_client),
                          "ddb_ms": stats(get_ddb), "bad_status": max(get_bad, non2xx)}
            out["post"] = {"invocation_ms": stats(post_dur), "client_ms": stats(post_client),
                           "ddb_ms": stats(post_ddb), "bad_status": max(post_bad, post_non201)}
            out["memory_kb"] = {"vmrss": mem.get("VmRSS"), "vmhwm": mem.get("VmHWM")}
            out["ids_read"] = len(ids)
        out["init_ms"] = (emu.init or {}).get("init_ms")
    finally:
        if client:
            client.close()
        if raw:
            raw.close()
        emu.stop()
    out["environment_max_rss_kb"] = (emu.environment or {}).get("max_rss_kb")
    out["environment_starts"] = (emu.environment or {}).get("starts")
    out["problems"] = emu.problems[:20]
    out["problem_count"] = len(emu.problems)
    out["emulator_exit"] = emu.proc.returncode
    out["checks"] = warm_checks(out)
    write_json(a.out, out)
    for c in out["checks"]:
        print("  round %d %s: CHECK FAILED: %s" % (a.round, a.kind, c))
    if a.kind == "bootstrap":
        g, p = out["get"], out["post"]
        print("  round %d warm: GET invocation median %.3f ms (DynamoDB %.3f), POST %.3f ms (DynamoDB %.3f), "
              "VmHWM %s kB" % (a.round, g["invocation_ms"]["median"], g["ddb_ms"]["median"],
                               p["invocation_ms"]["median"], p["ddb_ms"]["median"], out["memory_kb"]["vmhwm"]))
    else:
        print("  round %d null runtime: invocation median %.3f ms, client %.3f ms"
              % (a.round, out["null"]["invocation_ms"]["median"], out["null"]["client_ms"]["median"]))


# ---- report -----------------------------------------------------------------------------------

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def over_rounds(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": v}


def rounded(o):
    if isinstance(o, float):
        return round(o, 3)
    if isinstance(o, dict):
        return {k: rounded(v) for k, v in o.items()}
    if isinstance(o, list):
        return [rounded(v) for v in o]
    return o


def not_below_zero(values):
    """values with each negative one made 0 (None kept), and {index: the value it was} of those."""
    was = {i: v for i, v in enumerate(values) if v is not None and v < 0}
    return [0.0 if i in was else v for i, v in enumerate(values)], was


def f3(x):
    return "-" if x is None else "%.3f" % x


def f2(x):
    return "-" if x is None else "%.2f" % x


def cmd_report(a):
    E = os.environ
    runs = int(E["RUNS"])
    d = a.dir
    rounds = list(range(1, runs + 1))

    def per_round(pattern):
        return [load(os.path.join(d, pattern % r)) for r in rounds]

    init_boot = per_round("init-bootstrap-%d.json")
    init_null = per_round("init-null-%d.json")
    spawn_true = per_round("spawn-true-%d.json")
    spawn_py = per_round("spawn-python-%d.json")
    spawn_boot = per_round("spawn-bootstrap-%d.json")
    warm = per_round("warm-bootstrap-%d.json")
    warm_null = per_round("warm-null-%d.json")

    result = {}
    print()
    print("== machine")
    print("nproc=%s kernel=%s cpu=%s loadavg-at-start=%s loadavg-at-end=%s" % (
        E["B_NPROC"], E["B_KERNEL"], E["B_CPU"], E["B_LOADAVG"], E.get("B_LOADAVG_END", "?")))
    print("== settings")
    print("RUNS=%s INIT_N=%s N=%s WARMUP=%s  (per round: INIT_N cold starts of each; then one emulator "
          "environment, one client, sequential requests)" % (E["RUNS"], E["INIT_N"], E["N"], E["WARMUP"]))
    print("bootstrap: %s (CMAKE_BUILD_TYPE=%s, %s bytes, %s shared libraries)" % (
        E["B_BOOTSTRAP_REL"], E["B_BUILD_TYPE"], E["B_BOOTSTRAP_SIZE"], E["B_BOOTSTRAP_LIBS"]))
    print("python: %s (%s) | java: %s | DynamoDB Local: %s, started in %ss" % (
        E["B_PYTHON_REL"], E["B_PYTHON_VERSION"], E["B_JAVA_VERSION"], E["B_DDB_VERSION"], E.get("B_DDB_START_S", "?")))
    print("emulator: %s | null runtime: %s" % (E["B_EMULATOR_REL"], E["B_NULL_RUNTIME"]))

    def row(label, vals, fmt=f3, extra=""):
        s = over_rounds(vals)
        cells = " ".join("%10s" % fmt(v) for v in vals)
        if s is None:
            print("  %-44s %s %10s" % (label, cells, "-"))
            return None
        print("  %-44s %s %10s  [%s-%s]%s" % (label, cells, fmt(s["median"]), fmt(s["min"]), fmt(s["max"]), extra))
        return s

    hdr_rounds = " ".join("%10s" % ("round %d" % r) for r in rounds)
    # 1. cold init
    print()
    print("== 1. cold init, ms (median of %s starts per round; last columns: median of the round "
          "medians [range of the round medians])" % E["INIT_N"])
    print("  %-44s %s %10s" % ("", hdr_rounds, "median"))

    boot_meds = [x["init_ms"]["median"] if x and x.get("init_ms") else None for x in init_boot]
    s = over_rounds(boot_meds)
    verdict = ""
    if s:
        verdict = "  aim < %.0f ms: %s" % (INIT_AIM_MS, "met" if s["median"] < INIT_AIM_MS else "NOT met")
    s_boot = row("bootstrap, exec -> first /next", boot_meds, extra=verdict)
    print("  %-44s %s" % ("  (sample range per round)", " ".join(
        "%10s" % ("%.1f-%.1f" % (x["init_ms"]["min"], x["init_ms"]["max"]) if x and x.get("init_ms") else "-")
        for x in init_boot)))
    fails = sum((x or {}).get("failures", 0) for x in init_boot)
    print("  baselines, same rounds:")
    null_meds = [x["init_ms"]["median"] if x and x.get("init_ms") else None for x in init_null]
    s_null = row("null runtime (C), exec -> first /next", null_meds)
    true_meds = [x["stats"]["median"] if x else None for x in spawn_true]
    s_true = row("/bin/true, exec -> exit", true_meds)
    py_meds = [x["stats"]["median"] if x else None for x in spawn_py]
    s_py = row("python3 -c pass, exec -> exit", py_meds)
    bx_meds = [x["stats"]["median"] if x else None for x in spawn_boot]
    s_bx = row("bootstrap, exec -> exit at once (3)", bx_meds)
    if s_boot and s_null:
        row("bootstrap minus null runtime (estimate)",
            [b - n if b is not None and n is not None else None for b, n in zip(boot_meds, null_meds)])
    if s_bx:
        print("  (3) without AWS_LAMBDA_RUNTIME_API bootstrap exits at its first check in main(): loading and")
        print("      relocating its shared libraries, their constructors, log setup, curl_global_init, one")
        print("      log line; measured as /bin/true is")
    null_fails = sum((x or {}).get("failures", 0) for x in init_null)
    for what, n in (("bootstrap", fails), ("null runtime", null_fails)):
        if n:
            print("  WARNING: %d %s starts of %d failed their init (the emulator's log: init-*.log with "
                  "KEEP_TMP=1)" % (n, what, runs * int(E["INIT_N"])))
    init_rss = [x["max_rss_kb"]["median"] if x and x.get("max_rss_kb") else None for x in init_boot]
    result["cold_init_ms"] = {"bootstrap": s_boot, "null_runtime": s_null, "bin_true": s_true,
                              "python_pass": s_py, "bootstrap_exec_exit": s_bx, "failures": fails,
                              "null_runtime_failures": null_fails, "aim_ms": INIT_AIM_MS}

    # 2. memory
    print()
    print("== 2. bootstrap memory, MiB (VmHWM = peak RSS; aim < %.0f MiB)" % (RSS_AIM_KB / 1024.0))
    print("  %-44s %s %10s" % ("", hdr_rounds, "median"))

    def mib(x):
        return None if x is None else x / 1024.0

    hwm = [mib(x["memory_kb"]["vmhwm"]) if x and x.get("memory_kb") else None for x in warm]
    s_hwm = over_rounds(hwm)
    aim_mib = RSS_AIM_KB / 1024.0
    s_hwm = row("VmHWM after the warm runs", hwm, f2,
                "  aim < %.0f MiB: %s" % (aim_mib, "met" if s_hwm["max"] < aim_mib else "NOT met") if s_hwm else "")
    rss = [mib(x["memory_kb"]["vmrss"]) if x and x.get("memory_kb") else None for x in warm]
    s_rss = row("VmRSS after the warm runs", rss, f2)
    emu_rss = [mib(x.get("environment_max_rss_kb")) if x else None for x in warm]
    row("max_rss_kb the emulator logged at exit", emu_rss, f2)
    s_irss = row("VmHWM right after init (--bench-init)", [mib(x) for x in init_rss], f2)
    result["memory_mib"] = {"vmhwm_after_warm": s_hwm, "vmrss_after_warm": s_rss, "vmhwm_after_init": s_irss}

    # 3. warm invocations
    print()
    print("== 3. warm invocations, ms (%s requests of each kind per round after %s warm-up, one client, "
          "sequential; cells: median / p90 / p99)" % (E["N"], E["WARMUP"]))
    hdr3 = " ".join("%24s" % ("round %d" % r) for r in rounds)
    print("  %-40s %s %10s" % ("", hdr3, "median"))

    def row3(label, vals, keys=("median", "p90", "p99")):
        cells = []
        for v in vals:
            cells.append("%24s" % (" / ".join(f3(v.get(k)) for k in keys) if v else "-"))
        s = over_rounds([v["median"] if v else None for v in vals])
        tail = "%10s  [%s-%s]" % (f3(s["median"]), f3(s["min"]), f3(s["max"])) if s else ""
        print("  %-40s %s %s" % (label, " ".join(cells), tail))
        return s

    def row1(label, vals, marked=()):
        cells = " ".join("%24s" % (f3(v) + ("*" if i in marked else "")) for i, v in enumerate(vals))
        s = over_rounds(vals)
        tail = "%10s  [%s-%s]" % (f3(s["median"]), f3(s["min"]), f3(s["max"])) if s else ""
        print("  %-40s %s %s" % (label, cells, tail))
        return s

    null_inv = [x["null"]["invocation_ms"] if x and x.get("null") else None for x in warm_null]
    null_inv_med = [v["median"] if v else None for v in null_inv]
    warm_res = {}
    negative = []  # the estimates that came out negative, shown as 0
    for key, title, op in (("get", "GET /tasks/{id}", "GetItem, consistent"),
                           ("post", "POST /tasks", "PutItem, conditional")):
        print("  %s" % title)
        part = [x[key] if x and x.get(key) else None for x in warm]
        s_inv = row3("invocation duration_ms (emulator)", [p["invocation_ms"] if p else None for p in part])
        s_cli = row3("client latency (through the front)", [p["client_ms"] if p else None for p in part])
        s_ddb = row3("DynamoDB alone (%s)" % op, [p["ddb_ms"] if p else None for p in part])
        raw_own = [p["invocation_ms"]["median"] - p["ddb_ms"]["median"] if p else None for p in part]
        raw_own2 = [o - n if o is not None and n is not None else None for o, n in zip(raw_own, null_inv_med)]
        own, was = not_below_zero(raw_own)
        s_own = row1("bootstrap's own share, ESTIMATE (1)", own, was)
        own2, was2 = not_below_zero(raw_own2)
        s_own2 = row1("  minus null runtime invocation (2)", own2, was2)
        for what, w in (("(1)", was), ("(2)", was2)):
            negative += ["%s %s, round %d: %.3f ms" % (title, what, rounds[i], v) for i, v in w.items()]
        bad = sum(p["bad_status"] for p in part if p)
        warm_res[key] = {"invocation_ms": s_inv, "client_ms": s_cli, "ddb_ms": s_ddb,
                         "own_share_ms_estimate": s_own, "own_share_minus_null_ms_estimate": s_own2,
                         "own_share_negative_rounds": sorted(rounds[i] for i in was),
                         "own_share_minus_null_negative_rounds": sorted(rounds[i] for i in was2),
                         "bad_status": bad}
    print("  baseline: null runtime (C, fixed 200 answer, no DynamoDB), same emulator")
    s_ninv = row3("invocation duration_ms (emulator)", null_inv)
    s_ncli = row3("client latency (through the front)",
                  [x["null"]["client_ms"] if x and x.get("null") else None for x in warm_null])
    warm_res["null_runtime"] = {"invocation_ms": s_ninv, "client_ms": s_ncli}
    result["warm"] = warm_res
    print("  (1) median invocation duration minus median DynamoDB time of the same round. The")
    print("      DynamoDB time is measured from a Python client (keep-alive, signed in advance), not from")
    print("      inside bootstrap, so this is an estimate; it still holds the emulator's own hand-off.")
    print("  (2) (1) minus the null runtime's median invocation: the emulator's hand-off removed as well.")
    if negative:
        print("  * came out negative, shown as 0: a median subtracted was the larger in that round (each is a")
        print("    median of its own, and a loaded machine moves them apart), so the share is under what the")
        print("    figures can tell:")
        for line in negative:
            print("      " + line)

    # problems
    problems = sum((x or {}).get("problem_count", 0) for x in warm + warm_null)
    starts = [(x or {}).get("environment_starts") for x in warm + warm_null]
    print()
    print("emulator/function ERROR or WARN log lines during the warm runs: %d; environment starts per warm "
          "run (bootstrap, null runtime; by round): %s" % (problems, starts))
    for x in warm + warm_null:
        for line in (x or {}).get("problems", [])[:5]:
            print("    " + line[:300])
    result["settings"] = {"runs": runs, "init_n": int(E["INIT_N"]), "n": int(E["N"]), "warmup": int(E["WARMUP"]),
                          "bootstrap": E["B_BOOTSTRAP_REL"], "build_type": E["B_BUILD_TYPE"]}
    result["machine"] = {"nproc": int(E["B_NPROC"]), "kernel": E["B_KERNEL"], "cpu": E["B_CPU"],
                         "loadavg_at_start": E["B_LOADAVG"], "loadavg_at_end": E.get("B_LOADAVG_END")}
    result["log_problems"] = problems
    checks = []
    for kind, rounds_of in (("bootstrap", init_boot), ("null runtime", init_null)):
        for r, x in zip(rounds, rounds_of):
            if x is None:
                checks.append("round %d, %s: no cold init result" % (r, kind))
            elif x.get("failures"):
                checks.append("round %d, %s: %d of %d starts failed their init" % (r, kind, x["failures"], x["runs"]))
    for kind, rounds_of in (("bootstrap", warm), ("null runtime", warm_null)):
        for r, x in zip(rounds, rounds_of):
            if x is None:
                checks.append("round %d, %s: no warm result" % (r, kind))
            checks += ["round %d, %s: %s" % (r, kind, c) for c in x.get("checks", [])] if x else []
    for c in checks:
        print("CHECK FAILED: " + c)
    result["checks_failed"] = checks
    print("RESULT " + json.dumps(rounded(result), separators=(",", ":")))
    if checks:
        sys.exit("bench/lambda.sh: %d check%s failed: the figures above do not stand" % (
            len(checks), "" if len(checks) == 1 else "s"))


# ---- main -------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("spawn")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--any-status", action="store_true", help="a non-zero exit status is no error (a death by a signal still is)")
    s.add_argument("argv", nargs="+")
    s = sub.add_parser("ddb")
    s.add_argument("--info", required=True)
    s.add_argument("--table", required=True)
    s = sub.add_parser("warm")
    s.add_argument("--kind", choices=("bootstrap", "null"), required=True)
    s.add_argument("--emulator", default=EMULATOR)
    s.add_argument("--bootstrap", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--warmup", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--pidfile", required=True)
    s.add_argument("--endpoint")
    s.add_argument("--table")
    s = sub.add_parser("report")
    s.add_argument("--dir", required=True)
    a = p.parse_args()
    try:
        {"spawn": cmd_spawn, "ddb": cmd_ddb, "warm": cmd_warm, "report": cmd_report}[a.cmd](a)
    except Stop:
        sys.exit(143)


if __name__ == "__main__":
    main()
