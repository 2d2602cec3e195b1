"""The request corpus: one script of steps, run in order against each server.

A step is one HTTP request. Paths may name variables, ``{a}``, that an earlier step saved
from *that server's* answer (``save={"a": "id"}`` keeps the answer's ``id``), so that a
request about "the task created above" uses the id each server gave; values are
percent-encoded into the path. ``path`` may also be a function of the variables.

Bodies: ``None`` sends no body; ``bytes`` / ``str`` are sent as they are; anything else is
sent as JSON. ``ctype`` is the Content-Type header: by default ``application/json`` when
there is a body, none otherwise; ``ctype=None`` sends none.

``values`` names top-level body fields whose values (not only types) must agree;
``shape=False`` compares only status and headers (for documents that are not the API's).

The order matters: the tasks for the listing steps are created first, and the listing is
read before any request that one server accepts and the other refuses could change the
number of tasks.
"""

import base64
import json

DEFAULT = object()
TASK_VALUES = ("task_type", "status", "status_msg")
UNKNOWN_ID = "5b0c3b8e-3f7e-4f34-9a2f-1c2d3e4f5a6b"
LONG_ID = "a" * 3000
MEDIUM_ID = "b" * 200


class Step:
    def __init__(self, name, method, path, body=None, ctype=DEFAULT, headers=None, save=None,
                 values=(), shape=True, note="", template=None):
        self.name = name
        self.template = template
        self.method = method
        self.path = path
        self.body = body
        self.ctype = ctype
        self.headers = dict(headers or {})
        self.save = dict(save or {})
        self.values = tuple(values)
        self.shape = shape
        self.note = note

    def body_bytes(self):
        if self.body is None:
            return None
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")

    def content_type(self):
        if self.ctype is DEFAULT:
            return "application/json" if self.body is not None else None
        return self.ctype

    def model(self):
        """The original's request model for this route, or None."""
        if self.method == "POST" and self.path_template() in ("/tasks", "/tasks?"):
            return "CreatePayload"
        if self.method == "PATCH" and self.path_template().startswith("/tasks/") \
                and self.path_template().count("/") == 2:
            return "UpdatePayload"
        return None

    def path_template(self):
        """The path as text: the template itself, or what a computed path stands for."""
        if isinstance(self.path, str):
            return self.path
        return self.template or getattr(self.path, "template", "?")

    def describe(self):
        """Method and path (shortened), for people."""
        text = "%s %s" % (self.method, self.path_template())
        if len(text) > 60:
            text = text[:50] + "…"
        return text

    def body_summary(self, limit=64):
        """The body as sent, shortened, or "" for none."""
        if self.body is None:
            return ""
        if isinstance(self.body, (bytes, str)):
            raw = self.body if isinstance(self.body, bytes) else self.body.encode("utf-8")
            text = raw.decode("utf-8", "backslashreplace") if raw else "(empty)"
        else:
            text = json.dumps(self.body, separators=(",", ":"))
        text = "".join(ch if ch.isprintable() else "\\u%04x" % ord(ch) for ch in text)
        return text if len(text) <= limit else text[:limit - 1] + "…"


def P(template):
    """A path computed from the variables (for values the path cannot name directly)."""
    def deco(fn):
        fn.template = template
        return fn
    return deco


def b64(obj):
    return base64.b64encode(json.dumps(obj).encode()).decode()


@P("/tasks?next_token=base64({\"id\": <a>})")
def crafted_token(v):
    from urllib.parse import quote
    return "/tasks?next_token=" + quote(b64({"id": v["a"]}), safe="")


# 1662381756 in Arabic-Indic (U+0660-U+0669) and in fullwidth (U+FF10-U+FF19) digits
ARABIC_INDIC_TTL = "".join(chr(0x0660 + int(d)) for d in "1662381756")
FULLWIDTH_TTL = "".join(chr(0xFF10 + int(d)) for d in "1662381756")


def post(name, body, note="", **kw):
    return Step(name, "POST", "/tasks", body=body, note=note, **kw)


def patch(name, var, body, note="", **kw):
    return Step(name, "PATCH", "/tasks/{%s}" % var, body=body, note=note, **kw)


def get_task(name, var, note=""):
    return Step(name, "GET", "/tasks/{%s}" % var, values=TASK_VALUES, note=note)


