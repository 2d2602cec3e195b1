#!/usr/bin/env python3
"""A local AWS Lambda + API Gateway stand-in for a custom-runtime ``bootstrap`` (standard library only).

    python3 tests/lambda/emulator.py --bootstrap build/bootstrap --handler api \\
        [--concurrency N] [--timeout SECONDS] [--payload 1.0|2.0] [--listen 127.0.0.1:0] \\
        [--env KEY=VALUE ...]
    python3 tests/lambda/emulator.py --bootstrap build/bootstrap --handler api --bench-init N

Execution environments
    Each of the N environments is one ``bootstrap`` process with a Runtime API server of its own
    (``AWS_LAMBDA_RUNTIME_API``) and the documented Lambda environment variables; nothing of this
    process's environment is passed on but PATH, HOME, LANG and the sanitizer options. One
    invocation at a time per environment. Deadlines are real: past ``Lambda-Runtime-Deadline-Ms``
    the process is killed (SIGKILL) and a fresh environment started; a process that exits is
    restarted; after ``/runtime/init/error`` (or an exit before the first ``/next``) the
    environment is failed and is initialised again by the next invocation it is given.

Front (API Gateway)
    An HTTP/1.1 server on --listen turns every request into a proxy event (REST API payload 1.0,
    or HTTP API payload 2.0 with --payload 2.0), hands it to the first free environment (requests
    wait in FIFO order) and turns the function's answer back into the HTTP response. Answers of
    its own, as API Gateway gives them: 502 ``{"message": "Internal server error"}`` for a function
    error, a crash or a malformed response; 504 ``{"message": "Endpoint request timed out"}`` past
    the function timeout or the gateway's 29 s; 413 ``{"message": "Request Entity Too Large"}``
    for a body over 10 MB (the function is not invoked).

Logs (JSON lines on stderr)
    ``{"message": "listening", "address": "127.0.0.1:PORT"}`` once every environment has made its
    first ``/next`` (or failed its init); ``init`` per environment start (``init_ms``: exec to the
    first ``/next``); ``invocation`` per invocation (``request_id``, ``duration_ms``, ``status``);
    ``environment`` per environment at exit (``max_rss_kb``: VmHWM of its process). The
    bootstraps' stdout and stderr lines are copied to stderr unchanged.

SIGTERM / SIGINT: stop accepting, SIGTERM to the bootstraps, SIGKILL after 2 s, exit 0.

--bench-init N starts and stops one environment N times (no front) and prints JSON statistics of
``init_ms`` (and of the peak RSS) on stdout.
"""

import argparse
import base64
import binascii
import collections
import http.server
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import parse_qsl, unquote

RUNTIME_PREFIX = "/2018-06-01/runtime"
ACCOUNT_ID = "000000000000"
API_ID = "emul4t0r01"
STAGE = "dev"
MAX_REQUEST_BODY = 10 * 1024 * 1024        # API Gateway REST API payload limit
MAX_FUNCTION_RESPONSE = 6 * 1024 * 1024    # Lambda synchronous response limit
GATEWAY_TIMEOUT = 29.0                     # API Gateway integration timeout
STOP_GRACE = 2.0                           # SIGTERM -> SIGKILL on shutdown
INHERITED_ENV = ("PATH", "HOME", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
# Headers of a function response that describe the framing: the front sets its own.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
              "upgrade", "proxy-authenticate", "proxy-authorization"}
TRACE_ROOT_RE = re.compile(r"(?:^|;)\s*Root=(1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24})\s*(?:;|$)")
TRACE_SAMPLED_RE = re.compile(r"(?:^|;)\s*Sampled=([01?])\s*(?:;|$)")

# ---------------------------------------------------------------------------------------------
# logging

_out_lock = threading.Lock()


