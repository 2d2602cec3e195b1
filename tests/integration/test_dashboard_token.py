"""The dashboard waiting for a token, in Chromium (dashboard.py; the token group of
dashboard_check.mjs's steps).

On a second taskd with a bearer token, the page asks for the token, refuses a wrong one, and reads
the tasks and the event stream with the right one; tabs share a stream only with tabs of the same
token; a tab whose browser refuses it its storage (setItem, or sessionStorage itself, throws) sends
the token entered all the same, and asks for it again after a reload. The connection state is a
status live region, named Live updates, that a screen reader reads as a sentence for each state
(connecting, live, paused, offline, offline for a token), written only when it differs: a stream
refused again and again is not said anew at each try, and one refused with a 401 is said once, as
waiting for a token, not first as retried; the token field and its banner stay while other reads
work, until a token is entered, which reads the stream again. A page that waits for a token reads
nothing but a look at the stream, one at a time, once a retry period, and says the detail of a later
look whose first read of why was given up (a body held by the test's server), once (counted in what
it tells its group); it goes live by itself once taskd (answered by the test) asks for none; tabs
that share a stream make one look between them, by the tab that reads it (and, once it closes, by
the tab that takes over, which does not try the stream and says they wait for a token, where tabs
out of sight kept saying the stream was paused, shown again too), and go live together once taskd
asks for none, the stream opened once and staying with that tab. A tab that joins after the refusal
(only the stream asking) waits for a token too, says why in the words of the refusal the reading tab
had, and takes the stream over without trying it; one back from the back/forward cache (the events
sent by the test) after taskd stopped asking ends its wait, and the tab that read the stream, back
from it behind another, makes no look beside that tab's. No look is made while no tab is in sight (a
tab alone, under both names, or both tabs of a group), and a tab shown has one made at once (within
half a retry period) and says it waits for a token, not that it is paused.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard  # noqa: E402

TOKEN = "dashboard-test-token-4f9c2a"


class DashboardToken(dashboard.BrowserChecks, unittest.TestCase):
    group = "token"

    def prepare(self, s):
        # a second taskd, with a bearer token: the page must ask for it
        secured = self.start(dashboard.config({"handler": "noop"}), "secured.json",
                             env={"TASKD_TOKENS": TOKEN}, db=os.path.join(self.tmp, "secured.db"))
        token_task = secured.create("noop", data={"secured": True},
                                    headers={"Authorization": "Bearer " + TOKEN})
        return {"token_base": "http://127.0.0.1:%d" % secured.port, "token": TOKEN, "token_task": token_task}


if __name__ == "__main__":
    unittest.main()
