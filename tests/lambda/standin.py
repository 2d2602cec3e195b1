"""A stand-in server process for the offline AWS tests (DynamoDB Local, fauxqs).

StandIn starts a program on a free 127.0.0.1 port, waits until it answers, keeps
its output for error messages, and stops it (terminate, then kill). A port can be
taken by someone else between choosing it and the program binding it (a JVM takes
seconds to bind), so the program must be the one listening there, not merely
something that answers; a port another process's socket holds while nothing answers
(a client connection whose ephemeral port it is) is left at once, not waited on to the
deadline; and a start is tried three times, on a port given once. From the main thread
the child gets PR_SET_PDEATHSIG, so it never outlives a test process that is killed.

A subclass names itself and gives three things: the command (and environment) for
a port, and whether the endpoint answers yet.

One for a whole CTest run: a subclass that names its CTest fixture (``fixture``, as
CMakeLists.txt names it, and ``fixture_variable``, the variable the tests that require
it get its folder in) runs its module as the fixture's setup (``MODULE.py start DIR``)
and cleanup (``MODULE.py stop DIR``) through fixture_main(); a test finds the endpoint
with fixture_endpoint().
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# A JVM's first answer takes seconds on an idle machine and tens of seconds on a loaded one;
# a stand-in that never starts still fails, later.
START_TIMEOUT = 90.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sockets_on(port):
    """The TCP sockets (IPv4 and IPv6) whose local port is port: (state, local, remote, inode) of
    each, as /proc/net/tcp writes them (state "0A": listening; inode "0": of no process)."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f, None)
                for line in f:
                    fields = line.split()  # sl local_address rem_address st ... inode
                    if len(fields) > 9 and int(fields[1].rpartition(":")[2], 16) == port:
                        found.append((fields[3], fields[1], fields[2], fields[9]))
        except (OSError, ValueError):
            continue
    return found


def _socket_inodes(pid):
    """The "socket:[inode]" names of process pid's descriptors (empty when it is gone)."""
    fds = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fds)
    except OSError:
        return set()
    inodes = set()
    for fd in names:
        try:
            inodes.add(os.readlink(os.path.join(fds, fd)))
        except OSError:
            continue
    return inodes


def listens(pid, port):
    """True when process pid holds a socket listening on TCP port (any address, IPv4 or IPv6)."""
    inodes = {"socket:[%s]" % inode for state, _, _, inode in _sockets_on(port) if state == "0A"}
    return bool(inodes) and bool(inodes & _socket_inodes(pid))


_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
           "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def _address(hexed):
    """An address of /proc/net/tcp ("0100007F:1F90") as ip:port (IPv6 left in its hex)."""
    host, _, port = hexed.rpartition(":")
    if len(host) == 8:
        host = socket.inet_ntoa(bytes.fromhex(host)[::-1])
    return "%s:%d" % (host, int(port, 16))


def held_by_another(pid, port):
    """Why process pid cannot listen on TCP port, as another's socket holds it: a live socket of
    another process bound there, listening or not (a client connection whose local port it is
    makes the bind fail as a listener does, and nothing answers there). None when pid listens
    there, or no live socket but its own is there. A socket of no process (TIME_WAIT, inode 0)
    is not counted: one a server closed does not stop a bind with SO_REUSEADDR, as a stand-in's
    server makes it, and it cannot be told from a client's. A client's does stop it (its socket
    had no SO_REUSEADDR): a start on a port whose client connection closed first still waits
    for its deadline, as before."""
    found = [s for s in _sockets_on(port) if s[3] != "0"]
    if not found:
        return None
    mine = _socket_inodes(pid)
    if any(state == "0A" and "socket:[%s]" % inode in mine for state, _, _, inode in found):
        return None
    for state, local, remote, inode in found:
        if "socket:[%s]" % inode not in mine:
            if state == "0A":
                return "another program listens on %s" % _address(local)
            return "a connection holds it (%s, %s to %s), not a listener" % (
                _STATES.get(state, state), _address(local), _address(remote))
    return None


def _find_prctl():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:  # noqa: BLE001 - best effort only: the child then outlives a killed starter
        return None


# found once, here in the starter: between fork and exec a child only calls it (an import of
# ctypes and a dlopen() in every child made each start of a taskd take 100 ms more, loaded)
_prctl = _find_prctl()


def die_with_starter():
    """In a child, before its exec: die with the thread that started it, even on SIGKILL."""
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


