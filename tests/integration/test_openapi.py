"""/openapi.json: a document real tools accept, and one the running server keeps to.

Lint runs Redocly CLI (`redocly lint`) on the document served by a running taskd, with the
recommended rules and the few turned off in REDOCLY_CONFIG (each with its reason); any error
or warning fails. Compile has Ajv (JSON Schema 2020-12, strict, formats checked) compile every
schema in it. Live drives real requests -- create, replay, get, get with wait, list, page, patch,
history, trace, queues, redrive, health, metrics, the dashboard, the event stream (its head and
first blocks), the 503s of max_waiters and max_event_clients, and 400, 404, 405, 409, 413 and 422
of every kind --
and holds each answer to the document: the operation is documented, its status is documented
for it, the Content-Type is one of that status' media types, the body validates against that
media type's schema with every object closed to undocumented fields (openapi_check.mjs), the
required headers are there. The other way round, every input the server accepts validates
against the document's request schemas (body, query and header parameters), and the inputs it
refuses for a reason a schema can say are refused by them too. Every documented operation is
driven, and every status it documents except 503 (which needs a failing store), 401 and 403
(an access policy; test_auth.py holds those answers to the document) is seen.
RouteRules checks what the document says in info.description for every route: 405 with an
Allow that lists exactly the documented methods (and HEAD beside GET), HEAD answered like GET,
404 for unknown paths, 307 from a trailing slash to a documented operation.

The tools (@redocly/cli, ajv, ajv-formats) come from scripts/node-tools.sh, installed outside the
repository; the test fails, naming the command, when they are not installed.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NODE_TOOLS = os.path.join(harness.REPO, "scripts", "node-tools.sh")
CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi_check.mjs")
TOOL_TIMEOUT = 60
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCAL_PATHS = {"/", "/dashboard/{name}", "/tasks/{task_id}/trace", "/queues", "/queues/{name}/redrive", "/metrics",
               "/events"}
UNKNOWN_ID = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
ABSENT = object()  # no request body at all
# The white space pydantic strips around an integer's text (Rust's char::is_whitespace)
LAX_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200b))) \
    + "\u2028\u2029\u202f\u205f\u3000"

REDOCLY_CONFIG = """\
# Written by tests/integration/test_openapi.py. Redocly's recommended rules; the test fails on
# any error or warning. Turned off, each for its reason:
extends:
  - recommended
rules:
  # taskd publishes no licence; the document must not invent one.
  info-license: off
  # GET /, /health, /metrics, /openapi.json and /queues take no input, so they have no client
  # error of their own; the 404, 405 and 413 any route can give are described once, in
  # info.description, not repeated on every operation.
  operation-4xx-response: off
