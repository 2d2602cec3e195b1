"""Chaos: thousands of tasks through the pipeline while taskd is SIGKILLed several times
and once SIGSTOPped for longer than the queue's visibility timeout.

The run is bounded (well under a minute on a 2-core machine; smaller under the
sanitizers) and its randomness is seeded: the seed is printed, CHAOS_SEED=<n>
replays the same schedule (timings still depend on the machine). CHAOS_TASKS
overrides the number of tasks.

Clients create tasks from several threads, each create with its own
Idempotency-Key, and retry with the same key whatever goes wrong (refused
connection while taskd is down, a timeout while it is stopped, a connection
cut by the kill, 503). At the end, with taskd stopped, the database is read
directly (read-only) and must show:

- 0 lost: every key has exactly one task, whose id is the one every answer
  for that key gave; no task without a key; a create whose answer was lost
  and that was repeated still made one task;
- 0 stuck: every TASK1 task is COMPLETED or FAILED (IN_PROGRESS tasks caught
  by a kill or the stop were recovered by redelivery, not by the dead-letter
  queue), no CREATED TASK1 is left, the queue is empty; TASK2 tasks (no
  subscriber) are still CREATED;
- 0 finished twice: from the change log (checked untrimmed: the sweep never
  runs during the test), each task has exactly one INSERT and its MODIFY
  records form one chain ending in the task's status, with exactly one
  transition into a final status and none out of one.

At-least-once shows as tasks claimed again after a redelivery ("task
redelivered; running it again" in taskd's log); their number is reported
and must stay within what the kills and the stop can strand.
"""

import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
import unittest
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServersTestCase, Taskd, change_transitions, db_query, queue_table, taskd_bin,  # noqa: E402
                     wait_until, write_config)

FINAL = ("COMPLETED", "FAILED")

VISIBILITY = 2        # s: the task1 queue's visibility timeout
STOP_SECONDS = 4.0    # the SIGSTOP lasts longer than VISIBILITY
CONCURRENCY = 16      # runner threads on task1
BATCH = 2             # messages per receive (claims ride in the receive)
CLIENTS = 4           # client threads creating tasks
CLIENT_TIMEOUT = 1.5  # s per request: shorter than the stop, so some answers are lost there
KILLS = 5
TASK2_SHARE = 0.05    # tasks with no subscriber: must stay CREATED through all of it


