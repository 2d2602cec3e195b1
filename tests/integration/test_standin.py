"""The stand-ins' life cycle (tests/lambda/standin.py), with a small HTTP server as the stand-in:
a child started with die_with_starter() dies with its killed starter, and CTest's fixture (the
setup `MODULE.py start DIR`, the cleanup `MODULE.py stop DIR`, the keeper between) gives each
CTest run its own stand-in, which a stop or the run's end (CTest killed) ends, leaving nothing
in DIR. A driver process plays CTest: the fixture tells runs apart by the id of its parent. A
port another server took before the program bound it is not taken for the stand-in, and one a
client connection holds is left at once. Needs
neither DynamoDB Local, fauxqs nor a C build."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, wait_until  # noqa: E402

LAMBDA_DIR = os.path.join(REPO, "tests", "lambda")
GONE_WITHIN = 10.0  # the keeper looks every 0.2 s; a stop takes a terminate and a wait

# the stand-in and its fixture's module: `echo.py start|stop DIR` as CTest runs them, and
# `echo.py where`, a test of the fixture asking for the run's endpoint
STANDIN = textwrap.dedent("""\
    import os, socket, sys
    sys.path.insert(0, %r)
    import standin

    class Echo(standin.StandIn):
        name = "echo"
        fixture = "echo"
        fixture_variable = "ECHO_FIXTURE"

        def command(self, port):
            return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], None, None

        def ready(self):
            try:
                socket.create_connection(("127.0.0.1", int(self.endpoint.rpartition(":")[2])), 1).close()
                return True
            except OSError:
                return False

    if __name__ == "__main__":
        if sys.argv[1:] == ["where"]:
            print(standin.fixture_endpoint(Echo))
            sys.exit(0)
        sys.exit(standin.fixture_main(Echo, __file__, sys.argv[1:]))
    """) % LAMBDA_DIR

# plays CTest: runs each line of its input as `echo.py ARGS` (its child), answers [rc, out, err]
DRIVER = textwrap.dedent("""\
    import json, signal, subprocess, sys
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as CTest's: a SIGINT ends it
    for line in sys.stdin:
        p = subprocess.run([sys.executable, "-B", sys.argv[1]] + line.split(), capture_output=True, text=True)
        print(json.dumps([p.returncode, p.stdout.strip(), p.stderr.strip()]), flush=True)
    """)


def alive(pid):
    """False once pid has ended (a zombie not yet reaped has ended too)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def answers(endpoint):
    try:
        socket.create_connection(("127.0.0.1", int(endpoint.rpartition(":")[2])), 2).close()
        return True
    except OSError:
        return False