"""


def tool_env():
    env = dict(os.environ)
    env.update({"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
                "NO_UPDATE_NOTIFIER": "1"})
    return env


def node_tools():
    """(tools folder, redocly executable); RuntimeError when not installed."""
    def ask(what):
        return subprocess.run([NODE_TOOLS, what], stdout=subprocess.PIPE, check=True,
                              timeout=10).stdout.decode().strip()
    folder, redocly = ask("dir"), ask("redocly-bin")
    if not (os.access(redocly, os.X_OK)
            and os.path.isfile(os.path.join(folder, "node_modules", "ajv", "package.json"))
            and os.path.isfile(os.path.join(folder, "node_modules", "ajv-formats", "package.json"))):
        raise RuntimeError("the OpenAPI tools are not installed in %s: run scripts/node-tools.sh install"
                           % folder)
    if not shutil.which("node"):
        raise RuntimeError("node not found: install Node.js 20 (scripts/install-deps.sh --test does)")
    return folder, redocly


def pointer_get(doc, pointer):
    node = doc
    for part in pointer.lstrip("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def escape(key):
    return key.replace("~", "~0").replace("/", "~1")


def resolve(doc, obj, pointer):
    """Follow $ref: (the object, with the referrer's summary/description, and its pointer)."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj:
        seen += 1
        if seen > 20:
            raise AssertionError("$ref loop at %s" % pointer)
        overrides = {k: v for k, v in obj.items() if k in ("summary", "description")}
        pointer = obj["$ref"]
        obj = dict(pointer_get(doc, pointer), **overrides)
    return obj, pointer


def media_key(content, content_type):
    """The key of content that a response's Content-Type falls under, or None."""
    mt = (content_type or "").split(";")[0].strip().lower()
    for key in (mt, mt.split("/")[0] + "/*", "*/*"):
        if key in content:
            return key
    return None


def templates(doc):
    """[(regex, template)], literal paths before templated ones (as OpenAPI matches)."""
    out = []
    for t in doc["paths"]:
        rx = "^" + "".join("[^/]+" if part.startswith("{") else re.escape(part)
                           for part in re.split(r"(\{[^}]+\})", t)) + "$"
        out.append((t.count("{"), rx, t))
    return [(re.compile(rx), t) for _, rx, t in sorted(out)]


def integer_text(doc):
    """The document's pattern of an integer written as text (the string a ttl may be), which
    info.description says the integer query parameters are read by too."""
    ttl = doc["components"]["schemas"]["NewTask"]["properties"]["ttl"]
    return re.compile(next(s["pattern"] for s in ttl["anyOf"] if s.get("type") == "string"))


def coerce(schema, raw, int_text):
    """A query/header string as the value its schema describes: an integer from text that
    int_text matches (white space around it, a '+', '_' between digits, a fraction of zeros, the
    forms of zero with a '-'), else from digits with a sign (out of its bounds), else the text."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "integer" in types and raw is not None:
        if int_text.fullmatch(raw):
            digits = re.sub(r"\.0+$", "", raw.strip(LAX_SPACE)).replace("_", "").lstrip("+")
            return 0 if "-" in digits else int(digits)
        if re.fullmatch(r"[+-]?[0-9]+", raw):
            return int(raw)
    return raw


class Doc:
    """The served document and the answers held to it."""

    def __init__(self, doc):
        self.doc = doc
        self.templates = templates(doc)
        self.int_text = integer_text(doc)
        self.checks = []      # for openapi_check.mjs
        self.expect = {}      # check id -> (what, must be valid: True/False, group or None)
        self.problems = []    # mismatches found without Ajv
        self.driven = set()   # (template, method)
        self.statuses = {}    # (template, method) -> {status}

    def template_of(self, path):
        for rx, t in self.templates:
            if rx.match(path):
                return t
        return None

    def operation(self, template, method):
        item = self.doc["paths"].get(template) or {}
        return item.get(method.lower())

    def check(self, what, pointer, data, valid=True, closed=False, group=None):
        cid = len(self.checks)
        self.checks.append({"id": cid, "pointer": pointer, "data": data, "closed": closed})
        self.expect[cid] = (what, valid, group)

    def parameters(self, template, method):
        """{(in, name): (parameter, pointer of its schema)} of an operation."""
        out = {}
        base = "#/paths/" + escape(template)
        item = self.doc["paths"][template]
        for where, params in ((base + "/parameters", item.get("parameters", [])),
                              (base + "/" + method + "/parameters",
                               item[method].get("parameters", []))):
            for i, p in enumerate(params):
                p, ptr = resolve(self.doc, p, "%s/%d" % (where, i))
                out[(p["in"], p["name"].lower() if p["in"] == "header" else p["name"])] = \
                    (p, ptr + "/schema")
        return out

    def record(self, what, method, url, status, headers, body, sent=None, input_ok=None):
        """Hold one exchange to the document. input_ok: whether the request's input is valid by
        the document's schemas (default: True for a 2xx answer, not checked otherwise)."""
        method = method.lower()
        parts = urlsplit(url)
        template = self.template_of(parts.path)
        if template is None:
            self.problems.append("%s: %s %s answered %s, but no documented path matches"
                                 % (what, method.upper(), parts.path, status))
            return
        op = self.operation(template, method)
        if op is None:
            self.problems.append("%s: %s %s answered %s, but %s has no %s operation"
                                 % (what, method.upper(), url, status, template, method))
            return
        self.driven.add((template, method))
        self.statuses.setdefault((template, method), set()).add(status)
        if input_ok is None and 200 <= status < 300:
            input_ok = True
        if input_ok is not None:
            self.check_input(what, template, method, parts, headers_sent=sent and sent[0],
                             body=sent and sent[1], valid=input_ok)
        self.check_response(what, template, method, status, headers, body)

    def check_input(self, what, template, method, parts, headers_sent, body, valid):
        group = "input %d" % len(self.checks) if not valid else None
        params = self.parameters(template, method)
        values = {("query", k): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        values.update({("header", k.lower()): v for k, v in (headers_sent or {}).items()})
        segments = parts.path.split("/")
        for i, seg in enumerate(template.split("/")):
            if seg.startswith("{"):
                values[("path", seg[1:-1])] = segments[i]
        for key, (p, schema_ptr) in params.items():
            if key in values:
                self.check("%s: %s parameter %s=%r" % (what, key[0], key[1], values[key]),
                           schema_ptr, coerce(pointer_get(self.doc, schema_ptr), values[key], self.int_text),
                           valid=valid, group=group)
            elif p.get("required") and valid:
                self.problems.append("%s: required %s parameter %s not sent, yet accepted"
                                     % (what, key[0], key[1]))
        rb = self.operation(template, method).get("requestBody")
        if rb is not None:
            rb, ptr = resolve(self.doc, rb, "#/paths/%s/%s/requestBody" % (escape(template), method))
            if body is None:
                if rb.get("required") and valid:
                    self.problems.append("%s: no body sent, yet accepted" % what)
            else:
                try:
                    data = json.loads(body)
                except ValueError:
                    data = ABSENT
                    if valid:
                        self.problems.append("%s: a body that is not JSON was accepted" % what)
                key = media_key(rb.get("content", {}), "application/json")
                if data is not ABSENT and key:
                    self.check("%s: request body" % what,
                               "%s/content/%s/schema" % (ptr, escape(key)), data, valid=valid,
                               group=group)
        if group is not None and not any(e[2] == group for e in self.expect.values()):
            self.problems.append("%s: refused input, but nothing in it is checked by a schema"
                                 % what)

    def check_response(self, what, template, method, status, headers, body):
        op = self.operation(template, method)
        base = "#/paths/%s/%s/responses" % (escape(template), method)
        responses = op.get("responses", {})
        key = next((k for k in (str(status), "%dXX" % (status // 100), "default")
                    if k in responses), None)
        if key is None:
            self.problems.append("%s: %s %s answered %d, not documented (documented: %s)"
                                 % (what, method.upper(), template, status,
                                    ", ".join(sorted(responses))))
            return
        resp, ptr = resolve(self.doc, responses[key], "%s/%s" % (base, key))
        lower = {k.lower(): v for k, v in headers}
        for name, h in resp.get("headers", {}).items():
            h, hptr = resolve(self.doc, h, "%s/headers/%s" % (ptr, escape(name)))
            value = lower.get(name.lower())
            if value is None:
                if h.get("required"):
                    self.problems.append("%s: %d without its required header %s"
                                         % (what, status, name))
            elif "schema" in h:
                self.check("%s: %d header %s" % (what, status, name), hptr + "/schema",
                           coerce(pointer_get(self.doc, hptr + "/schema"), value, self.int_text))
        content = resp.get("content")
        ctype = lower.get("content-type")
        if not content:
            if body:
                self.problems.append("%s: %d documented without a body, answered %r"
                                     % (what, status, body[:200]))
            return
        mkey = media_key(content, ctype)
        if mkey is None:
            self.problems.append("%s: %d with Content-Type %r, documented: %s"
                                 % (what, status, ctype, ", ".join(content)))
            return
        if "schema" not in content[mkey]:
            return
        text = body.decode("utf-8", "replace")
        if mkey.split("/")[-1] == "json" or mkey.endswith("+json"):
            try:
                data = json.loads(text)
            except ValueError as e:
                self.problems.append("%s: %d body is not JSON (%s): %r" % (what, status, e, text[:200]))
                return
        else:
            data = text
        self.check("%s: %d body %s" % (what, status, text[:300]),
                   "%s/content/%s/schema" % (ptr, escape(mkey)), data, closed=True)

    def run_checks(self, tools):
        """Run openapi_check.mjs on the checks; (output, list of failures)."""
        out = run_checker(tools, self.doc, self.checks)
        failures = []
        groups = {}
        for r in out["results"]:
            what, valid, group = self.expect[r["id"]]
            if group is not None:
                groups.setdefault(group, []).append((what, r["valid"]))
            elif r["valid"] != valid:
                failures.append("%s: %s by the document%s" % (
                    what, "invalid" if valid else "valid", ": " + "; ".join(r["errors"][:6])
                    if r["errors"] else ""))
        for group, entries in groups.items():
            if all(v for _, v in entries):
                failures.append("refused by the server, yet valid by the document: "
                                + "; ".join(w for w, _ in entries))
        return out, failures


def run_checker(tools, doc, checks):
    with tempfile.TemporaryDirectory(prefix="taskd-openapi-") as tmp:
        path = os.path.join(tmp, "input.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"document": doc, "checks": checks}, f)
        p = subprocess.run(["node", CHECKER, tools, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TOOL_TIMEOUT, env=tool_env())
    if p.returncode != 0:
        raise AssertionError("openapi_check.mjs failed (%d): %s" % (p.returncode, p.stderr.decode()))
    return json.loads(p.stdout)


def nested(depth):
    v = {}
    for _ in range(depth - 1):
        v = {"a": v}
    return v


class OpenAPITestCase(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.tools, cls.redocly = node_tools()
        # TASK1's demo handler runs 10 s by default, which stopping the server would wait for
        cls.server = harness.Taskd(env={"TASK1_SECONDS": "0"})
        try:
            r = cls.server.get("/openapi.json")
            if r.status != 200:
                raise AssertionError("GET /openapi.json -> %r" % (r,))
            cls.raw_doc = r.body
            cls.doc = r.json()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            alive = cls.server.alive()
            rc = cls.server.close()
            if not alive or rc != 0:
                raise AssertionError("taskd died or exited %s; stderr tail:\n%s"
                                     % (rc, cls.server.stderr_text()[-4000:]))

    def served(self, template):
        return template in self.doc["paths"]


class Tools(OpenAPITestCase):
    def test_redocly_lint(self):
        with tempfile.TemporaryDirectory(prefix="taskd-openapi-") as tmp:
            with open(os.path.join(tmp, "openapi.json"), "wb") as f:
                f.write(self.raw_doc)
            with open(os.path.join(tmp, "redocly.yaml"), "w", encoding="utf-8") as f:
                f.write(REDOCLY_CONFIG)
            p = subprocess.run([self.redocly, "lint", "--config", "redocly.yaml", "--format", "json",
                                "openapi.json"], cwd=tmp, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=TOOL_TIMEOUT, env=tool_env())
        try:
            report = json.loads(p.stdout)
        except ValueError:
            self.fail("redocly lint gave no JSON report (rc %d): %s %s"
                      % (p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
        problems = ["%s %s at %s: %s" % (x["severity"], x["ruleId"],
                                         x["location"][0].get("pointer") if x.get("location") else "?",
                                         x["message"]) for x in report.get("problems", [])]
        self.assertEqual(problems, [], "redocly lint:\n" + "\n".join(problems))
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])

    def test_every_schema_compiles(self):
        out = run_checker(self.tools, self.doc, [])
        self.assertEqual(out["compile_errors"], [])
        # the components and every schema of a parameter, a body or an answer
        self.assertIn("#/components/schemas/NewTask", out["compiled"])
        self.assertGreater(len(out["compiled"]), 20)

    def test_openapi_31(self):
        self.assertEqual(self.doc["openapi"], "3.1.0")
        text = self.raw_doc.decode()
        self.assertNotIn('"nullable"', text, "nullable is OpenAPI 3.0; 3.1 says type [..., \"null\"]")
        if not harness.on_lambda():
            self.assertLessEqual(LOCAL_PATHS, set(self.doc["paths"]))
        types = self.doc["components"]["schemas"]["TaskType"]["enum"]
        self.assertEqual(types, ["TASK1", "TASK2", "TASK3"])

    def test_query_reading_is_described(self):
        """What a query parameter given twice, without '=' or in other case is, which the
        parameters' schemas cannot say, is said once for every route."""
        text = self.doc["info"]["description"]
        for words in ("given twice is read at its last value", "by its name as written",
                      "without `=` is empty", "as pydantic reads one from a string"):
            self.assertIn(words, text)


class Live(OpenAPITestCase):
    """Real requests, each answer held to the document."""

    def setUp(self):
        self.d = Doc(self.doc)

    def call(self, what, method, url, body=ABSENT, headers=None, input_ok=None, raw=None):
        """One request (body: a value sent as JSON; raw: text sent as is), recorded."""
        payload = raw if raw is not None else None if body is ABSENT else json.dumps(body)
        r = self.server.request(method, url, body=payload, headers=headers)
        self.d.record(what, method, url, r.status, r.headers, r.body, sent=(headers or {}, payload),
                      input_ok=input_ok)
        return r

    def stream(self, what, query="", headers=None, input_ok=None, server=None):
        """GET /events: the head and what came within a moment, recorded; the status."""
        server = server or self.server
        with harness.EventStream(server, query=query, headers=headers) as st:
            if st.status == 200:
                st.next_block(5)  # the retry line, at least
            items = list(st.headers.items())
            body = st.body if st.status == 200 else st.body + st.raw
            if st.status != 200:  # an error answer is not chunked here: read it whole
                st.wait_closed(2) if st.headers.get("connection") == "close" else None
                got = harness.parse_response_headers(
                    b"HTTP/1.1 %d x\r\n" % st.status
                    + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in items)
                    + b"\r\n" + st.body + st.raw)
                body = got[2] if got else body
        url = "/events" + ("?" + query if query else "")
        self.d.record(what, "GET", url, st.status, items, body, sent=(headers or {}, None),
                      input_ok=input_ok)
        return st.status

    def expect_status(self, r, status, what):
        if r.status != status:
            self.d.problems.append("%s: expected %d, got %r (the test's own expectation)"
                                   % (what, status, r))

    def create(self, what, body=ABSENT, status=201, **kw):
        r = self.call(what, "POST", "/tasks", body, **kw)
        self.expect_status(r, status, what)
        return r.json().get("id") if r.status in (200, 201) else None

    def test_answers_match_the_document(self):
        d = self.d
        call = self.call

        # --- service routes
        for url in ["/openapi.json", "/health", "/metrics", "/queues", "/"]:
            if self.served(url):
                self.expect_status(call("GET " + url, "GET", url), 200, url)
        if self.served("/"):  # the dashboard's files: each, revalidated, and one that is not
            for name in ("app.js", "app.css", "favicon.svg"):
                r = call("dashboard " + name, "GET", "/dashboard/" + name)
                self.expect_status(r, 200, name)
            r = call("dashboard app.js revalidated", "GET", "/dashboard/app.js",
                     headers={"If-None-Match": self.server.get("/dashboard/app.js").header("ETag")})
            self.expect_status(r, 304, "dashboard app.js revalidated")
            r = call("dashboard page revalidated", "GET", "/",
                     headers={"If-None-Match": self.server.get("/").header("ETag")})
            self.expect_status(r, 304, "dashboard page revalidated")
            self.expect_status(call("dashboard no such file", "GET", "/dashboard/nope.js"), 404,
                               "dashboard no such file")

        # --- creation: what the server accepts
        t1 = self.create("create TASK1", {"task_type": "TASK1"})
        t2 = self.create("create with data and ttl",
                         {"task_type": "TASK2", "data": {"a": [1, {"b": None}]}, "ttl": 1662381756})
        self.create("ttl null", {"task_type": "TASK2", "ttl": None})
        self.create("ttl as digits", {"task_type": "TASK2", "ttl": "1662381756"})
        self.create("ttl zero as -0", {"task_type": "TASK2", "ttl": "-0"})
        self.create("ttl whole float", {"task_type": "TASK3", "ttl": 1662381756.0})
        # the strings pydantic reads as integers, which the ttl's pattern must take
        for what, ttl in (("a '+'", "+1662381756"), ("white space", " 1662381756\t"),
                          ("Unicode white space", "\u30001662381756\x85"),
                          ("underscores", "1_662_381_756"), ("a fraction of zeros", "1662381756.00"),
                          ("leading zeros", "0_01662381756"), ("zero after a zero", "0-_0")):
            self.create("ttl string with " + what, {"task_type": "TASK2", "ttl": ttl})
        self.create("data omitted, unknown field", {"task_type": "TASK3", "extra": [1, 2]})
        self.create("data empty, ttl 0", {"task_type": "TASK3", "data": {}, "ttl": 0})
        key = {"Idempotency-Key": "openapi-test-key"}
        first = self.create("idempotent first", {"task_type": "TASK2"}, headers=key)
        again = self.create("idempotent replay", {"task_type": "TASK2"}, status=200, headers=key)
        if first != again:
            d.problems.append("idempotent replay gave another id: %s, %s" % (first, again))

        # --- creation: what it refuses
        self.create("Idempotency-Key of 255", {"task_type": "TASK2"},
                    headers={"Idempotency-Key": "k" * 255})
        for what, k in (("Idempotency-Key too long", "k" * 256), ("Idempotency-Key empty", "")):
            self.create(what, {"task_type": "TASK2"}, status=400, headers={"Idempotency-Key": k},
                        input_ok=False)
        bad_bodies = [
            ("missing task_type", {}),
            ("unknown task_type", {"task_type": "NOPE"}),
            ("task_type not a string", {"task_type": 5}),
            ("data a list", {"task_type": "TASK2", "data": [1]}),
            ("data a string", {"task_type": "TASK2", "data": "x"}),
            ("ttl negative", {"task_type": "TASK2", "ttl": -1}),
            ("ttl not digits", {"task_type": "TASK2", "ttl": "soon"}),
            ("ttl negative digits", {"task_type": "TASK2", "ttl": "-5"}),
            ("ttl negative after a zero", {"task_type": "TASK2", "ttl": "0-5"}),
            ("ttl string with a fraction", {"task_type": "TASK2", "ttl": "5.5"}),
            ("ttl string with an exponent", {"task_type": "TASK2", "ttl": "1e2"}),
            ("ttl Arabic-Indic digit", {"task_type": "TASK2", "ttl": "\u0665"}),
            ("ttl string with '_' first", {"task_type": "TASK2", "ttl": "_5"}),
            ("ttl string with '__'", {"task_type": "TASK2", "ttl": "1__2"}),
            ("ttl fractional", {"task_type": "TASK2", "ttl": 1.5}),
            ("ttl boolean", {"task_type": "TASK2", "ttl": True}),
            ("every field bad", {"task_type": 1, "data": 2, "ttl": "x"}),
            ("body a list", [{"task_type": "TASK2"}]),
            ("body null", None),
        ]
        for what, body in bad_bodies:
            self.create(what, body, status=422, input_ok=False)
        # refused for reasons no schema here says: too deep, too big, not JSON, no body
        self.create("data nested 32 deep", {"task_type": "TASK2", "data": nested(32)}, status=422)
        self.create("ttl digits past int64", {"task_type": "TASK2", "ttl": "9" * 20}, status=422)
        self.create("ttl integer past int64", status=422,
                    raw='{"task_type": "TASK2", "ttl": 99999999999999999999}')
        self.create("body not JSON", status=422, raw='{"task_type": ')
        self.create("no body", status=422)
        self.too_large("POST", "/tasks")

        # --- reading
        for what, tid in (("get TASK1", t1), ("get with data", t2)):
            self.expect_status(call(what, "GET", "/tasks/" + tid), 200, what)
        self.expect_status(call("get upper-case id", "GET", "/tasks/" + t2.upper()), 200, "upper")
        self.expect_status(call("get unknown", "GET", "/tasks/" + UNKNOWN_ID), 404, "unknown")
        self.expect_status(call("get not a uuid", "GET", "/tasks/not-a-uuid"), 404, "not a uuid")

        # --- waiting (a long poll)
        if not harness.on_lambda():
            tid = self.create("to wait on", {"task_type": "TASK2"})
            self.expect_status(call("wait, time up", "GET", "/tasks/%s?wait=1" % tid), 200, "wait")
            done_id = self.server.create("TASK2")
            self.server.set_status(done_id, "FAILED")
            self.expect_status(call("wait, finished", "GET", "/tasks/%s?wait=60" % done_id), 200,
                               "wait")
            self.expect_status(call("wait, unknown", "GET", "/tasks/%s?wait=1" % UNKNOWN_ID), 404,
                               "wait unknown")
            for q in ("wait=%2B60", "wait=%2060%09", "wait=60.0", "wait=6_0"):
                self.expect_status(call("wait, finished, " + q, "GET",
                                        "/tasks/%s?%s" % (done_id, q)), 200, q)
        for what, q in (("wait 0", "wait=0"), ("wait 61", "wait=61"), ("wait not a number", "wait=x"),
                        ("wait with a fraction", "wait=1.5"), ("wait in Arabic-Indic", "wait=%D9%A5")):
            self.expect_status(call(what, "GET", "/tasks/%s?%s" % (t1, q), input_ok=False), 422, what)

        # --- listing
        page = call("list", "GET", "/tasks")
        self.expect_status(page, 200, "list")
        r = call("list page 1", "GET", "/tasks?limit=2&status=CREATED&task_type=TASK2")
        self.expect_status(r, 200, "list page 1")
        token = r.json().get("next_token") if r.status == 200 else None
        if not token:
            d.problems.append("list page 1: no next_token: %r" % (r,))
        else:
            q = "/tasks?limit=2&next_token=" + token
            self.expect_status(call("list page 2", "GET", q), 200, "list page 2")
            self.expect_status(call("list page 2, same filters", "GET",
                                    q + "&status=CREATED&task_type=TASK2"), 200, "page 2 filters")
            self.expect_status(call("token of other filters", "GET", q + "&status=FAILED"), 400,
                               "token filters")
        for q in ("limit=1", "limit=100", "limit=%2B5", "limit=%205", "limit=%E3%80%805%C2%A0",
                  "limit=5.0", "limit=4_2", "limit=0&limit=5", "LIMIT=0"):
            self.expect_status(call("list " + q, "GET", "/tasks?" + q), 200, q)
        self.expect_status(call("list empty token", "GET", "/tasks?next_token="), 200, "empty token")
        self.expect_status(call("list bad token", "GET", "/tasks?next_token=garbage"), 400,
                           "bad token")
        for what, q in [("limit 0", "limit=0"), ("limit 101", "limit=101"),
                        ("limit not a number", "limit=ten"), ("limit with a fraction", "limit=5.5"),
                        ("limit with an exponent", "limit=1e2"), ("limit in Arabic-Indic", "limit=%D9%A5"),
                        ("status unknown", "status=DONE"),
                        ("task_type unknown", "task_type=NOPE"),
                        ("every parameter bad", "limit=-1&status=x&task_type=y")]:
            self.expect_status(call(what, "GET", "/tasks?" + q, input_ok=False), 422, what)

        # --- changing
        path = "/tasks/" + t2
        done = {"status": "COMPLETED", "status_msg": "done", "result": [1, "x", None, {"a": True}]}
        self.expect_status(call("claim with a key too long", "PATCH", path, {"status": "IN_PROGRESS"},
                                headers={"Idempotency-Key": "k" * 256}), 400, "claim key 400")
        for what, body, headers in [("claim", {"status": "IN_PROGRESS"}, {"Idempotency-Key": "openapi-claim"}),
                                    ("claim again with its key", {"status": "IN_PROGRESS"},
                                     {"Idempotency-Key": "openapi-claim"}),
                                    ("complete with a result", dict(done, extra=1), None),
                                    ("complete again, the same change", done, None)]:
            self.expect_status(call(what, "PATCH", path, body, headers=headers), 204, what)
        self.expect_status(call("get with a result", "GET", path), 200, "get with a result")
        self.expect_status(call("change a finished task", "PATCH", path, {"status": "FAILED"}), 409,
                           "409")
        tid = self.create("to fail", {"task_type": "TASK2"})
        self.expect_status(call("fail with result null", "PATCH", "/tasks/" + tid,
                                {"status": "FAILED", "result": None}), 204, "fail")
        self.expect_status(call("patch unknown", "PATCH", "/tasks/" + UNKNOWN_ID,
                                {"status": "FAILED"}), 404, "patch unknown")
        tid = self.create("to patch badly", {"task_type": "TASK2"})
        for what, body in [("patch missing status", {}), ("patch unknown status", {"status": "DONE"}),
                           ("patch status not a string", {"status": 5}),
                           ("patch status_msg not a string", {"status": "FAILED", "status_msg": 5}),
                           ("patch status_msg null", {"status": "FAILED", "status_msg": None}),
                           ("patch body a list", [])]:
            self.expect_status(call(what, "PATCH", "/tasks/" + tid, body, input_ok=False), 422, what)
        self.expect_status(call("patch result nested 32 deep", "PATCH", "/tasks/" + tid,
                                {"status": "FAILED", "result": [nested(31)]}), 422, "deep result")
        self.expect_status(call("patch body not JSON", "PATCH", "/tasks/" + tid, raw="{"), 422,
                           "patch not JSON")
        self.too_large("PATCH", "/tasks/" + tid)

        # --- history: t2 was created, claimed and completed above
        self.expect_status(call("history", "GET", "/tasks/%s/history" % t2), 200, "history")
        self.expect_status(call("history unknown", "GET", "/tasks/%s/history" % UNKNOWN_ID), 404,
                           "history unknown")
        self.expect_status(call("history not a uuid", "GET", "/tasks/not-a-uuid/history"), 404,
                           "history not a uuid")

        # --- the local pipeline's routes
        if self.served("/tasks/{task_id}/trace"):
            harness.wait_until(lambda: len(self.server.get("/tasks/%s/trace" % t1).json()["spans"]) >= 3,
                               10, what="spans of the TASK1 task")
            self.expect_status(call("trace", "GET", "/tasks/%s/trace" % t1), 200, "trace")
            self.expect_status(call("trace unknown", "GET", "/tasks/%s/trace" % UNKNOWN_ID), 404,
                               "trace unknown")
        if self.served("/queues/{name}/redrive"):
            queues = self.server.get("/queues").json()["queues"]
            with_dlq = [q["name"] for q in queues if q["dead_letter_queue"]]
            self.expect_status(call("redrive", "POST", "/queues/%s/redrive" % with_dlq[0]), 200,
                               "redrive")
            self.expect_status(call("redrive unknown", "POST", "/queues/nope/redrive"), 404,
                               "redrive unknown")

        if self.served("/events"):
            for what, q, h in (("events", "", None), ("events filtered", "status=FAILED&task_type=TASK2", None),
                               ("events resumed", "", {"Last-Event-ID": "1"}),
                               ("events resumed by query", "last_event_id=2", None)):
                if self.stream(what, q, h) != 200:
                    d.problems.append("%s: not 200" % what)
            for what, q, h in (("events unknown status", "status=DONE", None),
                               ("events bad last_event_id", "last_event_id=-1", None)):
                if self.stream(what, q, h, input_ok=False) != 422:
                    d.problems.append("%s: not 422" % what)
            # the bounds: a server that takes one waiter and one event client, both taken
            with tempfile.TemporaryDirectory(prefix="taskd-openapi-") as tmp:
                bounded = harness.Taskd(config=harness.write_config(
                    tmp, {"max_waiters": 1, "max_event_clients": 1}), tmpdir=tmp)
                held = []
                try:
                    tid = bounded.create("TASK2")
                    waiter = socket.create_connection(("127.0.0.1", bounded.port), timeout=10)
                    held.append(waiter)
                    waiter.sendall(b"GET /tasks/%s?wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                   % tid.encode())
                    held.append(harness.EventStream(bounded))
                    harness.wait_until(lambda: b"taskd_task_waiters 1" in bounded.get("/metrics").body
                                       and b"taskd_event_clients 1" in bounded.get("/metrics").body,
                                       10, what="the waiter and the event client counted")
                    r = bounded.get("/tasks/%s?wait=5" % tid)
                    d.record("wait past max_waiters", "GET", "/tasks/%s?wait=5" % tid, r.status,
                             r.headers, r.body)
                    self.expect_status(r, 503, "wait past max_waiters")
                    if self.stream("events past max_event_clients", server=bounded) != 503:
                        d.problems.append("events past max_event_clients: not 503")
                    seen_503 = {k for k, v in d.statuses.items() if 503 in v}
                    for op in (("/tasks/{task_id}", "get"), ("/events", "get")):
                        if op not in seen_503:
                            d.problems.append("no 503 seen for %s %s" % (op[1].upper(), op[0]))
                finally:
                    for h in held:
                        h.close()
                    bounded.close(remove_tmp=False)
            # streaming turned off: 404
            with tempfile.TemporaryDirectory(prefix="taskd-openapi-") as tmp:
                off = harness.Taskd(config=harness.write_config(tmp, {"max_event_clients": 0}),
                                    tmpdir=tmp)
                try:
                    if self.stream("events turned off", server=off) != 404:
                        d.problems.append("events turned off: not 404")
                finally:
                    off.close(remove_tmp=False)

        # --- the whole document was driven
        documented = {(t, m) for t, item in self.doc["paths"].items() for m in item if m in METHODS}
        problems = ["documented, never driven: %s %s" % (m.upper(), t)
                    for t, m in sorted(documented - d.driven)]
        for (t, m) in sorted(documented):
            for status in self.doc["paths"][t][m]["responses"]:
                # 503 needs a failing store; 401 and 403 a server with an access policy
                # (tokens, a cross-origin write, a foreign Host): test_auth.py drives those
                if status not in ("503", "401", "403") and int(status) not in d.statuses.get((t, m), ()):
                    problems.append("documented, never answered: %s %s %s" % (m.upper(), t, status))

        out, failures = d.run_checks(self.tools)
        problems += ["does not compile: %r" % e for e in out["compile_errors"]] + d.problems + failures
        self.assertEqual(problems, [], "the server and its document disagree:\n" + "\n".join(problems))

    def too_large(self, method, path):
        """A body over the default limit of 1 MiB, refused from its Content-Length."""
        body = b'{"pad": "' + b"x" * (1024 * 1024 + 16) + b'"}'
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % (method, path, len(body)))
        got = harness.raw_exchange(self.server.port, head.encode() + body, send_in_thread=True)
        if got is None:
            self.d.problems.append("%s %s over the limit: no answer" % (method, path))
            return
        status, headers, data = got
        if status != 413:
            self.d.problems.append("%s %s over the limit: expected 413, got %s" % (method, path, status))
        self.d.record("%s over the limit" % method, method, path, status, list(headers.items()), data)


class RouteRules(OpenAPITestCase):
    """What info.description says of every route."""

    def concrete(self, template):
        tid = self.server.create("TASK2")
        return template.replace("{task_id}", tid).replace("{name}", "task1")

    def test_allow_lists_the_documented_methods(self):
        checks = []
        for template, item in self.doc["paths"].items():
            documented = {m.upper() for m in item if m in METHODS}
            allow = set(documented) | ({"HEAD"} if "GET" in documented else set())
            path = self.concrete(template)
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                if method in documented:
                    continue
                with self.subTest(method=method, path=template):
                    r = self.server.request(method, path, body=b"{}")
                    self.assertEqual(r.status, 405, r)
                    got = {m.strip().upper() for m in r.header("Allow", "").split(",") if m.strip()}
                    self.assertEqual(got, allow, "Allow of %s" % template)
                    checks.append({"id": len(checks), "pointer": "#/components/schemas/Error",
                                   "data": r.json(), "closed": True})
        self.assertTrue(checks)
        for r in run_checker(self.tools, self.doc, checks)["results"]:
            self.assertTrue(r["valid"], r)

    def test_unknown_path_is_404(self):
        r = self.server.get("/nope/nothing")
        self.assertEqual(r.status, 404)
        out = run_checker(self.tools, self.doc, [{"id": 0, "pointer": "#/components/schemas/Error",
                                                  "data": r.json(), "closed": True}])
        self.assertTrue(out["results"][0]["valid"], out)

    def test_head_is_answered_like_get(self):
        for template, item in self.doc["paths"].items():
            if "get" not in item:
                continue
            path = self.concrete(template)
            with self.subTest(path=template):
                if template == "/events":  # a stream: its head only
                    with harness.EventStream(self.server) as g:
                        g.body = b""
                        g.header = lambda name, hs=g.headers: hs.get(name.lower())
                else:
                    g = self.server.get(path)
                h = self.server.request("HEAD", path)
                self.assertEqual(h.status, g.status)
                self.assertEqual(h.body, b"")
                self.assertEqual(h.header("Content-Type"), g.header("Content-Type"))

    def test_trailing_slash_redirects_to_a_documented_operation(self):
        tid = self.server.create("TASK2")
        for method, url, target in [
                ("GET", "/tasks/?limit=1&status=CREATED", "/tasks?limit=1&status=CREATED"),
                ("POST", "/tasks/", "/tasks"),
                ("GET", "/tasks/%s/" % tid, "/tasks/" + tid),
                ("PATCH", "/tasks/%s/" % tid, "/tasks/" + tid),
                ("GET", "/health/", "/health")]:
            with self.subTest(method=method, url=url):
                body = b'{"task_type": "TASK2"}' if method in ("POST", "PATCH") else None
                r = self.server.request(method, url, body=body)
                self.assertEqual(r.status, 307, r)
                self.assertEqual(r.header("Location"), target)
                self.assertEqual(r.body, b"")
                d = Doc(self.doc)
                self.assertIsNotNone(d.operation(d.template_of(urlsplit(target).path), method),
                                     "the redirect's target is not a documented operation")


if __name__ == "__main__":
    unittest.main()
