#!/usr/bin/env python3
"""A stand-in Lambda custom runtime for the emulator's own tests (standard library only).

It speaks the Runtime API at $AWS_LAMBDA_RUNTIME_API like a real ``bootstrap``: GET /next, then
POST /response or /error, forever; like it, it leaves its environment alone (an invocation's trace
is its Lambda-Runtime-Trace-Id header, never _X_AMZN_TRACE_ID). What it does with an invocation
is its mode: FAKE_MODE in the environment, or, per request, a path starting with /_fake/<mode>
(payload 1.0 and 2.0 alike).

    echo      (default) 200 with a JSON body describing what it received: the method, the path,
              the query, the body (base64 when it came so), the whole event, the Runtime API
              headers of the invocation, its environment and its pid
    binary    200 with the request body sent back as a base64 body (isBase64Encoded), as
              application/octet-stream
    error     POST /error (errorType "FakeError", header Lambda-Runtime-Function-Error-Type)
    crash     exit(3) in the middle of the invocation
    sleep     sleep 30 s past the deadline, then answer (too late)
    slow      sleep FAKE_SLOW_SECONDS (default 1) or the query's ?seconds=, then echo
    malformed answer a response API Gateway cannot use (statusCode missing)
    empty204  204 without a body
    init_error  (FAKE_MODE only) POST /runtime/init/error, then exit 1

FAKE_INIT_SLEEP delays the first /next (seconds). Each invocation logs one JSON line on stderr
({"message": "fake invocation", ...}); SIGTERM logs {"message": "fake shutdown"} and exits 0.
"""

import base64
import http.client
import json
import os
import signal
import sys
import time
from urllib.parse import parse_qs

API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
PREFIX = "/2018-06-01/runtime"


def log(message, **fields):
    obj = {"level": "INFO", "message": message, "service": "fake-bootstrap", "pid": os.getpid()}
    obj.update(fields)
    sys.stderr.write(json.dumps(obj) + "\n")
    sys.stderr.flush()


def on_sigterm(signum, frame):
    log("fake shutdown")
    os._exit(0)


class Runtime:
    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=None)
            try:
                self.conn.request(method, PREFIX + path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def request_of(event):
    """(method, path, query dict of lists, body bytes, was_base64) from a 1.0 or 2.0 event."""
    if event.get("version") == "2.0":
        method = event["requestContext"]["http"]["method"]
        path = event["rawPath"]
        query = parse_qs(event.get("rawQueryString") or "", keep_blank_values=True)
    else:
        method = event["httpMethod"]
        path = event["path"]
        query = event.get("multiValueQueryStringParameters") or {}
    body = event.get("body")
    b64 = bool(event.get("isBase64Encoded"))
    if body is None:
        raw = b""
    elif b64:
        raw = base64.b64decode(body)
    else:
        raw = body.encode("utf-8", "surrogatepass")
    return method, path, query, raw, b64


def handle(rt, rid, headers, event, default_mode):
    method, path, query, raw, b64 = request_of(event)
    mode = default_mode
    if path.startswith("/_fake/"):
        mode = path.split("/")[2]
    log("fake invocation", request_id=rid, mode=mode, method=method, path=path)
    if mode == "crash":
        os._exit(3)
    if mode == "error":
        err = {"errorType": "FakeError", "errorMessage": "failed on purpose", "stackTrace": []}
        rt.call("POST", "/invocation/%s/error" % rid, json.dumps(err).encode(),
                {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Fake.Error"})
        return
    if mode == "sleep":
        left = int(headers.get("lambda-runtime-deadline-ms", "0")) / 1000.0 - time.time()
        time.sleep(max(0.0, left) + 30.0)
    if mode == "slow":
        time.sleep(float((query.get("seconds") or [os.environ.get("FAKE_SLOW_SECONDS", "1")])[0]))
    if mode == "malformed":
        resp = {"body": "no status code", "unexpected": True}
    elif mode == "empty204":
        resp = {"statusCode": 204, "headers": {}, "body": ""}
    elif mode == "binary":
        resp = {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                "body": base64.b64encode(raw).decode("ascii"), "isBase64Encoded": True}
    else:
        runtime_headers = {k: v for k, v in headers.items() if k.startswith("lambda-runtime-")}
        echo = {
            "method": method, "path": path, "query": query,
            "body": base64.b64encode(raw).decode("ascii") if b64 else raw.decode("utf-8", "replace"),
            "isBase64Encoded": b64, "event": event, "runtime": runtime_headers,
            "env": dict(os.environ), "pid": os.getpid(), "cwd": os.getcwd(),
        }
        resp = {"statusCode": 200,
                "headers": {"Content-Type": "application/json", "X-Fake": "yes"},
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
                "body": json.dumps(echo), "isBase64Encoded": False}
        if event.get("version") == "2.0":
            del resp["multiValueHeaders"]
            resp["cookies"] = ["a=1", "b=2"]
    rt.call("POST", "/invocation/%s/response" % rid, json.dumps(resp).encode(),
            {"Content-Type": "application/json"})


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    if not API:
        sys.stderr.write("fake_bootstrap: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 2
    rt = Runtime(API)
    mode = os.environ.get("FAKE_MODE", "echo")
    if mode == "init_error":
        err = {"errorType": "FakeInitError", "errorMessage": "cannot start on purpose"}
        rt.call("POST", "/init/error", json.dumps(err).encode(),
                {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Runtime.FakeInit"})
        return 1
    time.sleep(float(os.environ.get("FAKE_INIT_SLEEP", "0")))
    while True:
        try:
            status, headers, body = rt.call("GET", "/invocation/next")
        except (OSError, http.client.HTTPException):
            return 0  # the runtime API went away
        if status != 200:
            log("fake bad next", status=status)
            return 1
        rid = headers.get("lambda-runtime-aws-request-id")
        handle(rt, rid, headers, json.loads(body), mode)


if __name__ == "__main__":
    sys.exit(main())