def valid(task_type="TASK2", **extra):
    body = {"task_type": task_type, "data": {"foo": "bar"}, "ttl": 1662381756}
    body.update(extra)
    return body


def nested(depth):
    value = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


STEPS = [
    # -- the tasks the listing and the transitions work on (valid in both) ------------------
    post("create.a", valid(), save={"a": "id"}, note="a valid TASK2"),
    post("create.b", valid(), save={"b": "id"}),
    post("create.c", valid("TASK3"), save={"c": "id"}),
    post("create.d", valid(), save={"d": "id"}),
    post("create.e", valid(), save={"e": "id"}),
    post("create.f", valid("TASK3"), save={"f": "id"}),
    post("create.g", valid(), save={"g": "id"}),
    post("create.h", valid(), save={"h": "id"}),
    post("create.i", valid(), save={"i": "id"}),
    post("create.j", valid("TASK3", ttl="1662381756"), save={"j": "id"}, note="ttl as a string of digits"),
    post("create.k", valid(data={"nested": {"list": [1, 2.5, "x", None, True]}}), save={"k": "id"}),
    post("create.l", valid(ttl=0), save={"l": "id"}, note="ttl 0"),

    # -- listing and paging (12 tasks in each server) ----------------------------------
    Step("list.first", "GET", "/tasks", save={"tok1": "next_token"}, note="the first page"),
    Step("list.second", "GET", "/tasks?next_token={tok1}", note="following the token"),
    Step("list.empty-token", "GET", "/tasks?next_token=", note="empty next_token"),
    Step("list.token-repeated", "GET", "/tasks?next_token=!!!&next_token=",
         note="next_token twice: FastAPI reads the last, empty"),
    Step("list.token-garbage", "GET", "/tasks?next_token=!!!", note="a token that is not base64"),
    Step("list.token-bad-padding", "GET", "/tasks?next_token=abc", note="base64 with bad padding"),
    Step("list.token-not-json", "GET", "/tasks?next_token=" + base64.b64encode(b"not json").decode(),
         note="base64 of text that is not JSON"),
    Step("list.token-json-list", "GET", "/tasks?next_token=" + b64([1]), note="base64 of a JSON array"),
    Step("list.token-id-number", "GET", "/tasks?next_token=" + b64({"id": 5}),
         note="base64 of {\"id\": 5}"),
    Step("list.token-other-key", "GET", "/tasks?next_token=" + b64({"foo": "x"}),
         note="base64 of {\"foo\": \"x\"}"),
    # (which tasks follow a's id in the original's scan depends on the random uuid4s: status only)
    Step("list.token-crafted", "GET", crafted_token, shape=False,
         note="a token a client built from a task's id"),
    Step("list.unknown-param", "GET", "/tasks?foo=bar", note="an unknown query parameter"),
    Step("list.limit-5", "GET", "/tasks?limit=5"),
    Step("list.limit-0", "GET", "/tasks?limit=0"),
    Step("list.limit-abc", "GET", "/tasks?limit=abc"),
    Step("list.limit-bare", "GET", "/tasks?limit", note="limit without '=': Starlette reads it as empty"),
    Step("list.limit-upper", "GET", "/tasks?LIMIT=5", note="LIMIT in upper case: a name of its own"),
    Step("list.token-bare", "GET", "/tasks?next_token", note="next_token without '=': empty"),
    Step("list.token-upper", "GET", "/tasks?NEXT_TOKEN=!!!",
         note="NEXT_TOKEN in upper case, not base64: a name of its own"),
    Step("list.status-upper", "GET", "/tasks?STATUS=BOGUS", note="STATUS in upper case: a name of its own"),
    Step("list.status-created", "GET", "/tasks?status=CREATED"),
    Step("list.status-bogus", "GET", "/tasks?status=BOGUS"),
    Step("list.task-type-task3", "GET", "/tasks?task_type=TASK3"),
    Step("list.trailing-slash", "GET", "/tasks/", note="trailing slash"),
    Step("list.trailing-slash-query", "GET", "/tasks/?next_token={tok1}",
         note="trailing slash with a query"),
    Step("list.double-slash", "GET", "/tasks//"),

    # -- reading a task ------------------------------------------------------------------
    get_task("get.a", "a"),
    get_task("get.k", "k"),
    Step("get.query", "GET", "/tasks/{a}?x=1", values=TASK_VALUES, note="with an unknown query"),
    Step("get.trailing-slash", "GET", "/tasks/{a}/"),
    Step("get.trailing-slash-query", "GET", "/tasks/{a}/?x=1"),
    Step("get.unknown-uuid", "GET", "/tasks/" + UNKNOWN_ID),
    Step("get.not-uuid", "GET", "/tasks/not-a-uuid"),
    Step("get.upper-case", "GET", lambda v: "/tasks/" + v["a"].upper(), template="/tasks/{A}",
         note="the id in upper case"),
    Step("get.medium-id", "GET", "/tasks/" + MEDIUM_ID, note="a 200-character id"),
    Step("get.long-id", "GET", "/tasks/" + LONG_ID, note="a 3,000-character id"),
    Step("get.encoded-space", "GET", "/tasks/%20", note="id ' ' (percent-encoded)"),
    Step("get.encoded-slash", "GET", "/tasks/a%2Fb", note="id 'a/b' (percent-encoded slash)"),
    Step("get.encoded-id", "GET", lambda v: "/tasks/" + "".join("%%%02X" % ord(ch) for ch in v["a"]),
         template="/tasks/%xx%xx…", values=TASK_VALUES,
         note="a real id, every character percent-encoded"),
    Step("get.encoded-nul", "GET", "/tasks/abc%00", note="an id with a NUL byte"),
    Step("get.unicode", "GET", "/tasks/%C3%A9t%C3%A9", note="a UTF-8 id"),
    Step("get.subpath", "GET", "/tasks/{a}/x", note="a path below a task"),

    # -- routes and methods --------------------------------------------------------------
    Step("root", "GET", "/", note="the root"),
    Step("root.post", "POST", "/", body={}),
    Step("docs", "GET", "/docs", shape=False, note="FastAPI's Swagger UI"),
    Step("openapi", "GET", "/openapi.json", shape=False, note="the OpenAPI document"),
    Step("unknown-route", "GET", "/nope"),
    Step("unknown-route.post", "POST", "/nope", body={}),
    Step("unknown-route.prefix", "GET", "/tasksx"),
    Step("head.tasks", "HEAD", "/tasks"),
    Step("head.task", "HEAD", "/tasks/{a}"),
    Step("options.tasks", "OPTIONS", "/tasks"),
    Step("put.tasks", "PUT", "/tasks", body=valid()),
    Step("delete.tasks", "DELETE", "/tasks"),
    Step("patch.tasks", "PATCH", "/tasks", body={"status": "FAILED"}),
    Step("post.task-id", "POST", "/tasks/{a}", body=valid()),
    Step("put.task-id", "PUT", "/tasks/{a}", body={"status": "FAILED"}),
    Step("delete.task-id", "DELETE", "/tasks/{a}"),
    Step("post.tasks-slash", "POST", "/tasks/", body=valid(), note="POST with a trailing slash"),
    Step("patch.task-slash", "PATCH", "/tasks/{a}/", body={"status": "FAILED"},
         note="PATCH with a trailing slash"),

    # -- transitions: a: the happy path, then repeats and changes of a final task ---------
    patch("patch.a.claim", "a", {"status": "IN_PROGRESS", "status_msg": "started"}),
    get_task("patch.a.get-claimed", "a"),
    patch("patch.a.claim-again", "a", {"status": "IN_PROGRESS", "status_msg": "started"},
          note="a second claim"),
    patch("patch.a.complete", "a", {"status": "COMPLETED", "status_msg": "done"}),
    get_task("patch.a.get-completed", "a"),
    patch("patch.a.complete-again", "a", {"status": "COMPLETED", "status_msg": "done"},
          note="the same final change again"),
    patch("patch.a.complete-other-msg", "a", {"status": "COMPLETED", "status_msg": "other"},
          note="COMPLETED again, another message"),
    patch("patch.a.fail-completed", "a", {"status": "FAILED", "status_msg": "late"},
          note="COMPLETED → FAILED"),
    patch("patch.a.claim-completed", "a", {"status": "IN_PROGRESS"}, note="COMPLETED → IN_PROGRESS"),
    patch("patch.a.back-to-created", "a", {"status": "CREATED"}, note="COMPLETED → CREATED"),
    get_task("patch.a.get-final", "a"),
    # b: complete without claiming
    patch("patch.b.complete-unclaimed", "b", {"status": "COMPLETED", "status_msg": "done"},
          note="CREATED → COMPLETED"),
    get_task("patch.b.get", "b"),
    # c: cancel before start, repeat, then try to claim
    patch("patch.c.cancel", "c", {"status": "FAILED", "status_msg": "cancelled"},
          note="CREATED → FAILED"),
    get_task("patch.c.get", "c"),
    patch("patch.c.cancel-again", "c", {"status": "FAILED", "status_msg": "cancelled"}),
    patch("patch.c.claim-failed", "c", {"status": "IN_PROGRESS"}, note="FAILED → IN_PROGRESS"),
    # d: CREATED → CREATED
    patch("patch.d.created", "d", {"status": "CREATED"}, note="CREATED → CREATED"),
    get_task("patch.d.get", "d"),
    # e: claimed, failed, then completed
    patch("patch.e.claim", "e", {"status": "IN_PROGRESS"}, note="no status_msg"),
    get_task("patch.e.get-claimed", "e"),
    patch("patch.e.fail", "e", {"status": "FAILED", "status_msg": "boom"}),
    patch("patch.e.complete-failed", "e", {"status": "COMPLETED"}, note="FAILED → COMPLETED"),
    patch("patch.e.failed-to-created", "e", {"status": "CREATED"}, note="FAILED → CREATED"),
    # g: unknown fields, another task's claim
    patch("patch.g.claim-extra-fields", "g", {"status": "IN_PROGRESS", "foo": 1},
          note="an unknown field"),
    patch("patch.g.complete-with-result", "g",
          {"status": "COMPLETED", "status_msg": "ok", "result": {"x": 1}},
          note="taskd's result field"),
    get_task("patch.g.get", "g"),
    # h: content types of a PATCH body
    patch("patch.h.no-ctype", "h", {"status": "IN_PROGRESS"}, ctype=None,
          note="no Content-Type"),
    patch("patch.h.text-plain", "h", {"status": "FAILED", "status_msg": "x"}, ctype="text/plain"),
    get_task("patch.h.get", "h"),
    # i: status_msg of another type (pydantic v1 turns numbers into strings; v2 refuses)
    patch("patch.i.msg-number", "i", {"status": "FAILED", "status_msg": 5},
          note="status_msg 5"),
    patch("patch.i.msg-bool", "i", {"status": "FAILED", "status_msg": True},
          note="status_msg true"),
    # invalid PATCH bodies (on a task that exists: f)
    patch("patch.bad.status-unknown", "f", {"status": "DONE"}),
    patch("patch.bad.status-lower", "f", {"status": "completed"}),
    patch("patch.bad.status-missing", "f", {"status_msg": "x"}),
    patch("patch.bad.status-null", "f", {"status": None}),
    patch("patch.bad.status-number", "f", {"status": 1}),
    patch("patch.bad.status-list", "f", {"status": ["COMPLETED"]}),
    patch("patch.bad.msg-null", "f", {"status": "FAILED", "status_msg": None}),
    patch("patch.bad.msg-list", "f", {"status": "FAILED", "status_msg": ["x"]}),
    patch("patch.bad.msg-object", "f", {"status": "FAILED", "status_msg": {}}),
    patch("patch.bad.both", "f", {"status": "X", "status_msg": []}),
    patch("patch.bad.empty-object", "f", {}),
    patch("patch.bad.no-body", "f", None),
    patch("patch.bad.empty-body", "f", b""),
    patch("patch.bad.not-json", "f", "status=FAILED"),
    patch("patch.bad.truncated", "f", '{"status": "FAI'),
    patch("patch.bad.array", "f", ["FAILED"]),
    patch("patch.bad.string", "f", '"FAILED"'),
    patch("patch.bad.null", "f", "null"),
    get_task("patch.bad.f-unchanged", "f"),
    # PATCH of tasks that do not exist
    Step("patch.unknown-uuid", "PATCH", "/tasks/" + UNKNOWN_ID, body={"status": "COMPLETED"}),
    Step("patch.unknown-uuid-claim", "PATCH", "/tasks/" + UNKNOWN_ID, body={"status": "IN_PROGRESS"}),
    Step("patch.not-uuid", "PATCH", "/tasks/not-a-uuid", body={"status": "FAILED"}),
    Step("patch.long-id", "PATCH", "/tasks/" + LONG_ID, body={"status": "FAILED"}),
    Step("patch.unknown-uuid-bad-body", "PATCH", "/tasks/" + UNKNOWN_ID, body={"status": "X"}),

    # -- creation: content types -----------------------------------------------------------
    post("post.walkthrough", {"task_type": "TASK1", "data": {"foo": "bar"}, "ttl": "1662381756"},
         note="the original README's own request"),
    post("post.ctype.none", valid(), ctype=None, note="no Content-Type"),
    post("post.ctype.charset", valid(), ctype="application/json; charset=utf-8"),
    post("post.ctype.upper", valid(), ctype="Application/JSON"),
    post("post.ctype.vendor-json", valid(), ctype="application/vnd.api+json"),
    post("post.ctype.text-plain", valid(), ctype="text/plain"),
    post("post.ctype.form", valid(), ctype="application/x-www-form-urlencoded",
         note="what curl -d sends"),
    post("post.ctype.form-fields", "task_type=TASK2&ttl=1", ctype="application/x-www-form-urlencoded",
         note="a real form"),
    post("post.ctype.bogus", valid(), ctype="bogus"),

    # -- creation: bodies that are not a JSON object ----------------------------------------
    post("post.body.none", None, note="no body at all"),
    post("post.body.empty", b"", note="an empty body, Content-Type JSON"),
    post("post.body.whitespace", b"   ", note="only whitespace"),
    post("post.body.null", "null"),
    post("post.body.array", "[1, 2]"),
    post("post.body.empty-array", "[]"),
    post("post.body.pairs", json.dumps([["task_type", "TASK2"], ["data", {}], ["ttl", 1]]),
         note="a JSON array of key/value pairs"),
    post("post.body.number", "5"),
    post("post.body.string", '"abc"'),
    post("post.body.empty-string", '""'),
    post("post.body.true", "true"),
    post("post.body.not-json", "task_type=TASK1", note="text that is not JSON"),
    post("post.body.truncated", '{"task_type": "TASK2", "data": {'),
    post("post.body.unquoted", '{"task_type": TASK1}'),
    post("post.body.trailing-garbage", '{"task_type": "TASK2", "data": {}, "ttl": 1} x'),
    post("post.body.trailing-comma", '{"task_type": "TASK2", "data": {}, "ttl": 1,}'),
    post("post.body.single-quotes", "{'task_type': 'TASK2'}"),
    post("post.body.bad-utf8", b'{"task_type": "TASK2", "data": {"k": "\xff"}, "ttl": 1}',
         note="invalid UTF-8 in a string"),
    post("post.body.bom", b"\xef\xbb\xbf" + json.dumps(valid()).encode(), note="a UTF-8 BOM"),
    post("post.body.nan", '{"task_type": "TASK2", "data": {"x": NaN}, "ttl": 1}',
         note="NaN in data"),
    post("post.body.nul", '{"task_type": "TASK2", "data": {"x": "a\\u0000b"}, "ttl": 1}',
         note="an escaped NUL in a string of data"),
    post("post.body.duplicate-key", '{"task_type": "TASK9", "task_type": "TASK2", "data": {}, "ttl": 1}',
         note="a duplicate key (the last wins in Python)"),

    # -- creation: fields ---------------------------------------------------------------
    post("post.empty-object", {}),
    post("post.extra-field", valid(extra=1), note="an unknown field"),
    post("post.task-type.missing", {"data": {}, "ttl": 1}),
    post("post.task-type.unknown", valid("TASK4")),
    post("post.task-type.lower", valid("task1")),
    post("post.task-type.number", valid(1)),
    post("post.task-type.null", valid(None)),
    post("post.task-type.list", valid(["TASK1"])),
    post("post.data.missing", {"task_type": "TASK2", "ttl": 1}),
    post("post.data.null", valid(data=None)),
    post("post.data.number", valid(data=5)),
    post("post.data.string", valid(data="ab")),
    post("post.data.empty-string", valid(data=""), note="data \"\" (pydantic v1: dict(\"\") is {})"),
    post("post.data.empty-list", valid(data=[])),
    post("post.data.pairs", valid(data=[["a", 1]]), note="data as a list of pairs"),
    post("post.data.list", valid(data=[1, 2])),
    post("post.data.nested-40", valid(data=nested(40)), note="data nested 40 levels deep"),
    post("post.data.large-200k", valid(data={"blob": "x" * 200_000}), note="a 200 KB body"),
    post("post.data.large-350k", valid(data={"blob": "x" * 350_000}),
         note="a 350 KB body (over DynamoDB's item size once base64-encoded)"),
    post("post.data.huge-2m", valid(data={"blob": "x" * 2_000_000}), note="a 2 MB body"),
    post("post.data.int-2-pow-64", valid(data={"n": 2 ** 64}),
         note="an integer beyond 64 bits in data"),
    post("post.ttl.missing", {"task_type": "TASK2", "data": {}}),
    post("post.ttl.null", valid(ttl=None)),
    post("post.ttl.digits", valid(ttl="1662381756")),
    post("post.ttl.leading-zeros", valid(ttl="0001662381756")),
    post("post.ttl.negative", valid(ttl=-1)),
    post("post.ttl.negative-string", valid(ttl="-5")),
    post("post.ttl.float-integral", valid(ttl=1662381756.0), note="ttl 1662381756.0"),
    post("post.ttl.exponent", "{\"task_type\": \"TASK2\", \"data\": {}, \"ttl\": 1e3}",
         note="ttl 1e3"),
    post("post.ttl.float-fraction", valid(ttl=1.5), note="ttl 1.5"),
    post("post.ttl.true", valid(ttl=True)),
    post("post.ttl.false", valid(ttl=False)),
    post("post.ttl.int64-max", valid(ttl=2 ** 63 - 1)),
    post("post.ttl.2-pow-64", valid(ttl=2 ** 64)),
    post("post.ttl.2-pow-70", valid(ttl=2 ** 70)),
    post("post.ttl.2-pow-200", valid(ttl=2 ** 200), note="more digits than DynamoDB's 38"),
    post("post.ttl.string-word", valid(ttl="abc")),
    post("post.ttl.string-float", valid(ttl="1.5")),
    post("post.ttl.string-exponent", valid(ttl="1e3")),
    post("post.ttl.string-empty", valid(ttl="")),
    post("post.ttl.string-plus", valid(ttl="+1662381756"), note="ttl \"+1662381756\""),
    post("post.ttl.string-spaces", valid(ttl=" 1662381756\t"), note="ttl with white space around it"),
    post("post.ttl.string-underscores", valid(ttl="1_662_381_756"), note="ttl \"1_662_381_756\""),
    post("post.ttl.string-zero-fraction", valid(ttl="1662381756.00"), note="ttl \"1662381756.00\""),
    # digits other than ASCII's, which pydantic v1 reads (int()) and v2 refuses (int_parsing)
    post("post.ttl.string-arabic-indic", valid(ttl=ARABIC_INDIC_TTL),
         note="ttl 1662381756 in Arabic-Indic digits"),
    post("post.ttl.string-arabic-indic-five", valid(ttl=" \u0665"), note="ttl \" \u0665\" (v1: 5)"),
    post("post.ttl.string-fullwidth", valid(ttl="+" + FULLWIDTH_TTL),
         note="ttl 1662381756 in fullwidth digits, with a '+'"),
    post("post.ttl.string-mixed-digits", valid(ttl="166238175\u0666"),
         note="ttl of ASCII digits and one Arabic-Indic"),
    post("post.ttl.string-zero-minus", valid(ttl="0-5"), note="ttl \"0-5\", which pydantic v2 reads as -5"),
    post("post.ttl.list", valid(ttl=[1])),
    post("post.ttl.object", valid(ttl={})),
    post("post.all-wrong", {"task_type": 1, "data": "ab", "ttl": {}}, note="every field wrong"),
    post("post.all-null", {"task_type": None, "data": None, "ttl": None}),
    post("post.method-override", valid(), headers={"X-HTTP-Method-Override": "GET"}),
]


def names():
    return [s.name for s in STEPS]


def by_name():
    out = {}
    for s in STEPS:
        if s.name in out:
            raise ValueError("duplicate step name %r" % s.name)
        out[s.name] = s
    return out
