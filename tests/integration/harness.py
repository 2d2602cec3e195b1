"""Shared helpers for the taskd integration tests (Python 3 standard library only).

A test starts its own taskd with ``Taskd(...)``: the server listens on
127.0.0.1:0 with a database in a fresh temporary directory, the harness reads
stderr until the JSON log line ``{"message": "listening", "address": ...}``
and then keeps draining stderr in a thread so the pipe never fills.

``TASKD_BIN`` names the binary; without it, ``<repo>/build/taskd``.

Two targets. By default (``TASKD_TARGET`` unset or ``local``) ``Taskd`` runs the taskd binary.
With ``TASKD_TARGET=lambda`` it runs the Lambda build instead: ``tests/lambda/emulator.py`` with
``BOOTSTRAP_BIN`` (default: ``bootstrap`` beside ``TASKD_BIN`` when that exists, else
``<repo>/build/bootstrap``), handler ``api`` and four execution environments, over one DynamoDB
Local per test process (``tests/lambda/dynamodb_local.py``; ``DYNAMODB_ENDPOINT`` names another,
and under CTest it is the run's) with one table per database path. The request helpers, ``stop``, ``stderr_text`` and
``log_objects`` work the same (the emulator's stderr carries the function's log lines);
``function_timeout`` is the function's timeout (LAMBDA_FUNCTION_TIMEOUT unless given).
``local_only(reason)`` marks tests of what only the local server has.
"""

import codecs
import http.client
import http.server
import importlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAMBDA_DIR = os.path.join(REPO, "tests", "lambda")
EMULATOR = os.path.join(LAMBDA_DIR, "emulator.py")
START_TIMEOUT = 10.0
LAMBDA_START_TIMEOUT = 30.0  # four environments' init, under the sanitizers too
LAMBDA_CONCURRENCY = 4
LAMBDA_FUNCTION_TIMEOUT = 10  # seconds; a hung invocation answers 504 before REQUEST_TIMEOUT
# past taskd's default shutdown_grace (10 s): a graceful stop rightly takes that long while a
# handler finishes its run, and a bound equal to it made the stop a race
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 15.0

UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# The 422 vocabulary (pydantic v2's, as FastAPI renders it): type -> the fixed msg, or None when
# the msg follows from the item's ctx (checked in assertValidation).
ERROR_TYPES = {
    "missing": "Field required",
    "json_invalid": "JSON decode error",
    "model_attributes_type": "Input should be a valid dictionary or object to extract fields from",
    "dict_type": "Input should be a valid dictionary",
    "string_type": "Input should be a valid string",
    "int_type": "Input should be a valid integer",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "literal_error": None,
    "greater_than_equal": None,
    "less_than_equal": None,
    "value_error": None,
    "string_too_long": None,
}
LIST_KEYS = {"id", "task_type", "status", "status_msg", "created_time", "updated_time", "ttl"}
STATUSES = ("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED")


def taskd_bin():
    return os.environ.get("TASKD_BIN") or os.path.join(REPO, "build", "taskd")


def require_binary():
    """Fail (not skip) when the binary is missing: a missing build is a failure."""
    path = taskd_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError("taskd binary not found or not executable: %s (set TASKD_BIN)" % path)


# -- targets: the local taskd, or the Lambda build behind the emulator ----------------------------

def target():
    """"local" (the taskd binary) or "lambda" (TASKD_TARGET=lambda)."""
    return "lambda" if os.environ.get("TASKD_TARGET", "local") == "lambda" else "local"


def on_lambda():
    return target() == "lambda"


def local_only(reason):
    """Skip a test (or a whole class) on the lambda target: for what cannot exist there."""
    def decorate(obj):
        return unittest.skip(reason)(obj) if on_lambda() else obj
    return decorate


def bootstrap_bin():
    explicit = os.environ.get("BOOTSTRAP_BIN")
    if explicit:
        return explicit
    if os.environ.get("TASKD_BIN"):
        beside = os.path.join(os.path.dirname(os.environ["TASKD_BIN"]), "bootstrap")
        if os.path.isfile(beside):
            return beside
    return os.path.join(REPO, "build", "bootstrap")


def require_bootstrap():
    path = bootstrap_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError("bootstrap binary not found or not executable: %s (set BOOTSTRAP_BIN)" % path)


_tables = {}  # database path -> DynamoDB table name, so that a restart finds its data again
_tables_lock = threading.Lock()


def lambda_module(name):
    """A module of tests/lambda, by name."""
    if LAMBDA_DIR not in sys.path:
        sys.path.insert(0, LAMBDA_DIR)
    return importlib.import_module(name)


def dies_with_test(then=None):
    """A preexec_fn for a program a test starts: started from the main thread, it dies with the
    test process, even one killed (an interrupted CTest), as PR_SET_PDEATHSIG follows the
    starting thread; then, if given, runs after that in the child."""
    die = threading.current_thread() is threading.main_thread()
    die_with_starter = lambda_module("standin").die_with_starter
    def before_exec():
        if die:
            die_with_starter()
        if then:
            then()
    return before_exec


