#!/usr/bin/env python3
"""A local AWS Lambda + API Gateway stand-in for a custom-runtime ``bootstrap`` (standard library only).

    python3 tests/lambda/emulator.py --bootstrap build/bootstrap --handler api \\
        [--concurrency N] [--timeout SECONDS] [--payload 1.0|2.0] [--listen 127.0.0.1:0] \\
        [--env KEY=VALUE ...]
    python3 tests/lambda/emulator.py --bootstrap build/bootstrap --handler api --bench-init N
    python3 tests/lambda/emulator.py --stack STACK.json [--bootstrap build/bootstrap]

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
    for a body over 10 MB, or one whose event is over Lambda's 6 MB (6,291,456 bytes) that it
    refuses (the function is not invoked).
    It answers as the API's execute-api endpoint and as a custom domain mapped to it without a base
    path, both at once: a request under ``/dev`` (the stage) comes with ``path`` without it and
    ``requestContext.path`` with it (2.0: stage ``dev``, ``rawPath`` as sent); any other request
    with both the same (2.0: stage ``$default``).

Stack mode (--stack FILE): several functions in one process, with event source mappings
    FILE is a JSON description, shaped like the ``functions`` of a serverless.yml:

    {"region": "eu-west-1", "service": "taskd", "stage": "dev",
     "bootstrap": "build/bootstrap",                  (default of every function; or --bootstrap)
     "environment": {"KEY": "VALUE"},                 (every function's)
     "invoke_api": "127.0.0.1:0",                     (the Lambda Invoke API, below)
     "functions": {
       "api": {"handler": "api", "concurrency": 2, "timeout": 29, "tracing": "Active",
               "environment": {"TABLE_NAME": "tasks"},
               "http": {"listen": "127.0.0.1:0", "payload": "1.0", "gateway_timeout": 29}},
       "publish": {"handler": "publish", "timeout": 60,
               "environment": {"TOPIC_ARN": "...", "TABLE_NAME": "tasks"},
               "events": [{"stream": {"endpoint": "http://127.0.0.1:8000", "table": "tasks",
                   "starting_position": "TRIM_HORIZON", "batch_size": 100,
                   "maximum_retry_attempts": 5, "function_response_type": "ReportBatchItemFailures",
                   "filter_patterns": [{"eventName": ["INSERT"]}]}}]},
       "workerTask1": {"handler": "worker", "timeout": 40, "concurrency": 2,
               "environment": {"QUEUE_NAME": "task1"},
               "events": [{"sqs": {"endpoint": "http://127.0.0.1:4566",
                   "queue_url": "http://127.0.0.1:4566/000000000000/task1", "batch_size": 1,
                   "maximum_concurrency": 2, "function_response_type": "ReportBatchItemFailures"}}]}}}

    Every function has its own environments (``concurrency``, default 1), its own FIFO of
    invocations, timeout (default 30 s), memory, name (``<service>-<stage>-<key>`` unless
    ``function_name``) and environment (the stack's, then its own). ``http`` gives it an API
    Gateway front as above. ``tracing: "Active"`` makes the emulator send, for every sampled
    invocation, the function's segment (``origin`` AWS::Lambda::Function, ``id`` the Parent of
    its Lambda-Runtime-Trace-Id) to the function's AWS_XRAY_DAEMON_ADDRESS, as Lambda does; the
    function's own spans are subsegments under it.

    Event source mappings (``events``):
      stream  a DynamoDB stream, at ``endpoint`` (DynamoDB Streams JSON API), named by ``arn`` or
              by ``table`` (DescribeTable's LatestStreamArn). Polls DescribeStream for shards
              (new shards are found as they appear; a child shard is read after its parent is
              finished), GetShardIterator (``starting_position`` TRIM_HORIZON or LATEST for the
              shards found first, TRIM_HORIZON for later ones), GetRecords in a loop. Records
              that match none of ``filter_patterns`` are skipped. Batches of up to
              ``batch_size`` records, in order, one batch in flight per mapping, are sent as
              {"Records": [...]} (eventSourceARN and awsRegion set), a batch cut short where
              the next record would take the event over Lambda's synchronous payload limit
              (6,291,456 bytes; the records left go in the next batch). A function error retries
              the batch; with ``function_response_type`` ReportBatchItemFailures, a
              batchItemFailures answer retries from the lowest failed SequenceNumber (the
              records before it are done; an answer naming no record of the batch fails it
              whole). After ``maximum_retry_attempts`` retries (-1: forever; default -1) the
              failing record is logged (``record skipped``) and dropped, and the mapping goes on
              with the next one — what Lambda ends with when it bisects a failing batch.
      sqs     an SQS queue at ``endpoint`` (SQS JSON API; every request goes there, whatever
              host the QueueUrl names), by ``queue_url`` (or ``queue``: GetQueueUrl).
              ``maximum_concurrency`` pollers (default: the function's concurrency) each
              ReceiveMessage (MaxNumberOfMessages ``batch_size`` up to 10, WaitTimeSeconds
              ``wait_time_seconds`` (default 1), every system and message attribute), invoke
              with the SQS event of Lambda (messageId, receiptHandle, body, attributes,
              messageAttributes with stringValue/dataType, md5OfBody, eventSource aws:sqs,
              eventSourceARN, awsRegion) and then delete (DeleteMessageBatch) the messages that
              succeeded: all of them after a response, but those a ReportBatchItemFailures
              answer lists (an invalid answer keeps all); none after a function error, a
              timeout or a crash — they come back after their visibility timeout, and the
              queue's redrive policy moves them to the dead-letter queue. Messages that match
              none of ``filter_patterns`` are deleted without an invocation.
    Filter patterns are Lambda's (EventBridge syntax): nested objects, leaf arrays of exact
    values (strings, numbers by their JSON form, true/false/null), {"prefix"}, {"suffix"},
    {"equals-ignore-case"}, {"anything-but": value, [values] or {"prefix"}}, {"numeric": [op, n
    (, op, n)]}, {"exists": true|false}; several patterns are OR. A bad pattern is refused at
    start.

    The Lambda Invoke API on ``invoke_api``: POST /2015-03-31/functions/{name}/invocations
    (name: the key, the function name or its ARN) with the event as body; RequestResponse
    (default) answers 200 with the function's payload, and with X-Amz-Function-Error: Unhandled
    when it failed (errorType Sandbox.Timedout past the timeout, Runtime.ExitError after a
    crash); X-Amz-Invocation-Type: Event answers 202 and invokes in the background. A request
    over the limit of its invocation type, 6,291,456 bytes, or 1,048,576 bytes for Event, is
    refused as Lambda refuses it: 413, x-amzn-ErrorType RequestEntityTooLargeException,
    {"Type": "User", "message": ...} with Lambda's message (the function is not invoked).

    The listening line carries, besides ``address`` (the first front), ``functions`` (each key:
    its name, ARN and front address) and ``invoke_api``; it comes once every environment has
    made its first /next and every stream mapping has placed its first shard iterators.

Logs (JSON lines on stderr)
    ``{"message": "listening", "address": "127.0.0.1:PORT"}`` once every environment has made its
    first ``/next`` (or failed its init); ``init`` per environment start (``init_ms``: exec to the
    first ``/next``); ``invocation`` per invocation (``request_id``, ``duration_ms``, ``status``,
    ``trace_id``: its Lambda-Runtime-Trace-Id); ``environment`` per environment at exit
    (``max_rss_kb``: VmHWM of its process). In stack mode every line about a function names it
    (``function``: its key), and the mappings log ``stream batch`` / ``sqs batch`` per
    invocation (what was sent, kept, deleted or retried) and ``record skipped``. The bootstraps'
    stdout and stderr lines are copied to stderr unchanged.

SIGTERM / SIGINT: stop accepting (and polling), SIGTERM to the bootstraps, SIGKILL after 2 s, exit 0.

--bench-init N starts and stops one environment N times (no front) and prints JSON statistics of
``init_ms`` (and of the peak RSS) on stdout.
"""

