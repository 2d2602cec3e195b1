"""The local HTTP/1.1 server's wire behaviour, over raw sockets: a large Content-Length body that
arrives in pieces, a chunked body (extensions, trailers) with a request pipelined after it, and
with a Content-Length too, Expect: 100-continue within and over the body limit, keep-alive and
close on HTTP/1.0 and 1.1 (Connection and Expect read in every line), a closing answer to a slow
reader not reset by its later bytes, HEAD answers without their bodies, the event stream's framing
on HTTP/1.1 and 1.0, query arguments' decoding, and a malformed chunked body on a kept-alive
connection."""

import collections
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EventStream, ServerTestCase, Taskd, local_only, metric,  # noqa: E402
                     all_read, parse_metrics, parse_response_headers, preload_env, recv_before,
                     wait_until, write_config)

HOST = b"Host: 127.0.0.1\r\n"  # taskd answers only to its own names
BODY_LIMIT = 1048576  # taskd's default body_limit
TOO_LARGE = "Request body too large (limit %d bytes)" % BODY_LIMIT
HEALTH = b'{"status":"ok"}'

# One answer: its status, its header fields (a dict, lower-case names, and in order), its body,
# and every byte it took on the wire.
Answer = collections.namedtuple("Answer", "status headers fields body raw")


def compact(obj):
    """obj as the API writes JSON back: no blanks, UTF-8 as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def create_request(body, headers=b""):
    return (b"POST /tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n" + headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def split_answer(data, method=None):
    """The answer at the start of data and the bytes after it: (Answer, rest), or None while it
    is not whole. Bytes that are not an answer's head fail the test."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    parsed = parse_response_headers(data[:end + 4], "HEAD")  # the head alone
    if parsed is None:
        raise AssertionError("not a response head: %r" % data[:300])
    status, fields, _ = parsed
    headers = dict(fields)
    at = end + 4
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Answer(status, headers, fields, b"", data[:at]), data[at:]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            eol = data.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(data[at:eol], 16)
            if len(data) < eol + 2 + size + 2:
                return None
            if data[eol + 2 + size:eol + 4 + size] != b"\r\n":
                raise AssertionError("chunk not followed by CRLF: %r" % data[at:at + 300])
            body += data[eol + 2:eol + 2 + size]
            at = eol + 4 + size
            if size == 0:
                return Answer(status, headers, fields, body, data[:at]), data[at:]
    if "content-length" not in headers:
        raise AssertionError("an answer with neither Content-Length nor chunks: %r" % data[:300])
    at += int(headers["content-length"])
    if len(data) < at:
        return None
    return Answer(status, headers, fields, data[end + 4:at], data[:at]), data[at:]


class Client:
    """One raw connection: bytes sent as given, answers read one at a time, in order."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        if rcvbuf:  # a small receive window, set before the connect: a slow reader
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", port))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""  # received, not yet read as an answer
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, deadline):
        """Read once; False at the end of the connection or the deadline."""
        if self.eof:
            return False
        data = recv_before(self.sock, deadline)
        if not data:
            self.eof = data is not None
            return False
        self.pending += data
        return True

    def answer(self, method=None, timeout=5.0):
        """The next whole answer; the test fails when none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            got = split_answer(self.pending, method)
            if got:
                ans, self.pending = got
                return ans
            if not self._recv(deadline):
                raise AssertionError("no whole answer within %.0f s%s; got %r"
                                     % (timeout, " (closed)" if self.eof else "", self.pending[:300]))

    def read_until(self, marker, timeout=5.0):
        """Read until pending holds marker; the test fails when it does not come in time."""
        deadline = time.monotonic() + timeout
        while marker not in self.pending:
            if not self._recv(deadline):
                raise AssertionError("%r not received within %.0f s; got %r"
                                     % (marker, timeout, self.pending[-300:]))

    def closed(self, timeout=3.0):
        """True when the server closes the connection within timeout (what came before the close
        stays in pending)."""
        deadline = time.monotonic() + timeout
        while self._recv(deadline):
            pass
        return self.eof

    def close(self):
        self.sock.close()


