"""bootstrap against a Runtime API of this file's own, which notes when each request arrives and
answers the posts with a chosen status, and against OTLP collectors of its own (one that answers,
one that accepts connections and never answers):

- a collector that never answers costs each invocation at most the flush's short budget before
  the next /next, with or without a deadline; the spans it did not take are dropped and counted
  (taskd_spans_dropped_total in the invocation's metrics line, and a warning);
- a collector that answers has every span before the next /next, also without a deadline;
- a deadline that leaves the flush no time cuts it at once: the invocation's span is dropped and
  counted, never sent, though the collector answers at once;
- a Runtime API that answers 500 to a /response or an /error makes bootstrap exit non-zero
  without asking for another invocation; a 400 does not;
- a /next whose request id is over 127 bytes makes bootstrap exit non-zero, saying so;
- the invocation's Lambda-Runtime-Trace-Id reaches its request span and log lines (trace_id,
  xray_trace_id) through the invocation, and bootstrap never changes its own environment to carry it (no _X_AMZN_TRACE_ID
  set or unset while other threads read the environment): a shim preloaded into it notes every
  setenv, unsetenv, putenv and clearenv; xray_trace_id is the header's Root whole as the span
  reads it, or empty when the header is refused (a Root too long, short, not hex or not a key).

Role api with an event that needs no DynamoDB (a route with no task id: 404), so the only
network bootstrap talks to is this file's. Needs the bootstrap build, nothing else.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from queue import Empty, Queue

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (QuietHandler, bootstrap_bin, dies_with_test, preload_env, require_bootstrap,  # noqa: E402
                     serve_stand_in, wait_until)

PREFIX = "/2018-06-01/runtime"
# the flush's budget after the response is 300 ms (src/aws/lambda_runtime.c); what a test allows the
# gap from the response to the next /next: far from the export timeout (10 s) that a flush not cut
# would wait, with room for a sanitizer build on a loaded machine (whose threads were seen 0.7 s
# late)
PROMPT = 2.0
EXIT_TIMEOUT = 5.0
INHERITED = ("PATH", "HOME", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def event(path="/tasks/not-a-task-id"):
    """An API Gateway REST (1.0) event the api role answers without DynamoDB (404)."""
    return json.dumps({
        "resource": "/{proxy+}", "path": path, "httpMethod": "GET", "headers": None,
        "multiValueHeaders": None, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": {"proxy": path[1:]},
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"stage": "dev", "requestId": str(uuid.uuid4()), "httpMethod": "GET",
                           "path": "/dev" + path}}).encode()


def trace_id():
    return "Root=1-%08x-%s;Parent=%s;Sampled=1" % (int(time.time()), uuid.uuid4().hex[:24],
                                                  uuid.uuid4().hex[:16])


class RuntimeApi:
    """The Runtime API of one bootstrap: /next hands out what invoke() queued (and drops the
    connection once close() queues None); each request's arrival is noted (monotonic time), and
    the posts are answered post_status."""

    def __init__(self):
        self.events = Queue()
        self.posts = Queue()
        self.nexts = []  # arrival times of GET /next
        self.request_id = None  # the last invocation's
        self.post_status = 202
        api = self

        class Handler(QuietHandler):
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def do_GET(self):
                api.nexts.append(time.monotonic())
                item = api.events.get()
                if item is None:
                    self.close_connection = True
                    return
                body, headers, deadline_s = item
                if deadline_s is not None:
                    # Lambda's clock starts when it hands the event over, not when it is queued
                    # here: a bootstrap slow to start has not lost any of it
                    ms = int((time.time() + deadline_s) * 1000)
                    headers = dict(headers, **{"Lambda-Runtime-Deadline-Ms": str(ms)})
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.read_body()
                at = time.monotonic()
                status = api.post_status
                if status == 202:
                    self.reply(202, b'{"status":"OK"}')
                else:
                    self.reply(status, json.dumps({"errorType": "Test.Status%d" % status,
                                                   "errorMessage": "answered %d" % status}).encode())
                api.posts.put((self.path.rsplit("/", 1)[-1], body, at))

        self.server = serve_stand_in(Handler)
        self.address = "127.0.0.1:%d" % self.server.server_port

    def invoke(self, body, deadline_s=None, timeout=10.0, trace=None):
        """Queue an invocation and wait for its post: (kind, body, arrival time). trace is its
        Lambda-Runtime-Trace-Id ("" for none), a new one by default."""
        self.request_id = str(uuid.uuid4())
        headers = {"Lambda-Runtime-Aws-Request-Id": self.request_id,
                   "Lambda-Runtime-Invoked-Function-Arn":
                       "arn:aws:lambda:eu-west-1:000000000000:function:taskd-test-api"}
        trace = trace_id() if trace is None else trace
        if trace:
            headers["Lambda-Runtime-Trace-Id"] = trace
        self.events.put((body, headers, deadline_s))
        try:
            return self.posts.get(timeout=timeout)
        except Empty:
            raise AssertionError("no /response or /error within %.0f s" % timeout)

    def next_after(self, at, timeout):
        """The arrival of the first /next after `at`, waited for up to timeout; None if none."""
        try:
            return wait_until(lambda: [t for t in self.nexts if t > at], timeout, interval=0.005,
                              what="a /next")[0]
        except AssertionError:
            return None

    def close(self):
        for _ in range(4):
            self.events.put(None)
        self.server.shutdown()
        self.server.server_close()


class Collector:
    """An OTLP/HTTP collector: 'answer' takes every POST (200, noting when each came and its
    body); 'silent' accepts connections and reads nothing, answers nothing."""

    def __init__(self, mode):
        self.posts = []
        self.bodies = []
        self.conns = []
        if mode == "silent":
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(64)
            self.port = self.sock.getsockname()[1]
            threading.Thread(target=self._accept, daemon=True).start()
            self.server = None
            return
        collector = self

        class Handler(QuietHandler):
            def do_POST(self):
                collector.bodies.append(self.read_body())
                collector.posts.append(time.monotonic())
                try:
                    self.reply(200, content_type="application/x-protobuf")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the flush cut the export before the answer

        self.server = serve_stand_in(Handler)
        self.port = self.server.server_port

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def close(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        else:
            self.sock.close()
            for c in self.conns:
                c.close()


class Bootstrap:
    """One bootstrap process (role api) on a RuntimeApi; stdout and stderr are collected."""

    def __init__(self, api, env=None):
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        nothing = "http://127.0.0.1:%d" % closed.getsockname()[1]
        closed.close()
        full = {k: os.environ[k] for k in INHERITED if k in os.environ}
        full.update({"AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "api",
                     "TABLE_NAME": "tasks", "AWS_REGION": "eu-west-1",
                     "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret",
                     "AWS_SESSION_TOKEN": "token", "AWS_ENDPOINT_URL": nothing,
                     "AWS_LAMBDA_FUNCTION_NAME": "taskd-test-api", "LOG_LEVEL": "info"})
        full.update(env or {})
        self.out, self.err = [], []
        self.proc = subprocess.Popen([bootstrap_bin()], env=full, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=dies_with_test())
        self.readers = [threading.Thread(target=self._drain, args=(s, lines), daemon=True)
                        for s, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for r in self.readers:
            r.start()

    @staticmethod
    def _drain(stream, lines):
        for raw in stream:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def objects(self, lines):
        out = []
        for line in list(lines):
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict):
                out.append(o)
        return out

    def logs(self, message=None):
        return [o for o in self.objects(self.err) if message is None or o.get("message") == message]

    def metric(self, request_id, name):
        """A metric in an invocation's metrics lines, waited for: they are written straight after
        its flush, and read here by a thread that may lag."""
        return wait_until(lambda: next((o[name] for o in self.objects(self.out)
                                        if o.get("function_request_id") == request_id and
                                        name in o), None),
                          5, what="%s in the metrics lines of invocation %s" % (name, request_id))

    def metric_total(self, name):
        """The sum of a metric over the EMF lines on stdout."""
        return sum(o.get(name, 0) for o in self.objects(self.out))

    def text(self):
        return "\n".join(self.err[-60:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for r in self.readers:
            r.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


class RuntimeApiTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_bootstrap()

    def start(self, env=None):
        api = RuntimeApi()
        self.addCleanup(api.close)
        boot = Bootstrap(api, env)
        self.addCleanup(boot.stop)
        return api, boot

    def collector(self, mode):
        c = Collector(mode)
        self.addCleanup(c.close)
        return c


class SpansFlush(RuntimeApiTestCase):
    def silent_collector_runs(self, deadline_s):
        """Three invocations with a silent collector: the gap from each response to the next
        /next, and the spans dropped."""
        c = self.collector("silent")
        api, boot = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": c.endpoint})
        gaps = []
        for i in range(3):
            kind, body, at = api.invoke(event(), deadline_s=deadline_s)
            self.assertEqual(kind, "response", body)
            self.assertEqual(json.loads(body)["statusCode"], 404, body)
            nxt = api.next_after(at, 15.0)
            self.assertIsNotNone(nxt, "no /next after invocation %d:\n%s" % (i, boot.text()))
            gaps.append(nxt - at)
        print("%s: response -> next /next: %s" % (self.id().rsplit(".", 1)[-1],
              ", ".join("%.0f ms" % (g * 1000) for g in gaps)), file=sys.stderr)
        for g in gaps:
            self.assertLess(g, PROMPT, "the next invocation waited on the collector: %r\n%s"
                            % (gaps, boot.text()))
        self.assertGreater(len(c.conns), 0, "the collector was never reached")
        # Each invocation's request span was dropped and is counted in the metrics line of the
        # invocation during which it was: its own, or (a batch cut short after the flush gave
        # up) the next one's. One more invocation writes that line for the third.
        self.assertEqual(api.invoke(event(), deadline_s=deadline_s)[0], "response")
        dropped = wait_until(lambda: boot.metric_total("taskd_spans_dropped_total") >= 3 and
                             boot.metric_total("taskd_spans_dropped_total"), 5,
                             what="3 dropped spans in the metrics lines")
        self.assertLessEqual(dropped, 4, boot.out)
        wait_until(lambda: [o for o in boot.logs() if o.get("level") == "WARNING" and
                            "spans dropped" in o.get("message", "")], 5,
                   what="a warning of dropped spans")

    def test_silent_collector_with_a_deadline(self):
        """Lambda gives a deadline far off: the flush is still over in a few hundred ms, not at
        the export timeout (10 s) nor at the deadline."""
        self.silent_collector_runs(20.0)

    def test_silent_collector_without_a_deadline(self):
        self.silent_collector_runs(None)

    def test_spans_reach_a_collector_before_the_next_invocation(self):
        """Without a deadline as with one, the invocation's spans are sent before /next. The
        flush has its 300 ms budget: a collector that a loaded machine keeps from reading the post
        in that time has the flush cut, as it should, so an invocation may be tried three times;
        a bootstrap that does not flush before /next misses every time."""
        c = self.collector("answer")
        api, boot = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": c.endpoint})
        misses = 0
        for deadline_s in (None, 20.0):
            for _ in range(3):
                before = len(c.posts)
                kind, body, at = api.invoke(event(), deadline_s=deadline_s)
                self.assertEqual(kind, "response", body)
                nxt = api.next_after(at, 5.0)
                self.assertIsNotNone(nxt, boot.text())
                if len([t for t in c.posts if t < nxt]) == before + 1:
                    break
                misses += 1
            else:
                self.fail("spans still queued at the next /next, 3 times (deadline %s)\n%s"
                          % (deadline_s, boot.text()))
        if not misses:
            self.assertEqual(boot.metric_total("taskd_spans_dropped_total"), 0, boot.out)

    def test_a_deadline_within_the_reserve_cuts_the_flush_at_once(self):
        """A deadline nearer than the flush's budget cuts the flush 50 ms before it, leaving that
        for the metrics lines and /next (lambda_flush_deadline(), whose cases test_lambda_runtime
        checks). That the invocation's deadline reaches the flush is seen here by what is sent,
        not by when: a deadline 40 ms after the hand-over leaves the flush no time at all, so the
        invocation's span is dropped and counted where it waits, never handed to the exporters,
        however late bootstrap's thread runs; cut by its 300 ms budget alone, the flush would
        have let the span go to the collector, which answers at once. Each such invocation
        follows one without a deadline, whose flush waits for its span to be sent: the export
        thread, which on its own takes what is queued once a second, counts that second anew
        from there, so it does not take the next invocation's span before its flush."""
        c = self.collector("answer")
        api, boot = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": c.endpoint})
        for _ in range(3):
            self.assertEqual(api.invoke(event())[0], "response")
            trace = trace_id()
            kind, body, at = api.invoke(event(), deadline_s=0.04, trace=trace)
            self.assertEqual(kind, "response", body)
            self.assertIsNotNone(api.next_after(at, 15.0), boot.text())
            root = bytes.fromhex(trace.split(";")[0][len("Root=1-"):].replace("-", ""))
            self.assertFalse(any(root in b for b in c.bodies),
                             "the span of an invocation whose flush had no time was sent")
            self.assertGreaterEqual(boot.metric(api.request_id, "taskd_spans_dropped_total"), 1)
        self.assertTrue(c.bodies, "the collector was never reached\n" + boot.text())


