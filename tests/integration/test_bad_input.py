"""Bad input: every malformed request gets a clear 4xx with detail, never a crash or a hang."""

import json
import os
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServerTestCase, local_only, parse_response, raw_exchange, target,  # noqa: E402
                     urlencode)

# taskd's default; on Lambda the API keeps bodies to what one SNS message can carry
DEFAULT_BODY_LIMIT = 256 * 1024 - 2048 if target() == "lambda" else 1048576

TYPES_EXPECTED = "'TASK1', 'TASK2' or 'TASK3'"
STATUSES_EXPECTED = "'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'"
INT64_MAX = 2 ** 63 - 1
OTHER_FILTERS = ("next_token belongs to a listing with other filters: repeat its status and task_type, "
                 "or leave them out")


def second_answer(port, payload, timeout=5.0):
    """Send a GET /health, then payload, on one kept-alive connection; read until the server
    closes it or goes quiet. (first answer, second answer or None), each (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = b""
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    finally:
        s.close()
    first = parse_response(received)
    if first is None:
        return None, None
    head_end = received.index(b"\r\n\r\n") + 4
    rest = received[head_end + int(first[1]["content-length"]):]
    return first, parse_response(rest)


def literal(loc, value, expected=TYPES_EXPECTED):
    return {"type": "literal_error", "loc": loc, "msg": "Input should be " + expected, "input": value,
            "ctx": {"expected": expected}}


class BadInput(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tid = cls.server.create("TASK2", data={"k": "v"})

    @classmethod
    def tearDownClass(cls):
        # After everything, the server still answers.
        if cls.server is not None and cls.server.alive():
            r = cls.server.get("/health")
            if r.status != 200 or r.json() != {"status": "ok"}:
                raise AssertionError("GET /health after bad input: %r" % (r,))
            t = cls.server.get("/tasks/" + cls.tid)
            if t.status != 200 or t.json()["data"] != {"k": "v"}:
                raise AssertionError("task lost after bad input: %r" % (t,))
        super().tearDownClass()

    def post_raw(self, body):
        return self.server.post("/tasks", body)

    def assertNothingCreated(self, before):
        after = {t["id"] for t in self.server.list_all()}
        self.assertEqual(after - before, set(), "a bad request created a task")

    def ids(self):
        return {t["id"] for t in self.server.list_all()}

    def assertDetail(self, r, items):
        """Assert a 422 whose detail is exactly items, each with its keys in pydantic's order."""
        detail = self.assertValidation(r)
        self.assertEqual(detail, items)
        for got, want in zip(detail, items):
            self.assertEqual(list(got), list(want), "keys or their order: %r" % (got,))
        return detail

    # -- body is not valid JSON --------------------------------------------------
    def test_malformed_json(self):
        before = self.ids()
        self.assertValidation(self.post_raw('{"task_type": TASK1}'), ("body",),
                              types={("body",): "json_invalid"})
        self.assertNothingCreated(before)

    def test_json_invalid_item(self):
        # pydantic's json_invalid: the byte offset of the fault in loc, the parser's words in ctx.
        self.assertDetail(self.post_raw('{"task_type": TASK1}'), [
            {"type": "json_invalid", "loc": ["body", 18], "msg": "JSON decode error", "input": {},
             "ctx": {"error": "invalid token near 'TASK'"}}])
        self.assertDetail(self.post_raw('{"task_type": "TASK2"'), [
            {"type": "json_invalid", "loc": ["body", 21], "msg": "JSON decode error", "input": {},
             "ctx": {"error": "'}' expected near end of file"}}])
        detail = self.assertValidation(self.post_raw('{"task_type": "TASK2"} x'), ("body", 24),
                                       types={("body", 24): "json_invalid"})
        self.assertEqual(detail[0]["ctx"], {"error": "end of file expected near 'x'"})

    def test_truncated_json(self):
        self.assertValidation(self.post_raw('{"task_type": "TASK2", "data": {'),
                              types={("body",): "json_invalid"})

    def test_trailing_garbage_json(self):
        self.assertValidation(self.post_raw('{"task_type": "TASK2"} x'),
                              types={("body",): "json_invalid"})

    def test_empty_body(self):
        # No body at all is a missing one, as FastAPI says; whitespace is a body that is not JSON.
        self.assertDetail(self.post_raw(b""), [
            {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
        self.assertValidation(self.post_raw(b" \n"), types={("body",): "json_invalid"})

    def test_invalid_utf8_in_string(self):
        before = self.ids()
        body = b'{"task_type": "TASK2", "data": {"k": "\xff\xfe\xc3"}}'
        self.assertValidation(self.post_raw(body), types={("body",): "json_invalid"})
        self.assertNothingCreated(before)

    def test_deep_nesting_unclosed(self):
        self.assertValidation(self.post_raw(b"[" * 100000), ("body",), types={("body",): "json_invalid"})

    def test_deep_nesting_closed_inside_data(self):
        body = b'{"task_type": "TASK2", "data": {"a": ' + b"[" * 100000 + b"]" * 100000 + b"}}"
        r = self.post_raw(body)
        # Either accepted intact or rejected as a validation error; never a crash.
        if r.status == 201:
            # Python's json module cannot decode this depth; compare the raw text.
            g = self.server.get("/tasks/" + r.json()["id"])
            self.assertEqual(g.status, 200)
            self.assertIn(b"[" * 100000 + b"]" * 100000, g.body.replace(b" ", b""))
        else:
            self.assertValidation(r)

    def test_data_and_result_nest_at_most_31_levels(self):
        # DynamoDB's limit (32 with the item's own attribute), in both modes: what is accepted
        # can be stored, streamed and published.
        def nested(levels):
            return json.loads('{"a":' * (levels - 1) + "{}" + "}" * (levels - 1))
        ok = self.server.post("/tasks", {"task_type": "TASK2", "data": nested(31)})
        self.assertEqual(ok.status, 201, ok)
        self.assertEqual(self.server.task(ok.json()["id"])["data"], nested(31))
        before = self.ids()
        error = "objects and arrays may nest at most 31 levels deep"
        for levels in (32, 1100):
            with self.subTest(levels=levels):
                body = '{"task_type": "TASK1", "data": ' + '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1) + "}"
                item = {"type": "value_error", "loc": ["body", "data"], "msg": "Value error, " + error,
                        "ctx": {"error": error}}
                if levels == 32:
                    item["input"] = nested(levels)  # echoed; at 1100 levels, over 4096 bytes: left out
                    item = {k: item[k] for k in ("type", "loc", "msg", "input", "ctx")}
                self.assertDetail(self.post_raw(body), [item])
        self.assertNothingCreated(before)
        result = '{"status": "FAILED", "result": ' + "[" * 32 + "]" * 32 + "}"
        r = self.server.patch("/tasks/" + ok.json()["id"], result)
        self.assertValidation(r, ("body", "result"), types={("body", "result"): "value_error"})
        self.assertEqual(self.server.task(ok.json()["id"])["status"], "CREATED")

    def test_nul_in_task_type(self):
        # "TASK2\u0000x" is not the type TASK2 (rejected as a bad type or as unacceptable JSON).
        before = self.ids()
        r = self.post_raw('{"task_type": "TASK2\\u0000x"}')
        self.assertValidation(r)
        self.assertNothingCreated(before)

    # -- body is JSON but not an object -----------------------------------------------
    def test_array_body(self):
        self.assertValidation(self.post_raw("[]"), ("body",),
                              types={("body",): "model_attributes_type"})
        self.assertDetail(self.post_raw("[1, 2]"), [
            {"type": "model_attributes_type", "loc": ["body"],
             "msg": "Input should be a valid dictionary or object to extract fields from", "input": [1, 2]}])

    def test_string_body(self):
        self.assertValidation(self.post_raw('"hello"'), ("body",),
                              types={("body",): "model_attributes_type"})

    def test_null_and_number_body(self):
        # null is no body at all, as FastAPI reads it
        self.assertDetail(self.post_raw("null"), [
            {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
        for b in ["42", "true"]:
            with self.subTest(body=b):
                detail = self.assertValidation(self.post_raw(b), ("body",),
                                               types={("body",): "model_attributes_type"})
                self.assertEqual(detail[0]["input"], json.loads(b))

    # -- wrong fields ---------------------------------------------------------------------
    def test_missing_task_type(self):
        # The input of a missing field is the whole body.
        self.assertDetail(self.server.post("/tasks", {"data": {"k": 1}, "ttl": 5}), [
            {"type": "missing", "loc": ["body", "task_type"], "msg": "Field required",
             "input": {"data": {"k": 1}, "ttl": 5}}])

    def test_task_type_wrong_type(self):
        for v in [123, None, ["TASK1"], {"a": 1}, True, 1.5]:
            with self.subTest(task_type=v):
                self.assertDetail(self.server.post("/tasks", {"task_type": v}),
                                  [literal(["body", "task_type"], v)])

    def test_unknown_task_type(self):
        for v in ["TASK9", "task1", "", " TASK1", "TASK1 ", "ünï\"\n"]:
            with self.subTest(task_type=v):
                self.assertDetail(self.server.post("/tasks", {"task_type": v}),
                                  [literal(["body", "task_type"], v)])

    def test_long_input_left_out(self):
        # An input whose JSON text passes 4096 bytes is not echoed back; the rest of the item is.
        item = literal(["body", "task_type"], None)
        del item["input"]
        self.assertDetail(self.server.post("/tasks", {"task_type": "T" * 5000}), [item])
        self.assertDetail(self.server.post("/tasks", {"data": {"k": "v" * 5000}}), [
            {"type": "missing", "loc": ["body", "task_type"], "msg": "Field required"}])
        self.assertDetail(self.server.post("/tasks", {"task_type": "TASK2", "data": "d" * 4094}), [
            {"type": "dict_type", "loc": ["body", "data"], "msg": "Input should be a valid dictionary",
             "input": "d" * 4094}])  # 4096 bytes of JSON: still echoed

    def test_data_not_object(self):
        for v in [[1, 2], "x", 5, True, None]:
            with self.subTest(data=v):
                self.assertDetail(self.server.post("/tasks", {"task_type": "TASK2", "data": v}), [
                    {"type": "dict_type", "loc": ["body", "data"], "msg": "Input should be a valid dictionary",
                     "input": v}])

    def test_huge_integer_in_data(self):
        # An integer past 64 bits anywhere in data: a value_error on data (echoed as sent).
        before = self.ids()
        error = "integers must lie between -9223372036854775808 and 9223372036854775807"
        for data in [{"n": 2 ** 70}, {"a": [1, {"b": -(2 ** 64)}]}]:
            with self.subTest(data=data):
                self.assertDetail(self.server.post("/tasks", {"task_type": "TASK2", "data": data}), [
                    {"type": "value_error", "loc": ["body", "data"], "msg": "Value error, " + error,
                     "input": data, "ctx": {"error": error}}])
        self.assertNothingCreated(before)

    def assertTtlError(self, ttl, type_, msg, ctx=None, echo=True):
        """POST a TASK2 with this ttl: exactly one item at ("body", "ttl"), its input the ttl."""
        item = {"type": type_, "loc": ["body", "ttl"], "msg": msg}
        if echo:
            item["input"] = ttl
        if ctx is not None:
            item["ctx"] = ctx
        body = b'{"task_type": "TASK2", "ttl": ' + json.dumps(ttl).encode() + b"}"
        return self.assertDetail(self.server.post("/tasks", body), [item])

    def test_negative_ttl(self):
        # Below zero, as an integer, a float or a string of digits: the ge bound.
        before = self.ids()
        for v in [-5, -1, -(2 ** 63), -1.0, -1e20, "-5", "-0001"]:
            with self.subTest(ttl=v):
                self.assertTtlError(v, "greater_than_equal", "Input should be greater than or equal to 0",
                                    {"ge": 0})
        self.assertNothingCreated(before)

    def test_ttl_not_digits(self):
        for v in ["12a", "", "1e3", "0x10", "1.5", "soon", "-", "--5"]:
            with self.subTest(ttl=v):
                self.assertTtlError(v, "int_parsing",
                                    "Input should be a valid integer, unable to parse string as an integer")

    def test_ttl_float(self):
        for v in [1.5, -0.5, 1662381756.25]:
            with self.subTest(ttl=v):
                self.assertTtlError(v, "int_from_float",
                                    "Input should be a valid integer, got a number with a fractional part")
        # A whole number written as a float is that integer.
        tid = self.assertJSON(self.server.post("/tasks", b'{"task_type": "TASK2", "ttl": 1662381756.0}'),
                              201)["id"]
        self.assertEqual(self.server.task(tid)["ttl"], 1662381756)

    def test_ttl_wrong_type(self):
        for v in [[1], {"a": 1}, True, False, []]:
            with self.subTest(ttl=v):
                self.assertTtlError(v, "int_type", "Input should be a valid integer")

    def test_ttl_too_large(self):
        # Beyond 64 bits: the le bound (not a JSON decode error), never wrapped around.
        before = self.ids()
        le = {"le": INT64_MAX}
        msg = "Input should be less than or equal to %d" % INT64_MAX
        for v in [2 ** 70, 2 ** 63, 99999999999999999999999]:
            with self.subTest(ttl=v):
                # echoed digit for digit, as pydantic does
                self.assertTtlError(v, "less_than_equal", msg, le)
        for v in [str(2 ** 63), "99999999999999999999999", 1e20, 9.3e18]:
            with self.subTest(ttl=v):
                self.assertTtlError(v, "less_than_equal", msg, le)
        self.assertNothingCreated(before)
        # int64's own maximum is a ttl
        tid = self.server.create("TASK2", ttl=INT64_MAX)
        self.assertEqual(self.server.task(tid)["ttl"], INT64_MAX)

    def test_every_bad_field_named(self):
        before = self.ids()
        r = self.server.post("/tasks", {"task_type": "NOPE", "data": [], "ttl": "12a"})
        self.assertValidation(r, ("body", "task_type"), ("body", "data"), ("body", "ttl"),
                              types={("body", "task_type"): "literal_error", ("body", "data"): "dict_type",
                                     ("body", "ttl"): "int_parsing"})
        r = self.server.post("/tasks", {"task_type": "NOPE", "ttl": -1})
        self.assertDetail(r, [literal(["body", "task_type"], "NOPE"),
                              {"type": "greater_than_equal", "loc": ["body", "ttl"],
                               "msg": "Input should be greater than or equal to 0", "input": -1, "ctx": {"ge": 0}}])
        r = self.server.post("/tasks", {"ttl": True, "data": 5})
        self.assertDetail(r, [
            {"type": "missing", "loc": ["body", "task_type"], "msg": "Field required",
             "input": {"ttl": True, "data": 5}},
            {"type": "dict_type", "loc": ["body", "data"], "msg": "Input should be a valid dictionary", "input": 5},
            {"type": "int_type", "loc": ["body", "ttl"], "msg": "Input should be a valid integer", "input": True}])
        self.assertNothingCreated(before)

    # -- size limits ----------------------------------------------------------------------
    def test_body_over_limit_413(self):
        before = self.ids()
        filler = "x" * (DEFAULT_BODY_LIMIT + 1000)
        body = json.dumps({"task_type": "TASK2", "data": {"blob": filler}}).encode()
        head = ("POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode()
        res = raw_exchange(self.server.port, head + body, send_in_thread=True)
        self.assertIsNotNone(res, "no response to an oversized body")
        status, headers, rbody = res
        self.assertEqual(status, 413, rbody)
        self.assertIn("detail", json.loads(rbody))
        self.assertNothingCreated(before)

    def test_body_over_limit_chunked_413(self):
        filler = b"y" * (DEFAULT_BODY_LIMIT + 1000)
        body = b'{"task_type": "TASK2", "data": {"blob": "' + filler + b'"}}'
        chunks = b""
        step = 16384
        for i in range(0, len(body), step):
            part = body[i:i + step]
            chunks += b"%x\r\n" % len(part) + part + b"\r\n"
        chunks += b"0\r\n\r\n"
        head = (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        res = raw_exchange(self.server.port, head + chunks, send_in_thread=True)
        self.assertIsNotNone(res, "no response to an oversized chunked body")
        status, headers, rbody = res
        self.assertEqual(status, 413, rbody)
        # refused mid-body, yet the same answer as a body over the limit declared up front
        self.assertEqual(json.loads(rbody)["detail"],
                         "Request body too large (limit %d bytes)" % DEFAULT_BODY_LIMIT)

    @local_only("API Gateway refuses a body over 10 MB itself, with its own {\"message\"} body")
    def test_declared_huge_content_length_413(self):
        # A Content-Length far over the limit is refused from the headers alone, without waiting.
        head = (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000000000\r\nConnection: close\r\n\r\n{\"task_type\"")
        res = raw_exchange(self.server.port, head, timeout=5)
        self.assertIsNotNone(res, "no answer within 5 s to a declared 10 GB body")
        self.assertEqual(res[0], 413, res)
        self.assertIn("detail", json.loads(res[2]))

    def test_expect_100_continue_over_limit(self):
        n = DEFAULT_BODY_LIMIT * 4
        head = ("POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" % n).encode()
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        try:
            s.sendall(head)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 100"):
                # Allowed to ask for the body; then it must still refuse it.
                data = data.split(b"\r\n\r\n", 1)[1]
                try:
                    s.sendall(b"{" + b" " * (n - 2) + b"}")
                except OSError:
                    pass
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        finally:
            s.close()

    def test_body_just_under_limit_accepted(self):
        # A body of almost exactly the limit is fine.
        skeleton = json.dumps({"task_type": "TASK2", "data": {"blob": ""}})
        filler = "z" * (DEFAULT_BODY_LIMIT - len(skeleton) - 10)
        body = json.dumps({"task_type": "TASK2", "data": {"blob": filler}})
        self.assertLessEqual(len(body), DEFAULT_BODY_LIMIT)
        r = self.server.post("/tasks", body)
        tid = self.assertJSON(r, 201)["id"]
        self.assertEqual(len(self.server.task(tid)["data"]["blob"]), len(filler))

    def test_long_url_path(self):
        r = self.server.get("/tasks/" + "a" * 10240)
        self.assertTrue(400 <= r.status < 500, r)
        r = self.server.get("/" + "b" * 10240)
        self.assertTrue(400 <= r.status < 500, r)
        self.assertEqual(self.server.get("/health").status, 200)

    def test_long_query_string(self):
        r = self.server.get("/tasks?limit=10&next_token=" + "A" * 10240)
        self.assertTrue(400 <= r.status < 500, r)
        self.assertEqual(self.server.get("/health").status, 200)

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_huge_header(self):
        head = (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"h" * (100 * 1024) +
                b"\r\nConnection: close\r\n\r\n")
        res = raw_exchange(self.server.port, head, send_in_thread=True)
        self.assertIsNotNone(res, "no answer to a head of 100 KiB")
        self.assertEqual(res[0], 431, res)  # a head over 16 KiB (README)
        r = self.server.get("/health")
        self.assertEqual(r.status, 200)

    def test_huge_idempotency_key(self):
        r = self.server.post("/tasks", {"task_type": "TASK2"}, headers={"Idempotency-Key": "k" * 20000})
        # a key is 1 to 255 bytes (400); the local server refuses the head over 16 KiB first
        self.assertError(r, 400 if target() == "lambda" else 431)
        self.assertEqual(self.server.get("/health").status, 200)

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_garbage_request_line(self):
        for payload in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\xff\r\n\r\n",
                        b"GET /health HTTP/9.9\r\n\r\n"]:
            with self.subTest(payload=payload):
                # An error status, a closed connection, or (until the connection timeout) silence.
                res = raw_exchange(self.server.port, payload, timeout=2)
                if res is not None:
                    self.assertTrue(400 <= res[0] < 600, res[:2])
        self.assertEqual(self.server.get("/health").status, 200)

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_bad_content_length(self):
        payload = (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nContent-Length: 99\r\n"
                   b"Connection: close\r\n\r\n0123456789")
        before = self.ids()
        res = raw_exchange(self.server.port, payload, timeout=5)
        self.assertIsNotNone(res, "no answer to conflicting Content-Length headers")
        self.assertEqual(res[0], 400, res[:2])
        self.assertIn(b'"detail":"Conflicting Content-Length headers"', res[2])
        self.assertNothingCreated(before)
        # the same length twice is one length
        payload = (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 21\r\nContent-Length: 21\r\n"
                   b"Connection: close\r\n\r\n{\"task_type\":\"TASK2\"}")
        res = raw_exchange(self.server.port, payload, timeout=5)
        self.assertIsNotNone(res)
        self.assertEqual(res[0], 201, res[:3])
        self.assertEqual(self.server.get("/health").status, 200)

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_malformed_header_lines_answered_in_json(self):
        # Each refusal has a JSON detail, on a connection's first request and on a later one
        # of a kept-alive connection.
        head = b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        body = b'{"task_type":"TASK2"}'
        too_large = "Request body too large (limit %d bytes)" % DEFAULT_BODY_LIMIT
        cases = [
            (head + b"No colon here\r\nContent-Length: 21\r\n\r\n" + body, 400, "Malformed header line"),
            (head + b"X\x00: y\r\nContent-Length: 21\r\n\r\n" + body, 400, "Malformed header line"),
            (b"POST /tasks HTTP/1.1\r\n folded\r\nHost: 127.0.0.1\r\n\r\n", 400, "Malformed header line"),
            (b"GET /health HTTP/1.1\nHost: 127.0.0.1\nbad\n\n", 400, "Malformed header line"),
            (head + b"Content-Length: abc\r\n\r\n" + body, 400, "Malformed Content-Length"),
            (head + b"Content-Length: 2 1\r\n\r\n" + body, 400, "Malformed Content-Length"),
            # a blank before the colon: a front end that read it as the length would take the
            # body for a request of its own; a control byte in a value, which a NUL cut short
            (head + b"Content-Length : 21\r\n\r\n" + body, 400, "Malformed header line"),
            (head + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400, "Malformed header line"),
            (head + b"X-A: a\x00b\r\nContent-Length: 21\r\n\r\n" + body, 400, "Malformed header line"),
            (head + b"X-A: a\rb\r\nContent-Length: 21\r\n\r\n" + body, 400, "Malformed header line"),
            # one Host, and a host[:port]
            (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n", 400,
             "Malformed or repeated Host header"),
            (b"GET /health HTTP/1.1\r\nHost: local host\r\n\r\n", 400,
             "Malformed or repeated Host header"),
            # one Authorization: a front end may check another one than taskd would
            (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer a\r\n"
             b"authorization: Bearer b\r\n\r\n", 400, "Repeated Authorization header"),
            (head + b"Content-Length: +21\r\n\r\n" + body, 400, "Malformed Content-Length"),
            (head + b"Content-Length:\r\n\r\n" + body, 400, "Malformed Content-Length"),
            (head + b"Content-Length: 21\r\n folded\r\n\r\n" + body, 400, "Malformed header line"),
            (head + b"Content-Length: 18446744073709551616\r\n\r\n" + body, 413, too_large),
            (head + b"Content-Length: 18446744073709551615\r\n\r\n" + body, 413, too_large),
            (head + b"Content-Length: 18446744073709551614\r\n\r\n" + body, 413, too_large),
        ]
        cases += [
            # no target between the method and the version; a CR alone before the request line
            (b"GET  HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "Malformed request line"),
            (b"\r\r\nGET /health HTTP/1.1\r\n\r\n", 400, "Malformed request line"),
            # white space inside the target (a client that did not encode it)
            (b"GET /tasks/a b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "Malformed request line"),
            (b"POST /tasks\t HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 21\r\n\r\n" + body,
             400, "Malformed request line"),
            # a body to be read until the connection closes; 100 Continue for no body at all
            (head + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
             "Transfer-Encoding other than chunked"),
            (head + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 501,
             "Transfer-Encoding other than chunked"),
            (head + b"Expect: 100-continue\r\n\r\nX", 417, "Expect: 100-continue without a body"),
            # more than the server's memory for a connection holds
            (head + b"a:\r\n" * 489 + b"\r\n", 431, "Too many header fields, query parameters or cookies"),
            (b"GET /tasks?" + b"&" * 504 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 431,
             "Too many header fields, query parameters or cookies"),
            (head + b"Cookie: " + b";" * 495 + b"\r\n\r\n", 431,
             "Too many header fields, query parameters or cookies"),
            (head + b"Cookie: " + b"," * 1000 + b"\r\n\r\n", 431,
             "Too many header fields, query parameters or cookies"),
        ]
        before = self.ids()
        for payload, status, detail in cases:
            with self.subTest(payload=payload):
                res = raw_exchange(self.server.port, payload, timeout=5)
                self.assertIsNotNone(res, "no answer")
                self.assertEqual(res[:1], (status,), res)
                self.assertEqual(json.loads(res[2]), {"detail": detail}, res)
            with self.subTest(later=payload):
                first, res = second_answer(self.server.port, payload)
                self.assertEqual(first[0], 200, first)
                self.assertIsNotNone(res, "no answer to a later request")
                self.assertEqual(res[:1], (status,), res)
                self.assertEqual(json.loads(res[2]), {"detail": detail}, res)
        self.assertNothingCreated(before)
        # With Transfer-Encoding, Content-Length is not read, and blanks before a length are.
        for payload in [head + b"Transfer-Encoding: chunked\r\nContent-Length: abc\r\n\r\n"
                        b"15\r\n" + body + b"\r\n0\r\n\r\n",
                        head + b"Content-Length: \t 21\r\n\r\n" + body]:
            with self.subTest(payload=payload):
                res = raw_exchange(self.server.port, payload, timeout=5)
                self.assertIsNotNone(res, "no answer")
                self.assertEqual(res[0], 201, res)
        self.assertEqual(self.server.get("/health").status, 200)

    # -- query parameters of GET /tasks ------------------------------------------------------
    def test_limit_out_of_range_or_not_int(self):
        ge = ("greater_than_equal", "Input should be greater than or equal to 1", {"ge": 1})
        le = ("less_than_equal", "Input should be less than or equal to 100", {"le": 100})
        parsing = ("int_parsing", "Input should be a valid integer, unable to parse string as an integer", None)
        for v, (type_, msg, ctx) in [("0", ge), ("-1", ge), ("101", le), ("99999999999999999999", le),
                                     ("abc", parsing), ("", parsing), ("1.5", parsing), ("10abc", parsing)]:
            with self.subTest(limit=v):
                item = {"type": type_, "loc": ["query", "limit"], "msg": msg, "input": v}
                if ctx:
                    item["ctx"] = ctx
                self.assertDetail(self.server.get("/tasks?" + urlencode({"limit": v})), [item])

    def test_bad_status_filter(self):
        for v in ["DONE", "created", ""]:
            with self.subTest(status=v):
                self.assertDetail(self.server.get("/tasks?" + urlencode({"status": v})),
                                  [literal(["query", "status"], v, STATUSES_EXPECTED)])

    def test_repeated_query_parameter_takes_its_last_value(self):
        # As FastAPI reads one (Starlette's QueryParams.get()): a client of the original that
        # appends next_token to a URL that had one already is read as it was there.
        page = self.assertJSON(self.server.get("/tasks?next_token=!!!&next_token="), 200)
        self.assertIsInstance(page["tasks"], list)
        self.assertEqual(len(self.assertJSON(self.server.get("/tasks?limit=abc&limit=1"), 200)["tasks"]), 1)
        self.assertDetail(self.server.get("/tasks?limit=1&limit=0"),
                          [{"type": "greater_than_equal", "loc": ["query", "limit"],
                            "msg": "Input should be greater than or equal to 1", "input": "0",
                            "ctx": {"ge": 1}}])
        self.assertDetail(self.server.get("/tasks?status=CREATED&status=DONE"),
                          [literal(["query", "status"], "DONE", STATUSES_EXPECTED)])

    def test_nul_in_query_values(self):
        # A value with an encoded NUL is not the value before the NUL.
        self.assertValidation(self.server.get("/tasks?task_type=TASK2%00x"), ("query", "task_type"))
        self.assertValidation(self.server.get("/tasks?status=CREATED%00x"), ("query", "status"))
        self.assertValidation(self.server.get("/tasks?limit=5%00abc"), ("query", "limit"))

    def test_nul_in_task_id_path(self):
        self.assertEqual(self.assertError(self.server.get("/tasks/" + self.tid + "%00junk"), 404),
                         "Task not found")
        r = self.server.patch("/tasks/" + self.tid + "%00junk", {"status": "FAILED", "status_msg": "x"})
        self.assertEqual(self.assertError(r, 404), "Task not found")
        self.assertEqual(self.server.task(self.tid)["status"], "CREATED")

    def test_unknown_task_type_filter(self):
        self.assertDetail(self.server.get("/tasks?task_type=NOPE"), [literal(["query", "task_type"], "NOPE")])

    def test_bad_filters_and_limit_together(self):
        self.assertValidation(self.server.get("/tasks?limit=0&status=NOPE&task_type=NOPE"),
                              ("query", "limit"), ("query", "status"), ("query", "task_type"),
                              types={("query", "limit"): "greater_than_equal",
                                     ("query", "status"): "literal_error",
                                     ("query", "task_type"): "literal_error"})

    def test_garbage_next_token(self):
        for tok in ["abc", "!!!!", "A" * 36, "A" * 200, "%00", "null", " "]:
            with self.subTest(token=tok):
                d = self.assertError(self.server.get("/tasks?" + urlencode({"next_token": tok})), 400)
                self.assertEqual(d, "Invalid next_token")

    def _token(self, **filters):
        for _ in range(12):
            self.server.create("TASK2")
        q = dict(filters, limit=2)
        page = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
        self.assertIsInstance(page["next_token"], str)
        return page["next_token"]

    def test_tampered_next_token(self):
        tok = self._token()
        # The genuine token works.
        self.assertJSON(self.server.get("/tasks?" + urlencode({"limit": 2, "next_token": tok})), 200)
        variants = set()
        for pos in (1, len(tok) // 2, len(tok) // 2 + 3):
            c = tok[pos]
            variants.add(tok[:pos] + ("B" if c != "B" else "C") + tok[pos + 1:])
        variants.add(tok[:-4])
        variants.add(tok + "AAAA")
        variants.discard(tok)
        for v in variants:
            with self.subTest(token=v):
                d = self.assertError(self.server.get("/tasks?" + urlencode({"limit": 2, "next_token": v})), 400)
                self.assertEqual(d, "Invalid next_token")

    def test_next_token_from_other_filter(self):
        # A token carries its listing's filters: alone or with the same filters it continues that
        # listing; with another filter (or one its listing did not have) it is a 400 saying so.
        tok = self._token(status="CREATED")
        same = self.assertJSON(self.server.get("/tasks?" + urlencode({"status": "CREATED", "limit": 2,
                                                                       "next_token": tok})), 200)
        alone = self.assertJSON(self.server.get("/tasks?" + urlencode({"limit": 2, "next_token": tok})), 200)
        self.assertEqual(alone, same)
        self.assertEqual(len(alone["tasks"]), 2)
        self.assertTrue(all(t["status"] == "CREATED" for t in alone["tasks"]), alone)
        for q in [{"status": "FAILED", "next_token": tok},
                  {"status": "CREATED", "task_type": "TASK2", "next_token": tok},
                  {"task_type": "TASK2", "next_token": tok}]:
            with self.subTest(query=q):
                self.assertEqual(self.assertError(self.server.get("/tasks?" + urlencode(q)), 400), OTHER_FILTERS)
        tok2 = self._token(task_type="TASK2")
        for q in [{"task_type": "TASK3", "next_token": tok2}, {"status": "CREATED", "next_token": tok2}]:
            with self.subTest(query=q):
                self.assertEqual(self.assertError(self.server.get("/tasks?" + urlencode(q)), 400), OTHER_FILTERS)
        tok3 = self._token()
        self.assertEqual(self.assertError(self.server.get("/tasks?" + urlencode({"status": "CREATED",
                                                                                 "next_token": tok3})), 400),
                         OTHER_FILTERS)
        # a bad filter is a 422 whatever the token
        self.assertValidation(self.server.get("/tasks?" + urlencode({"status": "NOPE", "next_token": tok})),
                              ("query", "status"))

    # -- routes and methods ------------------------------------------------------------------
    def test_unknown_route(self):
        self.assertEqual(self.assertError(self.server.get("/does/not/exist"), 404), "Not Found")

    def test_wrong_method(self):
        r = self.server.request("DELETE", "/tasks")
        self.assertError(r, 405)
        self.assertIsNotNone(r.header("Allow"))

    def test_unknown_method(self):
        # a method taskd has no handler for is, on a known route, one more "another method"
        r = self.server.request("BREW", "/tasks")
        self.assertEqual(self.assertError(r, 405), "Method Not Allowed")
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST")
        self.assertEqual(self.server.get("/health").status, 200)

    # -- PATCH ----------------------------------------------------------------------------------
    def test_patch_unknown_id(self):
        self.assertEqual(self.assertError(self.server.patch(
            "/tasks/" + str(uuid.uuid4()), {"status": "FAILED", "status_msg": "x"}), 404), "Task not found")

    def test_patch_invalid_json(self):
        r = self.server.patch("/tasks/" + self.tid, '{"status": "FAILED", ')
        self.assertDetail(r, [{"type": "json_invalid", "loc": ["body", 21], "msg": "JSON decode error",
                               "input": {}, "ctx": {"error": "string or '}' expected near end of file"}}])
        self.assertEqual(self.server.task(self.tid)["status"], "CREATED")

    def test_patch_body_not_object(self):
        for b in ["[]", '"FAILED"']:
            with self.subTest(body=b):
                self.assertDetail(self.server.patch("/tasks/" + self.tid, b), [
                    {"type": "model_attributes_type", "loc": ["body"],
                     "msg": "Input should be a valid dictionary or object to extract fields from",
                     "input": json.loads(b)}])
        self.assertDetail(self.server.patch("/tasks/" + self.tid, ""), [
            {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
        self.assertEqual(self.server.task(self.tid)["status"], "CREATED")

    def test_patch_wrong_field_types(self):
        self.assertDetail(self.server.patch("/tasks/" + self.tid, {"status": "created", "status_msg": "x"}),
                          [literal(["body", "status"], "created", STATUSES_EXPECTED)])
        self.assertDetail(self.server.patch("/tasks/" + self.tid, {"status": None, "status_msg": 5}), [
            literal(["body", "status"], None, STATUSES_EXPECTED),
            {"type": "string_type", "loc": ["body", "status_msg"], "msg": "Input should be a valid string",
             "input": 5}])
        self.assertDetail(self.server.patch("/tasks/" + self.tid, {"status_msg": "x"}), [
            {"type": "missing", "loc": ["body", "status"], "msg": "Field required",
             "input": {"status_msg": "x"}}])
        self.assertEqual(self.server.task(self.tid)["status"], "CREATED")

    def test_patch_status_msg_with_nul(self):
        tid = self.server.create("TASK2")
        r = self.server.patch("/tasks/" + tid, '{"status": "FAILED", "status_msg": "a\\u0000b"}')
        if r.status == 204:
            self.assertEqual(self.server.task(tid)["status_msg"], "a\u0000b")
        else:
            self.assertValidation(r)
            self.assertEqual(self.server.task(tid)["status"], "CREATED")

    def test_patch_over_limit_413(self):
        result = "r" * (DEFAULT_BODY_LIMIT + 10)
        body = json.dumps({"status": "FAILED", "status_msg": "x", "result": result}).encode()
        head = ("PATCH /tasks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % (self.tid, len(body))).encode()
        res = raw_exchange(self.server.port, head + body, send_in_thread=True)
        self.assertIsNotNone(res, "no response to an oversized PATCH")
        self.assertEqual(res[0], 413, res)
        self.assertIn("detail", json.loads(res[2]))
        self.assertEqual(self.server.task(self.tid)["status"], "CREATED")


class SmallBodyLimit(ServerTestCase):
    """A config file with a small body_limit is honoured."""

    server_config = {"body_limit": 1024}

    def test_over_small_limit_413(self):
        before = {t["id"] for t in self.server.list_all()}
        body = json.dumps({"task_type": "TASK2", "data": {"blob": "x" * 2000}})
        r = self.server.post("/tasks", body)
        self.assertError(r, 413)
        self.assertEqual({t["id"] for t in self.server.list_all()}, before)

    def test_under_small_limit_ok(self):
        body = json.dumps({"task_type": "TASK2", "data": {"blob": "x" * 500}})
        r = self.server.post("/tasks", body)
        tid = self.assertJSON(r, 201)["id"]
        self.assertEqual(self.server.task(tid)["data"]["blob"], "x" * 500)

    def test_small_limit_patch_413(self):
        tid = None
        r = self.server.post("/tasks", {"task_type": "TASK3"})
        if r.status == 201:
            tid = r.json()["id"]
        self.assertIsNotNone(tid, r)
        r = self.server.patch("/tasks/" + tid, {"status": "FAILED", "status_msg": "x", "result": "y" * 3000})
        self.assertError(r, 413)
        t = self.server.task(tid)
        self.assertEqual(t["status"], "CREATED")


if __name__ == "__main__":
    unittest.main()