def log(level, message, **fields):
    obj = {"level": level, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
           + ".%03dZ" % (int(time.time() * 1000) % 1000), "message": message, "service": "emulator"}
    obj.update(fields)
    write_stderr_line(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def write_stderr_line(raw):
    with _out_lock:
        try:
            sys.stderr.buffer.write(raw.rstrip(b"\r\n") + b"\n")
            sys.stderr.buffer.flush()
        except (OSError, ValueError):
            pass


def forward_lines(stream):
    """Copy a child's output to our stderr, line by line, unchanged."""
    try:
        for raw in iter(stream.readline, b""):
            write_stderr_line(raw)
    except (OSError, ValueError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def now_ms():
    return int(time.time() * 1000)


def new_trace_id(root=None, sampled="1"):
    if root is None:
        root = "1-%08x-%s" % (int(time.time()), secrets.token_hex(12))
    return "Root=%s;Parent=%s;Sampled=%s" % (root, secrets.token_hex(8), sampled)


def trace_from_header(value):
    """The trace id for an invocation; keeps the Root (and Sampled) of a client's X-Amzn-Trace-Id."""
    root = sampled = None
    if value:
        m = TRACE_ROOT_RE.search(value)
        root = m.group(1).lower() if m else None
        m = TRACE_SAMPLED_RE.search(value)
        sampled = m.group(1) if m and m.group(1) in "01" else None
    return new_trace_id(root, sampled or "1")


def peak_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _set_pdeathsig():
    """In the child: die with the thread that started it (the emulator), even on SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


# ---------------------------------------------------------------------------------------------
# invocations and the queue in front of the environments

class Invocation:
    def __init__(self, event, trace_id, api_request_id):
        self.request_id = str(uuid.uuid4())
        self.api_request_id = api_request_id
        self.event = event                    # bytes
        self.trace_id = trace_id
        self.created = time.monotonic()
        self.started = None                   # monotonic, when handed to a runtime
        self.delivered = False                # the runtime's /next got it
        self.deadline_ms = None
        self.abandoned = False                # the client got its answer already (gateway timeout)
        self.done = threading.Event()
        self.result = None                    # (status, [(name, value)], body bytes)
        self._lock = threading.Lock()

    def finish(self, status, headers, body):
        with self._lock:
            if self.result is not None:
                return False
            self.result = (status, headers, body)
        self.done.set()
        return True


class Pool:
    """FIFO of invocations waiting for a free environment."""

    def __init__(self):
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.closed = False

    def put(self, inv, front=False):
        with self.cond:
            if self.closed:
                return False
            if front:
                self.queue.appendleft(inv)
            else:
                self.queue.append(inv)
            self.cond.notify_all()
            return True

    def take(self, timeout):
        """The oldest waiting invocation, or None after timeout (or when closed)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                while self.queue:
                    inv = self.queue.popleft()
                    if not inv.abandoned:
                        return inv
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self.cond.wait(left)

    def cancel(self, inv):
        with self.cond:
            try:
                self.queue.remove(inv)
                return True
            except ValueError:
                return False

    def close(self):
        with self.cond:
            self.closed = True
            left = list(self.queue)
            self.queue.clear()
            self.cond.notify_all()
        return left


def gateway_error(status, message, error_type):
    body = json.dumps({"message": message}).encode()
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)], body


def internal_error():
    return gateway_error(502, "Internal server error", "InternalServerErrorException")


# ---------------------------------------------------------------------------------------------
# one execution environment: a bootstrap process and its Runtime API server

class RuntimeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LambdaRuntimeEmulator"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return read_chunked(self.rfile, MAX_FUNCTION_RESPONSE * 2)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _reply(self, status, obj=None, headers=()):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        sandbox = self.server.sandbox
        if self.path.split("?")[0] != RUNTIME_PREFIX + "/invocation/next":
            return self._reply(404, {"errorType": "InvalidPath", "errorMessage": "no route " + self.path})
        inv = sandbox.wait_for_invocation()
        if inv is None:  # the environment is going away: drop the connection, as a frozen one would
            self.close_connection = True
            return
        body = inv.event
        sandbox.delivered(inv)  # from here on a crash fails the invocation instead of requeueing it
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", inv.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", sandbox.config.function_arn)
            self.send_header("Lambda-Runtime-Trace-Id", inv.trace_id)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            sandbox.delivery_failed(inv)
            raise

    def do_POST(self):
        sandbox = self.server.sandbox
        path = self.path.split("?")[0]
        try:
            body = self._read_body()
        except ValueError:
            return self._reply(400, {"errorType": "InvalidRequest", "errorMessage": "bad body framing"})
        if path == RUNTIME_PREFIX + "/init/error":
            sandbox.init_error(self.headers.get("Lambda-Runtime-Function-Error-Type"), body)
            return self._reply(202, {"status": "OK"})
        m = re.fullmatch(re.escape(RUNTIME_PREFIX) + r"/invocation/([^/]+)/(response|error)", path)
        if not m:
            return self._reply(404, {"errorType": "InvalidPath", "errorMessage": "no route " + path})
        rid, kind = m.group(1), m.group(2)
        if kind == "response" and len(body) > MAX_FUNCTION_RESPONSE:
            sandbox.post_result(rid, "error", b'{"errorType":"Function.ResponseSizeTooLarge",'
                                b'"errorMessage":"Response payload size exceeded maximum allowed payload size"}',
                                "Function.ResponseSizeTooLarge")
            return self._reply(413, {"errorType": "RequestEntityTooLarge",
                                     "errorMessage": "response payload over %d bytes" % MAX_FUNCTION_RESPONSE})
        ok = sandbox.post_result(rid, kind, body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
        if not ok:
            return self._reply(400, {"errorType": "InvalidRequestID",
                                     "errorMessage": "Invalid request ID: %s" % rid})
        return self._reply(202, {"status": "OK"})


class RuntimeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class Sandbox:
    """One bootstrap process (one generation of an environment slot)."""

    def __init__(self, config, slot, generation):
        self.config = config
        self.slot = slot
        self.generation = generation
        self.cond = threading.Condition()
        self.next_waiting = 0          # /next requests waiting for an event
        self.assigned = None           # invocation handed out, not yet taken by a /next
        self.current = None            # invocation in flight
        self.outcome = None            # ("response"|"error", body, error type) for current
        self.first_next = None         # monotonic time of the first /next
        self.init_failure = None       # (errorType, errorMessage)
        self.exited = False
        self.closed = False
        self.proc = None
        self.started = None
        self.server = RuntimeServer(("127.0.0.1", 0), RuntimeHandler)
        self.server.sandbox = self
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self._server_thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                               name="runtime-%d" % slot, daemon=True)
        self._server_thread.start()

    # -- the process -------------------------------------------------------------------------
    def environment(self):
        c = self.config
        env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        task_root = os.path.dirname(os.path.abspath(c.bootstrap))
        env.update({
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "_HANDLER": c.handler,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": task_root,
            "AWS_REGION": c.region,
            "AWS_DEFAULT_REGION": c.region,
            "AWS_ACCESS_KEY_ID": "ASIAEMULATOREXAMPLE1",
            "AWS_SECRET_ACCESS_KEY": "emulatorSecretAccessKeyExample000000000",
            "AWS_SESSION_TOKEN": "emulator-session-token-" + secrets.token_hex(16),
            "AWS_LAMBDA_FUNCTION_NAME": c.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(c.memory),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + c.function_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + secrets.token_hex(16),
            "TZ": ":UTC",
            "LD_LIBRARY_PATH": ":".join(p for p in (os.path.join(task_root, "lib"), task_root,
                                                    os.environ.get("LD_LIBRARY_PATH", "")) if p),
        })
        env.update(c.env)
        return env

    def start(self):
        self.started = time.monotonic()
        self.proc = subprocess.Popen([os.path.abspath(self.config.bootstrap)], env=self.environment(),
                                     cwd=os.path.dirname(os.path.abspath(self.config.bootstrap)),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=_set_pdeathsig)
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=forward_lines, args=(stream,), daemon=True).start()
        threading.Thread(target=self._wait_exit, daemon=True).start()

    def _wait_exit(self):
        self.proc.wait()
        with self.cond:
            self.exited = True
            self.cond.notify_all()

    def wait_ready(self, timeout):
        """Wait for the first /next. True when ready; False on init error, exit or timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.first_next is None and self.init_failure is None and not self.exited:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.init_failure = ("Runtime.InitTimeout", "no /next within %.1f s" % timeout)
                    break
                self.cond.wait(left)
            return self.first_next is not None and self.init_failure is None and not self.exited

    @property
    def init_ms(self):
        if self.first_next is None:
            return None
        return round((self.first_next - self.started) * 1000, 3)

    def peak_rss(self):
        return peak_rss_kb(self.proc.pid) if self.proc and self.proc.poll() is None else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        if self.proc:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.close()

    def terminate(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass

    def close(self):
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.cond.notify_all()
        threading.Thread(target=self._close_server, daemon=True).start()

    def _close_server(self):
        self.server.shutdown()
        self.server.server_close()

    # -- called by the Runtime API handlers ----------------------------------------------------
    def wait_for_invocation(self):
        with self.cond:
            if self.first_next is None:
                self.first_next = time.monotonic()
            self.next_waiting += 1
            self.cond.notify_all()
            try:
                while self.assigned is None and not self.closed and not self.exited:
                    self.cond.wait()
                if self.assigned is None:
                    return None
                inv, self.assigned = self.assigned, None
                return inv
            finally:
                self.next_waiting -= 1

    def delivered(self, inv):
        with self.cond:
            inv.delivered = True
            self.cond.notify_all()

    def delivery_failed(self, inv):
        with self.cond:
            if self.current is inv:
                inv.delivered = False
                self.assigned = inv  # another /next may still take it
            self.cond.notify_all()

    def post_result(self, rid, kind, body, error_type):
        with self.cond:
            if self.current is None or self.current.request_id != rid or self.outcome is not None:
                return False
            self.outcome = (kind, body, error_type)
            self.cond.notify_all()
            return True

    def init_error(self, error_type, body):
        err = parse_error_body(body)
        with self.cond:
            self.init_failure = (error_type or err.get("errorType") or "Runtime.Unknown",
                                 err.get("errorMessage", ""))
            self.cond.notify_all()

    # -- called by the slot's runner -----------------------------------------------------------
    def wait_free(self, stop):
        """Wait until a /next is waiting. Returns "free", "exited" or "stop"."""
        with self.cond:
            while True:
                if self.exited or self.init_failure is not None:
                    return "exited"
                if stop.is_set() or self.closed:
                    return "stop"
                if self.next_waiting > 0 and self.assigned is None and self.current is None:
                    return "free"
                self.cond.wait(0.25)

    def invoke(self, inv):
        """Run one invocation. Returns "response"/"error" (with self.outcome set), "timeout",
        "exited" (after delivery), "undelivered" (the process went away before taking it)."""
        with self.cond:
            inv.started = time.monotonic()
            inv.deadline_ms = now_ms() + int(self.config.timeout * 1000)
            deadline = inv.started + self.config.timeout
            self.current, self.assigned, self.outcome = inv, inv, None
            self.cond.notify_all()
            while True:
                if self.outcome is not None:
                    return self.outcome[0]
                if self.exited or self.closed:
                    if not inv.delivered:
                        self.assigned = None
                        return "undelivered"
                    return "exited"
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                self.cond.wait(left)

    def clear(self):
        with self.cond:
            self.current = self.assigned = self.outcome = None


def parse_error_body(body):
    try:
        obj = json.loads(body.decode("utf-8")) if body else {}
    except (ValueError, UnicodeDecodeError):
        obj = {}
    if not isinstance(obj, dict):
        obj = {}
    return {k: obj[k] for k in ("errorType", "errorMessage") if isinstance(obj.get(k), str)}


class Slot:
    """One execution environment, restarted as Lambda would after a crash or a timeout."""

    def __init__(self, config, index, pool, stop):
        self.config = config
        self.index = index
        self.pool = pool
        self.stop = stop
        self.generation = 0
        self.sandbox = None
        self.settled = threading.Event()       # the first init ended (ready or failed)
        self.max_rss_kb = None
        self.lock = threading.Lock()
        # The processes die with the thread that started them (PR_SET_PDEATHSIG): the runner
        # thread stays until the shutdown has given them their SIGTERM and grace.
        self.released = threading.Event()
        self.thread = threading.Thread(target=self.run_and_wait, name="env-%d" % index, daemon=True)

    def run_and_wait(self):
        try:
            self.run()
        finally:
            self.released.wait()

    def note_rss(self, sandbox):
        rss = sandbox.peak_rss() if sandbox else None
        if rss is not None:
            with self.lock:
                self.max_rss_kb = max(self.max_rss_kb or 0, rss)

    def spawn(self):
        """Start a fresh environment and wait for its first /next. Returns the sandbox (healthy or not)."""
        self.generation += 1
        sb = Sandbox(self.config, self.index, self.generation)
        with self.lock:
            self.sandbox = sb
        if self.stop.is_set():
            sb.close()
            return sb
        try:
            sb.start()
        except OSError as e:
            sb.init_failure = ("Runtime.InvalidEntrypoint", str(e))
            log("ERROR", "init failed", env=self.index, errorType=sb.init_failure[0],
                errorMessage=sb.init_failure[1])
            sb.close()
            return sb
        if sb.wait_ready(self.config.init_timeout):
            log("INFO", "init", env=self.index, init_ms=sb.init_ms, pid=sb.proc.pid)
        else:
            if sb.init_failure is None:
                sb.init_failure = ("Runtime.ExitError", "exited with status %s before its first /next"
                                   % sb.proc.poll())
            log("ERROR", "init failed", env=self.index, errorType=sb.init_failure[0],
                errorMessage=sb.init_failure[1], exit_status=sb.proc.poll())
            self.note_rss(sb)
            sb.kill()
        return sb

    def healthy(self, sb):
        return sb is not None and sb.first_next is not None and sb.init_failure is None \
            and not sb.exited and not sb.closed

    def run(self):
        sb = None
        try:
            sb = self.spawn()
        finally:
            self.settled.set()
        while not self.stop.is_set():
            if not self.healthy(sb):
                # A failed environment is initialised again by the next invocation it gets.
                inv = self.pool.take(0.25)
                if inv is None:
                    continue
                if sb is not None:
                    sb.kill()
                sb = self.spawn()
                if not self.healthy(sb):
                    self.complete(inv, "init", internal_error())
                    continue
            else:
                state = sb.wait_free(self.stop)
                if state == "stop":
                    break
                if state == "exited":
                    if sb.init_failure is None:
                        log("ERROR", "environment exited", env=self.index, exit_status=sb.proc.poll())
                    else:
                        log("ERROR", "environment failed", env=self.index, errorType=sb.init_failure[0],
                            errorMessage=sb.init_failure[1])
                    sb.kill()
                    sb = self.spawn() if not self.stop.is_set() else sb
                    continue
                inv = self.pool.take(0.25)
                if inv is None:
                    continue
            outcome = sb.invoke(inv)
            if outcome == "undelivered":
                self.pool.put(inv, front=True)
                sb.clear()
                continue
            if outcome == "response":
                self.complete(inv, "response", convert_response(sb.outcome[1], self.config.payload, inv))
            elif outcome == "error":
                err = parse_error_body(sb.outcome[1])
                log("ERROR", "function error", env=self.index, request_id=inv.request_id,
                    errorType=sb.outcome[2] or err.get("errorType"), errorMessage=err.get("errorMessage"))
                self.complete(inv, "error", internal_error())
            elif outcome == "timeout":
                self.note_rss(sb)
                sb.kill()
                log("ERROR", "invocation timed out", env=self.index, request_id=inv.request_id,
                    timeout_s=self.config.timeout)
                self.complete(inv, "timeout", gateway_error(504, "Endpoint request timed out",
                                                            "IntegrationTimeout"))
                sb = self.spawn() if not self.stop.is_set() else sb
                continue
            else:  # exited while running the invocation
                log("ERROR", "environment exited during an invocation", env=self.index,
                    request_id=inv.request_id, exit_status=sb.proc.poll())
                self.complete(inv, "crash", internal_error())
                sb.kill()
                sb = self.spawn() if not self.stop.is_set() else sb
                continue
            sb.clear()

    def complete(self, inv, outcome, result):
        status = result[0]
        started = inv.started if inv.started is not None else time.monotonic()
        answered = inv.finish(*result)
        fields = {} if answered else {"answered": "gateway timeout"}
        log("INFO", "invocation", env=self.index, request_id=inv.request_id,
            duration_ms=round((time.monotonic() - started) * 1000, 3), status=status, outcome=outcome,
            queued_ms=round((started - inv.created) * 1000, 3), **fields)


# ---------------------------------------------------------------------------------------------
# API Gateway: request -> event, function response -> HTTP response

def read_chunked(rfile, limit):
    """Read a chunked body; ValueError on bad framing, OverflowError past limit."""
    out = bytearray()
    while True:
        line = rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise ValueError("bad chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ValueError("bad chunk size")
        if size < 0:
            raise ValueError("bad chunk size")
        if size == 0:
            while True:  # trailers
                t = rfile.readline(65537)
                if t in (b"\r\n", b"\n", b""):
                    return bytes(out)
        if len(out) + size > limit:
            raise OverflowError()
        data = rfile.read(size)
        if len(data) != size:
            raise ValueError("truncated chunk")
        out += data
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise ValueError("missing chunk terminator")


def split_query(raw):
    """parse_qsl that keeps blank values and decodes as API Gateway does."""
    return parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="replace")


def encode_body(body):
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def build_event_v1(req, body, trace_id, request_id, config):
    raw_path, _, raw_query = req.path.partition("?")
    path = unquote(raw_path, errors="replace")
    headers, multi_headers = {}, {}
    for name, value in req.headers.items():
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    set_trace_header(headers, multi_headers, trace_id, req.client_address[0], req.server.server_address[1])
    query = split_query(raw_query) if raw_query else []
    qs, mqs = None, None
    if query:
        qs, mqs = {}, {}
        for k, v in query:
            qs[k] = v
            mqs.setdefault(k, []).append(v)
    text, b64 = encode_body(body)
    proxy = path.lstrip("/")
    now = time.time()
    ctx = {
        "accountId": ACCOUNT_ID, "apiId": API_ID, "resourceId": "proxy0",
        "resourcePath": "/{proxy+}" if proxy else "/", "path": "/" + STAGE + path,
        "httpMethod": req.command, "stage": STAGE, "requestId": request_id,
        "extendedRequestId": secrets.token_urlsafe(12),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000), "protocol": req.request_version,
        "domainName": "%s.execute-api.%s.amazonaws.com" % (API_ID, config.region), "domainPrefix": API_ID,
        "identity": {"sourceIp": req.client_address[0], "userAgent": req.headers.get("User-Agent"),
                     "accessKey": None, "accountId": None, "caller": None, "user": None, "userArn": None,
                     "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
                     "cognitoAuthenticationProvider": None, "cognitoAuthenticationType": None},
        "authorizer": None,
    }
    event = {
        "resource": "/{proxy+}" if proxy else "/", "path": path, "httpMethod": req.command,
        "headers": headers, "multiValueHeaders": multi_headers,
        "queryStringParameters": qs, "multiValueQueryStringParameters": mqs,
        "pathParameters": {"proxy": proxy} if proxy else None, "stageVariables": None,
        "requestContext": ctx, "body": text, "isBase64Encoded": b64,
    }
    return event


def build_event_v2(req, body, trace_id, request_id, config):
    raw_path, _, raw_query = req.path.partition("?")
    headers, cookies = {}, []
    for name, value in req.headers.items():
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lname] = headers[lname] + "," + value if lname in headers else value
    headers["x-amzn-trace-id"] = trace_id
    headers.setdefault("x-forwarded-for", req.client_address[0])
    headers.setdefault("x-forwarded-port", str(req.server.server_address[1]))
    headers.setdefault("x-forwarded-proto", "http")
    text, b64 = encode_body(body)
    now = time.time()
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID, "apiId": API_ID,
            "domainName": "%s.execute-api.%s.amazonaws.com" % (API_ID, config.region), "domainPrefix": API_ID,
            "http": {"method": req.command, "path": unquote(raw_path, errors="replace"),
                     "protocol": req.request_version, "sourceIp": req.client_address[0],
                     "userAgent": req.headers.get("User-Agent", "")},
            "requestId": request_id, "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": b64,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        qs = {}
        for k, v in split_query(raw_query):
            qs[k] = qs[k] + "," + v if k in qs else v
        event["queryStringParameters"] = qs
    if text is not None:
        event["body"] = text
    return event


def set_trace_header(headers, multi_headers, trace_id, client_ip, port):
    """API Gateway's X-Amzn-Trace-Id and X-Forwarded-* request headers."""
    name = next((k for k in headers if k.lower() == "x-amzn-trace-id"), "X-Amzn-Trace-Id")
    headers[name] = trace_id
    multi_headers[name] = [trace_id]
    for hname, value in (("X-Forwarded-For", client_ip), ("X-Forwarded-Port", str(port)),
                         ("X-Forwarded-Proto", "http")):
        if not any(k.lower() == hname.lower() for k in headers):
            headers[hname] = value
            multi_headers[hname] = [value]


