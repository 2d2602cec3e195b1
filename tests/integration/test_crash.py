"""Crashes and stops in the middle of the pipeline (the guarantees, and SIGTERM):
no accepted task is lost, none stays IN_PROGRESS, a message that keeps killing
its handler ends in the dead-letter queue and can be redriven.
"""

import http.client
import json
import os
import secrets
import signal
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (QuietHandler, ServersTestCase, Taskd, change_transitions, db_query,  # noqa: E402
                     kill_fixture_processes, metric, metrics, post_tasks, process_gone, queue_table,
                     script_path, serve_stand_in, status_counts, wait_queue_empty, wait_until,
                     write_config, written_at)

FINAL = ("COMPLETED", "FAILED")


class CrashCase(ServersTestCase):
    tmp_prefix = "taskd-crash-"

    def start(self, cfg=None, name="config.json", **kw):
        path = write_config(self.tmp, cfg, name) if cfg is not None else None
        s = Taskd(db=self.db, config=path, tmpdir=self.tmp, **kw)
        self.servers.append(s)
        return s

    def all_logs(self):
        return "\n----- next run -----\n".join(s.stderr_text()[-2500:] for s in self.servers)

    def wait_all_final(self, s, ids, timeout, want=("COMPLETED",)):
        """Wait until every id has a status in want; fail with the stragglers otherwise."""
        pending = set(ids)

        def check():
            for tid in list(pending):
                if s.task(tid)["status"] in want:
                    pending.discard(tid)
            return not pending
        try:
            wait_until(check, timeout, interval=0.1, what="%d tasks to reach %s" % (len(ids), want))
        except AssertionError as e:
            sample = {tid: s.task(tid) for tid in list(pending)[:5]}
            self.fail("%s; %d left, e.g. %r\nlogs:\n%s" % (e, len(pending), sample, self.all_logs()))


class KillDuringExec(CrashCase):

    def test_sigkill_while_exec_handlers_run(self):
        cfg = {
            "sweep_interval": 86400,
            # a run of 2 s under a 5 s timeout: the sanitizer build, on a machine busy with the
            # browser of another test, once took more than 3 s to start and end one
            "queues": [{"name": "work", "visibility_timeout": 5, "max_receive_count": 5,
                        "dead_letter_queue": "work-dlq"}, {"name": "work-dlq"}],
            "subscriptions": [{"queue": "work", "filter_policy": {"TaskType": ["TASK2"]}}],
            "handlers": [{"queue": "work", "handler": "exec", "batch_size": 1, "concurrency": 4,
                          "timeout": 5, "command": ["/bin/sh", script_path("sleep_then_ok.sh"), "2"]}],
        }
        s = self.start(cfg)
        ids = [s.create("TASK2", data={"i": i}) for i in range(10)]
        # Kill once handlers are busy: 4 IN_PROGRESS (running), the rest waiting.
        wait_until(lambda: sum(s.task(t)["status"] == "IN_PROGRESS" for t in ids) >= 4, 5,
                   what="4 tasks IN_PROGRESS")
        s.kill()
        before = dict(db_query(self.db, "SELECT id, status FROM tasks"))
        self.assertEqual(set(before), set(ids), "a task disappeared in the crash")
        self.assertGreaterEqual(sum(v == "IN_PROGRESS" for v in before.values()), 4, before)

        # after the restart how long a run takes is no subject: the runs end at once
        quick = ["/bin/sh", script_path("sleep_then_ok.sh"), "0"]
        s2 = self.start(dict(cfg, handlers=[dict(cfg["handlers"][0], command=quick)]), name="quick.json")
        self.wait_all_final(s2, ids, timeout=40)
        for tid in ids:
            t = s2.task(tid)
            self.assertEqual(t["result"]["task_id"], tid, t)
            self.assertEqual(t["status_msg"], "Task completed")
            # The history shows each claim: a task running at the kill was claimed twice.
            h = s2.history(tid)
            statuses = [e["status"] for e in h["history"]]
            claims = 2 if before[tid] == "IN_PROGRESS" else 1
            self.assertEqual(statuses, ["CREATED"] + ["IN_PROGRESS"] * claims + ["COMPLETED"], h)
            self.assertFalse(h["truncated"], h)
            if claims == 2:
                self.assertRegex(h["history"][2]["status_msg"], r"^Task started again \(receive 2\)$")
        wait_queue_empty(s2, "work")
        q = queue_table(s2)["work"]
        self.assertEqual((q["depth"], q["in_flight"], q["dead_letter_count"]), (0, 0, 0), q)
        self.stop_clean(s2)