import argparse
import base64
import binascii
import collections
import datetime
import hashlib
import hmac
import http.client
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
import traceback
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit

from standin import die_with_starter  # this folder is the script's own: on sys.path

RUNTIME_PREFIX = "/2018-06-01/runtime"
ACCOUNT_ID = "000000000000"
API_ID = "emul4t0r01"
STAGE = "dev"
MAX_REQUEST_BODY = 10 * 1024 * 1024        # API Gateway REST API payload limit
MAX_FUNCTION_RESPONSE = 6 * 1024 * 1024    # Lambda synchronous response limit
MAX_FUNCTION_REQUEST = 6 * 1024 * 1024     # Lambda synchronous request (event) limit: 6,291,456 bytes
# Lambda asynchronous (Event) request limit: 1,048,576 bytes since Invoke's was raised from 256 KB
# (262,144 bytes, which the deprecated InvokeAsync keeps) to 1 MB
MAX_ASYNC_REQUEST = 1024 * 1024
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


# ---------------------------------------------------------------------------------------------
# invocations and the queue in front of the environments

class Invocation:
    def __init__(self, event, trace_id, api_request_id, raw=False):
        self.request_id = str(uuid.uuid4())
        self.api_request_id = api_request_id
        self.event = event                    # bytes
        self.trace_id = trace_id
        # raw: an invocation of the Invoke API or of an event source mapping, whose result is
        # (outcome, payload bytes, error type) instead of an API Gateway answer
        self.raw = raw
        self.created = time.monotonic()
        self.started = None                   # monotonic, when handed to a runtime
        self.started_wall = None              # time.time() of the same moment
        self.delivered = False                # the runtime's /next got it
        self.deadline_ms = None
        self.abandoned = False                # the client got its answer already (gateway timeout)
        self.done = threading.Event()
        self.result = None                    # (status, [(name, value)], body bytes), or the raw one
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


def function_error(error_type, message):
    """The raw result of a failed invocation: ("error", payload, error type), as Lambda reports it."""
    return "error", json.dumps({"errorType": error_type, "errorMessage": message}).encode(), error_type


def stopping_result(inv):
    if inv.raw:
        return function_error("Emulator.Stopping", "the emulator is stopping")
    return gateway_error(503, "Service Unavailable", "ServiceUnavailable")


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


class QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that drops a connection its peer broke without a traceback."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            super().handle_error(request, client_address)


class RuntimeServer(QuietServer):
    pass


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
                                     preexec_fn=die_with_starter)
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
            inv.started_wall = time.time()
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

    def log(self, level, message, **fields):
        log(level, message, **dict(self.config.log_fields, **fields))

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
            self.log("ERROR", "init failed", env=self.index, errorType=sb.init_failure[0],
                     errorMessage=sb.init_failure[1])
            sb.close()
            return sb
        if sb.wait_ready(self.config.init_timeout):
            self.log("INFO", "init", env=self.index, init_ms=sb.init_ms, pid=sb.proc.pid)
        else:
            if sb.init_failure is None:
                sb.init_failure = ("Runtime.ExitError", "exited with status %s before its first /next"
                                   % sb.proc.poll())
            self.log("ERROR", "init failed", env=self.index, errorType=sb.init_failure[0],
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
                    failure = sb.init_failure or ("Runtime.Unknown", "the environment did not start")
                    self.complete(inv, "init", error_type=failure[0], message=failure[1])
                    continue
            else:
                state = sb.wait_free(self.stop)
                if state == "stop":
                    break
                if state == "exited":
                    if sb.init_failure is None:
                        self.log("ERROR", "environment exited", env=self.index, exit_status=sb.proc.poll())
                    else:
                        self.log("ERROR", "environment failed", env=self.index, errorType=sb.init_failure[0],
                                 errorMessage=sb.init_failure[1])
                    sb.kill()
                    sb = self.spawn() if not self.stop.is_set() else sb
                    continue
                inv = self.pool.take(0.25)
                if inv is None:
                    continue
            outcome = sb.invoke(inv)
            if outcome == "undelivered":
                if not self.pool.put(inv, front=True):  # closed: the emulator is stopping
                    inv.finish(*stopping_result(inv))
                sb.clear()
                continue
            if outcome == "response":
                self.complete(inv, "response", body=sb.outcome[1])
            elif outcome == "error":
                err = parse_error_body(sb.outcome[1])
                error_type = sb.outcome[2] or err.get("errorType")
                self.log("ERROR", "function error", env=self.index, request_id=inv.request_id,
                         errorType=error_type, errorMessage=err.get("errorMessage"))
                self.complete(inv, "error", body=sb.outcome[1], error_type=error_type or "Unhandled")
            elif outcome == "timeout":
                self.note_rss(sb)
                sb.kill()
                self.log("ERROR", "invocation timed out", env=self.index, request_id=inv.request_id,
                         timeout_s=self.config.timeout)
                self.complete(inv, "timeout")
                sb = self.spawn() if not self.stop.is_set() else sb
                continue
            else:  # exited while running the invocation
                status = sb.proc.poll()
                self.log("ERROR", "environment exited during an invocation", env=self.index,
                         request_id=inv.request_id, exit_status=status)
                self.complete(inv, "crash", message="Runtime exited with error: %s" % (
                    "signal %d" % -status if isinstance(status, int) and status < 0 else "exit status %s" % status))
                sb.kill()
                sb = self.spawn() if not self.stop.is_set() else sb
                continue
            sb.clear()

    def result_of(self, inv, outcome, body, error_type, message):
        """What the caller gets: an API Gateway answer (status, headers, body), or for a raw
        invocation (outcome, payload, error type)."""
        if inv.raw:
            if outcome == "response":
                return "response", body, None
            if outcome == "error":
                return "error", body or b"{}", error_type
            if outcome == "timeout":
                return function_error("Sandbox.Timedout", "%s Task timed out after %.2f seconds"
                                      % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), self.config.timeout))
            if outcome == "crash":
                return function_error("Runtime.ExitError", "RequestId: %s Error: %s" % (inv.request_id, message))
            return function_error(error_type or "Runtime.InitError", message or "init failed")
        if outcome == "response":
            return convert_response(body, self.config.payload, inv)
        if outcome == "timeout":
            return gateway_error(504, "Endpoint request timed out", "IntegrationTimeout")
        return internal_error()

    def complete(self, inv, outcome, body=None, error_type=None, message=None):
        result = self.result_of(inv, outcome, body, error_type, message)
        started = inv.started if inv.started is not None else time.monotonic()
        answered = inv.finish(*result)
        fields = {} if answered else {"answered": "gateway timeout"}
        if inv.raw:
            fields["status"] = 200
            if result[0] == "error":
                fields["function_error"] = result[2]
        else:
            fields["status"] = result[0]
        self.log("INFO", "invocation", env=self.index, request_id=inv.request_id,
                 duration_ms=round((time.monotonic() - started) * 1000, 3), outcome=outcome,
                 queued_ms=round((started - inv.created) * 1000, 3), trace_id=inv.trace_id, **fields)
        if inv.started_wall is not None:
            send_function_segment(self.config, inv, outcome)


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


