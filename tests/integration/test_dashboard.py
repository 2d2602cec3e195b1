"""The dashboard at / in a real browser: Debian's chromium, headless, driven by playwright-core
(dashboard_check.mjs, one step per check, each with its own message).

taskd runs with five task types: `noop` (completes at once), `fail` (an exec handler that exits
3), `flaky` (its queue has a dead-letter queue and max_receive_count 1), `work` (an exec handler
that takes 0.3 s and prints a result) and `manual` (no queue). Before the browser starts, a
`flaky` task is made a dead letter the way it happens in life: a first taskd claims it and is
stopped while its handler still runs, so the message comes back with a receive count of 1; the
second taskd, the one the browser sees, moves it to flaky-dlq on its next receive. A `manual`
task gets markup in its data and status_msg.

The browser then creates a task from the form and sees it reach COMPLETED through /events; sends
bad input and sees the 422's items beside their fields; opens the task's detail (URL hash, trace
waterfall with the queue wait and the handler run, history); measures, in both themes, the
contrast of the durations written inside the waterfall's bars against each kind of bar (a trace
answered by the test), 4.5:1 or more; watches a task with a short ttl, its
detail open, be removed by the sweep (taskd sweeps every second, with no retention grace): the
drawer and the row say so, and so does a fresh load of the detail (a 404); sees the focus go back
to a row's link when its drawer closes, and stay on a Redrive button across a queue refresh;
cancels the confirmation dialog after a queue refresh has drawn its Redrive button anew, and sees
the focus go back to the new button; redrives the dead letter through the dialog and sees the
count drop; filters and
searches; fills the first page and sees a focused task link keep the focus when a new task reloads
the list, and, when a new task pushes the focused last row off the page, the focus go to the link
of the row now last; reads tasks/s over the real time between two /metrics samples (answered by the test), and sees two asked for in one
millisecond (the page's clock stopped) made one, the chart drawing no NaN;
on a second taskd with a bearer token, is asked for the token, refused a wrong one, and reads the tasks and the event stream with
the right one; checks the headers (CSP,
content types, ETag and 304), that markup in task data stays text, that nothing is requested
from another origin, that the console stays free of errors, the dark theme, and the banners of a
401 and of an unreachable taskd (answered by the test), and the recovery after them. A stream refused
with a 403 shows the answer's detail in the banner, and one refused with a 503 (all of taskd's streams
taken) too, until the page's next try opens one; one whose read of why goes unanswered is said
offline, and tried again; one held open and silent (a server of the test's answers it) is said lost
after a silence period of 1.5 s there, closed, and opened again from its last event id until one
answers (its next try, unanswered, given up alike), while one that hears only pings stays live;
a read of the list left unanswered is given up (after a read period
of 1 s there), said as taskd not reached, and read again; a read of the queues refused with a 503 says so above
the table, its counts dimmed, until one works. The task open in the drawer follows its changes while
the list is filtered to another type, on a tab that shares the stream and on one that reads its own, and
its entering the list's filtered status does not read the list again. A
tab that runs no animation frames (as out of sight) keeps no rows that 400 new tasks (a stream answered
by the test) pushed off its page. The 422's fields in error are marked aria-invalid and the first has
the focus; the form's result is a live region, its failure an alert. A task's data of a megabyte shows as one
text, exact and indented; a trace of 12,008 spans draws 500 rows and says how many more; a ttl
of 2^63-1 shows exact, its date as —. A status message of 4096 characters without a space wraps
inside the drawer; a right-to-left override in a status message and in data is shown, not applied, in a row's tooltip too (as [U+202E]). The same
override in a queue's name (in the table, the redrive dialog and its toast) and a span's name (the
waterfall and its tooltips) is shown as a mark, the queues and the trace answered by the test. So
is one in a task type (the row, the drawer, the filter and the form) and in an error's detail
(the banner, the drawer, the history, the trace, a failed list, the search, the form's fields and
its JSON error), taskd's answers given by the test. The
marks U+200E, U+200F and U+061C in a status message are shown as marks too: 100-200 reads as it
is written. Eight tabs in one browser share one event stream (a Web Lock's
holder reads it, a BroadcastChannel passes it on): all load, all see a change, and when the tab
that reads it closes another reads on from the last event passed on (its request is held while a
task is made and finished, which every tab must then show); out of sight all, they let the stream
go, and one shown again catches up; a tab shown while the reading tab's question which tabs are
in sight is answered (the test holds the answer) keeps the stream. An event the reading tab passed
on as it closed, which its successor had not been passed yet (the test holds it back), so that the
new stream reads it again, counts once on every tab ("N new" on the second page); what the reading
tab says of the stream shows an override as a mark. Event ids past 2^53 (a stream answered by the
test) are told apart, and one repeated is applied once. After taskd restarts on a new database (its
lists and streams answered by the test), the tab that takes the stream over, asking from an id the new
one never gave, shows the new database's tasks and changes on every tab, and the next reading tab asks
from the new ids; tabs that let their stream go out of sight meanwhile show them too once one is
shown, and a tab that joins then takes over from the new ids; so does the next reading tab after a
stream refused meanwhile (a proxy's 502) and opened again from no position; a filter chosen as the reading tab is shown
again, before its list comes, has no tab read its list again. The task types are read again when the stream opens again after a
disconnect, and a list read that fails then is tried again until one works, as is one that fails
while a token asked for by another route is waited for; a list filtered to
a type taskd restarted without (422) shows every type instead, and says that alone; a task of a type the
page was not given reads the types again, once for each such type (one read at a time), and again at its next
task when that read fails. The
connection state is a status live region, named Live updates, that a screen reader reads as a
sentence for each state (connecting, live, paused, offline, offline for a token), written only when it
differs: a stream refused again and again is not said anew at each try, and one refused with a 401 is
said once, as waiting for a token, not first as retried; the token field and its banner stay while other
reads work, until a token is entered, which reads the stream again. A token asked for by some routes only
stops the poll of those alone: the queues and /metrics are read on while theirs work (the first rate shows
2 s after loading, from a sample not read while /metrics or the stream asks), neither while the stream
asks, and both once a token is entered; /metrics alone asking shows the token field and the banner with
its detail, and a token entered has the chart drawn. Behind a proxy that refuses /metrics, /queues or
/tasks alone, with a 403 or no answer, the banner says so once, whatever the other reads answer (a list
read again, three polls, once the first refusal is said and the list shown), and goes once a read of that
route works; the /metrics sample says nothing. A list refused with a 403 is read again by the poll,
one read at a time (none beside one held over three polls), and the banner goes once one is
answered. A list read outdated by a newer one (held by the test) says nothing of its answer, failing
late or working late; a tab back from the back/forward cache, its stream refused before (a 403), that
joins a live reading tab says nothing of that refusal; taskd not reached, then asking for a token on
the stream, has the banner ask for the token; a look made before a token was entered, answered after
(held by the test), says nothing of it, nor does the read of why the stream was refused answered after a
token was entered (the list's 401 showing the token field). A read of the task types that fails (a 403)
is said beside the form's type field until one works, also when types read before are offered, which stay offered;
one answered (a 403) after a newer one worked says nothing. A
page that waits for a token reads nothing but a look at the stream, one at a time, once a retry period,
and says the detail of a later look whose first read of why was given up (a body held by the test's
server), once (counted in what it tells its group); it goes live by itself once taskd (answered by the test) asks for none; tabs that share a
stream make one look between them, by the tab that reads it (and, once it closes, by the tab that takes
over, which does not try the stream and says they wait for a token, where tabs out of sight kept saying
the stream was paused, shown again too), and go live together once taskd asks for none, the stream opened
once and staying with that tab. A tab that joins after the refusal (only the stream asking) waits for a
token too, says why in
the words of the refusal the reading tab had, and takes the stream over without trying it; one
back from the back/forward cache (the events sent by the test) after taskd stopped asking ends its wait, and
the tab that read the stream, back from it behind another, makes no look beside that tab's. No
look is made while no tab is in sight (a tab alone, under both names, or both tabs of a group), and a tab
shown has one made at once (within half a retry period) and says it waits for a token, not that it is
paused; one that waits for a token the queues asked for reads its stream on once shown again, and does not
read the queues again after a change. A tab out of
sight does not read the queues again after a change, and does once shown. A
reading tab left for another page and kept in the back/forward cache (a browser of its own, with that
cache on) lets another tab read on, and joins again when shown. Tabs share only with tabs of the same
token. Under a name the browser does not count as a secure context (taskd.test, resolved to 127.0.0.1 by
the browser and allowed by taskd) each tab reads its own stream and lets it go out of sight, as before.
The steps that wait on the page's own timers (the queues read every 5 s, a refused stream
tried again after 5 s, a stream let go after 10 s out of sight, a silent one given up after 35 s)
give it shorter periods before it loads (window.taskdPeriods): it does the same, sooner.
Screenshots: <build>/test-artifacts/dashboard-*.png.

Needs chromium and the npm tools (scripts/install-deps.sh --test); fails naming what is missing.
Set DASHBOARD_SHOTS=<dir> to also write the README's screenshots there.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Taskd, queue_table, wait_until, write_config  # noqa: E402

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_check.mjs")
NODE_TOOLS = os.path.join(harness.REPO, "scripts", "node-tools.sh")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_TIMEOUT = 720
TOKEN = "dashboard-test-token-4f9c2a"
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


@harness.local_only("the dashboard is served by taskd only")
class Dashboard(unittest.TestCase):

    def setUp(self):
        self.tools = tools_dir()
        self.tmp = tempfile.mkdtemp(prefix="taskd-dash-")
        self.db = os.path.join(self.tmp, "tasks.db")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.close(remove_tmp=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, cfg, name, env=None):
        s = Taskd(db=self.db, config=write_config(self.tmp, cfg, name), env=env, tmpdir=self.tmp)
        self.servers.append(s)
        return s

    def make_dead_letter(self):
        """A flaky task whose message comes back after a stop: the next receive dead-letters it."""
        first = self.start(config({"handler": "exec", "command": ["/bin/sleep", "30"]}), "first.json")
        tid = first.create("flaky", data={"attempt": "the first taskd stops during this run"})
        wait_until(lambda: first.task(tid)["status"] == "IN_PROGRESS", 15,
                   what="the flaky task to be claimed")
        first.send_signal(signal.SIGTERM)
        self.assertEqual(first.proc.wait(15), 0, first.stderr_text()[-3000:])
        first.kill()
        return tid

    def test_dashboard_in_chromium(self):
        flaky = self.make_dead_letter()
        # it sweeps every second, without a grace: a task's ttl removes it as soon as it passes
        # the browser also reaches it as INSECURE_HOST (dashboard_check.mjs), a name it does not
        # count as a secure context
        s = self.start(config({"handler": "noop"}, sweep={"sweep_interval": 1, "retention_grace": 0}),
                       "second.json", env={"TASKD_ALLOWED_HOSTS": INSECURE_HOST})
        wait_until(lambda: queue_table(s)["flaky"]["dead_letter_count"] == 1, 30,
                   what="the flaky task's message to reach flaky-dlq")
        self.assertEqual(s.task(flaky)["status"], "FAILED")

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

        # a second taskd, with a bearer token: the page must ask for it
        secured = Taskd(db=os.path.join(self.tmp, "secured.db"), config=write_config(self.tmp, config(
            {"handler": "noop"}), "secured.json"), env={"TASKD_TOKENS": TOKEN}, tmpdir=self.tmp)
        self.servers.append(secured)
        token_task = secured.create("noop", data={"secured": True}, headers={"Authorization": "Bearer " + TOKEN})

        artifacts = os.path.join(os.path.dirname(os.path.abspath(harness.taskd_bin())), "test-artifacts")
        args = {"base": "http://127.0.0.1:%d" % s.port, "insecure_host": INSECURE_HOST,
                "artifacts": artifacts, "xss_id": xss,
                "redrive_queue": "flaky", "showcase_id": done[-1],
                "shots": os.environ.get("DASHBOARD_SHOTS") or None,
                "token_base": "http://127.0.0.1:%d" % secured.port, "token": TOKEN, "token_task": token_task}
        env = dict(os.environ, NODE_TOOLS_DIR=self.tools, CHROMIUM=CHROMIUM)
        try:
            p = subprocess.run(["node", CHECKER, json.dumps(args)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            self.fail("the browser checks did not finish within %d s:\n%s"
                      % (BROWSER_TIMEOUT, (e.stdout or b"").decode(errors="replace")))
        out = p.stdout.decode(errors="replace")
        print(out)
        self.assertEqual(p.returncode, 0, "browser checks failed (screenshots in %s):\n%s\ntaskd:\n%s"
                         % (artifacts, out, s.stderr_text()[-2000:]))
        # what the browser did, seen from the server
        self.assertEqual(s.task(flaky)["status"], "COMPLETED", "the redriven task did not run again")
        self.assertEqual(queue_table(s)["flaky"]["dead_letter_count"], 0)


if __name__ == "__main__":
    unittest.main()
