"""The dashboard behind routes that answer otherwise than the rest, in Chromium (dashboard.py; the
routes group of dashboard_check.mjs's steps), each route answered by the test.

A token asked for by some routes only stops the poll of those alone: the queues and /metrics are
read on while theirs work (the first rate shows 2 s after loading, from a sample not read while
/metrics or the stream asks), neither while the stream asks, and both once a token is entered;
/metrics alone asking shows the token field and the banner with its detail, and a token entered has
the chart drawn. One that waits for a token the queues asked for reads its stream on once shown
again, and does not read the queues again after a change; a list read that fails while a token asked
for by another route is waited for is read again. Behind a proxy that refuses /metrics, /queues or
/tasks alone, with a 403 or no answer, the banner says so once, whatever the other reads answer (a
list read again, three polls, once the first refusal is said and the list shown), and goes once a
read of that route works; the /metrics sample says nothing. A list read outdated by a newer one
(held by the test) says nothing of its answer, failing late or working late; a tab back from the
back/forward cache, its stream refused before (a 403), that joins a live reading tab says nothing of
that refusal; taskd not reached, then asking for a token on the stream, has the banner ask for the
token; a look made before a token was entered, answered after (held by the test), says nothing of
it, nor does the read of why the stream was refused answered after a token was entered (the list's
401 showing the token field). A stream answered with a page that is no event stream is said
offline, not live. A task's drawer whose routes alone ask for a token shows the task once a token
is entered; one whose task's read keeps failing says so once, not again at each change of the task.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard  # noqa: E402


class DashboardRoutes(dashboard.BrowserChecks, unittest.TestCase):
    group = "routes"


if __name__ == "__main__":
    unittest.main()