def dynamodb():
    """The dynamodb_local module (tests/lambda)."""
    return lambda_module("dynamodb_local")


def lambda_table(db_path):
    """(endpoint, table) for a database path: the same path gets the same table."""
    ddb = dynamodb()
    endpoint = ddb.shared_instance().endpoint
    key = os.path.abspath(db_path)
    with _tables_lock:
        name = _tables.get(key)
        if name is None:
            name = "taskd-it-" + uuid.uuid4().hex[:16]
            ddb.create_table(endpoint, name)
            _tables[key] = name
    return endpoint, name


def drop_lambda_table(db_path):
    ddb = dynamodb()
    with _tables_lock:
        name = _tables.pop(os.path.abspath(db_path), None)
    if name:
        try:
            ddb.delete_table(ddb.shared_instance().endpoint, name)
        except (OSError, ddb.DynamoDBError):
            pass


def clean_env(extra=None):
    """The environment for a taskd child: ours without TASKD_* / OTEL_* / AWS_*, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TASKD_", "OTEL_", "AWS_", "TASK1_"))}
    if extra:
        env.update(extra)
    return env


def run_taskd(args, env=None, timeout=15.0):
    """Run taskd to completion (for flags that make it exit). Returns CompletedProcess.

    A process that does not exit in time is killed and the test fails with a
    clear message rather than hanging.
    """
    require_binary()
    try:
        return subprocess.run([taskd_bin()] + list(args), env=clean_env(env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("taskd %r did not exit within %.0f s (stderr: %r)"
                             % (args, timeout, (e.stderr or b"")[-2000:]))


def nonempty_lines(data):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return [line for line in data.splitlines() if line.strip()]


def preload_env(case, variable, library, **env):
    """The environment for a taskd with a test shim preloaded: the shim's path from the
    environment variable (set by CTest), else library beside taskd; the test is skipped when
    neither is there. The shim comes first in the library list, ahead of a sanitizer's runtime,
    which is told not to mind."""
    shim = os.environ.get(variable)
    if not shim:
        shim = os.path.join(os.path.dirname(os.path.abspath(taskd_bin())), library)
        if not os.path.exists(shim):
            case.skipTest("no %s beside taskd (built with the tests)" % library)
    case.assertTrue(os.path.exists(shim), "%s %s missing" % (variable, shim))
    asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if o)
    return dict(env, LD_PRELOAD=shim, ASAN_OPTIONS=asan)


def write_config(directory, obj, name="config.json"):
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f)
    return path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        body = self.body[:500]
        return "<Response %s %r>" % (self.status, body)


class Taskd:
    """One running taskd process."""

    def __init__(self, db=None, config=None, args=(), env=None, tmpdir=None, listen="127.0.0.1:0",
                 use_flags=True, sync=None, nofile=None, function_timeout=LAMBDA_FUNCTION_TIMEOUT):
        self.target = target()
        if self.target == "lambda":
            if args:
                raise unittest.SkipTest("taskd flags: local only")
            if listen != "127.0.0.1:0":
                raise unittest.SkipTest("listen addresses other than 127.0.0.1:0: local only")
            require_bootstrap()
        else:
            require_binary()
        self._own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="taskd-it-")
        self.db = db or os.path.join(self.tmpdir, "tasks.db")
        # On lambda, a table nobody can ask for again (no db, own tmpdir) is dropped at close().
        self._fresh_table = db is None and self._own_tmp
        self.config = config
        self.lines = []  # raw stderr lines (str)
        self.killed_by_timeout = False  # set when stop() had to SIGKILL it
        self._lines_lock = threading.Lock()
        self._listening = threading.Event()
        self._eof = threading.Event()
        self.address = None
        self.table = self.dynamodb_endpoint = None
        self.proc = None
        try:
            self._start(config, args, env, listen, use_flags, sync, nofile, function_timeout)
        except BaseException:
            # whatever stopped the start (the binary gone between the check and the exec, a
            # timeout, an interrupt): nothing of it left running, its directory and table removed
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._cleanup_tmp()
            raise

    def _start(self, config, args, env, listen, use_flags, sync, nofile, function_timeout):
        if self.target == "lambda":
            self.dynamodb_endpoint, self.table = lambda_table(self.db)
            fn_env = {"TABLE_NAME": self.table, "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
                      "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIATASKDTESTKEY0001",
                      "AWS_SECRET_ACCESS_KEY": "taskdTestSecretAccessKey000000000000000",
                      "AWS_SESSION_TOKEN": "taskd-test-session-token"}
            if config:
                fn_env["TASKD_CONFIG"] = config
            fn_env.update(env or {})
            argv = [sys.executable, "-B", EMULATOR, "--bootstrap", bootstrap_bin(), "--handler", "api",
                    "--concurrency", str(LAMBDA_CONCURRENCY), "--timeout", str(function_timeout)]
            for k, v in fn_env.items():
                argv += ["--env", "%s=%s" % (k, v)]
            proc_env = clean_env()
            start_timeout = LAMBDA_START_TIMEOUT
        else:
            argv = [taskd_bin()]
            if use_flags:
                argv += ["--listen", listen, "--db", self.db]
                if config:
                    argv += ["--config", config]
                if sync:
                    argv += ["--sync", sync]
            argv += list(args)
            proc_env = clean_env(env)
            start_timeout = START_TIMEOUT
        self.argv = argv
        def limit_files():  # nofile: taskd's open-file limit (soft) from its start
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        self.proc = subprocess.Popen(argv, env=proc_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=dies_with_test(limit_files if nofile else None))
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + start_timeout
        while not self._listening.is_set():
            if self._eof.is_set() or self.proc.poll() is not None:
                self._eof.wait(2)
                rc = self.proc.wait(5)
                raise RuntimeError("taskd exited (rc=%s) before listening; stderr:\n%s"
                                   % (rc, self.stderr_text()))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(5)
                raise RuntimeError("taskd did not log 'listening' within %.0f s; stderr:\n%s"
                                   % (start_timeout, self.stderr_text()))
            self._listening.wait(0.05)
        host, _, port = self.address.rpartition(":")
        self.host = host
        self.port = int(port)

    # -- stderr ----------------------------------------------------------
    def _drain(self):
        try:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._lines_lock:
                    self.lines.append(line)
                if not self._listening.is_set():
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and obj.get("message") == "listening" \
                            and isinstance(obj.get("address"), str):
                        self.address = obj["address"]
                        self._listening.set()
        finally:
            try:
                self.proc.stderr.close()
            except OSError:
                pass
            self._eof.set()

    def stderr_text(self):
        with self._lines_lock:
            return "\n".join(self.lines)

    def log_objects(self):
        """The stderr lines read so far, as text (see log_json for them parsed)."""
        with self._lines_lock:
            lines = list(self.lines)
        return lines

    def log_json(self):
        """The stderr lines read so far that are JSON objects, parsed."""
        out = []
        for line in self.log_objects():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    # -- life cycle ------------------------------------------------------
    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send sig and wait; returns the exit code. Kills (and raises) on timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.killed_by_timeout = True
                raise AssertionError("taskd did not exit within %.0f s after signal %d, so the "
                                     "harness SIGKILLed it; stderr tail:\n%s"
                                     % (timeout, sig, self.stderr_text()[-3000:]))
        self._eof.wait(5)
        if self.proc.returncode not in (0, -signal.SIGKILL):
            # an unexpected exit status: leave its stderr in the test output
            sys.stderr.write("taskd exited %s; stderr tail:\n%s\n"
                             % (self.proc.returncode, self.stderr_text()[-4000:]))
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._eof.wait(5)
        return self.proc.returncode

    def close(self, remove_tmp=True):
        """Best-effort stop for teardown; returns the exit code (-9 when it did not stop in time:
        then killed_by_timeout is set)."""
        rc = None
        try:
            rc = self.stop()
        except AssertionError as e:
            sys.stderr.write("%s\n" % e)
            rc = self.proc.returncode
        finally:
            if remove_tmp:
                self._cleanup_tmp()
        return rc

    def discard(self):
        """Teardown after whatever happened: killed if still running, its own directory (and
        table) removed. Quiet, and harmless again after close()."""
        try:
            if self.alive():
                self.kill()
        finally:
            self._cleanup_tmp()

    def _cleanup_tmp(self):
        if self._own_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self.table is not None and self._fresh_table:
            drop_lambda_table(self.db)
            self.table = None

    # -- HTTP --------------------------------------------------------------
    def connection(self, timeout=REQUEST_TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None, timeout=REQUEST_TIMEOUT):
        """One request. body: dict/list (sent as JSON), str or bytes (sent as is), or None."""
        hdrs = {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            if own:
                c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    # -- API shortcuts -------------------------------------------------------
    def create(self, task_type="TASK2", data=None, ttl="absent", headers=None, timeout=REQUEST_TIMEOUT):
        body = {"task_type": task_type}
        if data is not None:
            body["data"] = data
        if ttl != "absent":
            body["ttl"] = ttl
        r = self.post("/tasks", body, headers=headers, timeout=timeout)
        if r.status != 201:
            raise AssertionError("POST /tasks %r -> %r" % (body, r))
        return r.json()["id"]

    def task(self, task_id):
        r = self.get("/tasks/" + task_id)
        if r.status != 200:
            raise AssertionError("GET /tasks/%s -> %r" % (task_id, r))
        return r.json()

    def history(self, task_id):
        """GET /tasks/{id}/history as {"id", "history", "truncated"}; raises AssertionError unless 200."""
        r = self.get("/tasks/%s/history" % task_id)
        if r.status != 200:
            raise AssertionError("GET /tasks/%s/history -> %r" % (task_id, r))
        return r.json()

    def set_status(self, task_id, status, msg="", result="absent"):
        body = {"status": status, "status_msg": msg}
        if result != "absent":
            body["result"] = result
        return self.patch("/tasks/" + task_id, body)

    def list_all(self, limit=100, **filters):
        """Page through GET /tasks; returns the list of task objects in order."""
        out = []
        token = None
        for _ in range(100000):
            q = {"limit": str(limit)}
            q.update({k: v for k, v in filters.items() if v is not None})
            if token:
                q["next_token"] = token
            r = self.get("/tasks?" + urlencode(q))
            if r.status != 200:
                raise AssertionError("GET /tasks %r -> %r" % (q, r))
            page = r.json()
            out.extend(page["tasks"])
            token = page["next_token"]
            if token is None:
                return out
        raise AssertionError("paging never ended")


def urlencode(q):
    from urllib.parse import urlencode as _u
    return _u(q)


# -- raw sockets, for requests http.client will not send -----------------------

def parse_response_headers(data, method=None):
    """Parse one HTTP response from bytes: (status, [(lower-case name, value)] in order, body),
    or None when it is not complete. A HEAD answer, a 1xx, 204 or 304 has no body."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    try:
        status = int(parts[1])
    except ValueError:
        return None
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.strip().lower().decode("latin-1"), v.strip().decode("latin-1")))
    hdict = dict(headers)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        rest = b""
    elif "content-length" in hdict:
        n = int(hdict["content-length"])
        if len(rest) < n:
            return None
        rest = rest[:n]
    elif hdict.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        buf = rest
        while True:
            size_line, sep2, buf = buf.partition(b"\r\n")
            if not sep2:
                return None
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            if len(buf) < size + 2:
                return None
            body += buf[:size]
            buf = buf[size + 2:]
        rest = body
    return status, headers, rest


