"""Live updates: the long poll GET /tasks/{id}?wait= and the event stream GET /events.

Wait: a task that finishes answers the waiting request at once (TASK1's handler runs 1 s here), a
task that does not answers when the time is up, as it is; a finished or absent task answers at
once; bad values are 422 in pydantic's words; the number of waiters is bounded (503 past
max_waiters); SIGTERM answers every parked request promptly.

Events: a task's CREATED -> IN_PROGRESS -> COMPLETED arrive in order with increasing ids;
Last-Event-ID (or last_event_id) resumes with exactly the missed events; filters; a position
trimmed from the change log gives a reset event first; the number of clients is bounded (503, to a
HEAD too); a client that never reads is dropped while another keeps streaming; SIGTERM ends every
stream.
"""

import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
EVENT_KEYS = ["seq", "id", "task_type", "status", "status_msg", "time", "event"]


def metric(server, name):
    """The value of an unlabelled series in /metrics."""
    text = server.get("/metrics").body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class Timed:
    """Run a request on a thread, so that the test can act while it waits."""

    def __init__(self, fn):
        self.result = self.error = None
        self.start = time.monotonic()
        self.end = None

        def run():
            try:
                self.result = fn()
            except BaseException as e:  # noqa: B902 - reported by join()
                self.error = e
            self.end = time.monotonic()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the request did not return within %.0f s" % timeout)
        if self.error:
            raise self.error
        return self.result

    @property
    def seconds(self):
        return self.end - self.start


# The ping interval by default, as the README promises it ("A `: ping` comment comes every 15 s"):
# the dashboard takes a stream silent for 35 s as dropped. The tests whose subject is what a ping
# carries set event_ping_interval shorter.
DEFAULT_PING_S = 15


# The futex system call's number, for asleep_in_timed_wait()
FUTEX_NR = {"x86_64": 202, "aarch64": 98, "riscv64": 98}.get(platform.machine())


def asleep_in_timed_wait(pid, name):
    """Whether the thread named name of process pid sleeps in a futex wait with a timeout (a
    pthread_cond_timedwait, not a mutex's wait), as the kernel tells in /proc: its state S and
    the system call it is blocked in (number, then its arguments; the fourth is the timeout)."""
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "comm")) as f:
                if f.read().strip() != name:
                    continue
            with open(os.path.join(task, tid, "stat")) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(os.path.join(task, tid, "syscall")) as f:
                call = f.read().split()
        except FileNotFoundError:  # the thread has ended
            continue
        return state == "S" and len(call) > 4 and call[0] == str(FUTEX_NR) and int(call[4], 16) != 0
    return False


