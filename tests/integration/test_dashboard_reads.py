"""The dashboard's reads refused, held or answered by the test, in Chromium (dashboard.py; the reads
group of dashboard_check.mjs's steps).

A stream refused with a 403 shows the answer's detail in the banner, and one refused with a 503 (all
of taskd's streams taken) too, until the page's next try opens one; one whose read of why goes
unanswered is said offline, and tried again; one held open and silent (a server of the test's
answers it) is said lost after a silence period of 1.5 s there, closed, and opened again from its
last event id until one answers (its next try, unanswered, given up alike), while one that hears
only pings stays live; a read of the list left unanswered is given up (after a read period of 1 s
there), said as taskd not reached, and read again; a read of the queues refused with a 503 says so
above the table, its counts dimmed, until one works; one answered after a newer one was drawn leaves
the table as the newer one drew it, and one made before a token was entered (another route asked for
one) and refused with a 401 after the read made with the token was drawn does not ask for a token
again. The task types are read again when the stream opens again after a disconnect, and a list read
that fails then is tried again until one works; a list filtered to a type taskd restarted without
(422) shows every type instead, and says that alone; a task of a type the page was not given reads
the types again, once for each such type (one read at a time), and again at its next task when that
read fails. A list refused with a 403 is read again by the poll, one read at a time (none beside one
held over three polls), and the banner goes once one is answered; one refused with a 403, then a
503, says the 503 in a toast. A read of the task types that fails (a 403) is said beside the form's
type field until one works, also when types read before are offered, which stay offered; one
answered (a 403) after a newer one worked says nothing; one refused with a 401 takes back what the
field said of an earlier failure. A read of the task types, of the task in the drawer, or of
/metrics, made before a token was entered (another route asked for one) and refused with a 401 after
the read made with the token worked does not ask for a token again, nor does a read of the drawer's
task, of the list (the token's digest held back) or a search, refused once the token is entered,
before the drawer or the list is read with it (the search is made again with it, and opens its
task); made again with the token and refused again, the search asks for a token once and is not made
again; one sent with a token taskd refused, refused after taskd learnt it and the same token was
entered again, does not ask for a token again, and opens its task. A task created without a token,
refused with a 401 once one is entered, is not sent again: the form says it was sent before the
token was entered, and to try again, and the page does not ask for a token again. A search answered
after a newer one opened its task leaves that task open. A drawer closed while its task is read
shows nothing of the answer. A tab that runs no animation frames (as out of sight) keeps no rows
that 400 new tasks (a stream answered by the test) pushed off its page.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard  # noqa: E402


class DashboardReads(dashboard.BrowserChecks, unittest.TestCase):
    group = "reads"


if __name__ == "__main__":
    unittest.main()
