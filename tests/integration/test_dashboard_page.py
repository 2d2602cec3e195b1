"""The dashboard's main page in Chromium (dashboard.py; the page group of dashboard_check.mjs's steps).

Before the browser starts, a `flaky` task is made a dead letter the way it happens in life: a first
taskd claims it and is stopped while its handler still runs, so the message comes back with a
receive count of 1; the second taskd, the one the browser sees, moves it to flaky-dlq on its next
receive.

The browser then creates a task from the form and sees it reach COMPLETED through /events; sends
bad input and sees the 422's items beside their fields; opens the task's detail (URL hash, trace
waterfall with the queue wait and the handler run, history); measures, in both themes, the
contrast of the durations written inside the waterfall's bars against each kind of bar (a trace
answered by the test), 4.5:1 or more; watches a task with a short ttl, its detail open, be removed
by the sweep: the drawer and the row say so, and so does a fresh load of the detail (a 404); sees
the focus go back to a row's link when its drawer closes (by its button, or by Esc, which in a field
that takes text, the search, the form's or the token's, is the field's and leaves the drawer open,
and in a closed select, which does nothing with it, closes it, the focus staying there), and
stay on a Redrive button across a queue refresh; cancels the confirmation dialog after a queue refresh has drawn its Redrive button
anew, and sees the focus go back to the new button; redrives the dead letter through the dialog and
sees the count drop, said in a toast inside one live region (#toasts; the toast is none itself); filters and searches; fills the first page and sees a focused task link keep
the focus when a new task reloads the list, and, when a new task pushes the focused last row off the
page, the focus go to the link of the row now last; reads tasks/s over the real time between two
/metrics samples (answered by the test), and sees two asked for in one millisecond (the page's clock
stopped) made one, the chart drawing no NaN, and so two a millisecond apart, no rate made of it; checks the headers (CSP, content types, ETag and 304), that
markup in task data stays text, that nothing is requested from another origin, that the console
stays free of errors, the dark theme, and the banners of a 401 and of an unreachable taskd
(answered by the test), and the recovery after them. The task open in the drawer follows its
changes while the list is filtered to another type, on a tab that shares the stream and on one that
reads its own, and its entering the list's filtered status does not read the list again; a list that
comes late is brought up to date by the stream. The 422's fields in error are marked aria-invalid
and the first has the focus; the form's result is a live region, its failure an alert, and so are
a search's error and a drawer's failed load. A task's
data of a megabyte shows as one text, exact and indented; a trace of 12,008 spans draws 500 rows and
says how many more; a ttl of 2^63-1 shows exact, its date as —. A status message of 4096 characters
without a space wraps inside the drawer; a right-to-left override in a status message and in data is
shown, not applied, in a row's tooltip too (as [U+202E]). The same override in a queue's name (in
the table, the redrive dialog and its toast) and a span's name (the waterfall and its tooltips) is
shown as a mark, the queues and the trace answered by the test. So is one in a task type (the row,
the drawer, the filter and the form) and in an error's detail (the banner, the drawer, the history,
the trace, a failed list, the search, the form's fields and its JSON error), taskd's answers given
by the test. The marks U+200E, U+200F and U+061C in a status message are shown as marks too: 100-200
reads as it is written. An event the reading tab of a shared stream passed on as it closed, which
its successor had not been passed yet (the test holds it back), so that the new stream reads it
again, counts once on every tab ("N new" on the second page, past the page filled above); what the
reading tab says of the stream shows an override as a mark.
"""

import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard  # noqa: E402
from harness import queue_table, wait_until  # noqa: E402


class DashboardPage(dashboard.BrowserChecks, unittest.TestCase):
    group = "page"

    def before_start(self):
        """A flaky task whose message comes back after a stop: the next receive dead-letters it."""
        first = self.start(dashboard.config({"handler": "exec", "command": ["/bin/sleep", "30"]}),
                           "first.json")
        self.flaky = first.create("flaky", data={"attempt": "the first taskd stops during this run"})
        wait_until(lambda: first.task(self.flaky)["status"] == "IN_PROGRESS", 15,
                   what="the flaky task to be claimed")
        first.send_signal(signal.SIGTERM)
        self.assertEqual(first.proc.wait(15), 0, first.stderr_text()[-3000:])
        first.kill()

    def prepare(self, s):
        wait_until(lambda: queue_table(s)["flaky"]["dead_letter_count"] == 1, 30,
                   what="the flaky task's message to reach flaky-dlq")
        self.assertEqual(s.task(self.flaky)["status"], "FAILED")
        return {"redrive_queue": "flaky", "shots": os.environ.get("DASHBOARD_SHOTS") or None}

    def check_after(self, s):
        self.assertEqual(s.task(self.flaky)["status"], "COMPLETED", "the redriven task did not run again")
        self.assertEqual(queue_table(s)["flaky"]["dead_letter_count"], 0)


if __name__ == "__main__":
    unittest.main()
