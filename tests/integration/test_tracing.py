"""Tracing and observability end to end (W3C trace context, X-Ray, OTLP/HTTP).

One trace per task: the POST span, the store write, the stream publish, the
queue delivery, the handler run and its status updates, all in the trace of
the request's traceparent / X-Amzn-Trace-Id header (or a new X-Ray-compatible
one). Checked here through the three ways spans leave taskd: OTLP/HTTP (JSON
and protobuf) to a receiver run by the test, X-Ray segment documents over UDP
to a listener run by the test, and the local GET /tasks/{id}/trace view.
Also: the JSON log lines of a failed task, an unreachable collector not
slowing the API, and the Prometheus metrics.

Every test starts its own taskd (harness.Taskd, with extra environment via
its env= parameter) and waits with deadlines, never fixed sleeps.
"""

import gzip
import http.server
import json
import os
import secrets
import socket
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServersTestCase, Taskd, UDPListener, db_query, metrics, parse_metrics,  # noqa: E402
                     wait_until, write_config)

FINAL = ("COMPLETED", "FAILED")

# OTLP Span.kind values
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
KIND_NAMES = {INTERNAL: "INTERNAL", SERVER: "SERVER", CLIENT: "CLIENT",
              PRODUCER: "PRODUCER", CONSUMER: "CONSUMER"}

# name -> (kind, parent name or None for the root, how many)
HANDLER_SPAN = "TASK1"
EXPECTED = {
    "POST /tasks": (SERVER, None, 1),
    "INSERT tasks": (CLIENT, "POST /tasks", 1),
    "process publisher": (CONSUMER, "POST /tasks", 1),
    "publish tasks": (PRODUCER, "process publisher", 1),
    "receive task1": (CONSUMER, "publish tasks", 1),
    "process task1": (CONSUMER, "receive task1", 1),
    "UPDATE tasks": (CLIENT, "process task1", 2),
    HANDLER_SPAN: (INTERNAL, "process task1", 1),
}
EXPECTED_COUNT = sum(n for _, _, n in EXPECTED.values())  # 9


def random_hex(nbytes):
    while True:
        h = secrets.token_hex(nbytes)
        if int(h, 16) != 0:
            return h


def closed_port():
    """A TCP port on 127.0.0.1 nobody listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# Collectors run by the tests
# ---------------------------------------------------------------------------

class OTLPReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1:0 that records every request."""

    def __init__(self, reply=b"{}", reply_type="application/json"):
        self.requests = []  # dicts: path, headers (lower-case names), body
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with receiver.lock:
                    receiver.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    })
                out = reply
                self.send_response(200)
                self.send_header("Content-Type", reply_type)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def otlp_json_spans(requests, skip_bad=False):
    """All spans of OTLP/JSON bodies as (resource attributes dict, span) pairs."""
    out = []
    for req in requests:
        try:
            doc = json.loads(req["body"].decode("utf-8"))
        except ValueError:
            if skip_bad:
                continue
            raise AssertionError("OTLP body is not JSON (Content-Type %r): %r"
                                 % (req["headers"].get("content-type"), req["body"][:200]))
        for rs in doc.get("resourceSpans", []):
            rattrs = {a["key"]: a["value"] for a in rs.get("resource", {}).get("attributes", [])}
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    out.append((rattrs, sp))
    return out


def otlp_attr(span, key):
    for a in span.get("attributes", []):
        if a.get("key") == key:
            v = a.get("value", {})
            for k in ("stringValue", "intValue", "boolValue", "doubleValue"):
                if k in v:
                    return v[k]
            return v
    return None


# ---------------------------------------------------------------------------