class PostFailures(RuntimeApiTestCase):
    def exits_after_a_500(self, body, kind):
        """The Runtime API answers the post of body's outcome (kind) with a 500: bootstrap exits 1."""
        api, boot = self.start()
        api.post_status = 500
        got, _, at = api.invoke(body)
        self.assertEqual(got, kind)
        try:
            rc = boot.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("bootstrap still runs %.0f s after a 500:\n%s" % (EXIT_TIMEOUT, boot.text()))
        self.assertEqual(rc, 1, boot.text())  # its own exit, not a signal or a sanitizer's
        self.assertIsNone(api.next_after(at, 0.1), "asked for another invocation after a 500")
        return boot

    def test_500_to_a_response_exits(self):
        boot = self.exits_after_a_500(event(), "response")
        # standard error is read by a thread: the line may come a moment after the exit
        wait_until(lambda: boot.logs("the runtime API failed: exiting"), 5,
                   what="the exit's reason in the log\n" + boot.text())

    def test_500_to_an_error_exits(self):
        self.exits_after_a_500(b"not an API Gateway event", "error")

    def test_400_goes_on(self):
        """A 4xx refuses this post only: the failure is logged and the next invocation served."""
        api, boot = self.start()
        api.post_status = 400
        kind, _, at = api.invoke(event())
        self.assertEqual(kind, "response")
        self.assertIsNotNone(api.next_after(at, 5.0), boot.text())
        api.post_status = 202
        kind, body, _ = api.invoke(event())
        self.assertEqual((kind, json.loads(body)["statusCode"]), ("response", 404))
        self.assertIsNone(boot.proc.poll(), boot.text())
        wait_until(lambda: boot.logs("cannot post the invocation's outcome"), 5,
                   what="the refused post in the log\n" + boot.text())


