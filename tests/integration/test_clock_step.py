"""The wall clock stepped while taskd runs (date -s, an NTP step), through a shim preloaded into
taskd that moves its CLOCK_REALTIME and leaves its monotonic clock alone.

A queue's deadlines keep to the clock taskd started with: a step forward does not show a message
whose handler is still running (the task would run a second time beside the first), a step back
does not hide a delayed message for the step's length. Task times follow the wall clock, and
the step is logged. Task ids go on after the greatest kept, so a clock set back across a restart
still lists a new task first.
"""

import os
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServersTestCase, Taskd, change_transitions, db_query, preload_env,  # noqa: E402
                     queue_table, script_path, wait_until, write_config)

HOUR = 3600


class ClockStep(ServersTestCase):
    tmp_prefix = "taskd-clock-"

    def start(self, cfg, env, shift=0):
        """taskd with its wall clock shift seconds off (0: right)."""
        self.shift = os.path.join(self.tmp, "clock-shift")
        self.step(shift)
        env = preload_env(self, "CLOCK_SHIFT_SHIM", "libclock_shift.so", CLOCK_SHIFT_FILE=self.shift, **env)
        s = Taskd(db=self.db, config=write_config(self.tmp, cfg), tmpdir=self.tmp, env=env)
        self.servers.append(s)
        return s

    def step(self, seconds):
        with open(self.shift + ".new", "w") as f:
            f.write("%d\n" % seconds)
        os.replace(self.shift + ".new", self.shift)

    def logged_step(self, s):
        """The step_ms of the last "the wall clock was stepped" warning, or None."""
        steps = [o for o in s.log_json() if o.get("message", "").startswith("the wall clock was stepped")]
        return int(steps[-1]["step_ms"]) if steps else None

    def starts(self, s, tid):
        return [h for h in s.history(tid)["history"] if h["status"] == "IN_PROGRESS"]

    def test_step_forward_runs_no_task_twice(self):
        # a second runner stands by while the first runs the task; before queue deadlines kept
        # to the steady clock, its next look after the step (its idle recheck, within 10 s, or
        # the receive a send makes for it at once, as the second task's here) found the message
        # visible an hour early, first in line, and ran the task a second time ("Task started
        # again")
        cfg = {"sweep_interval": 1,
               "queues": [{"name": "task1", "visibility_timeout": 20}],
               "handlers": [{"queue": "task1", "handler": "TASK1", "timeout": 15,
                             "concurrency": 2}]}
        s = self.start(cfg, {"TASK1_SECONDS": "5", "TASK1_FAILURE_RATE": "0"})
        tid = s.create("TASK1")
        self.wait_status(s, tid, ("IN_PROGRESS",), 5)
        before = time.time()
        self.step(HOUR)
        time.sleep(0.1)  # taskd reads the shim's file again 20 ms after it last did
        other = s.create("TASK1")
        # the first still runs, its message still there: the send's receive had it to take
        self.assertEqual(s.task(tid)["status"], "IN_PROGRESS", "the task ended before the send")
        wait_until(lambda: "the wall clock was stepped" in s.stderr_text(), 15,
                   what="the step logged")
        t = self.wait_status(s, tid, ("COMPLETED", "FAILED"), 20)
        self.assertEqual(t["status"], "COMPLETED", t)
        starts = self.starts(s, tid)
        self.assertEqual(len(starts), 1, "the task ran more than once: %r\n%s"
                         % (s.history(tid), s.stderr_text()[-2000:]))
        self.assertEqual(self.wait_status(s, other, ("COMPLETED", "FAILED"), 20)["status"], "COMPLETED")
        # the second started before the first ended: the receive that took it was made while the
        # first's message was there to find (its status above was read before that receive)
        seqs = {(task, new): seq for seq, _, task, new, _, _ in change_transitions(
            self.db, "task_id IN (?, ?) AND event_name = 'MODIFY'", (tid, other))}
        self.assertLess(seqs[(other, "IN_PROGRESS")], seqs[(tid, "COMPLETED")],
                        "the second task started once the first had ended: no look came while it ran")
        # the task's own times follow the wall clock, an hour on
        self.assertGreater(t["updated_time"], before + HOUR - 60, t)
        self.assertAlmostEqual(self.logged_step(s), HOUR * 1000, delta=1000)
        self.stop_clean(s)

    def test_step_back_hides_no_delayed_message(self):
        # a message delayed 2 s: before, its visible time was wall time, and a step back of an
        # hour kept it hidden for that hour
        cfg = {"sweep_interval": 1,
               "queues": [{"name": "task1", "delay": 2}],
               "handlers": [{"queue": "task1", "handler": "TASK1", "timeout": 5}]}
        s = self.start(cfg, {"TASK1_SECONDS": "0", "TASK1_FAILURE_RATE": "0"})
        tid = s.create("TASK1")
        self.step(-HOUR)
        self.wait_status(s, tid, ("COMPLETED",))
        self.assertEqual(len(self.starts(s, tid)), 1, s.history(tid))
        wait_until(lambda: self.logged_step(s) is not None, 15, what="the step logged")
        self.assertAlmostEqual(self.logged_step(s), -HOUR * 1000, delta=1000)
        self.stop_clean(s)

    def test_step_back_keeps_a_dead_letter_its_retention(self):
        # the clock stepped back an hour, then a message moves to the dead-letter queue, kept
        # 120 s (longer than its queue's 60, or taskd warns at start). A dead letter's end was
        # its send by the wall clock plus that retention, read against the clock taskd started
        # with: an hour behind it, the letter arrived expired and the next sweep dropped it,
        # with nothing left to redrive
        cfg = {"sweep_interval": 1, "retention_grace": 0,
               "queues": [{"name": "q", "retention": 60, "visibility_timeout": 1,
                           "max_receive_count": 1, "dead_letter_queue": "q-dlq"},
                          {"name": "q-dlq", "retention": 120}],
               "subscriptions": [{"queue": "q", "filter_policy": {"TaskType": ["TASK3"]}}],
               "handlers": [{"queue": "q", "handler": "exec", "timeout": 1,
                             "command": ["/bin/sh", script_path("kill_supervisor.sh")]}]}
        s = self.start(cfg, {})
        self.step(-HOUR)
        wait_until(lambda: self.logged_step(s) is not None, 15, what="the step logged")
        tid = s.create("TASK3")
        t = self.wait_status(s, tid, ("FAILED",), 20)
        self.assertEqual(t["status_msg"], "moved to dead-letter queue q-dlq after 1 receive", t)
        # a sweep after the move: it deletes a task finished past its ttl, as it drops the
        # messages past their retention, in the same step
        marker = s.create("TASK2", ttl=1)
        self.assertEqual(s.patch("/tasks/" + marker, {"status": "FAILED"}).status, 204)
        wait_until(lambda: s.get("/tasks/" + marker).status == 404, 10,
                   what="a sweep to delete the finished task")
        self.assertEqual(queue_table(s)["q"]["dead_letter_count"], 1, s.stderr_text()[-2000:])
        r = s.post("/queues/q/redrive")
        self.assertEqual(r.json(), {"queue": "q", "moved": 1})
        s.close()

    def test_restart_with_the_clock_back_lists_a_new_task_first(self):
        # taskd stopped with its clock an hour ahead and started again with it right: ids took
        # the clock alone, so the new task's id sorted below the older one's and GET /tasks,
        # newest first, listed it after every task of that hour
        s = self.start({}, {})
        self.step(HOUR)
        older = s.create("TASK2")
        self.stop_clean(s)
        self.step(0)
        s = self.start({}, {})
        newer = s.create("TASK2")
        self.assertGreater(newer, older)
        page = s.get("/tasks?limit=1").json()
        self.assertEqual([t["id"] for t in page["tasks"]], [newer], page)
        self.stop_clean(s)

    QUEUE = {"queues": [{"name": "q", "delay": 30, "retention": 600}],
             "subscriptions": [{"queue": "q", "filter_policy": {"TaskType": ["TASK2"]}}],
             "handlers": []}

    def message_times(self):
        (times,) = db_query(self.db, "SELECT sent_ms, visible_ms, expires_ms FROM messages")
        return times

    def test_restart_with_the_clock_back_keeps_messages_their_lengths(self):
        # taskd ran with its clock an hour ahead and started again with it right. The restart
        # made visible what was hidden past any timeout, but left every expiry an hour late: a
        # message lived its retention and the hour. Now its send, visibility and expiry move
        # back with the clock, and keep their lengths: still delayed, kept its retention
        s = self.start(self.QUEUE, {}, shift=HOUR)
        s.create("TASK2")
        wait_until(lambda: queue_table(s)["q"]["delayed"] == 1, 5, what="the message sent")
        self.stop_clean(s)
        sent, visible, expires = self.message_times()
        self.assertGreater(sent, time.time() * 1000 + HOUR * 1000 - 60_000)  # by the clock an hour on
        s = self.start(self.QUEUE, {})
        restarted = time.time() * 1000
        delayed = queue_table(s)["q"]["delayed"]
        self.stop_clean(s)
        sent2, visible2, expires2 = self.message_times()
        self.assertLess(expires2, restarted + 600_000 + 1000, "the message kept an hour late")
        # all three back by the same step, the one the clock went back by (less the time taskd
        # was down, which it cannot know): no later than the restart's clock, as it was sent
        self.assertLessEqual(sent2, restarted + 1000)
        self.assertGreater(sent2, restarted - 30_000)
        self.assertEqual((visible2 - sent2, expires2 - sent2), (visible - sent, expires - sent))
        self.assertEqual(delayed, 1, "the message no longer delayed")
        moved = [o for o in s.log_json() if o.get("message", "").startswith("the wall clock went back")]
        self.assertEqual(len(moved), 1, s.stderr_text()[-2000:])
        self.assertEqual(int(moved[0]["step_ms"]), sent2 - sent)

    def test_restart_after_a_step_forward_moves_no_message(self):
        # the clock stepped an hour forward while taskd ran, and back while it was down: the
        # queue's deadlines kept to the clock taskd started with, which the restart reads
        # again, and are right. The send, by the wall clock, is an hour ahead of it, but its
        # expiry is not: nothing moves (moved by the send alone, the message expired at once)
        s = self.start(dict(self.QUEUE, sweep_interval=1), {})
        self.step(HOUR)
        wait_until(lambda: self.logged_step(s) is not None, 15, what="the step logged")
        s.create("TASK2")
        wait_until(lambda: queue_table(s)["q"]["delayed"] == 1, 5, what="the message sent")
        self.stop_clean(s)
        before = self.message_times()
        s = self.start(self.QUEUE, {})
        self.assertEqual(queue_table(s)["q"]["delayed"], 1, "the message no longer delayed")
        self.stop_clean(s)
        self.assertEqual(self.message_times(), before)
        self.assertNotIn("the wall clock went back", s.stderr_text())

    def test_restart_keeps_the_send_of_a_message_sent_after_a_step_back(self):
        # taskd started an hour ahead and its clock was put right while it ran: the message sent
        # before that was sent by the clock an hour on, the one sent after by the right one. The
        # restart moves the queues' times back by the first's send; the second's send was right,
        # and moved with them it said the message was an hour older than it was (a later move to
        # a dead-letter queue of a shorter retention dropped it on arrival). A send no later
        # than the restart's clock stays where it is
        s = self.start(dict(self.QUEUE, sweep_interval=1), {}, shift=HOUR)
        ahead = s.create("TASK2")
        wait_until(lambda: queue_table(s)["q"]["delayed"] == 1, 5, what="the first message sent")
        self.step(0)
        wait_until(lambda: self.logged_step(s) is not None, 15, what="the step logged")
        right = s.create("TASK2")
        wait_until(lambda: queue_table(s)["q"]["delayed"] == 2, 5, what="the second message sent")
        self.stop_clean(s)
        query = "SELECT task_id, sent_ms FROM messages"
        before = dict(db_query(self.db, query))
        self.assertGreater(before[ahead], time.time() * 1000 + HOUR * 1000 - 60_000)
        self.assertLess(before[right], time.time() * 1000 + 1000)
        s = self.start(self.QUEUE, {})
        restarted = time.time() * 1000
        self.stop_clean(s)
        after = dict(db_query(self.db, query))
        self.assertIn("the wall clock went back", s.stderr_text())
        self.assertLess(after[ahead], restarted + 1000, "the send an hour on was not moved back")
        self.assertEqual(after[right], before[right], "the right send moved %d ms"
                         % (before[right] - after[right]))

    def test_restart_after_a_step_back_while_running_keeps_messages_their_lengths(self):
        # the clock put back an hour while taskd ran, and taskd restarted with it still back.
        # The queue's deadlines kept to the clock taskd started with, an hour ahead of the new
        # one; the send followed the wall clock, so it was not ahead, and nothing in the
        # messages told: the message outlived its retention by the hour, and its delay ended
        # at once (made visible past any timeout). The stop now notes where the queue clock
        # was, and the restart moves the deadlines back by as far as it is ahead
        s = self.start(dict(self.QUEUE, sweep_interval=1), {})
        self.send_after_a_step_back(s)
        noted = time.monotonic()  # the stop's note is no older
        self.stop_clean(s)
        moved = self.restart_keeps_the_lengths(noted)
        # the stop's note told it: the clock went back before the newest send, not since
        self.assertNotIn("newest message was sent", moved["message"])

    def send_after_a_step_back(self, s):
        """The wall clock put back an hour while s runs, then a delayed message sent."""
        self.step(-HOUR)
        wait_until(lambda: self.logged_step(s) is not None, 15, what="the step logged")
        s.create("TASK2")
        wait_until(lambda: queue_table(s)["q"]["delayed"] == 1, 5, what="the message sent")

    def restart_keeps_the_lengths(self, noted):
        """With taskd ended after send_after_a_step_back(), a restart with the clock still back
        keeps the message its delay and retention from its send, and at most the time from the
        queue clock's last note (no earlier than the monotonic time noted) to the restart more,
        which the restart cannot know; returns the restart's log line of the move."""
        sent, visible, expires = self.message_times()
        self.assertLess(sent, (time.time() - HOUR) * 1000 + 1000)  # by the clock put back
        self.assertGreater(expires - sent, 600_000 + HOUR * 1000 - 60_000)  # by the one before
        s = self.start(self.QUEUE, {}, shift=-HOUR)
        down = (time.monotonic() - noted) * 1000
        delayed = queue_table(s)["q"]["delayed"]
        self.stop_clean(s)
        sent2, visible2, expires2 = self.message_times()
        self.assertEqual(delayed, 1, "the message no longer delayed\n" + s.stderr_text()[-2000:])
        self.assertEqual(sent2, sent)  # right by the clock taskd reads now
        # the two clocks are read in whole milliseconds, apart: a few off, never a second
        for kept, length in ((visible2 - sent2, 30_000), (expires2 - sent2, 600_000)):
            self.assertTrue(length - 10 <= kept <= length + down,
                            "the message kept %d ms of %d, %d ms after the note"
                            % (kept, length, down))
        moved = [o for o in s.log_json() if o.get("message", "").startswith("the wall clock went back")]
        self.assertEqual(len(moved), 1, s.stderr_text()[-2000:])
        self.assertEqual(int(moved[0]["step_ms"]), expires2 - expires)
        return moved[0]

    def noted_queue_clock(self):
        """The note of where taskd's queue clock was (meta's queue_clock_at_stop), or None."""
        rows = db_query(self.db, "SELECT value FROM meta WHERE name = 'queue_clock_at_stop'")
        return rows[0][0] if rows else None

    def swept(self, s):
        """Returns once a sweep has run that began after this call: a task finished with a ttl of
        1 s is deleted by a sweep at least a second later."""
        marker = s.create("TASK1", ttl=1)  # no queue takes it: no message
        self.assertEqual(s.patch("/tasks/" + marker, {"status": "FAILED"}).status, 204)
        wait_until(lambda: s.get("/tasks/" + marker).status == 404, 10,
                   what="a sweep to delete the finished task")

    def test_crash_after_a_step_back_while_running_keeps_messages_their_lengths(self):
        # as the test before, but taskd killed with SIGKILL where it stopped: no stop noted where
        # the queue clock was, nothing in the messages told, and the restart kept the message
        # its retention and the hour and ended its delay at once. While the wall clock is behind
        # the queue clock, every sweep now notes it, and the restart moves by that note: a sweep
        # old at most, the message keeps at most that and the time taskd was down more
        s = self.start(dict(self.QUEUE, sweep_interval=1, retention_grace=0), {})
        self.send_after_a_step_back(s)
        noted = time.monotonic() - 1  # swept()'s writes note unless a note is under 1 s old
        self.swept(s)
        self.assertEqual(s.kill(), -signal.SIGKILL)
        self.restart_keeps_the_lengths(noted)

    def put_back(self, s):
        """The wall clock put back an hour; returns once s reads it so: a task it creates then
        (no queue takes it) is created by the clock put back."""
        self.step(-HOUR)

        def back():
            tid = s.create("TASK1")
            return s.task(tid)["created_time"] < time.time() - HOUR + 60
        wait_until(back, 5, what="taskd to read its wall clock put back")

    def test_crash_before_a_sweep_after_a_step_back_keeps_messages_their_lengths(self):
        # as the test before, but taskd killed long before a sweep could note the queue clock
        # (sweep_interval an hour): nothing told the restart, which kept the message its
        # retention and the hour and ended its delay at once. A write that finds the wall clock
        # behind now notes the queue clock in its own transaction, a second old at most
        s = self.start(dict(self.QUEUE, sweep_interval=HOUR), {})
        self.put_back(s)
        noted = time.monotonic() - 1  # the send's write notes unless a note is under 1 s old
        s.create("TASK2")
        wait_until(lambda: queue_table(s)["q"]["delayed"] == 1, 5, what="the message sent")
        self.assertEqual(s.kill(), -signal.SIGKILL)
        self.restart_keeps_the_lengths(noted)

    def test_a_note_of_the_queue_clock_that_fails_is_logged_once(self):
        # the sweeps' notes of the queue clock refused (triggers on meta): the first failure is
        # logged, and the sweeps after it, failing alike, log nothing more until a note is made
        # again; then the next failure is logged once more
        s = self.start(dict(self.QUEUE, sweep_interval=1, retention_grace=0), {})
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        self.addCleanup(conn.close)
        refuse = ("CREATE TRIGGER no_note_{0} BEFORE {0} ON meta "
                  "WHEN NEW.name = 'queue_clock_at_stop' BEGIN "
                  "SELECT RAISE(ABORT, 'refused to note the queue clock'); END")

        def failures():
            return [o for o in s.log_json()
                    if o.get("message", "").startswith("cannot note the queue clock")]

        for event in ("INSERT", "UPDATE"):
            conn.execute(refuse.format(event))
        self.step(-HOUR)
        wait_until(lambda: failures(), 5, what="the note's failure logged")
        self.swept(s)
        self.swept(s)
        self.assertEqual(len(failures()), 1, s.stderr_text()[-2000:])
        self.assertIsNone(self.noted_queue_clock())
        for event in ("INSERT", "UPDATE"):
            conn.execute("DROP TRIGGER no_note_" + event)
        wait_until(lambda: self.noted_queue_clock() is not None, 5, what="the queue clock noted")
        conn.execute(refuse.format("UPDATE"))
        wait_until(lambda: len(failures()) == 2, 5, what="the note's next failure logged")
        conn.execute("DROP TRIGGER no_note_UPDATE")
        self.stop_clean(s)

if __name__ == "__main__":
    unittest.main(verbosity=2)