def parse_response(data):
    """Parse one HTTP response from bytes; returns (status, headers dict lower-case, body) or None."""
    parsed = parse_response_headers(data)
    return parsed and (parsed[0], dict(parsed[1]), parsed[2])


def raw_exchange(port, payload, timeout=10.0, host="127.0.0.1", send_in_thread=False, source=None):
    """Send payload bytes on a fresh connection (from the address source, if given) and read one
    response.

    Returns (status, headers, body), or None when the server closed the
    connection without a complete response. With send_in_thread the payload
    is written by a helper thread while this one reads, so a server that
    answers early (e.g. 413) and stops reading cannot deadlock the test.
    """
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    received = b""
    try:
        s.settimeout(timeout)
        sender = None
        if send_in_thread:
            def send():
                try:
                    s.sendall(payload)
                except OSError:
                    pass
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
        else:
            try:
                s.sendall(payload)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            received += chunk
            parsed = parse_response(received)
            if parsed is not None:
                return parsed
        return parse_response(received)
    finally:
        try:
            s.close()
        except OSError:
            pass


def recv_before(sock, deadline):
    """One recv on sock before deadline (time.monotonic()): the bytes; b"" when the connection
    ended (a reset too); None at the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return None
    except OSError:
        return b""


def tcp_socket(local_port, remote_port):
    """The fields of /proc/net/tcp's line for the IPv4 socket from local_port to remote_port (3:
    its state, 4: "tx_queue:rx_queue", 9: its inode, 0 until it is accepted), or None when there
    is none."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if (int(fields[1].split(":")[1], 16) == local_port
                    and int(fields[2].split(":")[1], 16) == remote_port):
                return fields
    return None