def debug_sections(path):
    """The names of an ELF file's .debug_* sections (none in a build without debug information,
    such as Release's), or None when the file is no 64-bit ELF file this can read."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] not in (1, 2):
            return None
        order = "<" if head[5] == 1 else ">"
        shoff, = struct.unpack_from(order + "Q", head, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", head, 0x3A)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        if shentsize < 64 or len(table) < shentsize * shnum or shstrndx >= shnum:
            return None
        sections = [struct.unpack_from(order + "I4xQQQQ", table, i * shentsize) for i in range(shnum)]
        names_at, names_size = sections[shstrndx][3], sections[shstrndx][4]
        f.seek(names_at)
        names = f.read(names_size)
    out = []
    for name_at, *_ in sections:
        name = names[name_at:names.find(b"\0", name_at)].decode("ascii", "replace")
        if name.startswith(".debug_"):
            out.append(name)
    return out


def require_debug_info(pid):
    """Fail at once where gdb could not find what a test asks it for: a taskd built without debug
    information (Release) has neither the functions' arguments, nor their source lines, nor the
    structures' fields, and each command's wait would run out instead (60 s each)."""
    if debug_sections("/proc/%d/exe" % pid) == []:
        raise AssertionError("%s has no debug information (a Release build?): the tests that hold its "
                             "threads with gdb need it; build it with scripts/test.sh (RelWithDebInfo) "
                             "or as Debug" % os.readlink("/proc/%d/exe" % pid))


class Gdb:
    """gdb attached to a running process in non-stop mode, so that a breakpoint holds only the
    thread that reaches it; cmd() sends a command, and what gdb says collects in said.

    gdb runs its commands in turn, so an echo it says shows that those before it have run: the
    helper waits on gdb's word, not on time. Attaching is gdb's own start-up (reading the
    symbols of taskd and its libraries), which a loaded machine can make slow: it alone has the
    longer bound."""

    ATTACH_TIMEOUT = 180  # seconds
    TIMEOUT = 60  # seconds, for anything else gdb is asked
    THREAD_ROW = re.compile(r"^[* ] +\d+ +Thread ")

    def __init__(self, pid):
        require_debug_info(pid)
        self.proc = subprocess.Popen(["gdb", "-q", "-nx"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.said = []
        self.marks = 0
        self.reader = threading.Thread(target=lambda: self.said.extend(iter(self.proc.stdout.readline, "")),
                                       daemon=True)
        self.reader.start()
        for c in ["set pagination off", "set non-stop on", "set confirm off"]:
            self.cmd(c)
        try:
            self.ran("gdb attached", ["attach %d" % pid], self.ATTACH_TIMEOUT)
            # In non-stop mode the attach stops every thread, each on its own: until gdb has
            # taken a thread's stop it lists it as running, and `continue -a` would leave it
            # stopped for good (an HTTP loop, say: no request answered again). So the threads
            # are continued once gdb lists none running.
            harness.wait_until(self.none_running, self.ATTACH_TIMEOUT,
                               what="gdb to have every thread of the attach stopped")
            self.ran("every thread continued", ["continue -a &"])
        except BaseException:
            self.close()
            raise

    def cmd(self, c):
        self.proc.stdin.write(c + "\n")
        self.proc.stdin.flush()

    def ran(self, what, commands=(), timeout=TIMEOUT):
        """Send commands, then wait until gdb has run every command sent so far; return what it
        said from the first of them on."""
        self.marks += 1
        mark = "<mark %d>" % self.marks
        start = len(self.said)
        for c in commands:
            self.cmd(c)
        self.cmd("echo %s\\n" % mark)
        harness.wait_until(lambda: any(mark in line for line in self.said[start:]), timeout,
                           what=what)
        lines = self.said[start:]
        return lines[:next(i for i, line in enumerate(lines) if mark in line)]

    def none_running(self):
        """Whether gdb lists every thread stopped."""
        return not any("(running)" in line for line in self.threads())

    def wait_said(self, text, what):
        """gdb runs its commands in turn: once it says text, those before have run."""
        harness.wait_until(lambda: any(text in line for line in self.said), self.TIMEOUT, what=what)

    def set_break(self, what, commands, function):
        """Set a breakpoint on function (commands), and return once gdb has inserted it and lists
        every thread running, but any it holds in function.

        gdb says "Breakpoint N at" before it inserts the breakpoint; while threads run, it
        inserts it as the command ends, so the echo after the commands shows it inserted. And
        the threads are asked of gdb, not left a moment to run again."""
        self.ran(what, commands)
        frame = " %s (" % function
        harness.wait_until(lambda: all("(running)" in row or frame in row for row in self.threads()),
                           self.TIMEOUT, what="gdb to list every thread running, the breakpoint set")

    def once_at(self, location, function, action):
        """At the next stop at location (a tbreak's, a condition allowed) in function, the thread
        that stops runs the gdb command action and goes on; return once the breakpoint is set."""
        self.set_break("gdb's breakpoint set",
                       ["tbreak " + location, "commands\nsilent\n%s\ncontinue\nend" % action],
                       function)

    def threads(self):
        """The rows of gdb's `info threads`; none listed is an attach that failed."""
        rows = [line for line in self.ran("gdb to list the threads", ["info threads"])
                if self.THREAD_ROW.match(line)]
        if not rows:
            raise AssertionError("gdb lists no thread of the process: %s" % "".join(self.said))
        return rows

    def close(self):
        """Let every thread go and leave the process running (once: again, it does nothing)."""
        if self.proc.stdin.closed:
            return
        try:
            self.cmd("delete")
            self.ran("every thread let go", ["continue -a &"])
            self.cmd("detach")
            self.cmd("quit")
            self.proc.wait(20)
            self.reader.join(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.proc.stdin.close()
            self.proc.stdout.close()


class LiveCase(harness.ServerTestCase):
    server_kwargs = {"env": {"TASK1_SECONDS": "1", "TASK1_FAILURE_RATE": "0"}}

    def wait(self, task_id, seconds, timeout=harness.REQUEST_TIMEOUT + 60):
        return self.server.get("/tasks/%s?wait=%s" % (task_id, seconds), timeout=timeout)


@harness.local_only("the waiters and the change log are taskd's")
class Wait(LiveCase):
    def test_returns_when_the_task_finishes(self):
        tid = self.server.create("TASK1")  # its handler takes 1 s
        t = Timed(lambda: self.wait(tid, 30))
        body = self.assertJSON(t.join(40), 200)
        self.assertEqual(body["status"], "COMPLETED", body)
        self.assertEqual(body["id"], tid)
        self.assertIn("data", body)  # the same body as a plain GET
        self.assertLess(t.seconds, 20, "answered at the deadline, not at the change")

    def test_a_patch_to_a_final_status_wakes_it_and_a_claim_does_not(self):
        tid = self.server.create("TASK2")  # no handler: stays CREATED
        t = Timed(lambda: self.wait(tid, 30))
        harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 1, 10,
                           what="the waiter parked")
        with harness.EventStream(self.server) as st:
            self.assertEqual(self.server.set_status(tid, "IN_PROGRESS").status, 204)
            # the thread that wakes waiters has handled the claim once the stream has its event,
            # and a waiter it woke is no longer counted
            ev = st.next_event(10)
            self.assertEqual((ev["data"]["id"], ev["data"]["status"]), (tid, "IN_PROGRESS"), ev)
            self.assertEqual(metric(self.server, "taskd_task_waiters"), 1,
                             "answered on IN_PROGRESS: %r" % (t.result,))
        self.assertTrue(t.thread.is_alive(), "answered on IN_PROGRESS: %r" % (t.result,))
        self.assertEqual(self.server.set_status(tid, "FAILED", "no").status, 204)
        body = self.assertJSON(t.join(20), 200)
        self.assertEqual((body["status"], body["status_msg"]), ("FAILED", "no"))
        self.assertLess(t.seconds, 20)

    def test_times_out_and_answers_the_task_as_it_is(self):
        tid = self.server.create("TASK2")
        t = Timed(lambda: self.wait(tid, 1))
        body = self.assertJSON(t.join(30), 200)
        self.assertEqual(body["status"], "CREATED")
        self.assertGreaterEqual(t.seconds, 0.9, "answered before the time was up")
        self.assertLess(t.seconds, 15)

    def test_finished_or_absent_tasks_answer_at_once(self):
        tid = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(tid, "FAILED").status, 204)
        start = time.monotonic()
        self.assertEqual(self.assertJSON(self.wait(tid, 60), 200)["status"], "FAILED")
        self.assertError(self.wait("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", 60), 404)
        self.assertLess(time.monotonic() - start, 10)

    def test_bad_wait_values_are_422(self):
        tid = self.server.create("TASK2")
        # read as pydantic v2 reads an integer from a string: "-5" is a number below the bound,
        # "+5" would be 5 (taken, so not here)
        cases = {"0": "greater_than_equal", "61": "less_than_equal", "abc": "int_parsing",
                 "": "int_parsing", "0x5": "int_parsing", "-5": "greater_than_equal",
                 "1.5": "int_parsing", "99999999999": "less_than_equal"}
        for raw, kind in cases.items():
            with self.subTest(wait=raw):
                r = self.server.get("/tasks/%s?wait=%s" % (tid, raw))
                detail = self.assertValidation(r, ("query", "wait"),
                                               types={("query", "wait"): kind})
                if kind != "int_parsing":
                    self.assertEqual(detail[0]["ctx"], {"ge": 1} if kind[0] == "g" else {"le": 60})


