"""The pipeline end to end: change stream -> publisher -> topic with
filtered subscriptions -> durable queues -> handlers; /queues, /metrics,
redrive; pipeline configuration checks at start.
"""

import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServersTestCase, Taskd, change_transitions, db_query, metric, metrics, nonempty_lines, post_tasks,  # noqa: E402
                     queue_table, run_taskd, script_path, status_counts, wait_queue_empty,
                     wait_until, write_config)

SEED_BODY = '{"task_type": "TASK1", "data": {"foo": "bar"}, "ttl": "1662381756"}'
FINAL = ("COMPLETED", "FAILED")


class PipelineCase(ServersTestCase):
    """Each test starts its own taskd(s) in self.tmp."""

    tmp_prefix = "taskd-pipe-"

    def start(self, cfg=None, name="config.json", **kw):
        path = write_config(self.tmp, cfg, name) if cfg is not None else None
        s = Taskd(config=path, tmpdir=self.tmp, db=os.path.join(self.tmp, name + ".db"), **kw)
        self.servers.append(s)
        return s

    def wait_drained(self, s, consumers=("publisher",), timeout=15.0):
        """Wait until every stream consumer has caught up (taskd_stream_lag 0)."""
        def check():
            m = metrics(s)
            lags = [metric(m, "taskd_stream_lag", consumer=c) for c in consumers]
            return lags if all(lag == 0 for lag in lags) else None
        return wait_until(check, timeout, what="stream lag 0 for %s" % (consumers,))


# ---------------------------------------------------------------------------
class SeedWalkthrough(PipelineCase):
    """The seed's walkthrough with the default configuration (no config file)."""

    def test_seed_walkthrough(self):
        s = self.start(env={"TASK1_SECONDS": "1"})
        r = s.post("/tasks", SEED_BODY)
        self.assertEqual(r.status, 201, r)
        t1 = r.json()["id"]
        self.assertEqual(r.header("Location"), "/tasks/" + t1)
        t2 = s.create("TASK2", data={"foo": "baz"})
        # TASK1 is claimed by its handler ...
        started = self.wait_status(s, t1, ("IN_PROGRESS",) + FINAL, timeout=5)
        self.assertEqual(started["status"], "IN_PROGRESS",
                         "TASK1 finished before it was ever seen IN_PROGRESS: %r" % started)
        self.assertEqual(started["status_msg"], "Task started")
        self.assertIsInstance(started["updated_time"], int)
        # ... and finishes about TASK1_SECONDS later.
        done = self.wait_status(s, t1, FINAL, timeout=10)
        expected_msg = {"COMPLETED": "Task completed", "FAILED": "Task failed somehow"}
        self.assertEqual(done["status_msg"], expected_msg[done["status"]], done)
        self.assertEqual(done["data"], {"foo": "bar"})
        self.assertEqual(done["ttl"], 1662381756)
        self.assertEqual(done["task_type"], "TASK1")
        # TASK2 has no subscriber: it stays CREATED, untouched.
        self.wait_drained(s)
        t = s.task(t2)
        self.assertEqual(t["status"], "CREATED", t)
        self.assertIsNone(t["updated_time"], t)
        self.assertEqual(t["status_msg"], "")
        q = queue_table(s)
        self.assertEqual(set(q), {"task1", "task1-dlq"})
        self.assertEqual(q["task1"]["dead_letter_queue"], "task1-dlq")
        self.assertEqual((q["task1"]["visibility_timeout"], q["task1"]["max_receive_count"]), (60, 3))
        self.stop_clean(s)

    def run_batch(self, rate, n=4):
        s = self.start(env={"TASK1_SECONDS": "1", "TASK1_FAILURE_RATE": rate}, name="rate%s.json" % rate)
        ids = [s.create("TASK1", data={"i": i}) for i in range(n)]
        out = [self.wait_status(s, tid, FINAL, timeout=10) for tid in ids]
        self.stop_clean(s)
        return out

    def test_failure_rate_zero_always_completes(self):
        for t in self.run_batch("0"):
            self.assertEqual((t["status"], t["status_msg"]), ("COMPLETED", "Task completed"), t)

    def test_failure_rate_one_always_fails(self):
        for t in self.run_batch("1"):
            self.assertEqual((t["status"], t["status_msg"]), ("FAILED", "Task failed somehow"), t)


