"""Schema upgrades: a database made by an older taskd opens, migrates, and keeps answering.

The old databases are built here from the schema as those versions wrote it (migrations are
never edited once released, so this text is a fixed record of them), with tasks in every state.
"""

import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServersTestCase, Taskd, db_query, local_only, run_taskd, wait_until  # noqa: E402

# Schema versions 1 to 3, as store_sqlite.c's migrations made them.
SCHEMA_V3 = [
    """CREATE TABLE tasks (
         id TEXT PRIMARY KEY, task_type TEXT NOT NULL, status TEXT NOT NULL,
         status_msg TEXT NOT NULL DEFAULT '', created_time INTEGER NOT NULL,
         updated_time INTEGER, finished_time INTEGER, ttl INTEGER, data TEXT NOT NULL,
         result TEXT, trace TEXT) WITHOUT ROWID""",
    "CREATE INDEX tasks_by_status ON tasks(status, id)",
    "CREATE INDEX tasks_by_type ON tasks(task_type, id)",
    """CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_name TEXT NOT NULL,
         task_id TEXT NOT NULL, new_image TEXT, old_image TEXT, created_time INTEGER NOT NULL)""",
    """CREATE TABLE idempotency (key TEXT PRIMARY KEY, task_id TEXT NOT NULL,
         created_time INTEGER NOT NULL) WITHOUT ROWID""",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "INSERT INTO meta VALUES ('page_token_key', randomblob(16))",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, task_id TEXT,
         body TEXT NOT NULL, attributes TEXT NOT NULL, sent_ms INTEGER NOT NULL,
         visible_ms INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0,
         expires_ms INTEGER NOT NULL)""",
    "CREATE INDEX messages_by_visibility ON messages(queue, visible_ms)",
    "CREATE INDEX messages_by_expiry ON messages(expires_ms)",
    "CREATE TABLE checkpoints (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX tasks_by_finish ON tasks(finished_time) WHERE finished_time IS NOT NULL",
    "ALTER TABLE tasks ADD COLUMN data_image TEXT",
    "PRAGMA user_version = 3",
]

T0 = 1700000000
CREATED = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e51"
RUNNING = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e52"
FAILED = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e53"
QUEUED = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e54"
UNREADABLE = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e55"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def make_v3_database(path):
    conn = sqlite3.connect(path)
    try:
        for sql in SCHEMA_V3:
            conn.execute(sql)
        rows = [
            (CREATED, "TASK2", "CREATED", "", T0, None, None),
            (RUNNING, "TASK2", "IN_PROGRESS", "Task started", T0, T0 + 5, None),
            (FAILED, "TASK3", "FAILED", "cancelled", T0, T0 + 9, T0 + 9),
        ]
        conn.executemany("INSERT INTO tasks (id, task_type, status, status_msg, created_time, "
                         "updated_time, finished_time, data) VALUES (?, ?, ?, ?, ?, ?, ?, '{}')",
                         rows)
        # a change log that gave seqs 1 to 5 and was trimmed to nothing: AUTOINCREMENT keeps 5
        for i in range(5):
            conn.execute("INSERT INTO changes (event_name, task_id, new_image, created_time) "
                         "VALUES ('INSERT', ?, '{}', ?)", (CREATED, T0))
        conn.execute("DELETE FROM changes")
        conn.commit()
    finally:
        conn.close()


@local_only("the SQLite schema is taskd's own")
class UpgradeFromV3(ServersTestCase):
    tmp_prefix = "taskd-migrate-"

    def start(self):
        s = Taskd(db=self.db, tmpdir=self.tmp)
        self.servers.append(s)
        return s

    def history(self, s, tid):
        h = s.history(tid)
        return [(e["status"], e["status_msg"], e["time"]) for e in h["history"]], h["truncated"]

    def test_tasks_from_before_histories(self):
        make_v3_database(self.db)
        s = self.start()
        self.assertEqual(db_query(self.db, "PRAGMA user_version")[0][0], 13)
        # the sweep's index holds finished tasks with a ttl only
        indexes = {r[0] for r in db_query(self.db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
        self.assertIn("tasks_by_ttl", indexes)
        self.assertIn("idempotency_by_time", indexes)
        # schema 13: a claim from before has no key and no lease: it is not made again, nor ended
        self.assertIn("tasks_by_claim_expiry", indexes)
        self.assertEqual(db_query(self.db, "SELECT claim_key, claim_expires FROM tasks WHERE id = ?",
                                  (RUNNING,)), [(None, None)])
        r = s.patch("/tasks/" + RUNNING, '{"status": "IN_PROGRESS", "status_msg": "Task started"}',
                    headers={"Idempotency-Key": "k"})
        self.assertEqual(r.status, 409, r)
        # a listing by type and status reads its page from its own index, not every task of
        # the type (the statement's shape as the store prepares it)
        plan = " ".join(r[-1] for r in db_query(
            self.db, "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE 1 AND task_type = ?2 "
                     "AND status = ?1 AND id < ?3 ORDER BY id DESC LIMIT ?4",
            ("FAILED", "TASK1", "~", 11)))
        self.assertIn("tasks_by_type_status", plan)
        # which serves the listings by one filter too, leg by leg: their own indexes are gone
        self.assertNotIn("tasks_by_status", indexes)
        self.assertNotIn("tasks_by_type", indexes)
        self.assertNotIn("tasks_by_finish", indexes)
        # a task that never changed has a whole history; the others what their row tells,
        # flagged truncated (what happened in between is not known)
        self.assertEqual(self.history(s, CREATED), ([("CREATED", "", iso(T0))], False))
        self.assertEqual(self.history(s, RUNNING),
                         ([("CREATED", "", iso(T0)), ("IN_PROGRESS", "Task started", iso(T0 + 5))],
                          True))
        self.assertEqual(self.history(s, FAILED),
                         ([("CREATED", "", iso(T0)), ("FAILED", "cancelled", iso(T0 + 9))], True))
        # changes after the upgrade are recorded after what was known
        self.assertEqual(s.set_status(RUNNING, "COMPLETED", "done").status, 204)
        entries, truncated = self.history(s, RUNNING)
        self.assertEqual([(st, msg) for st, msg, _ in entries],
                         [("CREATED", ""), ("IN_PROGRESS", "Task started"), ("COMPLETED", "done")])
        self.assertTrue(truncated)
        self.assertEqual(s.set_status(CREATED, "FAILED", "cancelled").status, 204)
        entries, truncated = self.history(s, CREATED)
        self.assertEqual([(st, msg) for st, msg, _ in entries], [("CREATED", ""), ("FAILED", "cancelled")])
        self.assertFalse(truncated)
        # a MODIFY written now keeps its parts, not images: the rest is the task row's
        parts = db_query(self.db, "SELECT new_image, old_image, task_type, new_status, new_msg, "
                                  "old_status, old_msg FROM changes WHERE event_name = 'MODIFY' "
                                  "AND slim = 2 AND task_id = ?", (RUNNING,))
        self.assertEqual(parts, [(None, None, "TASK2", "COMPLETED", "done", "IN_PROGRESS",
                                  "Task started")])
        # seqs go on after the last one the old log gave, never again from 1
        seqs = [r[0] for r in db_query(self.db, "SELECT seq FROM changes ORDER BY seq")]
        self.assertEqual(seqs, [6, 7], seqs)
        self.assertEqual(db_query(self.db, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND sql LIKE '%AUTOINCREMENT%'"), [])
        # and new tasks are as ever
        tid = s.create("TASK2")
        self.assertEqual([st for st, _, _ in self.history(s, tid)[0]], ["CREATED"])
        # schema 11: a tracestate column beside trace, in tasks and in messages; the older
        # tasks have none, a new one keeps the tracestate of its traceparent
        for table in ("tasks", "messages"):
            columns = [r[1] for r in db_query(self.db, "PRAGMA table_info(%s)" % table)]
            self.assertIn("tracestate", columns, table)
        self.assertEqual(db_query(self.db, "SELECT tracestate FROM tasks WHERE id = ?", (FAILED,)),
                         [(None,)])
        traced = s.create("TASK2", headers={
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "rojo=1 , congo=2"})
        self.assertEqual(db_query(self.db, "SELECT tracestate FROM tasks WHERE id = ?", (traced,)),
                         [("rojo=1,congo=2",)])
        self.stop_clean(s)
        # a second start migrates nothing more
        s = self.start()
        self.assertEqual(db_query(self.db, "PRAGMA user_version")[0][0], 13)
        self.assertEqual(len(self.history(s, RUNNING)[0]), 3)
        self.stop_clean(s)

    def test_dead_letters_know_which_tasks_their_move_failed(self):
        # schema 12: a redrive makes CREATED again only the tasks a move to the DLQ failed; the
        # dead letters from before say so when their task does
        make_v3_database(self.db)
        dead = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e56"
        now_ms = int(time.time() * 1000)
        conn = sqlite3.connect(self.db)
        conn.execute("INSERT INTO tasks (id, task_type, status, status_msg, created_time, "
                     "updated_time, finished_time, data) VALUES (?, 'TASK1', 'FAILED', "
                     "'moved to dead-letter queue task1-dlq after 3 receives', ?, ?, ?, '{}')",
                     (dead, T0, T0 + 9, T0 + 9))
        conn.executemany("INSERT INTO messages (queue, task_id, body, attributes, sent_ms, "
                         "visible_ms, expires_ms) VALUES ('task1-dlq', ?, '{}', '{}', ?, ?, ?)",
                         [(dead, now_ms, now_ms, now_ms + 86400_000),
                          (FAILED, now_ms, now_ms, now_ms + 86400_000)])  # FAILED: "cancelled"
        conn.commit()
        conn.close()
        s = self.start()
        self.assertEqual(db_query(self.db, "PRAGMA user_version")[0][0], 13)
        self.assertEqual(db_query(self.db, "SELECT task_id, failed_task FROM messages ORDER BY task_id"),
                         [(FAILED, 0), (dead, 1)])
        self.stop_clean(s)

    def test_queued_messages_keep_their_task_and_trace(self):
        # messages queued by a taskd that kept their type and trace in a JSON of attributes
        make_v3_database(self.db)
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        attrs = json.dumps({"TaskId": {"Type": "String", "Value": QUEUED},
                            "TaskType": {"Type": "String", "Value": "TASK1"},
                            "traceparent": {"Type": "String",
                                            "Value": "00-%s-b7ad6b7169203331-01" % trace_id}})
        now_ms = int(time.time() * 1000)
        conn = sqlite3.connect(self.db)
        conn.executemany("INSERT INTO tasks (id, task_type, status, status_msg, created_time, "
                         "data) VALUES (?, 'TASK1', 'CREATED', '', ?, '{}')",
                         [(QUEUED, int(time.time())), (UNREADABLE, int(time.time()))])
        conn.executemany("INSERT INTO messages (queue, task_id, body, attributes, sent_ms, "
                         "visible_ms, expires_ms) VALUES ('task1', ?, '{}', ?, ?, ?, ?)",
                         [(QUEUED, attrs, now_ms, now_ms, now_ms + 86400_000),
                          (UNREADABLE, "not JSON", now_ms, now_ms, now_ms + 86400_000),
                          (None, "not JSON", now_ms, now_ms, now_ms + 86400_000)])
        conn.commit()
        conn.close()
        s = Taskd(db=self.db, tmpdir=self.tmp, env={"TASK1_SECONDS": "0"})
        self.servers.append(s)
        self.assertEqual(db_query(self.db, "PRAGMA user_version")[0][0], 13)
        columns = [r[1] for r in db_query(self.db, "PRAGMA table_info(messages)")]
        self.assertNotIn("attributes", columns)
        # the runner finds the task's type in its message, and its spans continue the
        # producer's trace
        self.wait_status(s, QUEUED, ("COMPLETED", "FAILED"))
        # the receive span ends after the handler's status is written: wait for it, not just
        # for the status
        def receive_spans():
            spans = s.get("/tasks/%s/trace" % QUEUED).json()["spans"]
            return [sp for sp in spans if sp["name"] == "receive task1"] or None
        receive = wait_until(receive_spans, 5, what="the queued task's receive span")
        self.assertEqual(len(receive), 1, receive)
        self.assertEqual((receive[0]["trace_id"], receive[0]["parent_span_id"]),
                         (trace_id, "b7ad6b7169203331"))
        # a task's message whose attributes were unreadable takes the type from its task; one
        # that names no task is not a task's message, and is dropped
        self.wait_status(s, UNREADABLE, ("COMPLETED", "FAILED"))
        wait_until(lambda: db_query(self.db, "SELECT count(*) FROM messages")[0][0] == 0, 10,
                   what="the queue to empty")
        self.stop_clean(s)

    def test_a_failed_migration_leaves_the_database_as_it_was(self):
        # the migrations a start applies commit together: one that fails (here the last, its
        # index's name taken) leaves the version and the schema as they were, not half migrated
        make_v3_database(self.db)
        conn = sqlite3.connect(self.db)
        conn.execute("CREATE INDEX tasks_by_claim_expiry ON tasks(id)")
        conn.commit()
        conn.close()
        p = run_taskd(["--listen", "127.0.0.1:0", "--db", self.db], timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"migration 13 of", p.stderr)
        self.assertIn(b"already exists", p.stderr)
        self.assertNotIn(b"schema migrated", p.stderr)
        self.assertEqual(db_query(self.db, "PRAGMA user_version")[0][0], 3)
        self.assertEqual(db_query(self.db, "SELECT count(*) FROM sqlite_master "
                                           "WHERE name = 'task_history'")[0][0], 0)
        # with the name given back, the next start makes all of them
        conn = sqlite3.connect(self.db)
        conn.execute("DROP INDEX tasks_by_claim_expiry")
        conn.commit()
        conn.close()
        s = self.start()
        self.assertEqual(db_query(self.db, "PRAGMA user_version")[0][0], 13)
        self.assertEqual(s.task(CREATED)["status"], "CREATED")
        self.stop_clean(s)

    def test_task_without_history_rows(self):
        # rows lost or never written: the answer is what the task tells, never an error
        s = self.start()
        tid = s.create("TASK2")
        self.assertEqual(s.set_status(tid, "FAILED", "cancelled").status, 204)
        t = s.task(tid)
        self.stop_clean(s)
        conn = sqlite3.connect(self.db)
        conn.execute("DELETE FROM task_history WHERE task_id = ?", (tid,))
        conn.commit()
        conn.close()
        s = self.start()
        self.assertEqual(self.history(s, tid),
                         ([("CREATED", "", iso(t["created_time"])),
                           ("FAILED", "cancelled", iso(t["updated_time"]))], True))
        self.stop_clean(s)


if __name__ == "__main__":
    unittest.main()