@harness.local_only("the waiters are taskd's")
class WaitBound(LiveCase):
    server_config = {"max_waiters": 2}

    def test_past_max_waiters_is_503(self):
        ids = [self.server.create("TASK2") for _ in range(3)]
        parked = [Timed(lambda i=i: self.wait(i, 30)) for i in ids[:2]]
        harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 2, 10,
                           what="two parked waiters")
        r = self.wait(ids[2], 30)
        self.assertIn("waiting", self.assertError(r, 503))
        self.assertEqual(r.header("Retry-After"), "1")
        # a finished task needs no waiter: it answers even at the bound
        for tid in ids[:2]:
            self.assertEqual(self.server.set_status(tid, "FAILED").status, 204)
        for t in parked:
            self.assertEqual(t.join(20).json()["status"], "FAILED")
        harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 0, 10,
                           what="no waiter left")
        t = Timed(lambda: self.wait(ids[2], 1))
        self.assertEqual(t.join(20).status, 200)


@harness.local_only("the waiters are taskd's")
class WaitersThatLeave(LiveCase):
    server_config = {"max_waiters": 2}

    def raw_wait(self, tid):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(b"GET /tasks/%s?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % tid.encode())
        return s

    def test_a_client_that_leaves_frees_its_slot_at_once(self):
        tid = self.server.create("TASK2")
        socks = [self.raw_wait(tid) for _ in range(2)]
        harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 2, 10,
                           what="two parked waiters")
        for s in socks:
            s.close()
        start = time.monotonic()
        harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 0, 5,
                           what="the slots of the clients that left")
        self.assertLess(time.monotonic() - start, 3.0)
        t = Timed(lambda: self.wait(tid, 1))  # a slot is free: waited for, not refused
        self.assertEqual(t.join(20).status, 200)

    def test_a_client_that_half_closes_is_answered_at_once(self):
        tid = self.server.create("TASK2")
        s = self.raw_wait(tid)
        try:
            harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 1, 10,
                               what="the parked waiter")
            s.shutdown(socket.SHUT_WR)
            start = time.monotonic()
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertLess(time.monotonic() - start, 5.0, "answered only at the deadline")
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data)
            self.assertIn(b'"status":"CREATED"', data)
        finally:
            s.close()
        self.assertEqual(metric(self.server, "taskd_task_waiters"), 0)


@harness.local_only("GET /events is taskd's")
class EventClientsThatLeave(LiveCase):
    server_config = {"max_event_clients": 1}

    def test_a_client_that_leaves_frees_its_slot_without_an_event(self):
        a = harness.EventStream(self.server)
        try:
            self.assertEqual(a.status, 200)
            harness.wait_until(lambda: metric(self.server, "taskd_event_clients") == 1, 5,
                               what="the stream's client counted")
        finally:
            a.close()
        start = time.monotonic()
        harness.wait_until(lambda: metric(self.server, "taskd_event_clients") == 0, 5,
                           what="the slot of the client that left")
        self.assertLess(time.monotonic() - start, 3.0)  # not at the next ping or event
        b = harness.EventStream(self.server)
        try:
            self.assertEqual(b.status, 200)
        finally:
            b.close()


@harness.local_only("the waiters and the change log are taskd's")
class TurnedOff(LiveCase):
    server_config = {"max_waiters": 0, "max_event_clients": 0}

    def test_zero_turns_waiting_and_streaming_off(self):
        tid = self.server.create("TASK2")
        start = time.monotonic()
        self.assertEqual(self.assertJSON(self.wait(tid, 30), 200)["status"], "CREATED")
        self.assertLess(time.monotonic() - start, 5.0, "waited with waiting off")
        r = self.server.get("/events")
        self.assertIn("turned off", self.assertError(r, 404))
        self.assertIsNone(r.header("Retry-After"))


@harness.local_only("GET /events is taskd's")
class Heartbeat(harness.ServersTestCase):
    @unittest.skipUnless(FUTEX_NR, "needs the futex system call's number on this machine")
    def test_the_first_client_of_an_idle_server_is_pinged_within_the_heartbeat(self):
        """With nobody listening the events thread sleeps long; the stream's first client must
        still get its ping a heartbeat after it came (a proxy that closes idle connections after
        30-60 s relies on it), and no sooner than that."""
        s = harness.Taskd(env={"TASK1_SECONDS": "0"})
        self.servers.append(s)
        beat = DEFAULT_PING_S
        # the thread has gone to sleep with nobody listening: with nobody, its one timed wait
        harness.wait_until(lambda: asleep_in_timed_wait(s.proc.pid, "events"), 10,
                           what="the events thread asleep")
        with harness.EventStream(s) as st:
            came = time.monotonic()
            self.assertEqual(st.next_block(5).get("retry"), "2000")
            b = st.next_block(beat + 5)
            pinged = time.monotonic() - came
        self.assertIsNotNone(b, "no ping %.0f s after the first client came" % (beat + 5))
        self.assertIn("ping", b["comments"], b)
        self.assertGreater(pinged, beat - 1, "the first ping came before a heartbeat passed")


@harness.local_only("the waiters and the change log are taskd's")
class Shutdown(harness.ServersTestCase):
    def test_sigterm_answers_waiters_and_ends_streams_promptly(self):
        s = harness.Taskd(env={"TASK1_SECONDS": "0"})
        self.servers.append(s)
        tid = s.create("TASK2")
        waits = [Timed(lambda: s.get("/tasks/%s?wait=60" % tid, timeout=90)) for _ in range(3)]
        streams = [harness.EventStream(s) for _ in range(2)]
        harness.wait_until(lambda: metric(s, "taskd_task_waiters") == 3, 10, what="3 waiters")
        start = time.monotonic()
        s.send_signal(signal.SIGTERM)
        for t in waits:
            r = t.join(15)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["status"], "CREATED")
        for st in streams:
            self.assertTrue(st.wait_closed(15), "the stream did not end")
            self.assertTrue(st.ended_cleanly, "the stream was cut, not ended")
            st.close()
        self.assertEqual(s.proc.wait(15), 0, s.stderr_text()[-3000:])
        self.assertLess(time.monotonic() - start, 15, "shutdown waited for the waits' deadlines")