# ---------------------------------------------------------------------------
class ThousandTasks(PipelineCase):

    def test_each_transition_exactly_once(self):
        n = 1000
        cfg = {
            "task_types": ["JOB"],
            "sweep_interval": 86400,  # keep every change record for the count below
            "queues": [{"name": "jobs", "visibility_timeout": 30, "max_receive_count": 5}],
            "subscriptions": [{"queue": "jobs", "filter_policy": {"TaskType": ["JOB"]}}],
            "handlers": [{"queue": "jobs", "handler": "noop", "batch_size": 50, "concurrency": 2,
                          "timeout": 1}],
        }
        s = self.start(cfg)
        accepted, errors = post_tasks(s, [{"task_type": "JOB", "data": {"i": i}} for i in range(n)],
                                      threads=4)
        self.assertEqual(errors, 0)
        ids = {tid for _, tid in accepted}
        self.assertEqual(len(ids), n)

        try:
            wait_until(lambda: status_counts(s.db).get("COMPLETED") == n, 60,
                       what="all %d tasks COMPLETED" % n)
        except AssertionError as e:
            self.fail("%s; status counts: %r; stderr tail:\n%s"
                      % (e, status_counts(s.db), s.stderr_text()[-3000:]))
        self.assertEqual(status_counts(s.db), {"COMPLETED": n})
        listed = s.list_all(limit=100, task_type="JOB")
        self.assertEqual({t["id"] for t in listed}, ids)
        self.assertTrue(all(t["status"] == "COMPLETED" and t["status_msg"] == "Task completed"
                            for t in listed))

        per_task = {}
        for _, event, tid, new_status, old_status, _ in change_transitions(s.db):
            per_task.setdefault(tid, []).append((event, old_status, new_status))
        self.assertEqual(set(per_task), ids)
        bad = {tid: ev for tid, ev in per_task.items()
               if ev != [("INSERT", None, "CREATED"), ("MODIFY", "CREATED", "IN_PROGRESS"),
                         ("MODIFY", "IN_PROGRESS", "COMPLETED")]}
        self.assertFalse(bad, "%d tasks with other change records, e.g. %r"
                         % (len(bad), list(bad.items())[:3]))
        # Every message was deleted; the queue is empty.
        wait_queue_empty(s, "jobs")
        q = queue_table(s)["jobs"]
        self.assertEqual((q["depth"], q["in_flight"], q["delayed"]), (0, 0, 0), q)
        self.assertEqual(db_query(s.db, "SELECT count(*) FROM messages")[0][0], 0)
        self.stop_clean(s)


# ---------------------------------------------------------------------------
class VisibilityExtension(PipelineCase):

    def test_batch_longer_than_visibility_runs_each_task_once(self):
        """batch_size 20 x 1 s per task > the 15 s its receive hides it for (the 10 s timeout
        and the runner's 5 s margin; the visibility timeout is 10 s): while the batch runs, its
        later messages must stay hidden, so the idle second runner thread never receives and
        re-runs them. A run sleeps a tenth of its 10 s timeout: room for a loaded machine, where
        the script took 4-6 s at a load of 37 and its runs timed out at 2 and 5 s; a slower run
        only makes the batch longer."""
        runs_dir = os.path.join(self.tmp, "runs")
        os.mkdir(runs_dir)
        queues = [{"name": "batch", "visibility_timeout": 10, "max_receive_count": 10}]
        subs = [{"queue": "batch"}]
        # First without a handler, so all the messages wait and are received as one batch.
        s = self.start({"queues": queues, "subscriptions": subs, "handlers": [],
                        "sweep_interval": 86400}, name="idle.json")
        ids = [s.create("TASK2", data={"dir": runs_dir}) for _ in range(20)]
        wait_until(lambda: queue_table(s)["batch"]["depth"] == 20, 30, what="20 messages queued")
        self.stop_clean(s)
        db = s.db
        path = write_config(self.tmp, {
            "queues": queues, "subscriptions": subs, "sweep_interval": 86400,
            "handlers": [{"queue": "batch", "handler": "exec", "batch_size": 20, "concurrency": 2,
                          "timeout": 10, "command": ["/bin/sh", script_path("record_run.sh"), "1"]}]},
            "batch.json")
        s = Taskd(config=path, tmpdir=self.tmp, db=db)
        self.servers.append(s)
        for tid in ids:
            t = self.wait_status(s, tid, FINAL, timeout=120)
            self.assertEqual(t["status"], "COMPLETED", t)
        with open(os.path.join(runs_dir, "runs")) as f:
            runs = f.read().split()
        self.assertEqual(sorted(runs), sorted(ids), "each task must run exactly once")
        started = [tid for _, event, tid, status, _, _ in change_transitions(db)
                   if event == "MODIFY" and status == "IN_PROGRESS"]
        self.assertEqual(sorted(started), sorted(ids))
        self.stop_clean(s)