class MalformedResponse(Exception):
    pass


def _header_value(v):
    if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
        raise MalformedResponse("header value %r is not a string or number" % (v,))
    return v if isinstance(v, str) else json.dumps(v)


def convert_response(raw, payload, inv):
    """The function's /response body -> (status, headers, body) as API Gateway would answer."""
    try:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise MalformedResponse("not JSON")
        if payload == "2.0" and not (isinstance(obj, dict) and "statusCode" in obj):
            # HTTP API infers a response from any JSON value that is not a response object.
            return 200, [("Content-Type", "application/json")], raw
        if not isinstance(obj, dict):
            raise MalformedResponse("not a JSON object")
        allowed = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
        if payload == "2.0":
            allowed = {"statusCode", "headers", "body", "isBase64Encoded", "cookies"}
        extra = set(obj) - allowed
        if extra:
            raise MalformedResponse("unknown keys %s" % sorted(extra))
        status = obj.get("statusCode")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise MalformedResponse("statusCode %r" % (status,))
        merged = collections.OrderedDict()
        hdrs = obj.get("headers")
        if hdrs is not None:
            if not isinstance(hdrs, dict):
                raise MalformedResponse("headers is not an object")
            for k, v in hdrs.items():
                merged[k.lower()] = (k, [_header_value(v)])
        mv = obj.get("multiValueHeaders") if payload == "1.0" else None
        if mv is not None:
            if not isinstance(mv, dict):
                raise MalformedResponse("multiValueHeaders is not an object")
            for k, vs in mv.items():
                if not isinstance(vs, list):
                    raise MalformedResponse("multiValueHeaders[%r] is not a list" % k)
                merged[k.lower()] = (k, [_header_value(v) for v in vs])
        cookies = obj.get("cookies") if payload == "2.0" else None
        if cookies is not None:
            if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
                raise MalformedResponse("cookies is not a list of strings")
            merged.setdefault("set-cookie", ("Set-Cookie", []))[1].extend(cookies)
        body = obj.get("body")
        b64 = obj.get("isBase64Encoded", False)
        if not isinstance(b64, bool):
            raise MalformedResponse("isBase64Encoded is not a boolean")
        if body is None:
            data = b""
        elif isinstance(body, str):
            if b64:
                try:
                    data = base64.b64decode(body, validate=True)
                except (binascii.Error, ValueError):
                    raise MalformedResponse("body is not valid base64")
            else:
                data = body.encode("utf-8", "replace")
        else:
            raise MalformedResponse("body is not a string")
        for name, vs in merged.values():
            if not name or any(c in name for c in "\r\n: ") or any(c in v for v in vs for c in "\r\n"):
                raise MalformedResponse("header %r cannot be sent" % name)
        headers = [(name, v) for lname, (name, vs) in merged.items() if lname not in HOP_BY_HOP for v in vs]
        if "content-type" not in merged and data:
            headers.append(("Content-Type", "application/json"))
        headers.append(("x-amzn-RequestId", inv.api_request_id))
        return status, headers, data
    except MalformedResponse as e:
        log("ERROR", "malformed function response", request_id=inv.request_id, reason=str(e))
        return internal_error()


class FrontHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ApiGatewayEmulator"
    disable_nagle_algorithm = True
    error_content_type = "application/json"
    error_message_format = '{"message": "%(message)s"}'

    def log_message(self, fmt, *args):  # quiet
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def _content_length(self):
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        vals = {v.strip() for v in values}
        if len(vals) != 1 or not next(iter(vals)).isdigit():
            raise ValueError("bad Content-Length")
        return int(vals.pop())

    def send_json(self, result, head=False):
        status, headers, body = result
        try:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            no_body = status < 200 or status in (204, 304)
            if not no_body:
                self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if body and not head and not no_body:
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def refuse(self, result):
        """Answer and close, reading what the client still sends for a moment so that closing
        with unread data (a TCP reset) does not destroy the answer before the client reads it."""
        self.close_connection = True
        self.send_json(result)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            end = time.monotonic() + 2.0
            while time.monotonic() < end and self.connection.recv(1 << 16):
                pass
        except OSError:
            pass

    def handle_expect_100(self):
        try:
            n = self._content_length()
        except ValueError:
            n = None
        if n is not None and n > MAX_REQUEST_BODY:
            self.refuse(gateway_error(413, "Request Entity Too Large", "RequestEntityTooLarge"))
            return False
        return super().handle_expect_100()

    def handle_any(self):
        config = self.server.config
        if self.server.stopping.is_set():
            return self.refuse(gateway_error(503, "Service Unavailable", "ServiceUnavailable"))
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = read_chunked(self.rfile, MAX_REQUEST_BODY)
            else:
                n = self._content_length()
                if n is not None and n > MAX_REQUEST_BODY:
                    return self.refuse(gateway_error(413, "Request Entity Too Large", "RequestEntityTooLarge"))
                body = self.rfile.read(n) if n else b""
                if n and len(body) != n:
                    self.close_connection = True
                    return
        except OverflowError:
            return self.refuse(gateway_error(413, "Request Entity Too Large", "RequestEntityTooLarge"))
        except ValueError:
            return self.refuse(gateway_error(400, "Bad Request", "BadRequestException"))
        trace_id = trace_from_header(self.headers.get("X-Amzn-Trace-Id"))
        request_id = str(uuid.uuid4())
        build = build_event_v2 if config.payload == "2.0" else build_event_v1
        event = json.dumps(build(self, body, trace_id, request_id, config), ensure_ascii=False,
                           separators=(",", ":")).encode("utf-8", "replace")
        inv = Invocation(event, trace_id, request_id)
        if not self.server.pool.put(inv):
            return self.refuse(gateway_error(503, "Service Unavailable", "ServiceUnavailable"))
        if not inv.done.wait(config.gateway_timeout):
            inv.abandoned = True
            self.server.pool.cancel(inv)
            if inv.finish(*gateway_error(504, "Endpoint request timed out", "IntegrationTimeout")):
                log("ERROR", "gateway timeout", request_id=inv.request_id, timeout_s=config.gateway_timeout)
        status, headers, data = inv.result
        if not any(k.lower() == "x-amzn-trace-id" for k, _ in headers):
            headers = list(headers) + [("X-Amzn-Trace-Id", trace_id)]
        self.send_json((status, headers, data), head=self.command == "HEAD")


class FrontServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128


# ---------------------------------------------------------------------------------------------
# main

class Config:
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(description="Run a Lambda custom-runtime bootstrap behind an API Gateway stand-in.")
    p.add_argument("--bootstrap", required=True, help="the bootstrap executable")
    p.add_argument("--handler", required=True, help="_HANDLER of the function (e.g. api)")
    p.add_argument("--concurrency", type=int, default=1, help="execution environments (default 1)")
    p.add_argument("--timeout", type=float, default=29.0, help="function timeout in seconds (default 29)")
    p.add_argument("--init-timeout", type=float, default=10.0, help="limit of an init, seconds (default 10)")
    p.add_argument("--gateway-timeout", type=float, default=GATEWAY_TIMEOUT,
                   help="API Gateway integration timeout, seconds (default 29)")
    p.add_argument("--payload", choices=("1.0", "2.0"), default="1.0",
                   help="1.0: REST API proxy event (default); 2.0: HTTP API event")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT of the front (default 127.0.0.1:0)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="an environment variable of the function (repeatable)")
    p.add_argument("--region", default="eu-west-1")
    p.add_argument("--function-name", default=None, help="default: taskd-dev-<handler>")
    p.add_argument("--memory", type=int, default=128, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default 128)")
    p.add_argument("--bench-init", type=int, default=0, metavar="N",
                   help="start and stop one environment N times and print init_ms statistics")
    a = p.parse_args(argv)
    c = Config()
    c.bootstrap = a.bootstrap
    c.handler = a.handler
    c.concurrency = max(1, a.concurrency)
    c.timeout = a.timeout
    c.init_timeout = a.init_timeout
    c.gateway_timeout = a.gateway_timeout
    c.payload = a.payload
    c.listen = a.listen
    c.env = {}
    for item in a.env:
        k, sep, v = item.partition("=")
        if not sep or not k:
            p.error("--env wants KEY=VALUE, got %r" % item)
        c.env[k] = v
    c.region = c.env.get("AWS_REGION", a.region)
    c.function_name = c.env.get("AWS_LAMBDA_FUNCTION_NAME", a.function_name or "taskd-dev-" + a.handler)
    c.function_arn = "arn:aws:lambda:%s:%s:function:%s" % (c.region, ACCOUNT_ID, c.function_name)
    c.memory = a.memory
    c.bench_init = a.bench_init
    if not (os.path.isfile(c.bootstrap) and os.access(c.bootstrap, os.X_OK)):
        p.error("bootstrap not found or not executable: %s" % c.bootstrap)
    return c


