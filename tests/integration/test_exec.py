"""The exec handler end to end: a task routed to a queue whose handler runs a
program from tests/integration/scripts/ (README "Handlers in any language").

One taskd for the class; every task type is routed by an exact TaskType filter
policy to its own queue, bound to the exec handler with one script. The
containment tests (docs/design.md, "Containing `exec` runs") check process ids
the scripts write: nothing a run started may outlive it, even after a SIGKILL
of taskd.
"""

import calendar
import ctypes
import http.client
import json
import os
import resource
import signal
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServerTestCase, Taskd, kill_fixture_processes, local_only,  # noqa: E402
                     process_gone, script_path, wait_until, write_config, written_at)

# Variables in taskd's environment that no exec program may see.
SECRETS = {"AWS_SECRET_ACCESS_KEY": "it-secret-aws", "AWS_SESSION_TOKEN": "it-secret-session",
           "TASKD_TEST_TOKEN": "it-secret-taskd", "EXEC_IT_OTHER": "it-secret-other"}

FINAL = ("COMPLETED", "FAILED")

# Arguments full of shell syntax: exec must pass every one literally (no shell).
TRICKY_ARGS = ["a b", "$HOME", "${PATH}", "`id`", "$(touch {tmp}/pwned)", ";", "|", "&&",
               "*", "?", "~", "'single'", '"double"', "", "back\\slash", ">{tmp}/redirected",
               "new\nline", "#hash"]


def log_time(line):
    """A log line's timestamp ("2024-01-02T03:04:05.678Z"), in seconds since the epoch."""
    stamp = line["timestamp"]
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float(stamp[19:-1])


