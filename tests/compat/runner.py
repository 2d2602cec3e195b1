"""Run the corpus against a server, and the original's oracle process.

Python 3 standard library only (the oracle itself runs under Debian's Python, see
oracle.py). Every request goes on a fresh connection (``Connection: close``) and is written
by a helper thread while the answer is read, so a server that answers a large body early
(413) and stops reading cannot stall the run.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
from harness import parse_response_headers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ORACLE = os.path.join(HERE, "oracle.py")
DEFAULT_ORACLE_PYTHON = "/usr/bin/python3"
REQUEST_TIMEOUT = 15.0
ORACLE_START_TIMEOUT = 30.0


class CorpusError(Exception):
    """The corpus could not be run as written (a variable could not be saved or used)."""


class OracleError(Exception):
    """The original could not be started."""


def original_dir():
    """$TASKD_ORIGINAL_API, else <repo>/../shared/seed/original-api."""
    return os.environ.get("TASKD_ORIGINAL_API") or \
        os.path.normpath(os.path.join(REPO, "..", "shared", "seed", "original-api"))


def require_original():
    """The original's folder; raises OracleError naming what is missing."""
    folder = original_dir()
    missing = [f for f in ("__init__.py", "models.py", "dynamo.py")
               if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise OracleError("the original API is not at %s (missing %s); it is the compatibility "
                          "suite's oracle: restore it or point TASKD_ORIGINAL_API at it"
                          % (folder, ", ".join(missing)))
    return folder


# -- HTTP -----------------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body, error=None):
        self.status = status  # int, or None when the server gave no answer
        self.headers = headers  # [(lower-case name, value)]
        self.body = body
        self.error = error

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self):
        return "<Answer %s %r>" % (self.status, self.body[:300])


def _parse(data, method):
    parsed = parse_response_headers(data, method)
    return parsed and Answer(*parsed)


def exchange(host, port, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
    """One request on a fresh connection; returns an Answer (status None: no answer)."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (host, port), "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        return Answer(None, [], b"", error="connect: %s" % e)
    received = b""
    try:
        sock.settimeout(timeout)

        def send():
            try:
                sock.sendall(payload)
            except OSError:
                pass
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        sender.join(1)
    finally:
        sock.close()
    answer = _parse(received, method)
    if answer is None:
        return Answer(None, [], b"", error="no complete answer (%d bytes)" % len(received))
    return answer


# -- running the corpus --------------------------------------------------------------------

_VAR_RE = re.compile(r"\{(\w+)\}")


def render_path(step, variables):
    if callable(step.path):
        try:
            return step.path(variables)
        except KeyError as e:
            raise CorpusError("step %s: variable %s is not set" % (step.name, e))

    def sub(m):
        name = m.group(1)
        if name not in variables:
            raise CorpusError("step %s: variable {%s} is not set" % (step.name, name))
        return quote(variables[name], safe="")
    return _VAR_RE.sub(sub, step.path)


def run(steps, host, port, label):
    """Run every step in order; returns [(step, Answer)] and the variables saved."""
    variables = {}
    out = []
    for step in steps:
        path = render_path(step, variables)
        headers = dict(step.headers)
        if step.content_type() is not None:
            headers["Content-Type"] = step.content_type()
        answer = exchange(host, port, step.method, path, step.body_bytes(), headers)
        out.append((step, answer))
        for var, key in step.save.items():
            try:
                value = json.loads(answer.body.decode("utf-8"))[key]
            except (ValueError, KeyError, TypeError):
                value = None
            if not isinstance(value, str):
                raise CorpusError("step %s: %s answered %r; cannot save %r from its %r"
                                  % (step.name, label, answer, var, key))
            variables[var] = value
    return out, variables


# -- the oracle ----------------------------------------------------------------------------

class Oracle:
    """The original API under uvicorn, started with Debian's Python (oracle.py)."""

    def __init__(self, python=None, timeout=ORACLE_START_TIMEOUT):
        folder = require_original()
        python = python or os.environ.get("TASKD_ORACLE_PYTHON") or DEFAULT_ORACLE_PYTHON
        if not os.access(python, os.X_OK):
            raise OracleError("%s not found: the oracle runs on Debian's Python with "
                              "python3-fastapi, python3-uvicorn and python3-pydantic "
                              "(scripts/install-deps.sh --test)" % python)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "AWS_", "TASKD_"))}
        env.update({"PYTHONHASHSEED": "0", "TABLE_NAME": "taskd-compat",
                    "PYTHONDONTWRITEBYTECODE": "1"})
        self.stderr_lines = []
        self.proc = subprocess.Popen([python, "-B", ORACLE, "--original", folder], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=HERE)
        self._err = threading.Thread(target=self._drain, daemon=True)
        self._err.start()
        first = []
        reader = threading.Thread(target=lambda: first.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        line = first[0] if first else b""
        try:
            address = json.loads(line.decode("utf-8"))["listening"]
        except (ValueError, KeyError, TypeError):
            self.close()
            raise OracleError("the original did not start (%s %s); stderr:\n%s"
                              % (python, ORACLE, self.stderr_text()[-4000:]))
        self.host, _, port = address.rpartition(":")
        self.port = int(port)
        deadline = time.monotonic() + timeout
        while True:
            probe = exchange(self.host, self.port, "GET", "/", timeout=2)
            if probe.status == 200:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise OracleError("the original does not answer GET / (%r); stderr:\n%s"
                                  % (probe, self.stderr_text()[-4000:]))
            time.sleep(0.05)

    def _drain(self):
        try:
            for raw in self.proc.stderr:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def stderr_text(self):
        return "\n".join(self.stderr_lines)

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.join(5)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        return self.proc.returncode