def under_stage(raw_path):
    """Whether the request's path is under /<STAGE>: the stage's execute-api URL, not the custom domain's."""
    return raw_path == "/" + STAGE or raw_path.startswith("/" + STAGE + "/")


def build_event_v1(req, body, trace_id, request_id, config):
    raw_path, _, raw_query = req.path.partition("?")
    full = unquote(raw_path, errors="replace")
    path = unquote(raw_path[len(STAGE) + 1:] or "/", errors="replace") if under_stage(raw_path) else full
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
        "resourcePath": "/{proxy+}" if proxy else "/", "path": full,
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
            "requestId": request_id, "routeKey": "$default",
            "stage": STAGE if under_stage(raw_path) else "$default",
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
        if len(event) > MAX_FUNCTION_REQUEST:
            # Lambda refuses the invocation (RequestTooLargeException): the function never sees it
            log("WARN", "event over the function's payload limit: refused", request_id=request_id,
                event_bytes=len(event), limit=MAX_FUNCTION_REQUEST)
            return self.send_json(gateway_error(413, "Request Entity Too Large", "RequestEntityTooLarge"),
                                  head=self.command == "HEAD")
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


class FrontServer(QuietServer):
    request_queue_size = 128


# ---------------------------------------------------------------------------------------------
# X-Ray: the function's segment, which Lambda sends for a sampled invocation (tracing Active)

TRACE_PARENT_RE = re.compile(r"(?:^|;)\s*Parent=([0-9a-fA-F]{16})\s*(?:;|$)")


def daemon_address(value):
    """(host, port) of an AWS_XRAY_DAEMON_ADDRESS ("host:port", or "udp:host:port tcp:host:port")."""
    parts = (value or "").split()
    chosen = next((p[4:] for p in parts if p.startswith("udp:")), None)
    if chosen is None and len(parts) == 1 and not parts[0].startswith("tcp:"):
        chosen = parts[0]
    host, sep, port = (chosen or "").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def send_function_segment(config, inv, outcome):
    """Send the AWS::Lambda::Function segment of an invocation, whose id is the Parent of its trace
    header: the function's own subsegments name it as their parent."""
    if getattr(config, "tracing", "PassThrough") != "Active":
        return
    addr = daemon_address(config.env.get("AWS_XRAY_DAEMON_ADDRESS"))
    root, parent = TRACE_ROOT_RE.search(inv.trace_id), TRACE_PARENT_RE.search(inv.trace_id)
    sampled = TRACE_SAMPLED_RE.search(inv.trace_id)
    if addr is None or not root or not parent or not sampled or sampled.group(1) != "1":
        return
    doc = {"name": config.function_name, "id": parent.group(1).lower(), "trace_id": root.group(1).lower(),
           "start_time": round(inv.started_wall, 6), "end_time": round(time.time(), 6),
           "origin": "AWS::Lambda::Function",
           "aws": {"account_id": ACCOUNT_ID, "function_arn": config.function_arn,
                   "resource_names": [config.function_name], "request_id": inv.request_id}}
    if outcome != "response":
        doc["fault"] = True
    data = b'{"format": "json", "version": 1}\n' + json.dumps(doc, separators=(",", ":")).encode()
    try:
        family = socket.getaddrinfo(addr[0], addr[1], 0, socket.SOCK_DGRAM)[0]
        with socket.socket(family[0], socket.SOCK_DGRAM) as s:
            s.sendto(data, family[4])
    except OSError as e:
        log("WARN", "cannot send the function segment", error=str(e), **config.log_fields)


# ---------------------------------------------------------------------------------------------
# AWS JSON APIs (DynamoDB Streams, SQS), signed with SigV4 as the SDKs do

EMULATOR_ACCESS_KEY = "AKIDEMULATOREXAMPLE1"
EMULATOR_SECRET_KEY = "emulatorSecretAccessKeyExample000000000"


class AwsError(Exception):
    """An error answer of an AWS API: .status, .type (e.g. ExpiredIteratorException), .message."""

    def __init__(self, status, error_type, message):
        super().__init__("%s (%s): %s" % (error_type, status, message))
        self.status = status
        self.type = error_type
        self.message = message


