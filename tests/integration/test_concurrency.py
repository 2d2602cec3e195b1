"""Concurrency: racing claimers, paging during writes, parallel creation, slow clients."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import UUID7_RE, ServerTestCase, local_only, urlencode  # noqa: E402


def run_threads(n, target):
    """Run target(i) in n threads that start together; returns the results in order."""
    results = [None] * n
    errors = []
    barrier = threading.Barrier(n)

    def wrap(i):
        try:
            results[i] = target(i, barrier)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))
            try:
                barrier.abort()
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        if t.is_alive():
            raise AssertionError("a worker thread hung")
    if errors:
        raise AssertionError("worker errors: %r" % errors[:5])
    return results


class Concurrency(ServerTestCase):
    def test_concurrent_claim_exactly_one_wins(self):
        for round_no in range(4):
            tid = self.server.create("TASK2", data={"round": round_no})
            # Real workers all send the same claim; odd rounds use distinct messages to see the winner.
            same_msg = round_no % 2 == 0

            def claim(i, barrier):
                conn = self.server.connection()
                conn.connect()  # connect before the start line so the PATCHes really race
                try:
                    barrier.wait(30)
                    r = self.server.request("PATCH", "/tasks/" + tid,
                                            body={"status": "IN_PROGRESS",
                                                  "status_msg": "Task started" if same_msg else "worker %d" % i},
                                            conn=conn)
                    return r.status, i
                finally:
                    conn.close()

            results = run_threads(20, claim)
            codes = sorted(s for s, _ in results)
            with self.subTest(round=round_no):
                self.assertEqual(codes.count(204), 1, codes)
                self.assertEqual(codes.count(409), 19, codes)
                winner = [i for s, i in results if s == 204][0]
                t = self.server.task(tid)
                self.assertEqual(t["status"], "IN_PROGRESS")
                self.assertEqual(t["status_msg"], "Task started" if same_msg else "worker %d" % winner)

    def test_concurrent_finish_race(self):
        # Several finishers with different outcomes: exactly one change wins, the others conflict.
        tid = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(tid, "IN_PROGRESS", "Task started").status, 204)

        def finish(i, barrier):
            conn = self.server.connection()
            conn.connect()
            try:
                barrier.wait(30)
                status = "COMPLETED" if i % 2 else "FAILED"
                r = self.server.request("PATCH", "/tasks/" + tid,
                                        body={"status": status, "status_msg": "by %d" % i, "result": i},
                                        conn=conn)
                return r.status, i, status
            finally:
                conn.close()

        results = run_threads(12, finish)
        codes = sorted(r[0] for r in results)
        self.assertEqual(codes.count(204), 1, codes)
        self.assertEqual(codes.count(409), 11, codes)
        _, winner, status = [r for r in results if r[0] == 204][0]
        t = self.server.task(tid)
        self.assertEqual((t["status"], t["status_msg"], t["result"]), (status, "by %d" % winner, winner))

    def test_concurrent_idempotent_posts_create_one_task(self):
        for round_no in range(3):
            key = "race-%d-%f" % (round_no, time.time())
            before = {t["id"] for t in self.server.list_all(task_type="TASK3")}

            def post(i, barrier):
                conn = self.server.connection()
                conn.connect()
                try:
                    barrier.wait(30)
                    r = self.server.request("POST", "/tasks", body={"task_type": "TASK3", "data": {"i": i}},
                                            headers={"Idempotency-Key": key}, conn=conn)
                    return r.status, (r.json().get("id") if r.status in (200, 201) else r.body)
                finally:
                    conn.close()

            results = run_threads(16, post)
            codes = sorted(s for s, _ in results)
            with self.subTest(round=round_no):
                self.assertEqual(codes.count(201), 1, results)
                self.assertEqual(codes.count(200), 15, results)
                ids = {i for _, i in results}
                self.assertEqual(len(ids), 1, "different ids for one Idempotency-Key: %r" % ids)
                after = {t["id"] for t in self.server.list_all(task_type="TASK3")}
                self.assertEqual(after - before, ids)

    def test_mixed_load_full_lifecycles(self):
        # Many clients each running whole task lifecycles at once: no 5xx, every step as specified.
        def worker(i, barrier):
            barrier.wait(30)
            out = []
            for j in range(8):
                r = self.server.post("/tasks", {"task_type": "TASK2", "data": {"i": i, "j": j}})
                if r.status != 201:
                    out.append(("POST", r.status, r.body[:200]))
                    continue
                tid = r.json()["id"]
                for method, body, want in [
                        ("GET", None, 200),
                        ("PATCH", {"status": "IN_PROGRESS", "status_msg": "Task started"}, 204),
                        ("PATCH", {"status": "IN_PROGRESS", "status_msg": "Task started"}, 409),
                        ("GET", None, 200),
                        ("PATCH", {"status": "COMPLETED", "status_msg": "done", "result": [i, j]}, 204),
                        ("PATCH", {"status": "COMPLETED", "status_msg": "done", "result": [i, j]}, 204)]:
                    r = self.server.request(method, "/tasks/" + tid, body=body)
                    if r.status != want:
                        out.append((method, body, r.status, r.body[:200]))
                if self.server.task(tid)["result"] != [i, j]:
                    out.append(("result", tid))
                r = self.server.get("/tasks?limit=5&status=COMPLETED")
                if r.status != 200:
                    out.append(("LIST", r.status, r.body[:200]))
            return out

        problems = [p for chunk in run_threads(24, worker) for p in chunk]
        self.assertEqual(problems, [], "first problems: %r" % problems[:5])

    def test_paging_while_posting(self):
        original = [self.server.create("TASK3", data={"orig": i}) for i in range(35)]
        stop = threading.Event()
        posted = []
        cond = threading.Condition()
        writer_errors = []

        def writer():
            try:
                while not stop.is_set():
                    tid = self.server.create("TASK3", data={"new": True})
                    with cond:
                        posted.append(tid)
                        cond.notify_all()
            except BaseException as e:  # noqa: BLE001
                writer_errors.append(repr(e))
                with cond:
                    cond.notify_all()

        th = threading.Thread(target=writer, daemon=True)
        th.start()
        try:
            seen = []
            token = None
            pages = 0
            while True:
                # Make sure new tasks keep arriving between pages.
                with cond:
                    n = len(posted)
                    ok = cond.wait_for(lambda: len(posted) > n or writer_errors, timeout=10)
                self.assertTrue(ok and not writer_errors, "writer stalled: %r" % writer_errors)
                q = {"limit": 10, "task_type": "TASK3"}
                if token:
                    q["next_token"] = token
                page = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
                pages += 1
                self.assertLessEqual(len(page["tasks"]), 10)
                seen.extend(t["id"] for t in page["tasks"])
                token = page["next_token"]
                if token is None:
                    break
                self.assertLess(pages, 100, "paging does not end")
        finally:
            stop.set()
            th.join(30)
        self.assertFalse(writer_errors, writer_errors)
        self.assertGreater(len(posted), pages - 1)
        self.assertEqual(len(seen), len(set(seen)), "a task appeared on two pages")
        counts = {tid: seen.count(tid) for tid in original}
        self.assertEqual([tid for tid, c in counts.items() if c != 1], [],
                         "original tasks missing or repeated")
        self.assertEqual(seen, sorted(seen, reverse=True), "pages are not newest first")
        # Tasks posted after paging began can only appear on the first page.
        later = set(posted)
        first_orig = seen.index(original[-1])
        self.assertFalse(later & set(seen[first_orig:]), "a new task appeared after an old one")

    def test_parallel_posts(self):
        n_threads, per_thread = 8, 50

        def poster(i, barrier):
            barrier.wait(30)
            out = []
            for j in range(per_thread):
                r = self.server.post("/tasks", {"task_type": "TASK2", "data": {"t": i, "j": j}})
                out.append((r.status, r.json().get("id") if r.status in (200, 201) else r.body, i, j))
            return out

        t0 = time.monotonic()
        results = [x for chunk in run_threads(n_threads, poster) for x in chunk]
        elapsed = time.monotonic() - t0
        bad = [r for r in results if r[0] != 201]
        self.assertEqual(bad, [], "failed POSTs (first few): %r" % bad[:5])
        ids = [r[1] for r in results]
        self.assertEqual(len(ids), n_threads * per_thread)
        self.assertEqual(len(set(ids)), len(ids), "duplicate ids")
        for tid in ids:
            self.assertRegex(tid, UUID7_RE)
        # Each thread's ids increase in the order it made them.
        for i in range(n_threads):
            mine = [r[1] for r in results if r[2] == i]
            self.assertEqual(mine, sorted(mine))
        # All are stored, with the right data.
        listed = {t["id"] for t in self.server.list_all(task_type="TASK2")}
        self.assertTrue(set(ids) <= listed, "%d created tasks not listed" % len(set(ids) - listed))
        for status, tid, i, j in results[::37]:
            self.assertEqual(self.server.task(tid)["data"], {"t": i, "j": j})
        self.assertLess(elapsed, 40, "400 POSTs took %.1f s" % elapsed)

    def _stalled_sockets(self, n):
        socks = []
        partial = [
            b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"task_type\": \"TA",
            b"GET /tas",
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            b"",
        ]
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
            if partial[i % len(partial)]:
                s.sendall(partial[i % len(partial)])
            socks.append(s)
        return socks

    def _check_served(self, count):
        for k in range(count):
            t0 = time.monotonic()
            r = self.server.get("/health", timeout=5)
            self.assertEqual(r.status, 200)
            tid = self.server.create("TASK2", data={"k": k})
            self.assertEqual(self.server.task(tid)["data"], {"k": k})
            self.assertLess(time.monotonic() - t0, 5)

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_slow_client_does_not_block_others(self):
        socks = self._stalled_sockets(1)
        try:
            self._check_served(10)
        finally:
            for s in socks:
                s.close()

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_many_slow_clients_do_not_block_others(self):
        socks = self._stalled_sockets(32)
        try:
            self._check_served(10)
            # Concurrent fast clients while the slow ones hang on.
            def fast(i, barrier):
                barrier.wait(30)
                return self.server.get("/health", timeout=5).status
            self.assertEqual(run_threads(16, fast), [200] * 16)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(self.server.get("/health").status, 200)


if __name__ == "__main__":
    unittest.main()