# ---------------------------------------------------------------------------
class Routing(PipelineCase):

    def test_subscription_filter_policies(self):
        types = ["TASK1", "TASK2", "TASK3", "OTHER"]
        cfg = {
            "task_types": types,
            "queues": [{"name": n} for n in ("prefix", "notask1", "both", "neither", "bybody",
                                             "none", "done")],
            "subscriptions": [
                {"queue": "prefix", "filter_policy": {"TaskType": [{"prefix": "TASK"}]}},
                {"queue": "notask1", "filter_policy": {"TaskType": [{"anything-but": ["TASK1"]}]}},
                # AND across keys: TASK2 and an id (UUIDv7 now: starts with "0") ...
                {"queue": "both", "filter_policy": {"TaskType": ["TASK2"], "TaskId": [{"prefix": "0"}]}},
                # ... which no id matches here.
                {"queue": "neither", "filter_policy": {"TaskType": ["TASK2"], "TaskId": [{"prefix": "f"}]}},
                {"queue": "bybody", "filter_policy": {"kind": ["special"]},
                 "filter_policy_scope": "MessageBody"},
                {"queue": "none", "filter_policy": {"TaskType": [{"exists": False}]}},
                # OR within a key; this queue has a handler.
                {"queue": "done", "filter_policy": {"TaskType": ["OTHER", "TASK3"]}},
            ],
            "handlers": [{"queue": "done", "handler": "exec", "timeout": 10, "concurrency": 2,
                          "command": ["/bin/sh", script_path("echo_task.sh")]}],
        }
        s = self.start(cfg)
        ids = {}
        plan = [("TASK1", {}), ("TASK2", {}), ("TASK2", {}), ("TASK3", {}), ("OTHER", {}),
                ("OTHER", {"kind": "special"}), ("TASK1", {"kind": "special"}), ("TASK1", {"kind": "plain"})]
        for ttype, data in plan:
            ids.setdefault(ttype, []).append(s.create(ttype, data=data))
        expected = {"prefix": 6, "notask1": 5, "both": 2, "neither": 0, "bybody": 2, "none": 0}
        self.wait_drained(s)

        def depths():
            q = queue_table(s)
            got = {name: q[name]["depth"] + q[name]["in_flight"] for name in expected}
            return got if got == expected else None
        try:
            wait_until(depths, 5, what="queue depths %r" % expected)
        except AssertionError:
            pass
        q = queue_table(s)
        self.assertEqual({name: q[name]["depth"] for name in expected}, expected,
                         "queue depths differ: %r" % q)
        # Exactly which tasks sit in each queue.
        rows = db_query(s.db, "SELECT queue, task_id FROM messages")
        by_queue = {}
        for queue, tid in rows:
            by_queue.setdefault(queue, set()).add(tid)
        self.assertEqual(by_queue.get("prefix"), set(ids["TASK1"] + ids["TASK2"] + ids["TASK3"]))
        self.assertEqual(by_queue.get("notask1"), set(ids["TASK2"] + ids["TASK3"] + ids["OTHER"]))
        self.assertEqual(by_queue.get("both"), set(ids["TASK2"]))
        self.assertEqual(by_queue.get("bybody"), {ids["OTHER"][1], ids["TASK1"][1]})
        # The handler-bound queue got OTHER and TASK3, ran them, and nothing else.
        for tid in ids["OTHER"] + ids["TASK3"]:
            t = self.wait_status(s, tid, FINAL)
            self.assertEqual(t["status"], "COMPLETED", t)
            self.assertEqual(t["result"]["task_id"], tid)
        for tid in ids["TASK1"] + ids["TASK2"]:
            t = s.task(tid)
            self.assertEqual(t["status"], "CREATED", t)
        self.stop_clean(s)

    def test_stream_consumer_filters(self):
        cfg = {
            "queues": [{"name": "all"}],
            "subscriptions": [{"queue": "all"}],  # no policy: everything published
            "stream_consumers": [
                {"name": "pub-task1", "action": "publish",
                 "filter_patterns": [{"eventName": ["INSERT"],
                                      "dynamodb": {"NewImage": {"task_type": {"S": ["TASK1"]}}}}]},
                {"name": "pub-task3", "batch_size": 2,
                 "filter_patterns": [{"eventName": ["INSERT"],
                                      "dynamodb": {"NewImage": {"task_type": {"S": [{"prefix": "TASK3"}]}}}}]},
            ],
            "handlers": [],
        }
        s = self.start(cfg)
        made = [(ttype, s.create(ttype, data={"n": i}))
                for i, ttype in enumerate(["TASK1", "TASK2", "TASK3", "TASK2", "TASK1", "TASK2"])]
        # Modifications must not be published either.
        t2 = made[1][1]
        self.assertEqual(s.set_status(t2, "IN_PROGRESS", "by hand").status, 204)
        self.wait_drained(s, consumers=("pub-task1", "pub-task3"))
        rows = db_query(s.db, "SELECT queue, task_id, task_type FROM messages")
        self.assertEqual(sorted(rows),
                         sorted(("all", tid, ttype) for ttype, tid in made
                                if ttype in ("TASK1", "TASK3")))
        self.assertEqual(queue_table(s)["all"]["depth"], 3)
        m = metrics(s)
        self.assertEqual(metric(m, "taskd_queue_depth", queue="all"), 3)
        self.stop_clean(s)