@harness.local_only("GET /events is taskd's")
class Events(LiveCase):
    server_kwargs = {"env": {"TASK1_SECONDS": "0", "TASK1_FAILURE_RATE": "0"}}

    def test_a_task_s_changes_arrive_in_order(self):
        with harness.EventStream(self.server) as st:
            self.assertEqual(st.status, 200)
            self.assertTrue(st.headers["content-type"].startswith("text/event-stream"), st.headers)
            self.assertEqual(st.headers.get("cache-control"), "no-store")
            self.assertEqual(st.next_block(5).get("retry"), "2000")
            tid = self.server.create("TASK1")
            evs = st.events(3, 30)
        self.assertEqual([e["event"] for e in evs], ["task"] * 3)
        self.assertEqual([e["data"]["status"] for e in evs], ["CREATED", "IN_PROGRESS", "COMPLETED"])
        self.assertEqual([e["data"]["event"] for e in evs], ["INSERT", "MODIFY", "MODIFY"])
        ids = [int(e["id"]) for e in evs]
        self.assertEqual(ids, sorted(set(ids)), "ids must increase")
        for e in evs:
            d = e["data"]
            self.assertEqual(list(d), EVENT_KEYS)
            self.assertEqual(d["seq"], int(e["id"]))
            self.assertEqual((d["id"], d["task_type"]), (tid, "TASK1"))
            self.assertRegex(d["time"], ISO_UTC)
        self.assertEqual(evs[1]["data"]["status_msg"], "Task started")

    def test_last_event_id_resumes_with_exactly_the_missed_events(self):
        with harness.EventStream(self.server, query="task_type=TASK3") as st:
            first = self.server.create("TASK3")
            seen = st.events(1, 20)[0]
        self.assertEqual(seen["data"]["id"], first)
        missed = [self.server.create("TASK3") for _ in range(3)]
        for how in ("header", "query"):
            with self.subTest(how=how):
                kw = ({"headers": {"Last-Event-ID": seen["id"]}} if how == "header"
                      else {"query": "last_event_id=" + seen["id"]})
                q = kw.get("query", "")
                kw["query"] = (q + "&" if q else "") + "task_type=TASK3"
                with harness.EventStream(self.server, **kw) as st:
                    evs = st.events(3, 20)
                    self.assertEqual([e["data"]["id"] for e in evs], missed)
                    self.assertTrue(all(int(e["id"]) > int(seen["id"]) for e in evs))
                    self.assertIsNone(st.next_event(1.0), "more than the missed events")

    def test_filters(self):
        with harness.EventStream(self.server, query="task_type=TASK2&status=FAILED") as st:
            other = self.server.create("TASK3")
            self.server.set_status(other, "FAILED")
            tid = self.server.create("TASK2")
            self.server.set_status(tid, "FAILED", "gave up")
            ev = st.next_event(20)
            self.assertEqual((ev["data"]["id"], ev["data"]["status"], ev["data"]["status_msg"]),
                             (tid, "FAILED", "gave up"))
            self.assertIsNone(st.next_event(1.0))
        for q, loc in (("status=DONE", "status"), ("task_type=NOPE", "task_type"),
                       ("last_event_id=x", "last_event_id")):
            with self.subTest(q=q):
                self.assertValidation(self.server.get("/events?" + q), ("query", loc))

    def test_head_and_metrics(self):
        r = self.server.request("HEAD", "/events")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/event-stream"))
        # the head a GET would get, which streams: no length (RFC 9110 §8.6), chunked in 1.1
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        # and the connection goes on: a HEAD answer has no body, whatever its head says
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"HEAD /events HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        head, rest = got.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), got)
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 "), got)
        self.assertTrue(rest.endswith(b'{"status":"ok"}'), got)
        before = metric(self.server, "taskd_event_clients")
        with harness.EventStream(self.server):
            harness.wait_until(lambda: metric(self.server, "taskd_event_clients") == before + 1, 10,
                               what="the gauge counting the client")


    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to hold the events thread")
    def test_a_client_catching_up_holds_up_no_other(self):
        """The events thread reads a behind client's rows without holding the lock the HTTP
        loops take for every stream: while that read is held, another client subscribes and
        gets its stream, and the behind client may leave (freed once its read is done)."""
        for _ in range(5):
            self.server.create("TASK2")
        ((oldest,),) = harness.db_query(self.server.db, "SELECT min(seq) FROM changes")
        gdb = Gdb(self.server.proc.pid)
        try:
            # held at the read for a client resuming from the oldest record; the thread's own
            # reads come after the last record it handled, 4 or more later
            gdb.set_break("gdb's breakpoint set", ["break broker_changes_after if after == %d" % oldest],
                          "broker_changes_after")
            behind = harness.EventStream(self.server, headers={"Last-Event-ID": str(oldest)})
            try:
                gdb.wait_said("hit Breakpoint 1", "the events thread at the behind client's read")
                t0 = time.monotonic()
                with harness.EventStream(self.server, timeout=5) as other:
                    self.assertEqual(other.status, 200)
                    took = time.monotonic() - t0
            finally:
                behind.close()
            # the loop has taken the close while the read is held (the events thread frees it)
            harness.wait_until(lambda: metric(self.server, "taskd_event_clients") == 0, 10,
                               what="the behind client's close taken during its read")
        finally:
            gdb.close()
        self.assertLess(took, 2, "a new stream waited for the behind client's read")
        with harness.EventStream(self.server) as st:  # and all goes on
            tid = self.server.create("TASK2")
            self.assertEqual(st.next_event(10)["data"]["id"], tid)


@harness.local_only("GET /events is taskd's")
class Access(LiveCase):
    server_kwargs = {"env": {"TASKD_TOKENS": "live-test-token-0123456789"}}

    def test_events_and_wait_need_the_token_like_any_get(self):
        with harness.EventStream(self.server) as st:
            self.assertEqual(st.status, 401)
            self.assertIn("bearer", st.headers.get("www-authenticate", "").lower())
        with harness.EventStream(self.server, headers={"Origin": "http://evil.example"}) as st:
            self.assertEqual(st.status, 401)  # a GET: the token decides, not the origin
        auth = {"Authorization": "Bearer live-test-token-0123456789"}
        with harness.EventStream(self.server, headers=auth) as st:
            self.assertEqual(st.status, 200)
            self.assertEqual(st.next_block(5).get("retry"), "2000")
        tid = self.server.post("/tasks", '{"task_type":"TASK2"}', headers=auth).json()["id"]
        self.assertEqual(self.server.get("/tasks/%s?wait=1" % tid).status, 401)
        self.assertEqual(self.server.get("/tasks/%s?wait=1" % tid, headers=auth).status, 200)