def summary(values):
    values = sorted(values)
    if not values:
        return None
    return {"min": values[0], "median": statistics.median(values), "mean": round(statistics.fmean(values), 3),
            "p90": values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))], "max": values[-1]}


def bench_init(config):
    inits, rss, failures = [], [], 0
    for i in range(config.bench_init):
        sb = Sandbox(config, 0, i + 1)
        try:
            sb.start()
            if sb.wait_ready(config.init_timeout):
                inits.append(sb.init_ms)
                r = sb.peak_rss()
                if r is not None:
                    rss.append(r)
            else:
                failures += 1
        finally:
            sb.terminate()
            try:
                sb.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
            sb.kill()
    out = {"runs": config.bench_init, "failures": failures, "init_ms": summary(inits),
           "max_rss_kb": summary(rss), "samples_ms": inits}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if failures == 0 else 1


def serve(config):
    stop = threading.Event()
    stopping = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host, _, port = config.listen.rpartition(":")
    try:
        front = FrontServer((host or "127.0.0.1", int(port)), FrontHandler)
    except (OSError, ValueError) as e:
        log("ERROR", "cannot listen", address=config.listen, error=str(e))
        return 1
    pool = Pool()
    front.config, front.pool, front.stopping = config, pool, stopping
    slots = [Slot(config, i, pool, stopping) for i in range(config.concurrency)]
    for s in slots:
        s.thread.start()
    while not all(s.settled.wait(0.05) for s in slots):
        if stop.is_set():
            break
    serving = not stop.is_set()
    if serving:
        threading.Thread(target=front.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        log("INFO", "listening", address="%s:%d" % front.server_address[:2])
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:  # whoever started us is gone (e.g. a killed test run)
            log("WARN", "parent process gone: stopping")
            break

    # Shutdown: stop accepting, give the runtimes their SIGTERM, SIGKILL after the grace.
    stopping.set()
    if serving:
        front.shutdown()
    front.server_close()
    for inv in pool.close():
        inv.finish(*gateway_error(503, "Service Unavailable", "ServiceUnavailable"))
    sandboxes = []
    for s in slots:
        with s.lock:
            sb = s.sandbox
        s.note_rss(sb)
        if sb is not None:
            sandboxes.append(sb)
            sb.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for sb in sandboxes:
        if sb.proc is not None:
            try:
                sb.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        sb.kill()
    for s in slots:
        s.released.set()
    for s in slots:
        s.thread.join(2)
    for s in slots:
        log("INFO", "environment", env=s.index, max_rss_kb=s.max_rss_kb, starts=s.generation)
    return 0


def main(argv=None):
    config = parse_args(sys.argv[1:] if argv is None else argv)
    if config.bench_init > 0:
        return bench_init(config)
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