# ---------------------------------------------------------------------------
class QueueVisibility(PipelineCase):

    def test_queues_and_metrics(self):
        cfg = {
            "queues": [{"name": "hold", "visibility_timeout": 45, "max_receive_count": 4,
                        "dead_letter_queue": "hold-dlq"},
                       {"name": "hold-dlq"},
                       {"name": "later", "delay": 900}],
            "subscriptions": [{"queue": "hold", "filter_policy": {"TaskType": ["TASK1", "TASK2"]}},
                              {"queue": "later", "filter_policy": {"TaskType": ["TASK3"]}}],
            "handlers": [],
        }
        s = self.start(cfg)
        q = queue_table(s)
        self.assertEqual(set(q), {"hold", "hold-dlq", "later"})
        self.assertEqual(q["hold"], {"name": "hold", "depth": 0, "in_flight": 0, "delayed": 0,
                                     "dead_letter_queue": "hold-dlq", "dead_letter_count": 0,
                                     "visibility_timeout": 45, "max_receive_count": 4})
        self.assertIsNone(q["hold-dlq"]["dead_letter_queue"])
        self.assertEqual(q["hold-dlq"]["dead_letter_count"], 0)
        for i in range(1, 4):
            s.create("TASK1" if i % 2 else "TASK2")
            wait_until(lambda: queue_table(s)["hold"]["depth"] == i, 5,
                       what="depth of hold to reach %d" % i)
            m = metrics(s)
            self.assertEqual(metric(m, "taskd_queue_depth", queue="hold"), i)
        s.create("TASK3")
        s.create("TASK3")
        self.wait_drained(s)
        q = queue_table(s)
        self.assertEqual((q["hold"]["depth"], q["hold"]["in_flight"], q["hold"]["delayed"]), (3, 0, 0))
        self.assertEqual((q["later"]["depth"], q["later"]["in_flight"], q["later"]["delayed"]), (0, 0, 2))
        m = metrics(s)
        expect = {
            ("taskd_queue_depth", "hold"): 3, ("taskd_queue_depth", "hold-dlq"): 0,
            ("taskd_queue_depth", "later"): 0, ("taskd_queue_in_flight", "hold"): 0,
            ("taskd_queue_delayed", "later"): 2, ("taskd_queue_delayed", "hold"): 0,
        }
        for (name, queue), v in expect.items():
            self.assertEqual(metric(m, name, queue=queue), v, (name, queue))
        self.assertEqual(metric(m, "taskd_queue_dead_letter", queue="hold", dead_letter_queue="hold-dlq"), 0)
        self.assertEqual(metric(m, "taskd_stream_lag", consumer="publisher"), 0)
        r = s.get("/metrics")
        self.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r.headers)

        # Redrive: unknown queue, a queue without a DLQ, an empty DLQ.
        r = s.post("/queues/nope/redrive")
        self.assertEqual(r.status, 404, r)
        self.assertIn("detail", r.json())
        r = s.post("/queues/later/redrive")
        self.assertEqual(r.status, 404, r)
        r = s.post("/queues/hold-dlq/redrive")
        self.assertEqual(r.status, 404, r)
        r = s.post("/queues/hold/redrive")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"queue": "hold", "moved": 0})
        self.assertEqual(queue_table(s)["hold"]["depth"], 3)
        r = s.get("/queues/hold/redrive")
        self.assertEqual(r.status, 405, r)
        self.assertIn("POST", r.header("Allow", ""))
        r = s.post("/queues", {})
        self.assertEqual(r.status, 405, r)
        self.stop_clean(s)

    def test_in_flight_is_counted(self):
        """A message being worked on counts as in_flight, not depth."""
        cfg = {"queues": [{"name": "slow", "visibility_timeout": 10}],
               "subscriptions": [{"queue": "slow"}],
               "handlers": [{"queue": "slow", "handler": "exec", "timeout": 10, "concurrency": 1,
                             "command": ["/bin/sh", script_path("sleep_then_ok.sh"), "2"]}]}
        s = self.start(cfg)
        a = s.create("TASK2")
        b = s.create("TASK2")
        wait_until(lambda: (lambda q: q["in_flight"] == 1 and q["depth"] == 1)(queue_table(s)["slow"]),
                   5, what="one in flight, one waiting: %r" % queue_table(s)["slow"])
        m = metrics(s)
        self.assertEqual(metric(m, "taskd_queue_in_flight", queue="slow"), 1)
        self.assertEqual(metric(m, "taskd_queue_depth", queue="slow"), 1)
        for tid in (a, b):
            self.assertEqual(self.wait_status(s, tid, FINAL, timeout=10)["status"], "COMPLETED")
        wait_queue_empty(s, "slow")
        q = queue_table(s)["slow"]
        self.assertEqual((q["depth"], q["in_flight"]), (0, 0), q)
        self.stop_clean(s)