@harness.local_only("the change log is taskd's")
class Trimmed(LiveCase):
    # the publisher's checkpoint passes every record at once; the sweep then trims them; a ping
    # each second for test_a_filtered_stream_resumes_from_its_last_ping
    server_config = {"sweep_interval": 1, "event_replay": 0, "event_ping_interval": 1}

    def test_a_trimmed_position_gives_a_reset_first(self):
        self.server.create("TASK2")
        self.server.create("TASK2")
        oldest = harness.wait_until(
            lambda: (lambda rows: rows and rows[0][0] is None and rows[0][1])(
                harness.db_query(self.server.db, "SELECT min(seq), (SELECT value FROM meta "
                                 "WHERE name = 'changes_seq') FROM changes")),
            20, what="the change log trimmed")
        with harness.EventStream(self.server, headers={"Last-Event-ID": "0"}) as st:
            reset = st.next_event(10)
            self.assertEqual(reset["event"], "reset", reset)
            self.assertEqual(reset["data"]["oldest_seq"], oldest + 1)
            self.assertEqual(int(reset["id"]), oldest)  # where a reconnect resumes
            self.assertTrue(reset["data"]["detail"])
            tid = self.server.create("TASK2")
            ev = st.next_event(20)
            self.assertEqual(ev["data"]["id"], tid)
            self.assertEqual(int(ev["id"]), oldest + 1)
        # a client that reconnects with the reset's id resumes there, not at the position it
        # was reset from (a trim since may reset it again, but from further on)
        with harness.EventStream(self.server, headers={"Last-Event-ID": str(oldest)}) as st:
            ev = st.next_event(10)
            if ev["event"] == "task":
                self.assertEqual(int(ev["id"]), oldest + 1)
            else:
                self.assertEqual(ev["event"], "reset", ev)
                self.assertGreater(ev["data"]["oldest_seq"], oldest + 1, ev)


    def test_a_position_past_the_log_gives_a_reset_first(self):
        # an id this log never gave (a client of another database, or of this one before it was
        # restored from an older copy) was taken as "only what comes next", so the client went
        # on showing what it had and missed every change until the ids passed its position
        self.server.create("TASK2")
        last = harness.wait_until(
            lambda: harness.db_query(self.server.db, "SELECT max(coalesce((SELECT max(seq) FROM "
                                     "changes), 0), coalesce((SELECT value FROM meta WHERE name = "
                                     "'changes_seq'), 0))")[0][0],
            20, what="the creation's record")
        with harness.EventStream(self.server,
                                 headers={"Last-Event-ID": str(last + 1000)}) as st:
            reset = st.next_event(10)
            self.assertEqual(reset["event"], "reset", reset)
            self.assertEqual(reset["data"]["oldest_seq"], last + 1)
            self.assertEqual(int(reset["id"]), last)  # where a reconnect resumes
            self.assertIn("past the change log", reset["data"]["detail"])
            tid = self.server.create("TASK2")
            ev = st.next_event(20)
            self.assertEqual((ev["data"]["id"], int(ev["id"])), (tid, last + 1))

    def test_a_filtered_stream_resumes_from_its_last_ping(self):
        """A ping carries the stream's position: a filtered client that got no event of its own
        resumes from there once the log is trimmed past its start, with no reset to reload."""
        with harness.EventStream(self.server, query="task_type=TASK3") as st:
            self.server.create("TASK2")
            self.server.create("TASK2")
            # the last seq given, whether or not the sweep trimmed its record already
            inserted = int(harness.db_query(
                self.server.db, "SELECT max(coalesce((SELECT max(seq) FROM changes), 0), coalesce("
                "(SELECT value FROM meta WHERE name = 'changes_seq'), 0))")[0][0])
            # the heartbeat runs on its own clock: a ping may come between the two creates,
            # with the position it had then; the next one, a heartbeat on, has passed both (10 s
            # for the 2 s a loaded machine may stretch, where the default's first ping takes 15)
            deadline = time.monotonic() + 2 * self.server_config["event_ping_interval"] + 8
            pos = None
            while (pos is None or pos < inserted) and time.monotonic() < deadline:
                b = st.next_block(max(0.0, deadline - time.monotonic()))
                if b and b.get("event") == "reset":
                    # a busy machine left the events thread behind the sweep (1 s, no replay
                    # window), which trimmed the TASK2 records before it read them: a reset from
                    # to the first record after them, with pings after it as before
                    self.assertLessEqual(b["data"]["oldest_seq"], inserted + 1, b)
                    continue
                self.assertTrue(b is None or "event" not in b, "a TASK2 event passed the filter: %r" % b)
                if b and "ping" in b["comments"]:
                    self.assertNotIn("data", b)  # not an event: no data
                    pos = int(b["id"])
            self.assertIsNotNone(pos, "no ping within the heartbeat")
            self.assertGreaterEqual(pos, inserted)
        harness.wait_until(lambda: harness.db_query(self.server.db, "SELECT count(*) FROM changes "
                                                                    "WHERE seq <= ?", (pos,)) == [(0,)],
                           20, what="the change log trimmed past the ping's position")
        with harness.EventStream(self.server, query="task_type=TASK3",
                                 headers={"Last-Event-ID": str(pos)}) as st:
            # no reset first: one for the position would come before anything else happened
            early = st.next_event(0.5)
            self.assertIsNone(early, "a reset for the ping's position: %r" % (early,))
            tid = self.server.create("TASK3")
            ev = st.next_event(10)
            if ev["event"] == "reset":
                # a busy machine left the events thread behind the sweep (1 s, no replay
                # window), which trimmed the new record before it was read: a reset from past
                # the ping's position, not for it
                self.assertGreater(ev["data"]["oldest_seq"], pos + 1, ev)
            else:
                self.assertEqual((ev["event"], ev["data"]["id"]), ("task", tid), ev)

    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to hold the events thread")
    def test_rows_trimmed_before_the_events_thread_read_them(self):
        """A busy machine can leave the events thread behind the sweep, which trims every record
        the publisher passed: the stream is told to reload and the waiter is answered, rather
        than skipping those events in silence and answering at the deadline."""
        # attached first, so that however long gdb takes to start, the wait's 40 s are the test's
        gdb = Gdb(self.server.proc.pid)
        try:
            with harness.EventStream(self.server) as st:
                tid = self.server.create("TASK2")
                self.assertEqual(st.next_event(10)["data"]["id"], tid)
                t = Timed(lambda: self.wait(tid, 40))
                harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 1, 10,
                                   what="the waiter parked")
                # gdb holds only the thread that reads the log for waiters and streams
                # (broker_changes_after is called by no other) at its next read
                gdb.set_break("gdb's breakpoint set", ["break broker_changes_after"],
                              "broker_changes_after")
                self.server.set_status(tid, "FAILED", "cancelled")
                last = [self.server.create("TASK2") for _ in range(3)][-1]
                harness.wait_until(
                    lambda: harness.db_query(self.server.db, "SELECT count(*) FROM changes")
                    == [(0,)], 20, what="the change log trimmed")
                released = time.monotonic()
                gdb.close()
                ev = st.next_event(10)
                self.assertIsNotNone(ev, "no event: the trimmed records were skipped in silence")
                self.assertEqual(ev["event"], "reset", ev)  # not the next task's event
        finally:
            gdb.close()
        body = self.assertJSON(t.join(60), 200)
        self.assertEqual(body["status"], "FAILED", body)
        self.assertLess(t.end - released, 10, "answered at the deadline, not at the change")
        self.assertEqual(self.server.get("/tasks/" + last).status, 200)