class KillDuringPosting(CrashCase):

    def test_sigkill_while_posting_and_processing(self):
        total = 300
        cfg = {
            "task_types": ["JOB"],
            "queues": [{"name": "jobs", "visibility_timeout": 2, "max_receive_count": 10}],
            "subscriptions": [{"queue": "jobs"}],
            "handlers": [{"queue": "jobs", "handler": "noop", "batch_size": 10, "concurrency": 2,
                          "timeout": 1}],
        }
        s = self.start(cfg)
        stop = threading.Event()
        result = {}

        def poster():
            result["first"] = post_tasks(s, [{"task_type": "JOB", "data": {"i": i}} for i in range(total)],
                                         threads=4, stop=stop)
        th = threading.Thread(target=poster, daemon=True)
        th.start()
        # Kill in the middle: once some tasks are done and more are still coming.
        wait_until(lambda: status_counts(self.db).get("COMPLETED", 0) >= 40 or not th.is_alive(), 20,
                   interval=0.01, what="40 tasks COMPLETED")
        s.kill()
        stop.set()
        th.join(30)
        self.assertFalse(th.is_alive(), "posting threads hung after the kill")
        accepted, errors = result["first"]
        counts = status_counts(self.db)
        self.assertLess(len(accepted), total, "the kill came after every POST had finished; "
                        "the test did not crash taskd mid-stream (counts %r)" % counts)
        self.assertGreater(len(accepted), 0)

        s2 = self.start(cfg)
        rest, errors2 = post_tasks(s2, [{"task_type": "JOB", "data": {"i": i}}
                                        for i in range(len(accepted), total)], threads=4)
        self.assertEqual(errors2, 0)
        ids = [tid for _, tid in accepted] + [tid for _, tid in rest]
        self.assertEqual(len(set(ids)), len(ids))
        self.wait_all_final(s2, ids, timeout=30)
        # Every task in the store (including any committed whose 201 was lost) is COMPLETED. A
        # task whose creating commit also claimed it for an idle runner, and whose handler the
        # kill cut short, runs again when its message comes back: after the hide its receive gave
        # it for its first run (the handler's timeout and the runner's 5 s margin: 6 s) from the
        # restart.
        counts = wait_until(lambda: (lambda c: c if set(c) == {"COMPLETED"} else None)(
            status_counts(self.db)), 20, what="every task in the store COMPLETED")
        self.assertGreaterEqual(counts["COMPLETED"], total)
        self.assertLessEqual(counts["COMPLETED"], total + 4, "more tasks than POSTs")
        # Messages received before the kill whose tasks had already finished come back after
        # that hide (6 s) and are dropped; then the queue is empty.
        try:
            wait_until(lambda: (lambda q: q["depth"] + q["in_flight"] + q["delayed"] == 0)(
                queue_table(s2)["jobs"]), 20, what="queue jobs to empty")
        except AssertionError as e:
            self.fail("%s: %r\nlogs:\n%s" % (e, queue_table(s2)["jobs"], self.all_logs()))
        self.assertEqual(set(status_counts(self.db)), {"COMPLETED"})
        self.stop_clean(s2)