# ---------------------------------------------------------------------------
class FinalTaskMessages(PipelineCase):

    def test_message_of_a_cancelled_task_is_dropped(self):
        """A message whose task is already final is dropped, not run."""
        runs_dir = os.path.join(self.tmp, "runs")
        os.mkdir(runs_dir)
        cfg = {"sweep_interval": 86400,
               "queues": [{"name": "late", "delay": 1, "visibility_timeout": 5}],
               "subscriptions": [{"queue": "late"}],
               "handlers": [{"queue": "late", "handler": "exec", "timeout": 5,
                             "command": ["/bin/sh", script_path("record_run.sh"), "0"]}]}
        s = self.start(cfg)
        cancelled = s.create("TASK2", data={"dir": runs_dir})
        self.assertEqual(s.set_status(cancelled, "FAILED", "cancelled by the user").status, 204)
        control = s.create("TASK2", data={"dir": runs_dir})
        t = self.wait_status(s, control, FINAL, timeout=10)
        self.assertEqual(t["status"], "COMPLETED", t)
        wait_until(lambda: (lambda q: q["depth"] + q["in_flight"] + q["delayed"] == 0)(queue_table(s)["late"]),
                   5, what="queue late to empty")
        t = s.task(cancelled)
        self.assertEqual((t["status"], t["status_msg"], t["result"]), ("FAILED", "cancelled by the user", None))
        with open(os.path.join(runs_dir, "runs")) as f:
            self.assertEqual(f.read().split(), [control], "the cancelled task's handler ran")
        self.stop_clean(s)

    def test_run_to_its_timeout_is_not_delivered_again(self):
        """A handler whose timeout is its queue's visibility timeout (allowed) runs over it to be
        killed: its message stays hidden until the run is over and reported, not delivered to
        the idle runner beside it meanwhile."""
        runs_dir = os.path.join(self.tmp, "runs")
        os.mkdir(runs_dir)
        # 4 s: the script's three processes write its line before the kill on a loaded machine
        # (with 2 s, at a load of 20, none had)
        cfg = {"sweep_interval": 86400,
               "queues": [{"name": "slow", "visibility_timeout": 4}],
               "subscriptions": [{"queue": "slow"}],
               "handlers": [{"queue": "slow", "handler": "exec", "timeout": 4, "concurrency": 2,
                             "command": ["/bin/sh", script_path("record_run.sh"), "12"]}]}
        s = self.start(cfg)
        tid = s.create("TASK2", data={"dir": runs_dir})
        t = self.wait_status(s, tid, FINAL, timeout=20)
        self.assertEqual(t["status"], "FAILED", t)
        self.assertIn("timed out", t["status_msg"])
        # the message leaves the queue only with its last delivery's run over and reported (a
        # delete with an older receipt misses it): once it is gone, every delivery it had has
        # written its line to runs, and none can come after
        wait_queue_empty(s, "slow")
        history = s.history(tid)["history"]
        self.assertEqual([h["status"] for h in history], ["CREATED", "IN_PROGRESS", "FAILED"], history)
        with open(os.path.join(runs_dir, "runs")) as f:
            self.assertEqual(f.read().split(), [tid], "the task ran twice")
        self.stop_clean(s)

    def test_task_claimed_elsewhere_is_not_run_on_its_first_delivery(self):
        """A task a client claimed (PATCH to IN_PROGRESS) before its message came is the
        client's to run: the runner drops the message; and a task fanned out to two queues with
        a handler each runs once."""
        runs_dir = os.path.join(self.tmp, "runs")
        os.mkdir(runs_dir)
        record = ["/bin/sh", script_path("record_run.sh"), "0"]
        cfg = {"sweep_interval": 86400,
               "queues": [{"name": "late", "delay": 1, "visibility_timeout": 5},
                          {"name": "a", "visibility_timeout": 5}, {"name": "b", "visibility_timeout": 5}],
               "subscriptions": [{"queue": "late", "filter_policy": {"TaskType": ["TASK2"]}},
                                 {"queue": "a", "filter_policy": {"TaskType": ["TASK1"]}},
                                 {"queue": "b", "filter_policy": {"TaskType": ["TASK1"]}}],
               "handlers": [{"queue": q, "handler": "exec", "timeout": 5, "command": record}
                            for q in ("late", "a", "b")]}
        s = self.start(cfg)
        claimed = s.create("TASK2", data={"dir": runs_dir})
        self.assertEqual(s.set_status(claimed, "IN_PROGRESS", "claimed by me").status, 204)
        control = s.create("TASK2", data={"dir": runs_dir})
        fanned = s.create("TASK1", data={"dir": runs_dir})
        for tid in (control, fanned):
            self.assertEqual(self.wait_status(s, tid, FINAL, timeout=10)["status"], "COMPLETED")
        def empty():
            q = queue_table(s)
            return all(q[n]["depth"] + q[n]["in_flight"] + q[n]["delayed"] == 0 for n in ("late", "a", "b"))
        wait_until(lambda: empty() or None, 5, what="the queues to empty")
        t = s.task(claimed)
        self.assertEqual((t["status"], t["status_msg"], t["result"]), ("IN_PROGRESS", "claimed by me", None))
        history = s.history(claimed)["history"]
        self.assertEqual([h["status_msg"] for h in history], ["", "claimed by me"], history)
        with open(os.path.join(runs_dir, "runs")) as f:
            self.assertEqual(sorted(f.read().split()), sorted([control, fanned]),
                             "a task claimed elsewhere ran, or a fanned-out task ran twice")
        self.stop_clean(s)