@harness.local_only("the change log is taskd's")
class RowWithoutAnEvent(LiveCase):
    def test_is_passed_over_and_said_once(self):
        """A change row that tells no event (kept as parts, its status one that is no status: a
        damaged or hand-edited database) is passed over by every client, said once at WARN with
        its sequence number however many clients read past it, and each stream goes on after it.
        It was passed over without a word."""
        a = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(a, "FAILED", "cancelled").status, 204)
        conn = sqlite3.connect(self.server.db, timeout=30)
        conn.execute("UPDATE changes SET new_status = 'CANCELLED' "
                     "WHERE task_id = ? AND event_name = 'MODIFY'", (a,))
        conn.commit()
        conn.close()
        bad = harness.db_query(self.server.db, "SELECT seq FROM changes "
                               "WHERE task_id = ? AND event_name = 'MODIFY'", (a,))[0][0]
        b = self.server.create("TASK2")
        for _ in range(2):
            with harness.EventStream(self.server, headers={"Last-Event-ID": "0"}) as st:
                got = [st.next_event(10) for _ in range(2)]
            self.assertEqual([(e["data"]["id"], e["data"]["event"], e["data"]["status"])
                              for e in got], [(a, "INSERT", "CREATED"), (b, "INSERT", "CREATED")],
                             got)
        said = harness.wait_until(
            lambda: [o for o in self.server.log_json()
                     if o["message"].startswith("a change record tells no event")], 10,
            what="the row passed over said")
        self.assertEqual([(o["level"], o["sequence_number"], o.get("task_id")) for o in said],
                         [("WARNING", str(bad), a)], said)


@harness.local_only("the change log is taskd's")
class RowsWithoutAnEventBeforeOneSaid(LiveCase):
    def damage(self, task_id):
        """Make the MODIFY of task_id tell no event, as RowWithoutAnEvent does; its seq."""
        conn = sqlite3.connect(self.server.db, timeout=30)
        conn.execute("UPDATE changes SET new_status = 'CANCELLED' "
                     "WHERE task_id = ? AND event_name = 'MODIFY'", (task_id,))
        conn.commit()
        conn.close()
        return harness.db_query(self.server.db, "SELECT seq FROM changes "
                                "WHERE task_id = ? AND event_name = 'MODIFY'", (task_id,))[0][0]

    def test_a_row_before_one_said_is_said_too(self):
        """A client catching up from an old position that passes over a row no one read before is
        said, though a row after it was said first (by a client that began past it): the rows said
        are not all those before the greatest said."""
        a, c = self.server.create("TASK2"), self.server.create("TASK2")
        for t in (a, c):
            self.assertEqual(self.server.set_status(t, "FAILED", "cancelled").status, 204)
        bad_a, bad_c = self.damage(a), self.damage(c)
        b = self.server.create("TASK2")
        for after, first in ((bad_a, b), (0, a)):
            with harness.EventStream(self.server, headers={"Last-Event-ID": str(after)}) as st:
                ev = st.next_event(10)
            self.assertEqual((ev["data"]["id"], ev["data"]["event"]), (first, "INSERT"), ev)
        def said():
            return [o for o in self.server.log_json()
                    if o["message"].startswith("a change record tells no event")]
        harness.wait_until(lambda: len(said()) >= 2, 10, what="both rows passed over said")
        self.assertEqual([(o["sequence_number"], o.get("task_id")) for o in said()],
                         [(str(bad_c), c), (str(bad_a), a)], said())


@harness.local_only("the change log is taskd's")
class Replay(LiveCase):
    # sweeps every second, with the default event_replay (60 s); finished tasks past their ttl
    # are deleted at once
    server_config = {"sweep_interval": 1, "retention_grace": 0}

    def swept(self):
        """Return once a sweep has trimmed the change log after now: a finished task past its
        ttl, made now, is deleted by the same write that trims the log."""
        past = self.server.create("TASK2", ttl=1662381756)
        self.assertEqual(self.server.set_status(past, "FAILED", "expired").status, 204)
        harness.wait_until(lambda: self.server.get("/tasks/" + past).status == 404, 20,
                           what="a sweep to delete the task past its ttl")

    def test_a_reconnect_after_sweeps_misses_nothing(self):
        """Records every consumer has read outlive the sweep by event_replay, so a client that
        reconnects a few sweeps later resumes where it was, not with a reset."""
        before = int(self.server.get("/tasks?limit=1").header("X-Last-Event-ID"))
        tid = self.server.create("TASK2")
        self.server.set_status(tid, "FAILED", "cancelled")
        for _ in range(2):  # two sweeps, each with nothing to trim yet
            self.swept()
        with harness.EventStream(self.server, headers={"Last-Event-ID": str(before)}) as st:
            got = [st.next_event(10) for _ in range(2)]
        self.assertEqual([(e["event"], e["data"]["id"], e["data"]["status"]) for e in got],
                         [("task", tid, "CREATED"), ("task", tid, "FAILED")], got)
        self.assertEqual(int(got[0]["id"]), before + 1)


