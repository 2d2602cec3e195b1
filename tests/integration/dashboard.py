"""The dashboard at / in a real browser: Debian's chromium, headless, driven by playwright-core
(dashboard_check.mjs, one step per check, each with its own message). Its steps are in groups, each
run by a test of its own, test_dashboard_<group>.py, whose docstring says what its steps check:
BrowserChecks, here, starts taskd for them, has the group's test prepare what its steps need, and
runs them.

taskd runs with five task types: `noop` (completes at once), `fail` (an exec handler that exits
3), `flaky` (its queue has a dead-letter queue and max_receive_count 1), `work` (an exec handler
that takes 0.3 s and prints a result) and `manual` (no queue). It sweeps every second, with no
retention grace, and allows INSECURE_HOST, a name the browser resolves to 127.0.0.1 and does not
count as a secure context. Before the browser starts, it has some history: finished tasks, a
failed one, and a `manual` task with markup in its data and status_msg.

The steps that wait on the page's own timers (the queues read every 5 s, a refused stream tried
again after 5 s, a stream let go after 10 s out of sight, a silent one given up after 35 s) give it
shorter periods before it loads (window.taskdPeriods): it does the same, sooner.
Screenshots: <build>/test-artifacts/dashboard-*.png.

Needs chromium and the npm tools (scripts/install-deps.sh --test); fails naming what is missing.
Set DASHBOARD_SHOTS=<dir> to also write the README's screenshots there (the page group's steps).
"""

import json
import os
import shutil
import subprocess
import tempfile

import harness
from harness import Taskd, wait_until, write_config

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_check.mjs")
NODE_TOOLS = os.path.join(harness.REPO, "scripts", "node-tools.sh")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# a group's steps: the longest took 105 s at a load of 9-16 on two cores; CTest gives the test 600 s
BROWSER_TIMEOUT = 480
INSECURE_HOST = "taskd.test"


def config(flaky_handler, sweep=None):
    """sweep: the sweeper's settings, if not the default of no sweep during the test."""
    types = ["noop", "fail", "flaky", "work", "manual"]
    return dict({
        "task_types": types,
        "shutdown_grace": 1,
        "sweep_interval": 86400,
        "queues": [
            {"name": "noop"},
            {"name": "fail"},
            {"name": "flaky", "visibility_timeout": 10, "max_receive_count": 1,
             "dead_letter_queue": "flaky-dlq"},
            {"name": "flaky-dlq"},
            {"name": "work"},
        ],
        "subscriptions": [{"queue": q, "filter_policy": {"TaskType": [q]}}
                          for q in ("noop", "fail", "flaky", "work")],
        "handlers": [
            {"queue": "noop", "handler": "noop", "concurrency": 2},
            {"queue": "fail", "handler": "exec", "timeout": 10,
             "command": ["/bin/sh", "-c", "echo 'no such thing' >&2; exit 3"]},
            dict({"queue": "flaky", "timeout": 10}, **flaky_handler),
            {"queue": "work", "handler": "exec", "timeout": 10,
             "command": ["/bin/sh", "-c", "sleep 0.3; echo '{\"thumbnails\": 3, \"bytes\": 48213}'"]},
        ],
    }, **(sweep or {}))


def tools_dir():
    """The npm tools' folder; RuntimeError naming what is missing."""
    if not shutil.which("node"):
        raise RuntimeError("node not found: install Node.js (scripts/install-deps.sh --test does)")
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError("%s not found: apt-get install chromium (scripts/install-deps.sh --test does)"
                           % CHROMIUM)
    folder = subprocess.run([NODE_TOOLS, "dir"], stdout=subprocess.PIPE, check=True,
                            timeout=10).stdout.decode().strip()
    if not os.path.isfile(os.path.join(folder, "node_modules", "playwright-core", "package.json")):
        raise RuntimeError("playwright-core is not installed in %s: run scripts/node-tools.sh install"
                           % folder)
    return folder


def failures(out):
    """The checker's account of its failed steps: each FAIL line with the lines of its message."""
    said, keep = [], False
    for line in out.splitlines():
        keep = line.startswith("FAIL ") or (keep and line.startswith("     "))
        if keep:
            said.append(line)
    return "\n".join(said)


@harness.local_only("the dashboard is served by taskd only")
class BrowserChecks:
    """The steps of dashboard_check.mjs's group `group`, beside a taskd of their own; mixed into a
    unittest.TestCase by each test_dashboard_<group>.py, which may prepare more (prepare()) and check
    what the browser did (check_after())."""

    group = None

    def setUp(self):
        self.tools = tools_dir()
        self.tmp = tempfile.mkdtemp(prefix="taskd-dash-")
        self.db = os.path.join(self.tmp, "tasks.db")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.close(remove_tmp=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, cfg, name, env=None, db=None):
        s = Taskd(db=db or self.db, config=write_config(self.tmp, cfg, name), env=env, tmpdir=self.tmp)
        self.servers.append(s)
        return s

    def before_start(self):
        """What the group's test makes before the taskd the browser sees starts."""

    def prepare(self, s):
        """The group's own fields of the checker's arguments, made on s, the taskd the browser sees."""
        return {}

    def check_after(self, s):
        """What the browser did, seen from s."""

    def test_steps_in_chromium(self):
        self.before_start()
        # it sweeps every second, without a grace: a task's ttl removes it as soon as it passes
        s = self.start(config({"handler": "noop"}, sweep={"sweep_interval": 1, "retention_grace": 0}),
                       "taskd.json", env={"TASKD_ALLOWED_HOSTS": INSECURE_HOST})
        own = self.prepare(s)
        # some history for the page: finished, failed, and one with markup where text belongs
        done = [s.create("noop", data={"n": i}) for i in range(3)]
        done.append(s.create("work", data={"image": "s3://photos/cat.jpg", "sizes": [64, 256, 1024]}))
        failed = s.create("fail", data={"why": "exits 3"})
        payload = "<img src=x onerror=window.__xss=1>"
        xss = s.create("manual", data={"html": payload, "script": "</script><script>window.__xss=2</script>"})
        r = s.set_status(xss, "FAILED", payload)
        self.assertEqual(r.status, 204, r)
        wait_until(lambda: all(s.task(t)["status"] in ("COMPLETED", "FAILED") for t in done + [failed]),
                   15, what="the first tasks to finish")

        artifacts = os.path.join(os.path.dirname(os.path.abspath(harness.taskd_bin())), "test-artifacts")
        args = dict({"group": self.group, "base": "http://127.0.0.1:%d" % s.port,
                     "insecure_host": INSECURE_HOST, "artifacts": artifacts, "xss_id": xss,
                     "showcase_id": done[-1]}, **own)
        env = dict(os.environ, NODE_TOOLS_DIR=self.tools, CHROMIUM=CHROMIUM)
        try:
            p = subprocess.run(["node", CHECKER, json.dumps(args)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            self.fail("the %s steps did not finish within %d s; the step after the last below did not end\n"
                      "%s\n\nall steps:\n%s" % (self.group, BROWSER_TIMEOUT, failures(out), out))
        out = p.stdout.decode(errors="replace")
        # a failure's account begins with the failed steps, each with its message
        if p.returncode != 0:
            self.fail("the %s steps failed (screenshots in %s):\n%s\n\nall steps:\n%s\ntaskd:\n%s"
                      % (self.group, artifacts, failures(out) or out[-3000:], out, s.stderr_text()[-2000:]))
        print(out)
        self.check_after(s)
