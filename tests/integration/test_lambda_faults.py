"""bootstrap (role api) when DynamoDB misbehaves: throttled past the deadline, a missing table,
nothing listening, an endpoint that never answers. Each gives a client a 503 with Retry-After and
a JSON detail, inside the function's deadline, and a log line that says what happened.

Runs bootstrap behind the Lambda emulator (the lambda target of harness.Taskd) with its DynamoDB
endpoint pointed at a fake server of this file, or at DynamoDB Local with a table that is not there.
"""

import json
import os
import socket
import sys
import threading
import time
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ["TASKD_TARGET"] = "lambda"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Taskd, wait_until  # noqa: E402

FUNCTION_TIMEOUT = 10.0  # the harness's Lambda function timeout


class FakeDynamoDB:
    """Answers every DynamoDB call per mode: 'throttle' (400 ThrottlingException), 'fail' (500),
    or 'hang' (reads the request, never answers). Counts the calls."""

    def __init__(self, mode):
        self.mode = mode
        self.calls = 0
        self.targets = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.calls += 1
                fake.targets.append(self.headers.get("X-Amz-Target", ""))
                if fake.mode == "hang":
                    time.sleep(FUNCTION_TIMEOUT + 5)
                    return
                if fake.mode == "throttle":
                    status, body = 400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                                         "message": "Rate of requests exceeds the allowed throughput."}
                else:
                    status, body = 500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                         "message": "Internal server error"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def logged(server, message):
    """The log lines with this message, waited for: stderr is read by another thread, so a
    line written before the answer may still be on its way when the answer arrives."""
    try:
        return wait_until(lambda: [o for o in logs(server) if o.get("message") == message], 5,
                          what="a %r log line" % message)
    except AssertionError:
        raise AssertionError("no %r log line in:\n%s" % (message, server.stderr_text()[-2000:]))


def logs(server):
    """The JSON log lines the functions wrote (the emulator passes them through)."""
    return server.log_json()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Faults(unittest.TestCase):
    def start(self, env):
        server = Taskd(env=env)
        self.addCleanup(server.close)
        return server

    def assert_unavailable(self, r, took):
        self.assertEqual(r.status, 503, r)
        self.assertIsNotNone(r.header("Retry-After"), r)
        self.assertIsInstance(r.json().get("detail"), str, r)
        self.assertLess(took, FUNCTION_TIMEOUT, "answered after the function's deadline")

    def timed(self, server, method, path, body=None):
        t0 = time.monotonic()
        r = server.request(method, path, body)
        return r, time.monotonic() - t0

    def fake(self, mode):
        f = FakeDynamoDB(mode)
        self.addCleanup(f.close)
        return f

    def test_throttled_past_the_deadline(self):
        f = self.fake("throttle")
        server = self.start({"AWS_ENDPOINT_URL_DYNAMODB": f.endpoint})
        r, took = self.timed(server, "POST", "/tasks", {"task_type": "TASK2"})
        self.assert_unavailable(r, took)
        self.assertGreater(f.calls, 2, "throttling is retried with backoff")
        logged(server, "DynamoDB busy")

    def test_server_errors(self):
        f = self.fake("fail")
        server = self.start({"AWS_ENDPOINT_URL_DYNAMODB": f.endpoint})
        r, took = self.timed(server, "GET", "/tasks/%s" % uuid.uuid4())
        self.assert_unavailable(r, took)
        self.assertGreater(f.calls, 1, "5xx is retried")

    def test_endpoint_that_never_answers(self):
        f = self.fake("hang")
        server = self.start({"AWS_ENDPOINT_URL_DYNAMODB": f.endpoint})
        r, took = self.timed(server, "GET", "/tasks")
        self.assert_unavailable(r, took)

    def test_nothing_listening(self):
        server = self.start({"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:%d" % closed_port()})
        r, took = self.timed(server, "GET", "/health")
        self.assert_unavailable(r, took)

    def test_missing_table(self):
        server = self.start({"TABLE_NAME": "no-such-table-%s" % uuid.uuid4().hex[:8]})
        r, took = self.timed(server, "GET", "/tasks/%s" % uuid.uuid4())
        self.assert_unavailable(r, took)
        lines = logged(server, "DynamoDB table not found")
        self.assertIn("function_request_id", lines[0], "the log line names the invocation")


if __name__ == "__main__":
    unittest.main(verbosity=2)