class DeadLetter(CrashCase):

    # a run's 3 s hold the script's start and kill on a loaded machine (1 s did not: the run
    # timed out and failed before it killed taskd)
    QUEUES = [{"name": "doomed", "visibility_timeout": 3, "max_receive_count": 2,
               "dead_letter_queue": "doomed-dlq"}, {"name": "doomed-dlq"}]
    SUBS = [{"queue": "doomed", "filter_policy": {"TaskType": ["TASK3"]}}]

    def test_handler_that_kills_taskd_ends_in_dlq_then_redrive(self):
        killer = {"sweep_interval": 86400, "queues": self.QUEUES, "subscriptions": self.SUBS,
                  "handlers": [{"queue": "doomed", "handler": "exec", "timeout": 3,
                                "command": ["/bin/sh", script_path("kill_parent.sh")]}]}
        s = self.start(killer)
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        tid = s.create("TASK3", data={"x": 1},
                       headers={"traceparent": "00-%s-00f067aa0ba902b7-01" % trace_id})
        crashes = 0
        for attempt in range(4):  # the first start and up to 3 restarts
            # the message comes back once the hide the runner gave the last run at its start
            # (its timeout and the runner's 5 s margin: 3 + 5 s) has passed, and its run then
            # kills taskd (or its receive dead-letters the task): 8 s more for that
            deadline = time.monotonic() + 3 + 5 + 8
            while time.monotonic() < deadline and s.alive():
                try:
                    if s.task(tid)["status"] == "FAILED":
                        break
                except (OSError, http.client.HTTPException):
                    pass  # taskd was killed during the request
                time.sleep(0.05)
            # FAILED is the dead-letter, made at a receive that runs nothing: no kill follows it
            # (one that did would fail the checks below, taskd gone)
            if s.alive():
                break
            crashes += 1
            self.assertEqual(s.proc.returncode, -signal.SIGKILL,
                             "taskd ended with %s, not the fixture's SIGKILL" % s.proc.returncode)
            s = self.start(killer)
        t = s.task(tid)
        self.assertEqual(crashes, 2, "expected max_receive_count (2) crashes, got %d; task %r\n%s"
                         % (crashes, t, self.all_logs()))
        self.assertTrue(s.alive())
        self.assertEqual(t["status"], "FAILED", t)
        self.assertEqual(t["status_msg"], "moved to dead-letter queue doomed-dlq after 2 receives")
        # logged as a handler's failure is: at the task's id and its trace's (before its commit,
        # but read from taskd's stderr by a thread of the harness that may not have come to it)
        said = wait_until(lambda: [o for o in s.log_json()
                                   if o.get("message") == "task failed" and o.get("task_id") == tid],
                          5, what="the task's failure logged")
        self.assertEqual([(o["level"], o["reason"], o.get("trace_id")) for o in said],
                         [("WARNING", t["status_msg"], trace_id)], said)
        # and so is the run again after the first crash, by the run that started after it
        again = [o for run in self.servers for o in run.log_json()
                 if o.get("message") == "task redelivered; running it again"]
        self.assertEqual([(o["task_id"], o.get("trace_id")) for o in again], [(tid, trace_id)], again)
        q = queue_table(s)
        self.assertEqual(q["doomed"]["dead_letter_count"], 1, q)
        self.assertEqual((q["doomed"]["depth"], q["doomed"]["in_flight"]), (0, 0), q)
        self.assertEqual(q["doomed-dlq"]["depth"], 1, q)
        self.stop_clean(s)

        # Rebind the queue to noop, then redrive: the task runs again and completes.
        fixed = {"sweep_interval": 86400, "queues": self.QUEUES, "subscriptions": self.SUBS,
                 "handlers": [{"queue": "doomed", "handler": "noop", "timeout": 1}]}
        s = self.start(fixed, name="fixed.json")
        self.assertEqual(s.task(tid)["status"], "FAILED")
        r = s.post("/queues/doomed/redrive")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"queue": "doomed", "moved": 1})
        t = self.wait_status(s, tid, FINAL)
        self.assertEqual((t["status"], t["status_msg"]), ("COMPLETED", "Task completed"), t)
        # The redrive set it back to CREATED first, with a message naming the DLQ.
        trail = [(old, new, msg) for _, _, _, new, old, msg in change_transitions(
            self.db, "task_id = ? AND event_name = 'MODIFY'", (tid,))]
        self.assertIn(("FAILED", "CREATED", "Redriven from doomed-dlq"), trail, trail)
        self.assertEqual(trail[-2:], [("CREATED", "IN_PROGRESS", "Task started"),
                                      ("IN_PROGRESS", "COMPLETED", "Task completed")], trail)
        # The history tells the whole story: two claims (the second a redelivery), the DLQ,
        # the redrive, the run that completed.
        h = s.history(tid)
        self.assertEqual([(e["status"], e["status_msg"]) for e in h["history"]],
                         [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                          ("IN_PROGRESS", "Task started again (receive 2)"),
                          ("FAILED", "moved to dead-letter queue doomed-dlq after 2 receives"),
                          ("CREATED", "Redriven from doomed-dlq"), ("IN_PROGRESS", "Task started"),
                          ("COMPLETED", "Task completed")], h)
        self.assertFalse(h["truncated"])
        wait_queue_empty(s, "doomed")
        q = queue_table(s)
        self.assertEqual(q["doomed"]["dead_letter_count"], 0, q)
        self.assertEqual((q["doomed"]["depth"], q["doomed"]["in_flight"]), (0, 0), q)
        r = s.post("/queues/doomed/redrive")
        self.assertEqual(r.json(), {"queue": "doomed", "moved": 0})
        self.stop_clean(s)


