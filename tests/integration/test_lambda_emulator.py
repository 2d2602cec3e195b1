"""The Lambda emulator (tests/lambda/emulator.py) itself, driven with a fake bootstrap written in
Python (tests/lambda/fake_bootstrap.py): the events it builds, the Runtime API it serves, what
API Gateway answers for errors, crashes and timeouts, and its environments' life cycle.
Needs neither DynamoDB nor a C build."""

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Response, dies_with_test, raw_exchange, wait_until  # noqa: E402

LAMBDA_DIR = os.path.join(REPO, "tests", "lambda")
sys.path.insert(0, LAMBDA_DIR)
from emulator import GATEWAY_TIMEOUT  # noqa: E402
EMULATOR = os.path.join(LAMBDA_DIR, "emulator.py")
FAKE = os.path.join(LAMBDA_DIR, "fake_bootstrap.py")
TRACE_RE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$")
# The emulator's limit of an init (Lambda's, its default, is 10 s), which no test here is about:
# at a load of 31 an init of the fake took up to 10 s, and failed past it. An init that never
# reaches its first /next still fails at it, and the emulator listens then, as after any init.
INIT_TIMEOUT = 60.0
# The wait for the emulator's "listening" line, which comes once every environment's init has
# ended (the emulator's own start took up to 12 s, and the start with an init 26 s, at a load of
# 31): it guards against an emulator that never listens, and holds past the longest init.
START_TIMEOUT = INIT_TIMEOUT + 60.0
# The wait for an answer from the emulator's front: it answers every request by its gateway
# timeout (API Gateway's 29 s, a 504), so this guards against a front that never answers. An
# answer may take a whole init first (a fresh environment after a crash or a timeout, or each
# request of a function whose init fails): at a load of 50-60 a request of InitError took 10-16 s.
REQUEST_TIMEOUT = GATEWAY_TIMEOUT + 30.0


class Emulator:
    """One emulator process running the fake bootstrap."""

    def __init__(self, *args, fn_env=None, proc_env=None):
        self.lines = []
        self.lock = threading.Lock()
        self.listening = threading.Event()
        self.address = None
        argv = [sys.executable, "-B", EMULATOR, "--bootstrap", FAKE, "--handler", "api",
                "--init-timeout", str(INIT_TIMEOUT)] + list(args)
        for k, v in (fn_env or {}).items():
            argv += ["--env", "%s=%s" % (k, v)]
        env = dict(os.environ)
        env.update(proc_env or {})
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=dies_with_test())
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        if not self.listening.wait(START_TIMEOUT):
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("emulator not listening after %.0f s:\n%s" % (START_TIMEOUT, self.text()))
        self.port = int(self.address.rpartition(":")[2])

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            if not self.listening.is_set():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("message") == "listening":
                    self.address = obj["address"]
                    self.listening.set()

    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def logs(self, message=None):
        out = []
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and (message is None or obj.get("message") == message):
                out.append(obj)
        return out

    def wait_log(self, message, pred=lambda o: True, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [o for o in self.logs(message) if pred(o)]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError("no %r log line; stderr:\n%s" % (message, self.text()[-3000:]))

    def request(self, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT, header_list=()):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            hdrs = dict(headers or {})
            if body is not None:
                hdrs.setdefault("Content-Length", str(len(body)))
            for k, v in hdrs.items():
                c.putheader(k, v)
            for k, v in header_list:
                c.putheader(k, v)
            c.endheaders(body)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def echo(self, method="GET", path="/", body=None, headers=None, header_list=()):
        r = self.request(method, path, body, headers, header_list=header_list)
        if r.status != 200:
            raise AssertionError("%s %s -> %r" % (method, path, r))
        return r.json()

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("emulator did not exit within %.0f s" % timeout)
        self.reader.join(5)
        self.proc.stderr.close()
        return self.proc.returncode


class EmulatorTestCase(unittest.TestCase):
    emulator_args = ()
    fn_env = {}
    proc_env = {}
    emu = None

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(*cls.emulator_args, fn_env=cls.fn_env, proc_env=cls.proc_env)

    @classmethod
    def tearDownClass(cls):
        if cls.emu is not None:
            rc = cls.emu.stop()
            if rc != 0:
                raise AssertionError("emulator exited %s; stderr:\n%s" % (rc, cls.emu.text()[-3000:]))

    def assertGatewayError(self, r, status, message):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.header("Content-Type", "").startswith("application/json"), r.headers)
        self.assertEqual(r.json(), {"message": message})


