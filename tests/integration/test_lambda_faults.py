"""bootstrap (role api) when DynamoDB misbehaves: throttled past the deadline, a missing table,
nothing listening, an endpoint that never answers. Each gives a client a 503 with Retry-After and
a JSON detail, inside the function's deadline, and a log line that says what happened.

Runs bootstrap behind the Lambda emulator (the lambda target of harness.Taskd) with its DynamoDB
endpoint pointed at a fake server of this file, or at DynamoDB Local with a table that is not there.

Also bootstrap whose stdout fails (on /dev/full, through a wrapper script given as BOOTSTRAP_BIN):
every invocation is answered, each lost metrics write logged, and no process exits.
"""

import json
import os
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
import unittest
import uuid
from unittest import mock

os.environ["TASKD_TARGET"] = "lambda"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LAMBDA_CONCURRENCY, LAMBDA_FUNCTION_TIMEOUT, QuietHandler, Taskd,  # noqa: E402
                     bootstrap_bin, serve_stand_in, wait_until)

# The function's timeout for the tests against a fake endpoint, whose invocations run to the
# deadline (less its reserve for the answer, 500 ms from 5 s up, as at the harness's 10 s): the
# rest have the harness's own, over DynamoDB Local
FUNCTION_TIMEOUT = 5


class FakeDynamoDB:
    """Answers every DynamoDB call per mode: 'throttle' (400 ThrottlingException), 'fail' (500),
    or 'hang' (reads the request, never answers). Counts the calls."""

    def __init__(self, mode):
        self.mode = mode
        self.calls = 0
        self.targets = []
        fake = self

        class Handler(QuietHandler):
            def do_POST(self):
                self.read_body()
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
                self.reply(status, json.dumps(body).encode(), "application/x-amz-json-1.0")

        self.server = serve_stand_in(Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_port

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
    def start(self, env, function_timeout=FUNCTION_TIMEOUT):
        server = Taskd(env=env, function_timeout=function_timeout)
        self.deadline = function_timeout
        self.addCleanup(server.close)
        return server

    def assert_unavailable(self, r, took):
        self.assertEqual(r.status, 503, r)
        self.assertIsNotNone(r.header("Retry-After"), r)
        self.assertIsInstance(r.json().get("detail"), str, r)
        self.assertLess(took, self.deadline, "answered after the function's deadline")

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
        # a create answered 5xx may have been made all the same: the answer says which task
        r, took = self.timed(server, "POST", "/tasks", {"task_type": "TASK2"})
        self.assert_unavailable(r, took)
        m = re.match(r"The task store did not confirm the write; the task may have been created "
                     r"as ([0-9a-f-]{36}): GET /tasks/\1 tells before you create it again$",
                     r.json()["detail"])
        self.assertIsNotNone(m, r)

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
        server = self.start({"TABLE_NAME": "no-such-table-%s" % uuid.uuid4().hex[:8]},
                            LAMBDA_FUNCTION_TIMEOUT)
        r, took = self.timed(server, "GET", "/tasks/%s" % uuid.uuid4())
        self.assert_unavailable(r, took)
        lines = logged(server, "DynamoDB table not found")
        self.assertIn("function_request_id", lines[0], "the log line names the invocation")

    def test_stdout_that_fails(self):
        """stdout on /dev/full: no invocation's metrics (EMF lines on stdout) can be written. Each
        invocation is still answered, the lost write is logged with its request id, and the
        process serves the next invocation: one more invocation than there are environments
        makes one environment serve two, the second of them no cold start, with no restart."""
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        tmp = tempfile.mkdtemp(prefix="taskd-it-")
        self.addCleanup(shutil.rmtree, tmp, True)
        wrapper = os.path.join(tmp, "bootstrap")
        with open(wrapper, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\nexec %s >/dev/full\n" % shlex.quote(os.path.abspath(bootstrap_bin())))
        os.chmod(wrapper, 0o755)
        with mock.patch.dict(os.environ, {"BOOTSTRAP_BIN": wrapper}):
            server = self.start({}, LAMBDA_FUNCTION_TIMEOUT)
        n = LAMBDA_CONCURRENCY + 1
        for _ in range(n):
            r = server.request("GET", "/health")
            self.assertEqual(r.status, 200, r)

        def emulator_lines(message):
            return [o for o in logs(server) if o.get("message") == message and o.get("service") == "emulator"]
        invocations = wait_until(lambda: len(emulator_lines("invocation")) >= n and emulator_lines("invocation"),
                                 5, what="%d invocation log lines" % n)
        self.assertEqual([o.get("status") for o in invocations], [200] * n, invocations)
        ids = {o["request_id"] for o in invocations}
        self.assertEqual(len(ids), n)
        message = "cannot write the invocation's metrics"

        def failed_writes():
            lines = [o for o in logs(server) if o.get("message") == message]
            return lines if {o.get("function_request_id") for o in lines} >= ids else None
        try:
            lines = wait_until(failed_writes, 5, what="a %r line per invocation" % message)
        except AssertionError:
            raise AssertionError("not a %r line for each of %s in:\n%s"
                                 % (message, sorted(ids), server.stderr_text()[-4000:]))
        self.assertEqual(len(lines), n, lines)
        for o in lines:
            self.assertEqual(o.get("error"), "stdout failed", o)
        self.assertIn("false", [o.get("cold_start") for o in lines],
                      "no environment served a second invocation after a failed write")
        # no environment exited and was started again
        self.assertEqual(len(emulator_lines("init")), LAMBDA_CONCURRENCY, server.stderr_text()[-4000:])
        for exited in ("environment exited", "environment exited during an invocation", "environment failed"):
            self.assertEqual(emulator_lines(exited), [], server.stderr_text()[-4000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