def sigv4_headers(host, path, body, headers, region, service, method="POST", query="",
                  access_key=EMULATOR_ACCESS_KEY, secret_key=EMULATOR_SECRET_KEY):
    """headers plus X-Amz-Date and a SigV4 Authorization over host, them and the body."""
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    canon = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    canon.update({"host": host, "x-amz-date": amz_date})
    names = sorted(canon)
    request = "\n".join([method, path or "/", query, "".join("%s:%s\n" % (k, canon[k]) for k in names),
                         ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    out["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, ";".join(names), signature)
    return out


def aws_post(endpoint, body, headers, region, service, timeout=10.0):
    """POST body to an AWS endpoint (its path, else /). Returns (status, body); OSError when
    nothing answers."""
    u = urlsplit(endpoint)
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = cls(u.hostname, u.port, timeout=timeout)
    path = u.path or "/"
    try:
        conn.request("POST", path, body=body, headers=sigv4_headers(u.netloc, path, body, headers, region, service))
        r = conn.getresponse()
        return r.status, r.read()
    except http.client.HTTPException as e:
        raise OSError("%s: %s" % (endpoint, e))
    finally:
        conn.close()


def aws_json(endpoint, target, payload, region, service, timeout=10.0):
    """One AWS JSON 1.0 call (X-Amz-Target: target). Returns the answer; AwsError for an error one."""
    status, data = aws_post(endpoint, json.dumps(payload).encode("utf-8"),
                            {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target},
                            region, service, timeout)
    try:
        obj = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError):
        obj = {"__type": "InvalidResponse", "message": data[:200].decode("latin-1")}
    if status != 200 or not isinstance(obj, dict):
        obj = obj if isinstance(obj, dict) else {}
        raise AwsError(status, str(obj.get("__type", "UnknownError")).rpartition("#")[2],
                       obj.get("message") or obj.get("Message") or "")
    return obj


# ---------------------------------------------------------------------------------------------
# event filtering: Lambda's filter patterns (the EventBridge pattern syntax)

NUMERIC_OPS = {"=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
               ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


class PatternError(ValueError):
    pass


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_scalar(v):
    return v is None or isinstance(v, (str, bool, int, float))


def check_pattern(pattern, where="pattern"):
    """Raise PatternError unless pattern is a filter pattern this emulator can apply."""
    if not isinstance(pattern, dict) or not pattern:
        raise PatternError("%s: not a non-empty JSON object" % where)
    for key, rule in pattern.items():
        path = "%s.%s" % (where, key)
        if isinstance(rule, dict):
            check_pattern(rule, path)
        elif isinstance(rule, list) and rule:
            for r in rule:
                _check_rule(r, path)
        else:
            raise PatternError("%s: a leaf must be a non-empty array of rules" % path)


def _check_rule(rule, path):
    if _is_scalar(rule):
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        raise PatternError("%s: bad rule %s" % (path, json.dumps(rule)))
    (op, arg), = rule.items()
    ok = False
    if op in ("prefix", "suffix", "equals-ignore-case"):
        ok = isinstance(arg, str)
    elif op == "anything-but":
        if isinstance(arg, dict):
            ok = set(arg) == {"prefix"} and isinstance(arg["prefix"], str)
        elif isinstance(arg, list):
            ok = bool(arg) and all(isinstance(a, str) or _is_number(a) for a in arg)
        else:
            ok = isinstance(arg, str) or _is_number(arg)
    elif op == "numeric":
        ok = isinstance(arg, list) and len(arg) in (2, 4) and all(
            arg[i] in NUMERIC_OPS and _is_number(arg[i + 1]) for i in range(0, len(arg), 2))
    elif op == "exists":
        ok = isinstance(arg, bool)
    else:
        raise PatternError("%s: unknown operator %r" % (path, op))
    if not ok:
        raise PatternError("%s: bad argument of %r: %s" % (path, op, json.dumps(arg)))


def _same_value(rule, value):
    """Exact matching: same JSON type; numbers by their JSON text (300 and 300.0 differ)."""
    if rule is None or isinstance(rule, (bool, str)) or value is None or isinstance(value, (bool, str)):
        return type(rule) is type(value) and rule == value
    return _is_number(rule) and _is_number(value) and json.dumps(rule) == json.dumps(value)


def _rule_matches(rule, value):
    """One rule against one present scalar value."""
    if not isinstance(rule, dict):
        return _same_value(rule, value)
    (op, arg), = rule.items()
    if op == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == arg.casefold()
    if op == "numeric":
        return _is_number(value) and all(NUMERIC_OPS[arg[i]](value, arg[i + 1]) for i in range(0, len(arg), 2))
    if op == "anything-but":
        if isinstance(arg, dict):
            return isinstance(value, str) and not value.startswith(arg["prefix"])
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_same_value(a, value) for a in excluded)  # numbers by JSON text here too
    return False


def _leaf_matches(rules, present, value):
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] == present:
                return True
            continue
        if not present:
            continue
        for v in value if isinstance(value, list) else [value]:  # an array matches by any element
            if _is_scalar(v) and _rule_matches(rule, v):
                return True
    return False


def pattern_matches(pattern, obj):
    """True when the JSON value obj matches one filter pattern (every key of it: AND)."""
    for key, rule in pattern.items():
        present = isinstance(obj, dict) and key in obj
        value = obj[key] if present else None
        if isinstance(rule, dict):
            if not pattern_matches(rule, value if isinstance(value, dict) else {}):
                return False
        elif not _leaf_matches(rule, present, value):
            return False
    return True


def matches_any(patterns, obj):
    """Several patterns are OR; no pattern at all lets everything through."""
    return not patterns or any(pattern_matches(p, obj) for p in patterns)


def load_patterns(patterns, where):
    """The filter_patterns of a mapping: objects, or JSON texts of objects (FilterCriteria's form)."""
    if patterns is None:
        return []
    if not isinstance(patterns, list):
        raise PatternError("%s: filter_patterns is not an array" % where)
    out = []
    for i, p in enumerate(patterns):
        if isinstance(p, str):
            try:
                p = json.loads(p)
            except ValueError as e:
                raise PatternError("%s: filter_patterns[%d] is not JSON: %s" % (where, i, e))
        check_pattern(p, "%s: filter_patterns[%d]" % (where, i))
        out.append(p)
    return out


def batch_item_failures(payload):
    """The itemIdentifiers of a partial batch response: [] when the batch succeeded whole, None
    for an answer Lambda takes as a failure of the whole batch (not JSON, an identifier that is
    missing, empty or not a string)."""
    text = (payload or b"").strip()
    if not text:
        return []
    try:
        obj = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if obj is None:
        return []
    if not isinstance(obj, dict):
        return None
    items = obj.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not ident:
            return None
        out.append(ident)
    return out


# ---------------------------------------------------------------------------------------------
# functions of a stack, and the Lambda Invoke API

def event_json(value):
    """An event as the emulator sends it to a function: compact JSON, UTF-8, as Lambda sends it
    and counts it against its payload limits (a character is its UTF-8 bytes, not a \\u escape)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def records_that_fit(records, limit):
    """How many of records, from the first, make a {"Records": [...]} event (event_json()) of
    at most limit bytes, as a mapping cuts its batch at Lambda's synchronous payload limit: at
    least one, even when that one alone is over."""
    size = len(event_json({"Records": []}))
    for i, rec in enumerate(records):
        size += len(event_json(rec)) + (1 if i else 0)
        if size > limit and i:
            return i
    return len(records)


class Function:
    """One function: its configuration, its FIFO of invocations and its execution environments."""

    def __init__(self, config, stopping):
        self.config = config
        self.stopping = stopping
        self.pool = Pool()
        self.slots = [Slot(config, i, self.pool, stopping) for i in range(config.concurrency)]

    @property
    def name(self):
        return self.config.key

    def start(self):
        for s in self.slots:
            s.thread.start()

    def invoke(self, event, trace_id=None):
        """Invoke with event (bytes, or a value sent as JSON by event_json()) and wait for the
        outcome. Returns the finished Invocation (.result: (outcome, payload, error type)), or
        None when the emulator stops first."""
        if not isinstance(event, (bytes, bytearray)):
            event = event_json(event)
        inv = Invocation(bytes(event), trace_id or new_trace_id(), None, raw=True)
        if not self.pool.put(inv):
            return None
        give_up = None
        while not inv.done.wait(0.25):
            if self.stopping.is_set():
                give_up = give_up or time.monotonic() + STOP_GRACE + 3
                if time.monotonic() > give_up:
                    return None
        return inv


class InvokeHandler(http.server.BaseHTTPRequestHandler):
    """POST /2015-03-31/functions/{name}/invocations, as the Lambda API answers it."""

    protocol_version = "HTTP/1.1"
    server_version = "LambdaInvokeEmulator"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body=b"", headers=()):
        try:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def user_error(self, status, error_type, message):
        self.reply(status, json.dumps({"Type": "User", "message": message}).encode(),
                   [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)])

    def too_large(self, message):
        """Lambda's 413: the model's RequestTooLargeException, sent as RequestEntityTooLargeException."""
        self.user_error(413, "RequestEntityTooLargeException", message)

    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_FUNCTION_REQUEST:
            self.close_connection = True
            return self.too_large("Request must be smaller than %d bytes for the InvokeFunction operation"
                                  % MAX_FUNCTION_REQUEST)
        body = self.rfile.read(n) if n else b""
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "Event" and len(body) > MAX_ASYNC_REQUEST:
            return self.too_large("%d byte payload is too large for the Event invocation type (limit %d bytes)"
                                  % (len(body), MAX_ASYNC_REQUEST))
        m = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path.split("?")[0])
        if not m:
            return self.user_error(404, "UnknownOperationException", "Unknown operation " + self.path)
        fn = self.server.lookup(unquote(m.group(1)))
        if fn is None:
            return self.user_error(404, "ResourceNotFoundException", "Function not found: " + unquote(m.group(1)))
        try:
            json.loads(body.decode("utf-8") if body.strip() else "null")
        except (UnicodeDecodeError, ValueError):
            return self.user_error(400, "InvalidRequestContentException", "Could not parse request body into json")
        if kind == "DryRun":
            return self.reply(204)
        if kind == "Event":
            threading.Thread(target=fn.invoke, args=(body or b"{}",), daemon=True).start()
            return self.reply(202)
        if kind != "RequestResponse":
            return self.user_error(400, "InvalidParameterValueException", "bad X-Amz-Invocation-Type " + kind)
        inv = fn.invoke(body or b"{}")
        if inv is None:
            return self.user_error(503, "ServiceException", "the emulator is stopping")
        outcome, payload, error_type = inv.result
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST"),
                   ("x-amzn-RequestId", inv.request_id)]
        if outcome == "error":
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        self.reply(200, payload or b"", headers)


class InvokeServer(QuietServer):
    def lookup(self, name):
        for fn in self.functions:
            c = fn.config
            if name in (c.key, c.function_name, c.function_arn) or name.startswith(c.function_arn + ":"):
                return fn
        return None


# ---------------------------------------------------------------------------------------------
# event source mappings

class Mapping:
    """What the stream and SQS mappings share: their function, settings and logging."""

    def __init__(self, fn, spec, region, stopping):
        self.fn = fn
        self.spec = spec
        self.region = region
        self.stopping = stopping
        self.ready = threading.Event()
        self.threads = []
        self.report = spec.get("function_response_type") == "ReportBatchItemFailures"
        self.patterns = load_patterns(spec.get("filter_patterns"), fn.name)
        self._warned = {}
        self._warn_lock = threading.Lock()

    def log(self, level, message, **fields):
        log(level, message, function=self.fn.name, **fields)

    def warn(self, key, message, **fields):
        """A warning about trouble that may repeat: at most one line per key every 10 s."""
        now = time.monotonic()
        with self._warn_lock:
            if now - self._warned.get(key, -1e9) < 10:
                return
            self._warned[key] = now
        self.log("WARN", message, **fields)

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))

    def guarded(self, body):
        try:
            body()
        except Exception:  # noqa: BLE001 - a mapping that dies says why
            self.log("ERROR", "event source mapping failed", error=traceback.format_exc())
        finally:
            self.ready.set()


class Shard:
    def __init__(self, shard_id, parent, iterator_type):
        self.id = shard_id
        self.parent = parent
        self.iterator_type = iterator_type  # for the first iterator
        self.iterator = None
        self.read_seq = None                # the last SequenceNumber read (for a fresh iterator)
        self.pending = collections.deque()  # records read that passed the filter, not yet done
        self.closed = False                 # no NextShardIterator: nothing more to read
        self.done = False                   # closed and every record done
        self.attempts = 0                   # failed invocations of the batch at the head


class StreamMapping(Mapping):
    """A DynamoDB stream feeding a function, as Lambda's event source mapping does."""

    KEYS = {"endpoint", "arn", "table", "starting_position", "batch_size", "maximum_retry_attempts",
            "function_response_type", "filter_patterns", "poll_interval"}

    def __init__(self, fn, spec, region, stopping):
        super().__init__(fn, spec, region, stopping)
        self.endpoint = spec["endpoint"]
        self.arn = spec.get("arn")
        self.table = spec.get("table")
        self.position = spec.get("starting_position", "TRIM_HORIZON")
        self.batch_size = int(spec.get("batch_size", 100))
        self.max_retries = int(spec.get("maximum_retry_attempts", -1))
        self.poll_interval = float(spec.get("poll_interval", 0.25))
        self.shards = collections.OrderedDict()
        self.threads = [threading.Thread(target=self.guarded, args=(self.run,), daemon=True,
                                         name="stream-" + fn.name)]

    @classmethod
    def check(cls, spec, where):
        if not isinstance(spec.get("endpoint"), str) or not (spec.get("arn") or spec.get("table")):
            raise ValueError("%s: a stream needs endpoint and arn or table" % where)
        if spec.get("starting_position", "TRIM_HORIZON") not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("%s: starting_position is TRIM_HORIZON or LATEST" % where)
        if not 1 <= int(spec.get("batch_size", 100)) <= 10000:
            raise ValueError("%s: batch_size is 1 to 10000" % where)

    def streams(self, op, payload):
        return aws_json(self.endpoint, "DynamoDBStreams_20120810." + op, payload, self.region, "dynamodb")

    def resolve(self):
        """The stream's ARN: given, or the table's LatestStreamArn. False when stopping first."""
        while not self.stopping.is_set():
            try:
                if self.arn:
                    self.streams("DescribeStream", {"StreamArn": self.arn, "Limit": 1})
                    return True
                t = aws_json(self.endpoint, "DynamoDB_20120810.DescribeTable", {"TableName": self.table},
                             self.region, "dynamodb")["Table"]
                if t.get("LatestStreamArn"):
                    self.arn = t["LatestStreamArn"]
                    return True
                self.warn("resolve", "the table has no stream", table=self.table)
            except (OSError, AwsError) as e:
                self.warn("resolve", "cannot find the stream", table=self.table, arn=self.arn, error=str(e))
            self.stopping.wait(0.5)
        return False

    def discover(self, first):
        """Add the shards not seen yet, each with its first iterator."""
        found, start = [], None
        while True:
            req = {"StreamArn": self.arn}
            if start:
                req["ExclusiveStartShardId"] = start
            d = self.streams("DescribeStream", req)["StreamDescription"]
            found += d.get("Shards") or []
            start = d.get("LastEvaluatedShardId")
            if not start:
                break
        for s in found:
            if s["ShardId"] in self.shards:
                continue
            closed = "EndingSequenceNumber" in (s.get("SequenceNumberRange") or {})
            st = Shard(s["ShardId"], s.get("ParentShardId"), self.position if first else "TRIM_HORIZON")
            st.done = st.iterator_type == "LATEST" and closed  # nothing will come after its end
            if not st.done:
                st.iterator = self.new_iterator(st)
            self.shards[st.id] = st
            self.log("INFO", "stream shard", stream=self.arn, shard=st.id, parent=st.parent,
                     iterator_type=st.iterator_type, skipped=st.done)

    def new_iterator(self, st):
        req = {"StreamArn": self.arn, "ShardId": st.id}
        if st.read_seq:
            req.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=st.read_seq)
        else:
            req["ShardIteratorType"] = st.iterator_type
        return self.streams("GetShardIterator", req)["ShardIterator"]

    def parent_done(self, st):
        parent = self.shards.get(st.parent) if st.parent else None
        return parent is None or parent.done

    def run(self):
        if not self.resolve():
            return
        first, described = True, 0.0
        while not self.stopping.is_set():
            busy = False
            try:
                if first or time.monotonic() - described >= 1.0:
                    self.discover(first)
                    first, described = False, time.monotonic()
                    self.ready.set()
                for st in list(self.shards.values()):
                    if self.stopping.is_set():
                        break
                    if not st.done and self.parent_done(st):
                        busy = self.poll(st) or busy
            except (OSError, AwsError) as e:
                self.warn("poll", "cannot read the stream", stream=self.arn, error=str(e))
                self.stopping.wait(0.5)
                continue
            if not busy:
                self.stopping.wait(self.poll_interval)

    def poll(self, st):
        """Read from a shard and work one batch. True when something happened."""
        got = False
        if len(st.pending) < self.batch_size and not st.closed:
            try:
                if st.iterator is None:
                    st.iterator = self.new_iterator(st)
                r = self.streams("GetRecords", {"ShardIterator": st.iterator, "Limit": 1000})
            except AwsError as e:
                if e.type == "ExpiredIteratorException":
                    st.iterator = None
                    return True
                if e.type == "TrimmedDataAccessException":  # what we would read next is gone
                    self.log("WARN", "stream records trimmed before they were read", shard=st.id)
                    st.iterator, st.read_seq, st.iterator_type = None, None, "TRIM_HORIZON"
                    return True
                if e.type == "ResourceNotFoundException":
                    self.log("WARN", "stream shard gone", shard=st.id, error=str(e))
                    st.closed = True
                    return True
                raise
            st.iterator = r.get("NextShardIterator")
            st.closed = not st.iterator
            for rec in r.get("Records") or []:
                got = True
                st.read_seq = (rec.get("dynamodb") or {}).get("SequenceNumber") or st.read_seq
                rec["eventSourceARN"] = self.arn
                rec["awsRegion"] = self.region
                if matches_any(self.patterns, rec):
                    st.pending.append(rec)
        if st.pending:
            self.work(st)
            return True
        if st.closed:
            st.done = True
            self.log("INFO", "stream shard finished", shard=st.id)
            return True
        return got

    def first_failure(self, inv, batch):
        """The index in batch of the first record to retry, or None when the batch is done."""
        outcome, payload, _ = inv.result
        if outcome != "response":
            return 0
        if not self.report:
            return None
        ids = batch_item_failures(payload)
        if ids is None:
            self.log("WARN", "invalid partial batch response: the whole batch is retried",
                     request_id=inv.request_id, response=(payload or b"")[:300].decode("utf-8", "replace"))
            return 0
        if not ids:
            return None
        where = {(r.get("dynamodb") or {}).get("SequenceNumber"): i for i, r in enumerate(batch)}
        if any(i not in where for i in ids):
            self.log("WARN", "partial batch response names no record of the batch: the whole batch is "
                     "retried", request_id=inv.request_id, identifiers=ids)
            return 0
        return min(where[i] for i in ids)

    def work(self, st):
        batch = [st.pending[i] for i in range(min(self.batch_size, len(st.pending)))]
        batch = batch[:records_that_fit(batch, MAX_FUNCTION_REQUEST)]
        inv = self.fn.invoke({"Records": batch})
        if inv is None:
            return
        failed = self.first_failure(inv, batch)
        done = len(batch) if failed is None else failed
        for _ in range(done):
            st.pending.popleft()
        seqs = [(r.get("dynamodb") or {}).get("SequenceNumber") for r in batch]
        fields = {"shard": st.id, "records": len(batch), "first_sequence": seqs[0], "last_sequence": seqs[-1],
                  "done": done, "request_id": inv.request_id, "outcome": inv.result[0]}
        if inv.result[0] == "error":
            fields["function_error"] = inv.result[2]
        if failed is None:
            st.attempts = 0
            self.log("INFO", "stream batch", **fields)
            return
        if done:
            st.attempts = 0  # progress: the head is another record now
        st.attempts += 1
        fields.update(failed_sequence=seqs[failed], attempt=st.attempts)
        if 0 <= self.max_retries < st.attempts:
            rec = st.pending.popleft()
            st.attempts = 0
            self.log("INFO", "stream batch", **fields)
            self.log("WARN", "record skipped", shard=st.id, sequence_number=seqs[failed],
                     event_id=rec.get("eventID"), event_name=rec.get("eventName"),
                     attempts=self.max_retries + 1)
            return
        self.log("INFO", "stream batch", retry=True, **fields)
        self.stopping.wait(min(1.0, 0.1 * 2 ** (st.attempts - 1)))