def sanitized_build():
    """True when the taskd under test is an ASan build.

    scripts/test.sh runs the sanitizer suite as SANITIZE=1 (inherited through ctest);
    a binary run by hand is recognised by the ASan runtime's symbol in it.
    """
    if os.environ.get("SANITIZE") == "1":
        return True
    try:
        with open(taskd_bin(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def failure_kind(e):
    if isinstance(e, TimeoutError):  # socket.timeout
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    return "cut"  # reset, or closed before the answer


class Cluster:
    """The current taskd of the test: restarted on the same database after each kill."""

    def __init__(self, case, cfg_path, env):
        self.case = case
        self.cfg_path = cfg_path
        self.env = env
        self.lock = threading.Lock()
        self.runs = []  # every Taskd started, in order
        self.server = None
        self.start()

    def start(self):
        s = Taskd(db=self.case.db, config=self.cfg_path, tmpdir=self.case.tmp, env=self.env)
        self.case.servers.append(s)
        with self.lock:
            self.runs.append(s)
            self.server = s
        return s

    def port(self):
        with self.lock:
            return self.server.port


class Client(threading.Thread):
    """Creates its share of the tasks; every create is retried with its key until answered."""

    def __init__(self, cluster, items, t0, rate, deadline):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.items = items  # [(global index, key, body)]
        self.t0 = t0
        self.rate = rate
        self.deadline = deadline
        self.answers = {}      # key -> [(status, id)] of every answered attempt
        self.failed = Counter()  # key -> attempts that got no answer (or a 503)
        self.failures = Counter()  # kind of failed attempt -> count
        self.unexpected = []   # (key, status, body) other than 200/201/503
        self.conn = None
        self.conn_port = None

    def _conn(self):
        port = self.cluster.port()
        if self.conn is None or self.conn_port != port:
            self._drop()
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
            self.conn_port = port
        return self.conn

    def _drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def run(self):
        try:
            for g, key, body in self.items:
                due = self.t0 + g / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.create(key, body)
        finally:
            self._drop()

    def create(self, key, body):
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        while time.monotonic() < self.deadline:
            try:
                c = self._conn()
                c.request("POST", "/tasks", body=payload, headers=headers)
                r = c.getresponse()
                data = r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    self._drop()
            except (OSError, http.client.HTTPException) as e:
                # refused (taskd down), cut by a kill, or timed out while it is stopped:
                # the create may or may not have been committed; the key decides
                self._drop()
                self.failed[key] += 1
                self.failures[failure_kind(e)] += 1
                time.sleep(0.02)
                continue
            if status in (200, 201):
                self.answers.setdefault(key, []).append((status, json.loads(data)["id"]))
                return
            if status == 503:  # store busy or taskd stopping: retry
                self.failed[key] += 1
                self.failures["503"] += 1
                time.sleep(0.05)
                continue
            self.unexpected.append((key, status, data[:300]))
            return


class Chaos(ServersTestCase):
    tmp_prefix = "taskd-chaos-"

    def test_kills_and_a_stop_under_load(self):
        asan = sanitized_build()
        seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2 ** 31))
        n_tasks = int(os.environ.get("CHAOS_TASKS") or (1200 if asan else 2400))
        post_seconds = 16.0 if asan else 12.0  # creations are spread over about this long
        restart_allowance = 1.0 if asan else 0.5  # s per kill, kept out of the chaos budget
        drain_timeout = 240.0 if asan else 60.0
        rng = random.Random(seed)
        print("\nchaos: seed %d (CHAOS_SEED=%d replays it), %d tasks, %s build"
              % (seed, seed, n_tasks, "sanitizer" if asan else "normal"), file=sys.stderr)
        t_start = time.monotonic()

        cfg = {
            "task_types": ["TASK1", "TASK2", "TASK3"],
            "sweep_interval": 86400,  # no sweep during the test: the change log stays whole
            "queues": [{"name": "task1", "visibility_timeout": VISIBILITY, "max_receive_count": 10,
                        "dead_letter_queue": "task1-dlq"},
                       {"name": "task1-dlq"}],
            "subscriptions": [{"queue": "task1", "filter_policy": {"TaskType": ["TASK1"]}}],
            "handlers": [{"queue": "task1", "handler": "TASK1", "batch_size": BATCH,
                          "concurrency": CONCURRENCY, "timeout": 1}],
        }
        env = {"TASK1_SECONDS": "0.05", "TASK1_FAILURE_RATE": "0.2"}
        cluster = Cluster(self, write_config(self.tmp, cfg), env)

        # The tasks: mostly TASK1, a few TASK2; each with its key, also kept in its data.
        items = []
        for g in range(n_tasks):
            key = "chaos-%d-%05d" % (seed, g)
            ttype = "TASK2" if rng.random() < TASK2_SHARE else "TASK1"
            items.append((g, key, {"task_type": ttype, "data": {"key": key, "g": g}}))
        kind_of = {key: body["task_type"] for _, key, body in items}

        t0 = time.monotonic()
        rate = n_tasks / post_seconds
        client_deadline = t0 + post_seconds + 90.0
        clients = [Client(cluster, items[i::CLIENTS], t0, rate, client_deadline)
                   for i in range(CLIENTS)]
        for c in clients:
            c.start()

        # The chaos: KILLS kills and one stop, in a seeded order, at seeded moments, all
        # within the creations (so there is always work in flight, and requests to cut).
        events = ["kill"] * KILLS + ["stop"]
        rng.shuffle(events)
        gaps = [rng.uniform(0.2, 1.0) for _ in events]
        budget = post_seconds - STOP_SECONDS - KILLS * restart_allowance
        gaps = [g * budget / sum(gaps) * rng.uniform(0.8, 1.0) for g in gaps]
        in_progress_at_kill = []
        stop_info = {}
        for ev, gap in zip(events, gaps):
            time.sleep(gap)
            s = cluster.server
            if not s.alive():
                self.fail("taskd died on its own (rc=%s) before a %s; stderr tail:\n%s"
                          % (s.proc.returncode, ev, s.stderr_text()[-4000:]))
            if ev == "kill":
                rc = s.kill()
                self.assertEqual(rc, -signal.SIGKILL, s.stderr_text()[-3000:])
                in_progress_at_kill.append({tid for (tid,) in db_query(
                    self.db, "SELECT id FROM tasks WHERE status = 'IN_PROGRESS'")})
                cluster.start()
            else:
                s.send_signal(signal.SIGSTOP)
                stopped_at = time.monotonic()
                time.sleep(STOP_SECONDS)
                s.send_signal(signal.SIGCONT)
                stop_info = {"seconds": time.monotonic() - stopped_at,
                             "during_creates": all(c.is_alive() for c in clients)}
        chaos_done = time.monotonic()
        for c in clients:
            c.join(max(1.0, client_deadline - time.monotonic() + 5))
            self.assertFalse(c.is_alive(), "a client thread is still retrying past its deadline")
        posted_done = time.monotonic()

        # Every create answered, none refused.
        answers = {}
        failed = Counter()
        failures = Counter()
        unexpected = []
        for c in clients:
            answers.update(c.answers)
            failed.update(c.failed)
            failures.update(c.failures)
            unexpected.extend(c.unexpected)
        self.assertEqual(unexpected, [], "creates answered with neither 200/201 nor 503")
        unanswered = [key for _, key, _ in items if key not in answers]
        self.assertEqual(unanswered[:10], [], "%d creates never answered" % len(unanswered))

        # Drain: no TASK1 left CREATED or IN_PROGRESS, and the queue empty (messages of
        # tasks that finished before a kill come back after the visibility timeout, go).
        s = cluster.server
        self.assertTrue(s.alive(), s.stderr_text()[-3000:])

        def drained():
            open_ = db_query(self.db, "SELECT count(*) FROM tasks WHERE task_type = 'TASK1' "
                                      "AND status NOT IN ('COMPLETED', 'FAILED')")[0][0]
            if open_:
                return False
            q = queue_table(s)["task1"]
            return q["depth"] + q["in_flight"] + q["delayed"] == 0 and q
        try:
            wait_until(drained, drain_timeout, interval=0.2, what="the pipeline to drain")
        except AssertionError as e:
            counts = db_query(self.db, "SELECT task_type, status, count(*) FROM tasks "
                                       "GROUP BY task_type, status")
            self.fail("%s: %r, queues %r (seed %d)\nlog tail:\n%s"
                      % (e, counts, queue_table(s), seed, s.stderr_text()[-3000:]))
        drained_at = time.monotonic()
        queues = queue_table(s)
        self.stop_clean(s)

        # ---- the database, read directly (taskd stopped) --------------------------------
        tasks = {tid: (ttype, status, msg, key) for tid, ttype, status, msg, key in db_query(
            self.db, "SELECT id, task_type, status, status_msg, json_extract(data, '$.key') "
                     "FROM tasks")}
        changes = change_transitions(self.db)

        # 0 lost, 0 duplicated: one task per key, with the id every answer gave.
        by_key = defaultdict(list)
        for tid, (_, _, _, key) in tasks.items():
            by_key[key].append(tid)
        strays = [tid for tid, t in tasks.items() if t[3] not in kind_of]
        self.assertEqual(strays, [], "tasks with no client key")
        dups = {k: v for k, v in by_key.items() if len(v) > 1}
        self.assertEqual(dups, {}, "keys with more than one task (idempotency broken)")
        lost = [k for k in kind_of if k not in by_key]
        self.assertEqual(lost, [], "creates answered but with no task (lost)")
        wrong_id = {k: (a, by_key[k]) for k, a in answers.items()
                    if any(tid != by_key[k][0] for _, tid in a)}
        self.assertEqual(wrong_id, {}, "answers naming another id than the key's task")
        wrong_type = [tid for tid, t in tasks.items() if t[0] != kind_of[t[3]]]
        self.assertEqual(wrong_type, [])
        self.assertEqual(len(tasks), n_tasks)
        retried = [k for k in kind_of if failed[k]]
        retried_answered_200 = [k for k in retried if answers[k][-1][0] == 200]
        if stop_info.get("during_creates"):
            # requests sent to the stopped taskd time out, are repeated, and are answered after
            # SIGCONT; the abandoned first attempt is committed too: its repeat gets 200, same id
            self.assertTrue(retried_answered_200, "no repeated create found its first attempt's "
                                                  "task: the lost-answer path was not exercised")

        # 0 stuck: every TASK1 final, every TASK2 untouched.
        status_of = Counter((t[0], t[1]) for t in tasks.values())
        stuck = [(tid, t) for tid, t in tasks.items() if t[0] == "TASK1" and t[1] not in FINAL]
        self.assertEqual(stuck[:10], [], "%d TASK1 tasks not final" % len(stuck))
        moved = [tid for tid, t in tasks.items() if t[2].startswith("moved to dead-letter queue")]
        self.assertEqual(moved[:10], [], "IN_PROGRESS tasks must be recovered by redelivery, "
                                         "not dead-lettered (max_receive_count 10)")
        fail_msgs = Counter(t[2] for t in tasks.values() if t[1] == "FAILED")
        self.assertEqual(set(fail_msgs) - {"Task failed somehow"}, set(),
                         "tasks failed for another reason than the handler's: %r" % fail_msgs)
        self.assertGreater(status_of[("TASK1", "COMPLETED")], 0)
        self.assertGreater(status_of[("TASK1", "FAILED")], 0)
        untouched = [tid for tid, t in tasks.items() if t[0] == "TASK2" and t[1] != "CREATED"]
        self.assertEqual(untouched, [], "TASK2 tasks have no subscriber: they stay CREATED")
        self.assertEqual((queues["task1"]["dead_letter_count"], queues["task1-dlq"]["depth"]),
                         (0, 0), queues)

        # The change log is whole: nothing trimmed (seq starts at 1), nothing removed.
        self.assertTrue(changes)
        self.assertEqual(changes[0][0], 1, "the change log was trimmed; transitions cannot be "
                                           "counted")
        self.assertEqual([c for c in changes if c[1] not in ("INSERT", "MODIFY")], [])

        # 0 finished twice: per task one INSERT, one chain of MODIFYs, one final transition.
        history = defaultdict(list)
        for seq, event, tid, new_status, old_status, msg in changes:
            history[tid].append((seq, event, old_status, new_status, msg))
        self.assertEqual(set(history), set(tasks), "change records for unknown tasks, or tasks "
                                                   "without change records")
        bad = {}
        finals = Counter()
        for tid, recs in history.items():
            ttype, status = tasks[tid][0], tasks[tid][1]
            inserts = [r for r in recs if r[1] == "INSERT"]
            problems = []
            if len(inserts) != 1 or recs[0][1] != "INSERT" or recs[0][3] != "CREATED":
                problems.append("not exactly one INSERT (as CREATED) first")
            for prev, cur in zip(recs, recs[1:]):
                if cur[2] != prev[3]:
                    problems.append("chain broken at seq %d" % cur[0])
                if cur[2] in FINAL:
                    problems.append("transition out of a final status at seq %d" % cur[0])
            n_final = sum(1 for r in recs[1:] if r[3] in FINAL and r[2] not in FINAL)
            finals[n_final] += 1
            if recs[-1][3] != status:
                problems.append("last record says %s, the task %s" % (recs[-1][3], status))
            if n_final != (1 if ttype == "TASK1" else 0):
                problems.append("%d final transitions" % n_final)
            # one claim; a task run again after a kill has a record of each claim again
            # (IN_PROGRESS to IN_PROGRESS, saying so); a TASK2 is never touched
            shape = [r[3] for r in recs]
            again = sum(1 for r in recs[2:-1] if r[2] == r[3] == "IN_PROGRESS" and
                        re.fullmatch(r"Task started again \(receive \d+\)", r[4] or ""))
            want = (["CREATED", "IN_PROGRESS"] + ["IN_PROGRESS"] * again + [status]
                    if ttype == "TASK1" else ["CREATED"])
            if shape != want:
                problems.append("history %s, expected %s" % (shape, want))
            if problems:
                bad[tid] = (problems, recs)
        self.assertEqual(dict(list(bad.items())[:5]), {}, "%d tasks with a bad history" % len(bad))

        # At-least-once, bounded: claimed again only after a kill or the stop stranded it.
        reruns = Counter()
        for run in cluster.runs:
            for line in run.stderr_text().splitlines():
                if "task redelivered" not in line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("message") == "task redelivered; running it again":
                    reruns[obj.get("task_id")] += 1
        n_events = len(events)
        bound = n_events * CONCURRENCY * BATCH
        self.assertLessEqual(sum(reruns.values()), bound,
                             "more redeliveries than the kills and the stop can strand")
        self.assertEqual(set(reruns) - {tid for tid, t in tasks.items() if t[0] == "TASK1"},
                         set())
        stranded = set().union(*in_progress_at_kill)
        self.assertTrue(stranded, "no kill caught a task IN_PROGRESS: redelivery was not exercised")
        # Each task a kill left IN_PROGRESS was claimed again on redelivery (and then finished,
        # above); other redeliveries can only come from the stop, which strands at most what the
        # runner threads hold.
        self.assertEqual(sorted(stranded - set(reruns))[:10], [],
                         "tasks left IN_PROGRESS by a kill that were never claimed again")
        claimed_again = {tid for tid, recs in history.items()
                         if any(r[2] == r[3] == "IN_PROGRESS" for r in recs)}
        self.assertEqual(sorted(stranded - claimed_again)[:10], [],
                         "tasks left IN_PROGRESS by a kill whose claim again the stream never saw")
        self.assertLessEqual(len(set(reruns) - stranded), CONCURRENCY * BATCH,
                             "redeliveries that neither a kill nor the stop explains")

        # Ran clean: no process died but by our SIGKILLs; sanitizer reports would be in stderr.
        for run in cluster.runs:
            text = run.stderr_text()
            self.assertNotIn("AddressSanitizer", text, text[-4000:])
            self.assertNotIn("runtime error:", text, text[-4000:])
        kills = sum(1 for r in cluster.runs if r.proc.returncode == -signal.SIGKILL)
        self.assertEqual(kills, KILLS)

        t_end = time.monotonic()
        report = [
            "chaos: seed %d, %d tasks (%d TASK1, %d TASK2), %d client threads"
            % (seed, n_tasks, sum(v == "TASK1" for v in kind_of.values()),
               sum(v == "TASK2" for v in kind_of.values()), CLIENTS),
            "  events: %s; tasks IN_PROGRESS right after each kill: %s; stop %.1f s "
            "(visibility %d s)%s" % (" ".join(events), [len(x) for x in in_progress_at_kill],
                                     stop_info.get("seconds", 0), VISIBILITY,
                                     "" if stop_info.get("during_creates") else
                                     " after the creates"),
            "  creates: %d retried after a failed attempt (failed attempts: %s), %d of them "
            "answered 200 (the key found an earlier attempt's task)"
            % (len(retried), dict(failures), len(retried_answered_200)),
            "  lost 0, duplicated 0, stuck 0; TASK1 COMPLETED %d, FAILED %d (handler); "
            "dead-lettered 0" % (status_of[("TASK1", "COMPLETED")], status_of[("TASK1", "FAILED")]),
            "  change records %d; final transitions per task: %s"
            % (len(changes), dict(sorted(finals.items()))),
            "  claimed again after redelivery: %d tasks, %d times (bound %d), at most %d times "
            "for one task; %d stranded by kills, %d by the stop"
            % (len(reruns), sum(reruns.values()), bound, max(reruns.values()) if reruns else 0,
               len(stranded), len(set(reruns) - stranded)),
            "  times: chaos %.1f s, creates done %.1f s, drained %.1f s, total %.1f s"
            % (chaos_done - t_start, posted_done - t_start, drained_at - t_start,
               t_end - t_start),
        ]
        print("\n".join(report), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