@harness.local_only("the events thread's frames are taskd's")
class FrameFailure(LiveCase):
    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to fail the making of a frame")
    def test_an_event_whose_frame_could_not_be_made_comes_after_all(self):
        """An event whose frame could not be made (no memory) comes once it can be, in its
        place: it was passed over, the stream's position moved past it, and neither the stream
        nor a reconnect from its last id ever gave it."""
        # attached first, so that however long gdb takes to start, the stream is the test's
        gdb = Gdb(self.server.proc.pid)
        try:
            with harness.EventStream(self.server) as st:
                # the next frame the events thread makes fails as an allocation would
                gdb.once_at("task_event_sse", "task_event_sse", "set var b->failed = 1")
                first = self.server.create("TASK2")
                second = self.server.create("TASK2")
                got = []
                while len(got) < 2:
                    e = st.next_event(20)
                    if e is None:
                        break
                    got.append(e)
        finally:
            gdb.close()
        self.assertEqual([(e["event"], e["data"]["id"]) for e in got],
                         [("task", first), ("task", second)], got)

    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to fail the making of a frame")
    def test_an_event_whose_replayed_frame_could_not_be_made_comes_after_all(self):
        """The same for an event replayed from the log to a client resuming from an older id:
        it comes once its frame can be made, in its place, not passed over."""
        before = int(self.server.get("/tasks?limit=1").header("X-Last-Event-ID"))
        first = self.server.create("TASK2")
        second = self.server.create("TASK2")
        # attached first, so that however long gdb takes to start, the stream is the test's
        gdb = Gdb(self.server.proc.pid)
        try:
            # the next frame the events thread makes, the replay's first, fails
            gdb.once_at("task_event_sse", "task_event_sse", "set var b->failed = 1")
            with harness.EventStream(self.server, headers={"Last-Event-ID": str(before)}) as st:
                got = st.events(2, 20)
        finally:
            gdb.close()
        self.assertEqual([(e["event"], e["data"]["id"]) for e in got],
                         [("task", first), ("task", second)], got)


@harness.local_only("the events thread's buffers are taskd's")
class BufferFailure(LiveCase):
    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to fail the growth of a buffer")
    def test_a_client_whose_buffer_cannot_grow_is_dropped_for_that(self):
        """A client whose buffer cannot take an event (no memory) is dropped, said as a warning
        with that reason, where it was said to read too slowly."""
        # attached first, so that however long gdb takes to start, the stream is the test's
        gdb = Gdb(self.server.proc.pid)
        try:
            with harness.EventStream(self.server) as st:
                # the stream's buffer fails at the next event, as an allocation would
                gdb.once_at("live.c:deliver", "deliver", "set var s->buf.failed = 1")
                self.server.create("TASK2")
                self.assertTrue(st.wait_closed(20), "the stream was not ended")
        finally:
            gdb.close()
        said = harness.wait_until(
            lambda: [(o.get("level"), o["message"]) for o in self.server.log_json()
                     if o.get("message", "").startswith("event client dropped")], 10,
            what="the client's drop said")
        self.assertEqual(said, [("WARNING", "event client dropped: no memory for its events")])


@harness.local_only("the change log is taskd's")
class ReadFailure(LiveCase):
    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to fail a read of the change log")
    def test_a_failed_read_of_the_log_is_tried_again_soon(self):
        """A read of the change log that fails is tried again in a moment, not at the next commit
        (none may come) or at a waiter's deadline; said once, and once again when it reads."""
        # attached first, so that however long gdb takes to start, the wait's 30 s are the test's
        gdb = Gdb(self.server.proc.pid)
        try:
            tid = self.server.create("TASK2")
            t = Timed(lambda: self.wait(tid, 30))
            harness.wait_until(lambda: metric(self.server, "taskd_task_waiters") == 1, 10,
                               what="the waiter parked")
            # the events thread's next read returns STORE_BUSY without reading, once
            gdb.once_at("broker_changes_after", "broker_changes_after",
                        "return (store_rc)STORE_BUSY")
            self.assertEqual(self.server.set_status(tid, "FAILED", "cancelled").status, 204)
            changed = time.monotonic()
            body = self.assertJSON(t.join(40), 200)
        finally:
            gdb.close()
        self.assertEqual(body["status"], "FAILED", body)
        self.assertLess(t.end - changed, 5, "answered at the deadline, not at the change")
        said = [o["message"] for o in self.server.log_json() if "change log" in o.get("message", "")]
        self.assertEqual(said, ["cannot read the change log for events and waiters; retrying",
                                "the change log is read again for events and waiters"], said)


@harness.local_only("GET /events is taskd's")
class ClientBound(LiveCase):
    server_config = {"max_event_clients": 2}

    def test_past_max_event_clients_is_503(self):
        for _ in range(3):  # a HEAD is answered as a GET would be, and keeps no slot
            self.assertEqual(self.server.request("HEAD", "/events").status, 200)
        a, b = harness.EventStream(self.server), harness.EventStream(self.server)
        try:
            self.assertEqual((a.status, b.status), (200, 200))
            r = self.server.get("/events")
            self.assertIn("event clients", self.assertError(r, 503))
            self.assertEqual(r.header("Retry-After"), "1")
            r = self.server.request("HEAD", "/events")
            self.assertEqual((r.status, r.header("Retry-After")), (503, "1"))
            a.close()
            # a closed client is noticed when the next event is written to it
            self.server.create("TASK2")

            def reconnects():
                c = harness.EventStream(self.server)
                if c.status == 200:
                    return c
                c.close()
                self.server.create("TASK2")
                return None
            c = harness.wait_until(reconnects, 20, interval=0.2, what="a free slot")
            c.close()
        finally:
            a.close()
            b.close()


