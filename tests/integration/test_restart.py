"""Restarts: a clean stop keeps everything; SIGKILL loses no acknowledged task."""

import os
import json
import signal
import socket
import struct
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServersTestCase, Taskd, urlencode, write_config  # noqa: E402


class Restart(ServersTestCase):
    tmp_prefix = "taskd-restart-"

    def start(self, **kw):
        s = Taskd(db=self.db, tmpdir=self.tmp, **kw)
        self.servers.append(s)
        return s

    def test_a_claims_lease_outlives_a_kill(self):
        """A client's claim keeps its key and its lease across a kill -9: the claim made again
        answers 204 after the restart, and a lease nobody renews still runs out."""
        cfg = write_config(self.tmp, {"claim_timeout": 3, "sweep_interval": 1}, "lease.json")
        s = self.start(config=cfg)
        renewed, lapsed = s.create("TASK2"), s.create("TASK2")
        body = json.dumps({"status": "IN_PROGRESS"})
        for tid in (renewed, lapsed):
            self.assertEqual(s.patch("/tasks/" + tid, body, headers={"Idempotency-Key": tid}).status, 204)
        claimed = time.monotonic()
        s.kill()
        s2 = self.start(config=cfg)
        time.sleep(max(0.0, claimed + 2.0 - time.monotonic()))  # the renewal ends 2 s after the claim's lease
        self.assertEqual(s2.patch("/tasks/" + renewed, body, headers={"Idempotency-Key": renewed}).status, 204)
        self.assertEqual(s2.patch("/tasks/" + lapsed, body).status, 409)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and s2.task(lapsed)["status"] != "FAILED":
            time.sleep(0.1)  # polling interval: the sweep runs on its own schedule
        self.assertEqual(s2.task(lapsed)["status"], "FAILED", s2.stderr_text()[-2000:])
        self.assertTrue(s2.task(lapsed)["status_msg"].startswith("claim expired"))
        self.assertEqual(s2.task(renewed)["status"], "IN_PROGRESS", "the renewed lease ended with the first")

    def test_a_task_type_no_longer_declared_is_named_at_start(self):
        """Tasks of a type the configuration has dropped still list, but the type is refused by
        POST and ?task_type=: the start names it (once), and not a type still declared."""
        s = self.start(config=write_config(self.tmp, {"task_types": ["JOB", "OTHER"]}, "a.json"))
        s.create("JOB")
        s.create("JOB")
        s.create("OTHER")
        self.stop_clean(s)
        s2 = self.start(config=write_config(self.tmp, {"task_types": ["OTHER"]}, "b.json"))
        warned = [o for o in s2.log_json() if "task_type" in o and o.get("level") == "WARNING"]
        self.assertEqual([o["task_type"] for o in warned], ["JOB"], s2.stderr_text()[-2000:])
        self.assertIn("does not declare", warned[0]["message"])
        self.assertEqual(len([t for t in s2.list_all() if t["task_type"] == "JOB"]), 2)

    def test_a_queue_no_longer_declared_is_named_at_start(self):
        """Messages left in a queue the configuration has dropped (or renamed) are nobody's to
        run and show nowhere: the start says so, naming the queue and how many it holds."""
        old = {"queues": [{"name": "old"}], "handlers": [],
               "subscriptions": [{"queue": "old", "filter_policy": {"TaskType": ["TASK1"]}}]}
        s = self.start(config=write_config(self.tmp, old, "old.json"))
        s.create("TASK1")
        s.create("TASK1")
        self.stop_clean(s)
        new = {"queues": [{"name": "new"}], "handlers": [],
               "subscriptions": [{"queue": "new", "filter_policy": {"TaskType": ["TASK1"]}}]}
        s2 = self.start(config=write_config(self.tmp, new, "new.json"))
        warned = [o for o in s2.log_json() if o.get("queue") == "old"]
        self.assertEqual(len(warned), 1, s2.stderr_text()[-2000:])
        self.assertEqual(warned[0]["level"], "WARNING")
        self.assertEqual(warned[0]["messages"], "2")
        self.assertIn("does not declare", warned[0]["message"])
        self.assertFalse([o for o in s2.log_json() if o.get("queue") == "new"
                          and "does not declare" in o.get("message", "")])

    def test_a_queue_no_handler_takes_from_is_named_at_start(self):
        """Messages left in a declared queue whose handler binding is gone wait for good: the
        start says so, naming the queue and how many it holds, in one line that also says a
        subscription routes more there; not for a dead-letter queue, whose messages are dead
        letters (their tasks failed)."""
        both = {"queues": [{"name": "a"}, {"name": "b"}], "handlers": [],
                "subscriptions": [{"queue": "a"}, {"queue": "b"}]}
        s = self.start(config=write_config(self.tmp, both, "both.json"))
        s.create("TASK1")
        self.stop_clean(s)
        later = {"queues": [{"name": "a", "dead_letter_queue": "b"}, {"name": "b"}],
                 "handlers": [], "subscriptions": [{"queue": "a"}]}
        s2 = self.start(config=write_config(self.tmp, later, "later.json"))
        warned = [o for o in s2.log_json() if o.get("queue") in ("a", "b")
                  and o.get("level") == "WARNING"]  # one line, not one more for the subscription
        self.assertEqual([(o["queue"], o.get("messages")) for o in warned], [("a", "1")],
                         s2.stderr_text()[-2000:])
        self.assertIn("no handler takes from", warned[0]["message"])
        self.assertIn("a subscription routes more to it", warned[0]["message"])

    def test_clean_restart_keeps_everything(self):
        s = self.start()
        created = []
        for i in range(12):
            created.append(s.create(["TASK2", "TASK3"][i % 2], data={"i": i, "s": "ü%d" % i},
                                    ttl=[None, 1662381756, "1700000000"][i % 3]))
        # Various states, results and messages.
        self.assertEqual(s.set_status(created[0], "IN_PROGRESS", "Task started").status, 204)
        self.assertEqual(s.set_status(created[1], "IN_PROGRESS", "Task started").status, 204)
        self.assertEqual(s.set_status(created[1], "COMPLETED", "Task completed",
                                      result={"out": [1, 2, 3]}).status, 204)
        self.assertEqual(s.set_status(created[2], "FAILED", "cancelled").status, 204)
        key = "restart-" + uuid.uuid4().hex
        r = s.post("/tasks", {"task_type": "TASK2", "data": {"idem": 1}}, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 201, r)
        idem_id = r.json()["id"]
        created.append(idem_id)
        before = {tid: s.task(tid) for tid in created}
        listed_before = s.list_all(limit=5)
        page = s.get("/tasks?" + urlencode({"limit": 4}))
        self.assertEqual(page.status, 200)
        token = page.json()["next_token"]
        self.assertIsInstance(token, str)
        page2_before = s.get("/tasks?" + urlencode({"limit": 4, "next_token": token})).json()
        self.stop_clean(s)

        s2 = self.start()
        self.assertEqual(s2.get("/health").status, 200)
        for tid, t in before.items():
            self.assertEqual(s2.task(tid), t, "task %s changed across restart" % tid)
        self.assertEqual(s2.list_all(limit=5), listed_before)
        # A page token issued before the restart still works.
        r = s2.get("/tasks?" + urlencode({"limit": 4, "next_token": token}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), page2_before)
        # The idempotency key is remembered.
        r = s2.post("/tasks", {"task_type": "TASK2", "data": {"idem": 2}}, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"id": idem_id})
        # State machine continues where it was.
        self.assertEqual(s2.set_status(created[0], "COMPLETED", "Task completed").status, 204)
        self.assertEqual(s2.set_status(created[1], "COMPLETED", "Task completed").status, 204)
        self.assertEqual(s2.set_status(created[2], "IN_PROGRESS", "x").status, 409)
        # New ids still sort after the old ones.
        new = s2.create("TASK2")
        self.assertGreater(new, max(created))
        self.assertEqual(s2.get("/tasks?limit=1").json()["tasks"][0]["id"], new)
        self.stop_clean(s2, signal.SIGINT)

        # And a third start sees the changes made by the second.
        s3 = self.start()
        self.assertEqual(s3.task(created[0])["status"], "COMPLETED")
        self.assertEqual(s3.task(new)["status"], "CREATED")
        self.assertEqual(len(s3.list_all()), len(created) + 1)
        self.stop_clean(s3)

    def _kill_mid_stream(self, sig, expect_clean, sync=None, writers=6, threshold=150):
        s = self.start(sync=sync)
        acked = []
        lock = threading.Lock()
        enough = threading.Event()
        stop = threading.Event()

        def writer(w):
            n = 0
            while not stop.is_set():
                try:
                    r = s.post("/tasks", {"task_type": "TASK2", "data": {"w": w, "n": n}},
                               timeout=5)
                except OSError:
                    return  # the server went away mid-request
                if r.status == 201:
                    with lock:
                        acked.append((r.json()["id"], w, n))
                        if len(acked) >= threshold:
                            enough.set()
                elif r.status != 503:
                    return
                n += 1

        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
        for t in threads:
            t.start()
        self.assertTrue(enough.wait(30), "only %d POSTs acknowledged in 30 s" % len(acked))
        rc = s.stop(sig) if sig != signal.SIGKILL else s.kill()
        stop.set()
        for t in threads:
            t.join(15)
        with lock:
            acked_now = list(acked)
        if expect_clean:
            self.assertEqual(rc, 0, "exit code %s on %s with writes in flight; stderr tail:\n%s"
                             % (rc, signal.Signals(sig).name, s.stderr_text()[-3000:]))
        else:
            self.assertEqual(rc, -signal.SIGKILL)

        s2 = self.start(sync=sync)
        listed = {t["id"] for t in s2.list_all()}
        lost = [a for a in acked_now if a[0] not in listed]
        self.assertEqual(lost, [], "%d of %d acknowledged tasks lost after %s"
                         % (len(lost), len(acked_now), signal.Signals(sig).name))
        for tid, w, n in acked_now[::25]:
            t = s2.task(tid)
            self.assertEqual(t["data"], {"w": w, "n": n})
            self.assertEqual(t["status"], "CREATED")
        # The store is usable after the crash.
        tid = s2.create("TASK2")
        self.assertEqual(s2.set_status(tid, "IN_PROGRESS", "Task started").status, 204)
        self.stop_clean(s2)

    def test_sigkill_mid_stream_loses_no_acknowledged_task(self):
        self._kill_mid_stream(signal.SIGKILL, expect_clean=False)

    def test_sigkill_mid_stream_sync_normal(self):
        # Even with --sync normal a process crash (not a power cut) must lose nothing acknowledged.
        self._kill_mid_stream(signal.SIGKILL, expect_clean=False, sync="normal")

    def test_sigterm_mid_stream_exits_zero_and_keeps_acknowledged(self):
        self._kill_mid_stream(signal.SIGTERM, expect_clean=True)

    def test_stop_under_heavy_write_load_repeatedly(self):
        # Many writes waiting for their commit when the signal comes: still a clean stop, nothing lost.
        for round_no in range(6):
            with self.subTest(round=round_no):
                sig = signal.SIGTERM if round_no % 2 == 0 else signal.SIGINT
                self._kill_mid_stream(sig, expect_clean=True, writers=32, threshold=60)
            for s in self.servers:
                if s.alive():
                    s.kill()
            self.servers = []
            for name in os.listdir(self.tmp):
                os.unlink(os.path.join(self.tmp, name))

    def test_clients_hanging_up_before_the_answer(self):
        # Clients that send a POST and reset the connection at once, while their write is
        # waiting for its commit: the server keeps serving and still stops cleanly.
        s = self.start()
        body = json.dumps({"task_type": "TASK2", "data": {"hangup": True}}).encode()
        req = (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        errors = []

        def hang_up(k):
            try:
                for _ in range(60):
                    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                    c.sendall(req)
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()  # RST, without reading the answer
            except OSError as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=hang_up, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(s.get("/health").status, 200)
        kept = s.create("TASK2", data={"after": True})
        listed = {t["id"] for t in s.list_all()}
        self.assertIn(kept, listed)
        self.stop_clean(s)
        s2 = self.start()
        after = {t["id"]: t for t in s2.list_all()}
        self.assertLessEqual(listed, set(after), "tasks listed before the stop are gone")
        # A hung-up client's POST may still have been on its way (accepted by one loop while the
        # other served the listing) and commit after the listing: only those may be new.
        for tid in set(after) - listed:
            self.assertEqual((after[tid]["task_type"], s2.task(tid)["data"]), ("TASK2", {"hangup": True}),
                             "task %s appeared across the restart" % tid)
        self.stop_clean(s2)


if __name__ == "__main__":
    unittest.main()