def set_subreaper(on):
    """Make this process a child subreaper (PR_SET_CHILD_SUBREAPER), or no longer one."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, int(on), 0, 0, 0) != 0:  # 36: PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def exec_binding(queue, command, timeout=10, concurrency=2, **limits):
    return dict({"queue": queue, "handler": "exec", "command": command, "batch_size": 1,
                 "concurrency": concurrency, "timeout": timeout}, **limits)


class ExecHandler(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="taskd-exec-")
        cls.args = [a.replace("{tmp}", cls.tmp) for a in TRICKY_ARGS]
        sh = "/bin/sh"  # scripts run via sh, so a lost exec bit in a checkout does not matter
        bindings = {
            "JSONOUT": [sh, script_path("json_result.sh")],
            "TEXTOUT": [sh, script_path("text_result.sh")],
            "FAILS": [sh, script_path("fail_exit3.sh")],
            "SLOW": [sh, script_path("sleep_forever.sh")],
            "ECHO": [sh, script_path("echo_task.sh")],
            "TRACED": [sh, script_path("print_trace.sh")],
            "ARGS": [sh, script_path("print_args.sh")] + cls.args,
            "ESCAPE": [sh, script_path("escape_session.sh"), "exit"],
            "ENVDUMP": [sh, script_path("env_dump.sh")],
            "BIGOUT": [sh, script_path("print_bytes.sh"), "1048577"],
            "LIMITS": [sh, script_path("print_limits.sh")],
            "MYLIMITS": [sh, script_path("print_limits.sh")],
        }
        limits = {"MYLIMITS": {"cpu_limit": 3, "memory_limit": 256, "open_files": 64}}
        timeouts = {"SLOW": 3, "LIMITS": 5}  # SLOW: room for the script to start under load
        cfg = {
            "task_types": sorted(bindings),
            "queues": [{"name": t.lower(), "visibility_timeout": 30, "max_receive_count": 3}
                       for t in bindings],
            "subscriptions": [{"queue": t.lower(), "filter_policy": {"TaskType": [t]}}
                              for t in bindings],
            "handlers": [exec_binding(t.lower(), cmd, timeout=timeouts.get(t, 10), **limits.get(t, {}))
                         for t, cmd in bindings.items()],
        }
        cls.config = write_config(cls.tmp, cfg)
        try:
            cls.server = Taskd(config=cls.config,
                               env=dict(SECRETS, LANG="C.UTF-8", TZ="UTC", LC_TIME="C"))
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def wait_final(self, tid, timeout=10.0):
        return wait_until(lambda: (lambda t: t if t["status"] in FINAL else None)(self.server.task(tid)),
                          timeout, what="task %s to finish" % tid)

    def logs(self):
        return self.server.stderr_text()[-3000:]

    # -- results ---------------------------------------------------------------
    def test_json_stdout_is_the_result(self):
        tid = self.server.create("JSONOUT", data={"k": 1})
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        self.assertEqual(t["status_msg"], "Task completed")
        self.assertEqual(t["result"], {"answer": 42, "ratio": 0.1, "items": [1, 2, 3],
                                       "nested": {"s": 'caf\u00e9 "quoted"', "t": True, "n": None}})
        self.assertEqual(t["data"], {"k": 1})
        self.assertIsInstance(t["updated_time"], int)
        # The raw body carries 0.1 as written, not a float re-serialisation.
        raw = self.server.get("/tasks/" + tid).body.decode("utf-8")
        self.assertNotIn("0.1000000", raw)

    def test_plain_text_stdout_is_a_json_string(self):
        tid = self.server.create("TEXTOUT")
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        self.assertIsInstance(t["result"], str, t)
        self.assertEqual(t["result"].rstrip("\n"), "hello, world: {not json}")

    def test_nonzero_exit_fails_with_stderr(self):
        tid = self.server.create("FAILS")
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "FAILED", "%r\n%s" % (t, self.logs()))
        self.assertIn("exit status 3", t["status_msg"])
        self.assertIn("fixture error: the disk is full", t["status_msg"])
        self.assertNotIn("some progress on stdout", t["status_msg"], "stdout leaked into status_msg")

    def test_timeout_kills_the_process_group(self):
        piddir = tempfile.mkdtemp(prefix="pids-", dir=self.tmp)
        started = time.monotonic()
        tid = self.server.create("SLOW", data={"dir": piddir})
        pidfile = os.path.join(piddir, "pids")
        wait_until(lambda: os.path.exists(pidfile), 10, what="the script to write its pids")
        with open(pidfile) as f:
            pids = [int(p) for p in f.read().split()]
        started_by = written_at(pidfile)
        self.assertEqual(len(pids), 2, pids)
        t = self.wait_final(tid, timeout=10)
        elapsed = time.monotonic() - started
        self.assertEqual(t["status"], "FAILED", "%r\n%s" % (t, self.logs()))
        self.assertEqual(t["status_msg"], "timed out after 3 s")
        self.assertLess(elapsed, 12, "a 3 s timeout took %.1f s to fail the task" % elapsed)
        # The script and the sleep it started (same process group) are gone.
        wait_until(lambda: all(process_gone(p, started_by) for p in pids), 5,
                   what="processes %r to be killed" % (pids,))
        self.assertFalse(os.path.exists(os.path.join(piddir, "survived")))

    def test_stdin_and_environment(self):
        data = {"text": "h\u00e9llo \"w\" \\ \n", "n": [1, 2.5, None, True], "deep": {"a": {"b": {}}}}
        tid = self.server.create("ECHO", data=data)
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        out = t["result"]
        self.assertIsInstance(out, dict, t)
        self.assertEqual(out["stdin"], {"id": tid, "task_type": "ECHO", "data": data})
        self.assertEqual(out["task_id"], tid)
        self.assertEqual(out["task_type"], "ECHO")

    def test_traceparent_from_the_request(self):
        """TRACEPARENT in the handler's environment continues the trace of the
        POST's traceparent header."""
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        tid = self.server.create("ECHO", data={}, headers={
            "traceparent": "00-%s-00f067aa0ba902b7-01" % trace_id})
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", t)
        tp = t["result"]["traceparent"]
        self.assertRegex(tp, r"^00-%s-[0-9a-f]{16}-[0-9a-f]{2}$" % trace_id,
                         "TRACEPARENT %r does not carry the request's trace id" % tp)

    def test_traceparent_new_trace(self):
        """Without a trace header the task gets a new trace; the handler still sees it."""
        tid = self.server.create("ECHO", data={})
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", t)
        tp = t["result"]["traceparent"]
        self.assertRegex(tp, r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", "TRACEPARENT %r" % tp)
        self.assertNotEqual(tp.split("-")[1], "0" * 32)

    # -- tracestate: handed on with the traceparent it came with ----------------
    TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
    TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE_ID

    def traced_env(self, tid):
        """The handler's TRACESTATE and TRACEPARENT ("(unset)" when not set)."""
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        lines = dict(line.split("=", 1) for line in t["result"].splitlines())
        return lines["tracestate"], lines["traceparent"]

    def post_lines(self, fields):
        """POST a TRACED task with these header fields, repeated names and all; its id."""
        body = json.dumps({"task_type": "TRACED"}).encode()
        c = self.server.connection()
        try:
            c.putrequest("POST", "/tasks")
            for name, value in fields + [("Content-Type", "application/json"),
                                         ("Content-Length", str(len(body)))]:
                c.putheader(name, value)
            c.endheaders(body)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        self.assertEqual(r.status, 201, data)
        return json.loads(data)["id"]

    def test_tracestate_from_the_request(self):
        """The POST's tracestate reaches the handler as TRACESTATE in its normal form, beside
        a TRACEPARENT that continues the request's trace."""
        tid = self.server.create("TRACED", headers={
            "traceparent": self.TRACEPARENT,
            "tracestate": " rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t"})
        ts, tp = self.traced_env(tid)
        self.assertEqual(ts, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        self.assertRegex(tp, r"^00-%s-[0-9a-f]{16}-01$" % self.TRACE_ID)

    def test_tracestate_on_several_lines(self):
        """Several tracestate header lines are one list, in order."""
        tid = self.post_lines([("traceparent", self.TRACEPARENT), ("tracestate", "rojo=1"),
                               ("tracestate", "congo=2, x=3")])
        self.assertEqual(self.traced_env(tid)[0], "rojo=1,congo=2,x=3")

    def test_bad_tracestate_is_dropped(self):
        """A tracestate that breaks a rule is dropped whole, the POST still succeeds, and
        the trace still continues the traceparent."""
        for bad in ["rojo=1,BAD=2", "a=1,a=2", ",".join("k%d=v" % i for i in range(33)),
                    "a=caf\u00e9"]:
            with self.subTest(tracestate=bad):
                tid = self.server.create("TRACED", headers={"traceparent": self.TRACEPARENT,
                                                            "tracestate": bad})
                ts, tp = self.traced_env(tid)
                self.assertEqual(ts, "(unset)")
                self.assertRegex(tp, r"^00-%s-" % self.TRACE_ID)

    def test_tracestate_without_traceparent_is_ignored(self):
        """Without a traceparent (or with one that does not parse, or an X-Ray header
        instead) the tracestate is not the task's: the handler sees none."""
        for headers in [{"tracestate": "rojo=1"},
                        {"traceparent": "00-%s-0000000000000000-01" % self.TRACE_ID,
                         "tracestate": "rojo=1"},
                        {"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                         "tracestate": "rojo=1"}]:
            with self.subTest(headers=headers):
                tid = self.server.create("TRACED", headers=headers)
                ts, tp = self.traced_env(tid)
                self.assertEqual(ts, "(unset)")
                self.assertNotEqual(tp, "(unset)")
                self.assertNotRegex(tp, r"^00-%s-" % self.TRACE_ID)

    def test_argv_is_passed_literally(self):
        tid = self.server.create("ARGS")
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        expected = "".join("<%s>\n" % a for a in self.args)
        self.assertIsInstance(t["result"], str, t)
        self.assertEqual(t["result"].rstrip("\n"), expected.rstrip("\n"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "pwned")), "a $(...) argument ran")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "redirected")), "a > argument redirected")

    def test_many_exec_tasks_in_parallel(self):
        ids = [self.server.create(["JSONOUT", "TEXTOUT", "FAILS", "ECHO"][i % 4], data={"i": i})
               for i in range(16)]
        for i, tid in enumerate(ids):
            t = self.wait_final(tid, timeout=20)
            want = "FAILED" if i % 4 == 2 else "COMPLETED"
            self.assertEqual(t["status"], want, t)
            if i % 4 == 3:
                self.assertEqual(t["result"]["stdin"]["data"], {"i": i})
                self.assertEqual(t["result"]["task_id"], tid)

    # -- containment, environment, limits (docs/design.md) ---------------------------
    def read_pids(self, piddir):
        """The fixture's pids, and when it wrote them (seconds after boot): a process of one of
        those pids that started later is not the fixture's (pids are reused)."""
        pidfile = os.path.join(piddir, "pids")
        wait_until(lambda: os.path.exists(pidfile), 10, what="the script to write its pids")
        with open(pidfile) as f:
            pids = [int(p) for p in f.read().split()]
        self.assertEqual(len(pids), 3, pids)
        return pids, written_at(pidfile)

    def test_normal_end_leaves_no_process(self):
        """A program that exits leaving a daemon (setsid, double fork) and a background
        process behind: both are gone once the task is COMPLETED."""
        piddir = tempfile.mkdtemp(prefix="pids-", dir=self.tmp)
        tid = self.server.create("ESCAPE", data={"dir": piddir})
        t = self.wait_final(tid)
        pids, started_by = self.read_pids(piddir)
        try:
            self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
            self.assertEqual(t["result"], {"left": 2})
            alive = [p for p in pids if not process_gone(p, started_by)]
            self.assertEqual(alive, [], "processes %r outlived their task" % alive)
        finally:
            kill_fixture_processes(pids, started_by)

    def test_run_taskd_cannot_start_comes_back(self):
        """taskd out of descriptors cannot start a program (its pipes): that is not the task's
        outcome. The task stays IN_PROGRESS, its message comes back after the visibility
        timeout, and it runs once taskd can start it."""
        tmp = tempfile.mkdtemp(prefix="nofile-", dir=self.tmp)
        cfg = {"queues": [{"name": "q", "visibility_timeout": 2, "max_receive_count": 10}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("json_result.sh")],
                                         timeout=1)]}
        s = Taskd(config=write_config(tmp, cfg, "nofile.json"))
        pid = s.proc.pid
        _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        try:
            # the connection first, accepted (answered): no descriptor is left to accept one
            c = http.client.HTTPConnection(s.host, s.port, timeout=10)
            c.request("GET", "/health")
            self.assertEqual(c.getresponse().read(), b'{"status":"ok"}')
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir("/proc/%d/fd" % pid)), hard))
            c.request("POST", "/tasks", body=json.dumps({"task_type": "TASK2"}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            self.assertEqual(r.status, 201)
            tid = json.loads(r.read())["id"]
            c.close()
            wait_until(lambda: "cannot start a task" in s.stderr_text(), 10,
                       what="the run that cannot start")
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))
            self.assertEqual(s.task(tid)["status"], "IN_PROGRESS")
            t = wait_until(lambda: (lambda t: t if t["status"] in FINAL else None)(s.task(tid)),
                           10, what="the task to run")
            self.assertEqual((t["status"], t["result"]["answer"]), ("COMPLETED", 42), t)
            # not tried again meanwhile: the message stays hidden. The delivery that ran the task
            # is the next one; it came the visibility timeout (2 s) after the run that could not
            # start, whose line is logged before the message is given back
            lines = [json.loads(l) for l in s.stderr_text().splitlines() if l.startswith("{")]
            failed = [l for l in lines if l["message"].startswith("cannot start a task")]
            again = [l for l in lines if l["message"] == "task redelivered; running it again"]
            self.assertEqual((len(failed), len(again)), (1, 1), s.stderr_text()[-3000:])
            gap = log_time(again[0]) - log_time(failed[0])
            self.assertGreaterEqual(gap, 1.99, "tried again %.3f s after it could not start" % gap)
            self.assertEqual([h["status_msg"] for h in s.history(tid)["history"]],
                             ["", "Task started", "Task started again (receive 2)", "Task completed"])
        finally:
            s.close()

    def test_sigkill_of_taskd_leaves_no_process(self):
        """SIGKILL taskd while an exec program runs, having started a daemon in a session
        of its own and a background process: none of the three survives taskd."""
        piddir = tempfile.mkdtemp(prefix="pids-", dir=self.tmp)
        cfg = {"queues": [{"name": "q", "visibility_timeout": 90}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("escape_session.sh")],
                                         timeout=60, concurrency=1)]}
        s = Taskd(config=write_config(piddir, cfg, "kill.json"))
        pids, started_by = [], 0
        try:
            s.create("TASK2", data={"dir": piddir})
            pids, started_by = self.read_pids(piddir)
            self.assertFalse(any(process_gone(p, started_by) for p in pids),
                             "a fixture process ended early")
            self.assertEqual(s.kill(), -signal.SIGKILL)
            try:
                wait_until(lambda: all(process_gone(p, started_by) for p in pids), 5,
                           what="the run's processes to end with taskd")
            except AssertionError:
                alive = [p for p in pids if not process_gone(p, started_by)]
                self.fail("processes %r (of program, daemon, background %r) outlived a SIGKILL "
                          "of taskd" % (alive, pids))
        finally:
            kill_fixture_processes(pids, started_by)
            s.close()

    def escape_server(self, piddir, name, queue, timeout, *args):
        """A taskd of its own whose one queue (settings queue) runs escape_session.sh args."""
        cfg = {"queues": [dict({"name": "q"}, **queue)], "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("escape_session.sh")]
                                         + list(args), timeout=timeout, concurrency=1)]}
        return Taskd(config=write_config(piddir, cfg, name))

    @staticmethod
    def parent_of(pid):
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])

    @local_only("the emulator is the process started, and starts bootstrap itself")
    def test_sigchld_ignored_by_taskds_parent_is_not_ignored_by_taskd(self):
        """A parent that ignores SIGCHLD (SIG_IGN, which exec keeps) starts taskd: taskd gives it
        back its default before it starts a run. It ran with it ignored, under which the kernel
        reaps each supervisor as it exits, and taskd's end signal for the run (SIGRTMIN+1, whose
        default action ends a process) then went to its pid, free, which another process may
        have taken. A run completes as it does otherwise."""
        tmp = tempfile.mkdtemp(prefix="sigchld-", dir=self.tmp)
        cfg = {"queues": [{"name": "q"}], "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("echo_task.sh")])]}
        config = write_config(tmp, cfg, "sigchld.json")
        old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        try:
            s = Taskd(config=config)
        finally:
            signal.signal(signal.SIGCHLD, old)
        try:
            tid = s.create("TASK2")
            t = self.wait_final_on(s, tid)
            with open("/proc/%d/status" % s.proc.pid) as f:
                ignored = int(f.read().split("SigIgn:")[1].split()[0], 16)
            self.assertFalse(ignored >> (signal.SIGCHLD - 1) & 1, "taskd ignores SIGCHLD")
            self.assertEqual((t["status"], t["result"]["task_id"]), ("COMPLETED", tid), t)
        finally:
            s.close()

    def test_sigkill_of_the_supervisor_ends_the_run_and_runs_it_again(self):
        """SIGKILL the process supervising a run (an operator's kill, the OOM killer): the
        program's process group goes with it, and the task, whose end nobody saw, runs again
        rather than failing for taskd's loss."""
        piddir = tempfile.mkdtemp(prefix="pids-", dir=self.tmp)
        s = self.escape_server(piddir, "supervisor.json",
                               {"visibility_timeout": 3, "max_receive_count": 3}, 3)
        pids, started_by = [], 0
        try:
            tid = s.create("TASK2", data={"dir": piddir})
            pids, started_by = self.read_pids(piddir)
            program, _, background = pids
            supervisor = self.parent_of(program)
            with open("/proc/%d/comm" % supervisor) as f:
                self.assertEqual(f.read().strip(), "exec-supervisor")
            # the second run writes both again: left, its script could read the first run's
            # escaped pid while the second run's sleeper was writing it anew (empty)
            os.remove(os.path.join(piddir, "pids"))
            os.remove(os.path.join(piddir, "escaped"))
            os.kill(supervisor, signal.SIGKILL)
            try:
                wait_until(lambda: all(process_gone(p, started_by) for p in (program, background)),
                           5, what="the program and its background process to end")
            except AssertionError:
                self.fail("the program's group outlived its supervisor: %r alive"
                          % [p for p in (program, background) if not process_gone(p, started_by)])
            again = lambda: [h["status_msg"] for h in s.history(tid)["history"]]  # noqa: E731
            wait_until(lambda: "Task started again (receive 2)" in again() or None, 10,
                       what="the task to run again\n" + s.stderr_text()[-2000:])
            task = s.task(tid)  # the task says it runs again, as its history does
            self.assertEqual((task["status"], task["status_msg"]),
                             ("IN_PROGRESS", "Task started again (receive 2)"), again())
            pids += self.read_pids(piddir)[0]  # the second run's, for the clean-up
        finally:
            kill_fixture_processes(pids, started_by)
            s.close()

    def test_a_run_whose_supervisor_always_dies_goes_to_the_dead_letter_queue(self):
        """A run whose end is never seen counts its receive: a program that kills its supervisor
        every time is not run for ever, its task ends in the dead-letter queue."""
        tmp = tempfile.mkdtemp(prefix="lost-", dir=self.tmp)
        cfg = {"queues": [{"name": "q", "visibility_timeout": 1, "max_receive_count": 2,
                           "dead_letter_queue": "q-dlq"}, {"name": "q-dlq"}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("kill_supervisor.sh")],
                                         timeout=1, concurrency=1)]}
        s = Taskd(config=write_config(tmp, cfg, "lost.json"))
        try:
            tid = s.create("TASK2")
            t = self.wait_final_on(s, tid, 15)
            self.assertEqual((t["status"], t["status_msg"]),
                             ("FAILED", "moved to dead-letter queue q-dlq after 2 receives"), t)
            lost = [o for o in s.log_json() if o.get("task_id") == tid
                    and o.get("message", "").startswith("a task's run ended unseen")]
            self.assertEqual(len(lost), 2, s.stderr_text()[-3000:])
            # back once the batch's hide ends, 6 s here (its timeout and 5 s), not after the
            # visibility timeout (1 s), as the line said
            self.assertEqual(lost[0]["message"], "a task's run ended unseen; its message comes "
                             "back once its hide ends (the handler's timeout and 5 s, or the "
                             "visibility timeout when longer)", lost[0])
        finally:
            s.close()

    def test_a_run_is_cleared_past_the_pending_signal_limit(self):
        """With no room for a queued signal's details (RLIMIT_SIGPENDING reached), taskd's end
        of a run still comes (without its sender): daemon and background process are gone."""
        piddir = tempfile.mkdtemp(prefix="pids-", dir=self.tmp)
        s = self.escape_server(piddir, "sigpending.json", {"visibility_timeout": 30}, 10, "exit")
        pids, started_by = [], 0
        try:
            _, hard = resource.prlimit(s.proc.pid, resource.RLIMIT_SIGPENDING)
            resource.prlimit(s.proc.pid, resource.RLIMIT_SIGPENDING, (0, hard))  # its runs' too
            tid = s.create("TASK2", data={"dir": piddir})
            t = self.wait_final_on(s, tid)
            pids, started_by = self.read_pids(piddir)
            self.assertEqual((t["status"], t["result"]), ("COMPLETED", {"left": 2}), t)
            alive = [p for p in pids if not process_gone(p, started_by)]
            self.assertEqual(alive, [], "processes %r outlived their run" % alive)
        finally:
            kill_fixture_processes(pids, started_by)
            s.close()

    def test_taskds_end_of_a_run_is_not_lost_to_another_sigterm(self):
        """A SIGTERM from elsewhere (a service manager, pkill) already pending at the supervisor
        when taskd ends the run (here its timeout): taskd's request is a signal of its own, so
        the two do not merge into one, and the run is cleared, daemon and all."""
        piddir = tempfile.mkdtemp(prefix="pids-", dir=self.tmp)
        s = self.escape_server(piddir, "merge.json", {"visibility_timeout": 10}, 2)
        pids, started_by = [], 0
        try:
            tid = s.create("TASK2", data={"dir": piddir})
            pids, started_by = self.read_pids(piddir)
            supervisor = self.parent_of(pids[0])
            # held stopped, so the outside SIGTERM is still pending when taskd's request comes
            os.kill(supervisor, signal.SIGSTOP)

            def stopped():
                with open("/proc/%d/stat" % supervisor) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "T" or None
            wait_until(stopped, 5, what="the supervisor to stop")  # not to take the SIGTERM first
            os.kill(supervisor, signal.SIGTERM)
            # until taskd's request is pending too (its timeout): a real-time signal, queued
            # beside the SIGTERM; at most until 3 s after the start, within the 2 s grace that
            # follows the timeout
            end_bit = 1 << (signal.SIGRTMIN + 1 - 1)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                with open("/proc/%d/status" % supervisor) as f:
                    pending = int(f.read().split("ShdPnd:")[1].split()[0], 16)
                if pending & end_bit:
                    break
                time.sleep(0.02)
            os.kill(supervisor, signal.SIGCONT)
            t = self.wait_final_on(s, tid)
            self.assertEqual((t["status"], t["status_msg"]), ("FAILED", "timed out after 2 s"), t)
            alive = [p for p in pids if not process_gone(p, started_by)]
            self.assertEqual(alive, [], "processes %r (of program, daemon, background %r) outlived "
                             "their run" % (alive, pids))
        finally:
            kill_fixture_processes(pids, started_by)
            s.close()

    @staticmethod
    def state_of(pid):
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def stopper_server(self, tmp, name, db=None):
        """A taskd of its own whose one queue runs stop_supervisor.sh (timeout and visibility
        timeout 5 s: a lost run's task runs again at most 5 s after its start)."""
        cfg = {"queues": [{"name": "q", "visibility_timeout": 5, "max_receive_count": 3}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("stop_supervisor.sh")],
                                         timeout=5, concurrency=1)]}
        return Taskd(db=db, config=write_config(tmp, cfg, name), tmpdir=tmp)

    def stopped_run(self, tmp):
        """The pids stop_supervisor.sh wrote (program, supervisor, sleeper) once its supervisor is
        stopped, and when it wrote them."""
        pidfile = os.path.join(tmp, "pids")
        wait_until(lambda: os.path.exists(pidfile), 10, what="the program to stop its supervisor")
        with open(pidfile) as f:
            pids = [int(p) for p in f.read().split()]
        wait_until(lambda: self.state_of(pids[1]) == "T" or None, 5,
                   what="the supervisor to stop")
        return pids, written_at(pidfile)

    @staticmethod
    def hold_once_ended(pid, seconds):
        """Trace pid, a process of a run (PTRACE_SEIZE, which does not stop it; the calling thread
        is its tracer, and must live on), and reap it, from a thread of its own, seconds after it
        ends: a zombie traced is its tracer's to wait for first, so until then the supervisor that
        killed it cannot reap it, and goes on clearing its run, as one whose last process is slow
        to die. Only SIGKILL may reach pid: another signal would stop it for its tracer, and
        this thread would take that stop for its end. Raises OSError when pid cannot be traced."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(0x4206, pid, None, None) != 0:  # 0x4206: PTRACE_SEIZE
            raise OSError(ctypes.get_errno(), "ptrace(PTRACE_SEIZE)")

        def hold():
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            time.sleep(seconds)
            os.waitpid(pid, 0)
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        return holder

    def test_a_run_whose_supervisor_was_stopped_when_taskd_died_ends_at_the_next_start(self):
        """SIGKILL taskd while the program of a run has stopped its supervisor, leaving a sleep in
        its process group. Re-parented to init, or to a subreaper of another session, the
        supervisor would be continued by the kernel (its process group, orphaned, has a stopped
        member: SIGHUP, SIGCONT); re-parented to a subreaper of taskd's session (a container's
        init that starts taskd again; this process here), it stays stopped, its parent-death
        signal pending, and the program and its sleep run on. The next taskd to start continues
        it, and it ends the run; the task, whose end nobody saw, runs again, only once that run
        has ended: the task made visible at once, and the supervisor held in its clearing for
        0.5 s once it has killed the sleep, which this process traces (as one slow to clear its
        run, within the 2 s grace), the next run finds it ended."""
        tmp = tempfile.mkdtemp(prefix="orphan-", dir=self.tmp)
        s = self.stopper_server(tmp, "orphan.json")
        pids, started_by = [], 0
        holder = adopted = None
        try:
            tid = s.create("TASK2", data={"dir": tmp})
            pids, started_by = self.stopped_run(tmp)
            program, supervisor, sleeper = pids
            set_subreaper(True)
            self.assertEqual(s.kill(), -signal.SIGKILL)
            set_subreaper(False)
            self.assertEqual(self.parent_of(supervisor), os.getpid())
            adopted = supervisor  # this process's to reap
            untraced = None
            try:  # before the look below: a supervisor continued since may have killed the sleep
                holder = self.hold_once_ended(sleeper, 0.5)
            except OSError as e:
                untraced = e
            if self.state_of(supervisor) != "T":  # any taskd that starts here continues it
                self.skipTest("a taskd started elsewhere on this machine continued the supervisor")
            if untraced:
                self.skipTest("this process may not trace the sleep (kernel.yama.ptrace_scope, "
                              "or a container's seccomp): %s" % untraced)
            self.assertEqual([p for p in pids if process_gone(p, started_by)], [])
            conn = sqlite3.connect(s.db)  # visible again now, not at the end of its timeout
            conn.execute("UPDATE messages SET visible_ms = 0 WHERE task_id = ?", (tid,))
            conn.commit()
            conn.close()
            s.close(remove_tmp=False)
            s = self.stopper_server(tmp, "again.json", db=s.db)
            # it ends once it has killed and reaped the program and the sleep (left a zombie
            # until the task has run again: its pid is not taken meanwhile)
            try:
                wait_until(lambda: os.waitid(os.P_PID, supervisor, os.WEXITED | os.WNOHANG |
                                             os.WNOWAIT), 5, what="the supervisor to end its run")
            except AssertionError:
                self.fail("processes %r (of program, supervisor, sleeper %r) outlived the next "
                          "start of taskd" % ([p for p in pids if not process_gone(p, started_by)],
                                              pids))
            self.assertEqual([p for p in (program, sleeper) if not process_gone(p, started_by)], [])
            t = self.wait_final_on(s, tid, 15)
            said = [o for o in s.log_json() if o["message"].startswith("continued the stopped")]
            if not said:  # as above, between the look and this taskd's
                self.skipTest("a taskd started elsewhere on this machine continued the supervisor")
            self.assertEqual(len(said), 1, s.stderr_text()[-3000:])
            self.assertGreaterEqual(int(said[0]["supervisors"]), 1)  # another taskd's may be too
            # waited for before the task ran again
            self.assertEqual((said[0]["not_ended"], said[0]["not_waited_for"]), ("0", "0"))
            self.assertEqual((t["status"], t["result"]),
                             ("COMPLETED", {"again": True, "first_supervisor": "Z"}), t)
            self.assertEqual([h["status_msg"] for h in s.history(tid)["history"]],
                             ["", "Task started", "Task started again (receive 2)",
                              "Task completed"])
        finally:
            set_subreaper(False)
            kill_fixture_processes(pids, started_by)
            if holder:  # done with the sleep, which the supervisor (killed, or ended) waited on
                holder.join(5)
            if adopted:  # reaped only now, traced or not
                os.waitpid(adopted, 0)
            s.close()

    def test_a_stopped_supervisor_of_a_live_taskd_is_left_alone(self):
        """A taskd that starts continues only the stopped supervisors whose taskd died: one whose
        taskd lives (another taskd on this machine, its supervisor stopped by its program here,
        by a debugger or a test elsewhere) stays stopped."""
        tmp = tempfile.mkdtemp(prefix="live-", dir=self.tmp)
        s = self.stopper_server(tmp, "live.json")
        other = None
        pids, started_by = [], 0
        try:
            s.create("TASK2", data={"dir": tmp})
            pids, started_by = self.stopped_run(tmp)
            # its end signal pending too, as after a kill of its run: only its live parent tells
            # it from an orphan
            os.kill(pids[1], signal.SIGRTMIN + 1)
            other = Taskd()  # listening: past its look for stopped supervisors
            self.assertEqual(self.state_of(pids[1]), "T")
        finally:
            if other:
                other.close()
            kill_fixture_processes(pids, started_by)  # the supervisor too: no grace to wait out
            s.close()

    def test_a_run_that_ended_by_itself_before_the_abort_is_reported(self):
        """taskd stopped (SIGTERM, no grace: the abort at once) while it still works a run whose
        program has exited by itself: the program's outcome is the task's, reported as any
        other, not given back to run again after a restart.

        taskd is held (SIGSTOP) while the program exits and its supervisor reports it, then the
        supervisor is held (so taskd, let go, is still clearing the run, 2 s before it forces
        the end) and taskd gets its SIGTERM as it goes on: the program's end is in the pipe
        before the abort, whichever of taskd's threads runs first."""
        tmp = tempfile.mkdtemp(prefix="ended-", dir=self.tmp)
        cfg = {"shutdown_grace": 0,
               "queues": [{"name": "q", "visibility_timeout": 30}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("exit_on_go.sh")],
                                         timeout=10, concurrency=1)]}
        s = Taskd(config=write_config(tmp, cfg, "ended.json"), tmpdir=tmp)
        pids, started_by = [], 0
        try:
            tid = s.create("TASK2", data={"dir": tmp})
            wait_until(lambda: os.path.exists(os.path.join(tmp, "started")), 10,
                       what="the program to start")
            s.send_signal(signal.SIGSTOP)
            wait_until(lambda: self.state_of(s.proc.pid) == "T" or None, 5,
                       what="taskd to stop")
            open(os.path.join(tmp, "go"), "w").close()
            pidfile = os.path.join(tmp, "pids")
            wait_until(lambda: os.path.exists(pidfile), 10, what="the program to end")
            with open(pidfile) as f:
                pids = [int(p) for p in f.read().split()]
            started_by = written_at(pidfile)
            program, supervisor, _ = pids
            # reaped by its supervisor, which then reported it and sleeps again (the sleeper)
            wait_until(lambda: not os.path.exists("/proc/%d" % program) or None, 10,
                       what="the supervisor to reap the program")
            wait_until(lambda: self.state_of(supervisor) == "S" or None, 10,
                       what="the supervisor to report the program's end")
            os.kill(supervisor, signal.SIGSTOP)
            wait_until(lambda: self.state_of(supervisor) == "T" or None, 5,
                       what="the supervisor to stop")
            s.send_signal(signal.SIGTERM)
            s.send_signal(signal.SIGCONT)
            self.assertEqual(s.proc.wait(20), 0)
            self.assertIn("handlers still running after the grace period; aborting them",
                          s.stderr_text())
        finally:
            s.close(remove_tmp=False)
            kill_fixture_processes(pids[1:], started_by)  # the supervisor, had taskd left it
        # a taskd without handlers shows the task as the first one left it
        cfg["handlers"] = []
        s = Taskd(db=s.db, config=write_config(tmp, cfg, "after.json"), tmpdir=tmp)
        try:
            t = s.task(tid)
            self.assertEqual((t["status"], t["status_msg"], t["result"]),
                             ("COMPLETED", "Task completed", {"ran": True}), t)
        finally:
            s.close(remove_tmp=False)

    def wait_final_on(self, s, tid, timeout=10.0):
        return wait_until(lambda: (lambda t: t if t["status"] in FINAL else None)(s.task(tid)),
                          timeout, what="task %s to finish" % tid)

    def test_environment_is_scrubbed(self):
        """Only PATH, HOME, LANG, LC_*, TZ, TMPDIR and the task's variables reach the
        program: none of the secrets in taskd's environment."""
        tid = self.server.create("ENVDUMP", data={})
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        env = dict(line.split("=", 1) for line in t["result"].splitlines() if "=" in line)
        for name, value in SECRETS.items():
            self.assertNotIn(name, env)
            self.assertNotIn(value, t["result"])
        allowed = {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "TASK_ID", "TASK_TYPE", "TRACEPARENT",
                   "TRACESTATE", "PWD"}  # PWD: sh sets it itself
        extra = sorted(n for n in env if n not in allowed and not n.startswith("LC_"))
        self.assertEqual(extra, [], "variables beyond the allow-list: %r" % extra)
        self.assertEqual((env["LANG"], env["TZ"], env["LC_TIME"]), ("C.UTF-8", "UTC", "C"))
        self.assertEqual((env["TASK_ID"], env["TASK_TYPE"]), (tid, "ENVDUMP"))
        self.assertIn("PATH", env)

    def test_output_over_the_limit_fails(self):
        tid = self.server.create("BIGOUT")
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "FAILED", "%r\n%s" % (t, self.logs()))
        self.assertEqual(t["status_msg"], "output over 1048576 bytes; not kept")
        self.assertIsNone(t["result"])

    def test_resource_limits(self):
        tid = self.server.create("LIMITS")
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        # timeout 5 s: SIGXCPU after 6 s of CPU, SIGKILL after 7; 1 GiB of data; 1024 files
        self.assertEqual(t["result"], {"cpu": "6", "cpu_hard": "7", "data_kib": "1048576",
                                       "open_files": "1024", "core": "0"})

    def test_resource_limits_configured(self):
        """cpu_limit, memory_limit (MiB) and open_files of the binding replace the defaults."""
        tid = self.server.create("MYLIMITS")
        t = self.wait_final(tid)
        self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, self.logs()))
        self.assertEqual(t["result"], {"cpu": "3", "cpu_hard": "4", "data_kib": "262144",
                                       "open_files": "64", "core": "0"})

    def test_resource_limits_below_taskds_own(self):
        """A soft limit of taskd's own lower than a run's limit (ulimit -S, LimitNOFILE= of a
        service) holds for the run: a limit is only ever lowered, soft as well as hard."""
        tmp = tempfile.mkdtemp(prefix="soft-", dir=self.tmp)
        cfg = {"queues": [{"name": "q", "visibility_timeout": 900}],
               "subscriptions": [{"queue": "q"}],
               "handlers": [exec_binding("q", ["/bin/sh", script_path("print_limits.sh")],
                                         timeout=600, concurrency=1)]}
        s = Taskd(config=write_config(tmp, cfg, "soft.json"), nofile=512)  # soft; the hard stays
        try:
            # taskd's own soft CPU limit, far above what it spends in a test (SIGXCPU at it)
            _, hard = resource.prlimit(s.proc.pid, resource.RLIMIT_CPU)
            resource.prlimit(s.proc.pid, resource.RLIMIT_CPU, (300, hard))
            t = self.wait_final_on(s, s.create("TASK2"))
            self.assertEqual(t["status"], "COMPLETED", "%r\n%s" % (t, s.stderr_text()[-3000:]))
            # the defaults 1024 files and 601 s of CPU (SIGKILL at 602) are above taskd's soft
            # limits of 512 and 300; the hard limits, above those defaults, leave them as asked
            self.assertEqual((t["result"]["open_files"], t["result"]["cpu"], t["result"]["cpu_hard"]),
                             ("512", "300", "602"), t)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