class NextRefused(RuntimeApiTestCase):
    def test_a_request_id_too_long_ends_bootstrap_saying_why(self):
        """A request id over 127 bytes, which no URL of this runtime holds, fails /next: bootstrap
        exits 1 (Lambda fails the invocation and starts a fresh environment) and a line of its log
        says it exits, naming the header, its length and the limit."""
        api, boot = self.start()
        self.assertEqual(api.invoke(event())[0], "response")  # served until then
        headers = {"Lambda-Runtime-Aws-Request-Id": "a" * 200}
        api.events.put((event(), headers, None))
        try:
            rc = boot.proc.wait(10.0)  # a loaded machine's bound: one that went on never exits
        except subprocess.TimeoutExpired:
            self.fail("bootstrap still runs 10 s after a request id of 200 bytes:\n" + boot.text())
        self.assertEqual(rc, 1, boot.text())
        self.assertTrue(api.posts.empty(), "a post for an invocation it cannot name")
        lines = wait_until(lambda: boot.logs("cannot get the next invocation: exiting"), 5,
                           what="the exit's reason in the log\n" + boot.text())
        self.assertIn("Lambda-Runtime-Aws-Request-Id of 200 bytes, longer than the 127 this "
                      "runtime takes", lines[0].get("error", ""), boot.text())