@local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
class Wire(ServerTestCase):
    def connect(self):
        c = Client(self.server.port)
        self.addCleanup(c.close)
        return c

    def ids(self):
        return {t["id"] for t in self.server.list_all()}

    def assertClosedAfter(self, c, what):
        """The server closes c, and sends nothing more before the close."""
        self.assertTrue(c.closed(), "the connection stayed open after %s" % what)
        self.assertEqual(c.pending, b"", "bytes after %s" % what)

    def assertHealth(self, ans, connection=None):
        self.assertEqual((ans.status, ans.body), (200, HEALTH), ans.raw[:300])
        self.assertEqual(ans.headers.get("connection"), connection, ans.raw[:300])

    def assertTaskData(self, tid, data):
        """GET /tasks/{tid} (a connection of its own) carries data exactly as compact() writes it."""
        r = self.server.get("/tasks/" + tid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], data)
        self.assertIn(b',"data":' + compact(data) + b',"result":', r.body, "data not byte for byte")

    def test_content_length_body_in_pieces_then_a_read_on_the_same_connection(self):
        # About 300 KB, far past the 4 KiB a connection's buffer starts with: the head is read
        # and split before most of the body is in, and the buffer grows under it (the split
        # head's fields, Idempotency-Key among them, must survive the move). Two- and three-byte
        # UTF-8 characters here and there, so that pieces end inside some.
        blob = "".join(chr(0x21 + (i * 7919) % 94) if i % 97 else "\u00e9\u6f22"
                       for i in range(300 * 1024)).replace('"', "'").replace("\\", "/")
        data = {"blob": blob}
        body = compact({"task_type": "TASK2", "data": data})
        self.assertGreater(len(body), 300 * 1024)
        key = b"wire-pieces-%d" % time.monotonic_ns()
        request = create_request(body, b"Idempotency-Key: " + key + b"\r\n")
        head_len = request.index(b"\r\n\r\n") + 4
        quarter = len(body) // 4
        cuts = [0, head_len + 100, head_len + quarter + 1, head_len + 3 * quarter - 1, len(request)]
        c = self.connect()
        for i in range(4):  # the first piece: the head and 100 bytes of the body
            if i:
                time.sleep(0.05)
            c.send(request[cuts[i]:cuts[i + 1]])
        created = c.answer()
        self.assertEqual(created.status, 201, created.raw[:300])
        tid = json.loads(created.body)["id"]
        self.assertEqual(created.headers.get("location"), "/tasks/" + tid)
        self.assertNotIn("connection", created.headers)
        c.send(b"GET /tasks/" + tid.encode() + b" HTTP/1.1\r\n" + HOST + b"\r\n")
        got = c.answer()
        self.assertEqual(got.status, 200, got.raw[:300])
        self.assertEqual(json.loads(got.body)["data"], data)
        self.assertIn(b',"data":' + compact(data) + b',"result":', got.body, "data not byte for byte")
        # the key was read after the buffer moved: the same request again is the same task
        c.send(request)
        again = c.answer()
        self.assertEqual((again.status, json.loads(again.body)), (200, {"id": tid}), again.raw[:300])

    def test_chunked_body_with_extensions_and_trailers_then_pipelined_request(self):
        data = {"text": "chunk \u00e9\u00e8 \u6f22\u5b57 " * 400, "n": list(range(300))}
        body = compact({"task_type": "TASK2", "data": data})
        chunked, at, i = b"", 0, 0
        while at < len(body):
            size = 1 + (i * 37) % 150  # 1 to 150 bytes: split lines and UTF-8 characters
            part = body[at:at + size]
            # sizes in either case of hex, some with extensions
            line = (b"%X" if i % 2 else b"%x") % len(part)
            line += (b";x=1", b"", b' ; name="v;w"', b"")[i % 4]
            chunked += line + b"\r\n" + part + b"\r\n"
            at += size
            i += 1
        self.assertGreater(i, 100)
        chunked += b"0;last=yes\r\nX-T: 1\r\nX-Other: two words\r\n\r\n"
        c = self.connect()
        c.send(b"POST /tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunked
               + b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
        created = c.answer()
        self.assertEqual(created.status, 201, created.raw[:300])
        self.assertNotIn("connection", created.headers)
        self.assertHealth(c.answer(), "close")
        self.assertClosedAfter(c, "an answer with Connection: close")
        self.assertTaskData(json.loads(created.body)["id"], data)

    def test_chunked_with_content_length_is_answered_then_closed(self):
        # Both framings: the body is read as chunked, and the connection closes after the
        # answer (a proxy in front may have framed it by the length), so what follows is not run.
        before = self.ids()
        data = {"both": True}
        body = compact({"task_type": "TASK2", "data": data})
        c = self.connect()
        c.send(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
        self.assertHealth(c.answer())
        c.send(b"POST /tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
               + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
               + create_request(compact({"task_type": "TASK2", "data": {"after": "both"}})))
        created = c.answer()
        self.assertEqual(created.status, 201, created.raw[:300])
        self.assertEqual(created.headers.get("connection"), "close")
        self.assertClosedAfter(c, "a request with both Transfer-Encoding and Content-Length")
        tid = json.loads(created.body)["id"]
        self.assertTaskData(tid, data)
        self.assertEqual(self.ids() - before, {tid}, "the request after it was run")

    def test_expect_100_continue_within_the_limit(self):
        c = self.connect()
        for n in range(2):  # the connection's first request, then a later one
            with self.subTest(request=n + 1):
                data = {"expect": n, "pad": "p" * 5000}
                body = compact({"task_type": "TASK2", "data": data})
                request = create_request(body, b"Expect: 100-continue\r\n")
                c.send(request[:-len(body)])  # the head alone
                cont = c.answer()
                self.assertEqual(cont.raw, b"HTTP/1.1 100 Continue\r\n\r\n")
                self.assertEqual(c.pending, b"", "more than the 100 before the body")
                c.send(body)
                created = c.answer()
                self.assertEqual(created.status, 201, created.raw[:300])
                self.assertTaskData(json.loads(created.body)["id"], data)

    def send_fail_server(self, prefix, error="EAGAIN"):
        """A taskd of its own whose send() and sendmsg() of bytes beginning with prefix fail with
        EAGAIN while the flag file is there (it is at first), or with EINTR once (error="EINTR":
        the shim removes the file), and a client connected to it: (server, flag file, client)."""
        tmp = tempfile.mkdtemp(prefix="taskd-wire-")
        self.addCleanup(shutil.rmtree, tmp, True)
        flag = os.path.join(tmp, "send-fail")
        srv = Taskd(env=preload_env(self, "SEND_FAIL_SHIM", "libsend_fail.so",
                                    SEND_FAIL_FILE=flag, SEND_FAIL_ERRNO=error))
        self.addCleanup(srv.close)
        with open(flag, "wb") as f:
            f.write(prefix)
        c = Client(srv.port)
        self.addCleanup(c.close)
        return srv, flag, c

    def test_expect_100_continue_with_a_full_send_buffer_waits_for_room(self):
        """A 100 that finds the socket's send buffer full (here: send() and sendmsg() fail with
        EAGAIN, as they do then) waits for room as an answer does, the request kept: the client
        may send its body when its wait for the 100 ends, and gets the 100, then its answer,
        once there is room; where the connection was closed unanswered, and then the 100 was
        left out."""
        srv, flag, c = self.send_fail_server(b"HTTP/1.1 100 Continue")
        body = compact({"task_type": "TASK2", "data": {"pad": "p" * 5000}})
        c.send(create_request(body, b"Expect: 100-continue\r\n")[:-len(body)])
        self.assertFalse(c.closed(timeout=0.5), "the connection was closed, its request unanswered")
        self.assertEqual(c.pending, b"", "an answer while the socket had no room")
        c.send(body[:100])
        self.assertFalse(c.closed(timeout=0.5), "the connection was closed, its request unanswered")
        self.assertEqual(c.pending, b"", "an answer while the socket had no room")
        os.remove(flag)
        c.send(body[100:])  # the client's bytes bring its loop back to the 100 waiting
        self.assertEqual(c.answer().raw, b"HTTP/1.1 100 Continue\r\n\r\n")
        created = c.answer()
        self.assertEqual(created.status, 201, created.raw[:300])
        tid = json.loads(created.body)["id"]
        self.assertEqual(srv.get("/tasks/" + tid).json()["data"], {"pad": "p" * 5000})
        c.send(create_request(body, b"Expect: 100-continue\r\n")[:-len(body)])
        self.assertEqual(c.answer().raw, b"HTTP/1.1 100 Continue\r\n\r\n")
        c.send(body)
        self.assertEqual(c.answer().status, 201)

    def test_a_100_still_waiting_when_the_answer_is_made_goes_before_it(self):
        """A 100 the socket had no room for while the whole body came (send() and sendmsg() of
        bytes beginning with it fail with EAGAIN) is still waiting when the answer is made: it
        goes first, then the answer, once there is room; the answer does not take its place,
        nor (a 100 partly sent) follow a part of it."""
        srv, flag, c = self.send_fail_server(b"HTTP/1.1 100 Continue")
        body = compact({"task_type": "TASK2", "data": {"held": True}})
        c.send(create_request(body, b"Expect: 100-continue\r\n")[:-len(body)])
        self.assertFalse(c.closed(timeout=0.5), "the connection was closed, its request unanswered")
        c.send(body)  # the task is made and answered while the 100 waits
        self.assertFalse(c.closed(timeout=0.5), "the connection was closed, its request unanswered")
        self.assertEqual(c.pending, b"", "an answer while the socket had no room")
        os.remove(flag)
        c.send(b"\r\n")  # an empty line a server ignores brings the loop back to the answer
        self.assertEqual(c.answer().raw, b"HTTP/1.1 100 Continue\r\n\r\n")
        created = c.answer()
        self.assertEqual(created.status, 201, created.raw[:300])
        tid = json.loads(created.body)["id"]
        self.assertEqual(srv.get("/tasks/" + tid).json()["data"], {"held": True})

    def test_expect_100_continue_interrupted_by_a_signal_is_sent_again(self):
        """A 100 whose send() a signal interrupts (EINTR) is sent again, as every answer is,
        where the connection was closed with its request unanswered."""
        srv, flag, c = self.send_fail_server(b"HTTP/1.1 100 Continue", "EINTR")
        body = compact({"task_type": "TASK2", "data": {"interrupted": True}})
        c.send(create_request(body, b"Expect: 100-continue\r\n")[:-len(body)])
        self.assertEqual(c.answer().raw, b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertFalse(os.path.exists(flag), "the send was not interrupted")
        c.send(body)
        created = c.answer()
        self.assertEqual(created.status, 201, created.raw[:300])
        tid = json.loads(created.body)["id"]
        self.assertEqual(srv.get("/tasks/" + tid).json()["data"], {"interrupted": True})

    def test_a_refusal_that_waited_for_room_lingers_once_it_is_out(self):
        """A refusal whose answer could not go out at once (the socket's send buffer full: here
        sendmsg() fails with EAGAIN while the flag file is there) lingers its moment from when
        its answer went out, not from when it was made: the body its client goes on sending just
        after the answer is read and dropped, not answered with a reset."""
        _, flag, c = self.send_fail_server(b"HTTP/1.1 413")
        c.send(b"POST /tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (BODY_LIMIT + 1))
        self.assertFalse(c.closed(timeout=1.5), "closed while its answer could not go out")
        self.assertEqual(c.pending, b"", "an answer while sendmsg() fails")
        os.remove(flag)
        c.send(b"x" * 1000)  # the client's bytes bring its loop back to the answer waiting
        ans = c.answer()
        answered = time.monotonic()
        self.assertEqual((ans.status, json.loads(ans.body)), (413, {"detail": TOO_LARGE}))
        try:
            while time.monotonic() - answered < 0.5:  # within the linger's 1 s
                c.send(b"x" * 1000)
                time.sleep(0.05)
        except OSError as e:
            self.fail("the body sent %.2f s after the answer was reset (%s)"
                      % (time.monotonic() - answered, e))
        self.assertTrue(c.closed(), "the connection stayed open past its linger")

    def test_expect_100_continue_over_the_limit_is_413_without_100(self):
        for later in (False, True):
            with self.subTest(later=later):
                c = self.connect()
                if later:
                    c.send(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
                    self.assertHealth(c.answer())
                c.send(b"POST /tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                       b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (BODY_LIMIT + 1))
                refused = c.answer()  # a 100 here fails: it would be this answer
                self.assertEqual(refused.status, 413, refused.raw[:300])
                self.assertEqual(refused.headers.get("content-type"), "application/json")
                self.assertEqual(json.loads(refused.body), {"detail": TOO_LARGE})
                self.assertEqual(refused.headers.get("connection"), "close")
                self.assertClosedAfter(c, "a 413")

    def test_expect_100_continue_refused_by_its_head_is_answered_without_100(self):
        """A head the API refuses whatever its body (a route that is none, a method the route does
        not take, a task id that is none, a path with a trailing slash, no token where one is
        needed) is answered at once: no 100, no 413 for a body over the limit, the body never
        asked for, and the connection ends after the answer."""
        secured = Taskd(env={"TASKD_TOKENS": "wire-token-0123456789"})
        self.addCleanup(secured.close)
        cases = [
            (self.server, b"POST /nope HTTP/1.1\r\n", 404, None, None),
            (self.server, b"PATCH /tasks HTTP/1.1\r\n", 405, "allow", "GET, HEAD, POST"),
            (self.server, b"PATCH /tasks/not-a-task HTTP/1.1\r\n", 404, None, None),
            (self.server, b"POST /tasks/ HTTP/1.1\r\n", 307, "location", "/tasks"),
            (secured, b"POST /tasks HTTP/1.1\r\n", 401, "www-authenticate", 'Bearer realm="taskd"'),
        ]
        # with Expect: 100-continue, and with a body over the limit (1 MiB): the head's answer,
        # not a 100 nor a 413
        framings = [b"Content-Length: 5000\r\nExpect: 100-continue\r\n",
                    b"Content-Length: 2000000\r\n"]
        for (server, line, status, field, value), framing in itertools.product(cases, framings):
            with self.subTest(request=line, status=status, framing=framing):
                c = Client(server.port)
                self.addCleanup(c.close)
                c.send(line + HOST + b"Content-Type: application/json\r\n" + framing + b"\r\n")
                ans = c.answer()  # a 100 here fails: it would be this answer
                self.assertEqual(ans.status, status, ans.raw[:300])
                if field:
                    self.assertEqual(ans.headers.get(field), value, ans.raw[:300])
                self.assertIsInstance(json.loads(ans.body or b"{}").get("detail", ""), str)
                self.assertEqual(ans.headers.get("connection"), "close", ans.raw[:300])
                self.assertClosedAfter(c, "an answer to a refused head")
        # a head the API takes still gets its 100 (test_expect_100_continue_within_the_limit)
        with socket.create_connection(("127.0.0.1", secured.port), timeout=5) as raw:
            raw.sendall(b"POST /tasks HTTP/1.1\r\n" + HOST + b"Authorization: Bearer "
                        b"wire-token-0123456789\r\nContent-Length: 2\r\n"
                        b"Expect: 100-continue\r\n\r\n")
            self.assertEqual(raw.recv(64), b"HTTP/1.1 100 Continue\r\n\r\n")

    def test_http10_closes_unless_keep_alive(self):
        c = self.connect()
        c.send(b"GET /health HTTP/1.0\r\n\r\n")
        self.assertHealth(c.answer(), "close")
        self.assertClosedAfter(c, "an HTTP/1.0 answer")
        c = self.connect()
        for _ in range(2):  # each request sent once the answer before it is in
            c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            ans = c.answer()
            self.assertHealth(ans, "keep-alive")
            self.assertEqual([k for k, _ in ans.fields].count("connection"), 1, ans.raw)
        c.send(b"GET /health HTTP/1.0\r\n\r\n")
        self.assertHealth(c.answer(), "close")
        self.assertClosedAfter(c, "an HTTP/1.0 answer without keep-alive")

    def test_connection_close_ends_the_connection_and_what_follows_is_not_run(self):
        before = self.ids()
        c = self.connect()
        c.send(b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
               + create_request(compact({"task_type": "TASK2", "data": {"after": "close"}})))
        ans = c.answer()
        self.assertHealth(ans, "close")
        self.assertEqual([k for k, _ in ans.fields].count("connection"), 1, ans.raw)
        self.assertClosedAfter(c, "an answer with Connection: close")
        self.assertEqual(self.ids() - before, set(), "the request after Connection: close was run")

    def test_connection_and_expect_are_read_in_every_line(self):
        """Connection and Expect are lists, and a field's lines one list (RFC 9110 §5.3): a
        close in a second Connection line closes after the answer, the request after it not
        run, a keep-alive in a second line keeps an HTTP/1.0 connection, and a 100-continue in
        a second Expect line gets its 100. Only the first line was read: the close was missed
        and the next request run, the keep-alive missed and the connection closed, and the 100
        never sent."""
        before = self.ids()
        c = self.connect()
        c.send(b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: keep-alive\r\n"
               b"Connection: close\r\n\r\n"
               + create_request(compact({"task_type": "TASK2", "data": {"after": "close"}})))
        ans = c.answer()
        self.assertHealth(ans, "close")
        self.assertClosedAfter(c, "an answer with Connection: close in a second line")
        self.assertEqual(self.ids() - before, set(), "the request after Connection: close was run")
        c = self.connect()
        for _ in range(2):
            c.send(b"GET /health HTTP/1.0\r\nConnection: x-custom\r\n"
                   b"Connection: keep-alive\r\n\r\n")
            self.assertHealth(c.answer(), "keep-alive")
        c = self.connect()
        body = compact({"task_type": "TASK2", "data": {"expect": "second line"}})
        request = create_request(body, b"Expect: x-custom\r\nExpect: 100-continue\r\n")
        c.send(request[:-len(body)])
        self.assertEqual(c.answer(timeout=2).raw, b"HTTP/1.1 100 Continue\r\n\r\n")
        c.send(body)
        self.assertEqual(c.answer().status, 201)

    def test_an_answer_that_closes_is_not_reset_by_bytes_sent_after_its_request(self):
        """A 900 KB answer that ends its connection (Connection: close, HTTP/1.0), to a client
        that reads slowly and sends a stray CRLF once the answer has begun: the whole answer
        comes, then the close. Closed at once, the socket answered the CRLF with a reset, which
        dropped what the answer still had queued (4 KB of it came)."""
        tid = self.server.create(data={"pad": "p" * 900000})
        get = b"GET /tasks/" + tid.encode()
        for name, request in (("Connection: close",
                               get + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"),
                              ("HTTP/1.0", get + b" HTTP/1.0\r\n\r\n")):
            with self.subTest(name):
                c = Client(self.server.port, rcvbuf=4096)
                self.addCleanup(c.close)
                c.send(request)
                c.read_until(b"\r\n")  # the head was read: the answer has begun
                c.send(b"\r\n")
                ans = c.answer(timeout=10)
                self.assertEqual(ans.status, 200, ans.raw[:300])
                self.assertEqual(ans.headers.get("connection"), "close", ans.raw[:300])
                self.assertEqual(json.loads(ans.body)["data"], {"pad": "p" * 900000})
                self.assertClosedAfter(c, "an answer that closes")

    def test_head_answers_have_the_length_and_no_body(self):
        tid = self.server.create("TASK2", data={"head": "h" * 3000})
        c = self.connect()
        targets = [b"/health", b"/tasks/" + tid.encode(), b"/no-such-route"]
        payload = b""
        for t in targets:
            payload += b"HEAD " + t + b" HTTP/1.1\r\n" + HOST + b"\r\n"
            payload += b"GET " + t + b" HTTP/1.1\r\n" + HOST + b"\r\n"
        c.send(payload + b"GET /health HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
        for t in targets:
            with self.subTest(target=t):
                head = c.answer("HEAD")
                # the next bytes must be the GET's answer, not a body of the HEAD's
                self.assertTrue(c.pending == b"" or c.pending.startswith(b"HTTP/1.1 "),
                                c.pending[:200])
                got = c.answer()
                self.assertEqual(head.status, got.status)
                self.assertEqual(int(head.headers["content-length"]), len(got.body))
                self.assertGreater(len(got.body), 0)
                self.assertEqual(head.headers.get("content-type"), got.headers.get("content-type"))
        self.assertHealth(c.answer(), "close")
        self.assertClosedAfter(c, "an answer with Connection: close")

    def test_head_refused_before_routing_has_no_body(self):
        """A HEAD whose head is refused as it is read (a malformed field or length, a head too
        large, Expect: 100-continue without a body) is answered with the refusal's head alone,
        as every answer to HEAD is (RFC 9110 §9.3.2), empty lines before it or not; a GET so
        refused gets the JSON detail."""
        heads = [
            (b"Bad Field: x\r\n", 400),
            (b"Content-Length: 1x\r\n", 400),
            (b"Content-Length: 99999999999999999999999\r\n", 413),
            (b"X-Pad: " + b"p" * 17000 + b"\r\n", 431),
            (b"Expect: 100-continue\r\n", 417),
        ]
        for fields, status in heads:
            for before in (b"", b"\r\n"):
                with self.subTest(fields=fields[:30], before=before):
                    c = self.connect()
                    c.send(before + b"HEAD /health HTTP/1.1\r\n" + HOST + fields + b"\r\n")
                    ans = c.answer("HEAD")
                    self.assertEqual(ans.status, status, ans.raw[:300])
                    self.assertGreater(int(ans.headers["content-length"]), 0, ans.raw[:300])
                    self.assertClosedAfter(c, "the head of a HEAD's refusal")
            c = self.connect()
            c.send(b"GET /health HTTP/1.1\r\n" + HOST + fields + b"\r\n")
            ans = c.answer()
            self.assertEqual(ans.status, status, ans.raw[:300])
            self.assertIn("detail", json.loads(ans.body))

    def test_every_answer_says_nosniff_and_carries_one_policy(self):
        """The API's answers and the server's own refusals say nosniff and carry a policy under
        which a JSON answer opened as a page runs and loads nothing and cannot be framed; the
        dashboard's pages keep their own policy, sent once."""
        tid = self.server.create("TASK2").encode()
        c = self.connect()
        c.send(b"GET /tasks/" + tid + b" HTTP/1.1\r\n" + HOST + b"\r\n"
               + create_request(compact({"task_type": "TASK2"}))
               + create_request(b"{bad")
               + b"GET /no-such-route HTTP/1.1\r\n" + HOST + b"\r\n"
               + b"HEAD /events HTTP/1.1\r\n" + HOST + b"\r\n"
               + b"GET / HTTP/1.1\r\n" + HOST + b"\r\n"
               + b"POST /tasks HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        answers = [c.answer(), c.answer(), c.answer(), c.answer(), c.answer("HEAD"), c.answer(),
                   c.answer()]
        self.assertEqual([a.status for a in answers], [200, 201, 422, 404, 200, 200, 400])
        for ans in answers:
            with self.subTest(status=ans.status, type=ans.headers.get("content-type")):
                self.assertEqual(ans.headers.get("x-content-type-options"), "nosniff", ans.raw[:400])
                policies = [v for k, v in ans.fields if k == "content-security-policy"]
                self.assertEqual(len(policies), 1, ans.raw[:600])
                if ans is answers[5]:  # the dashboard's page
                    self.assertIn("script-src 'self'", policies[0])
                else:
                    self.assertEqual(policies[0], "default-src 'none'; frame-ancestors 'none'")

    def test_event_stream_is_chunked_on_http11(self):
        with EventStream(self.server) as st:
            self.assertEqual(st.status, 200)
            self.assertTrue(st.chunked, st.headers)
            self.assertNotIn("content-length", st.headers)
            self.assertNotIn("connection", st.headers)
            self.assertTrue(st.headers["content-type"].startswith("text/event-stream"), st.headers)
            self.assertEqual(st.next_block(5).get("retry"), "2000")
            tid = self.server.create("TASK2", data={"stream": 11})
            ev = st.next_event(10)
            self.assertIsNotNone(ev, "no event for the task created")
            self.assertEqual(ev["event"], "task")
            self.assertEqual((ev["data"]["id"], ev["data"]["status"], ev["data"]["event"]),
                             (tid, "CREATED", "INSERT"))
            self.assertEqual(ev["data"]["seq"], int(ev["id"]))

    def test_event_stream_is_raw_text_on_http10(self):
        c = self.connect()
        c.send(b"GET /events HTTP/1.0\r\n\r\n")
        c.read_until(b"\r\n\r\n")
        head, _, c.pending = c.pending.partition(b"\r\n\r\n")
        status, fields, _ = parse_response_headers(head + b"\r\n\r\n", "HEAD")
        headers = dict(fields)
        self.assertEqual(status, 200, head)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"), head)
        self.assertNotIn("transfer-encoding", headers)
        self.assertNotIn("content-length", headers)
        self.assertEqual(headers.get("connection"), "close")  # the body ends with the connection
        c.read_until(b"retry: 2000\n\n")
        self.assertTrue(c.pending.startswith(b"retry: 2000\n\n"), c.pending)
        tid = self.server.create("TASK2", data={"stream": 10})
        c.read_until(b"}\n\n", timeout=10)
        text = c.pending.replace(b": ping\n\n", b"")  # the stream's heartbeat may come between
        m = re.fullmatch(rb"retry: 2000\n\nid: (\d+)\nevent: task\ndata: (\{[^\n]*\})\n\n", text)
        self.assertIsNotNone(m, c.pending)
        ev = json.loads(m.group(2))
        self.assertEqual((ev["seq"], ev["id"], ev["status"], ev["event"]),
                         (int(m.group(1)), tid, "CREATED", "INSERT"))

    def stream_server(self, **cfg):
        """A taskd of its own, so that nothing else moves its memory, and under AddressSanitizer
        without its quarantine, which keeps what is freed resident."""
        asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0") if o)
        tmp = tempfile.mkdtemp(prefix="taskd-wire-")
        self.addCleanup(shutil.rmtree, tmp, True)
        srv = Taskd(env={"ASAN_OPTIONS": asan}, config=write_config(tmp, cfg) if cfg else None,
                    tmpdir=tmp)
        self.addCleanup(srv.close)
        return srv

    @staticmethod
    def rss(srv):
        with open("/proc/%d/status" % srv.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def open_stream(self, srv, body, chunked=False):
        """A GET /events sent with body (by Content-Length, or in chunks of 64 KiB), once its
        stream has begun."""
        c = Client(srv.port)
        self.addCleanup(c.close)
        head = b"GET /events HTTP/1.1\r\n" + HOST
        if chunked:
            chunk = 64 * 1024
            c.send(head + b"Transfer-Encoding: chunked\r\n\r\n"
                   + b"".join(b"%x\r\n" % len(body[at:at + chunk]) + body[at:at + chunk] + b"\r\n"
                              for at in range(0, len(body), chunk)) + b"0\r\n\r\n")
        elif body:
            c.send(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        else:
            c.send(head + b"\r\n")
        c.read_until(b"\r\n\r\n")
        self.assertTrue(c.pending.startswith(b"HTTP/1.1 200 "), c.pending[:300])

    def test_an_event_stream_does_not_keep_its_requests_body(self):
        """A request's body is let go with its answer, its memory as well as its share of
        max_body_memory: a GET /events sent with a body of 1 MiB (read, and given no meaning),
        by Content-Length or chunked, kept it for as long as its stream ran, a megabyte each
        that no bound counted."""
        srv = self.stream_server()
        body = b"x" * BODY_LIMIT
        for i in range(2):  # what a first stream of either kind costs, before the count
            self.open_stream(srv, body, chunked=i % 2)
        before = self.rss(srv)
        n = 24
        for i in range(n):
            self.open_stream(srv, body, chunked=i % 2)
        grown = self.rss(srv) - before
        self.assertLess(grown, n * BODY_LIMIT // 4,
                        "%d streams opened with a body of 1 MiB each took %.1f MiB"
                        % (n, grown / 1048576))

    def test_an_event_stream_does_not_keep_the_buffer_of_a_small_body(self):
        """A stream reads nothing more while it runs: the input buffer a Content-Length body
        grew goes down to what the stream's request left in it, however small the body. A
        buffer grown to 64 KiB or less was kept for the connection's next request, and so for
        the stream's life: 30 streams sent with a body of 60,000 bytes grew taskd by 1.7 MiB
        more than 30 without one. The least of three rounds counts: under AddressSanitizer on
        a loaded machine one round's streams with a body took 1.2 MiB more, where its buffers
        kept took 2.2 MiB more in every round."""
        n, rounds = 30, 3
        srv = self.stream_server(max_event_clients=(1 + 2 * rounds) * n + 2)
        body = b"x" * 60000  # with its head, a buffer of 64 KiB
        # what the first streams of either kind cost, before the count: the allocator's first
        # buffers of 64 KiB (AddressSanitizer's takes them in batches) and the first streams'
        for sent in (b"", b"") + (body,) * n:
            self.open_stream(srv, sent)
        more = []
        for _ in range(rounds):
            grown = []
            for sent in (b"", body):
                before = self.rss(srv)
                for _ in range(n):
                    self.open_stream(srv, sent)
                grown.append(self.rss(srv) - before)
            more.append(grown[1] - grown[0])
        self.assertLess(min(more), n * 32 * 1024,
                        "%d streams opened with a body of 60,000 bytes took more than %d without "
                        "one by %s KiB in %d rounds"
                        % (n, n, ", ".join("%.0f" % (m / 1024) for m in more), rounds))

    def gets(self, targets):
        """A GET of each target, all sent at once on one connection: their answers, in order."""
        targets = list(targets)
        c = self.connect()
        c.send(b"".join(b"GET " + t + b" HTTP/1.1\r\n" + HOST + b"\r\n" for t in targets))
        return [c.answer() for _ in targets]

    def test_query_arguments(self):
        for _ in range(6):  # more than any limit below: every page has a next one
            self.server.create("TASK2", data={"query": True})
        cases = [
            # a repeated name: the last wins, as FastAPI reads it; a name is read as written, as
            # FastAPI reads it too ("LIMIT" is another parameter, which taskd does not read)
            (b"limit=1&limit=5", 200, 5),
            (b"LIMIT=1&limit=5", 200, 5),
            (b"limit=5&Limit=1", 200, 5),
            (b"Limit=bad&limit=2&LIMIT=0", 200, 2),
            (b"%6Cimit=1", 200, 1),  # the name is percent-decoded too
            (b"limit=%31", 200, 1),
            (b"status=CREAT%45D&task_type=TASK%32&limit=2", 200, 2),
            # '+' is a space; an encoded '+' is a '+'
            (b"status=in+progress%21", 422, "in progress!"),
            (b"status=A%2BB%20c", 422, "A+B c"),
            (b"status=CREATED&Status=bad&limit=1", 200, 1),
            (b"status=bad&STATUS=CREATED&limit=1", 422, "bad"),
        ]
        for (q, status, want), ans in zip(cases, self.gets(b"/tasks?" + q for q, _, _ in cases)):
            with self.subTest(query=q):
                self.assertEqual(ans.status, status, ans.raw[:400])
                body = json.loads(ans.body)
                if status == 200:
                    self.assertEqual(len(body["tasks"]), want, body)
                    self.assertIsNotNone(body["next_token"])
                    if b"status" in q:
                        self.assertEqual({t["status"] for t in body["tasks"]}, {"CREATED"})
                        self.assertEqual({t["task_type"] for t in body["tasks"]}, {"TASK2"})
                else:
                    self.assertEqual([(e["loc"], e["input"]) for e in body["detail"]],
                                     [(["query", "status"], want)], body)

    def test_query_name_without_value(self):
        # "?limit" is "?limit=", as Starlette reads it (parse_qsl keeping blank values), and then
        # as FastAPI validates "": a 422 for an integer or a literal, the first page for next_token
        tid = self.server.create("TASK2").encode()
        for _ in range(2):
            self.server.create("TASK2")
        cases = [
            (b"/tasks?limit", 422, ("limit", "int_parsing")),
            (b"/tasks?limit=", 422, ("limit", "int_parsing")),
            (b"/tasks?limit=2&limit", 422, ("limit", "int_parsing")),
            (b"/tasks?limit&limit=2", 200, 2),
            (b"/tasks?status", 422, ("status", "literal_error")),
            (b"/tasks?task_type&limit=1", 422, ("task_type", "literal_error")),
            (b"/tasks?next_token&limit=1", 200, 1),
            (b"/tasks/" + tid + b"?wait", 422, ("wait", "int_parsing")),
        ]
        for (target, status, want), ans in zip(cases, self.gets(t for t, _, _ in cases)):
            with self.subTest(target=target):
                self.assertEqual(ans.status, status, ans.raw[:400])
                body = json.loads(ans.body)
                if status == 200:
                    self.assertEqual(len(body["tasks"]), want, body)
                else:
                    self.assertEqual([(e["loc"], e["type"], e["input"]) for e in body["detail"]],
                                     [(["query", want[0]], want[1], "")], body)

    def test_malformed_chunk_size_on_a_later_request(self):
        cases = [b"zz\r\n", b"5\r\n{\"tas\r\nzz\r\n", b"5;x\r\n{\"tas\r\n-1\r\n",
                 b"1" * 16 + b"\r\n", b"0x10\r\n"]
        for bad in cases:
            with self.subTest(body=bad):
                before = self.ids()
                c = self.connect()
                c.send(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertHealth(c.answer())
                c.send(b"POST /tasks HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + bad
                       + create_request(compact({"task_type": "TASK2", "data": {"after": "malformed"}})))
                ans = c.answer()
                self.assertEqual(ans.status, 400, ans.raw[:300])
                self.assertEqual(ans.headers.get("content-type"), "application/json")
                self.assertEqual(json.loads(ans.body), {"detail": "Malformed chunked body"})
                self.assertEqual(ans.headers.get("connection"), "close")
                self.assertClosedAfter(c, "a malformed chunked body")
                self.assertEqual(self.ids() - before, set(), "a request after the bad body was run")


    def test_a_pipelining_client_does_not_hold_its_loop(self):
        """One event loop (--threads 1), and a client that pipelines 20,000 GET /health and reads
        the answers as fast as they come: a neighbour's request sent just after the first 1,000
        is answered after a few dozen of the requests sent after it, not once the flood's bytes
        run dry (the loop turns to its other connections every TURN_ANSWERS, 16). The neighbour
        asks for /metrics, whose count of /health answers says how many went before it: its own
        first /health, as many of the first 1,000 as the loop had read before its request came
        (on a loaded machine, all of them: the test's thread may wait between its sends), and
        those of the later ones answered while it waited."""
        srv = Taskd(args=("--threads", "1"))
        self.addCleanup(srv.close)
        health = b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n"
        neighbour = Client(srv.port)
        self.addCleanup(neighbour.close)
        neighbour.send(health)
        self.assertHealth(neighbour.answer())

        n, first = 20000, 1000
        flood = Client(srv.port, timeout=30)
        self.addCleanup(flood.close)
        answered = {"count": 0, "error": None}

        def read_all():
            status, tail = b"HTTP/1.1 200 OK\r\n", b""
            try:
                deadline = time.monotonic() + 60
                while answered["count"] < n:
                    data = recv_before(flood.sock, deadline)
                    if not data:
                        raise AssertionError("the flood's answers stopped at %d" % answered["count"])
                    seen = tail + data  # a status line may come in two pieces
                    answered["count"] += seen.count(status)
                    tail = seen[1 - len(status):]
            except Exception as e:  # noqa: BLE001 (reported below)
                answered["error"] = e

        reader = threading.Thread(target=read_all)
        reader.start()
        # one thread, the neighbour's request between two sends: no wake-up in between
        flood.send(health * first)
        neighbour.send(b"GET /metrics HTTP/1.1\r\n" + HOST + b"\r\n")
        flood.send(health * (n - first))
        ans = neighbour.answer(timeout=30)
        self.assertEqual(ans.status, 200, ans.raw[:300])
        before = metric(parse_metrics(ans.body.decode()), "taskd_http_requests_total",
                        route="/health", method="GET", code="200")
        reader.join(60)
        self.assertIsNone(answered["error"])
        self.assertEqual(answered["count"], n, "the flood was not answered whole")
        after = before - 1 - first  # answers to requests sent after the neighbour's, at most
        self.assertLess(after, 200, "the neighbour waited behind %d answers, %d of them to requests "
                        "sent after its own" % (before, after))

    def test_requests_still_coming_at_a_stop_are_answered_503(self):
        """SIGTERM while a body is on its way and while a head is half sent: each gets 503 "The
        server is shutting down" (and the connection closes), where they were cut off before; a
        HEAD's half head gets the 503's head alone. A kept-alive connection between requests is
        closed without a word."""
        srv = Taskd()
        self.addCleanup(srv.close)
        half_head = Client(srv.port)
        self.addCleanup(half_head.close)
        half_head.send(b"GET /health HTTP/1.1\r\nHo")
        half_head_of_head = Client(srv.port)
        self.addCleanup(half_head_of_head.close)
        half_head_of_head.send(b"\r\nHEAD /health HTTP/1.1\r\nHo")
        idle = Client(srv.port)
        self.addCleanup(idle.close)
        idle.send(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
        self.assertHealth(idle.answer())
        body = compact({"task_type": "TASK2", "data": {"pad": "p" * 5000}})
        half_body = Client(srv.port)
        self.addCleanup(half_body.close)
        half_body.send(create_request(body, b"Expect: 100-continue\r\n")[:-len(body)])
        self.assertEqual(half_body.answer().status, 100)  # its head is read
        half_body.send(body[:100])
        wait_until(lambda: all(all_read(c.sock, srv.port)
                               for c in (half_head, half_head_of_head, half_body)), 10,
                   what="the half heads and the body's first bytes to be read")
        srv.send_signal(signal.SIGTERM)
        for name, c in (("a body on its way", half_body), ("a half head", half_head)):
            with self.subTest(name):
                ans = c.answer()
                self.assertEqual(ans.status, 503, ans.raw[:300])
                self.assertEqual(json.loads(ans.body), {"detail": "The server is shutting down"})
                self.assertEqual(ans.headers.get("connection"), "close", ans.raw[:300])
                self.assertEqual(ans.headers.get("retry-after"), "1", ans.raw[:300])
                self.assertTrue(c.closed(), "the connection stayed open after the 503")
        ans = half_head_of_head.answer("HEAD")
        self.assertEqual((ans.status, ans.headers.get("retry-after")), (503, "1"), ans.raw[:300])
        self.assertClosedAfter(half_head_of_head, "the head of a HEAD's 503")
        self.assertTrue(idle.closed(), "the idle connection stayed open")
        self.assertEqual(idle.pending, b"", "an answer to no request")
        self.assertEqual(srv.stop(), 0)

    def test_a_head_begun_while_the_stop_waits_is_answered_503(self):
        """A stop waits for the writes in flight, here one held by a write lock taken elsewhere.
        A head begun meanwhile, on a connection opened then, is answered 503 at once, where it
        was cut off when the loops stopped.

        One loop (--threads 1), so that the 503 of a head begun before the SIGTERM says the loop
        has taken its first turn of the stop; the late head comes after that turn."""
        tmp = tempfile.mkdtemp(prefix="taskd-wire-")
        self.addCleanup(shutil.rmtree, tmp, True)
        db = os.path.join(tmp, "tasks.db")
        srv = Taskd(db=db, tmpdir=tmp, args=("--threads", "1"))
        self.addCleanup(srv.close)
        holder = sqlite3.connect(db, isolation_level=None, timeout=10)
        self.addCleanup(holder.close)
        holder.execute("BEGIN IMMEDIATE")
        early = Client(srv.port)
        self.addCleanup(early.close)
        early.send(b"GET /health HTTP/1.1\r\nHo")
        writer = Client(srv.port, timeout=15)
        self.addCleanup(writer.close)
        writer.send(create_request(compact({"task_type": "TASK2"})))
        # the write is read (and so handed on, in the same turn), and waits for the lock
        wait_until(lambda: all_read(writer.sock, srv.port), 10, what="the write to be read")
        srv.send_signal(signal.SIGTERM)
        ans = early.answer(timeout=10)  # the loop's first turn of the stop
        self.assertEqual(ans.status, 503, ans.raw[:300])
        late = Client(srv.port)
        self.addCleanup(late.close)
        late.send(b"GET /health HTTP/1.1\r\nHo")
        ans = late.answer(timeout=3)  # while the lock is still held
        self.assertEqual(ans.status, 503, ans.raw[:300])
        self.assertEqual(json.loads(ans.body), {"detail": "The server is shutting down"})
        self.assertClosedAfter(late, "the 503 of a stop")
        holder.rollback()
        # 201, or 503 had the lock outlasted the store's busy timeout (5 s) on a loaded machine
        self.assertIn(writer.answer(timeout=10).status, (201, 503))
        self.assertEqual(srv.stop(), 0, srv.stderr_text()[-3000:])

    def test_an_answer_still_being_written_at_a_stop_goes_out_whole(self):
        """A stop waits (up to 2 s) for the answers still being written, as for the event
        streams' ends: an answer larger than the kernel's buffers, to a client that reads it only
        after the SIGTERM, arrives whole (the request pipelined after it answered 503), where
        the loops stopped under it and cut it."""
        tmp = tempfile.mkdtemp(prefix="taskd-wire-")
        self.addCleanup(shutil.rmtree, tmp, True)
        srv = Taskd(config=write_config(tmp, {"body_limit": 16 << 20}), tmpdir=tmp)
        self.addCleanup(srv.close)
        # an answer of 9 MB: more than the kernel's buffers on both sides hold (4 MB at most)
        tid = srv.create("TASK2", data={"pad": "p" * 9000000}).encode()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", srv.port))
        self.addCleanup(sock.close)
        sock.sendall((b"GET /tasks/" + tid + b" HTTP/1.1\r\n" + HOST + b"\r\n") * 2)
        got = sock.recv(4096)  # the answers have begun, and wait for the client to read on
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:200])
        srv.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # time enough for a stop that does not wait to cut the answers
        while True:
            more = sock.recv(1 << 20)
            if not more:
                break
            got += more
        statuses = []
        while got:
            ans = split_answer(got)
            self.assertIsNotNone(ans, "an answer cut at the stop, after %s" % statuses)
            statuses.append(ans[0].status)
            got = ans[1]
        self.assertGreater(len(statuses), 1)
        self.assertEqual(set(statuses[:-1]), {200}, statuses)
        self.assertIn(statuses[-1], (200, 503), statuses)
        self.assertEqual(srv.stop(), 0, srv.stderr_text()[-3000:])

    def test_a_stop_in_the_middle_of_a_pipelined_flood(self):
        """SIGTERM while one client pipelines GET /health as fast as it can (its connection
        yields its turn every 16 answers, and holds a head begun at the stop more often than
        not, then answered 503): taskd exits 0, having freed it (the sanitizer pass checks for
        leaks at exit), and the client sees its connection end."""
        srv = Taskd(args=("--threads", "1"))
        self.addCleanup(srv.close)
        flood = Client(srv.port, timeout=30)
        self.addCleanup(flood.close)
        health = b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n"
        got = {"bytes": 0}

        def read_all():
            deadline = time.monotonic() + 60
            while True:
                data = recv_before(flood.sock, deadline)
                if not data:
                    return
                got["bytes"] += len(data)

        def send_all():
            try:
                flood.send(health * 200000)
            except OSError:
                pass  # cut off by the stop

        reader = threading.Thread(target=read_all)
        sender = threading.Thread(target=send_all)
        reader.start()
        sender.start()
        wait_until(lambda: got["bytes"] > 100000, 30, what="the flood being answered")
        self.assertEqual(srv.stop(), 0)
        reader.join(60)
        sender.join(60)
        self.assertFalse(reader.is_alive() or sender.is_alive(), "the flood's connection stayed")

if __name__ == "__main__":
    unittest.main()
