"""The dashboard's tabs sharing one event stream, in Chromium (dashboard.py; the tabs group of
dashboard_check.mjs's steps).

Eight tabs in one browser share one event stream (a Web Lock's holder reads it, a BroadcastChannel
passes it on): all load, all see a change, and when the tab that reads it closes another reads on
from the last event passed on (its request is held while a task is made and finished, which every
tab must then show); out of sight all, they let the stream go, and one shown again catches up; a tab
shown while the reading tab's question which tabs are in sight is answered (the test holds the
answer) keeps the stream. A reading tab left for another page and kept in the back/forward cache (a
browser of its own, with that cache on) lets another tab read on, and joins again when shown. A tab
joining leaves the connection state of the others as it is; a tab out of sight does not read the
queues again after a change, and does once shown. Under a name the browser does not count as a
secure context (taskd.test, resolved to 127.0.0.1 by the browser and allowed by taskd) each tab
reads its own stream and lets it go out of sight, as before. Event ids past 2^53 (a stream answered
by the test) are told apart, and one repeated is applied once. After taskd restarts on a new
database (its lists and streams answered by the test), the tab that takes the stream over, asking
from an id the new one never gave, shows the new database's tasks and changes on every tab, and the
next reading tab asks from the new ids; tabs that let their stream go out of sight meanwhile show
them too once one is shown, and a tab that joins then takes over from the new ids; so does the next
reading tab after a stream refused meanwhile (a proxy's 502) and opened again from no position; a
filter chosen as the reading tab is shown again, before its list comes, has no tab read its list
again. A tab on its second page when taskd restarts on a new database shows the first page of the
new one, and a stream that opens with taskd's reset at a lower id reads the list once for it.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard  # noqa: E402


class DashboardTabs(dashboard.BrowserChecks, unittest.TestCase):
    group = "tabs"


if __name__ == "__main__":
    unittest.main()
