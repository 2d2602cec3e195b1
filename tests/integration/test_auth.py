"""Access control of taskd (docs/auth.md): bearer tokens, the refusal to serve a non-loopback
address unauthenticated, --metrics-public, cross-origin writes and the Host check.

Tokens come from a file (--token-file, TASKD_TOKEN_FILE; mode 600, others may not read it) or
TASKD_TOKENS; with tokens every route needs ``Authorization: Bearer <token>``: 401 with
``WWW-Authenticate: Bearer realm="taskd"`` without one, with ``error="invalid_token"`` for a wrong
one. A write whose Origin is not the Host, or marked ``Sec-Fetch-Site: cross-site``, is 403; so is a
Host other than the loopback names (or --allowed-hosts) on a loopback listener. The 401 and 403
answers are the ones /openapi.json documents for every operation.
"""

import json
import os
import shutil
import tempfile
import unittest

import harness

TOKENS = ("first-token-0123", "second-token-4567")


def write_tokens(directory, text, mode=0o600, name="tokens"):
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def bearer(token):
    return {"Authorization": "Bearer " + token}


@harness.local_only("API Gateway authenticates on Lambda")
class AuthTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="taskd-auth-")
        self.servers = []

    def tearDown(self):
        # every server closed and the directory removed before a failure is reported
        problems = []
        try:
            for s in self.servers:
                alive = s.alive()
                rc = s.close()
                if not alive or rc != 0:
                    problems.append("taskd died or exited %s; stderr:\n%s"
                                    % (rc, s.stderr_text()[-3000:]))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("\n\n".join(problems))

    def start(self, **kw):
        s = harness.Taskd(env=dict({"TASK1_SECONDS": "0"}, **kw.pop("env", {})), **kw)
        self.servers.append(s)
        return s

    def assertRefused(self, args, env=None, *words):
        p = harness.run_taskd(args, env=env)
        err = harness.nonempty_lines(p.stderr)
        self.assertEqual(p.returncode, 2, "taskd %r: rc %d, stderr %r" % (args, p.returncode, err))
        self.assertEqual(len(err), 1, err)
        for w in words:
            self.assertIn(w, err[0])
        return err[0]

    def assertError(self, r, status, detail_part=None):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(list(body), ["detail"], body)
        self.assertIsInstance(body["detail"], str)
        if detail_part:
            self.assertIn(detail_part, body["detail"])

    def assertUnauthorized(self, r, invalid_token):
        self.assertError(r, 401)
        challenge = r.header("WWW-Authenticate")
        self.assertIsNotNone(challenge, r.headers)
        self.assertTrue(challenge.startswith('Bearer realm="taskd"'), challenge)
        self.assertEqual('error="invalid_token"' in challenge, invalid_token, challenge)

    def check_protected(self, s, token):
        """Every route refuses without a token or with a wrong one, and answers with the right one."""
        tid = s.create("TASK2", headers=bearer(token))
        for path in ("/tasks", "/tasks/" + tid, "/tasks/%s/trace" % tid, "/health", "/metrics",
                     "/openapi.json", "/queues", "/no-such-path"):
            with self.subTest(path=path):
                self.assertUnauthorized(s.get(path), invalid_token=False)
                self.assertUnauthorized(s.get(path, headers=bearer("wrong-token")), invalid_token=True)
                self.assertUnauthorized(s.get(path, headers=bearer(token + "x")), invalid_token=True)
                self.assertUnauthorized(s.get(path, headers={"Authorization": "Basic Zm9vOmJhcg=="}),
                                        invalid_token=False)
                r = s.get(path, headers=bearer(token))
                self.assertEqual(r.status, 404 if path == "/no-such-path" else 200, r)
        self.assertUnauthorized(s.post("/tasks", {"task_type": "TASK2"}), invalid_token=False)
        self.assertUnauthorized(s.patch("/tasks/" + tid, {"status": "IN_PROGRESS"},
                                        headers=bearer("nope")), invalid_token=True)
        self.assertEqual(s.patch("/tasks/" + tid, {"status": "IN_PROGRESS"},
                                 headers=bearer(token)).status, 204)
        self.assertUnauthorized(s.post("/queues/task1/redrive"), invalid_token=False)
        # the dashboard's page and files hold no data: they load without a token (the page asks
        # for one), and the answer is the same with it
        for path in ("/", "/dashboard/app.js"):
            with self.subTest(path=path):
                r = s.get(path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, s.get(path, headers=bearer(token)).body)
        self.assertUnauthorized(s.post("/", {"task_type": "TASK2"}), invalid_token=False)

    # -- tokens ----------------------------------------------------------------------------------
    def test_tokens_from_file(self):
        path = write_tokens(self.tmp, "# taskd tokens\n\n  %s  \n%s\n" % TOKENS)
        s = self.start(args=["--token-file", path])
        self.assertTrue(any('"auth":"bearer"' in l for l in s.log_objects()), s.stderr_text())
        self.check_protected(s, TOKENS[0])
        self.assertEqual(s.get("/health", headers=bearer(TOKENS[1])).status, 200)
        self.assertEqual(s.get("/health", headers={"Authorization": "bearer  %s " % TOKENS[1]}).status,
                         200)
        self.assertUnauthorized(s.get("/health", headers=bearer("# taskd tokens")), invalid_token=True)

    def test_tokens_from_env(self):
        s = self.start(env={"TASKD_TOKENS": " %s,%s " % TOKENS})
        self.check_protected(s, TOKENS[1])
        self.assertEqual(s.get("/tasks", headers=bearer(TOKENS[0])).status, 200)

    def test_token_file_from_env_adds_env_tokens(self):
        path = write_tokens(self.tmp, TOKENS[0] + "\n")
        s = self.start(env={"TASKD_TOKEN_FILE": path, "TASKD_TOKENS": TOKENS[1]})
        for t in TOKENS:
            self.assertEqual(s.get("/tasks", headers=bearer(t)).status, 200)
        self.assertUnauthorized(s.get("/tasks"), invalid_token=False)

    def test_token_file_refused(self):
        db = os.path.join(self.tmp, "r.db")
        for mode in (0o644, 0o604, 0o666):
            with self.subTest(mode=oct(mode)):
                path = write_tokens(self.tmp, TOKENS[0] + "\n", mode=mode, name="open-%o" % mode)
                err = self.assertRefused(["--listen", "127.0.0.1:0", "--db", db, "--token-file", path],
                                         None, path, "chmod 600")
                self.assertIn("readable or writable by others", err)
                self.assertRefused(["--listen", "127.0.0.1:0", "--db", db],
                                   {"TASKD_TOKEN_FILE": path}, path)
        empty = write_tokens(self.tmp, "# nothing\n\n", name="empty")
        self.assertRefused(["--listen", "127.0.0.1:0", "--db", db, "--token-file", empty], None,
                           "holds no token")
        bad = write_tokens(self.tmp, "ok-token\nnot ok\n", name="bad")
        self.assertRefused(["--listen", "127.0.0.1:0", "--db", db, "--token-file", bad], None,
                           "line 2")
        self.assertRefused(["--listen", "127.0.0.1:0", "--db", db, "--token-file",
                            os.path.join(self.tmp, "missing")], None, "cannot open")
        # a message cut to its buffer ends "..." where a character ends, not in half of one
        deep = os.path.join(self.tmp, "\u00e9" * 220, "tokens")
        line = self.assertRefused(["--listen", "127.0.0.1:0", "--db", db, "--token-file", deep],
                                  None, "cannot open token file")
        message = json.loads(line)["message"]
        self.assertTrue(message.endswith("\u00e9..."), message[-40:])
        self.assertRefused(["--listen", "127.0.0.1:0", "--db", db], {"TASKD_TOKENS": "a b"},
                           "TASKD_TOKENS")
        # set, but no token in it: not taken for "no authentication", as an empty file is not
        for tokens in (",", " , "):
            self.assertRefused(["--listen", "127.0.0.1:0", "--db", db], {"TASKD_TOKENS": tokens},
                               "TASKD_TOKENS holds no token")
        self.assertFalse(os.path.exists(db), "refused before opening the database")

    # -- non-loopback listeners --------------------------------------------------------------------
    def test_non_loopback_needs_tokens_or_the_flag(self):
        db = os.path.join(self.tmp, "n.db")
        for listen in ("0.0.0.0:0", "[::]:0"):
            with self.subTest(listen=listen):
                self.assertRefused(["--listen", listen, "--db", db], None, "--allow-unauthenticated",
                                   "not a loopback address")
        self.assertRefused(["--listen", "0.0.0.0:0", "--db", db],
                           {"TASKD_ALLOW_UNAUTHENTICATED": "maybe"}, "TASKD_ALLOW_UNAUTHENTICATED")
        s = self.start(listen="0.0.0.0:0", args=["--allow-unauthenticated"])
        self.assertEqual(s.get("/health").status, 200)
        # no token to stop a page that rebinds its name to this listener (0.0.0.0 holds
        # 127.0.0.1, which the operator's own browser reaches): a name is refused, an IP
        # address answered, and --allowed-hosts names the names
        r = s.get("/health", headers={"Host": "rebind.attacker.example:80"})
        self.assertEqual(r.status, 403, r)
        self.assertIn("--allowed-hosts", r.json()["detail"])
        for host in ("10.1.2.3:%d" % s.port, "[fd00::5]", "localhost:%d" % s.port):
            self.assertEqual(s.get("/health", headers={"Host": host}).status, 200, host)
        self.assertTrue(any(o.get("level") == "WARNING" and "--allowed-hosts" in o.get("message", "")
                            for o in s.log_json()), s.stderr_text())
        s = self.start(listen="0.0.0.0:0", args=["--allow-unauthenticated",
                                                 "--allowed-hosts", "taskd.example:443"])
        self.assertEqual(s.get("/health", headers={"Host": "taskd.example"}).status, 200)
        self.assertEqual(s.get("/health", headers={"Host": "10.1.2.3"}).status, 200)
        self.assertEqual(s.get("/health", headers={"Host": "other.example"}).status, 403)
        s = self.start(listen="0.0.0.0:0", env={"TASKD_ALLOW_UNAUTHENTICATED": "1"})
        self.assertEqual(s.create("TASK2") is not None, True)
        s = self.start(listen="0.0.0.0:0", env={"TASKD_TOKENS": TOKENS[0]})
        self.assertUnauthorized(s.get("/health"), invalid_token=False)
        self.assertEqual(s.get("/health", headers=bearer(TOKENS[0])).status, 200)
        # with tokens a rebinding page has none: any Host is answered
        self.assertEqual(s.get("/health", headers=dict(bearer(TOKENS[0]),
                                                       Host="taskd.example:80")).status, 200)

    def test_loopback_without_tokens_is_open(self):
        s = self.start()
        self.assertTrue(any('"auth":"none"' in l for l in s.log_objects()), s.stderr_text())
        self.assertEqual(s.get("/tasks").status, 200)
        self.assertEqual(s.get("/tasks", headers=bearer("anything")).status, 200)

    # -- --metrics-public ---------------------------------------------------------------------------
    def test_metrics_public(self):
        # the variable takes each word its refusal names: 1, true or yes, in any case
        for how in ({"args": ["--metrics-public"]}, {"env": {"TASKD_METRICS_PUBLIC": "1"}},
                    {"env": {"TASKD_METRICS_PUBLIC": "TRUE"}}, {"env": {"TASKD_METRICS_PUBLIC": "Yes"}}):
            with self.subTest(how=how):
                env = dict(how.get("env", {}), TASKD_TOKENS=TOKENS[0])
                s = self.start(args=how.get("args", []), env=env)
                for path in ("/metrics", "/health"):
                    self.assertEqual(s.get(path).status, 200, path)
                    self.assertEqual(s.request("HEAD", path).status, 200, path)
                for path in ("/tasks", "/queues", "/openapi.json"):
                    self.assertUnauthorized(s.get(path), invalid_token=False)
                self.assertUnauthorized(s.post("/tasks", {"task_type": "TASK2"}), invalid_token=False)

    def test_a_yes_no_flag_wins_over_its_variable(self):
        """--metrics-public and --allow-unauthenticated take a word as their variables do: the flag
        given, that word is taken, and the variable is not read, even a malformed one."""
        db = os.path.join(self.tmp, "yn.db")
        # the flag turns its variable off
        for off in ("--metrics-public=no", "--metrics-public=0", "--metrics-public=False"):
            with self.subTest(args=off):
                s = self.start(args=[off], env={"TASKD_METRICS_PUBLIC": "1",
                                                "TASKD_TOKENS": TOKENS[0]})
                self.assertUnauthorized(s.get("/metrics"), invalid_token=False)
                self.assertUnauthorized(s.get("/health"), invalid_token=False)
        self.assertRefused(["--listen", "0.0.0.0:0", "--db", db, "--allow-unauthenticated=no"],
                           {"TASKD_ALLOW_UNAUTHENTICATED": "1"}, "not a loopback address")
        # and on: a word, or the flag alone
        for on in ("--metrics-public=yes", "--metrics-public=TRUE", "--metrics-public"):
            with self.subTest(args=on):
                s = self.start(args=[on], env={"TASKD_METRICS_PUBLIC": "0",
                                               "TASKD_TOKENS": TOKENS[0]})
                self.assertEqual(s.get("/metrics").status, 200)
        # a malformed variable beside its flag is not read
        s = self.start(args=["--metrics-public"], env={"TASKD_METRICS_PUBLIC": "perhaps",
                                                       "TASKD_TOKENS": TOKENS[0]})
        self.assertEqual(s.get("/health").status, 200)
        s = self.start(listen="0.0.0.0:0", args=["--allow-unauthenticated=1"],
                       env={"TASKD_ALLOW_UNAUTHENTICATED": "maybe"})
        self.assertEqual(s.get("/health").status, 200)
        self.assertRefused(["--listen", "0.0.0.0:0", "--db", db, "--allow-unauthenticated=no"],
                           {"TASKD_ALLOW_UNAUTHENTICATED": "maybe"}, "not a loopback address")
        self.assertFalse(os.path.exists(db), "refused before opening the database")

    # -- browsers ------------------------------------------------------------------------------------
    def test_cross_origin_writes(self):
        s = self.start()
        own = "http://127.0.0.1:%d" % s.port
        body = {"task_type": "TASK2"}
        self.assertError(s.post("/tasks", body, headers={"Origin": "http://evil.example"}), 403,
                         "Origin")
        self.assertError(s.post("/tasks", body, headers={"Origin": "null"}), 403)
        self.assertError(s.post("/tasks", body, headers={"Origin": "http://127.0.0.1:%d" % (s.port + 1)}),
                         403)
        self.assertError(s.post("/tasks", body, headers={"Sec-Fetch-Site": "cross-site"}), 403,
                         "Cross-site")
        self.assertError(s.post("/tasks", body, headers={"Origin": own, "Sec-Fetch-Site": "cross-site"}),
                         403)
        tid = s.create("TASK2")
        self.assertError(s.patch("/tasks/" + tid, {"status": "IN_PROGRESS"},
                                 headers={"Origin": "https://evil.example"}), 403)
        self.assertError(s.request("PUT", "/tasks", b"{}", headers={"Sec-Fetch-Site": "cross-site"}), 403)
        self.assertError(s.request("DELETE", "/tasks/" + tid, headers={"Origin": "http://evil.example"}),
                         403)
        self.assertError(s.post("/queues/task1/redrive", headers={"Origin": "http://evil.example"}), 403)
        # same origin, same site, a browser's own navigation, and no browser at all
        for headers in ({"Origin": own}, {"Origin": own, "Sec-Fetch-Site": "same-origin"},
                        {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "none"}, {}):
            with self.subTest(headers=headers):
                self.assertEqual(s.post("/tasks", body, headers=headers).status, 201)
        self.assertEqual(s.patch("/tasks/" + tid, {"status": "IN_PROGRESS"}, headers={"Origin": own}).status,
                         204)
        # reads are not writes
        r = s.get("/tasks", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(r.status, 200)
        # the tasks refused were never created
        self.assertEqual(len(s.get("/tasks").json()["tasks"]), 1 + 5)

    def test_host_check_on_loopback(self):
        s = self.start()
        for host in ("evil.example", "evil.example:%d" % s.port, "127.0.0.2:%d" % s.port,
                     "localhost.evil.example", "[::2]"):
            with self.subTest(host=host):
                self.assertError(s.get("/health", headers={"Host": host}), 403, "Host")
                self.assertError(s.post("/tasks", {"task_type": "TASK2"}, headers={"Host": host}), 403)
        for host in ("127.0.0.1:%d" % s.port, "localhost:%d" % s.port, "localhost", "[::1]:%d" % s.port,
                     "127.0.0.1:1", "LOCALHOST:%d" % s.port):
            with self.subTest(host=host):
                self.assertEqual(s.get("/health", headers={"Host": host}).status, 200)

    def test_absolute_form_target_takes_the_place_of_host(self):
        # RFC 9112 §3.2.2: a server takes an absolute-form target, and its authority is the
        # request's host, whatever the Host field says
        s = self.start()
        for target, host, status in (
                ("http://127.0.0.1:%d/health" % s.port, "127.0.0.1", 200),
                ("http://localhost/health?x=1", "evil.example", 200),
                ("HTTP://evil.example/health", "127.0.0.1:%d" % s.port, 403)):
            with self.subTest(target=target):
                res = harness.raw_exchange(s.port, b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close"
                                           b"\r\n\r\n" % (target.encode(), host.encode()))
                self.assertIsNotNone(res, "no answer")
                self.assertEqual(res[0], status, res)
                if status == 200:
                    self.assertEqual(res[2], b'{"status":"ok"}')
        # with a body larger than the first read's buffer, which then moves: the authority
        # moves with it (it was read where the buffer had been: a 403, or a crash)
        body = b'{"task_type":"TASK2","data":{"pad":"%s"}}' % (b"x" * 5000)
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                           for part in (body[:3000], body[3000:])) + b"0\r\n\r\n"
        for framing, content in ((b"Content-Length: %d" % len(body), body),
                                 (b"Transfer-Encoding: chunked", chunked)):
            with self.subTest(framing=framing):
                res = harness.raw_exchange(s.port, b"POST http://localhost/tasks HTTP/1.1\r\nHost: x\r\n"
                                           b"Content-Type: application/json\r\n%s\r\n"
                                           b"Connection: close\r\n\r\n%s" % (framing, content))
                self.assertIsNotNone(res, "no answer")
                self.assertEqual(res[0], 201, res)

    def test_allowed_hosts(self):
        for how in ({"args": ["--allowed-hosts", "taskd.internal, api.example:8443"]},
                    {"env": {"TASKD_ALLOWED_HOSTS": "taskd.internal,api.example:8443"}}):
            with self.subTest(how=how):
                s = self.start(args=how.get("args", []), env=how.get("env", {}))
                for host in ("taskd.internal", "taskd.internal:%d" % s.port, "api.example:8443",
                             "127.0.0.1:%d" % s.port):
                    self.assertEqual(s.get("/health", headers={"Host": host}).status, 200, host)
                for host in ("api.example", "api.example:8444", "evil.example"):
                    self.assertError(s.get("/health", headers={"Host": host}), 403)
        s = self.start(args=["--allowed-hosts", "*"])
        self.assertEqual(s.get("/health", headers={"Host": "anything.example"}).status, 200)
        self.assertRefused(["--listen", "127.0.0.1:0", "--db", os.path.join(self.tmp, "h.db"),
                            "--allowed-hosts", "bad host"], None, "--allowed-hosts")

    def test_checks_combine(self):
        """Tokens and the browser checks at once: the Host first, then the origin, then the token."""
        s = self.start(env={"TASKD_TOKENS": TOKENS[0]})
        evil = {"Host": "evil.example"}
        self.assertError(s.get("/health", headers=evil), 403)
        self.assertError(s.post("/tasks", {"task_type": "TASK2"},
                                headers=dict(bearer(TOKENS[0]), Origin="http://evil.example")), 403)
        self.assertUnauthorized(s.post("/tasks", {"task_type": "TASK2"},
                                       headers={"Origin": "http://127.0.0.1:%d" % s.port}),
                                invalid_token=False)

    def test_document_lists_the_answers(self):
        """/openapi.json documents 401 and 403 on every operation (but 401 on the dashboard's page
        and its files, which need no token and say so), and the bearer scheme."""
        s = self.start(env={"TASKD_TOKENS": TOKENS[0]})
        doc = s.get("/openapi.json", headers=bearer(TOKENS[0])).json()
        self.assertEqual(doc["components"]["securitySchemes"]["bearerAuth"],
                         {"type": "http", "scheme": "bearer",
                          "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]})
        self.assertIn({"bearerAuth": []}, doc["security"])
        self.assertIn({}, doc["security"])  # optional: off by default
        self.assertIn("WWW-Authenticate", doc["components"]["responses"]["Unauthorized"]["headers"])
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method in ("get", "post", "patch", "put", "delete"):
                    anonymous = path in ("/", "/dashboard/{name}")
                    self.assertEqual(op.get("security") == [{}], anonymous, "%s %s" % (method, path))
                    self.assertEqual("401" in op["responses"], not anonymous, "%s %s" % (method, path))
                    self.assertIn("403", op["responses"], "%s %s" % (method, path))


if __name__ == "__main__":
    unittest.main()
