"""A store that is busy, not broken: another connection holds the database's write lock past
taskd's busy timeout (5 s). A write then answers 503 with Retry-After and a JSON detail, and
is not accepted; /health stays 200 (a lock passes by itself, a full disk does not); once the
lock is released, writes are accepted again.

taskd's own lock (flock on the database file) keeps a second taskd out, not SQLite clients:
the test takes SQLite's write lock with Python's sqlite3, as any tool on the file could.
"""

import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServersTestCase, Taskd, db_query  # noqa: E402


class StoreBusy(ServersTestCase):
    tmp_prefix = "taskd-busy-"

    def test_a_write_lock_held_elsewhere_is_a_503_busy_and_health_stays_ok(self):
        s = Taskd(tmpdir=self.tmp, db=self.db)
        self.servers.append(s)
        first = s.create("TASK2")
        holder = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        try:
            holder.execute("BEGIN IMMEDIATE")
            t0 = time.monotonic()
            r = s.post("/tasks", {"task_type": "TASK2", "data": {"during": "lock"}}, timeout=30)
            waited = time.monotonic() - t0
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.header("Retry-After"), "1", r)
            self.assertIn("busy", r.json()["detail"], r)
            self.assertGreater(waited, 4, "answered before the busy timeout")
            h = s.get("/health")
            self.assertEqual((h.status, h.json()), (200, {"status": "ok"}), h)
        finally:
            holder.rollback()
            holder.close()
        second = s.create("TASK2")
        self.assertEqual(s.get("/health").status, 200)
        ids = {row[0] for row in db_query(self.db, "SELECT id FROM tasks")}
        self.assertEqual(ids, {first, second}, "the refused write must not have been kept")
        self.stop_clean(s)


if __name__ == "__main__":
    unittest.main()
