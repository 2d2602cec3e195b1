"""The HTTP API of taskd: the seed walkthrough, every route, the state machine."""

import calendar
import json
import os
import re
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LIST_KEYS, STATUSES, UUID7_RE, EventStream, Response, ServersTestCase,  # noqa: E402
                     ServerTestCase, Taskd, accepted, db_query, local_only, on_lambda, urlencode,
                     wait_until, write_config)

SEED_BODY = '{"task_type": "TASK1", "data": {"foo": "bar"}, "ttl": "1662381756"}'
ISO_UTC_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
OTHER_FILTERS = ("next_token belongs to a listing with other filters: repeat its status and task_type, "
                 "or leave them out")


class SeedWalkthrough(ServerTestCase):
    # The demo TASK1 handler waits 10 s by default; keep the run (and the stop) short.
    server_kwargs = {"env": {"TASK1_SECONDS": "1"}}

    def test_seed_walkthrough(self):
        t0 = int(time.time())
        # Create a task with type TASK1, exactly as the seed's curl does.
        r = self.server.post("/tasks", SEED_BODY)
        body = self.assertJSON(r, 201)
        self.assertEqual(set(body), {"id"}, r)
        tid = body["id"]
        self.assertRegex(tid, UUID7_RE)
        self.assertEqual(r.header("Location"), "/tasks/" + tid)
        # A second task that no handler takes by default (stays CREATED).
        other = self.server.create("TASK2", data={"n": 1})
        t1 = int(time.time())

        # List tasks: both there, newest first, list form.
        r = self.server.get("/tasks")
        page = self.assertJSON(r, 200)
        self.assertEqual(set(page), {"tasks", "next_token"})
        self.assertIsNone(page["next_token"])
        ids = [t["id"] for t in page["tasks"]]
        # Newest first (other tests of this class may have made older tasks).
        self.assertEqual(ids[:2], [other, tid])
        self.assertEqual(ids, sorted(ids, reverse=True))
        by_id = {t["id"]: t for t in page["tasks"]}
        for t in page["tasks"]:
            self.assertTrue(LIST_KEYS <= set(t), t)
            self.assertNotIn("data", t)
            self.assertNotIn("result", t)
            self.assertIn(t["status"], STATUSES)
            self.assertIsInstance(t["status_msg"], str)
            self.assertIsInstance(t["created_time"], int)
            if t["id"] in (tid, other):
                self.assertTrue(t0 - 2 <= t["created_time"] <= t1 + 2, t)
        first = by_id[tid]
        self.assertEqual(first["task_type"], "TASK1")
        self.assertEqual(first["ttl"], 1662381756)
        # TASK1 may already have been picked up by its handler.
        self.assertIn(first["status"], STATUSES)
        second = by_id[other]
        self.assertEqual(second["task_type"], "TASK2")
        self.assertEqual(second["status"], "CREATED")
        self.assertEqual(second["status_msg"], "")
        self.assertIsNone(second["updated_time"])
        self.assertIsNone(second["ttl"])

        # GET by id: the full task with data and result.
        full = self.assertJSON(self.server.get("/tasks/" + tid), 200)
        self.assertEqual(full["id"], tid)
        self.assertEqual(full["task_type"], "TASK1")
        self.assertEqual(full["data"], {"foo": "bar"})
        self.assertEqual(full["ttl"], 1662381756)
        self.assertEqual(full["created_time"], first["created_time"])
        self.assertIn("result", full)
        if full["status"] == "CREATED":
            self.assertIsNone(full["result"])
            self.assertIsNone(full["updated_time"])
        full2 = self.assertJSON(self.server.get("/tasks/" + other), 200)
        self.assertEqual(full2["data"], {"n": 1})
        self.assertIsNone(full2["result"])
        self.assertEqual(full2["status"], "CREATED")

    @local_only("runs TASK1 through the pipeline: on AWS the publish and worker functions (test_lambda_pipeline.py)")
    def test_seed_task1_is_processed(self):
        # The seed's default pipeline: TASK1 goes to its demo handler and ends COMPLETED or FAILED
        # (this class sets TASK1_SECONDS=1); TASK2 has no subscriber and stays CREATED.
        tid = self.assertJSON(self.server.post("/tasks", SEED_BODY), 201)["id"]
        other = self.server.create("TASK2")
        seen = []
        deadline = time.monotonic() + 20
        t = None
        while time.monotonic() < deadline:
            t = self.server.task(tid)
            if not seen or seen[-1] != t["status"]:
                seen.append(t["status"])
            if t["status"] in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.1)  # polling interval
        self.assertIn(t["status"], ("COMPLETED", "FAILED"), "TASK1 not finished in 20 s: %r" % seen)
        self.assertEqual(seen, [s for s in ("CREATED", "IN_PROGRESS", t["status"]) if s in seen],
                         "statuses went backwards: %r" % seen)
        want = {"COMPLETED": "Task completed", "FAILED": "Task failed somehow"}[t["status"]]
        self.assertEqual(t["status_msg"], want)
        self.assertIsInstance(t["updated_time"], int)
        self.assertEqual(t["data"], {"foo": "bar"})
        self.assertEqual(t["ttl"], 1662381756)
        o = self.server.task(other)
        self.assertEqual((o["status"], o["updated_time"]), ("CREATED", None))