class SqsMapping(Mapping):
    """An SQS queue feeding a function, as Lambda's event source mapping does."""

    KEYS = {"endpoint", "queue_url", "queue", "arn", "batch_size", "maximum_concurrency", "wait_time_seconds",
            "function_response_type", "filter_patterns"}

    def __init__(self, fn, spec, region, stopping):
        super().__init__(fn, spec, region, stopping)
        self.endpoint = spec["endpoint"]
        self.url = spec.get("queue_url")
        self.queue = spec.get("queue") or (self.url or "").rstrip("/").rpartition("/")[2]
        self.arn = spec.get("arn") or "arn:aws:sqs:%s:%s:%s" % (region, ACCOUNT_ID, self.queue)
        self.batch_size = int(spec.get("batch_size", 10))
        self.wait_seconds = int(spec.get("wait_time_seconds", 1))
        pollers = int(spec.get("maximum_concurrency", fn.config.concurrency))
        self.url_lock = threading.Lock()
        self.threads = [threading.Thread(target=self.guarded, args=(self.run,), daemon=True,
                                         name="sqs-%s-%d" % (fn.name, i)) for i in range(max(1, pollers))]
        self.ready.set()

    @classmethod
    def check(cls, spec, where):
        if not isinstance(spec.get("endpoint"), str) or not (spec.get("queue_url") or spec.get("queue")):
            raise ValueError("%s: an sqs mapping needs endpoint and queue_url or queue" % where)
        if not 1 <= int(spec.get("batch_size", 10)) <= 10:
            raise ValueError("%s: batch_size is 1 to 10 (one ReceiveMessage per invocation)" % where)
        if not 0 <= int(spec.get("wait_time_seconds", 1)) <= 20:
            raise ValueError("%s: wait_time_seconds is 0 to 20" % where)

    def sqs(self, op, payload, timeout=10.0):
        return aws_json(self.endpoint, "AmazonSQS." + op, payload, self.region, "sqs", timeout)

    def resolve(self):
        with self.url_lock:
            while self.url is None and not self.stopping.is_set():
                try:
                    self.url = self.sqs("GetQueueUrl", {"QueueName": self.queue})["QueueUrl"]
                except (OSError, AwsError) as e:
                    self.warn("resolve", "cannot find the queue", queue=self.queue, error=str(e))
                    self.stopping.wait(0.5)
        return self.url is not None

    def run(self):
        if not self.resolve():
            return
        while not self.stopping.is_set():
            try:
                r = self.sqs("ReceiveMessage", {
                    "QueueUrl": self.url, "MaxNumberOfMessages": self.batch_size,
                    "WaitTimeSeconds": self.wait_seconds, "AttributeNames": ["All"],
                    "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]},
                    timeout=self.wait_seconds + 10)
            except (OSError, AwsError) as e:
                self.warn("receive", "cannot receive from the queue", queue=self.queue, error=str(e))
                self.stopping.wait(0.5)
                continue
            messages = r.get("Messages") or []
            if not messages:
                if self.wait_seconds == 0:
                    self.stopping.wait(0.1)
                continue
            if self.stopping.is_set():
                break  # not deleted: they come back after their visibility timeout
            self.work([self.record(m) for m in messages])

    def record(self, m):
        """A ReceiveMessage message as a record of Lambda's SQS event."""
        attributes = {}
        for name, a in (m.get("MessageAttributes") or {}).items():
            v = {}
            if "StringValue" in a:
                v["stringValue"] = a["StringValue"]
            if "BinaryValue" in a:
                v["binaryValue"] = a["BinaryValue"]
            v["stringListValues"] = a.get("StringListValues") or []
            v["binaryListValues"] = a.get("BinaryListValues") or []
            v["dataType"] = a.get("DataType")
            attributes[name] = v
        return {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m.get("Body", ""),
                "attributes": {k: str(v) for k, v in (m.get("Attributes") or {}).items()},
                "messageAttributes": attributes, "md5OfBody": m.get("MD5OfBody"),
                "md5OfMessageAttributes": m.get("MD5OfMessageAttributes"),
                "eventSource": "aws:sqs", "eventSourceARN": self.arn, "awsRegion": self.region}

    def passes(self, rec):
        view = dict(rec)
        try:
            body = json.loads(rec["body"])
            if isinstance(body, (dict, list)):
                view["body"] = body
        except ValueError:
            pass
        return matches_any(self.patterns, view)

    def work(self, records):
        if self.patterns:
            dropped = [r for r in records if not self.passes(r)]
            if dropped:  # Lambda deletes what no filter lets through
                self.delete(dropped)
                self.log("INFO", "sqs filtered", queue=self.queue, message_ids=[r["messageId"] for r in dropped])
            records = [r for r in records if r not in dropped]
            if not records:
                return
        inv = self.fn.invoke({"Records": records})
        if inv is None:
            return  # stopping: nothing deleted, they come back
        outcome, payload, error_type = inv.result
        ids = [r["messageId"] for r in records]
        fields = {"queue": self.queue, "request_id": inv.request_id, "outcome": outcome, "message_ids": ids,
                  "receive_counts": [r["attributes"].get("ApproximateReceiveCount") for r in records]}
        if outcome != "response":
            keep = set(ids)
            fields["function_error"] = error_type
        elif not self.report:
            keep = set()
        else:
            failures = batch_item_failures(payload)
            if failures is None or any(f not in ids for f in failures):
                self.log("WARN", "invalid partial batch response: every message is kept", queue=self.queue,
                         request_id=inv.request_id, response=(payload or b"")[:300].decode("utf-8", "replace"))
                keep = set(ids)
            else:
                keep = set(failures)
        done = [r for r in records if r["messageId"] not in keep]
        deleted = self.delete(done)
        self.log("INFO", "sqs batch", deleted=deleted, kept=sorted(keep), **fields)

    def delete(self, records):
        """DeleteMessageBatch, 10 at a time; the message ids deleted."""
        deleted = []
        for i in range(0, len(records), 10):
            chunk = records[i:i + 10]
            entries = [{"Id": "m%d" % j, "ReceiptHandle": r["receiptHandle"]} for j, r in enumerate(chunk)]
            try:
                r = self.sqs("DeleteMessageBatch", {"QueueUrl": self.url, "Entries": entries})
            except (OSError, AwsError) as e:
                self.log("WARN", "cannot delete messages; they will come back", queue=self.queue, error=str(e))
                continue
            ok = {e.get("Id") for e in r.get("Successful") or []}
            for j, rec in enumerate(chunk):
                if "m%d" % j in ok:
                    deleted.append(rec["messageId"])
            for f in r.get("Failed") or []:
                self.log("WARN", "cannot delete a message; it will come back", queue=self.queue, failure=f)
        return deleted


MAPPING_KINDS = {"stream": StreamMapping, "sqs": SqsMapping}
MAPPING_READY_TIMEOUT = 20.0  # seconds for the stream mappings to place their first iterators


# ---------------------------------------------------------------------------------------------
# main

class Config:
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(description="Run a Lambda custom-runtime bootstrap behind an API Gateway stand-in.")
    p.add_argument("--bootstrap", help="the bootstrap executable (in stack mode: the functions' default)")
    p.add_argument("--handler", help="_HANDLER of the function (e.g. api)")
    p.add_argument("--stack", metavar="FILE", help="run the functions and event source mappings FILE describes")
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
    if a.stack:
        try:
            return load_stack(a.stack, a.bootstrap)
        except (OSError, ValueError) as e:
            p.error("stack %s: %s" % (a.stack, e))
    if not a.bootstrap or not a.handler:
        p.error("--bootstrap and --handler are required (or --stack)")
    c = Config()
    c.bootstrap = a.bootstrap
    c.handler = a.handler
    c.key = a.handler
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
    c.tracing = "PassThrough"
    c.log_fields = {}
    c.events = []
    c.stack = None
    if not (os.path.isfile(c.bootstrap) and os.access(c.bootstrap, os.X_OK)):
        p.error("bootstrap not found or not executable: %s" % c.bootstrap)
    return c


STACK_KEYS = {"region", "service", "stage", "bootstrap", "environment", "invoke_api", "functions", "tracing"}
FUNCTION_KEYS = {"handler", "bootstrap", "concurrency", "timeout", "init_timeout", "memory", "environment",
                 "function_name", "tracing", "http", "events"}
HTTP_KEYS = {"listen", "payload", "gateway_timeout"}


def _only(obj, keys, where):
    if not isinstance(obj, dict):
        raise ValueError("%s is not an object" % where)
    extra = sorted(set(obj) - keys)
    if extra:
        raise ValueError("%s: unknown keys %s (known: %s)" % (where, extra, sorted(keys)))


def _environment(obj, where):
    obj = obj or {}
    if not isinstance(obj, dict) or not all(_is_scalar(v) and v is not None for v in obj.values()):
        raise ValueError("%s: environment maps names to strings" % where)
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}