class SigchldIgnored(RuntimeApiTestCase):
    def test_sigchld_ignored_by_its_parent_is_not_ignored_by_bootstrap(self):
        """A parent that ignores SIGCHLD (SIG_IGN, which exec keeps) starts bootstrap: bootstrap
        gives it back its default as it starts, as taskd does, before any run of an exec handler
        (under SIGCHLD ignored the kernel reaps each supervisor as it exits, and the end signal
        for its run would go to its pid, free, which another process may have taken). It serves
        as it does otherwise."""
        old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        try:
            api, boot = self.start()
        finally:
            signal.signal(signal.SIGCHLD, old)
        kind, body, _ = api.invoke(event())  # past its start: it asks for invocations
        self.assertEqual(kind, "response", body)
        with open("/proc/%d/status" % boot.proc.pid) as f:
            ignored = int(f.read().split("SigIgn:")[1].split()[0], 16)
        self.assertFalse(ignored >> (signal.SIGCHLD - 1) & 1,
                         "bootstrap ignores SIGCHLD:\n" + boot.text())


class TraceHeader(RuntimeApiTestCase):
    def request_lines(self, api, boot, traces):
        """Invoke once with each of traces (a Lambda-Runtime-Trace-Id, "" for none): the request
        log line of each (LOG_LEVEL debug)."""
        for trace in traces:
            kind, body, _ = api.invoke(event(), trace=trace)
            self.assertEqual((kind, json.loads(body)["statusCode"]), ("response", 404), body)
        return wait_until(lambda: len(boot.logs("request")) == len(traces) and
                          boot.logs("request"), 5, what="a request line per invocation\n" +
                          boot.text())

    def test_the_trace_header_goes_with_the_invocation_not_the_environment(self):
        """Each invocation's request span and log lines take its own trace header (a trace of
        their own without one), and bootstrap's environment is never changed to carry it: a
        setenv while the span exporter's thread and the AWS clients call getenv may free the
        array they read."""
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        watched = os.path.join(scratch.name, "env_changes")
        api, boot = self.start(preload_env(self, "ENV_WATCH_SHIM", "libenv_watch.so",
                                           ENV_WATCH_FILE=watched, LOG_LEVEL="debug"))
        traces = [trace_id(), "", trace_id()]
        lines = self.request_lines(api, boot, traces)
        for trace, line in zip(traces, lines):
            root = trace.split(";")[0][len("Root="):]
            self.assertEqual(line.get("xray_trace_id"), root, line)
            if trace:
                self.assertEqual(line.get("trace_id"), root[2:].replace("-", ""), line)
        self.assertNotIn(lines[1]["trace_id"], (lines[0]["trace_id"], lines[2]["trace_id"]))
        with open(watched) as f:
            changes = f.read().splitlines()
        self.assertEqual(changes, ["watching"], "bootstrap changed its environment")

    def test_a_root_that_is_no_trace_id_is_not_logged_as_one(self):
        """The xray_trace_id log field is a header's Root whole when it is an X-Ray trace id, as
        the request span reads it, and empty otherwise: never the first bytes of a Root too long
        for the field, nor a Root the span did not take."""
        api, boot = self.start({"LOG_LEVEL": "debug"})
        good = trace_id()
        root = good.split(";")[0][len("Root="):]
        traces = [
            good.replace(root, root + "0123456789abcdef" * 4),  # 99 characters
            good.replace(root, root[:-1]),  # one hex digit short
            good.replace(root, root[:-1] + "g"),  # not hex
            "Self=1-5759e988-bd862e3fe1be46a994272793;" + good.replace("Root=", "XRoot="),
            good.replace(";Parent=", "; Parent=").replace("Root=", " Root = "),
        ]
        lines = self.request_lines(api, boot, traces)
        self.assertEqual([line.get("xray_trace_id") for line in lines], ["", "", "", "", root],
                         lines)
        self.assertEqual(lines[4].get("trace_id"), root[2:].replace("-", ""), lines[4])


if __name__ == "__main__":
    unittest.main(verbosity=2)