@harness.local_only("GET /events is taskd's")
class SlowClient(LiveCase):
    server_config = {"event_buffer_bytes": 262144}  # 20 of its events: a burst fits

    def test_a_client_that_never_reads_is_dropped_and_others_keep_streaming(self):
        good = harness.EventStream(self.server)
        reader = harness.EventReader(good)
        got = reader.events
        slow = harness.EventStream(self.server, rcvbuf=4096)  # reads its head, then never again
        harness.wait_until(lambda: metric(self.server, "taskd_event_clients") == 2, 10,
                           what="both clients counted")
        # the longest status_msg, 12 KiB of UTF-8: each event fills the buffers 4 times as fast
        # as 3000 ASCII bytes did, and its characters are split across the stream's chunks
        msg = "€" * 4096
        sent = 0
        deadline = time.monotonic() + 120
        while metric(self.server, "taskd_event_clients_dropped_total") < 1:
            reader.check()
            self.assertLess(time.monotonic(), deadline, "the slow client was never dropped")
            tid = self.server.create("TASK2")
            self.assertEqual(self.server.set_status(tid, "FAILED", msg).status, 204)
            sent += 2
        # the other client keeps streaming: it gets every event, then new ones
        last = self.server.create("TASK3")
        sent += 1
        reader.until(lambda: got and got[-1]["data"]["id"] == last, 30,
                     what="the reading client's events (%d sent; dropped %s, clients %s)"
                     % (sent, metric(self.server, "taskd_event_clients_dropped_total"),
                        metric(self.server, "taskd_event_clients")))
        self.assertEqual(len(got), sent)
        self.assertEqual({e["data"]["status_msg"] for e in got if e["data"]["status"] == "FAILED"},
                         {msg})
        # its connection closes once the server sees the socket shut down
        harness.wait_until(lambda: metric(self.server, "taskd_event_clients") == 1, 10,
                           what="only the reading client left")
        harness.wait_until(lambda: any(o.get("message", "").startswith("event client dropped")
                                       and o.get("level") == "INFO"
                                       for o in self.server.log_json()), 10, what="the INFO line")
        # the dropped client's connection is reset: an end would queue behind the events the
        # server's socket holds, which it would go on holding for a client that never takes them
        ours = slow.sock.getsockname()[1]
        harness.wait_until(lambda: harness.tcp_socket(self.server.port, ours) is None, 2,
                           what="the server's side of the connection gone, not left with its queue")
        slow.sock.settimeout(10)
        with self.assertRaises(ConnectionResetError):
            while slow.sock.recv(65536):
                pass
        slow.close()
        good.close()


@harness.local_only("the events thread's buffers are taskd's")
class SlowButSteadyClient(LiveCase):
    # a buffer of 2 MiB, more than the server's socket takes at a time once it is full (about a
    # third of the 2.5 MB or so it holds): a client that reads on slowly never reads it empty
    server_config = {"event_buffer_bytes": 2097152}
    # the 1,400 writes that fill the log wait for no fsync: the subject is the stream's buffer,
    # which a commit's durability does not touch
    server_kwargs = dict(LiveCase.server_kwargs, sync="normal")

    @unittest.skipUnless(shutil.which("gdb"), "needs gdb to look at the client's buffer")
    def test_a_client_that_never_empties_its_buffer_keeps_it_bounded(self):
        """A client that reads on, but never all it is owed (the log replayed to a slow reader),
        holds a buffer of at most twice event_buffer_bytes and an event: what it read is given
        back, where the buffer grew by every byte streamed to it until it was read empty."""
        msg = "€" * 4096  # the longest status_msg: 12 KiB events
        before = int(self.server.get("/tasks?limit=1").header("X-Last-Event-ID"))
        last = None
        for _ in range(700):  # 8.6 MB: the sockets' 2.5 MB, the buffer, and more than twice it
            last = self.server.create("TASK2")
            self.assertEqual(self.server.set_status(last, "FAILED", msg).status, 204)
        # attached first, so that however long gdb takes to start, the stream is the test's
        gdb = Gdb(self.server.proc.pid)
        try:
            # says, once, how far the buffer grew past twice its bound and an event
            gdb.once_at("live.c:deliver if s->buf.len > 2 * l->buffer_limit + 65536", "deliver",
                        'printf "event buffer grown to %lu bytes\\n", s->buf.len')
            st = harness.EventStream(self.server, headers={"Last-Event-ID": str(before)},
                                     rcvbuf=4096)
            try:
                deadline = time.monotonic() + 120
                n = 0
                while True:  # an event a 5 ms: slower than the log is read for it
                    e = st.next_event(max(0.0, deadline - time.monotonic()))
                    self.assertIsNotNone(e, "%d events of the replay came in time" % n)
                    self.assertEqual(e["event"], "task", e)
                    n += 1
                    if e["data"]["id"] == last and e["data"]["status"] == "FAILED":
                        break
                    time.sleep(0.005)
            finally:
                st.close()
            gdb.ran("gdb to say what it saw")
            said = list(gdb.said)
        finally:
            gdb.close()
        grown = [line for line in said if "event buffer grown" in line]
        self.assertEqual(grown, [], "the buffer of a client that reads on grew past twice "
                         "event_buffer_bytes")


@harness.local_only("the events thread's buffers are taskd's")
class QuietClient(LiveCase):
    # a buffer of 1 KiB, and finished tasks deleted 8 s after they end: one sweep step of 60
    # deletions is a burst several times the buffer
    server_config = {"event_buffer_bytes": 1024, "retention_grace": 8, "sweep_interval": 1}

    def test_a_client_quiet_for_a_while_is_not_dropped_by_a_burst(self):
        """A client that has read all it was sent is owed nothing, however long it was quiet:
        a burst past its buffer after 7 s of quiet makes it catch up from the log, and every
        event comes (it was dropped before, as if it had stopped reading 7 s ago)."""
        ids = [self.server.create("TASK2", ttl=1) for _ in range(60)]
        for tid in ids:
            self.assertEqual(self.server.set_status(tid, "FAILED", "over").status, 204)
        with harness.EventStream(self.server) as st:
            removed = set()
            deadline = time.monotonic() + 40
            while len(removed) < len(ids):
                e = st.next_event(max(0.0, deadline - time.monotonic()))
                self.assertIsNotNone(e, "%d of %d deletions came; dropped: %s" % (
                    len(removed), len(ids), metric(self.server, "taskd_event_clients_dropped_total")))
                if e["event"] == "task" and e["data"].get("event") == "REMOVE":
                    removed.add(e["data"]["id"])
            self.assertEqual(removed, set(ids))
        self.assertEqual(metric(self.server, "taskd_event_clients_dropped_total"), 0)


if __name__ == "__main__":
    unittest.main()