class RestApiEvents(EmulatorTestCase):
    """Payload 1.0 (the default), two environments, a 2 s function timeout."""

    emulator_args = ("--concurrency", "2", "--timeout", "2")
    fn_env = {"FOO": "bar=baz", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}
    proc_env = {"EMULATOR_TEST_SENTINEL": "leak", "ASAN_OPTIONS": "detect_leaks=1"}

    def test_event_shape(self):
        t0 = int(time.time() * 1000)
        out = self.emu.echo("GET", "/tasks/a%20b?x=1&x=2&empty=&u=%C3%BC",
                            header_list=[("X-Multi", "one"), ("X-Multi", "two")],
                            headers={"User-Agent": "emulator-test"})
        e = out["event"]
        self.assertEqual(e["resource"], "/{proxy+}")
        self.assertEqual(e["path"], "/tasks/a b")
        self.assertEqual(e["httpMethod"], "GET")
        self.assertEqual(e["headers"]["X-Multi"], "two")
        self.assertEqual(e["multiValueHeaders"]["X-Multi"], ["one", "two"])
        self.assertEqual(e["headers"]["User-Agent"], "emulator-test")
        self.assertEqual(e["queryStringParameters"], {"x": "2", "empty": "", "u": "\u00fc"})
        self.assertEqual(e["multiValueQueryStringParameters"], {"x": ["1", "2"], "empty": [""], "u": ["\u00fc"]})
        self.assertEqual(e["pathParameters"], {"proxy": "tasks/a b"})
        self.assertIsNone(e["stageVariables"])
        self.assertIsNone(e["body"])
        self.assertIs(e["isBase64Encoded"], False)
        ctx = e["requestContext"]
        self.assertEqual(ctx["stage"], "dev")
        self.assertEqual(ctx["path"], "/tasks/a b")  # a custom domain without a base path
        self.assertEqual(ctx["httpMethod"], "GET")
        self.assertEqual(ctx["protocol"], "HTTP/1.1")
        self.assertEqual(ctx["identity"]["sourceIp"], "127.0.0.1")
        self.assertEqual(ctx["accountId"], "000000000000")
        self.assertTrue(ctx["apiId"])
        self.assertEqual(uuid.UUID(ctx["requestId"]).version, 4)
        self.assertTrue(t0 - 1000 <= ctx["requestTimeEpoch"] <= time.time() * 1000 + 1000, ctx)
        # API Gateway's own headers: the trace header, the same as the runtime's trace id.
        self.assertEqual(e["headers"]["X-Amzn-Trace-Id"], out["runtime"]["lambda-runtime-trace-id"])
        self.assertEqual(e["headers"]["X-Forwarded-For"], "127.0.0.1")

    def test_stage_path(self):
        """Under /dev, the stage's execute-api URL: the stage is in requestContext.path only."""
        for url, path, full in (("/dev/tasks/a%20b?x=1", "/tasks/a b", "/dev/tasks/a b"),
                                ("/dev/tasks/", "/tasks/", "/dev/tasks/"), ("/dev", "/", "/dev"),
                                ("/development/tasks", "/development/tasks", "/development/tasks")):
            with self.subTest(url=url):
                e = self.emu.echo("GET", url)["event"]
                self.assertEqual((e["path"], e["requestContext"]["path"]), (path, full))
                self.assertEqual(e["requestContext"]["stage"], "dev")
                self.assertEqual(e["pathParameters"], {"proxy": path.lstrip("/")} if path != "/" else None)

    def test_no_query_and_json_body(self):
        body = json.dumps({"task_type": "TASK2", "data": {"k": "\u00fc\U0001F600"}}).encode()
        out = self.emu.echo("POST", "/tasks", body, headers={"Content-Type": "application/json"})
        e = out["event"]
        self.assertIsNone(e["queryStringParameters"])
        self.assertIsNone(e["multiValueQueryStringParameters"])
        self.assertEqual(e["body"], body.decode())
        self.assertIs(e["isBase64Encoded"], False)
        self.assertEqual(e["headers"]["Content-Type"], "application/json")
        root = self.emu.echo("GET", "/")["event"]
        self.assertEqual((root["path"], root["resource"], root["pathParameters"]), ("/", "/", None))

    def test_runtime_headers(self):
        before = time.time() * 1000
        out = self.emu.echo("GET", "/x")
        rt = out["runtime"]
        self.assertEqual(uuid.UUID(rt["lambda-runtime-aws-request-id"]).version, 4)
        deadline = int(rt["lambda-runtime-deadline-ms"])
        self.assertTrue(before + 2000 - 500 <= deadline <= time.time() * 1000 + 2000 + 500,
                        "deadline %d not about now + 2 s" % deadline)
        self.assertEqual(rt["lambda-runtime-invoked-function-arn"],
                         "arn:aws:lambda:eu-west-1:000000000000:function:taskd-dev-api")
        self.assertRegex(rt["lambda-runtime-trace-id"], TRACE_RE)
        epoch = int(rt["lambda-runtime-trace-id"].split("-")[1], 16)
        self.assertLess(abs(epoch - time.time()), 60)
        # The trace comes in the header alone: neither the emulator nor the function (a
        # stand-in for bootstrap, which leaves its environment alone) puts it in the environment.
        self.assertNotIn("_X_AMZN_TRACE_ID", out["env"])
        # A caller's trace: its Root is kept, with a new Parent.
        root = "1-5759e988-bd862e3fe1be46a994272793"
        out = self.emu.echo("GET", "/x", headers={"X-Amzn-Trace-Id": "Root=%s;Sampled=1" % root})
        trace = out["runtime"]["lambda-runtime-trace-id"]
        self.assertRegex(trace, TRACE_RE)
        self.assertTrue(trace.startswith("Root=%s;Parent=" % root), trace)
        # The invocation log names the same request id.
        rid = out["runtime"]["lambda-runtime-aws-request-id"]
        inv = self.emu.wait_log("invocation", lambda o: o.get("request_id") == rid)[0]
        self.assertEqual(inv["status"], 200)
        self.assertIsInstance(inv["duration_ms"], (int, float))
        # The function's own log line came through unchanged.
        self.emu.wait_log("fake invocation", lambda o: o.get("request_id") == rid)

    def test_environment(self):
        out = self.emu.echo("GET", "/env")
        env = out["env"]
        root = os.path.dirname(os.path.abspath(FAKE))
        self.assertRegex(env["AWS_LAMBDA_RUNTIME_API"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(env["_HANDLER"], "api")
        self.assertEqual(env["LAMBDA_TASK_ROOT"], root)
        self.assertTrue(env["LAMBDA_RUNTIME_DIR"])
        self.assertTrue(env["LD_LIBRARY_PATH"].startswith(os.path.join(root, "lib")), env["LD_LIBRARY_PATH"])
        self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]), ("eu-west-1", "eu-west-1"))
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.assertTrue(env.get(k), k)
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_NAME"], "taskd-dev-api")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256")
        self.assertEqual(env["FOO"], "bar=baz")
        self.assertEqual(env["ASAN_OPTIONS"], "detect_leaks=1")
        self.assertNotIn("EMULATOR_TEST_SENTINEL", env)
        self.assertEqual(out["cwd"], root)

    def test_response_mapping(self):
        r = self.emu.request("GET", "/resp")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Fake"), "yes")
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual([v for k, v in r.headers if k.lower() == "set-cookie"], ["a=1", "b=2"])
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        r = self.emu.request("GET", "/_fake/empty204")
        self.assertEqual((r.status, r.body), (204, b""))

    def test_head(self):
        r = self.emu.request("HEAD", "/tasks")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertGreater(int(r.header("Content-Length")), 0)

    def test_unknown_method(self):
        self.assertEqual(self.emu.echo("BREW", "/pot")["method"], "BREW")

    def test_base64_round_trip(self):
        data = bytes(range(256)) * 3
        out = self.emu.echo("POST", "/bin", data, headers={"Content-Type": "application/octet-stream"})
        self.assertIs(out["isBase64Encoded"], True)
        self.assertIs(out["event"]["isBase64Encoded"], True)
        self.assertEqual(base64.b64decode(out["event"]["body"]), data)
        r = self.emu.request("POST", "/_fake/binary", data)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")

    def test_chunked_request_body(self):
        body = b'{"chunked": "' + b"c" * 5000 + b'"}'
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                          for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
        res = raw_exchange(self.emu.port, b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Connection: close\r\n\r\n" + chunks, timeout=REQUEST_TIMEOUT)
        self.assertIsNotNone(res)
        status, _, rbody = res
        self.assertEqual(status, 200, rbody[:300])
        self.assertEqual(json.loads(rbody)["body"], body.decode())

    def test_keep_alive(self):
        c = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=REQUEST_TIMEOUT)
        try:
            for i in range(5):
                c.request("POST", "/k", body=b'{"i": %d}' % i)
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.read())["body"], '{"i": %d}' % i)
        finally:
            c.close()

    def test_function_error_502_then_recovery(self):
        r = self.emu.request("GET", "/_fake/error")
        self.assertGatewayError(r, 502, "Internal server error")
        self.emu.wait_log("function error", lambda o: o.get("errorType") == "Fake.Error")
        for _ in range(4):
            self.emu.echo("GET", "/after-error")

    def parallel_pids(self, n):
        """pids of the environments that answer n parallel slow requests."""
        pids, lock = set(), threading.Lock()

        def one():
            pid = self.emu.echo("GET", "/_fake/slow?seconds=0.3")["pid"]
            with lock:
                pids.add(pid)
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        return pids

    def test_crash_502_then_recovery(self):
        before = self.parallel_pids(2)
        self.assertEqual(len(before), 2)
        inits = len(self.emu.logs("init"))
        r = self.emu.request("GET", "/_fake/crash")
        self.assertGatewayError(r, 502, "Internal server error")
        self.emu.wait_log("environment exited during an invocation")
        crashed = self.emu.wait_log("fake invocation", lambda o: o.get("mode") == "crash")[-1]["pid"]
        self.assertIn(crashed, before)
        # The fresh environment's init may take up to the emulator's limit of an init (past it,
        # "init failed" is logged instead): the wait guards against no fresh environment at all.
        self.emu.wait_log("init", lambda o: len(self.emu.logs("init")) > inits, timeout=INIT_TIMEOUT + 10)
        after = self.parallel_pids(2)
        self.assertEqual(len(after), 2)
        self.assertNotIn(crashed, after)
        self.assertEqual(len(after - before), 1, "not exactly one fresh environment after the crash")

    def test_timeout_504_then_recovery(self):
        t0 = time.monotonic()
        r = self.emu.request("GET", "/_fake/sleep")
        elapsed = time.monotonic() - t0
        self.assertGatewayError(r, 504, "Endpoint request timed out")
        # Answered at the function's timeout, not once the function answers (30 s past it) nor at
        # the gateway's 29 s: the bound leaves a loaded machine 10 s past the timeout.
        self.assertTrue(1.8 <= elapsed < 12.0, "504 after %.2f s with a 2 s timeout" % elapsed)
        self.emu.wait_log("invocation timed out")
        for _ in range(4):
            self.emu.echo("GET", "/after-timeout")

    def test_malformed_response_502(self):
        self.assertGatewayError(self.emu.request("GET", "/_fake/malformed"), 502, "Internal server error")
        self.emu.wait_log("malformed function response")

    def settled_invocations(self, quiet=0.5, timeout=10):
        """The count of logged invocations once no new one has come for quiet seconds (an earlier
        test's last line may still be on its way from the emulator's log thread)."""
        n, since, deadline = -1, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = len(self.emu.logs("invocation"))
            if now != n:
                n, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.05)
        return n

    def test_body_over_10mb_413_without_invoking(self):
        before = self.settled_invocations()
        head = (b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n{\"a\": " % (10 * 1024 * 1024 + 1))
        res = raw_exchange(self.emu.port, head, timeout=REQUEST_TIMEOUT)
        self.assertIsNotNone(res, "no answer to an 10 MB + 1 body")
        self.assertEqual(res[0], 413, res)
        self.assertEqual(json.loads(res[2]), {"message": "Request Entity Too Large"})
        self.assertEqual(self.settled_invocations(), before)

    def test_event_over_6mb_413_without_invoking(self):
        """A body under API Gateway's 10 MB whose event is over Lambda's 6 MB (6,291,456 bytes):
        Lambda refuses the invocation, so the function never sees it."""
        before = self.settled_invocations()
        body = b'{"a": "' + b"x" * (6 * 1024 * 1024) + b'"}'
        head = (b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        res = raw_exchange(self.emu.port, head + body, timeout=REQUEST_TIMEOUT)
        self.assertIsNotNone(res, "no answer to a 6 MB body")
        self.assertEqual(res[0], 413, res[:2])
        self.assertEqual(json.loads(res[2]), {"message": "Request Entity Too Large"})
        self.assertEqual(self.settled_invocations(), before)
        self.emu.wait_log("event over the function's payload limit: refused")

    def test_runtime_api_unknown_request_id_400(self):
        api = self.emu.echo("GET", "/env")["env"]["AWS_LAMBDA_RUNTIME_API"]
        host, _, port = api.rpartition(":")
        c = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % uuid.uuid4(), body=b"{}")
            r = c.getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 400)
            self.assertIn("errorType", body)
            c.request("POST", "/2018-06-01/runtime/invocation/nope/error", body=b"{}")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 400)
        finally:
            c.close()

    def running_at_most(self, ids):
        """The most of the invocations ids running at once, told by the order of the lines
        logged: the runtime's "fake invocation" as it starts one, the emulator's "invocation"
        once it has the answer. A runtime asks for its next invocation only after the emulator
        has logged the end of its last, so with two environments a third start cannot come
        before an end; and two starts come before either end only if the two ran at once (the
        second start's line, passed on by the emulator, would have to lag the whole second the
        first one runs to come after its end)."""
        running, most = set(), 0
        for o in self.emu.logs():
            if o.get("request_id") not in ids:
                continue
            if o.get("message") == "fake invocation":
                running.add(o["request_id"])
                most = max(most, len(running))
            elif o.get("message") == "invocation":
                running.discard(o["request_id"])
        return most

    def test_concurrency(self):
        def timed(n):
            answers = []
            lock = threading.Lock()

            def one():
                r = self.emu.request("GET", "/_fake/slow?seconds=1")
                with lock:
                    answers.append(r)
            threads = [threading.Thread(target=one) for _ in range(n)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            took = time.monotonic() - t0
            self.assertEqual([r.status for r in answers], [200] * n, answers)
            ids = {r.json()["runtime"]["lambda-runtime-aws-request-id"] for r in answers}
            # the emulator logs an invocation's end just after its answer has gone
            wait_until(lambda: len(self.emu.logs("invocation")) >= n and all(
                any(o["request_id"] == i for o in self.emu.logs("invocation")) for i in ids),
                5, what="the invocations' lines")
            return took, self.running_at_most(ids)

        # Two environments: two 1 s requests run at once; four take two slot times (FIFO wait)
        # with never more than two at once. How many ran at once is read from the log's order,
        # not from the clock, which a loaded machine stretches.
        two, most = timed(2)
        self.assertGreaterEqual(two, 0.9, "2 parallel 1 s requests took %.2f s" % two)
        self.assertEqual(most, 2, "2 parallel 1 s requests on 2 environments, %d at once:\n%s"
                         % (most, self.emu.text()[-3000:]))
        four, most = timed(4)
        self.assertGreaterEqual(four, 1.9, "4 parallel 1 s requests took %.2f s on 2 environments" % four)
        self.assertEqual(most, 2, "4 parallel 1 s requests on 2 environments, %d at once:\n%s"
                         % (most, self.emu.text()[-3000:]))


class HttpApiEvents(EmulatorTestCase):
    emulator_args = ("--payload", "2.0")

    def test_event_shape(self):
        out = self.emu.echo("POST", "/tasks/a%20b?x=1&x=2&y=", b"hello",
                            header_list=[("X-Multi", "one"), ("X-Multi", "two"), ("Cookie", "c1=v1; c2=v2")],
                            headers={"Content-Type": "text/plain"})
        e = out["event"]
        self.assertEqual(e["version"], "2.0")
        self.assertEqual(e["routeKey"], "$default")
        self.assertEqual(e["rawPath"], "/tasks/a%20b")
        self.assertEqual(e["rawQueryString"], "x=1&x=2&y=")
        self.assertEqual(e["queryStringParameters"], {"x": "1,2", "y": ""})
        self.assertEqual(e["cookies"], ["c1=v1", "c2=v2"])
        self.assertEqual(e["headers"]["x-multi"], "one,two")
        self.assertEqual(e["headers"]["content-type"], "text/plain")
        self.assertNotIn("cookie", e["headers"])
        self.assertTrue(all(k == k.lower() for k in e["headers"]), e["headers"])
        self.assertEqual(e["body"], "hello")
        self.assertIs(e["isBase64Encoded"], False)
        ctx = e["requestContext"]
        self.assertEqual(ctx["stage"], "$default")
        self.assertEqual(ctx["http"]["method"], "POST")
        self.assertEqual(ctx["http"]["path"], "/tasks/a b")
        self.assertEqual(ctx["http"]["sourceIp"], "127.0.0.1")
        self.assertEqual(ctx["http"]["protocol"], "HTTP/1.1")
        self.assertEqual(uuid.UUID(ctx["requestId"]).version, 4)
        self.assertIsInstance(ctx["timeEpoch"], int)
        self.assertNotIn("httpMethod", e)

    def test_stage_path(self):
        """Under /dev, the named stage: rawPath keeps it; elsewhere the $default stage."""
        e = self.emu.echo("GET", "/dev/tasks/?limit=1")["event"]
        self.assertEqual((e["rawPath"], e["requestContext"]["stage"]), ("/dev/tasks/", "dev"))
        self.assertEqual(e["requestContext"]["http"]["path"], "/dev/tasks/")
        e = self.emu.echo("GET", "/development/tasks")["event"]
        self.assertEqual((e["rawPath"], e["requestContext"]["stage"]), ("/development/tasks", "$default"))

    def test_response_cookies_and_binary(self):
        r = self.emu.request("GET", "/c")
        self.assertEqual([v for k, v in r.headers if k.lower() == "set-cookie"], ["a=1", "b=2"])
        data = b"\x00\xff\xfe binary"
        out = self.emu.echo("POST", "/b", data)
        self.assertIs(out["event"]["isBase64Encoded"], True)
        self.assertEqual(base64.b64decode(out["event"]["body"]), data)
        self.assertEqual(self.emu.request("POST", "/_fake/binary", data).body, data)
        self.assertEqual(self.emu.request("GET", "/_fake/error").status, 502)


class InitError(EmulatorTestCase):
    fn_env = {"FAKE_MODE": "init_error"}

    def test_failed_init_answers_502(self):
        line = self.emu.wait_log("init failed")[0]
        self.assertEqual(line["errorType"], "Runtime.FakeInit")
        self.assertEqual(line["errorMessage"], "cannot start on purpose")
        r = self.emu.request("GET", "/tasks")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json(), {"message": "Internal server error"})
        # Each invocation tries a fresh init again, as Lambda does.
        self.assertGreaterEqual(len(self.emu.logs("init failed")), 2)