class GracefulStop(CrashCase):

    def test_clock_gone_back_strands_no_task_after_a_crash(self):
        """A task left IN_PROGRESS by a SIGKILL comes back after its visibility timeout, as its
        message's visible time says. When the wall clock went back meanwhile (here: the message
        made to say an hour later, as a clock put back an hour would), the restart makes visible
        what is hidden past any timeout the configuration gives, rather than strand the task
        for that hour."""
        env = {"TASK1_SECONDS": "30", "TASK1_FAILURE_RATE": "0"}
        cfg = {"queues": [{"name": "task1", "visibility_timeout": 40, "max_receive_count": 5}],
               "handlers": [{"queue": "task1", "handler": "TASK1", "timeout": 35}]}
        s = self.start(cfg, env=env)
        tid = s.create("TASK1")
        self.wait_status(s, tid, ("IN_PROGRESS",), 5)
        s.kill()
        hidden = db_query(self.db, "SELECT visible_ms FROM messages WHERE task_id = ?", (tid,))[0][0]
        self.assertGreater(hidden, time.time() * 1000 + 30_000)  # hidden for its visibility timeout
        hour_on = hidden + 3600_000
        conn = sqlite3.connect(self.db)
        conn.execute("UPDATE messages SET visible_ms = ? WHERE task_id = ?", (hour_on, tid))
        conn.commit()
        conn.close()
        env["TASK1_SECONDS"] = "0"
        s2 = self.start(cfg, env=env)
        self.assertIn("messages hidden past any timeout made visible", s2.stderr_text())
        t = self.wait_status(s2, tid, FINAL)
        self.assertEqual(t["status"], "COMPLETED", t)
        self.stop_clean(s2)

    def test_sigterm_with_running_task1(self):
        env = {"TASK1_SECONDS": "2", "TASK1_FAILURE_RATE": "0"}
        cfg = {"shutdown_grace": 10}
        s = self.start(cfg, env=env)
        tid = s.create("TASK1", data={"foo": "bar"})
        self.wait_status(s, tid, ("IN_PROGRESS",), 5)
        self.stop_clean(s, timeout=5)
        # The running task was allowed to finish within the grace period.
        status = db_query(self.db, "SELECT status, status_msg FROM tasks WHERE id = ?", (tid,))[0]
        self.assertEqual(status, ("COMPLETED", "Task completed"),
                         "after a graceful stop with grace 10 s > TASK1_SECONDS the task should be "
                         "finished; stderr:\n%s" % s.stderr_text()[-3000:])
        # Nothing is left to deliver again: the message went with the run's report, before the exit.
        left = db_query(self.db, "SELECT count(*) FROM messages WHERE task_id = ?", (tid,))[0][0]
        self.assertEqual(left, 0, "the finished task's message outlived the stop")
        s2 = self.start(cfg, env=dict(env, TASK1_SECONDS="0.05"))
        t = s2.task(tid)
        self.assertEqual(t["status"], "COMPLETED", t)
        history = s2.history(tid)["history"]
        # Nor is anything redelivered and run again after the restart: a task sent after it to
        # the same queue is published behind anything the restart sent again, and received no
        # sooner than anything it left visible; once it has run and the queue is empty, all that
        # came before it has been received.
        control = s2.create("TASK1")
        c = self.wait_status(s2, control, FINAL)
        self.assertEqual(c["status"], "COMPLETED", c)
        wait_queue_empty(s2, "task1")
        self.assertEqual(s2.task(tid), t)
        self.assertEqual(s2.history(tid)["history"], history)
        runs = metric(metrics(s2), "taskd_handler_duration_seconds_count", task_type="TASK1")
        self.assertEqual(runs, 1, "TASK1 ran %s times since the restart, the task sent after it once" % runs)
        self.stop_clean(s2)

    def test_sigterm_with_short_grace_leaves_no_task_stuck(self):
        """Grace shorter than the task: exit 0 promptly; after a restart the task still
        finishes (retried on redelivery), it is not stuck IN_PROGRESS."""
        env = {"TASK1_SECONDS": "3", "TASK1_FAILURE_RATE": "0"}
        cfg = {"shutdown_grace": 1,
               "queues": [{"name": "task1", "visibility_timeout": 4, "dead_letter_queue": "task1-dlq"},
                          {"name": "task1-dlq"}],
               "handlers": [{"queue": "task1", "handler": "TASK1", "timeout": 4, "concurrency": 2}]}
        s = self.start(cfg, env=env)
        tid = s.create("TASK1")
        self.wait_status(s, tid, ("IN_PROGRESS",), 5)
        t0 = time.monotonic()
        self.stop_clean(s, timeout=6)
        self.assertLess(time.monotonic() - t0, 4.0)
        s2 = self.start(cfg, env=dict(env, TASK1_SECONDS="0.05"))  # the run again need not be long
        t = self.wait_status(s2, tid, FINAL, 15)
        self.assertEqual(t["status"], "COMPLETED", t)
        self.stop_clean(s2)

    def test_stops_past_grace_do_not_dead_letter_tasks_never_started(self):
        """A stop past its grace gives back its batch: the task it cut short counts a receive
        (one that never ends goes, in the end, to the dead-letter queue), the ones it never
        started do not, so a task given back at every stop is not dead-lettered unrun."""
        runs_dir = os.path.join(self.tmp, "runs")
        os.mkdir(runs_dir)
        runs = os.path.join(runs_dir, "runs")
        cfg = {"shutdown_grace": 1, "sweep_interval": 86400,
               "queues": [{"name": "q", "visibility_timeout": 60, "max_receive_count": 2,
                           "dead_letter_queue": "q-dlq"}, {"name": "q-dlq"}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [{"queue": "q", "handler": "exec", "timeout": 20, "batch_size": 10,
                             "command": ["/bin/sh", script_path("record_run.sh"), "10"]}]}
        s = self.start(dict(cfg, handlers=[]), name="queued.json")  # all three in one batch
        tids = [s.create("TASK2", data={"dir": runs_dir}) for _ in range(3)]
        self.stop_clean(s)

        def started():
            with open(runs) as f:
                return f.read().split()
        for round_ in range(3):  # each stop cuts the run it began and gives back the rest
            s = self.start(cfg)
            wait_until(lambda: os.path.exists(runs) and len(started()) == round_ + 1, 10,
                       what="run %d to start" % (round_ + 1))
            self.stop_clean(s, timeout=6)
        s = self.start(dict(cfg, handlers=[]), name="queued.json")  # looked at, nothing received
        dead = 0
        for tid in tids:  # dead-lettered only once cut short twice (at the receive after that)
            t = s.task(tid)
            runs_of = started().count(tid)
            if t["status"] == "FAILED":
                dead += 1
                self.assertEqual(runs_of, 2, "dead-lettered after %d runs: %r" % (runs_of, t))
                self.assertEqual(t["status_msg"], "moved to dead-letter queue q-dlq after 2 receives")
            else:
                self.assertLessEqual(runs_of, 2, t)
        self.assertEqual(queue_table(s)["q-dlq"]["depth"], dead)
        s.kill()

    def test_stop_past_grace_aborts_every_binding_at_once(self):
        """Past the grace, every binding still running is aborted at once: one whose abort is
        slow to return (its program stopped its supervisor, so the kill waits out its 2 s) must
        not leave another running meanwhile, starting the next task of its batch only to have
        it cut short, a receive spent for nothing."""
        runs_dir = os.path.join(self.tmp, "runs.d")
        os.mkdir(runs_dir)
        stuck = 'echo "$$" >> "$1/stuck"; kill -STOP $PPID; exec sleep 60'
        busy = 'echo "$TASK_ID" >> "$1/busy"; sleep 2'
        cfg = {"task_types": ["STUCK", "BUSY"], "shutdown_grace": 1, "sweep_interval": 86400,
               "queues": [{"name": "stuck", "visibility_timeout": 60},
                          {"name": "busy", "visibility_timeout": 60}],
               "subscriptions": [{"queue": "stuck", "filter_policy": {"TaskType": ["STUCK"]}},
                                 {"queue": "busy", "filter_policy": {"TaskType": ["BUSY"]}}],
               "handlers": [{"queue": "stuck", "handler": "exec", "timeout": 30,
                             "command": ["/bin/sh", "-c", stuck, "sh", runs_dir]},
                            {"queue": "busy", "handler": "exec", "timeout": 30, "batch_size": 2,
                             "command": ["/bin/sh", "-c", busy, "sh", runs_dir]}]}
        s = self.start(dict(cfg, handlers=[]), name="queued.json")  # both BUSY in one batch
        s.create("STUCK")
        s.create("BUSY")
        s.create("BUSY")
        self.stop_clean(s)

        def lines(name):
            path = os.path.join(runs_dir, name)
            if not os.path.exists(path):
                return None
            with open(path) as f:
                return f.read().split()
        s = self.start(cfg)
        program = int(wait_until(lambda: lines("stuck"), 10, what="the STUCK run")[0])
        started_by = written_at(os.path.join(runs_dir, "stuck"))
        self.addCleanup(kill_fixture_processes, [program, parent_pid(program)], started_by)
        wait_until(lambda: lines("busy"), 10, what="the first BUSY run")
        self.stop_clean(s, timeout=10)
        # aborted at the end of the grace (1 s), the first BUSY run (2 s) never ended, and the
        # second never began; aborted after the STUCK binding's 2 s more, the second would have
        self.assertEqual(len(lines("busy")), 1, "BUSY runs: %r\n%s"
                         % (lines("busy"), s.stderr_text()[-3000:]))

    def test_a_second_signal_ends_the_grace(self):
        """A second stop signal while the grace runs aborts the handlers at once, as the end of
        the grace would: taskd exits 0 in seconds, not after its 30 s, and the task cut short
        runs again after a restart."""
        runs_dir = os.path.join(self.tmp, "runs.d")
        os.mkdir(runs_dir)
        slow = 'echo "$TASK_ID" >> "$1/runs"; [ -e "$1/go" ] && exit 0; exec sleep 60'
        cfg = {"task_types": ["SLOW"], "shutdown_grace": 30, "sweep_interval": 86400,
               "queues": [{"name": "slow", "visibility_timeout": 60}],
               "subscriptions": [{"queue": "slow"}],
               "handlers": [{"queue": "slow", "handler": "exec", "timeout": 50,
                             "command": ["/bin/sh", "-c", slow, "sh", runs_dir]}]}
        s = self.start(cfg)
        tid = s.create("SLOW")
        runs = os.path.join(runs_dir, "runs")
        wait_until(lambda: os.path.exists(runs), 10, what="the run to start")
        s.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping" in s.stderr_text(), 5, what="the stop to begin")
        time.sleep(0.3)  # inside the grace
        t0 = time.monotonic()
        self.stop_clean(s, signal.SIGINT, timeout=10)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertIn("a second stop signal", s.stderr_text())
        # what is aborted is told as cut short by the signal, not as past the grace
        aborted = [o.get("message") for o in s.log_json() if "aborting them" in o.get("message", "")]
        self.assertEqual(aborted, ["handlers still running when a second stop signal ended the grace "
                                   "period; aborting them"], s.stderr_text()[-3000:])
        open(os.path.join(runs_dir, "go"), "w").close()
        s2 = self.start(cfg)
        t = self.wait_status(s2, tid, FINAL, 15)
        self.assertEqual(t["status"], "COMPLETED", t)
        self.stop_clean(s2)

    def test_sigterm_past_grace_kills_exec_children(self):
        """A handler still running when the grace period ends is abandoned; its program must
        not outlive taskd (it would keep running unsupervised, past its timeout, while the
        task is retried after a restart)."""
        piddir = os.path.join(self.tmp, "pids")
        os.mkdir(piddir)
        cfg = {"shutdown_grace": 1,
               "queues": [{"name": "q", "visibility_timeout": 30}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [{"queue": "q", "handler": "exec", "timeout": 20,
                             "command": ["/bin/sh", script_path("sleep_forever.sh")]}]}
        s = self.start(cfg)
        s.create("TASK2", data={"dir": piddir})
        pidfile = os.path.join(piddir, "pids")
        wait_until(lambda: os.path.exists(pidfile), 10, what="the script to start")
        with open(pidfile) as f:
            pids = [int(p) for p in f.read().split()]
        started_by = written_at(pidfile)
        try:
            self.stop_clean(s, timeout=6)
            try:
                wait_until(lambda: all(process_gone(p, started_by) for p in pids), 3,
                           what="the handler's processes to end with taskd")
            except AssertionError as e:
                alive = [p for p in pids if not process_gone(p, started_by)]
                self.fail("%s: processes %r still run after taskd exited 0 on SIGTERM" % (e, alive))
        finally:
            kill_fixture_processes(pids, started_by)


class Collector:
    """An OTLP/HTTP (JSON) collector that answers the first export 503 with Retry-After: 60 and
    every later one 200, and keeps each request with the status it answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (status answered, path, body)
        collector = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.read_body()
                with collector.lock:
                    status = 503 if not collector.requests else 200
                    collector.requests.append((status, self.path, body))
                if status == 200:
                    self.reply(200, b"{}")
                    return
                self.send_response(503)
                self.send_header("Retry-After", "60")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = serve_stand_in(Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def accepted_spans(self):
        """The spans of the exports answered 200."""
        spans = []
        for status, _, body in self.snapshot():
            if status != 200:
                continue
            for rs in json.loads(body.decode("utf-8")).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    spans.extend(ss.get("spans", []))
        return spans

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def parent_pid(pid):
    """The parent's pid of process pid (field 4 of /proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rpartition(")")[2].split()[1])


def proc_state(pid):
    """The state letter of process pid, or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return None


class AbandonedStop(CrashCase):
    """A SIGTERM that leaves a handler behind. Past shutdown_grace taskd aborts the handlers and
    gives them 5 s more to return; one still running then is abandoned: taskd flushes its spans
    (for 2 s at most), logs "stopped" with handlers=abandoned and exits 0 with that thread still
    in its work.

    An aborted exec run returns at once, or after the kill's grace (2 s) when its program stopped
    its supervisor; what keeps a runner thread past the 5 s is the store. Here another connection
    holds SQLite's write lock (as in test_store_busy), so the runner's release of the message it
    cut short waits out the busy timeout (5 s); the program stops its supervisor, so that this
    wait begins 2 s after the abort and ends well after taskd gave up on the thread (begun at the
    abort, the two would end milliseconds apart).

    The collector answers the first export 503 with Retry-After: 60: the export thread sleeps
    through the whole stop, every later span queued behind it, and only the flush (which cuts
    that sleep short) sends them."""

    RUN = ('echo "$TASK_ID $$ $(date +%s%3N)" >> "$1/runs"; [ -e "$1/go" ] && exit 0; '
           'kill -STOP $PPID; exec sleep 60')

    def test_flush_and_exit_past_the_abort_then_the_task_runs_again(self):
        runs_dir = os.path.join(self.tmp, "runs.d")
        os.mkdir(runs_dir)
        runs = os.path.join(runs_dir, "runs")
        cfg = {"task_types": ["FAST", "SLOW"], "shutdown_grace": 1, "sweep_interval": 86400,
               "queues": [{"name": "fast"}, {"name": "slow", "visibility_timeout": 11}],
               "subscriptions": [{"queue": "fast", "filter_policy": {"TaskType": ["FAST"]}},
                                 {"queue": "slow", "filter_policy": {"TaskType": ["SLOW"]}}],
               "handlers": [{"queue": "fast", "handler": "noop"},
                            {"queue": "slow", "handler": "exec", "timeout": 6,
                             "command": ["/bin/sh", "-c", self.RUN, "sh", runs_dir]}]}
        collector = Collector()
        self.addCleanup(collector.close)
        s = self.start(cfg, env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})

        def traced(task_type):
            trace_id = secrets.token_hex(16)
            tid = s.create(task_type, headers={"traceparent": "00-%s-%s-01"
                                               % (trace_id, secrets.token_hex(8))})
            return tid, trace_id

        def local_spans(tid, complete):
            r = s.get("/tasks/%s/trace" % tid)
            self.assertEqual(r.status, 200, r)
            spans = r.json()["spans"]
            names = [sp["name"] for sp in spans]
            return spans if all(names.count(n) >= c for n, c in complete.items()) else None

        # Finished tasks: their spans, as taskd keeps them for its own trace view.
        done = {}  # task id -> (trace id, span ids)
        for _ in range(3):
            tid, trace_id = traced("FAST")
            self.wait_status(s, tid, ("COMPLETED",))
            spans = wait_until(lambda: local_spans(tid, {"UPDATE tasks": 2, "process fast": 1}), 5,
                               what="the spans of task %s" % tid)
            self.assertEqual({sp["trace_id"] for sp in spans}, {trace_id}, spans)
            done[tid] = (trace_id, {sp["span_id"] for sp in spans})
        # The first export was refused: from here on, spans wait in the queue.
        wait_until(lambda: collector.snapshot(), 10, what="a first export")

        # A task that will not end: its program stops its supervisor.
        stuck, stuck_trace = traced("SLOW")

        def started():
            if not os.path.exists(runs):
                return None
            with open(runs) as f:
                return [line.split() for line in f if line.startswith(stuck + " ")]
        program = int(wait_until(started, 10, what="the SLOW task's run")[0][1])
        supervisor = parent_pid(program)
        started_by = written_at(runs)
        self.addCleanup(kill_fixture_processes, [program, supervisor], started_by)
        wait_until(lambda: proc_state(supervisor) == "T", 5, what="the supervisor stopped")

        holder = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        self.addCleanup(holder.close)
        holder.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.monotonic()
            s.send_signal(signal.SIGTERM)
            bound = 1 + 5 + 2 + 4  # grace, the wait past the abort, the flush, a margin
            try:
                rc = s.proc.wait(bound)
            except Exception:
                self.fail("taskd did not exit within %d s of SIGTERM\n%s"
                          % (bound, s.stderr_text()[-3000:]))
            elapsed = time.monotonic() - t0
        finally:
            holder.rollback()
        s.kill()  # reaped; stderr read to its end
        log = s.stderr_text()
        self.assertEqual(rc, 0, log[-3000:])
        self.assertGreaterEqual(elapsed, 1 + 5 - 0.1, "the abort's 5 s were not waited out")
        stops = [o.get("handlers") for o in s.log_json() if o.get("message") == "stopped"]
        self.assertEqual(stops, ["abandoned"], log)
        for message in ("handlers still running after the grace period; aborting them",
                        "handlers did not return when aborted; leaving them"):
            self.assertIn(message, [o.get("message") for o in s.log_json()], log)

        # The flush sent them all: the finished tasks' spans, and the stuck run's own, ended by
        # the abort during the stop.
        spans = collector.accepted_spans()
        got = {(sp["traceId"], sp["spanId"]) for sp in spans}
        for tid, (trace_id, ids) in done.items():
            missing = {i for i in ids if (trace_id, i) not in got}
            self.assertFalse(missing, "spans of task %s not exported: %r; exports: %r"
                             % (tid, missing, [(st, len(b)) for st, _, b in collector.snapshot()]))
        runs_of_stuck = [sp for sp in spans if sp["traceId"] == stuck_trace and sp["name"] == "exec sh"]
        self.assertEqual([sp.get("status") for sp in runs_of_stuck],
                         [{"code": 2, "message": "aborted at shutdown"}], runs_of_stuck)

        # Nothing of the run outlives taskd (design.md, "Processes: nothing outlives its run").
        wait_until(lambda: all(process_gone(p, started_by) for p in (program, supervisor)), 5,
                   what="the run's processes to end with taskd")

        # The stuck task stays IN_PROGRESS, its message hidden (the runner could not give it
        # back): it comes back after its visibility timeout, and the restarted taskd runs it again.
        self.assertEqual(db_query(self.db, "SELECT status FROM tasks WHERE id = ?", (stuck,)),
                         [("IN_PROGRESS",)])
        (visible_ms,), = db_query(self.db, "SELECT visible_ms FROM messages WHERE task_id = ?",
                                  (stuck,))
        self.assertGreater(visible_ms, time.time() * 1000, "the message was given back")
        open(os.path.join(runs_dir, "go"), "w").close()
        s2 = self.start(cfg)
        t = self.wait_status(s2, stuck, FINAL, (visible_ms / 1000 - time.time()) + 10)
        self.assertEqual((t["status"], t["status_msg"]), ("COMPLETED", "Task completed"), t)
        again = started()
        self.assertEqual(len(again), 2, again)
        # (the program's wall clock against the one taskd keeps visibility in: 50 ms to spare)
        self.assertGreaterEqual(int(again[1][2]), visible_ms - 50,
                                "run again before its message came back")
        for tid in done:
            self.assertEqual(s2.task(tid)["status"], "COMPLETED")
        self.stop_clean(s2)


if __name__ == "__main__":
    unittest.main()
