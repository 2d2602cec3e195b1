"""What taskd tells about itself when nothing goes through the API's router, and when
nothing happens at all.

1. Answers given before routing — a body over the limit, conflicting Content-Length
   headers, 431 headers too large, 414, 505, 400 for a malformed request line, header
   line, Content-Length or chunk, 413 for a Content-Length past 2^64 - 1 — are counted in
   taskd_http_requests_total under route="unmatched", exactly once each, and logged
   at DEBUG as the "request" line every routed request gets; none is a WARNING line.
   Each bad request goes over a raw socket; /metrics and the log are read before and
   after it.
2. An idle taskd writes nothing: no store transaction (taskd_store_commit_writes_count
   stays put) and no change to the database file or its WAL while it idles — after
   start, after a task went through, while a delayed message waits for its instant,
   and after a crash while a message waits for its visibility timeout — yet the work
   is picked up as soon as it is due.

Every test starts its own taskd (harness.Taskd) and waits with deadlines.
"""

import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServersTestCase, Taskd, db_query, metrics, raw_exchange, wait_until,  # noqa: E402
                     write_config)

FINAL = ("COMPLETED", "FAILED")
BODY_LIMIT = 4096


def series(m, name, **labels):
    """The sum of the samples of name whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in m.items() if n == name and want <= set(lbl))


def requests_but_metrics(m):
    """taskd_http_requests_total over every route but /metrics (the test's own reads)."""
    return sum(v for (n, lbl), v in m.items()
               if n == "taskd_http_requests_total" and dict(lbl).get("route") != "/metrics")


# name, request bytes, expected status, method label, JSON {"detail"} body checked (every answer
# is taskd's own, for a connection's first head and the later ones alike)
BAD_REQUESTS = [
    ("headers too large",
     b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"h" * (100 * 1024) + b"\r\nConnection: close\r\n\r\n",
     431, "unknown", True),
    ("HTTP version not supported", b"GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 505, "unknown", True),
    ("malformed HTTP version", b"GET /health HTTP/x.y\r\nHost: 127.0.0.1\r\n\r\n", 400, "unknown", True),
    ("malformed header line", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n",
     400, "unknown", False),
    ("request line too long", b"GET /" + b"u" * 40000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "unknown", True),
    ("unreadable Content-Length", b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
     400, "unknown", False),
    ("Content-Length past 2^64",
     b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     413, "unknown", False),
    ("malformed chunk",
     b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "POST", True),
    ("conflicting Content-Length",
     b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nContent-Length: 99\r\n"
     b"Connection: close\r\n\r\n0123456789", 400, "POST", True),
    ("declared body over the limit",
     b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n{",
     413, "POST", True),
    ("chunked body over the limit",
     b"PATCH /tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
     + b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n",
     413, "PATCH", True),
]


class EarlyAnswers(ServersTestCase):
    tmp_prefix = "taskd-obs-"

    def start(self):
        cfg = write_config(self.tmp, {"body_limit": BODY_LIMIT, "sweep_interval": 86400})
        s = Taskd(db=self.db, config=cfg, tmpdir=self.tmp, env={"LOG_LEVEL": "DEBUG"})
        self.servers.append(s)
        return s

    def test_counted_and_logged_once(self):
        s = self.start()
        for name, payload, status, method, own in BAD_REQUESTS:
            with self.subTest(name):
                before = metrics(s)
                n_lines = len(s.log_objects())
                res = raw_exchange(s.port, payload, timeout=5, send_in_thread=True)
                self.assertIsNotNone(res, "no answer")
                self.assertEqual(res[0], status, res[:3])
                if own:
                    self.assertIn("detail", json.loads(res[2]), res[2])
                labels = {"route": "unmatched", "method": method, "code": str(status)}

                def counted():
                    m = metrics(s)
                    return m if series(m, "taskd_http_requests_total", **labels) > \
                        series(before, "taskd_http_requests_total", **labels) else None
                after = wait_until(counted, 3.0, what="taskd_http_requests_total%r to go up" % labels)
                self.assertEqual(series(after, "taskd_http_requests_total", **labels)
                                 - series(before, "taskd_http_requests_total", **labels), 1, labels)
                self.assertEqual(requests_but_metrics(after) - requests_but_metrics(before), 1,
                                 "counted once, and nothing else counted")

                def logged():
                    for line in s.log_objects()[n_lines:]:
                        try:
                            obj = json.loads(line)
                        except ValueError:
                            continue
                        if obj.get("message") == "request" and obj.get("route") == "unmatched":
                            return obj
                    return None
                line = wait_until(logged, 3.0, what="the DEBUG request line")
                self.assertEqual(line.get("level"), "DEBUG", line)
                self.assertEqual(line.get("status"), str(status), line)
                self.assertEqual(line.get("method"), method, line)
                self.assertTrue(line.get("detail"), "the line says why: %r" % line)
        self.assertEqual(s.get("/health").status, 200)
        warns = [o for o in s.log_json() if o.get("level") in ("WARNING", "ERROR")]
        self.assertEqual(warns, [], "a client's bad request is no warning")
        self.stop_clean(s)

    def test_not_logged_at_info(self):
        cfg = write_config(self.tmp, {"body_limit": BODY_LIMIT})
        s = Taskd(db=self.db, config=cfg, tmpdir=self.tmp)  # LOG_LEVEL INFO
        self.servers.append(s)
        for _, payload, status, _, _ in BAD_REQUESTS[:2]:
            res = raw_exchange(s.port, payload, timeout=5, send_in_thread=True)
            self.assertEqual(res and res[0], status)
        m = metrics(s)
        self.assertEqual(series(m, "taskd_http_requests_total", route="unmatched"), 2)
        self.stop_clean(s)
        noisy = [o for o in s.log_json() if o.get("level") in ("DEBUG", "WARNING", "ERROR")
                 or o.get("message") == "request" or "Error processing" in o.get("message", "")]
        self.assertEqual(noisy, [], "lines at INFO for bad requests")


# ---------------------------------------------------------------------------------------------

def commits(s):
    """Store transactions committed so far."""
    return series(metrics(s), "taskd_store_commit_writes_count")


def files(s):
    """(size, mtime_ns) of the database file and its WAL."""
    out = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(s.db + suffix)
            out.append((suffix, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append((suffix, None, None))
    return out


class IdleWritesNothing(ServersTestCase):
    tmp_prefix = "taskd-idle-"

    ENV = {"TASK1_SECONDS": "0.05", "TASK1_FAILURE_RATE": "0"}

    def start(self, cfg=None, name="config.json"):
        path = write_config(self.tmp, cfg, name) if cfg is not None else None
        s = Taskd(db=self.db, config=path, tmpdir=self.tmp, env=self.ENV)
        self.servers.append(s)
        return s

    def settle(self, s, timeout=5.0, quiet_s=1.0):
        """Wait until quiet_s seconds pass without a commit."""
        def quiet():
            c0 = commits(s)
            time.sleep(quiet_s)
            return commits(s) == c0
        wait_until(quiet, timeout, interval=0, what="commits to stop")

    def assert_idle(self, s, seconds, what):
        c0, f0 = commits(s), files(s)
        time.sleep(seconds)
        c1, f1 = commits(s), files(s)
        self.assertEqual(c1 - c0, 0, "%s: %d commits in %.1f s idle" % (what, c1 - c0, seconds))
        self.assertEqual(f1, f0, "%s: the database or its WAL changed while idle" % what)

    def wait_final(self, s, tid, timeout):
        def check():
            t = s.task(tid)
            return t if t["status"] in FINAL else None
        return wait_until(check, timeout, interval=0.01, what="task %s to finish" % tid)

    def test_idle_then_prompt(self):
        s = self.start()
        self.settle(s)
        self.assert_idle(s, 3.0, "after start")
        tid = s.create("TASK1", data={"x": 1})
        # picked up by the commit that created it, never left to a periodic look: the writer's
        # feed publishes it and the idle runner's standing receive claims it in that commit, so
        # the first read after the 201 finds it taken (design.md, "Standing receives")
        self.assertNotEqual(s.task(tid)["status"], "CREATED", "not claimed with its creation")
        t = self.wait_final(s, tid, 5.0)
        self.assertEqual(t["status"], "COMPLETED", t)
        self.settle(s)
        self.assert_idle(s, 2.0, "after a task")
        self.stop_clean(s)

    def test_delayed_message_waits_without_writing(self):
        cfg = {"sweep_interval": 1, "event_replay": 0,  # one sweep a second, then reads only
               "queues": [{"name": "task1", "delay": 5, "visibility_timeout": 30,
                           "dead_letter_queue": "task1-dlq"}, {"name": "task1-dlq"}]}
        s = self.start(cfg)
        self.settle(s)
        tid = s.create("TASK1")
        def sent():
            rows = db_query(s.db, "SELECT visible_ms FROM messages")
            return rows[0][0] if rows else None
        visible_ms = wait_until(sent, 2.0, what="the message to be sent")
        # the sweeper trims the published INSERT record within its interval, then has nothing
        wait_until(lambda: db_query(s.db, "SELECT count(*) FROM changes")[0][0] == 0, 2.5,
                   interval=0.02, what="the sweep of the published change record")
        time.sleep(0.1)
        # idle until 0.3 s before the delay ends, by the message's own deadline: a window too
        # short to show anything fails rather than passes
        window = visible_ms / 1000.0 - time.time() - 0.3
        self.assertGreater(window, 1.5, "only %.1f s of the delay left to watch" % window)
        self.assert_idle(s, window, "while the message is delayed")
        self.assertEqual(s.task(tid)["status"], "CREATED")
        t = self.wait_final(s, tid, 8.0)
        late = time.time() - visible_ms / 1000.0
        self.assertEqual(t["status"], "COMPLETED", t)
        self.assertGreaterEqual(late, -0.2, "delivered %.3f s before its delay ended" % -late)
        # woken at the deadline, not left to the runner's periodic look (10 s)
        self.assertLess(late, 2.5, "delivered %.3f s after its delay ended" % late)
        self.stop_clean(s)

    def test_in_flight_after_crash_waits_for_visibility(self):
        """SIGKILL with a task running: after the restart nothing is written until the
        message's visibility timeout ends, then it is delivered again at once."""
        cfg = {"queues": [{"name": "task1", "visibility_timeout": 5, "max_receive_count": 3,
                           "dead_letter_queue": "task1-dlq"}, {"name": "task1-dlq"}],
               "handlers": [{"queue": "task1", "handler": "TASK1", "timeout": 4}]}
        self.ENV = dict(self.ENV, TASK1_SECONDS="30")
        s = self.start(cfg)
        tid = s.create("TASK1")
        self.wait_status(s, tid, ("IN_PROGRESS",), 5.0)
        # the receive hides the message for the visibility timeout (5 s), then the runner, a
        # write later, keeps it hidden for the run's timeout and margin (4 + 5 s): read it after
        # that, or the redelivery seems 4 s late (it was so read once, under ASan)
        def extended():
            v = db_query(s.db, "SELECT visible_ms FROM messages")[0][0]
            return v if v / 1000.0 - time.time() > 6.0 else None
        visible_ms = wait_until(extended, 5.0, what="the message hidden for the whole run")
        s.stop(signal.SIGKILL)
        self.ENV = dict(self.ENV, TASK1_SECONDS="0.05")
        s = self.start(cfg)
        # start-up's own commits (each stream consumer's first publish at the log's end, which
        # turns the writer's feed on) may come after the server answers: let them pass
        self.settle(s, timeout=1.5, quiet_s=0.3)
        left = visible_ms / 1000.0 - time.time()
        # a restart that took the whole timeout would leave nothing to watch: a failure, not a pass
        self.assertGreater(left, 1.5, "only %.1f s of the visibility left to watch" % left)
        self.assert_idle(s, left - 1.0, "while the message is in flight")
        self.assertEqual(db_query(s.db, "SELECT receive_count FROM messages")[0][0], 1)
        t = self.wait_final(s, tid, left + 3.0)
        late = time.time() - visible_ms / 1000.0
        self.assertEqual(t["status"], "COMPLETED", t)
        self.assertLess(late, 1.5, "redelivered %.3f s after the visibility timeout" % late)
        self.stop_clean(s)


if __name__ == "__main__":
    unittest.main()
