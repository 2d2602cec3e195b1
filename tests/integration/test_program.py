"""The taskd program: flags, environment, config file, signals, logs, database locking."""

import json
import os
import re
import http.client
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, ServersTestCase, Taskd, clean_env, dies_with_test, nonempty_lines, run_taskd,  # noqa: E402
                     taskd_bin, wait_until, write_config)


class Program(ServersTestCase):
    tmp_prefix = "taskd-prog-"

    def start(self, **kw):
        kw.setdefault("tmpdir", self.tmp)
        s = Taskd(**kw)
        self.servers.append(s)
        return s

    def path(self, name):
        return os.path.join(self.tmp, name)

    def assertFailsWithOneLine(self, args, env=None, one_line=True):
        p = run_taskd(args, env=env)
        err = nonempty_lines(p.stderr)
        self.assertNotEqual(p.returncode, 0, "taskd %r exited 0; stderr: %r" % (args, p.stderr))
        self.assertGreater(p.returncode, 0, "taskd %r died of a signal: %d" % (args, p.returncode))
        self.assertTrue(err, "taskd %r failed without an error on stderr" % (args,))
        if one_line:
            self.assertEqual(len(err), 1, "expected a one-line error, got %r" % err)
        # the reason is a log line as any other: JSON, at ERROR
        reason = json.loads(err[-1])
        self.assertEqual(reason["level"], "ERROR", err)
        return err

    # -- informational flags ------------------------------------------------------------
    def test_help(self):
        p = run_taskd(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertRegex(out.lower(), r"usage")
        for flag in ("--listen", "--db", "--config", "--sync", "--threads", "--help", "--version"):
            self.assertIn(flag, out)
        # every flag of the README's usage, and every variable its table and access rules name
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            section = re.search(r"^## Running taskd\n(.*?)^Logs are", f.read(), re.S | re.M).group(1)
        names = set(re.findall(r"--[a-z][a-z-]*|\b(?:TASKD|TASK1)_[A-Z_]+|\bLOG_LEVEL\b", section))
        # the section as a whole: it names 11 flags and 12 variables
        self.assertGreaterEqual(len(names), 20, "the README's 'Running taskd' names only %s" % names)
        for name in names:
            self.assertIn(name, out, "the README names %s; --help does not" % name)
        # three columns, each at one place: the option, what it does, its variable; 80 wide
        for line in out.splitlines():
            self.assertLessEqual(len(line), 80, line)
        options = out.split("\n\n")[1].splitlines()
        columns = {m.start(1) for line in options for m in re.finditer(r"(?:^ *|  +)(\S)", line)}
        self.assertEqual(columns, {2, 23, 51}, "\n".join(options))
        # the token file's rule as taskd holds it: others may neither read nor write it
        self.assertRegex(" ".join(out.split()), r"--token-file PATH .*neither read nor write")
        # which of a flag and its variable is taken (test_flags_override_env)
        self.assertIn("A flag wins over its environment variable", out)

    def test_version(self):
        p = run_taskd(["--version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"\d+\.\d+\.\d+")

    def test_help_and_version_despite_a_malformed_variable(self):
        """A bad variable is for the start to refuse; --help and --version still answer."""
        for name, value in (("LOG_LEVEL", "bad"), ("TASKD_METRICS_PUBLIC", "bad"),
                            ("TASKD_ALLOW_UNAUTHENTICATED", "bad")):
            for flag in ("--help", "--version"):
                with self.subTest(env=name, flag=flag):
                    p = run_taskd([flag], env={name: value})
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertTrue(p.stdout.strip(), flag)
            with self.subTest(env=name):
                err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", self.path("h.db")],
                                                  env={name: value})
                self.assertIn(name, json.loads(err[-1])["message"])
        self.assertFalse(os.path.exists(self.path("h.db")))

    def test_a_malformed_flag_variable_is_told_the_words_taken(self):
        """A yes/no variable takes 1, true or yes and 0, false or no (test_auth starts with some)."""
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", self.path("one.db")],
                                          env={"TASKD_METRICS_PUBLIC": "on"})
        self.assertEqual(json.loads(err[-1])["message"],
                         "TASKD_METRICS_PUBLIC must be 1, true or yes, or 0, false or no")

    def test_two_malformed_flag_variables_are_both_named(self):
        """One start names every malformed yes/no variable, not only the last it read."""
        err = self.assertFailsWithOneLine(
            ["--listen", "127.0.0.1:0", "--db", self.path("two.db")],
            env={"TASKD_ALLOW_UNAUTHENTICATED": "maybe", "TASKD_METRICS_PUBLIC": "perhaps"})
        self.assertEqual(json.loads(err[-1])["message"],
                         "TASKD_ALLOW_UNAUTHENTICATED and TASKD_METRICS_PUBLIC must each be "
                         "1, true or yes, or 0, false or no")
        self.assertFalse(os.path.exists(self.path("two.db")))

    def test_a_malformed_yes_no_flag_is_refused_naming_it(self):
        """--metrics-public and --allow-unauthenticated take the words their variables take, or
        none (yes); another, or an empty one, refuses the start naming the flag, whatever the
        variable says."""
        for flag in ("--metrics-public", "--allow-unauthenticated"):
            for word in ("on", "", "yes please", "2"):
                with self.subTest(flag=flag, word=word):
                    err = self.assertFailsWithOneLine(
                        ["--listen", "127.0.0.1:0", "--db", self.path("f.db"), "%s=%s" % (flag, word)],
                        env={"TASKD_METRICS_PUBLIC": "1", "TASKD_ALLOW_UNAUTHENTICATED": "1"})
                    self.assertEqual(json.loads(err[-1])["message"],
                                     "%s must be 1, true or yes, or 0, false or no (alone: yes)" % flag)
        self.assertFalse(os.path.exists(self.path("f.db")))

    # -- bad command lines --------------------------------------------------------------------
    def test_bad_flag(self):
        err = self.assertFailsWithOneLine(["--bogus-flag"])
        self.assertIn("bogus", err[0])

    def test_missing_flag_value(self):
        err = self.assertFailsWithOneLine(["--db", self.path("a.db"), "--listen"])
        self.assertIn("'--listen'", json.loads(err[0])["message"])

    def test_unknown_short_options_are_named(self):
        """taskd has no short options: each is named as given, alone or in a cluster."""
        for args, named in ((["-x"], "'-x'"), (["--db", self.path("a.db"), "-xy"], "'-x'"),
                            (["-l"], "'-l'")):
            err = self.assertFailsWithOneLine(args)
            self.assertIn(named, json.loads(err[0])["message"], args)

    def test_stray_argument(self):
        self.assertFailsWithOneLine(["--db", self.path("a.db"), "--listen", "127.0.0.1:0", "extra"])

    def test_a_yes_no_word_after_its_flag_is_told_to_go_after_equals(self):
        """--metrics-public no is the flag alone (yes) and a stray 'no': the refusal says that the
        word goes after '=', where a stray word of another kind is only unexpected."""
        for flag in ("--metrics-public", "--allow-unauthenticated"):
            for word in ("no", "TRUE", "0"):
                with self.subTest(flag=flag, word=word):
                    err = self.assertFailsWithOneLine(
                        ["--listen", "127.0.0.1:0", "--db", self.path("w.db"), flag, word])
                    self.assertEqual(json.loads(err[-1])["message"],
                                     "unexpected argument '%s': %s takes its word after '=' "
                                     "(%s=%s), alone it is yes" % (word, flag, flag, word))
        err = self.assertFailsWithOneLine(
            ["--listen", "127.0.0.1:0", "--db", self.path("w.db"), "--metrics-public", "extra"])
        self.assertEqual(json.loads(err[-1])["message"], "unexpected argument 'extra' (see --help)")
        err = self.assertFailsWithOneLine(
            ["--listen", "127.0.0.1:0", "--db", self.path("w.db"), "--metrics-public=yes", "no"])
        self.assertEqual(json.loads(err[-1])["message"], "unexpected argument 'no' (see --help)")
        self.assertFalse(os.path.exists(self.path("w.db")))

    def test_bad_flag_values(self):
        for args in (["--sync", "sometimes"], ["--threads", "abc"],
                     ["--threads", "-3"], ["--listen", "not-an-address"], ["--listen", "127.0.0.1:99999"],
                     ["--listen", "127.0.0.1:abc"],
                     # a number in plain digits only: no sign or blank, as strtol would take
                     ["--listen", "127.0.0.1:+80"], ["--listen", "127.0.0.1: 80"], ["--listen", "127.0.0.1:-0"],
                     ["--listen", "127.0.0.1:"], ["--listen", "127.0.0.1:0x50"],
                     ["--threads", "+2"], ["--threads", " 2"], ["--threads", "2 "], ["--threads", "0x2"]):
            with self.subTest(args=args):
                full = ["--db", self.path("v.db"), "--listen", "127.0.0.1:0"] + args
                self.assertFailsWithOneLine(full, one_line=False)

    def test_unopenable_db(self):
        """A database in a directory that does not exist: the refusal says that taskd makes the
        file, not the directory, so that an operator knows what to create."""
        db = self.path("nonexistent-dir/x.db")
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", db])
        said = json.loads(err[-1])["message"]
        self.assertEqual(said, "cannot open %s: No such file or directory (taskd creates the "
                               "database, not its directory)" % db)

    def test_a_database_path_too_long_for_sqlite_is_refused_whole(self):
        """SQLite opens no database whose full path is longer than 504 bytes (its Unix VFS's 512,
        less room for "-journal"): such a path is refused as too long, before any file is made,
        and named in whole characters; a path of 504 bytes is served."""
        def under(limit):  # a path of limit bytes in folders of two-byte characters
            d = os.path.realpath(self.tmp)
            while limit - len((d + "/" + "é" * 100).encode()) > 10:
                d = os.path.join(d, "é" * 100)
                os.makedirs(d, exist_ok=True)
            return os.path.join(d, "t" * (limit - len(d.encode()) - 1))
        fits = under(504)
        self.assertEqual(len(fits.encode()), 504)
        self.stop_clean(self.start(db=fits))
        for long in (fits + "x", under(620)):
            with self.subTest(bytes=len(long.encode())):
                err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", long])
                said = json.loads(err[-1])["message"]
                head = "the database path is too long: %d bytes as a full path, where SQLite " \
                       "takes at most 504: " % len(long.encode())
                self.assertTrue(said.startswith(head), said)
                named = said[len(head):]  # the path, or as much of it as the line holds, cut
                self.assertTrue(named == long or (named.endswith("...") and
                                                  long.startswith(named[:-3])), said)
                self.assertGreater(len(named), 100, said)
                self.assertFalse(os.path.exists(long), "taskd made the file of a path it refused")

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root, to run taskd as another user, and setpriv")
    def test_a_directory_taskd_cannot_write_in_is_named(self):
        """A writable database file in a directory taskd may not create files in: SQLite's -wal
        and -shm cannot be made, which is said as such, not as a read-only database."""
        d = self.path("ro")
        os.mkdir(d, 0o755)  # root's: another user may not create files in it
        db = os.path.join(d, "x.db")
        self.start(db=db).stop()
        os.chmod(db, 0o666)
        for leftover in (db + "-wal", db + "-shm"):
            if os.path.exists(leftover):
                os.remove(leftover)
        os.chmod(self.tmp, 0o755)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            taskd_bin(), "--db", db, "--listen", "127.0.0.1:0"],
                           env=clean_env(None), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=15)
        self.assertEqual(p.returncode, 2, p.stderr)
        said = json.loads(nonempty_lines(p.stderr)[-1])["message"]
        self.assertEqual(said, "cannot create files beside %s: Permission denied (SQLite keeps the "
                               "database's -wal and -shm files in its directory)" % db)

    def test_db_is_not_sqlite(self):
        bad = self.path("garbage.db")
        with open(bad, "wb") as f:
            f.write(b"this is not an SQLite database at all\n" * 200)
        self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", bad], one_line=False)
        with open(bad, "rb") as f:
            self.assertTrue(f.read().startswith(b"this is not"), "taskd overwrote a foreign file")

    def test_another_programs_database_is_refused_untouched(self):
        """An SQLite file taskd did not make is refused before a byte of it changes, whether or
        not its program keeps a schema version of its own."""
        for version in (0, 3):
            other = self.path("app%d.db" % version)
            c = sqlite3.connect(other)
            c.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
                            "CREATE INDEX users_by_name ON users (name);"
                            "INSERT INTO users (name) VALUES ('ada');"
                            "PRAGMA user_version = %d;" % version)
            c.close()
            with open(other, "rb") as f:
                before = f.read()
            err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", other], one_line=False)
            self.assertEqual(json.loads(err[-1])["message"],
                             "%s is not a taskd database: it holds another program's schema "
                             "(users, users_by_name); give taskd a file of its own" % other)
            with open(other, "rb") as f:
                self.assertEqual(f.read(), before, "taskd changed a database it refused")
            self.assertEqual([n for n in os.listdir(self.tmp) if n.startswith("app%d.db" % version)],
                             ["app%d.db" % version])
        # a version of another program's, and no tables at all: not taskd's either
        bare = self.path("bare.db")
        sqlite3.connect(bare).execute("PRAGMA user_version = 5").connection.close()
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", bare], one_line=False)
        self.assertEqual(json.loads(err[-1])["message"],
                         "%s is not a taskd database: schema version 5, and no tables" % bare)
        # an SQLite file with no schema at all is a new database, as an empty file is
        empty = self.path("empty.db")
        sqlite3.connect(empty).execute("PRAGMA user_version = 0").connection.close()
        s = self.start(db=empty)
        self.assertEqual(s.get("/health").status, 200)
        self.stop_clean(s)

    def test_a_database_a_newer_taskd_migrated_is_refused(self):
        db = self.path("newer.db")
        s = self.start(db=db)
        self.stop_clean(s)
        c = sqlite3.connect(db)
        known = c.execute("PRAGMA user_version").fetchone()[0]
        c.execute("PRAGMA user_version = %d" % (known + 1))
        c.close()
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", db], one_line=False)
        self.assertEqual(json.loads(err[-1])["message"], "%s has schema version %d; this taskd knows up "
                         "to %d" % (db, known + 1, known))

    def test_bad_otel_environment_creates_no_database(self):
        db = self.path("otel.db")
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", db],
                                          env={"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector:4318"})
        self.assertIn("OTEL_EXPORTER_OTLP_ENDPOINT", err[0])
        self.assertFalse(os.path.exists(db), "a refused start left %s behind" % db)

    def test_port_in_use(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        try:
            port = sock.getsockname()[1]
            for attempt in range(3):  # a crash on this path can be timing-dependent
                with self.subTest(attempt=attempt):
                    err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:%d" % port,
                                                       "--db", self.path("p%d.db" % attempt)],
                                                      one_line=False)
                    # the system's reason, not a guess among reasons
                    self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port,
                                  json.loads(err[-1])["message"])
        finally:
            sock.close()

    def test_second_taskd_on_a_served_port_fails(self):
        # Another taskd (with another database) must not share the port and take part of the
        # traffic: creates would land in one database and reads miss them in the other.
        first = self.start()
        port = first.address.rsplit(":", 1)[1]
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:%s" % port, "--db", self.path("other.db")],
                                          one_line=False)
        self.assertIn("cannot listen on 127.0.0.1:%s" % port, err[-1])
        r = first.post("/tasks", {"task_type": "TASK2"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(first.get("/tasks/" + r.json()["id"]).status, 200)

    def test_closed_standard_descriptors_stay_taskds_own(self):
        """Started with standard error closed (`2>&-`, a launcher that closes it), or all three
        standard descriptors, taskd must not give them to files of its own: its log lines would
        go there, and the first file it opens is the database's lock, the database."""
        first = self.start(db=self.path("closed.db"))  # a database of tasks, then restarts
        first.create("TASK2")
        self.stop_clean(first)
        db = first.db
        for n, closed in enumerate([(2,), (0, 1, 2)]):
            with self.subTest(closed=closed):
                self.run_with_closed(db, closed)
                with open(db, "rb") as f:
                    self.assertEqual(f.read(16), b"SQLite format 3\x00")
                with sqlite3.connect(db) as conn:
                    count = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
                self.assertEqual(count, 2 + n)

    def run_with_closed(self, db, closed):
        """taskd on db with the descriptors closed: a POST answered 201, then SIGTERM, exit 0."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()

        def close_them():
            for fd in closed:
                os.close(fd)
        proc = subprocess.Popen([taskd_bin(), "--listen", "127.0.0.1:%d" % port, "--db", db],
                                env=clean_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=dies_with_test(close_them))
        try:
            def post():
                if proc.poll() is not None:
                    self.fail("taskd exited %s" % proc.returncode)
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("POST", "/tasks", body=json.dumps({"task_type": "TASK2"}),
                              headers={"Content-Type": "application/json"})
                    status = c.getresponse().status
                    c.close()
                    return status == 201
                except OSError:
                    return False
            wait_until(post, 10, what="taskd to answer a POST")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)

    # -- running ---------------------------------------------------------------------------------
    def test_port_zero_picks_free_port_and_logs_json(self):
        s = self.start()
        self.assertEqual(s.host, "127.0.0.1")
        self.assertGreater(s.port, 0)
        self.assertEqual(s.get("/health").status, 200)
        s.create("TASK2")
        self.stop_clean(s)
        lines = nonempty_lines(s.stderr_text())
        self.assertTrue(lines)
        for line in lines:
            obj = json.loads(line)
            self.assertIsInstance(obj, dict, line)
            for k in ("level", "timestamp", "message", "service"):
                self.assertIn(k, obj, "log line without %r: %s" % (k, line))
            self.assertEqual(obj["service"], "taskd")
            self.assertIsInstance(obj["message"], str)
        listening = [json.loads(l) for l in lines if json.loads(l)["message"] == "listening"]
        self.assertEqual(len(listening), 1)
        self.assertEqual(listening[0]["address"], "127.0.0.1:%d" % s.port)

    def test_task1_seconds_over_the_timeout_is_warned_at_start(self):
        # every TASK1 run would be cut short: the operator hears it once, at start
        s = self.start(env={"TASK1_SECONDS": "45"})
        self.stop_clean(s)
        warned = [o for o in map(json.loads, nonempty_lines(s.stderr_text()))
                  if o["message"].startswith("TASK1_SECONDS is not below the handler's timeout")]
        self.assertEqual(len(warned), 1, s.stderr_text())
        self.assertEqual((warned[0]["level"], warned[0]["queue"], warned[0]["timeout"]),
                         ("WARNING", "task1", "30"))
        # below the timeout: nothing to say
        s = self.start(env={"TASK1_SECONDS": "2"})
        self.stop_clean(s)
        self.assertNotIn("TASK1_SECONDS", s.stderr_text())

    def test_bad_task1_settings_refuse_the_start(self):
        # a typo must not quietly run the demo with its defaults
        for name, value in (("TASK1_SECONDS", "1s"), ("TASK1_SECONDS", "-5"), ("TASK1_SECONDS", "nan"),
                            ("TASK1_FAILURE_RATE", "2"), ("TASK1_FAILURE_RATE", "abc"),
                            # digits and a decimal point only, as strtod alone would take more
                            ("TASK1_SECONDS", "+5"), ("TASK1_SECONDS", " 5"), ("TASK1_SECONDS", "-0"),
                            ("TASK1_SECONDS", "1e1"), ("TASK1_SECONDS", "0x10"),
                            ("TASK1_FAILURE_RATE", "+.5")):
            with self.subTest(name=name, value=value):
                db = self.path("task1.db")
                err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", db],
                                                  env={name: value})
                message = json.loads(err[0])["message"]
                self.assertIn("%s must be a number" % name, message)
                self.assertIn('"%s"' % value, message)
                self.assertFalse(os.path.exists(db), "a refused start left %s behind" % db)

    def test_sigterm_exits_zero(self):
        s = self.start()
        self.assertEqual(s.get("/health").status, 200)
        self.stop_clean(s, signal.SIGTERM)

    def test_sighup_stops_cleanly(self):
        # a closed terminal stops taskd as SIGTERM does: drained, logged, exit 0
        s = self.start()
        self.assertEqual(s.get("/health").status, 200)
        self.stop_clean(s, signal.SIGHUP)
        stopping = [o for o in map(json.loads, nonempty_lines(s.stderr_text())) if o["message"] == "stopping"]
        self.assertEqual([o.get("signal") for o in stopping], ["SIGHUP"], s.stderr_text())

    def test_sighup_ignored_by_the_parent_stays_ignored(self):
        # under nohup (or a supervisor that ignores SIGHUP for it), a hangup does not stop taskd
        before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited through exec
        try:
            s = self.start()
        finally:
            signal.signal(signal.SIGHUP, before)
        s.proc.send_signal(signal.SIGHUP)
        self.assertEqual(s.get("/health").status, 200)
        # a SIGHUP taken would be pending before the SIGTERM, and the stop would name it
        self.stop_clean(s, signal.SIGTERM)
        stopping = [o for o in map(json.loads, nonempty_lines(s.stderr_text())) if o["message"] == "stopping"]
        self.assertEqual([o.get("signal") for o in stopping], ["SIGTERM"], s.stderr_text())

    def test_sigterm_with_stalled_client_exits_promptly(self):
        s = self.start()
        stalled = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        idle = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        try:
            stalled.sendall(b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{")
            self.assertEqual(s.get("/health").status, 200)
            self.stop_clean(s, signal.SIGTERM, timeout=10)
        finally:
            stalled.close()
            idle.close()

    def test_sigint_exits_zero(self):
        s = self.start()
        tid = s.create("TASK2")
        self.stop_clean(s, signal.SIGINT)
        s2 = self.start(db=s.db)
        self.assertEqual(s2.task(tid)["id"], tid)
        self.stop_clean(s2, signal.SIGINT)

    def test_env_listen_and_db(self):
        db = self.path("env.db")
        s = self.start(use_flags=False, env={"TASKD_LISTEN": "127.0.0.1:0", "TASKD_DB": db})
        self.assertEqual(s.host, "127.0.0.1")
        tid = s.create("TASK2", data={"via": "env"})
        self.stop_clean(s)
        self.assertTrue(os.path.exists(db), "TASKD_DB was not used")
        # The same database through the flags.
        s2 = self.start(db=db)
        self.assertEqual(s2.task(tid)["data"], {"via": "env"})
        self.stop_clean(s2)

    def test_flags_override_env(self):
        db = self.path("flag.db")
        s = self.start(db=db, env={"TASKD_DB": "/nonexistent-dir/env.db", "TASKD_LISTEN": "256.0.0.1:1"})
        self.assertEqual(s.get("/health").status, 200)
        s.create("TASK2")
        self.stop_clean(s)
        self.assertTrue(os.path.exists(db))

    def test_env_config(self):
        cfg = write_config(self.tmp, {"task_types": ["ENVTYPE"]})
        s = self.start(env={"TASKD_CONFIG": cfg})
        self.assertEqual(s.post("/tasks", {"task_type": "ENVTYPE"}).status, 201)
        self.assertEqual(s.post("/tasks", {"task_type": "TASK2"}).status, 422)
        self.stop_clean(s)

    def test_second_instance_on_same_db_fails(self):
        s = self.start()
        tid = s.create("TASK2")
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", s.db], one_line=False)
        self.assertTrue(err)
        # The first one is unharmed.
        self.assertEqual(s.task(tid)["id"], tid)
        self.assertEqual(s.create("TASK2") > tid, True)
        self.stop_clean(s)
        # After the first stops, a new start on that db works.
        s2 = self.start(db=s.db)
        self.assertEqual(s2.task(tid)["id"], tid)
        self.stop_clean(s2)

    def test_second_instance_through_a_link_fails(self):
        # a symbolic or a hard link names the same file: the same database, refused
        s = self.start()
        s.create("TASK2")
        sym, hard = self.path("sym.db"), self.path("hard.db")
        os.symlink(s.db, sym)
        os.link(s.db, hard)
        for other in (sym, hard):
            with self.subTest(other=other):
                err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", other],
                                                  one_line=False)
                self.assertIn("another taskd is serving it", err[-1])
        self.assertEqual(s.get("/health").status, 200)
        self.stop_clean(s)

    def test_threads_and_sync_flags(self):
        s = self.start(args=["--threads", "2"], sync="normal")
        ids = [s.create("TASK2") for _ in range(5)]
        self.assertEqual([t["id"] for t in s.list_all()], list(reversed(ids)))
        self.stop_clean(s)
        s2 = self.start(db=s.db, sync="full", args=["--threads", "1"])
        self.assertEqual(len(s2.list_all()), 5)
        self.stop_clean(s2)

    # -- config file ---------------------------------------------------------------------------
    def test_config_task_types_and_body_limit(self):
        cfg = write_config(self.tmp, {"task_types": ["ALPHA", "BETA"], "body_limit": 1024})
        s = self.start(config=cfg)
        r = s.post("/tasks", {"task_type": "ALPHA", "data": {"x": 1}})
        self.assertEqual(r.status, 201, r)
        a = r.json()["id"]
        self.assertEqual(s.post("/tasks", {"task_type": "BETA"}).status, 201)
        r = s.post("/tasks", {"task_type": "TASK1"})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["detail"][0]["loc"], ["body", "task_type"])
        self.assertEqual(s.get("/tasks?task_type=TASK1").status, 422)
        page = s.get("/tasks?task_type=ALPHA")
        self.assertEqual(page.status, 200)
        self.assertEqual([t["id"] for t in page.json()["tasks"]], [a])
        big = json.dumps({"task_type": "ALPHA", "data": {"b": "x" * 1100}})
        r = s.post("/tasks", big)
        self.assertEqual(r.status, 413, r)
        self.assertIn("detail", r.json())
        small = json.dumps({"task_type": "ALPHA", "data": {"b": "x" * 900}})
        self.assertEqual(s.post("/tasks", small).status, 201)
        self.stop_clean(s)

    def test_config_defaults_when_keys_absent(self):
        cfg = write_config(self.tmp, {})
        s = self.start(config=cfg, env={"TASK1_SECONDS": "1"})
        for t in ("TASK1", "TASK2", "TASK3"):
            self.assertEqual(s.post("/tasks", {"task_type": t}).status, 201, t)
        blob = json.dumps({"task_type": "TASK2", "data": {"b": "x" * 200000}})
        self.assertEqual(s.post("/tasks", blob).status, 201)
        self.stop_clean(s)

    def test_a_subscribed_queue_no_handler_takes_from_is_named_at_start(self):
        """Messages routed to a queue nobody reads wait out their retention: said at start."""
        unread = "a subscription routes messages to a queue no handler takes from"
        cfg = write_config(self.tmp, {
            "task_types": ["A", "B"],
            "queues": [{"name": "read"}, {"name": "unread"}],
            "subscriptions": [{"queue": "read"}, {"queue": "unread", "filter_policy": {"TaskType": ["A"]}},
                              {"queue": "unread", "filter_policy": {"TaskType": ["B"]}}],
            "handlers": [{"queue": "read", "handler": "noop"}]}, "unread.json")
        s = self.start(config=cfg)
        said = [o for o in s.log_json() if o.get("message", "").startswith(unread)]
        self.assertEqual([(o["queue"], o["level"]) for o in said], [("unread", "WARNING")],
                         s.stderr_text()[-2000:])  # once, though two subscriptions route there
        self.stop_clean(s)
        s = self.start(config=write_config(self.tmp, {}, "defaults.json"))  # every queue read
        self.assertNotIn(unread, s.stderr_text())
        self.stop_clean(s)

    def test_a_dead_letter_queue_that_can_never_fill_is_named_at_start(self):
        """Warned, not refused: dead letters kept from before can still be redriven."""
        cfg = write_config(self.tmp, {
            "queues": [{"name": "task1", "dead_letter_queue": "d1"},
                       {"name": "d1", "dead_letter_queue": "d2"}, {"name": "d2"},
                       {"name": "paused", "max_receive_count": 0, "dead_letter_queue": "d3"},
                       {"name": "d3"}],
            "subscriptions": [{"queue": "task1", "filter_policy": {"TaskType": ["TASK1"]}},
                              {"queue": "paused", "filter_policy": {"TaskType": ["TASK2"]}}],
            "handlers": [{"queue": "task1", "handler": "noop"},
                         {"queue": "paused", "handler": "noop"}]}, "idle.json")
        s = self.start(config=cfg)
        said = [(o["queue"], o["dead_letter_queue"]) for o in s.log_json()
                if o.get("level") == "WARNING" and "dead_letter_queue" in o]
        self.assertEqual(said, [("d1", "d2"), ("paused", "d3")], s.stderr_text()[-2000:])
        self.stop_clean(s)

    def test_a_dead_letter_queue_kept_no_longer_than_its_queue_is_named_at_start(self):
        """A dead letter keeps the age of its first send: one that waited long in its queue is
        dropped on arrival in a dead-letter queue that keeps messages no longer."""
        short = "a dead-letter queue keeps messages no longer than the queue it serves"
        cfg = write_config(self.tmp, {
            "queues": [{"name": "task1", "retention": 7200, "dead_letter_queue": "d1"},
                       {"name": "d1", "retention": 7200},
                       {"name": "other", "retention": 7200, "dead_letter_queue": "d2"},
                       {"name": "d2", "retention": 3600},
                       {"name": "longer", "retention": 3600, "dead_letter_queue": "d3"},
                       {"name": "d3", "retention": 3601},
                       {"name": "most", "retention": 1209600, "dead_letter_queue": "d4"},
                       {"name": "d4"}]}, "short.json")  # d4 keeps the most too: 14 days
        s = self.start(config=cfg)
        said = [(o["level"], o["queue"], o["retention"], o["dead_letter_queue"],
                 o["dead_letter_retention"], o["fix"])
                for o in s.log_json() if o.get("message", "").startswith(short)]
        longer, shorter = ("give the dead-letter queue a longer retention",
                           "give the queue a shorter retention")
        self.assertEqual(said, [("WARNING", "task1", "7200", "d1", "7200", longer),
                                ("WARNING", "other", "7200", "d2", "3600", longer),
                                ("WARNING", "most", "1209600", "d4", "1209600", shorter)],
                         s.stderr_text()[-2000:])
        self.stop_clean(s)
        s = self.start(config=write_config(self.tmp, {}, "defaults.json"))  # task1 4 days, its DLQ 14
        self.assertEqual(s.get("/health").status, 200)
        self.assertNotIn(short, s.stderr_text())
        self.stop_clean(s)

    def test_task_types_no_subscription_routes_are_named_at_start(self):
        """A type the API accepts but no filter policy lets through stays CREATED: said at start."""
        unrouted = "task types that no subscription routes to a queue"
        cfg = write_config(self.tmp, {"task_types": ["TASK1", "resize", "thumb"]}, "types.json")
        s = self.start(config=cfg)
        said = [o for o in s.log_json() if o.get("message", "").startswith(unrouted)]
        self.assertEqual(len(said), 1, s.stderr_text()[-2000:])
        self.assertEqual(said[0]["task_types"], "resize, thumb")  # TASK1 has the default route
        self.assertEqual(said[0]["level"], "INFO")
        self.stop_clean(s)
        routed = {"task_types": ["TASK1", "resize", "thumb"], "queues": [{"name": "img"}],
                  "handlers": [],
                  "subscriptions": [{"queue": "img",
                                     "filter_policy": {"TaskType": [{"anything-but": ["TASK1"]}]}},
                                    {"queue": "img", "filter_policy": {"TaskType": ["TASK1"]}}]}
        s = self.start(config=write_config(self.tmp, routed, "routed.json"))
        self.assertEqual(s.get("/health").status, 200)
        self.assertFalse([o for o in s.log_json() if o.get("message", "").startswith(unrouted)])
        self.stop_clean(s)
        # a policy that also wants an attribute no message carries lets nothing through
        other = {"subscriptions": [{"queue": "task1",
                                    "filter_policy": {"TaskType": ["TASK1"], "Other": ["x"]}}]}
        s = self.start(config=write_config(self.tmp, other, "other.json"))
        said = [o for o in s.log_json() if o.get("message", "").startswith(unrouted)]
        self.assertEqual([o["task_types"] for o in said], ["TASK1, TASK2, TASK3"],
                         s.stderr_text()[-2000:])
        self.stop_clean(s)
        # with nothing published at all, no type reaches a queue: said as such, TASK1 included
        for consumers in ([], [{"name": "audit", "filter_patterns": [{"eventName": ["REMOVE"]}]}]):
            s = self.start(config=write_config(self.tmp, {"stream_consumers": consumers}, "quiet.json"))
            said = [o for o in s.log_json() if o.get("message", "").startswith("no stream consumer publishes")]
            self.assertEqual([o["level"] for o in said], ["INFO"], s.stderr_text()[-2000:])
            self.assertFalse([o for o in s.log_json() if o.get("message", "").startswith(unrouted)])
            self.stop_clean(s)

    def test_invalid_config(self):
        cases = {
            "not_json": "{task_types: [",
            "not_object": "[1, 2]",
            "types_not_list": {"task_types": "TASK1"},
            "types_not_strings": {"task_types": [1, 2]},
            "limit_string": {"body_limit": "big"},
            "limit_negative": {"body_limit": -1},
        }
        for name, content in cases.items():
            with self.subTest(case=name):
                cfg = write_config(self.tmp, content, name=name + ".json")
                err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", self.path(name + ".db"),
                                                   "--config", cfg], one_line=False)
                self.assertTrue(any(re.search(r"config|" + re.escape(name), l, re.I) for l in err),
                                "error does not mention the config: %r" % err)

    def test_rejected_bindings_leave_no_database(self):
        """A binding taskd cannot run is refused before the database is created or migrated."""
        queues = [{"name": "jobs"}]
        subs = [{"queue": "jobs"}]
        cases = {
            "unknown_handler": {"queues": queues, "subscriptions": subs, "handlers": [{"queue": "jobs", "handler": "nope"}]},
            "missing_program": {"queues": queues, "subscriptions": subs, "handlers": [
                {"queue": "jobs", "handler": "exec", "command": [self.path("no-such-program")]}]},
        }
        for name, content in cases.items():
            with self.subTest(case=name):
                cfg = write_config(self.tmp, content, name=name + ".json")
                db = self.path(name + ".db")
                err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", db,
                                                   "--config", cfg], one_line=False)
                self.assertTrue(any(re.search(r"nope|no-such-program", l) for l in err), err)
                self.assertTrue(any("queue jobs" in l for l in err), err)  # which binding
                left = [f for f in os.listdir(self.tmp) if f.startswith(name + ".db")]
                self.assertEqual(left, [], "a rejected start left %r behind" % left)

    def test_missing_config_file(self):
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", self.path("m.db"),
                                           "--config", self.path("no-such-config.json")], one_line=False)
        self.assertIn("no-such-config.json: cannot read the configuration: No such file or directory",
                      json.loads(err[-1])["message"])

    def test_config_that_is_a_directory(self):
        err = self.assertFailsWithOneLine(["--listen", "127.0.0.1:0", "--db", self.path("dir.db"),
                                           "--config", self.tmp], one_line=False)
        self.assertEqual(json.loads(err[-1])["message"],
                         "%s: cannot read the configuration: it is a directory" % self.tmp)
        self.assertFalse(os.path.exists(self.path("dir.db")), "a refused start left its database")

    def test_a_refusal_names_where_its_value_came_from(self):
        """A bad value is named as it was given: the flag, or the environment variable."""
        env_cases = {
            "TASKD_LISTEN": ("not-an-address", "TASKD_LISTEN must be HOST:PORT"),
            "TASKD_SYNC": ("sometimes", "TASKD_SYNC must be full or normal"),
            "TASKD_DB": ("", "TASKD_DB must name a file"),
            "TASKD_CONFIG": ("", "TASKD_CONFIG must name a file"),
            # an empty path is not "no tokens": an unset variable in a unit file, say
            "TASKD_TOKEN_FILE": ("", "TASKD_TOKEN_FILE must name a file"),
            "TASKD_ALLOWED_HOSTS": ("a b", "TASKD_ALLOWED_HOSTS: "),
        }
        base = {"TASKD_LISTEN": "127.0.0.1:0", "TASKD_DB": self.path("e.db")}
        for name, (value, says) in env_cases.items():
            with self.subTest(env=name):
                err = self.assertFailsWithOneLine([], env=dict(base, **{name: value}), one_line=False)
                self.assertIn(says, json.loads(err[-1])["message"])
        flag_cases = {
            "--listen": ("not-an-address", "--listen must be HOST:PORT"),
            "--sync": ("sometimes", "--sync must be full or normal"),
            "--db": ("", "--db must name a file"),
            "--config": ("", "--config must name a file"),
            "--token-file": ("", "--token-file must name a file"),
            "--allowed-hosts": ("a b", "--allowed-hosts: "),
        }
        for flag, (value, says) in flag_cases.items():
            with self.subTest(flag=flag):
                # the environment's values are good: the flag's own is named
                env = dict(base, TASKD_SYNC="full", TASKD_CONFIG=write_config(self.tmp, {}),
                           TASKD_ALLOWED_HOSTS="example.com")
                err = self.assertFailsWithOneLine([flag, value], env=env, one_line=False)
                self.assertIn(says, json.loads(err[-1])["message"])
        self.assertFalse(os.path.exists(self.path("e.db")), "a refused start left its database")


if __name__ == "__main__":
    unittest.main()