class Api(ServerTestCase):
    # Some listings create TASK1 tasks among others: the demo handler's default 10 s would hold
    # the stop at the end of the class for as long as the harness waits for it.
    server_kwargs = {"env": {"TASK1_SECONDS": "1"}}

    # -- creation ----------------------------------------------------------------
    def test_post_returns_201_id_and_location(self):
        r = self.server.post("/tasks", {"task_type": "TASK3", "data": {"a": [1, 2, {"b": None}]}})
        body = self.assertJSON(r, 201)
        self.assertRegex(body["id"], UUID7_RE)
        self.assertEqual(r.header("Location"), "/tasks/" + body["id"])
        # The Location resolves.
        t = self.assertJSON(self.server.get(r.header("Location")), 200)
        self.assertEqual(t["id"], body["id"])
        self.assertEqual(t["data"], {"a": [1, 2, {"b": None}]})

    def test_uuid_v7_format_time_and_order(self):
        before_ms = int(time.time() * 1000)
        ids = [self.server.create("TASK2") for _ in range(25)]
        after_ms = int(time.time() * 1000)
        for i in ids:
            self.assertRegex(i, UUID7_RE)
            u = uuid.UUID(i)
            self.assertEqual(u.version, 7)
            ms = int(i.replace("-", "")[:12], 16)
            self.assertTrue(before_ms - 5000 <= ms <= after_ms + 5000,
                            "uuid time %d not near [%d, %d]" % (ms, before_ms, after_ms))
        self.assertEqual(len(set(ids)), len(ids))
        self.assertEqual(ids, sorted(ids), "ids of successive POSTs do not increase")
        self.assertEqual([uuid.UUID(i).bytes for i in ids], sorted(uuid.UUID(i).bytes for i in ids))

    def test_ttl_forms(self):
        cases = [
            (1662381756, 1662381756),
            ("1662381756", 1662381756),
            (0, 0),
            ("0", 0),
            (None, None),
            ("absent", None),
            (4102444800, 4102444800),
        ]
        for given, want in cases:
            with self.subTest(ttl=given):
                tid = self.server.create("TASK2", data={}, ttl=given)
                t = self.server.task(tid)
                self.assertEqual(t["ttl"], want)
                self.assertIs(type(t["ttl"]), type(want))
                listed = [x for x in self.server.list_all(task_type="TASK2") if x["id"] == tid]
                self.assertEqual(len(listed), 1)
                self.assertEqual(listed[0]["ttl"], want)

    def test_data_optional_and_round_trip(self):
        tid = self.server.create("TASK2")
        self.assertEqual(self.server.task(tid)["data"], {})
        data = {"s": "ünïcödé ✓ \"q\" \\ \n\t", "f": 1.5, "neg": -42, "t": True, "n": None,
                "nested": {"list": [1, "two", [3.25], {"k": {}}], "empty": []}, "emoji": "\U0001F600"}
        tid = self.server.create("TASK3", data=data)
        self.assertEqual(self.server.task(tid)["data"], data)

    def test_unknown_fields_ignored(self):
        r = self.server.post("/tasks", {"task_type": "TASK2", "data": {"x": 1}, "extra": [1, 2],
                                        "status": "COMPLETED", "id": "not-an-id"})
        body = self.assertJSON(r, 201)
        t = self.server.task(body["id"])
        self.assertEqual(t["status"], "CREATED")
        self.assertNotEqual(t["id"], "not-an-id")
        self.assertNotIn("extra", t)
        self.assertEqual(t["data"], {"x": 1})

    def test_idempotent_post(self):
        key = "idem-" + uuid.uuid4().hex
        before = {t["id"] for t in self.server.list_all()}
        r1 = self.server.post("/tasks", {"task_type": "TASK2", "data": {"try": 1}},
                              headers={"Idempotency-Key": key})
        id1 = self.assertJSON(r1, 201)["id"]
        r2 = self.server.post("/tasks", {"task_type": "TASK2", "data": {"try": 2}},
                              headers={"Idempotency-Key": key})
        self.assertEqual(self.assertJSON(r2, 200), {"id": id1})
        r3 = self.server.post("/tasks", {"task_type": "TASK2", "data": {"try": 3}},
                              headers={"Idempotency-Key": key})
        self.assertEqual(self.assertJSON(r3, 200), {"id": id1})
        # The first task is unchanged and only one task was created.
        self.assertEqual(self.server.task(id1)["data"], {"try": 1})
        after = {t["id"] for t in self.server.list_all()}
        self.assertEqual(after - before, {id1})
        # Another key creates another task; no key always creates.
        r4 = self.server.post("/tasks", {"task_type": "TASK2"}, headers={"Idempotency-Key": key + "x"})
        id4 = self.assertJSON(r4, 201)["id"]
        self.assertNotEqual(id4, id1)
        a = self.server.create("TASK2")
        b = self.server.create("TASK2")
        self.assertNotEqual(a, b)

    def test_idempotency_key_bounds_are_bytes(self):
        """1 to 255 bytes, as the answer and /openapi.json say: a character past ASCII takes 2."""
        cases = [("k" * 255, 201), ("k" * 256, 400)]
        if not on_lambda():  # the emulated API Gateway reads header bytes as Latin-1
            cases += [("\u00e9" * 127, 201), ("\u00e9" * 128, 400)]
        for key, status in cases:
            with self.subTest(length=len(key.encode()), status=status):
                r = self.server.post("/tasks", {"task_type": "TASK2"},
                                     headers={"Idempotency-Key": key.encode().decode("latin-1")})
                if status == 400:
                    self.assertEqual(self.assertError(r, 400), "Idempotency-Key must be 1 to 255 bytes")
                else:
                    self.assertJSON(r, 201)

    @local_only("API Gateway gives the API one value of a header: the first, or the lines joined")
    def test_idempotency_key_given_twice_is_refused(self):
        """Two Idempotency-Key lines name no one key: 400, nothing made or claimed, where the
        first was taken and a retry with the second alone made the task again."""
        tid = self.server.create("TASK2")
        before = {t["id"] for t in self.server.list_all()}
        for method, path, body in [("POST", "/tasks", {"task_type": "TASK2"}),
                                   ("PATCH", "/tasks/" + tid, {"status": "IN_PROGRESS"})]:
            with self.subTest(method=method):
                c = self.server.connection()
                try:
                    data = json.dumps(body).encode()
                    c.putrequest(method, path)
                    c.putheader("Content-Type", "application/json")
                    c.putheader("Content-Length", str(len(data)))
                    c.putheader("Idempotency-Key", "first-" + method)
                    c.putheader("Idempotency-Key", "second-" + method)
                    c.endheaders(data)
                    r = c.getresponse()
                    got = Response(r.status, r.getheaders(), r.read())
                finally:
                    c.close()
                self.assertEqual(self.assertError(got, 400), "Idempotency-Key must be given once")
        self.assertEqual({t["id"] for t in self.server.list_all()}, before, "a task was made")
        self.assertEqual(self.server.task(tid)["status"], "CREATED")

    # -- reading -------------------------------------------------------------------
    def test_get_unknown_and_malformed_id(self):
        for tid in [str(uuid.UUID(int=0x0190f3c27b1e7c3a9d2e5a1b2c3d4e5f)), "abc",
                    "00000000-0000-0000-0000-000000000000", "%20", "0190F3C2-7B1E-7C3A-9D2E-5A1B2C3D4E5F"]:
            with self.subTest(id=tid):
                self.assertEqual(self.assertError(self.server.get("/tasks/" + tid), 404),
                                 "Task not found")

    def test_list_order_default_limit_and_paging(self):
        mine = [self.server.create("TASK3", data={"i": i}) for i in range(23)]
        r = self.server.get("/tasks")
        page = self.assertJSON(r, 200)
        self.assertEqual(len(page["tasks"]), 10, "default limit is 10")
        self.assertIsInstance(page["next_token"], str)
        # Newest first: the latest ten created are the first page.
        self.assertEqual([t["id"] for t in page["tasks"]], list(reversed(mine))[:10])
        # Page through with limit 7; the whole list is in descending id order.
        everything = []
        token = None
        pages = 0
        while True:
            q = {"limit": 7}
            if token:
                q["next_token"] = token
            page = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
            pages += 1
            self.assertLessEqual(len(page["tasks"]), 7)
            everything.extend(t["id"] for t in page["tasks"])
            token = page["next_token"]
            if token is None:
                break
            self.assertEqual(len(page["tasks"]), 7, "a non-final page must be full")
        self.assertEqual(len(everything), len(set(everything)), "a task repeated across pages")
        self.assertEqual(everything, sorted(everything, reverse=True))
        self.assertTrue(set(mine) <= set(everything))
        self.assertGreaterEqual(pages, 4)
        # limit 1 and 100 are allowed.
        one = self.assertJSON(self.server.get("/tasks?limit=1"), 200)
        self.assertEqual(len(one["tasks"]), 1)
        self.assertEqual(one["tasks"][0]["id"], everything[0])
        hundred = self.assertJSON(self.server.get("/tasks?limit=100"), 200)
        self.assertEqual([t["id"] for t in hundred["tasks"]], everything[:100])

    def test_list_exact_page_end(self):
        # A filter matching exactly `limit` tasks: one full page, then nothing more.
        base = len(self.server.list_all(task_type="TASK3", status="FAILED"))
        mine = [self.server.create("TASK3") for _ in range(3)]
        for tid in mine:
            self.assertEqual(self.server.set_status(tid, "FAILED", "cancelled").status, 204)
        n = base + 3
        q = {"task_type": "TASK3", "status": "FAILED", "limit": n}
        page = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
        self.assertEqual(len(page["tasks"]), n)
        self.assertEqual([t["id"] for t in page["tasks"]][:3], list(reversed(mine)))
        if page["next_token"] is not None:
            q["next_token"] = page["next_token"]
            nxt = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
            self.assertEqual(nxt["tasks"], [])
            self.assertIsNone(nxt["next_token"])
        # One fewer than there are: a token that leads to exactly the last one.
        q = {"task_type": "TASK3", "status": "FAILED", "limit": n - 1}
        page = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
        self.assertEqual(len(page["tasks"]), n - 1)
        self.assertIsInstance(page["next_token"], str)
        q["next_token"] = page["next_token"]
        last = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
        self.assertEqual(len(last["tasks"]), 1)
        self.assertIsNone(last["next_token"])

    def test_list_filters(self):
        a = self.server.create("TASK3")
        b = self.server.create("TASK3")
        c = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(a, "IN_PROGRESS", "Task started").status, 204)
        self.assertEqual(self.server.set_status(b, "FAILED", "cancelled").status, 204)

        def ids(**f):
            out = self.server.list_all(limit=3, **f)
            for t in out:
                for k, v in f.items():
                    self.assertEqual(t[k], v, "filter %r returned %r" % (f, t))
            return [t["id"] for t in out]

        self.assertIn(a, ids(status="IN_PROGRESS"))
        self.assertNotIn(a, ids(status="CREATED"))
        self.assertIn(b, ids(status="FAILED", task_type="TASK3"))
        self.assertNotIn(c, ids(task_type="TASK3"))
        self.assertIn(c, ids(task_type="TASK2", status="CREATED"))
        self.assertNotIn(c, ids(task_type="TASK2", status="FAILED"))
        got = ids(task_type="TASK3")
        self.assertEqual(got, sorted(got, reverse=True))
        # Listed fields reflect the change.
        la = [t for t in self.server.list_all(status="IN_PROGRESS") if t["id"] == a][0]
        self.assertEqual(la["status_msg"], "Task started")
        self.assertIsInstance(la["updated_time"], int)

    def test_list_empty_next_token_is_first_page(self):
        self.server.create("TASK2")
        first = self.assertJSON(self.server.get("/tasks"), 200)
        self.assertEqual(self.assertJSON(self.server.get("/tasks?next_token="), 200), first)
        q = {"limit": 1, "task_type": "TASK2", "status": "CREATED"}
        want = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
        self.assertEqual(len(want["tasks"]), 1)
        q["next_token"] = ""
        self.assertEqual(self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200), want)

    def test_follow_filtered_listing_with_token_alone(self):
        # A page token carries its listing's filters: next_token alone (any limit) pages through the
        # filtered listing, while tasks of every kind are being created, with no repeat, no skip,
        # and nothing outside the filter.
        mine = []
        for i in range(9):
            mine.append(self.server.create("TASK3"))
            self.server.create("TASK1" if i % 2 else "TASK2")
        self.assertEqual(self.server.set_status(mine[4], "FAILED", "cancelled").status, 204)
        want = [t["id"] for t in self.server.list_all(limit=100, status="CREATED", task_type="TASK3")]
        self.assertTrue(set(mine) - {mine[4]} <= set(want))
        self.assertNotIn(mine[4], want)
        page = self.assertJSON(self.server.get("/tasks?" + urlencode(
            {"status": "CREATED", "task_type": "TASK3", "limit": 2})), 200)
        got = [t["id"] for t in page["tasks"]]
        pages = 1
        while page["next_token"] is not None:
            # new tasks, some of them matching the filter, arrive between pages
            self.server.create("TASK3")
            self.server.create("TASK1")
            limit = 1 + pages % 3
            page = self.assertJSON(self.server.get("/tasks?" + urlencode(
                {"next_token": page["next_token"], "limit": limit})), 200)
            self.assertLessEqual(len(page["tasks"]), limit)
            for t in page["tasks"]:
                self.assertEqual((t["task_type"], t["status"]), ("TASK3", "CREATED"), t)
            got.extend(t["id"] for t in page["tasks"])
            pages += 1
            self.assertLess(pages, 200, "paging never ended")
        self.assertEqual(len(got), len(set(got)), "a task repeated across pages")
        self.assertEqual(got, want)
        self.assertGreaterEqual(pages, 4)

    def test_next_token_with_other_filter_400(self):
        for _ in range(3):
            self.server.create("TASK2")
        page = self.assertJSON(self.server.get("/tasks?limit=1&task_type=TASK2"), 200)
        tok = page["next_token"]
        self.assertIsInstance(tok, str)
        # the token's own filter again is fine...
        same = self.assertJSON(self.server.get("/tasks?" + urlencode(
            {"limit": 1, "task_type": "TASK2", "next_token": tok})), 200)
        self.assertEqual(same["tasks"][0]["task_type"], "TASK2")
        # ...another one is a 400 that says what to do
        for q in [{"task_type": "TASK1"}, {"status": "CREATED"}, {"task_type": "TASK2", "status": "FAILED"}]:
            with self.subTest(query=q):
                q = dict(q, next_token=tok)
                self.assertEqual(self.assertError(self.server.get("/tasks?" + urlencode(q)), 400), OTHER_FILTERS)
        self.assertEqual(self.assertError(self.server.get("/tasks?next_token=garbage"), 400),
                         "Invalid next_token")

    # -- trailing slash: a 307 to the route, as FastAPI does ------------------------
    def assertRedirect(self, r, location):
        self.assertEqual(r.status, 307, r)
        self.assertEqual(r.header("Location"), location, r.headers)
        self.assertEqual(r.body, b"", r)

    def test_trailing_slash_get_redirects_with_query(self):
        tid = self.server.create("TASK2")
        r = self.server.get("/tasks/?limit=1&status=CREATED")
        self.assertRedirect(r, "/tasks?limit=1&status=CREATED")
        page = self.assertJSON(self.server.get(r.header("Location")), 200)
        self.assertEqual(len(page["tasks"]), 1)
        self.assertEqual(page["tasks"][0]["status"], "CREATED")
        # the parameters the API reads, in one order, re-encoded; others dropped
        r = self.server.get("/tasks/?" + urlencode({"foo": "bar", "task_type": "TASK2", "status": "CREATED",
                                                    "limit": "2"}))
        self.assertRedirect(r, "/tasks?limit=2&status=CREATED&task_type=TASK2")
        self.assertRedirect(self.server.get("/tasks/"), "/tasks")
        self.assertRedirect(self.server.get("/tasks/?foo=1"), "/tasks")
        r = self.server.get("/tasks/?status=IN%20PROGRESS")
        self.assertRedirect(r, "/tasks?status=IN%20PROGRESS")
        self.assertValidation(self.server.get(r.header("Location")), ("query", "status"))
        # a page token survives the trip
        self.server.create("TASK2")
        tok = self.assertJSON(self.server.get("/tasks?limit=1&task_type=TASK2"), 200)["next_token"]
        self.assertIsInstance(tok, str)
        r = self.server.get("/tasks/?" + urlencode({"next_token": tok, "limit": 1}))
        self.assertRedirect(r, "/tasks?" + urlencode({"limit": 1, "next_token": tok}))
        nxt = self.assertJSON(self.server.get(r.header("Location")), 200)
        self.assertEqual(nxt["tasks"][0]["task_type"], "TASK2")
        # a task's path
        r = self.server.get("/tasks/" + tid + "/")
        self.assertRedirect(r, "/tasks/" + tid)
        self.assertEqual(self.assertJSON(self.server.get(r.header("Location")), 200)["id"], tid)
        self.assertRedirect(self.server.get("/health/"), "/health")

    def test_trailing_slash_post_and_patch_redirect(self):
        before = {t["id"] for t in self.server.list_all()}
        body = {"task_type": "TASK2", "data": {"via": "slash"}}
        r = self.server.post("/tasks/", body)
        self.assertRedirect(r, "/tasks")
        self.assertEqual({t["id"] for t in self.server.list_all()}, before, "a 307 created a task")
        # a client following the 307 repeats the method and body there
        r = self.server.post(r.header("Location"), body)
        tid = self.assertJSON(r, 201)["id"]
        self.assertEqual(self.server.task(tid)["data"], {"via": "slash"})
        patch = {"status": "FAILED", "status_msg": "cancelled"}
        r = self.server.patch("/tasks/" + tid + "/", patch)
        self.assertRedirect(r, "/tasks/" + tid)
        self.assertEqual(self.server.task(tid)["status"], "CREATED")
        self.assertEqual(self.server.patch(r.header("Location"), patch).status, 204)
        self.assertEqual(self.server.task(tid)["status"], "FAILED")

    def test_trailing_slash_only_for_routes(self):
        tid = self.server.create("TASK2")
        for path in ["/nope/", "/tasks/x/y/", "/nope//", "/tasks/x/y//?limit=1"]:
            with self.subTest(path=path):
                r = self.server.get(path)
                self.assertEqual(self.assertError(r, 404), "Not Found")
                self.assertIsNone(r.header("Location"))
        # every trailing slash goes, as Starlette strips them
        for path, to in [("/tasks//", "/tasks"), ("/tasks//?limit=1", "/tasks?limit=1"),
                         ("/health//", "/health"), ("/tasks/" + tid + "//", "/tasks/" + tid)]:
            with self.subTest(path=path):
                self.assertRedirect(self.server.get(path), to)

    @unittest.skipUnless(on_lambda(), "a stage in the path exists only behind API Gateway")
    def test_location_under_the_stage(self):
        # the execute-api URL, /dev/...: every Location keeps the stage, and following it works
        r = self.server.post("/dev/tasks", {"task_type": "TASK2"})
        tid = self.assertJSON(r, 201)["id"]
        self.assertEqual(r.header("Location"), "/dev/tasks/" + tid)
        self.assertEqual(self.assertJSON(self.server.get(r.header("Location")), 200)["id"], tid)
        r = self.server.get("/dev/tasks/?limit=1&task_type=TASK2")
        self.assertRedirect(r, "/dev/tasks?limit=1&task_type=TASK2")
        self.assertEqual(self.assertJSON(self.server.get(r.header("Location")), 200)["tasks"][0]["id"], tid)
        self.assertRedirect(self.server.get("/dev/tasks/" + tid + "/"), "/dev/tasks/" + tid)

    def test_long_id_is_a_task_not_found(self):
        # too long to be an id: the route still answers, as the original did
        paths = ["/tasks/" + "b" * 200, "/tasks/" + "b" * 5000]
        if not on_lambda():
            paths.append("/tasks/" + "b" * 5000 + "/trace")  # the trace view is the local server's
        for path in paths:
            with self.subTest(n=len(path)):
                self.assertEqual(self.assertError(self.server.get(path), 404), "Task not found")

    def test_null_and_bom_bodies(self):
        # FastAPI reads a null body as none; Python's json skips a UTF-8 byte order mark
        for method, path in [("POST", "/tasks"), ("PATCH", "/tasks/" + self.server.create("TASK2"))]:
            with self.subTest(method=method):
                r = self.server.request(method, path, b"null")
                self.assertEqual(self.assertValidation(r, ("body",)),
                                 [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
        r = self.server.post("/tasks", b'\xef\xbb\xbf{"task_type": "TASK2", "data": {"k": 1}}')
        tid = self.assertJSON(r, 201)["id"]
        self.assertEqual(self.server.task(tid)["data"], {"k": 1})

    @local_only("on Lambda the API keeps a body to 256 KiB - 2048 bytes, what one SNS message can carry")
    def test_large_body_accepted(self):
        # A DynamoDB-size item (400 KB) is well within the local body limit (1 MiB).
        data = {"blob": "b" * 400000, "list": list(range(1000))}
        body = json.dumps({"task_type": "TASK2", "data": data})
        self.assertGreater(len(body), 400000)
        tid = self.assertJSON(self.server.post("/tasks", body), 201)["id"]
        self.assertEqual(self.server.task(tid)["data"], data)

    # -- PATCH / the state machine --------------------------------------------------
    def test_claim_then_complete_with_result(self):
        tid = self.server.create("TASK2", data={"job": 1})
        created = self.server.task(tid)
        self.assertIsNone(created["updated_time"])
        self.assertIsNone(created["result"])
        r = self.server.set_status(tid, "IN_PROGRESS", "Task started")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        t = self.server.task(tid)
        self.assertEqual(t["status"], "IN_PROGRESS")
        self.assertEqual(t["status_msg"], "Task started")
        self.assertIsInstance(t["updated_time"], int)
        self.assertGreaterEqual(t["updated_time"], t["created_time"])
        self.assertLessEqual(t["updated_time"], int(time.time()) + 2)
        self.assertEqual(t["data"], {"job": 1})
        # A repeated claim is a conflict naming the current status.
        r = self.server.set_status(tid, "IN_PROGRESS", "Task started")
        self.assertIn("IN_PROGRESS", self.assertError(r, 409))
        r = self.server.set_status(tid, "CREATED", "")
        self.assertIn("IN_PROGRESS", self.assertError(r, 409))
        result = {"answer": 42, "items": [1, "x", None, {"deep": [True, False]}], "ratio": 0.25}
        r = self.server.set_status(tid, "COMPLETED", "Task completed", result=result)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        t = self.server.task(tid)
        self.assertEqual(t["status"], "COMPLETED")
        self.assertEqual(t["status_msg"], "Task completed")
        self.assertEqual(t["result"], result)
        self.assertEqual(t["data"], {"job": 1})
        # Repeating the very same final change answers 204 again.
        r = self.server.set_status(tid, "COMPLETED", "Task completed", result=result)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.server.task(tid)["status"], "COMPLETED")
        # Anything else from a final status is a conflict naming it.
        for status, msg in [("COMPLETED", "other message"), ("FAILED", "Task completed"),
                            ("IN_PROGRESS", "Task started"), ("CREATED", "")]:
            with self.subTest(status=status, msg=msg):
                d = self.assertError(self.server.set_status(tid, status, msg), 409)
                self.assertIsInstance(d, str)
                self.assertIn("COMPLETED", d)
        t2 = self.server.task(tid)
        self.assertEqual((t2["status"], t2["status_msg"], t2["result"]),
                         ("COMPLETED", "Task completed", result))

    def test_in_progress_to_failed(self):
        tid = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(tid, "IN_PROGRESS", "Task started").status, 204)
        r = self.server.set_status(tid, "FAILED", "Task failed somehow", result="boom")
        self.assertEqual(r.status, 204, r)
        t = self.server.task(tid)
        self.assertEqual((t["status"], t["status_msg"], t["result"]),
                         ("FAILED", "Task failed somehow", "boom"))
        self.assertEqual(self.server.set_status(tid, "FAILED", "Task failed somehow").status, 204)
        self.assertIn("FAILED", self.assertError(self.server.set_status(tid, "COMPLETED", "x"), 409))
        self.assertIn("FAILED", self.assertError(self.server.set_status(tid, "FAILED", "other"), 409))

    def test_created_transitions(self):
        # CREATED -> COMPLETED and CREATED -> CREATED are not allowed.
        tid = self.server.create("TASK2")
        self.assertIn("CREATED", self.assertError(self.server.set_status(tid, "COMPLETED", "done"), 409))
        self.assertIn("CREATED", self.assertError(self.server.set_status(tid, "CREATED", ""), 409))
        self.assertEqual(self.server.task(tid)["status"], "CREATED")
        self.assertIsNone(self.server.task(tid)["updated_time"])
        # CREATED -> FAILED (cancelled before it started) is allowed.
        r = self.server.set_status(tid, "FAILED", "cancelled")
        self.assertEqual(r.status, 204, r)
        t = self.server.task(tid)
        self.assertEqual((t["status"], t["status_msg"]), ("FAILED", "cancelled"))
        self.assertIsInstance(t["updated_time"], int)
        self.assertIn("FAILED", self.assertError(self.server.set_status(tid, "IN_PROGRESS", "x"), 409))

    def test_result_round_trip_kinds(self):
        for result in ["text", 0, -7, 3.5, True, False, [1, [2, [3]]], {"a": {"b": {"c": "d"}}},
                       "ünï\u2028", {}]:
            with self.subTest(result=result):
                tid = self.server.create("TASK2")
                self.assertEqual(self.server.set_status(tid, "IN_PROGRESS", "Task started").status, 204)
                r = self.server.set_status(tid, "COMPLETED", "Task completed", result=result)
                self.assertEqual(r.status, 204, r)
                self.assertEqual(self.server.task(tid)["result"], result)
        # result omitted or null: stays null.
        tid = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(tid, "IN_PROGRESS", "Task started").status, 204)
        self.assertIsNone(self.server.task(tid)["result"])
        self.assertEqual(self.server.set_status(tid, "COMPLETED", "ok", result=None).status, 204)
        self.assertIsNone(self.server.task(tid)["result"])

    def test_status_msg_round_trip(self):
        msg = "ünïcödé ✓ \"quoted\" \\ back\nnew line \U0001F600"
        tid = self.server.create("TASK2")
        self.assertEqual(self.server.set_status(tid, "IN_PROGRESS", msg).status, 204)
        self.assertEqual(self.server.task(tid)["status_msg"], msg)
        listed = [t for t in self.server.list_all(status="IN_PROGRESS") if t["id"] == tid]
        self.assertEqual(listed[0]["status_msg"], msg)

    def test_patch_errors(self):
        missing = str(uuid.UUID(int=0x0190f3c27b1e7c3a9d2e5a1b2c3d4e5f))
        self.assertEqual(self.assertError(
            self.server.set_status(missing, "IN_PROGRESS", "Task started"), 404), "Task not found")
        self.assertEqual(self.assertError(
            self.server.set_status("not-a-uuid", "IN_PROGRESS", "Task started"), 404), "Task not found")
        tid = self.server.create("TASK2")
        self.assertValidation(self.server.patch("/tasks/" + tid, {"status_msg": "x"}),
                              ("body", "status"), types={("body", "status"): "missing"})
        self.assertValidation(self.server.patch("/tasks/" + tid, {"status": "DONE", "status_msg": "x"}),
                              ("body", "status"), types={("body", "status"): "literal_error"})
        self.assertValidation(self.server.patch("/tasks/" + tid, {"status": "FAILED", "status_msg": 5}),
                              ("body", "status_msg"), types={("body", "status_msg"): "string_type"})
        self.assertValidation(self.server.patch("/tasks/" + tid, {"status": 3, "status_msg": []}),
                              ("body", "status"), ("body", "status_msg"),
                              types={("body", "status"): "literal_error", ("body", "status_msg"): "string_type"})
        # None of the invalid PATCHes changed the task.
        t = self.server.task(tid)
        self.assertEqual((t["status"], t["updated_time"]), ("CREATED", None))

    # -- other routes ----------------------------------------------------------------
    def test_health(self):
        self.assertEqual(self.assertJSON(self.server.get("/health"), 200), {"status": "ok"})

    def test_unknown_route_404(self):
        for path in ["/nope", "/tasks/x/y/z", "/task", "/tasksx", "/health/more", "/TASKS"]:
            with self.subTest(path=path):
                self.assertEqual(self.assertError(self.server.get(path), 404), "Not Found")
        self.assertEqual(self.assertError(self.server.post("/nope", {}), 404), "Not Found")

    @unittest.skipUnless(on_lambda(), "taskd serves these routes (test_live.py, test_dashboard_page.py, ...)")
    def test_taskd_only_routes_404_say_what_serves_them(self):
        tid = self.server.create("TASK2")
        taskd_only = "%s is served by taskd only"
        for method, path, route, instead in [
                ("GET", "/events", "GET /events",
                 ": the AWS deployment's task changes are in its DynamoDB table's stream"),
                ("GET", "/queues", "GET /queues",
                 ": the AWS deployment's queue counts are SQS's, in its console and CloudWatch metrics"),
                ("POST", "/queues/task1/redrive", "POST /queues/{name}/redrive",
                 ": on AWS a dead-letter queue's worker fails each dead letter's task and deletes the "
                 "message, so there is none to send back"),
                ("GET", "/metrics", "GET /metrics",
                 ": the AWS deployment's functions send their metrics to CloudWatch"),
                ("GET", "/tasks/%s/trace" % tid, "GET /tasks/{task_id}/trace",
                 ": the AWS deployment's traces are in X-Ray"),
                ("GET", "/", "GET /", ""),
                ("GET", "/dashboard/app.js", "GET /dashboard/{name}", "")]:
            with self.subTest(method=method, path=path):
                r = self.server.post(path, {}) if method == "POST" else self.server.get(path)
                self.assertEqual(self.assertError(r, 404), taskd_only % route + instead)

    def test_wrong_method_405(self):
        tid = self.server.create("TASK2")
        cases = [("DELETE", "/tasks", {"GET", "POST"}),
                 ("PUT", "/tasks", {"GET", "POST"}),
                 ("PATCH", "/tasks", {"GET", "POST"}),
                 ("DELETE", "/tasks/" + tid, {"GET", "PATCH"}),
                 ("POST", "/tasks/" + tid, {"GET", "PATCH"}),
                 ("POST", "/health", {"GET"})]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, body=b"{}" if method != "DELETE" else None)
                self.assertError(r, 405)
                hdr = r.header("Allow")
                self.assertIsNotNone(hdr, "405 without Allow header: %r" % (r,))
                got = {m.strip().upper() for m in hdr.split(",") if m.strip()}
                got.discard("HEAD")
                got.discard("OPTIONS")
                self.assertEqual(got, allow)
        # The task is still there after DELETE.
        self.assertEqual(self.server.task(tid)["id"], tid)

    def test_openapi(self):
        doc = self.assertJSON(self.server.get("/openapi.json"), 200)
        self.assertIsInstance(doc.get("openapi"), str)
        self.assertTrue(doc["openapi"].startswith("3."), doc.get("openapi"))
        self.assertIn("info", doc)
        paths = doc["paths"]
        self.assertIn("/tasks", paths)
        self.assertIn("/tasks/{task_id}", paths)
        self.assertIn("/health", paths)
        self.assertTrue({"get", "post"} <= set(paths["/tasks"]), paths["/tasks"])
        self.assertTrue({"get", "patch"} <= set(paths["/tasks/{task_id}"]), paths["/tasks/{task_id}"])
        self.assertIn("get", paths["/health"])
        tid = self.server.create("TASK2")
        methods = ["get", "post", "put", "patch", "delete"]
        for path, item in paths.items():
            concrete = path.replace("{task_id}", tid)
            if "{" in concrete:
                continue  # a parameter this test cannot fill in
            for m in methods:
                with self.subTest(path=path, method=m):
                    body = None if m in ("get", "delete") else b"{}"
                    if path == "/events" and m == "get":  # a stream that does not end: its head
                        with EventStream(self.server) as st:
                            self.assertEqual(st.status, 200, st.headers)
                        continue
                    r = self.server.request(m.upper(), concrete, body=body)
                    if m in item:
                        self.assertNotIn(r.status, (404, 405),
                                         "documented %s %s answered %r" % (m, path, r))
                    else:
                        self.assertEqual(r.status, 405,
                                         "undocumented %s %s answered %r" % (m, path, r))
        # POST/PATCH with {} were validation errors; the task is unchanged.
        self.assertEqual(self.server.task(tid)["status"], "CREATED")

    def test_keep_alive_across_errors(self):
        # One connection, several requests including errors: framing stays intact.
        conn = self.server.connection()
        try:
            tid = self.assertJSON(self.server.post("/tasks", {"task_type": "TASK2"}, conn=conn), 201)["id"]
            self.assertError(self.server.get("/nope", conn=conn), 404)
            self.assertValidation(self.server.post("/tasks", "{bad", conn=conn))
            self.assertError(self.server.request("DELETE", "/tasks", conn=conn), 405)
            r = self.server.patch("/tasks/" + tid, {"status": "IN_PROGRESS", "status_msg": "s"}, conn=conn)
            self.assertEqual(r.status, 204)
            self.assertError(self.server.patch("/tasks/" + tid, {"status": "IN_PROGRESS", "status_msg": "s"},
                                               conn=conn), 409)
            self.assertEqual(self.assertJSON(self.server.get("/tasks/" + tid, conn=conn), 200)["status"],
                             "IN_PROGRESS")
            self.assertEqual(self.assertJSON(self.server.get("/health", conn=conn), 200), {"status": "ok"})
        finally:
            conn.close()

    @local_only("the local HTTP server's wire handling: on AWS, API Gateway's")
    def test_pipelined_requests(self):
        # Several requests written at once on one connection are all answered, in order.
        body = json.dumps({"task_type": "TASK2", "data": {"pipelined": True}}).encode()
        post = (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        last = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        data, _ = self.exchange_until_closed(post * 5 + last)
        statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
        self.assertEqual(statuses, [201] * 5 + [200], data[:1000])
        ids = [json.loads(m)["id"] for m in re.findall(rb'\{"id":\s*"[^"]+"\}', data)]
        self.assertEqual(len(ids), 5)
        self.assertEqual(ids, sorted(ids))
        for tid in ids:
            self.assertEqual(self.server.task(tid)["data"], {"pipelined": True})

    def exchange_until_closed(self, payload, half_close=False, corked=False):
        """Send payload on a new connection (then shut the sending side, with half_close) and
        read until the server closes it: (bytes, seconds). corked: once the server has taken
        the connection, the payload is held back (TCP_CORK) until the shutdown, so the FIN rides
        on its last segment and the server sees the last bytes and the end in one event."""
        c = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        data = b""
        started = time.monotonic()
        try:
            if corked:  # taken and waiting for its first bytes: they come in one event
                wait_until(lambda: accepted(c, self.server.port), 10, what="the connection accepted")
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            c.sendall(payload)
            if half_close:
                c.shutdown(socket.SHUT_WR)
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            c.close()
        return data, time.monotonic() - started

    @local_only("the local HTTP server's connection handling: on AWS, API Gateway's")
    def test_half_closed_client_answered(self):
        # A client that shuts its sending side after its requests (printf ... | nc) gets every
        # answer, then the connection closes at once, not at the idle timeout.
        get = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for corked in (False, True):
            data, took = self.exchange_until_closed(get * 2, half_close=True, corked=corked)
            self.assertLess(took, 5.0, "the connection stayed open")
            self.assertEqual(re.findall(rb"HTTP/1\.1 (\d{3}) ", data), [b"200"] * 2,
                             (corked, data))
        # a HEAD request gets no body, even when it is refused before it is routed
        data, took = self.exchange_until_closed(
            b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\n", half_close=True)
        self.assertEqual(re.findall(rb"HTTP/1\.1 (\d{3}) ", data), [b"200", b"400"], data)
        self.assertNotIn(b"{", data, "a body in a HEAD answer")

    def test_unknown_query_parameters_ignored(self):
        tid = self.server.create("TASK2")
        page = self.assertJSON(self.server.get("/tasks?foo=bar&limit=1&x="), 200)
        self.assertEqual([t["id"] for t in page["tasks"]], [tid])
        self.assertEqual(self.assertJSON(self.server.get("/tasks/" + tid + "?foo=1"), 200)["id"], tid)

    def test_json_content_type(self):
        tid = self.server.create("TASK2")
        for path in ["/tasks", "/tasks/" + tid, "/health", "/openapi.json", "/nope"]:
            with self.subTest(path=path):
                r = self.server.get(path)
                self.assertTrue(r.header("Content-Type", "").startswith("application/json"), r.headers)
                json.loads(r.body)




def unix_of(iso):
    """Unix seconds of a history time ("2022-03-25T17:26:43Z")."""
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


class HistoryAssertions:
    def assertHistory(self, server, tid, want, truncated=False):
        """Assert the task's history is want, [(status, status_msg)], oldest first, at
        non-decreasing ISO 8601 UTC times; returns the times as Unix seconds."""
        h = server.history(tid)
        self.assertEqual(set(h), {"id", "history", "truncated"}, h)
        self.assertEqual(h["id"], tid)
        self.assertEqual([(e["status"], e["status_msg"]) for e in h["history"]], want, h)
        for e in h["history"]:
            self.assertEqual(set(e), {"status", "status_msg", "time"}, e)
            self.assertRegex(e["time"], ISO_UTC_RE)
        times = [unix_of(e["time"]) for e in h["history"]]
        self.assertEqual(times, sorted(times), "history times go backwards: %r" % h)
        self.assertIs(h["truncated"], truncated, h)
        return times


class History(ServerTestCase, HistoryAssertions):
    """GET /tasks/{id}/history: every accepted status change, oldest first."""

    def test_client_changes(self):
        t0 = int(time.time())
        tid = self.server.create("TASK2")
        self.assertHistory(self.server, tid, [("CREATED", "")])
        self.assertEqual(self.server.set_status(tid, "IN_PROGRESS", "Task started").status, 204)
        # refused changes (a progress message while IN_PROGRESS is one) and repeats are not
        # transitions
        self.assertError(self.server.set_status(tid, "IN_PROGRESS", "50% done"), 409)
        self.assertError(self.server.set_status(tid, "CREATED", ""), 409)
        self.assertEqual(self.server.set_status(tid, "COMPLETED", "all done", result=1).status, 204)
        self.assertEqual(self.server.set_status(tid, "COMPLETED", "all done", result=1).status, 204)
        self.assertError(self.server.set_status(tid, "FAILED", "too late"), 409)
        times = self.assertHistory(self.server, tid, [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                                                      ("COMPLETED", "all done")])
        t = self.server.task(tid)
        self.assertEqual((times[0], times[-1]), (t["created_time"], t["updated_time"]), t)
        self.assertTrue(t0 - 2 <= times[0] <= int(time.time()) + 2, times)
        self.assertNotIn("history", t)
        # the id is taken as GET /tasks/{id} takes it
        self.assertEqual(self.server.history(tid.upper())["id"], tid)

    def test_cancelled_and_messages(self):
        tid = self.server.create("TASK3")
        msg = "cancelled: \"quotes\", ünïcödé\u2028 and \\ too"
        self.assertEqual(self.server.set_status(tid, "FAILED", msg).status, 204)
        self.assertHistory(self.server, tid, [("CREATED", ""), ("FAILED", msg)])
        # a long message is kept whole on the task, its first 512 bytes in the history
        tid = self.server.create("TASK3")
        long_msg = "é" * 400
        self.assertEqual(self.server.set_status(tid, "FAILED", long_msg).status, 204)
        self.assertEqual(self.server.task(tid)["status_msg"], long_msg)
        self.assertHistory(self.server, tid, [("CREATED", ""), ("FAILED", "é" * 256)])

    def test_unknown_and_malformed_ids(self):
        for tid in [str(uuid.UUID(int=0x0190f3c27b1e7c3a9d2e5a1b2c3d4e5f)), "abc", "%20", "1" * 300]:
            with self.subTest(id=tid):
                self.assertEqual(self.assertError(self.server.get("/tasks/%s/history" % tid), 404),
                                 "Task not found")
        tid = self.server.create("TASK2")
        r = self.server.post("/tasks/%s/history" % tid, {"status": "FAILED"})
        self.assertError(r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.assertHistory(self.server, tid, [("CREATED", "")])


@local_only("runs tasks through the local pipeline: on AWS, test_lambda_pipeline.py")
class PipelineHistory(ServersTestCase, HistoryAssertions):
    """The handlers' claims and reports are transitions too."""

    tmp_prefix = "taskd-history-"

    def run_one(self, cfg, env):
        s = Taskd(db=self.db, config=write_config(self.tmp, cfg), tmpdir=self.tmp, env=env)
        self.servers.append(s)
        tid = s.create("TASK1", data={"x": 1})
        self.wait_status(s, tid, ("COMPLETED", "FAILED"), 20)
        return s, tid

    def test_noop_task(self):
        s, tid = self.run_one({"handlers": [{"queue": "task1", "handler": "noop"}]}, {})
        t = s.task(tid)
        times = self.assertHistory(s, tid, [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                                            ("COMPLETED", t["status_msg"])])
        self.assertEqual(times[-1], t["updated_time"])

    def test_failed_task1(self):
        s, tid = self.run_one({}, {"TASK1_FAILURE_RATE": "1", "TASK1_SECONDS": "0"})
        self.assertHistory(s, tid, [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                                    ("FAILED", "Task failed somehow")])


class Bounds(ServerTestCase):
    """What one request may hold: a status_msg of at most 4096 characters, a page of GET /tasks
    of at most 1 MiB (it stops early with a next_token)."""

    def test_status_msg_at_most_4096_characters(self):
        tid = self.server.create("TASK2")
        for msg in ("x" * 4097, "\u00e9" * 4097, "\U0001F600" * 4097):
            r = self.server.patch("/tasks/" + tid, {"status": "IN_PROGRESS", "status_msg": msg})
            detail = self.assertValidation(r, ("body", "status_msg"),
                                           types={("body", "status_msg"): "string_too_long"})
            self.assertEqual(detail[0]["ctx"], {"max_length": 4096}, detail)
        self.assertEqual(self.server.task(tid)["status"], "CREATED")
        for status, msg in (("IN_PROGRESS", "x" * 4096), ("FAILED", "\U0001F600" * 4096)):
            self.assertEqual(self.server.set_status(tid, status, msg).status, 204)
            self.assertEqual(self.server.task(tid)["status_msg"], msg)

    def test_a_page_stops_before_1_mib(self):
        # 4096 control characters are 24 KiB of JSON each: 50 such tasks are 1.2 MiB
        msg = "\u0001" * 4096
        mine = []
        for _ in range(50):
            tid = self.server.create("TASK3")
            self.assertEqual(self.server.set_status(tid, "FAILED", msg).status, 204)
            mine.append(tid)
        q = {"limit": 100, "task_type": "TASK3", "status": "FAILED"}
        r = self.server.get("/tasks?" + urlencode(q))
        first = self.assertJSON(r, 200)
        self.assertLessEqual(len(r.body), 1024 * 1024)
        self.assertLess(len(first["tasks"]), 50, "a 1.2 MiB page was built")
        self.assertGreater(len(first["tasks"]), 30)
        self.assertIsInstance(first["next_token"], str)
        q["next_token"] = first["next_token"]
        rest = self.assertJSON(self.server.get("/tasks?" + urlencode(q)), 200)
        self.assertIsNone(rest["next_token"])
        listed = [t["id"] for t in first["tasks"] + rest["tasks"]]
        self.assertEqual(listed, list(reversed(mine)), "a task skipped or repeated across pages")
        self.assertTrue(all(t["status_msg"] == msg for t in first["tasks"] + rest["tasks"]))


class ClaimKeys(ServerTestCase):
    """A client's claim with an Idempotency-Key can be made again (its 204 was lost, say): the
    same key and message answer 204 and change nothing; any other claim still loses (409)."""

    def claim(self, tid, msg="mine", key=None):
        headers = {"Idempotency-Key": key} if key is not None else None
        return self.server.patch("/tasks/" + tid, json.dumps({"status": "IN_PROGRESS", "status_msg": msg}),
                                 headers=headers)

    def test_a_claim_made_again_with_its_key_answers_204(self):
        srv = self.server
        tid = srv.create("TASK2")
        self.assertEqual(self.claim(tid, key="worker-7").status, 204)
        before = srv.task(tid)
        r = self.claim(tid, key="worker-7")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(srv.task(tid), before, "a repeat changed the task")
        entries = srv.history(tid)["history"]
        self.assertEqual([e["status"] for e in entries], ["CREATED", "IN_PROGRESS"], entries)
        # another claimer, a claim without the key, or another message: still a conflict
        for key, msg in [("worker-8", "mine"), (None, "mine"), ("worker-7", "other")]:
            with self.subTest(key=key, msg=msg):
                self.assertIn("IN_PROGRESS", self.assertError(self.claim(tid, msg, key), 409))
        self.assertEqual(srv.set_status(tid, "COMPLETED", "done").status, 204)
        # once finished, the key claims nothing
        self.assertIn("COMPLETED", self.assertError(self.claim(tid, key="worker-7"), 409))

    def test_a_claim_without_a_key_is_not_repeatable(self):
        tid = self.server.create("TASK2")
        self.assertEqual(self.claim(tid).status, 204)
        self.assertIn("IN_PROGRESS", self.assertError(self.claim(tid), 409))

    def test_a_claims_key_is_checked_as_a_creations(self):
        tid = self.server.create("TASK2")
        for key in ["", "k" * 256]:
            with self.subTest(length=len(key)):
                self.assertIn("Idempotency-Key must be 1 to 255 bytes",
                              self.assertError(self.claim(tid, key=key), 400))
        self.assertEqual(self.server.task(tid)["status"], "CREATED")
        # a final change takes no key: it is repeatable as it is
        self.assertEqual(self.server.patch("/tasks/" + tid, json.dumps({"status": "FAILED"}),
                                           headers={"Idempotency-Key": ""}).status, 204)


@local_only("on AWS the scheduled sweep role ends leases (test_sweep_role)")
class ClaimLease(ServerTestCase):
    """A client's claim holds its task claim_timeout seconds from the claim or its last repeat;
    a lease that runs out fails the task, saying so, and a late outcome is refused."""

    server_config = {"claim_timeout": 2, "sweep_interval": 1}

    def claim(self, tid, key=None):
        headers = {"Idempotency-Key": key} if key else None
        return self.server.patch("/tasks/" + tid, json.dumps({"status": "IN_PROGRESS"}), headers=headers)

    def wait_status(self, tid, status, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t = self.server.task(tid)
            if t["status"] == status:
                return t
            time.sleep(0.1)  # polling interval: the sweep runs on its own schedule
        self.fail("task %s not %s within %s s: %s" % (tid, status, seconds, self.server.task(tid)))

    def test_a_lease_that_runs_out_fails_its_task(self):
        srv = self.server
        tid = srv.create("TASK2")
        r = self.claim(tid)
        self.assertEqual(r.status, 204, r)
        claimed = int(time.time())
        t = self.wait_status(tid, "FAILED", 8)
        self.assertRegex(t["status_msg"], r"^claim expired: no outcome reported by \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        end = calendar.timegm(time.strptime(t["status_msg"][-20:], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertTrue(claimed + 1 <= end <= claimed + 3, (claimed, t))
        self.assertGreaterEqual(t["updated_time"], end)
        self.assertEqual(srv.history(tid)["history"][-1]["status_msg"], t["status_msg"])
        self.assertIn("FAILED", self.assertError(srv.set_status(tid, "COMPLETED", "late"), 409))
        # said once the change is committed: a loaded machine may show the task first
        logged = wait_until(lambda: [o for o in srv.log_json()
                                     if o.get("task_id") == tid and o.get("message") == "task failed"],
                            10, what="the ended lease logged")
        self.assertEqual([o.get("reason") for o in logged], [t["status_msg"]], srv.stderr_text()[-2000:])
        self.assertEqual(logged[0]["level"], "WARNING")
        counted = re.search(r'(?m)^taskd_claims_expired_total\{task_type="TASK2"\} (\d+)$', srv.get("/metrics").body.decode())
        self.assertTrue(counted and int(counted.group(1)) >= 1, "the ended lease is not counted")

    def test_a_claim_made_again_renews_its_lease(self):
        srv = self.server
        tid = srv.create("TASK2")
        self.assertEqual(self.claim(tid, key="k").status, 204)
        renew_until = time.monotonic() + 5  # past two leases of 2 s
        while time.monotonic() < renew_until:
            time.sleep(0.5)
            r = self.claim(tid, key="k")
            self.assertEqual(r.status, 204, (r, srv.task(tid)))
        self.assertEqual(srv.task(tid)["status"], "IN_PROGRESS")
        self.wait_status(tid, "FAILED", 8)  # renewals stopped: the lease runs out

    def test_an_outcome_in_time_ends_the_lease(self):
        srv = self.server
        tid = srv.create("TASK2")
        self.assertEqual(self.claim(tid, key="k").status, 204)
        other = srv.create("TASK2")  # claimed after it and left: its lease ends no sooner
        self.assertEqual(self.claim(other).status, 204)
        self.assertEqual(srv.set_status(tid, "COMPLETED", "Task completed", result=1).status, 204)
        self.wait_status(other, "FAILED", 8)  # a sweep past the end of both leases has run
        t = srv.task(tid)
        self.assertEqual((t["status"], t["status_msg"]), ("COMPLETED", "Task completed"))


@local_only("DynamoDB's TTL deletes expired items within about 48 h, not at a sweep")
class Retention(ServerTestCase):
    """Retention: finished tasks past their ttl (and the grace) are deleted; open tasks never."""

    server_config = {"retention_grace": 0, "sweep_interval": 1}

    def test_expired_finished_tasks_are_swept_open_ones_never(self):
        srv = self.server
        past, future = 1662381756, 4102444800
        created = srv.create("TASK2", ttl=past)
        running = srv.create("TASK2", ttl=str(past))
        self.assertEqual(srv.set_status(running, "IN_PROGRESS", "Task started").status, 204)
        failed = srv.create("TASK2", ttl=past)
        self.assertEqual(srv.set_status(failed, "FAILED", "cancelled").status, 204)
        done = srv.create("TASK3", ttl=past)
        self.assertEqual(srv.set_status(done, "IN_PROGRESS", "Task started").status, 204)
        self.assertEqual(srv.set_status(done, "COMPLETED", "Task completed", result=1).status, 204)
        later = srv.create("TASK2", ttl=future)
        self.assertEqual(srv.set_status(later, "FAILED", "cancelled").status, 204)
        forever = srv.create("TASK2")
        self.assertEqual(srv.set_status(forever, "FAILED", "cancelled").status, 204)
        deadline = time.monotonic() + 10
        gone = set()
        while time.monotonic() < deadline and gone != {failed, done}:
            gone = {t for t in (failed, done) if srv.get("/tasks/" + t).status == 404}
            time.sleep(0.1)  # polling interval: the sweep runs on its own schedule
        self.assertEqual(gone, {failed, done}, "finished tasks past their ttl were not swept in 10 s")
        listed = {t["id"] for t in srv.list_all()}
        self.assertFalse({failed, done} & listed)
        # Open tasks are kept however old their ttl; finished ones before their ttl too.
        for tid, status in [(created, "CREATED"), (running, "IN_PROGRESS"), (later, "FAILED"),
                            (forever, "FAILED")]:
            with self.subTest(task=status):
                self.assertEqual(self.assertJSON(srv.get("/tasks/" + tid), 200)["status"], status)
                self.assertIn(tid, listed)
        # PATCH of a swept task is a 404, and its history went with it.
        self.assertError(srv.set_status(done, "COMPLETED", "Task completed"), 404)
        self.assertError(srv.get("/tasks/%s/history" % done), 404)
        rows = db_query(srv.db, "SELECT task_id, count(*) FROM task_history GROUP BY task_id")
        kept = dict(rows)
        self.assertNotIn(failed, kept)
        self.assertNotIn(done, kept)
        # (the creation is the task row's own: a task that never changed has no rows)
        self.assertEqual((kept.get(created), kept.get(running), kept.get(later)), (None, 1, 1), rows)


if __name__ == "__main__":
    unittest.main()