class TracingCase(ServersTestCase):

    tmp_prefix = "taskd-trace-"

    def setUp(self):
        super().setUp()
        self.closers = []

    def tearDown(self):
        for c in self.closers:
            try:
                c()
            except Exception:
                pass
        super().tearDown()

    def start(self, env, name="t"):
        base = {"TASK1_SECONDS": "0.2", "TASK1_FAILURE_RATE": "0"}
        base.update(env)
        s = Taskd(tmpdir=self.tmp, db=os.path.join(self.tmp, name + ".db"), env=base)
        self.servers.append(s)
        return s

    def wait_status_db(self, s, tid, statuses, timeout=10.0):
        """Like wait_status, but reads the database: no HTTP request (hence no span) names the task."""
        def check():
            rows = db_query(s.db, "SELECT status FROM tasks WHERE id = ?", (tid,))
            return rows[0][0] if rows and rows[0][0] in statuses else None
        return wait_until(check, timeout, what="task %s to reach %s (database)" % (tid, statuses))

    def local_trace(self, s, tid):
        r = s.get("/tasks/%s/trace" % tid)
        self.assertEqual(r.status, 200, "GET /tasks/%s/trace -> %r" % (tid, r))
        body = r.json()
        self.assertEqual(body.get("task_id"), tid, body)
        self.assertIsInstance(body.get("spans"), list, body)
        return body["spans"]

    def wait_local_spans(self, s, tid, names, timeout=5.0):
        """Wait until the local view holds every name in names (the last spans end after the PATCH)."""
        def check():
            spans = self.local_trace(s, tid)
            have = [sp["name"] for sp in spans]
            return spans if all(have.count(n) >= c for n, c in names.items()) else None
        return wait_until(check, timeout, what="local trace of %s to hold %r" % (tid, names))

    def run_one_task(self, s, headers, final=("COMPLETED",)):
        tid = s.create("TASK1", data={"foo": "bar"}, headers=headers)
        t = self.wait_status(s, tid, FINAL)
        self.assertIn(t["status"], final, "task ended %r; stderr:\n%s" % (t, s.stderr_text()[-3000:]))
        return tid

    # -- the tree check shared by the OTLP JSON and local views -----------------

    def check_tree(self, spans, trace_id, root_parent, get):
        """spans: list of dicts; get(span, field) reads name/trace/id/parent/kind (kind as int)."""
        where = "spans: %s" % json.dumps([{f: get(sp, f) for f in ("name", "id", "parent", "kind")}
                                          for sp in spans], indent=None)
        names = [get(sp, "name") for sp in spans]
        for name, (_, _, count) in EXPECTED.items():
            self.assertEqual(names.count(name), count, "span %r: expected %d, got %d; %s"
                             % (name, count, names.count(name), where))
        for sp in spans:
            self.assertEqual(get(sp, "trace"), trace_id, "span %r not in the trace; %s"
                             % (get(sp, "name"), where))
        ids = [get(sp, "id") for sp in spans]
        self.assertEqual(len(set(ids)), len(ids), "span ids not unique; %s" % where)
        for i in ids:
            self.assertRegex(i, r"^[0-9a-f]{16}$")
            self.assertNotEqual(i, "0" * 16)
        by_id = {get(sp, "id"): sp for sp in spans}
        roots = [sp for sp in spans if get(sp, "parent") not in by_id]
        self.assertEqual(len(roots), 1, "expected ONE tree (one span whose parent is not a "
                         "received span); roots: %r; %s" % ([get(r, "name") for r in roots], where))
        root = roots[0]
        self.assertEqual(get(root, "name"), "POST /tasks", where)
        self.assertEqual(get(root, "parent"), root_parent,
                         "the root's parent is not the header's span id; %s" % where)
        for sp in spans:
            name = get(sp, "name")
            if name not in EXPECTED:
                continue
            kind, parent_name, _ = EXPECTED[name]
            self.assertEqual(get(sp, "kind"), kind, "kind of %r: expected %s, got %r; %s"
                             % (name, KIND_NAMES[kind], get(sp, "kind"), where))
            if parent_name is not None:
                parent = by_id.get(get(sp, "parent"))
                self.assertIsNotNone(parent, "%r has no parent among the spans; %s" % (name, where))
                self.assertEqual(get(parent, "name"), parent_name, "parent of %r: expected %r, got %r; %s"
                                 % (name, parent_name, get(parent, "name"), where))

    # -----------------------------------------------------------------------
    # 1. OTLP/HTTP JSON
    # -----------------------------------------------------------------------

    def test_otlp_json_export(self):
        rx = OTLPReceiver()
        self.closers.append(rx.close)
        s = self.start({
            "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret123",
            "OTEL_SERVICE_NAME": "tasks-test",
        })
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id),
                                    "tracestate": "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE"})
        # the last UPDATE span ends after the status is visible: let the local store see it
        self.wait_local_spans(s, tid, {"UPDATE tasks": 2, HANDLER_SPAN: 1})
        self.stop_clean(s)  # SIGTERM flushes the exporter

        def ours():
            spans = [sp for _, sp in otlp_json_spans(rx.snapshot(), True) if sp.get("traceId") == trace_id]
            return spans if len(spans) >= EXPECTED_COUNT else None
        try:
            wait_until(ours, 5.0, what="%d spans of trace %s at the receiver" % (EXPECTED_COUNT, trace_id))
        except AssertionError as e:
            got = [(sp.get("name"), sp.get("traceId")) for _, sp in otlp_json_spans(rx.snapshot(), True)]
            ctypes = [r["headers"].get("content-type") for r in rx.snapshot()]
            self.fail("%s; received spans: %r; Content-Types: %r; stderr tail:\n%s"
                      % (e, got, ctypes, s.stderr_text()[-3000:]))

        reqs = rx.snapshot()
        self.assertTrue(reqs)
        for req in reqs:
            self.assertEqual(req["path"], "/v1/traces", "export path")
            self.assertEqual(req["headers"].get("api-key"), "secret123",
                             "OTEL_EXPORTER_OTLP_HEADERS not sent: %r" % req["headers"])
            self.assertTrue(req["headers"].get("content-type", "").startswith("application/json"),
                            "Content-Type %r" % req["headers"].get("content-type"))
        pairs = otlp_json_spans(reqs)
        for rattrs, sp in pairs:
            self.assertEqual(rattrs.get("service.name"), {"stringValue": "tasks-test"},
                             "resource service.name: %r" % rattrs)
            for f in ("startTimeUnixNano", "endTimeUnixNano"):
                self.assertIsInstance(sp.get(f), str, "%s of %r is not a string: %r" % (f, sp.get("name"), sp))
                self.assertRegex(sp[f], r"^[0-9]+$")
            self.assertLessEqual(int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"]), sp)
            self.assertIsInstance(sp.get("kind"), int, "kind must be an int: %r" % sp)
            self.assertRegex(sp.get("traceId", ""), r"^[0-9a-f]{32}$")
        spans = [sp for _, sp in pairs if sp.get("traceId") == trace_id]

        # the request's tracestate, normalised, on every span of its trace
        for sp in spans:
            self.assertEqual(sp.get("traceState"), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", sp["name"])
        fields = {"name": "name", "trace": "traceId", "id": "spanId", "parent": "parentSpanId", "kind": "kind"}
        self.check_tree(spans, trace_id, parent_id, lambda sp, f: sp.get(fields[f], ""))

        by_name = {}
        for sp in spans:
            by_name.setdefault(sp["name"], []).append(sp)
        post = by_name["POST /tasks"][0]
        self.assertEqual(otlp_attr(post, "http.request.method"), "POST")
        self.assertEqual(otlp_attr(post, "http.route"), "/tasks")
        self.assertEqual(otlp_attr(post, "url.scheme"), "http")
        self.assertIn(str(otlp_attr(post, "http.response.status_code")), ("201",))
        # every store span names the store
        for sp in by_name["INSERT tasks"] + by_name["UPDATE tasks"]:
            self.assertEqual(otlp_attr(sp, "db.system"), "sqlite", sp["name"])
        pub = by_name["publish tasks"][0]
        self.assertEqual(otlp_attr(pub, "messaging.destination.name"), "tasks")
        self.assertIsNotNone(otlp_attr(pub, "messaging.system"))
        self.assertIsNotNone(otlp_attr(pub, "messaging.operation.type"))
        for name in ("receive task1", "process task1"):
            sp = by_name[name][0]
            self.assertEqual(otlp_attr(sp, "messaging.destination.name"), "task1", name)
            self.assertEqual(otlp_attr(sp, "task.id"), tid, name)
        statuses = sorted(otlp_attr(sp, "task.status") for sp in by_name["UPDATE tasks"])
        self.assertEqual(statuses, ["COMPLETED", "IN_PROGRESS"], "task.status of the UPDATE spans")
        # a task that completed: no ERROR anywhere
        for sp in spans:
            self.assertNotEqual(sp.get("status", {}).get("code"), 2, "unexpected ERROR span %r" % sp)

    # -----------------------------------------------------------------------
    # 2. OTLP/HTTP protobuf (the default protocol)
    # -----------------------------------------------------------------------

    def partial_success_drops(self, reply, reply_type, protocol):
        """Spans dropped and warnings logged when the collector answers every export with
        reply, a partial success rejecting 2 spans."""
        rx = OTLPReceiver(reply=reply, reply_type=reply_type)
        self.closers.append(rx.close)
        s = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
                        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
        tid = self.run_one_task(s, None)
        self.wait_local_spans(s, tid, {"UPDATE tasks": 2, HANDLER_SPAN: 1})

        def dropped():
            parsed = parse_metrics(s.get("/metrics").body.decode("utf-8"))
            n = sum(v for (name, _), v in parsed.items() if name == "taskd_spans_dropped_total")
            return n if rx.snapshot() and n >= 2 else None
        n = wait_until(dropped, 10.0, what="spans dropped for the collector's partial success")
        self.stop_clean(s)
        warned = [json.loads(line) for line in s.stderr_text().splitlines()
                  if "partial success" in line]
        self.assertTrue(warned, "no partial-success warning; stderr tail:\n%s" % s.stderr_text()[-2000:])
        # every export rejected 2 spans (or all it held, when fewer)
        self.assertLessEqual(n, 2 * len(rx.snapshot()))
        return warned[0]

    def test_otlp_json_partial_success_counts_the_rejected_spans(self):
        # the collector's message is long: its count comes after it, past the first 4 KiB
        message = "rejected: " + "x" * 6000
        reply = json.dumps({"partialSuccess": {"errorMessage": message, "rejectedSpans": "2"}}).encode()
        warned = self.partial_success_drops(reply, "application/json", "http/json")
        self.assertIn("2 spans rejected: rejected: xxx", json.dumps(warned))

    def test_otlp_reply_too_long_to_read_is_warned_about(self):
        # a partial success whose count lies past the 64 KiB of a reply that are read
        message = "rejected: " + "x" * 70000
        reply = json.dumps({"partialSuccess": {"errorMessage": message, "rejectedSpans": "2"}}).encode()
        rx = OTLPReceiver(reply=reply, reply_type="application/json")
        self.closers.append(rx.close)
        s = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
                        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
        self.run_one_task(s, None)
        wait_until(lambda: rx.snapshot() or None, 10.0, what="an export")
        self.stop_clean(s)
        warned = [json.loads(line) for line in s.stderr_text().splitlines()
                  if "too long to read" in line]
        self.assertTrue(warned, "no warning of the unread reply; stderr tail:\n%s"
                        % s.stderr_text()[-2000:])
        self.assertIn("%d bytes" % len(reply), json.dumps(warned[0]))

    def test_otlp_protobuf_partial_success_counts_the_rejected_spans(self):
        # ExportTraceServiceResponse { partial_success (1) { rejected_spans (1): 2,
        # error_message (2): "quota" } }
        inner = b"\x08\x02" + b"\x12\x05quota"
        reply = b"\x0a" + bytes([len(inner)]) + inner
        warned = self.partial_success_drops(reply, "application/x-protobuf", "http/protobuf")
        self.assertIn("2 spans rejected", json.dumps(warned))

    def test_otlp_protobuf_export(self):
        rx = OTLPReceiver()
        self.closers.append(rx.close)
        s = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url, "OTEL_SERVICE_NAME": "tasks-proto"})
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
        self.wait_local_spans(s, tid, {"UPDATE tasks": 2, HANDLER_SPAN: 1})
        self.stop_clean(s)
        raw_tid = bytes.fromhex(trace_id)

        def enough():
            n = sum(r["body"].count(raw_tid) for r in rx.snapshot())
            return n if n >= EXPECTED_COUNT else None
        try:
            wait_until(enough, 5.0, what=">= %d spans of the trace (raw trace id bytes)" % EXPECTED_COUNT)
        except AssertionError as e:
            self.fail("%s; requests: %r; stderr tail:\n%s"
                      % (e, [(r["path"], r["headers"].get("content-type"), len(r["body"]))
                             for r in rx.snapshot()], s.stderr_text()[-3000:]))
        reqs = rx.snapshot()
        for req in reqs:
            self.assertEqual(req["path"], "/v1/traces")
            self.assertEqual(req["headers"].get("content-type"), "application/x-protobuf",
                             "Content-Type of a protobuf export")
            self.assertTrue(req["body"], "empty export body")
        body = b"".join(r["body"] for r in reqs)
        self.assertIn(raw_tid, body)
        self.assertIn(bytes.fromhex(parent_id), body, "the header's span id (POST's parent) not exported")
        self.assertIn(b"tasks-proto", body, "service.name not in the resource")
        for name in EXPECTED:
            self.assertIn(name.encode(), body, "span %r not exported" % name)
        self.assertNotIn(b"resourceSpans", body, "body looks like JSON, not protobuf")

    # -----------------------------------------------------------------------
    # 2b. gzip compression (OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION)
    # -----------------------------------------------------------------------

    def gunzipped(self, reqs):
        """The requests with their bodies gunzipped, after checking each was sent as gzip."""
        out = []
        for req in reqs:
            self.assertEqual(req["headers"].get("content-encoding"), "gzip",
                             "Content-Encoding of a compressed export: %r" % req["headers"])
            self.assertEqual(req["body"][:2], b"\x1f\x8b", "body is not gzip: %r" % req["body"][:40])
            try:
                body = gzip.decompress(req["body"])
            except (OSError, EOFError) as e:
                self.fail("export body does not gunzip: %s" % e)
            out.append(dict(req, body=body))
        return out

    def test_otlp_gzip_json_export(self):
        """OTEL_EXPORTER_OTLP_COMPRESSION=gzip: every body gzip with Content-Encoding, the same spans inside."""
        rx = OTLPReceiver()
        self.closers.append(rx.close)
        s = self.start({
            "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_SERVICE_NAME": "tasks-gzip",
        })
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
        self.wait_local_spans(s, tid, {"UPDATE tasks": 2, HANDLER_SPAN: 1})
        self.stop_clean(s)
        self.assertNotIn("compression", s.stderr_text(), "a warning about compression was logged")

        def ours():
            reqs = [dict(r, body=gzip.decompress(r["body"])) for r in rx.snapshot()
                    if r["headers"].get("content-encoding") == "gzip"]
            spans = [sp for _, sp in otlp_json_spans(reqs, True) if sp.get("traceId") == trace_id]
            return spans if len(spans) >= EXPECTED_COUNT else None
        try:
            wait_until(ours, 5.0, what="%d spans of trace %s, gzipped, at the receiver" % (EXPECTED_COUNT, trace_id))
        except AssertionError as e:
            self.fail("%s; requests: %r; stderr tail:\n%s"
                      % (e, [(r["headers"].get("content-encoding"), r["body"][:20]) for r in rx.snapshot()],
                         s.stderr_text()[-3000:]))
        reqs = self.gunzipped(rx.snapshot())
        for req in reqs:
            self.assertTrue(req["headers"].get("content-type", "").startswith("application/json"), req["headers"])
        pairs = otlp_json_spans(reqs)
        for rattrs, _ in pairs:
            self.assertEqual(rattrs.get("service.name"), {"stringValue": "tasks-gzip"}, rattrs)
        spans = [sp for _, sp in pairs if sp.get("traceId") == trace_id]
        fields = {"name": "name", "trace": "traceId", "id": "spanId", "parent": "parentSpanId", "kind": "kind"}
        self.check_tree(spans, trace_id, parent_id, lambda sp, f: sp.get(fields[f], ""))

    def test_otlp_gzip_protobuf_traces_variable(self):
        """OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip wins over the generic none; protobuf bodies gzipped."""
        rx = OTLPReceiver()
        self.closers.append(rx.close)
        s = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
                        "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
                        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"})
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
        self.wait_local_spans(s, tid, {"UPDATE tasks": 2, HANDLER_SPAN: 1})
        self.stop_clean(s)
        raw_tid = bytes.fromhex(trace_id)

        def enough():
            n = sum(gzip.decompress(r["body"]).count(raw_tid) for r in rx.snapshot()
                    if r["headers"].get("content-encoding") == "gzip")
            return n if n >= EXPECTED_COUNT else None
        try:
            wait_until(enough, 5.0, what=">= %d spans of the trace in gzipped protobuf bodies" % EXPECTED_COUNT)
        except AssertionError as e:
            self.fail("%s; requests: %r; stderr tail:\n%s"
                      % (e, [(r["headers"].get("content-encoding"), len(r["body"])) for r in rx.snapshot()],
                         s.stderr_text()[-3000:]))
        reqs = self.gunzipped(rx.snapshot())
        body = b"".join(r["body"] for r in reqs)
        for req in reqs:
            self.assertEqual(req["headers"].get("content-type"), "application/x-protobuf")
        self.assertEqual(body.count(raw_tid), EXPECTED_COUNT, "spans of the trace, once each")
        self.assertIn(bytes.fromhex(parent_id), body)
        for name in EXPECTED:
            self.assertIn(name.encode(), body, "span %r not exported" % name)

    def test_otlp_traces_endpoint_used_as_is(self):
        """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the full URL (no /v1/traces appended); several headers."""
        rx = OTLPReceiver()
        self.closers.append(rx.close)
        s = self.start({
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rx.url + "/custom/ingest",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=k1,x-tenant=blue",
            "TASK1_SECONDS": "0.01",
        })
        trace_id, parent_id = random_hex(16), random_hex(8)
        s.create("TASK1", headers={"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})

        def posted():
            spans = [sp for _, sp in otlp_json_spans(rx.snapshot(), True) if sp.get("traceId") == trace_id]
            return spans if any(sp.get("name") == "POST /tasks" for sp in spans) else None
        try:
            wait_until(posted, 5.0, what="the POST span at the receiver (batch delay <= ~1 s)")
        except AssertionError as e:
            self.fail("%s; requests: %r" % (e, [(r["path"], r["headers"]) for r in rx.snapshot()]))
        for req in rx.snapshot():
            self.assertEqual(req["path"], "/custom/ingest", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT not used as is")
            self.assertEqual(req["headers"].get("api-key"), "k1", req["headers"])
            self.assertEqual(req["headers"].get("x-tenant"), "blue", req["headers"])
        self.stop_clean(s)

    # -----------------------------------------------------------------------
    # 3. X-Ray daemon (UDP)
    # -----------------------------------------------------------------------

    def test_xray_udp(self):
        udp = UDPListener()
        self.closers.append(udp.close)
        s = self.start({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % udp.port, "OTEL_SERVICE_NAME": "tasks-xray"})
        root = "1-%08x-%s" % (int(time.time()), random_hex(12))
        parent = random_hex(8)
        header = "Root=%s;Parent=%s;Sampled=1" % (root, parent)
        # the only HTTP request before the documents are checked is this POST: every
        # document sent until then must belong to its trace (the status is polled in the db)
        tid = s.create("TASK1", data={"foo": "bar"}, headers={"X-Amzn-Trace-Id": header})
        status = self.wait_status_db(s, tid, FINAL)
        self.assertEqual(status, "COMPLETED")

        def parsed():
            out = []
            for d in udp.snapshot():
                head, sep, rest = d.partition(b"\n")
                try:
                    out.append((d, head, sep, json.loads(rest.decode("utf-8"))))
                except ValueError:
                    out.append((d, head, sep, None))
            return out

        def enough():
            got = parsed()
            return got if sum(1 for x in got if isinstance(x[3], dict)) >= EXPECTED_COUNT else None
        try:
            got = wait_until(enough, 5.0, what=">= %d X-Ray documents" % EXPECTED_COUNT)
        except AssertionError as e:
            self.fail("%s; datagrams: %r; stderr tail:\n%s"
                      % (e, [d[:300] for d in udp.snapshot()], s.stderr_text()[-3000:]))

        all_docs = []
        for d, head, sep, doc in got:
            self.assertTrue(sep, "datagram without a header line: %r" % d[:300])
            self.assertEqual(head, b'{"format": "json", "version": 1}', "datagram header line: %r" % d[:300])
            self.assertLessEqual(len(d), 65536)
            self.assertIsInstance(doc, dict, "datagram body is not a JSON object: %r" % d[:300])
            all_docs.append(doc)
        where = "documents: %s" % json.dumps([{k: x.get(k) for k in ("name", "id", "parent_id", "type", "trace_id")}
                                               for x in all_docs])
        for doc in all_docs:
            self.assertEqual(doc.get("trace_id"), root, "document of another trace; %s" % where)
            self.assertRegex(doc.get("id", ""), r"^[0-9a-f]{16}$", doc)
            for f in ("name", "start_time", "end_time"):
                self.assertIn(f, doc, doc)
            self.assertLessEqual(doc["start_time"], doc["end_time"], doc)
            self.assertNotEqual(doc["id"], parent, "sent a document with id = the header's Parent; %s" % where)
        ids = [d["id"] for d in all_docs]
        self.assertEqual(len(ids), len(set(ids)), "document ids not unique; %s" % where)
        idset = set(ids)
        # the SERVER span (POST /tasks) is the service's segment, named after the service,
        # continuing the header's Parent; every other span is a subsegment under its parent
        segments = [d for d in all_docs if d.get("type") != "subsegment"]
        self.assertEqual(len(segments), 1, "expected one segment (the POST span); %s" % where)
        seg = segments[0]
        self.assertEqual(seg.get("name"), "tasks-xray", "segment name (OTEL_SERVICE_NAME); %s" % where)
        self.assertEqual(seg.get("parent_id"), parent, "the segment does not continue the header Parent; %s" % where)
        self.assertEqual(seg.get("http", {}).get("request", {}).get("method"), "POST", seg)
        subs = [d for d in all_docs if d.get("type") == "subsegment"]
        names = [d.get("name") for d in subs]
        for name, (_, _, count) in EXPECTED.items():
            if name != "POST /tasks":
                self.assertEqual(names.count(name), count, "subsegments named %r; %s" % (name, where))
        for d in subs:
            self.assertIn(d.get("parent_id"), idset | {parent},
                          "subsegment %r: parent_id %r is neither a document id nor the header Parent; %s"
                          % (d.get("name"), d.get("parent_id"), where))
            self.assertNotEqual(d.get("parent_id"), d["id"], d)
        under_parent = [d["id"] for d in all_docs if d.get("parent_id") == parent]
        self.assertEqual(under_parent, [seg["id"]], "documents directly under the header Parent; %s" % where)
        # one tree: every document reaches the segment through its parents
        by_id = {d["id"]: d for d in all_docs}
        for d in all_docs:
            cur, hops = d, 0
            while cur["id"] != seg["id"] and hops < 20:
                cur, hops = by_id.get(cur.get("parent_id")), hops + 1
                self.assertIsNotNone(cur, "%r does not reach the segment; %s" % (d.get("name"), where))
            self.assertEqual(cur["id"], seg["id"])

        # the local view: the same trace, spelled the W3C way, the same span ids
        w3c = root[2:].replace("-", "")
        local = self.local_trace(s, tid)
        mine = [sp for sp in local if sp["trace_id"] == w3c]
        self.assertTrue(mine, "no local span in trace %s: %r" % (w3c, [(sp["name"], sp["trace_id"]) for sp in local]))
        post = [sp for sp in local if sp["name"] == "POST /tasks"]
        self.assertEqual([sp["trace_id"] for sp in post], [w3c], "trace id of the POST span in the local view")
        self.assertEqual({sp["span_id"] for sp in mine} - idset, set(),
                         "local spans of the trace missing from the X-Ray documents")
        self.stop_clean(s)

    # -----------------------------------------------------------------------
    # 4. Local view
    # -----------------------------------------------------------------------

    def local_get(self, sp, f):
        if f == "kind":
            k = sp["kind"]
            return {v: k2 for k2, v in KIND_NAMES.items()}.get(k, k) if isinstance(k, str) else k
        return sp[{"name": "name", "trace": "trace_id", "id": "span_id", "parent": "parent_span_id"}[f]]

    def test_local_trace_view(self):
        s = self.start({})
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
        spans = self.wait_local_spans(s, tid, {n: c for n, (_, _, c) in EXPECTED.items()})
        for sp in spans:
            for k in ("name", "trace_id", "span_id", "parent_span_id", "kind", "start_time_unix_nano",
                      "end_time_unix_nano", "duration_ms", "attributes", "links", "status"):
                self.assertIn(k, sp, "local span lacks %r: %r" % (k, sp))
            self.assertIsInstance(sp["attributes"], dict, sp)
            self.assertIn("code", sp["status"], sp)
            self.assertIn("message", sp["status"], sp)
            self.assertLessEqual(int(sp["start_time_unix_nano"]), int(sp["end_time_unix_nano"]), sp)
            self.assertAlmostEqual(sp["duration_ms"],
                                   (int(sp["end_time_unix_nano"]) - int(sp["start_time_unix_nano"])) / 1e6,
                                   delta=0.01, msg=sp)
        starts = [int(sp["start_time_unix_nano"]) for sp in spans]
        self.assertEqual(starts, sorted(starts), "local spans not in time order: %r"
                         % [(sp["name"], sp["start_time_unix_nano"]) for sp in spans])
        # the task's own spans (reads of the task are checked in test_local_trace_view_one_trace)
        mine = [sp for sp in spans if sp["trace_id"] == trace_id]
        self.check_tree(mine, trace_id, parent_id, self.local_get)
        handler = [sp for sp in mine if sp["name"] == HANDLER_SPAN][0]
        self.assertNotEqual(handler["status"]["code"], "ERROR", handler)
        for sp in mine:
            if sp["name"] in ("POST /tasks", "receive task1", "process task1"):
                self.assertEqual(sp["attributes"].get("task.id"), tid, sp)
        self.stop_clean(s)

    def test_local_trace_view_one_trace(self):
        """The view of a task that was read (as the dashboard and any client do) holds one trace."""
        s = self.start({})
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
        spans = self.wait_local_spans(s, tid, {"UPDATE tasks": 2, HANDLER_SPAN: 1})
        others = [(sp["name"], sp["trace_id"]) for sp in spans if sp["trace_id"] != trace_id]
        self.assertEqual(others, [], "GET /tasks/%s/trace holds spans of other traces than the task's %s"
                         % (tid, trace_id))
        self.stop_clean(s)

    def test_a_client_patch_joins_its_tasks_trace(self):
        """A client that runs a task itself (TASK2 has no route) and PATCHes it with no trace
        context: its requests join the task's trace, under the span that created the task. One
        that sends its own traceparent keeps to its own trace."""
        s = self.start({})
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = s.create("TASK2", headers={"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
        self.assertEqual(s.set_status(tid, "IN_PROGRESS", "a worker of its own").status, 204)
        own_trace = random_hex(16)
        r = s.patch("/tasks/" + tid, {"status": "COMPLETED", "status_msg": "done"},
                    headers={"traceparent": "00-%s-%s-01" % (own_trace, random_hex(8))})
        self.assertEqual(r.status, 204, r)
        spans = self.wait_local_spans(s, tid, {"POST /tasks": 1, "PATCH /tasks/{task_id}": 2,
                                               "UPDATE tasks": 2})
        post = [sp for sp in spans if sp["name"] == "POST /tasks"][0]
        patches = sorted((sp for sp in spans if sp["name"] == "PATCH /tasks/{task_id}"),
                         key=lambda sp: int(sp["start_time_unix_nano"]))
        joined, own = patches
        self.assertEqual((joined["trace_id"], joined["parent_span_id"]), (trace_id, post["span_id"]), joined)
        self.assertEqual(own["trace_id"], own_trace, own)
        updates = sorted((sp for sp in spans if sp["name"] == "UPDATE tasks"),
                         key=lambda sp: int(sp["start_time_unix_nano"]))
        self.assertEqual([(u["trace_id"], u["parent_span_id"]) for u in updates],
                         [(trace_id, joined["span_id"]), (own_trace, own["span_id"])], updates)
        self.stop_clean(s)

    def test_refused_and_repeated_writes_stay_out_of_the_tasks_trace(self):
        """The task's own view keeps the requests that changed it: refused PATCHes (409), a
        repeated one (204, nothing changed) and POSTs answered from their Idempotency-Key add
        nothing, so that no client can flood a task's trace (and push other tasks' spans out
        of the log)."""
        s = self.start({})
        tid = s.create("TASK2", headers={"Idempotency-Key": "trace-flood-1"})
        self.assertEqual(s.set_status(tid, "IN_PROGRESS", "mine").status, 204)
        self.assertEqual(s.set_status(tid, "COMPLETED", "done").status, 204)
        # the publisher's spans of its creation too, which come on their own time
        names = {"POST /tasks": 1, "PATCH /tasks/{task_id}": 2, "UPDATE tasks": 2,
                 "process publisher": 1, "publish tasks": 1}
        before = self.wait_local_spans(s, tid, names)
        for _ in range(20):
            self.assertEqual(s.set_status(tid, "FAILED", "late").status, 409)
            self.assertEqual(s.set_status(tid, "COMPLETED", "done").status, 204)
            r = s.post("/tasks", {"task_type": "TASK2"}, headers={"Idempotency-Key": "trace-flood-1"})
            self.assertEqual((r.status, r.json()["id"]), (200, tid))
        # A request's spans go to the view before its answer is written; what the store
        # committed for one reaches the publisher before the creation of a task posted after
        # them all, whose publish span is in that task's view once handled.
        control = s.create("TASK2")
        self.wait_local_spans(s, control, {"publish tasks": 1})
        after = self.local_trace(s, tid)
        self.assertEqual(sorted(sp["span_id"] for sp in after),
                         sorted(sp["span_id"] for sp in before),
                         [sp["name"] for sp in after])
        self.stop_clean(s)

    def test_fanned_out_publish_names_its_queues_once(self):
        """A task published to two queues: one taskd.queue attribute naming both, no key twice."""
        cfg = write_config(self.tmp, {
            "queues": [{"name": "work"}, {"name": "audit"}], "handlers": [],
            "subscriptions": [{"queue": "work", "filter_policy": {"TaskType": ["TASK2"]}},
                              {"queue": "audit", "filter_policy": {"TaskType": ["TASK2"]}}]})
        s = Taskd(tmpdir=self.tmp, db=os.path.join(self.tmp, "fan.db"), config=cfg)
        self.servers.append(s)
        tid = s.create("TASK2", data={})

        def publish_span():
            r = s.get("/tasks/%s/trace" % tid)
            self.assertEqual(r.status, 200, r)
            pairs = []

            def keep(items):
                pairs.append([k for k, _ in items])
                return dict(items)
            body = json.loads(r.body.decode("utf-8"), object_pairs_hook=keep)
            for keys in pairs:
                self.assertEqual(len(keys), len(set(keys)), "a key twice in one object: %r" % keys)
            return [sp for sp in body["spans"] if sp["name"].startswith("publish ")]
        spans = wait_until(publish_span, 5.0, what="the publish span of %s" % tid)
        self.assertEqual(spans[0]["attributes"].get("taskd.queue"), "work,audit", spans[0])
        self.stop_clean(s)

    def test_new_trace_is_xray_compatible(self):
        """No trace header: a new trace whose first 8 hex digits are the unix time (X-Ray ids)."""
        s = self.start({})
        before = int(time.time())
        tid = s.create("TASK1", data={"foo": "bar"})
        after = int(time.time())
        self.assertEqual(self.wait_status_db(s, tid, FINAL), "COMPLETED")
        spans = wait_until(lambda: [sp for sp in self.local_trace(s, tid) if sp["name"] == "POST /tasks"],
                           5.0, what="the POST span in the local view")
        post = spans[0]
        new_id = post["trace_id"]
        self.assertRegex(new_id, r"^[0-9a-f]{32}$")
        epoch = int(new_id[:8], 16)
        self.assertTrue(before - 5 <= epoch <= after + 5,
                        "new trace id %s: first 8 hex = %d, not the current unix time (%d..%d)"
                        % (new_id, epoch, before, after))
        self.assertIn(post["parent_span_id"], ("", None), "a new trace's POST span has a parent: %r" % post)
        spans = self.wait_local_spans(s, tid, {n: c for n, (_, _, c) in EXPECTED.items()})
        mine = [sp for sp in spans if sp["trace_id"] == new_id]
        self.assertEqual(sorted(sp["name"] for sp in mine),
                         sorted(n for n, (_, _, c) in EXPECTED.items() for _ in range(c)),
                         "the spans of the new trace")
        # a second task gets another trace
        tid2 = s.create("TASK1")
        post2 = wait_until(lambda: [sp for sp in self.local_trace(s, tid2) if sp["name"] == "POST /tasks"],
                           5.0, what="the second POST span")[0]
        self.assertNotEqual(post2["trace_id"], new_id, "two tasks without headers share a trace")
        self.stop_clean(s)

    def test_child_spans_start_within_parent(self):
        """A child span does not start before its parent (causality on one host).

        Checked on several tasks: a clock truncated to milliseconds shows up on most of them.
        """
        s = self.start({"TASK1_SECONDS": "0.01"})
        bad = []
        for _ in range(4):
            trace_id, parent_id = random_hex(16), random_hex(8)
            tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)})
            spans = self.wait_local_spans(s, tid, {n: c for n, (_, _, c) in EXPECTED.items()})
            by_id = {sp["span_id"]: sp for sp in spans if sp["trace_id"] == trace_id}
            for sp in by_id.values():
                p = by_id.get(sp["parent_span_id"])
                if p and int(sp["start_time_unix_nano"]) < int(p["start_time_unix_nano"]):
                    bad.append("%r starts %d ns before its parent %r (%s < %s)"
                               % (sp["name"], int(p["start_time_unix_nano"]) - int(sp["start_time_unix_nano"]),
                                  p["name"], sp["start_time_unix_nano"], p["start_time_unix_nano"]))
        self.assertEqual(bad, [], "spans starting before their parent")
        self.stop_clean(s)
    # -----------------------------------------------------------------------
    # 5. A failed task
    # -----------------------------------------------------------------------

    def test_failed_task_span_and_log(self):
        s = self.start({"TASK1_SECONDS": "0.05", "TASK1_FAILURE_RATE": "1"})
        trace_id, parent_id = random_hex(16), random_hex(8)
        tid = self.run_one_task(s, {"traceparent": "00-%s-%s-01" % (trace_id, parent_id)}, final=("FAILED",))
        spans = self.wait_local_spans(s, tid, {HANDLER_SPAN: 1, "UPDATE tasks": 2})
        handler = [sp for sp in spans if sp["name"] == HANDLER_SPAN][0]
        self.assertEqual(handler["status"]["code"], "ERROR", "handler span of a failed task: %r" % handler)
        self.assertEqual(handler["status"]["message"], "Task failed somehow", handler)
        self.assertEqual(handler["trace_id"], trace_id)
        updates = [sp for sp in spans if sp["name"] == "UPDATE tasks"]
        self.assertEqual(sorted(str(sp["attributes"].get("task.status")) for sp in updates),
                         ["FAILED", "IN_PROGRESS"], updates)

        def log_line():
            for line in s.log_objects():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("message") == "task failed" and obj.get("task_id") == tid:
                    return obj
            return None
        try:
            obj = wait_until(log_line, 5.0, what="a 'task failed' log line for %s" % tid)
        except AssertionError as e:
            self.fail("%s; stderr:\n%s" % (e, s.stderr_text()[-3000:]))
        self.assertEqual(obj.get("trace_id"), trace_id, "trace_id of the 'task failed' log line: %r" % obj)
        self.assertEqual(obj.get("level"), "INFO", obj)
        # every stderr line is one JSON object
        for line in s.log_objects():
            if line.strip():
                self.assertIsInstance(json.loads(line), dict, line)
        self.stop_clean(s)

    # -----------------------------------------------------------------------
    # 6. An unreachable collector does not slow the API
    # -----------------------------------------------------------------------

    def post_latencies(self, s, n=300):
        conn = s.connection()
        lat = []
        try:
            for i in range(n):
                t0 = time.perf_counter()
                r = s.post("/tasks", {"task_type": "TASK2", "data": {"i": i}}, conn=conn)
                lat.append(time.perf_counter() - t0)
                self.assertEqual(r.status, 201, "POST %d -> %r" % (i, r))
        finally:
            conn.close()
        return lat

    def test_unreachable_collector_does_not_block(self):
        base = self.start({}, name="base")
        base_lat = self.post_latencies(base)
        self.stop_clean(base)
        s = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % closed_port(),
                        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, name="dead")
        lat = self.post_latencies(s)
        m0, m1 = statistics.median(base_lat), statistics.median(lat)
        self.assertLess(m1, 0.050, "median POST latency with an unreachable collector: %.1f ms" % (m1 * 1e3))
        self.assertLess(m1, 3 * m0 + 0.005, "median POST latency %.2f ms with an unreachable collector vs "
                        "%.2f ms without an exporter" % (m1 * 1e3, m0 * 1e3))
        self.assertLess(max(lat), 2.0, "a POST took %.2f s with an unreachable collector" % max(lat))

        r = s.get("/metrics")
        self.assertEqual(r.status, 200)
        parsed = parse_metrics(r.body.decode("utf-8"))
        dropped = [v for (name, _), v in parsed.items() if name == "taskd_spans_dropped_total"]
        self.assertTrue(dropped, "taskd_spans_dropped_total missing from /metrics")
        for v in dropped:
            self.assertGreaterEqual(v, 0)
        self.stop_clean(s)

    def test_libcurl_is_loaded_for_otlp_export_alone(self):
        """taskd loads libcurl (and the libraries it brings) only when an OTLP exporter is
        configured: not with no exporter, nor with X-Ray alone (UDP); with one, spans reach the
        collector through it."""
        def libcurl_mapped(s):
            with open("/proc/%d/maps" % s.proc.pid) as f:
                return "libcurl" in f.read()
        udp = UDPListener()
        self.closers.append(udp.close)
        for name, env in (("none", {}), ("xray", {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % udp.port})):
            s = self.start(env, name=name)
            self.assertFalse(libcurl_mapped(s), "libcurl is loaded into taskd with %s" % name)
            self.stop_clean(s)
        rx = OTLPReceiver()
        self.closers.append(rx.close)
        s = self.start({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
                       name="otlp")
        self.assertTrue(libcurl_mapped(s), "libcurl is not loaded into taskd with an OTLP exporter")
        self.run_one_task(s, None)
        self.stop_clean(s)  # SIGTERM flushes the exporter
        wait_until(lambda: otlp_json_spans(rx.snapshot(), True) or None, 5.0, what="spans at the receiver")

    # -----------------------------------------------------------------------
    # 7. Prometheus metrics
    # -----------------------------------------------------------------------

    def test_metrics(self):
        s = self.start({"TASK1_SECONDS": "0.05"})
        tid = self.run_one_task(s, None)
        s.get("/tasks/" + tid)

        def have_handler_metric():
            m = metrics(s)
            return m if any(k[0] == "taskd_handler_duration_seconds_bucket" for k in m) else None
        m = wait_until(have_handler_metric, 5.0, what="taskd_handler_duration_seconds_bucket in /metrics")
        names = {k[0] for k in m}
        for name in ("taskd_http_requests_total", "taskd_task_transitions_total",
                     "taskd_handler_duration_seconds_bucket", "taskd_tasks_created_total"):
            self.assertIn(name, names, "%s missing from /metrics" % name)
        routes = {dict(lbl).get("route") for (n, lbl) in m if n == "taskd_http_requests_total"}
        self.assertIn("/tasks", routes, "taskd_http_requests_total has no route=\"/tasks\": %r" % routes)
        self.assertIn("/tasks/{task_id}", routes, routes)
        created = sum(v for (n, lbl), v in m.items()
                      if n == "taskd_tasks_created_total" and dict(lbl).get("task_type", "TASK1") == "TASK1")
        self.assertGreaterEqual(created, 1)
        posts = sum(v for (n, lbl), v in m.items() if n == "taskd_http_requests_total"
                    and dict(lbl).get("route") == "/tasks" and dict(lbl).get("method") == "POST")
        self.assertGreaterEqual(posts, 1)
        self.assertGreaterEqual(sum(v for (n, _), v in m.items() if n == "taskd_task_transitions_total"), 2)
        inf = [v for (n, lbl), v in m.items()
               if n == "taskd_handler_duration_seconds_bucket" and dict(lbl).get("le") == "+Inf"]
        self.assertTrue(inf and sum(inf) >= 1, "handler histogram +Inf bucket: %r" % inf)
        self.stop_clean(s)


if __name__ == "__main__":
    unittest.main()
