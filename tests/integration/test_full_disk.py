"""A full disk: the database on a 2 MiB tmpfs, filled by load until writes fail.

While it is full, the API answers 503 with Retry-After and a JSON detail (never a 500),
GET /health answers 503 "unhealthy" saying why, the reason is logged once rather than per
request, and the pipeline backs off (a bounded number of log lines, nothing skipped). Once
the filesystem grows, /health recovers and every task accepted with 201 completes. A little
room back is not enough: small writes commit, but health waits for room for more.

The load runs without the stream consumer, and taskd starts again with it on the full disk,
every loaded task still to publish: a consumer that ran through the load could publish the
last task before the disk was full (a message fits where a task's two copies of its data do
not) and then have nothing left to retry. So the disk never fills while a handler runs here:
the seeds' receives meet it, a run's own writes (its claim, its report) do not.

Mounting needs root (CAP_SYS_ADMIN): where it is not permitted the test is skipped (exit 77,
CTest's SKIP_RETURN_CODE for it in CMakeLists.txt).
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServersTestCase, Taskd, queue_table, wait_until, write_config  # noqa: E402

SKIPPED = 77


def mount_tmpfs(path, size):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path],
                          capture_output=True, text=True)


def log_ms(o):
    """A log line's timestamp, in ms since the epoch."""
    t = datetime.datetime.strptime(o["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return (t.replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000


def can_mount():
    """None when a tmpfs can be mounted here, else why not."""
    d = tempfile.mkdtemp(prefix="taskd-mount-probe-")
    try:
        try:
            p = mount_tmpfs(d, "1m")
        except OSError as e:
            return str(e)
        if p.returncode != 0:
            return p.stderr.strip() or "mount exited %d" % p.returncode
        subprocess.run(["umount", d], capture_output=True)
        return None
    finally:
        os.rmdir(d)


class FullDisk(ServersTestCase):
    tmp_prefix = "taskd-full-"

    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.tmp, "small")
        os.mkdir(self.mnt)
        p = mount_tmpfs(self.mnt, "2m")
        if p.returncode != 0:
            super().tearDown()  # not called after a skip in setUp
            self.skipTest("cannot mount a tmpfs: %s" % p.stderr.strip())

    def tearDown(self):
        # Unmounted before the directory is removed, which would leave the mount point behind.
        for s in self.servers:  # nothing may hold the filesystem
            if s.alive():
                s.kill()
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        super().tearDown()

    def test_writes_fail_with_503_then_every_accepted_task_completes(self):
        config = {
            "task_types": ["JOB"],
            "queues": [{"name": "jobs", "visibility_timeout": 5}],
            "subscriptions": [{"queue": "jobs"}],
            # a pattern on the image: the consumer reads the change log and publishes itself
            "stream_consumers": [{"name": "publisher", "action": "publish", "filter_patterns": [
                {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"task_type": {"S": ["JOB"]}}}}]}],
            "handlers": [{"queue": "jobs", "handler": "noop", "timeout": 5, "concurrency": 1}],
        }
        db = os.path.join(self.mnt, "tasks.db")

        def start(name, cfg):
            s = Taskd(config=write_config(self.tmp, cfg, name), tmpdir=self.tmp, db=db)
            self.servers.append(s)
            return s

        def told_once(s, failures):
            """s logged the full disk once, not per failed write (failures: how many failed)."""
            told = [o for o in s.log_json()
                    if o.get("message", "").startswith("the database cannot be written")]
            self.assertEqual(len(told), 1, "the reason is logged %d times for %s:\n%s"
                             % (len(told), failures, s.stderr_text()[-6000:]))
            self.assertEqual(told[0]["error"], "database or disk is full", told)

        def kept_wal(s):
            """The errors of s's warnings that the stop's checkpoint failed."""
            return [o.get("error") for o in s.log_json() if o.get("level") == "WARNING"
                    and o.get("message", "").startswith("the last checkpoint failed")]

        # Two tasks in the queue before the load, received by no handler until the disk is full.
        s = start("seeds.json", dict(config, handlers=[]))
        self.assertEqual(s.get("/health").status, 200)
        seeds = [s.create("JOB", data={"seed": i}) for i in range(2)]
        wait_until(lambda: queue_table(s)["jobs"]["depth"] == 2, 5, what="the seeds published")
        self.stop_clean(s)

        # Load until the disk is full, nothing published: 201s are remembered, everything else
        # examined.
        s = start("load.json", dict(config, handlers=[], stream_consumers=[]))
        accepted, refused, bad = list(seeds), [], []
        lock = threading.Lock()
        full = threading.Event()
        blob = "x" * 16384

        def post(n):
            conn = s.connection()
            try:
                for i in range(n):
                    if full.is_set() and len(refused) > 40:
                        return
                    r = s.request("POST", "/tasks", {"task_type": "JOB", "data": {"i": i, "b": blob}},
                                  conn=conn)
                    with lock:
                        if r.status == 201:
                            accepted.append(r.json()["id"])
                        elif r.status == 503:
                            refused.append(r)
                            full.set()
                        else:
                            bad.append(r)
            finally:
                conn.close()

        threads = [threading.Thread(target=post, args=(400,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(bad, [], "answers other than 201 and 503")
        self.assertTrue(full.is_set(), "2 MiB took %d tasks of 16 KiB without a failed write"
                        % len(accepted))
        self.assertGreater(len(accepted), len(seeds))
        for r in refused:
            self.assertTrue(r.header("Retry-After"), r)
            self.assertIsInstance(r.json().get("detail"), str, r)

        # /health says why; the reason is logged once, not per refused write.
        h = wait_until(lambda: (lambda r: r if r.status == 503 else None)(s.get("/health")), 10,
                       what="/health to answer 503")
        body = h.json()
        self.assertEqual(body["status"], "unhealthy", body)
        self.assertIn("full", body["detail"], body)
        self.assertTrue(h.header("Retry-After"), h)
        told_once(s, "%d refusals" % len(refused))
        # The stop's checkpoint cannot fold the WAL into the database on the full disk: it says
        # so, and exits 0 all the same (the WAL is kept, and the next start reads it).
        self.stop_clean(s)
        self.assertEqual(kept_wal(s), ["database or disk is full"], s.stderr_text()[-3000:])

        # The pipeline on the full disk: the publisher's batch of the loaded tasks cannot be
        # written, and it backs off (to 3.2 s) instead of spinning; health stays unhealthy while
        # its retries fail. The consumer's retries of its batch say when: their gaps are its
        # backoff, 0.2 s doubling to 3.2 s (a pure sleep, which a loaded machine only makes
        # longer), so its 6th failure comes more than 5 s (the health recovery's wait) after its
        # first, and between its 5th and 6th lie 3.2 s of the process's log.
        s = start("config.json", config)

        def logged(message):
            return [o for o in s.log_json() if o.get("message") == message]

        consumer = wait_until(lambda: (lambda f: f if len(f) >= 6 else None)(
            logged("publishing a batch failed; retrying")), 60, what="6 failed publishes of the consumer")
        h = s.get("/health")
        batch = consumer[0]["sequence_number"]
        self.assertTrue(all(o["sequence_number"] == batch for o in consumer), consumer)
        at = [log_ms(o) for o in consumer[:6]]
        for i, gap in enumerate(b - a for a, b in zip(at, at[1:])):
            self.assertGreaterEqual(gap, (200 << i) - 2, "the consumer's retries at %r" % at)
        wait_until(lambda: logged("cannot receive from queue"), 30, what="a failed receive")
        logs = s.log_json()
        window = [json.dumps(o) for o in logs if at[4] < log_ms(o) < at[5]]
        recovered = [o for o in logs if o.get("message") == "the database can be written again"]
        skipped = [o for o in logs if "skipped" in o.get("message", "")]
        context = "\n".join(line for line in s.log_objects() if '"DEBUG"' not in line)[-6000:]
        self.assertEqual(h.status, 503, context)
        self.assertLess(len(window), 10, "log lines in the consumer's 3.2 s backoff on a full disk:\n"
                        + "\n".join(window))
        told_once(s, "%d failed publishes" % len(consumer))
        # the pipeline's own warnings say why too, not a bare "error"
        receives = [o for o in logs if o.get("message") == "cannot receive from queue"
                    and o.get("error") == "error"]
        self.assertTrue(receives, "no failed receive while the disk was full:\n" + context)
        consumer = [o for o in logs if o.get("message") == "publishing a batch failed; retrying"
                    and o.get("error") == "error"]
        self.assertTrue(consumer, "no failed publish while the disk was full:\n" + context)
        for o in receives + consumer:
            self.assertEqual(o.get("reason"), "The task store cannot write: database or disk is full", o)
        self.assertEqual(recovered, [], "health flapped while the disk was full:\n" + context)
        self.assertEqual(skipped, [])

        # Room again: health recovers, and every accepted task completes.
        p = subprocess.run(["mount", "-o", "remount,size=64m", self.mnt], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_until(lambda: s.get("/health").status == 200, 15, what="/health to answer 200 again")

        def unfinished():
            left = [tid for tid in accepted if s.task(tid)["status"] != "COMPLETED"]
            return None if left else True
        try:
            wait_until(unfinished, 60, what="every accepted task COMPLETED")
        except AssertionError:
            left = {tid: s.task(tid)["status"] for tid in accepted}
            self.fail("not completed: %r\nstderr tail:\n%s"
                      % ({k: v for k, v in left.items() if v != "COMPLETED"}, s.stderr_text()[-3000:]))
        # logged once /health has turned, and read from its stderr later still: waited for
        wait_until(lambda: logged("the database can be written again"), 10,
                   what="the recovery logged")
        r = s.post("/tasks", {"task_type": "JOB"})
        self.assertEqual(r.status, 201, r)
        self.stop_clean(s)
        self.assertEqual(kept_wal(s), [], "a checkpoint with room failed")

    def test_a_little_room_is_not_health(self):
        # No pipeline: once the disk is full, nothing writes but the store's own probe.
        cfg = write_config(self.tmp, {"task_types": ["JOB"]})
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * 524288)
        s = Taskd(config=cfg, tmpdir=self.tmp, db=os.path.join(self.mnt, "tasks.db"))
        self.servers.append(s)
        conn = s.connection()
        blob = "x" * 16384
        for i in range(400):
            r = s.request("POST", "/tasks", {"task_type": "JOB", "data": {"i": i, "b": blob}},
                          conn=conn)
            if r.status == 503:
                break
            self.assertEqual(r.status, 201, r)
        conn.close()
        self.assertEqual(r.status, 503, "2 MiB took 400 tasks of 16 KiB")
        wait_until(lambda: s.get("/health").status == 503, 10, what="/health to answer 503")

        # 512 KiB back: small writes commit (the probe, this task), and no write fails for
        # longer than the 5 s health waits for, yet the disk is still nearly full.
        os.unlink(filler)
        r = s.post("/tasks", {"task_type": "JOB"})
        self.assertEqual(r.status, 201, r)
        for _ in range(8):
            time.sleep(1)
            self.assertEqual(s.get("/health").status, 503, s.stderr_text()[-3000:])

        p = subprocess.run(["mount", "-o", "remount,size=64m", self.mnt], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_until(lambda: s.get("/health").status == 200, 15, what="/health to answer 200 again")
        self.assertFalse(os.path.exists(os.path.join(self.mnt, "tasks.db-room")))
        self.stop_clean(s)


if __name__ == "__main__":
    why = can_mount()
    if why:
        print("skipped: cannot mount a tmpfs here (%s)" % why)
        sys.exit(SKIPPED)
    unittest.main()