class Timeouts(EmulatorTestCase):
    emulator_args = ("--timeout", "5", "--gateway-timeout", "1")

    def test_gateway_timeout_504(self):
        t0 = time.monotonic()
        r = self.emu.request("GET", "/_fake/slow?seconds=2")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9, "answered before the gateway's 1 s")
        self.assertEqual((r.status, r.json()), (504, {"message": "Endpoint request timed out"}))
        rid = self.emu.wait_log("gateway timeout")[0]["request_id"]
        # The environment finishes that invocation after the 504 was given (its line says the
        # gateway had answered), then serves the next one.
        done = self.emu.wait_log("invocation", lambda o: o["request_id"] == rid)[0]
        self.assertEqual((done["outcome"], done.get("answered")), ("response", "gateway timeout"), done)
        self.assertEqual(self.emu.request("GET", "/ok").status, 200)


class LifeCycle(unittest.TestCase):
    def test_init_logs_and_clean_stop(self):
        t0 = time.monotonic()
        emu = Emulator("--concurrency", "3", fn_env={"FAKE_INIT_SLEEP": "0.3"})
        try:
            self.assertGreaterEqual(time.monotonic() - t0, 0.3, "listening before the inits were done")
            inits = emu.logs("init")
            self.assertEqual(sorted(o["env"] for o in inits), [0, 1, 2])
            for o in inits:
                self.assertGreaterEqual(o["init_ms"], 300)
            listening = [i for i, o in enumerate(emu.logs()) if o.get("message") == "listening"]
            self.assertEqual(len(listening), 1)
            self.assertEqual(emu.echo("GET", "/")["method"], "GET")
        finally:
            rc = emu.stop()
        self.assertEqual(rc, 0, emu.text()[-2000:])
        envs = emu.logs("environment")
        self.assertEqual(sorted(o["env"] for o in envs), [0, 1, 2])
        for o in envs:
            self.assertIsInstance(o["max_rss_kb"], int)
            self.assertGreater(o["max_rss_kb"], 1000)
        # Each runtime got its SIGTERM (the fake logs it and exits 0).
        self.assertEqual(len(emu.logs("fake shutdown")), 3, emu.text()[-2000:])

    def test_bench_init(self):
        r = subprocess.run([sys.executable, "-B", EMULATOR, "--bootstrap", FAKE, "--handler", "api",
                            "--bench-init", "3", "--init-timeout", str(INIT_TIMEOUT)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=START_TIMEOUT + 2 * INIT_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        stats = json.loads(r.stdout)
        self.assertEqual((stats["runs"], stats["failures"]), (3, 0))
        self.assertEqual(len(stats["samples_ms"]), 3)
        self.assertGreater(stats["init_ms"]["min"], 0)
        self.assertLessEqual(stats["init_ms"]["min"], stats["init_ms"]["max"])

    def test_missing_bootstrap_is_an_error(self):
        r = subprocess.run([sys.executable, "-B", EMULATOR, "--bootstrap", os.path.join(LAMBDA_DIR, "nope"),
                            "--handler", "api"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"bootstrap", r.stderr)


if __name__ == "__main__":
    unittest.main()