# ---------------------------------------------------------------------------
class UnreadableRecord(PipelineCase):

    def test_only_the_unreadable_record_is_skipped(self):
        """A change record that cannot be read costs only itself: the good records around it
        in the same batch are published, and it alone is retried, then skipped, said with the
        parser's reason (it was said with "error", as a store's failure)."""
        off = {"stream_consumers": [], "handlers": []}
        on = {"stream_consumers": [{"name": "publisher", "filter_patterns": [{"eventName": ["INSERT"]}],
                                    "maximum_retry_attempts": 1}],
              "handlers": [{"queue": "task1", "handler": "noop"}]}
        # with the pipeline off: task A, then a record nobody can read, then task B
        s = self.start(off, name="c.json")
        a = s.create("TASK1")
        self.stop_clean(s)
        db = s.db
        conn = sqlite3.connect(db)
        conn.execute("INSERT INTO changes (event_name, task_id, new_image, old_image, created_time) "
                     "VALUES ('INSERT', 'x', '{not json', NULL, 1)")
        conn.commit()
        bad_seq = conn.execute("SELECT max(seq) FROM changes").fetchone()[0]
        conn.close()
        s = self.start(off, name="c.json")
        b = s.create("TASK1")
        self.stop_clean(s)
        # then the pipeline, all three records in one batch
        write_config(self.tmp, on, "c.json")
        s = self.start(on, name="c.json")
        for tid in (a, b):
            t = self.wait_status(s, tid, FINAL, timeout=15)
            self.assertEqual(t["status"], "COMPLETED", t)
        skipped = wait_until(lambda: [o for o in s.log_json()
                                      if o["message"].startswith("change record skipped")], 10,
                             what="the unreadable record skipped")
        self.assertEqual([o["sequence_number"] for o in skipped], [str(bad_seq)], skipped)
        self.assertIn("expected near 'not'", skipped[0]["error"])  # jansson's, at the bad image
        self.stop_clean(s)

    def test_a_record_that_never_builds_is_retried_then_skipped(self):
        """A change record whose row can never be made a record (here a removed task's INSERT
        whose REMOVE record lost the task's data, as in a damaged or hand-edited database) is
        retried maximum_retry_attempts times and skipped, as a record that does not parse is:
        the records before it are published first, and the stream goes on after it. It used to
        fail the whole read, retried without end, and nothing after it was ever published."""
        off = {"stream_consumers": [], "handlers": []}
        on = {"stream_consumers": [{"name": "publisher", "filter_patterns": [{"eventName": ["INSERT"]}],
                                    "maximum_retry_attempts": 2}],
              "handlers": [{"queue": "task1", "handler": "noop"}]}
        s = self.start(off, name="c.json")
        a, x, b = s.create("TASK1"), s.create("TASK1"), s.create("TASK1")
        self.stop_clean(s)
        conn = sqlite3.connect(s.db)
        bad_seq = conn.execute("SELECT seq FROM changes WHERE task_id = ? AND event_name = 'INSERT'",
                               (x,)).fetchone()[0]
        conn.execute("DELETE FROM tasks WHERE id = ?", (x,))
        conn.execute("INSERT INTO changes (event_name, task_id, old_image, created_time) "
                     "VALUES ('REMOVE', ?, ?, 1)", (x, json.dumps({"id": {"S": x}})))
        conn.commit()
        conn.close()
        write_config(self.tmp, on, "c.json")
        s = self.start(on, name="c.json")
        for tid in (a, b, s.create("TASK1")):
            t = self.wait_status(s, tid, FINAL, timeout=15)
            self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, s.stderr_text()[-2000:]))
        skipped = wait_until(lambda: [o for o in s.log_json()
                                      if o["message"].startswith("change record skipped")], 10,
                             what="the record skipped")
        self.assertEqual([(o["level"], o["sequence_number"]) for o in skipped], [("ERROR", str(bad_seq))])
        retried = [o for o in s.log_json() if o["message"].startswith("a change record cannot be read")]
        self.assertEqual([o["sequence_number"] for o in retried], [str(bad_seq)] * 2, retried)
        self.stop_clean(s)
        checkpoint = db_query(s.db, "SELECT seq FROM checkpoints WHERE consumer = 'publisher'")[0][0]
        self.assertGreaterEqual(checkpoint, bad_seq)