def tcp_queues(local_port, remote_port):
    """(bytes sent and not yet acknowledged, bytes received and not yet read) of the IPv4 socket
    from local_port to remote_port, or None when there is none."""
    fields = tcp_socket(local_port, remote_port)
    if fields is None:
        return None
    tx, rx = fields[4].split(":")
    return int(tx, 16), int(rx, 16)


def accepted(sock, port):
    """Whether the server on port has accepted the connection sock made to it."""
    fields = tcp_socket(port, sock.getsockname()[1])
    return fields is not None and fields[9] != "0"


def all_read(sock, port):
    """Whether the server on port has read everything sock sent it, and sock everything the
    server sent: nothing unread or in flight either way."""
    ours = sock.getsockname()[1]
    return tcp_queues(ours, port) == (0, 0) and tcp_queues(port, ours) == (0, 0)


class EventStream:
    """GET /events over a raw socket: the response's status and headers, then its Server-Sent
    Events as they arrive (the chunked body decoded as it comes). ``rcvbuf`` shrinks the socket's
    receive buffer before connecting (a client that reads slowly fills up sooner)."""

    def __init__(self, server, query="", headers=None, rcvbuf=None, timeout=REQUEST_TIMEOUT,
                 read_head=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((server.host, server.port))
        lines = ["GET /events%s HTTP/1.1" % (("?" + query) if query else ""), "Host: 127.0.0.1",
                 "Accept: text/event-stream"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = bytearray()  # received, not yet decoded (grown in place: many chunks stay linear)
        self.text = ""        # decoded body, not yet parsed into blocks
        # the body is one UTF-8 text: a character may be split across reads or chunks
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.body = bytearray()  # every body byte so far
        self.eof = False
        self.status = None
        self.headers = {}
        self.chunked = False
        self.ended_cleanly = False  # the terminating chunk came
        if read_head:
            self.read_head(timeout)

    def read_head(self, timeout=REQUEST_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline):
                raise AssertionError("GET /events: no response head; got %r" % self.raw[:300])
        head, _, rest = self.raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ")[1])
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            self.headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self.raw = bytearray(rest)
        self._decode()

    def _recv(self, deadline):
        """Read once; False at the end of the stream or the deadline."""
        if self.eof:
            return False
        data = recv_before(self.sock, deadline)
        if not data:
            self.eof = data is not None
            return False
        self.raw += data
        return True

    def _take(self, data):
        self.body += data
        self.text += self.utf8.decode(data)

    def _decode(self):
        raw = self.raw
        if not self.chunked:
            self._take(raw)
            raw.clear()
            return
        done = 0  # the bytes of raw decoded: dropped once, at the end, not chunk by chunk
        try:
            while True:
                line_end = raw.find(b"\r\n", done)
                if line_end < 0:
                    return
                size = int(bytes(raw[done:line_end]).split(b";")[0], 16)
                if size == 0:
                    self.eof = True  # the last chunk: the stream ended cleanly
                    self.ended_cleanly = True
                    done = len(raw)
                    return
                start = line_end + 2
                if len(raw) < start + size + 2:
                    return
                self._take(raw[start:start + size])
                done = start + size + 2
        finally:
            del raw[:done]

    def next_block(self, timeout=REQUEST_TIMEOUT):
        """The next block (lines up to a blank line) as a dict: id, event, data (parsed JSON), retry,
        comments; None when the stream ended or nothing came within timeout."""
        deadline = time.monotonic() + timeout
        while "\n\n" not in self.text:
            if not self._recv(deadline):
                return None
            self._decode()
        block, _, self.text = self.text.partition("\n\n")
        out = {"comments": []}
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                out["comments"].append(value)
            elif field == "data":
                out["data"] = json.loads(value)
            else:
                out[field] = value
        return out

    def next_event(self, timeout=REQUEST_TIMEOUT):
        """The next block that is an event (task or reset), skipping retry lines and comments."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.next_block(max(0.0, deadline - time.monotonic()))
            if b is None or "event" in b:
                return b

    def events(self, n, timeout=REQUEST_TIMEOUT):
        """The next n events; AssertionError naming what came when fewer arrive in time."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            e = self.next_event(max(0.0, deadline - time.monotonic()))
            if e is None:
                raise AssertionError("%d of %d events within %.0f s: %r" % (len(got), n, timeout, got))
            got.append(e)
        return got

    def wait_closed(self, timeout):
        """True when the server ends the stream (or closes the connection) within timeout."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._recv(deadline):
                break
            self._decode()
        return self.eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EventReader:
    """A thread reading an EventStream's events into ``events`` until the stream ends or nothing
    comes for ``idle`` seconds. Whatever it raises is kept in ``error``, and check() raises it in
    the test's thread, as does every wait of until(): a reader that failed fails the test that
    waits on it at once, with its error, rather than letting it wait out its time for events
    that will never be read."""

    def __init__(self, stream, idle=30):
        self.stream = stream
        self.events = []
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(idle,), daemon=True)
        self.thread.start()

    def _run(self, idle):
        try:
            while True:
                e = self.stream.next_event(idle)
                if e is None:
                    return
                self.events.append(e)
        except BaseException as e:  # noqa: B902 - raised again in the test's thread by check()
            self.error = e

    def check(self):
        """Raise AssertionError with the reader's error when it failed."""
        if self.error is not None:
            raise AssertionError("the event reader failed after %d events: %s: %s"
                                 % (len(self.events), type(self.error).__name__, self.error)) from self.error

    def until(self, fn, timeout, what="condition"):
        """wait_until(fn, ...), failing at once when the reader has failed."""
        def checked():
            self.check()
            return fn()
        return wait_until(checked, timeout, what=what)


class ServersTestCase(unittest.TestCase):
    """A test case class whose tests start their own taskd processes.

    Each test gets a temporary directory (self.tmp, with self.db a database
    path in it) and a list self.servers: whatever is in it and still running
    when the test ends is killed, and the directory is removed, as is the own
    directory of a server started without tmpdir=self.tmp.
    """

    tmp_prefix = "taskd-test-"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix)
        self.db = os.path.join(self.tmp, "tasks.db")
        self.servers = []

    def tearDown(self):
        try:
            errors = []
            for s in self.servers:  # each one, whatever another's discard raised
                try:
                    s.discard()
                except Exception as e:  # noqa: BLE001 - reported after the others
                    errors.append(e)
            if errors:
                raise errors[0]
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop_clean(self, s, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop s with sig: it must exit 0, within timeout."""
        rc = s.stop(sig, timeout)
        self.assertEqual(rc, 0, "taskd exited %s on %s; stderr:\n%s"
                         % (rc, signal.Signals(sig).name, s.stderr_text()[-3000:]))

    def wait_status(self, s, tid, statuses, timeout=10.0):
        """Wait until the task tid of s has one of statuses; the task. A time-out says the status
        the task was left in."""
        last = {}

        def check():
            t = last["task"] = s.task(tid)
            return t if t["status"] in statuses else None
        try:
            return wait_until(check, timeout, what="task %s to reach %s" % (tid, statuses))
        except WaitTimeout as e:
            left = last.get("task", {}).get("status")
            raise AssertionError("%s; the task is %s" % (e, left)) from None


class ServerTestCase(unittest.TestCase):
    """A test case class with one taskd for the whole class (cls.server).

    server_kwargs are Taskd's arguments; server_config, when set, is a config
    (a dict, or text) written to a file of the class's own temporary directory,
    removed at the end. After every test the server must still be running; at
    the end it must stop on SIGTERM with exit code 0.

    A subclass's setUpClass that fails after this one, or its tearDownClass
    failing before this one, leaves no server or directory behind either: the
    class cleanup discards them.
    """

    server_kwargs = {}
    server_config = None
    server = None
    _config_dir = None

    @classmethod
    def setUpClass(cls):
        cls.addClassCleanup(cls._discard)
        kwargs = dict(cls.server_kwargs)
        if cls.server_config is not None:
            cls._config_dir = tempfile.mkdtemp(prefix="taskd-cfg-")
            kwargs["config"] = write_config(cls._config_dir, cls.server_config)
        cls.server = Taskd(**kwargs)

    @classmethod
    def _remove_config_dir(cls):
        if cls._config_dir is not None:
            shutil.rmtree(cls._config_dir, ignore_errors=True)
            cls._config_dir = None

    @classmethod
    def _discard(cls):
        try:
            if cls.server is not None:
                cls.server.discard()
        finally:
            cls._remove_config_dir()

    @classmethod
    def tearDownClass(cls):
        try:
            cls._stop_server()
        finally:
            cls._remove_config_dir()

    @classmethod
    def _stop_server(cls):
        srv = cls.server
        if srv is None:
            return
        alive = srv.alive()
        rc = srv.close()
        if not alive:
            raise AssertionError("taskd died during the tests (rc=%s); stderr tail:\n%s"
                                 % (rc, srv.stderr_text()[-4000:]))
        if srv.killed_by_timeout:
            raise AssertionError("taskd did not exit within %.0f s of SIGTERM (the harness "
                                 "SIGKILLed it); stderr tail:\n%s"
                                 % (STOP_TIMEOUT, srv.stderr_text()[-4000:]))
        if rc != 0:
            raise AssertionError("taskd exited %s on SIGTERM (expected 0); stderr tail:\n%s"
                                 % (rc, srv.stderr_text()[-4000:]))

    def tearDown(self):
        if self.server is not None and not self.server.alive():
            self.fail("taskd is no longer running after this test (rc=%s); stderr tail:\n%s"
                      % (self.server.proc.returncode, self.server.stderr_text()[-4000:]))

    # -- assertions ------------------------------------------------------------
    def assertJSON(self, r, status):
        """Assert the status and a JSON body; returns the decoded body."""
        self.assertEqual(r.status, status, "unexpected status: %r" % (r,))
        ctype = r.header("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"),
                        "Content-Type %r is not application/json: %r" % (ctype, r))
        try:
            return r.json()
        except ValueError as e:
            self.fail("body is not JSON (%s): %r" % (e, r))

    def assertError(self, r, status):
        """Assert status and a JSON error body with 'detail'; returns the detail."""
        body = self.assertJSON(r, status)
        self.assertIsInstance(body, dict, "error body is not an object: %r" % (r,))
        self.assertIn("detail", body, "error body has no 'detail': %r" % (r,))
        return body["detail"]

    def assertValidation(self, r, *locs, types=None):
        """Assert a 422 whose detail list names exactly the given locs (as tuples).

        Every item must be one of pydantic v2's as FastAPI renders it: keys in the order type,
        loc, msg, input (left out only for an input too long to echo or an integer past 64 bits)
        and ctx (exactly for the types that have one), the msg that goes with its type and ctx.
        A json_invalid item's loc is ("body", <byte offset>): a caller may name it exactly, or as
        ("body",) when the offset does not matter.
        types, if given, maps a loc tuple to the allowed type (a str) or set of types.
        Returns the detail list.
        """
        def check_item(e):
            """One 422 detail item: its keys, their order, and the msg and ctx its type has."""
            self.assertIsInstance(e, dict, "detail entry not an object: %r" % (e,))
            for k in ("type", "loc", "msg"):
                self.assertIn(k, e, "detail entry lacks %r: %r" % (k, e))
            t, loc, msg = e["type"], e["loc"], e["msg"]
            self.assertIn(t, ERROR_TYPES, "unknown error type in %r" % (e,))
            ctx_key = {"literal_error": "expected", "greater_than_equal": "ge", "less_than_equal": "le",
                       "json_invalid": "error", "value_error": "error",
                       "string_too_long": "max_length"}.get(t)
            want_keys = (["type", "loc", "msg"] + (["input"] if "input" in e else [])
                         + (["ctx"] if ctx_key else []))
            self.assertEqual(list(e), want_keys, "detail entry keys (or their order): %r" % (e,))
            self.assertIsInstance(loc, list)
            self.assertIn(loc[:1], (["body"], ["query"]), "loc of %r" % (e,))
            self.assertTrue(all(isinstance(p, str) for p in loc[1:]) or t == "json_invalid", e)
            self.assertIsInstance(msg, str)
            if ERROR_TYPES[t] is not None:
                self.assertEqual(msg, ERROR_TYPES[t], "msg of %r" % (e,))
            if ctx_key:
                ctx = e["ctx"]
                self.assertIsInstance(ctx, dict, e)
                self.assertEqual(list(ctx), [ctx_key], "ctx of %r" % (e,))
            if t == "json_invalid":
                self.assertEqual(len(loc), 2, "json_invalid loc is [\"body\", offset]: %r" % (e,))
                self.assertIsInstance(loc[1], int, e)
                self.assertGreaterEqual(loc[1], 0, e)
                self.assertEqual(e.get("input"), {}, "json_invalid input: %r" % (e,))
                self.assertIsInstance(ctx["error"], str, e)
                self.assertTrue(ctx["error"], "json_invalid without the parser's error: %r" % (e,))
            elif t == "literal_error":
                self.assertEqual(msg, "Input should be " + ctx["expected"], e)
            elif t == "greater_than_equal":
                self.assertEqual(msg, "Input should be greater than or equal to %d" % ctx["ge"], e)
            elif t == "less_than_equal":
                self.assertEqual(msg, "Input should be less than or equal to %d" % ctx["le"], e)
            elif t == "string_too_long":
                self.assertEqual(msg, "String should have at most %d characters" % ctx["max_length"], e)
            elif t == "value_error":
                self.assertIsInstance(ctx["error"], str, e)
                self.assertEqual(msg, "Value error, " + ctx["error"], e)
            if t == "missing" and loc == ["body"]:
                self.assertIsNone(e.get("input", "absent"), "an empty body's input is null: %r" % (e,))

        detail = self.assertError(r, 422)
        self.assertIsInstance(detail, list, "422 detail is not a list: %r" % (r,))
        self.assertTrue(detail, "422 detail is empty")
        for e in detail:
            check_item(e)
        exact = {tuple(l) for l in locs} | {tuple(l) for l in (types or {})}

        def key(e):
            loc = tuple(e["loc"])
            return loc[:1] if e["type"] == "json_invalid" and loc not in exact else loc

        seen = [key(e) for e in detail]
        if locs:
            self.assertEqual(sorted(set(seen), key=repr), sorted(set(tuple(l) for l in locs), key=repr),
                             "422 locs differ: %r" % (detail,))
        if types:
            for loc, allowed in types.items():
                if isinstance(allowed, str):
                    allowed = {allowed}
                got = [e["type"] for e in detail if key(e) == tuple(loc)]
                self.assertTrue(got, "no entry for %r in %r" % (loc, detail))
                for t in got:
                    self.assertIn(t, allowed, "type for %r: %r" % (loc, detail))
        return detail


# -- pipeline helpers (appended for test_pipeline / test_exec / test_crash) -----

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")


def script_path(name):
    """Absolute path of a helper script in tests/integration/scripts/."""
    return os.path.join(SCRIPTS, name)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in server's handler: HTTP/1.1, no access log, and reply() for a whole answer.

    A client that goes away between two requests on a connection kept alive closes it, or, when
    it had not read all of the last answer (a bootstrap stopped as soon as its post was
    answered), resets it: either ends the connection here, without a traceback. A reset within
    a request is raised as any other error."""
    protocol_version = "HTTP/1.1"

    def handle_one_request(self):
        self.request_begun = False
        try:
            super().handle_one_request()
        except ConnectionResetError:
            if self.request_begun:
                raise
            self.close_connection = True

    def parse_request(self):
        self.request_begun = True  # its first line is read
        return super().parse_request()

    def log_message(self, *args):
        pass

    def read_body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_stand_in(handler):
    """A server of handler (a QuietHandler class) on a free loopback port, serving from a daemon
    thread; stop it with shutdown() and server_close()."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class WaitTimeout(AssertionError):
    """wait_until()'s time-out: a test failure, told apart from one its check raised."""


def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Call fn() until it returns a truthy value; return that value.

    On timeout raise AssertionError naming `what` and fn's last return value
    (or the exception it last raised).
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise WaitTimeout("timed out after %.1f s waiting for %s; last: %r"
                              % (timeout, what, last))
        time.sleep(interval)


def open_db_ro(path):
    """A read-only sqlite3 connection to a taskd database (safe while taskd runs)."""
    import sqlite3
    from urllib.parse import quote
    conn = sqlite3.connect("file:%s?mode=ro" % quote(os.path.abspath(path)), uri=True, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def db_query(path, sql, params=()):
    """Run one read-only query on a taskd database; returns all rows."""
    conn = open_db_ro(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# Each change record's transition, whatever form it is kept in: since schema 7 a creation's
# and a change's records keep their parts (slim = 2; a creation's new side is CREATED, no
# message), older records and removals their images.
_TRANSITIONS = (
    "SELECT seq, event_name, task_id, "
    "CASE WHEN slim = 2 AND event_name = 'INSERT' THEN 'CREATED' WHEN slim = 2 THEN new_status "
    "ELSE json_extract(new_image, '$.status.S') END, "
    "CASE WHEN slim = 2 THEN old_status ELSE json_extract(old_image, '$.status.S') END, "
    "CASE WHEN slim = 2 AND event_name = 'INSERT' THEN '' WHEN slim = 2 THEN new_msg "
    "ELSE json_extract(new_image, '$.status_msg.S') END FROM changes")


def change_transitions(path, where="", params=()):
    """The change log as [(seq, event, task_id, new_status, old_status, new_status_msg)] in
    seq order (None for a side a record does not have); where: an SQL condition on changes."""
    sql = _TRANSITIONS + (" WHERE " + where if where else "") + " ORDER BY seq"
    return db_query(path, sql, params)


def queue_table(server):
    """GET /queues as {name: entry}; raises AssertionError unless 200."""
    r = server.get("/queues")
    if r.status != 200:
        raise AssertionError("GET /queues -> %r" % (r,))
    return {q["name"]: q for q in r.json()["queues"]}


def wait_queue_empty(server, name, timeout=5.0):
    """Wait until queue name holds no message. A runner deletes its batch's messages in the
    commit after their reports, so a task reads COMPLETED a moment before its message leaves."""
    def empty():
        q = queue_table(server)[name]
        return q["depth"] + q["in_flight"] + q["delayed"] == 0
    wait_until(empty, timeout, what="queue %s to be empty" % name)


_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
                        r'\s+(\S+)(?:\s+-?\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...sorted)): float}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = tuple(sorted(_LABEL_RE.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metrics(server):
    r = server.get("/metrics")
    if r.status != 200:
        raise AssertionError("GET /metrics -> %r" % (r,))
    return parse_metrics(r.body.decode("utf-8"))


def metric(parsed, name, **labels):
    """One sample from parse_metrics() output, or None."""
    return parsed.get((name, tuple(sorted(labels.items()))))


def post_tasks(server, bodies, threads=4, stop=None):
    """POST each body to /tasks from several keep-alive connections.

    Returns (accepted, errors): accepted is a list of (index, id) for 201
    answers; errors counts requests that got no 201 (including connection
    failures). stop, a threading.Event, ends the posting early.
    """
    accepted = []
    errors = [0]
    lock = threading.Lock()
    it = iter(list(enumerate(bodies)))

    def worker():
        conn = None
        while stop is None or not stop.is_set():
            with lock:
                try:
                    i, body = next(it)
                except StopIteration:
                    break
            try:
                if conn is None:
                    conn = server.connection()
                r = server.post("/tasks", body, conn=conn)
                ok = r.status == 201
                tid = r.json()["id"] if ok else None
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
            with lock:
                if ok:
                    accepted.append((i, tid))
                else:
                    errors[0] += 1
        if conn is not None:
            conn.close()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return accepted, errors[0]


def status_counts(db_path):
    """{status: count} of all tasks in a database (read-only)."""
    return dict(db_query(db_path, "SELECT status, count(*) FROM tasks GROUP BY status"))


def process_gone(pid, started_by=None):
    """True if pid no longer runs (absent or a zombie).

    With started_by (seconds after boot, see written_at()), a process of that pid that started
    later is a new one reusing the pid (pid_max may be small), and counts as gone; so does a
    thread's id (/proc/<tid> exists for every thread, and a signal to it is one to its process).
    """
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    fields = stat.rpartition(")")[2].split()  # fields[0] is field 3, the state
    if started_by is not None:
        ticks = os.sysconf("SC_CLK_TCK")
        if int(fields[19]) > started_by * ticks + 1 or not _is_process(pid):
            return True  # +1: file times come from a coarse clock, a tick late at most
    return fields[0] in ("Z", "X")


def _is_process(pid):
    """True if pid is a process's id, not the id of a thread other than its first."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1]) == pid
    except OSError:
        pass
    return False


def written_at(path):
    """When path was last written, in seconds after boot (the clock of process start times)."""
    return os.stat(path).st_mtime - time.time() + time.clock_gettime(time.CLOCK_BOOTTIME)


def kill_fixture_processes(pids, started_by):
    """SIGKILL those of pids that still run as a fixture's processes, which had all started by
    started_by (seconds after boot, e.g. written_at() of the file the fixture wrote its pids to).

    Each is signalled through a pidfd opened before checking it, so a pid that was reused
    meanwhile, perhaps by taskd or one of its threads, is never signalled.
    """
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue  # gone, or a thread's id
        try:
            if not process_gone(pid, started_by):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)


class UDPListener:
    """A UDP listener on 127.0.0.1:0 that records every datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.datagrams = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.datagrams.append(data)

    def snapshot(self):
        with self.lock:
            return list(self.datagrams)

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()
