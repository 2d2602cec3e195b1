"""A stand-in server process for the offline AWS tests (DynamoDB Local, fauxqs).

StandIn starts a program on a free 127.0.0.1 port, waits until it answers, keeps
its output for error messages, and stops it (terminate, then kill). A port can be
taken by someone else between choosing it and the program binding it, so a start
is tried three times. From the main thread the child gets PR_SET_PDEATHSIG, so it
never outlives a test process that is killed.

A subclass names itself and gives three things: the command (and environment) for
a port, and whether the endpoint answers yet.
"""

import os
import signal
import socket
import subprocess
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


def die_with_starter():
    """In a child, before its exec: die with the thread that started it, even on SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


class StandIn:
    name = "stand-in"
    ready_what = "an answer"  # for the error message: what start() waited for

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
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ready():
                    return self
                time.sleep(0.05)
            out = self.output()
            self.stop()
            if time.monotonic() >= deadline or self.port:
                break
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