class Run:
    """One CTest run (the driver process) using the fixture folder."""

    def __init__(self, script, folder):
        env = dict(os.environ, ECHO_FIXTURE=folder)
        self.proc = subprocess.Popen([sys.executable, "-B", "-c", DRIVER, script], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.folder = folder

    def run(self, *args):
        self.proc.stdin.write(" ".join(args) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, test):
        rc, out, err = self.run("start", self.folder)
        test.assertEqual(rc, 0, err)
        rc, endpoint, err = self.run("where")
        test.assertEqual(rc, 0, err)
        test.assertTrue(answers(endpoint), endpoint)
        return endpoint

    def end(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()


class Fixture(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="taskd-standin-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.script = os.path.join(self.tmp, "echo.py")
        with open(self.script, "w", encoding="utf-8") as f:
            f.write(STANDIN)
        self.folder = os.path.join(self.tmp, "fixtures")

    def new_run(self):
        r = Run(self.script, self.folder)
        self.addCleanup(r.end)
        return r

    def assertEnded(self, endpoint, what):
        wait_until(lambda: not answers(endpoint), GONE_WITHIN, what="the stand-in of %s ended" % what)

    def test_each_run_has_its_own_and_a_stop_ends_only_its_own(self):
        one, two = self.new_run(), self.new_run()
        first, second = one.start(self), two.start(self)
        self.assertNotEqual(first, second)
        self.assertEqual(sorted(os.listdir(self.folder)),
                         sorted(["echo.%d" % one.proc.pid, "echo.%d" % two.proc.pid]))
        self.assertEqual(one.run("stop", self.folder)[0], 0)
        self.assertEnded(first, "the run stopped")
        self.assertTrue(answers(second), "the other run's stand-in was stopped too")
        self.assertEqual(os.listdir(self.folder), ["echo.%d" % two.proc.pid])
        rc, _, err = one.run("stop", self.folder)  # a second stop: nothing of its run is left
        self.assertEqual(rc, 1)
        self.assertIn("no echo to stop", err)
        self.assertEqual(two.run("stop", self.folder)[0], 0)
        self.assertEnded(second, "the second run")
        wait_until(lambda: not os.listdir(self.folder), GONE_WITHIN, what="the fixture folder empty")

    def test_a_killed_run_leaves_nothing_running_and_no_file(self):
        for sig in (signal.SIGKILL, signal.SIGINT):
            with self.subTest(signal=sig.name):
                r = self.new_run()
                endpoint = r.start(self)
                os.kill(r.proc.pid, sig)
                # not reaped yet, as by a parent busy elsewhere: a zombie has ended all the same
                wait_until(lambda: not alive(r.proc.pid), GONE_WITHIN, what="the run ended")
                self.assertEnded(endpoint, "a run killed with %s" % sig.name)
                r.proc.wait(10)
                wait_until(lambda: not os.listdir(self.folder), GONE_WITHIN,
                           what="the fixture folder empty after %s: %s" % (sig.name, os.listdir(self.folder)))

    def test_outside_the_fixture_there_is_no_endpoint(self):
        env = {k: v for k, v in os.environ.items() if k != "ECHO_FIXTURE"}
        p = subprocess.run([sys.executable, "-B", self.script, "where"], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "None"), p.stderr)


# a server on port argv[1] that accepts and closes; when the port is taken it stays, as a JVM
# whose bind failed does (its other threads keep it)
SERVER_OR_STAY = textwrap.dedent("""\
    import socket, sys, time
    try:
        s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        time.sleep(600)
        sys.exit(1)
    while True:
        s.accept()[0].close()
    """)


def staying_echo():
    """(the standin module, a StandIn running SERVER_OR_STAY, ready once its port answers)."""
    sys.path.insert(0, LAMBDA_DIR)
    import standin

    class Echo(standin.StandIn):
        name = "echo"

        def command(self, port):
            return [sys.executable, "-c", SERVER_OR_STAY, str(port)], None, None

        def ready(self):
            return answers(self.endpoint)

    return standin, Echo


class PortTaken(unittest.TestCase):
    def test_a_port_another_server_took_is_not_taken_for_the_stand_in(self):
        # The port picked first is another server's by the time the program binds it: that one
        # answers too, but the stand-in is the program started, on the next port picked, at
        # once, though the program whose bind failed stays, as a JVM does.
        standin, Echo = staying_echo()
        other = socket.create_server(("127.0.0.1", 0))
        taken = other.getsockname()[1]
        picks = [taken]
        real = standin.free_port
        standin.free_port = lambda: picks.pop() if picks else real()
        echo = Echo()
        try:
            t0 = time.monotonic()
            echo.start(timeout=60)
            self.assertLess(time.monotonic() - t0, 30, "the start waited for a program whose bind failed")
            port = int(echo.endpoint.rpartition(":")[2])
            self.assertNotEqual(port, taken, "the stand-in's endpoint is the port another server holds")
            self.assertTrue(standin.listens(echo.proc.pid, port))
            self.assertIsNone(echo.proc.poll())
        finally:
            standin.free_port = real
            echo.stop()
            other.close()


    def test_a_port_a_connection_holds_is_left_at_once(self):
        # The port picked is the local port of another's client connection by the time the
        # program binds it: the bind fails, the program stays, as a JVM does, and nothing answers
        # there. The start leaves it at once for the next port picked, and a port given (no other
        # to pick) fails at once, saying what holds it, where each waited for the deadline.
        standin, Echo = staying_echo()
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname())
        accepted = server.accept()[0]
        held = client.getsockname()[1]
        picks = [held]
        real = standin.free_port
        standin.free_port = lambda: picks.pop() if picks else real()
        echo, given = Echo(), Echo(port=held)
        try:
            t0 = time.monotonic()
            echo.start(timeout=60)
            self.assertLess(time.monotonic() - t0, 30, "the start waited for a program whose bind failed")
            self.assertNotEqual(int(echo.endpoint.rpartition(":")[2]), held)
            self.assertTrue(standin.listens(echo.proc.pid, int(echo.endpoint.rpartition(":")[2])))
            t0 = time.monotonic()
            with self.assertRaises(RuntimeError) as caught:
                given.start(timeout=60)
            self.assertLess(time.monotonic() - t0, 30, "the start on a given port waited for the deadline")
            self.assertIn("port %d: a connection holds it (ESTABLISHED, 127.0.0.1:%d to 127.0.0.1:%d), "
                          "not a listener" % (held, held, server.getsockname()[1]), str(caught.exception))
            self.assertIn("the port was given", str(caught.exception))
            self.assertIsNotNone(given.proc.poll(), "the program whose bind failed was left running")
        finally:
            standin.free_port = real
            echo.stop()
            given.stop()
            for s in (client, accepted, server):
                s.close()


class DieWithStarter(unittest.TestCase):
    def test_a_child_dies_with_its_killed_starter(self):
        starter = subprocess.Popen(
            [sys.executable, "-B", "-c",
             "import subprocess, sys, time; sys.path.insert(0, %r); import standin\n"
             "p = subprocess.Popen(['sleep', '600'], preexec_fn=standin.die_with_starter)\n"
             "print(p.pid, flush=True); time.sleep(600)" % LAMBDA_DIR],
            stdout=subprocess.PIPE, text=True)
        child = int(starter.stdout.readline())
        try:
            self.assertTrue(alive(child))
            starter.kill()
            starter.wait(10)
            wait_until(lambda: not alive(child), GONE_WITHIN, what="the child of a killed starter ended")
        finally:
            if alive(child):
                os.kill(child, signal.SIGKILL)
            starter.stdout.close()


if __name__ == "__main__":
    unittest.main()