def load_stack(path, default_bootstrap=None):
    """The Config of every function a stack description declares (see the module comment).
    ValueError (or OSError) naming what is wrong."""
    with open(path, encoding="utf-8") as f:
        stack = json.load(f)
    _only(stack, STACK_KEYS, "the stack")
    region = stack.get("region", "eu-west-1")
    prefix = "%s-%s-" % (stack.get("service", "taskd"), stack.get("stage", "dev"))
    common = _environment(stack.get("environment"), "the stack")
    functions = stack.get("functions")
    if not isinstance(functions, dict) or not functions:
        raise ValueError("no functions")
    configs = []
    for key, d in functions.items():
        where = "functions.%s" % key
        _only(d, FUNCTION_KEYS, where)
        c = Config()
        c.key = key
        c.handler = d.get("handler")
        if not isinstance(c.handler, str) or not c.handler:
            raise ValueError("%s: no handler" % where)
        c.bootstrap = d.get("bootstrap") or stack.get("bootstrap") or default_bootstrap
        if not c.bootstrap or not (os.path.isfile(c.bootstrap) and os.access(c.bootstrap, os.X_OK)):
            raise ValueError("%s: bootstrap not found or not executable: %s" % (where, c.bootstrap))
        c.concurrency = max(1, int(d.get("concurrency", 1)))
        c.timeout = float(d.get("timeout", 30))
        c.init_timeout = float(d.get("init_timeout", 10))
        c.memory = int(d.get("memory", 128))
        c.region = region
        c.env = dict(common)
        c.env.update(_environment(d.get("environment"), where))
        c.function_name = d.get("function_name") or prefix + key
        c.function_arn = "arn:aws:lambda:%s:%s:function:%s" % (region, ACCOUNT_ID, c.function_name)
        c.tracing = d.get("tracing", stack.get("tracing", "PassThrough"))
        if c.tracing not in ("Active", "PassThrough"):
            raise ValueError("%s: tracing is Active or PassThrough" % where)
        c.log_fields = {"function": key}
        c.bench_init = 0
        http_front = d.get("http")
        c.listen, c.payload, c.gateway_timeout = None, "1.0", GATEWAY_TIMEOUT
        if http_front is not None:
            _only(http_front, HTTP_KEYS, where + ".http")
            c.listen = http_front.get("listen", "127.0.0.1:0")
            c.payload = http_front.get("payload", "1.0")
            c.gateway_timeout = float(http_front.get("gateway_timeout", GATEWAY_TIMEOUT))
            if c.payload not in ("1.0", "2.0"):
                raise ValueError("%s.http: payload is 1.0 or 2.0" % where)
        c.events = []
        for i, ev in enumerate(d.get("events") or []):
            ewhere = "%s.events[%d]" % (where, i)
            if not isinstance(ev, dict) or len(ev) != 1 or next(iter(ev)) not in MAPPING_KINDS:
                raise ValueError("%s: one of %s" % (ewhere, sorted(MAPPING_KINDS)))
            kind, spec = next(iter(ev.items()))
            cls = MAPPING_KINDS[kind]
            _only(spec, cls.KEYS, "%s.%s" % (ewhere, kind))
            cls.check(spec, ewhere)
            load_patterns(spec.get("filter_patterns"), ewhere)
            c.events.append((kind, spec))
        configs.append(c)
    names = [c.function_name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError("two functions with one name")
    marker = Config()
    marker.stack = configs
    marker.invoke_api = stack.get("invoke_api", "127.0.0.1:0")
    marker.bench_init = 0
    return marker


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


def _bind(server_class, handler, address):
    host, _, port = address.rpartition(":")
    return server_class((host or "127.0.0.1", int(port)), handler)


def serve(configs, invoke_api=None):
    """Run the functions (their fronts, mappings and the Invoke API) until SIGTERM or SIGINT."""
    stop = threading.Event()
    stopping = threading.Event()
    stack = invoke_api is not None

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    servers = []  # (config or None for the Invoke API, server)
    for c in configs + ([None] if stack else []):
        address = c.listen if c is not None else invoke_api
        if not address:
            continue
        try:
            servers.append((c, _bind(FrontServer if c is not None else InvokeServer,
                                     FrontHandler if c is not None else InvokeHandler, address)))
        except (OSError, ValueError) as e:
            log("ERROR", "cannot listen", address=address, error=str(e))
            for _, srv in servers:
                srv.server_close()
            return 1
    functions = [Function(c, stopping) for c in configs]
    for c, srv in servers:
        if c is None:
            srv.functions = functions
        else:
            srv.config, srv.pool, srv.stopping = c, functions[configs.index(c)].pool, stopping
    for fn in functions:
        fn.start()
    slots = [s for fn in functions for s in fn.slots]
    while not all(s.settled.wait(0.05) for s in slots):
        if stop.is_set():
            break
    mappings = []
    if not stop.is_set():
        region = configs[0].region
        mappings = [MAPPING_KINDS[kind](fn, spec, fn.config.region or region, stopping)
                    for fn in functions for kind, spec in fn.config.events]
        for m in mappings:
            m.start()
        deadline = time.monotonic() + MAPPING_READY_TIMEOUT
        for m in mappings:
            while not m.ready.wait(0.05) and not stop.is_set() and time.monotonic() < deadline:
                pass
            if not m.ready.is_set() and not stop.is_set():
                m.log("WARN", "event source mapping not ready; going on")
    serving = not stop.is_set()
    if serving:
        for _, srv in servers:
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        fronts = ["%s:%d" % srv.server_address[:2] for c, srv in servers if c is not None]
        fields = {}
        if stack:
            fields["functions"] = {
                fn.name: {"function_name": fn.config.function_name, "arn": fn.config.function_arn,
                          "address": next(("%s:%d" % srv.server_address[:2] for c, srv in servers
                                           if c is fn.config), None)} for fn in functions}
            fields["invoke_api"] = next(("%s:%d" % srv.server_address[:2] for c, srv in servers if c is None),
                                        None)
        log("INFO", "listening", address=fronts[0] if fronts else None, **fields)
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:  # whoever started us is gone (e.g. a killed test run)
            log("WARN", "parent process gone: stopping")
            break

    # Shutdown: stop accepting and polling, give the runtimes their SIGTERM, SIGKILL after the grace.
    stopping.set()
    for _, srv in servers:
        if serving:
            srv.shutdown()
        srv.server_close()
    for fn in functions:
        for inv in fn.pool.close():
            inv.finish(*stopping_result(inv))
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
    for m in mappings:
        m.join(2)
    for s in slots:
        s.log("INFO", "environment", env=s.index, max_rss_kb=s.max_rss_kb, starts=s.generation)
    return 0


def main(argv=None):
    config = parse_args(sys.argv[1:] if argv is None else argv)
    if config.stack is not None:
        return serve(config.stack, config.invoke_api or "127.0.0.1:0")
    if config.bench_init > 0:
        return bench_init(config)
    return serve([config])


if __name__ == "__main__":
    sys.exit(main())