class StandIn:
    name = "stand-in"
    ready_what = "an answer"  # for the error message: what start() waited for
    fixture = None  # the CTest fixture that runs one for the whole run (CMakeLists.txt)
    fixture_variable = None  # the variable that gives its tests the fixture's folder

    def __init__(self, port=None):
        self.port = port
        self.proc = None
        self.endpoint = None
        self._log = None

    # -- what a subclass gives -------------------------------------------------
    def command(self, port):
        """(argv, env or None for ours, cwd or None) of the program listening on port."""
        raise NotImplementedError

    def ready(self):
        """True once self.endpoint answers."""
        raise NotImplementedError

    # -- the process ---------------------------------------------------------------
    def start(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        out = ""
        for _attempt in range(3):
            port = self.port or free_port()
            argv, env, cwd = self.command(port)
            self._log = tempfile.TemporaryFile()
            # PR_SET_PDEATHSIG follows the starting thread: only from the main thread.
            pre = die_with_starter if threading.current_thread() is threading.main_thread() else None
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, preexec_fn=pre)
            self.endpoint = "http://127.0.0.1:%d" % port
            taken = None
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ready():
                    if listens(self.proc.pid, port):
                        return self
                    # another program's server answers there (another run's stand-in while
                    # this one's JVM starts): ours cannot bind the port, and a JVM whose bind
                    # failed does not exit
                    taken = "another program's server answered there"
                    break
                # nothing answers, and another's socket holds the port (a client connection
                # given it as its own ephemeral port, as free_port() picks them): ours cannot
                # bind it either, and would be waited for until the deadline
                taken = held_by_another(self.proc.pid, port)
                if taken:
                    break
                time.sleep(0.05)
            out = self.output()
            self.stop()
            if taken:
                taken = "port %d: %s" % (port, taken)
                out += "\n(%s)" % taken
            if time.monotonic() >= deadline or self.port:
                break
        if taken:
            raise RuntimeError("%s could not listen: %s; %s; output:\n%s"
                               % (self.name, taken, "the port was given" if self.port
                                  else "the last port tried", out[-3000:]))
        raise RuntimeError("%s did not give %s within %.0f s; output:\n%s"
                           % (self.name, self.ready_what, timeout, out[-3000:]))

    def output(self):
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


def environ_without(*prefixes):
    """Our environment without the variables that start with any of prefixes."""
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


class External:
    """An endpoint someone else runs (a variable names it, or the CTest run's fixture)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint.rstrip("/")

    def stop(self):
        pass


# -- one for a whole CTest run ------------------------------------------------------------------
#
# The fixture's setup runs `MODULE.py start DIR`, which leaves one stand-in running for the tests
# that require the fixture, its cleanup `MODULE.py stop DIR`. Those tests have the fixture's
# variable set to DIR and find the endpoint in DIR by the id of their parent, CTest, so that two
# runs in one build folder keep theirs apart. Each test makes tables, topics and queues of its
# own names, so no test sees another's data. A keeper process holds the instance and stops it
# with the stop, or when CTest is gone (killed, or interrupted).

def _fixture_file(cls, directory, ctest_pid):
    return os.path.join(directory, "%s.%d" % (cls.fixture, ctest_pid))


def fixture_endpoint(cls):
    """The endpoint of the CTest run's stand-in of class cls, or None outside its fixture."""
    directory = os.environ.get(cls.fixture_variable)
    if not directory:
        return None
    path = _fixture_file(cls, directory, os.getppid())
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["endpoint"]
    except (OSError, ValueError, KeyError) as e:
        raise RuntimeError("no %s of this CTest run in %s (its fixture %s): %s" % (cls.name, path, cls.fixture, e))


def _keep(cls, path, ctest_pid):
    # readable once CTest has ended, whether its parent has reaped it yet or not (a zombie's pid
    # still answers kill(pid, 0)), and never another process's that took its pid
    ctest = os.pidfd_open(ctest_pid)
    standin = cls()
    standin.start()
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"endpoint": standin.endpoint}, f)
        os.rename(path + ".tmp", path)
        while os.path.exists(path) and standin.proc.poll() is None:
            if select.select([ctest], [], [], 0.2)[0]:
                break
    finally:
        standin.stop()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def fixture_main(cls, script, argv):
    """`script start|stop DIR`: the setup and cleanup of cls's fixture (script: the module that
    calls this, run again as the keeper)."""
    if len(argv) == 3 and argv[0] == "keep":
        _keep(cls, argv[1], int(argv[2]))
        return 0
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: %s start|stop DIR (CTest's fixture %s)" % (os.path.basename(script), cls.fixture),
              file=sys.stderr)
        return 2
    ctest_pid = os.getppid()
    path = _fixture_file(cls, argv[1], ctest_pid)
    if argv[0] == "stop":
        try:
            os.unlink(path)  # the keeper's sign to stop (a JVM takes seconds: not waited for)
        except FileNotFoundError:
            print("no %s to stop: %s is gone" % (cls.name, path), file=sys.stderr)
            return 1
        return 0
    os.makedirs(argv[1], exist_ok=True)
    with tempfile.TemporaryFile() as log:
        keeper = subprocess.Popen([sys.executable, "-B", os.path.abspath(script), "keep", path, str(ctest_pid)],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        while not os.path.exists(path):
            if keeper.poll() is not None:
                log.seek(0)
                sys.stderr.write(log.read().decode("utf-8", "replace"))
                return 1
            time.sleep(0.05)
    with open(path, encoding="utf-8") as f:
        print("%s at %s for this CTest run" % (cls.name, json.load(f)["endpoint"]))
    return 0