# ---------------------------------------------------------------------------
class BadPipelineConfig(PipelineCase):
    BASE = {
        "task_types": ["TASK1", "TASK2"],
        "queues": [{"name": "q", "visibility_timeout": 10, "dead_letter_queue": "q-dlq"},
                   {"name": "q-dlq"}],
        "subscriptions": [{"queue": "q", "filter_policy": {"TaskType": ["TASK1"]}}],
        "stream_consumers": [{"name": "publisher", "filter_patterns": [{"eventName": ["INSERT"]}]}],
        "handlers": [{"queue": "q", "handler": "noop", "timeout": 5, "batch_size": 2}],
    }

    def variant(self, **changes):
        cfg = json.loads(json.dumps(self.BASE))
        for k, v in changes.items():
            cfg[k] = v
        return cfg

    def run_config(self, cfg):
        path = write_config(self.tmp, cfg, "bad.json")
        db = os.path.join(self.tmp, "bad.db")
        return run_taskd(["--listen", "127.0.0.1:0", "--db", db, "--config", path], timeout=10)

    def assertRejected(self, cfg, *needles):
        p = self.run_config(cfg)
        err = p.stderr.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, "config accepted: %r\nstderr: %s" % (cfg, err))
        self.assertNotIn('"listening"', err)
        # other log lines may precede it; the reason is the one ERROR line
        errors = [o["message"] for o in map(json.loads, nonempty_lines(err)) if o["level"] == "ERROR"]
        self.assertEqual(len(errors), 1, "expected one error line, got: %r" % (err,))
        for n in needles:
            self.assertIn(n, errors[0], "error line does not name %r: %r" % (n, errors[0]))
        return errors[0]

    def test_base_config_is_valid(self):
        path = write_config(self.tmp, self.BASE, "good.json")
        s = Taskd(config=path, tmpdir=self.tmp, db=os.path.join(self.tmp, "good.db"))
        self.servers.append(s)
        self.assertEqual(set(queue_table(s)), {"q", "q-dlq"})
        self.stop_clean(s)

    def test_unknown_handler(self):
        self.assertRejected(self.variant(handlers=[{"queue": "q", "handler": "no-such-handler", "timeout": 5}]),
                            "no-such-handler")

    def test_subscription_to_undeclared_queue(self):
        self.assertRejected(self.variant(subscriptions=[{"queue": "ghost"}]), "ghost")

    def test_handler_on_undeclared_queue(self):
        self.assertRejected(self.variant(handlers=[{"queue": "ghost", "handler": "noop"}]), "ghost")

    def test_dead_letter_queue_undeclared(self):
        self.assertRejected(self.variant(queues=[{"name": "q", "dead_letter_queue": "nodlq"}]), "nodlq")

    def test_filter_policy_not_an_array(self):
        self.assertRejected(self.variant(subscriptions=[{"queue": "q", "filter_policy": {"TaskType": "TASK1"}}]),
                            "filter_policy", "TaskType")

    def test_filter_policy_unknown_operator(self):
        self.assertRejected(self.variant(subscriptions=[
            {"queue": "q", "filter_policy": {"TaskType": [{"sounds-like": "TASK1"}]}}]), "filter_policy")

    def test_filter_policy_scope(self):
        self.assertRejected(self.variant(subscriptions=[
            {"queue": "q", "filter_policy": {"TaskType": ["TASK1"]}, "filter_policy_scope": "Body"}]),
            "filter_policy_scope")

    def test_stream_filter_not_an_array(self):
        self.assertRejected(self.variant(stream_consumers=[
            {"name": "publisher", "filter_patterns": [{"eventName": "INSERT"}]}]), "filter_patterns")

    def test_timeout_exceeds_visibility(self):
        # One task's timeout must fit in the queue's visibility timeout (10 s here), or its
        # message would be redelivered while it still runs. (A batch longer than the
        # visibility timeout is allowed: the runner extends it; see VisibilityExtension.)
        line = self.assertRejected(self.variant(handlers=[
            {"queue": "q", "handler": "noop", "timeout": 11, "batch_size": 1}]), "visibility_timeout")
        self.assertIn('"q"', line)
        self.assertIn("timeout", line)

    def test_unknown_top_level_key(self):
        cfg = self.variant()
        cfg["queuez"] = []
        self.assertRejected(cfg, "queuez")

    def test_unknown_handler_key(self):
        self.assertRejected(self.variant(handlers=[{"queue": "q", "handler": "noop", "retries": 3}]),
                            "retries")

    def test_unknown_queue_key(self):
        self.assertRejected(self.variant(queues=[{"name": "q", "visiblity_timeout": 5}]),
                            "visiblity_timeout")

    def test_exec_without_command(self):
        self.assertRejected(self.variant(handlers=[{"queue": "q", "handler": "exec"}]), "command")

    def test_exec_missing_program(self):
        self.assertRejected(self.variant(handlers=[
            {"queue": "q", "handler": "exec", "timeout": 5,
             "command": [os.path.join(self.tmp, "missing-prog")]}]),
            "missing-prog")

    def test_duplicate_queue(self):
        self.assertRejected(self.variant(queues=[{"name": "q"}, {"name": "q"}]), '"q"')


if __name__ == "__main__":
    unittest.main()
