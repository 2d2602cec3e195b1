"""The whole AWS pipeline, offline, end to end: API Gateway -> Lambda api -> DynamoDB (its stream)
-> Lambda publish -> SNS -> filtered subscription -> SQS (redrive to a dead-letter queue) ->
Lambda worker, with X-Ray.

Each stack is DynamoDB Local (the CTest run's one, or one per test process run alone; a table per
stack, from deploy/table.json),
fauxqs (the CTest run's one, or one per test process run alone: SNS + SQS, the topic, queues
and subscriptions of the stack's configuration, deleted with the stack) and
tests/lambda/emulator.py in stack mode running build/bootstrap as the functions of
serverless.yml — api (with the API Gateway front), publish (with the table's stream mapping and
the configured filter patterns, task items only), one worker per handler binding and one per
dead-letter queue (with their SQS mappings) — each function sending its X-Ray documents to a UDP
listener of its own here. BOOTSTRAP_BIN names the bootstrap (else beside TASKD_BIN, else
build/bootstrap); DYNAMODB_ENDPOINT another DynamoDB (under CTest, the run's: CMakeLists.txt),
FAUXQS_ENDPOINT another fauxqs (under CTest, the run's too).

    Walkthrough          the original walkthrough through the front (TASK1 runs, TASK2 stays
                         CREATED), one X-Ray trace per task across api, publish and worker (the
                         calls to DynamoDB and SNS in X-Ray's aws namespace), and a duplicate
                         message that does not run the task again
    HandlerFailure       TASK1 failing: FAILED "Task failed somehow"
    PoisonMessage        a handler that kills its runtime: dead-lettered after 3 receives, FAILED
    ClaimLeases          a client's claim through the front: made again with its key, and its
                         lease ended by the scheduled sweep function (claims_by_expiry)
    EventSourceMappings  the emulator's mappings with a scripted runtime: partial batch
                         responses, retries and skips, filters, redrive, the events' shapes, the
                         Invoke API
    FilterPatterns       the emulator's filter matching on lambda-filters.md's examples

The last two run no program of ours (the emulator and its probe runtime are Python), so no
sanitizer sees their subject: with PIPELINE_PART=emulator only they run, with PIPELINE_PART=ours
only the others (CTest's integration_test_lambda_pipeline_emulator, labelled unsanitized, and
integration_test_lambda_pipeline); without it, all.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LAMBDA_DIR, Response, UDPListener, bootstrap_bin, clean_env, dies_with_test,  # noqa: E402
                     require_bootstrap, wait_until)

sys.path.insert(0, LAMBDA_DIR)
import dynamodb_local  # noqa: E402
import fauxqs  # noqa: E402
from emulator import (MAPPING_READY_TIMEOUT, MAX_ASYNC_REQUEST, MAX_FUNCTION_REQUEST, PatternError,  # noqa: E402
                      Shard, StreamMapping, aws_json, check_pattern, event_json, matches_any, pattern_matches)

EMULATOR = os.path.join(LAMBDA_DIR, "emulator.py")
REGION = "eu-west-1"
# The wait for the emulator's "listening" line, which comes once every environment's init has
# ended (each up to the limit of an init the stacks give, Lambda's 10 s) and the mappings have
# placed their first iterators (up to MAPPING_READY_TIMEOUT, 20 s), after the emulator's own
# start (up to 12 s at a load of 31): it guards against an emulator that never listens, and holds
# past the longest start the emulator allows itself, where 30 s did not.
STACK_INIT_TIMEOUT = 10.0
START_TIMEOUT = STACK_INIT_TIMEOUT + MAPPING_READY_TIMEOUT + 60.0
SEED_BODY = {"task_type": "TASK1", "data": {"foo": "bar"}, "ttl": "1662381756"}
# Only task items reach the publisher: idempotency-key items and meta#secret have no task_type.
TASK_ITEMS = {"dynamodb": {"NewImage": {"task_type": {"S": [{"exists": True}]}}}}
XRAY_HEADER = {"format": "json", "version": 1}
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: ")

_db = None  # DynamoDB Local of this module (or the DYNAMODB_ENDPOINT one, or the CTest run's)
_sns_sqs = None  # fauxqs of this module (or the FAUXQS_ENDPOINT one, or the CTest run's)


def load_tests(loader, tests, pattern):
    """The part PIPELINE_PART names of the classes (see above), or all of them without it."""
    part = os.environ.get("PIPELINE_PART")
    if not part:
        return tests
    if part not in ("ours", "emulator"):
        raise ValueError("PIPELINE_PART must be ours or emulator, not %r" % part)
    kept = unittest.TestSuite()
    for suite in tests:
        kept.addTests(t for t in suite if getattr(t, "emulator_only", False) == (part == "emulator"))
    return kept


def setUpModule():
    global _db, _sns_sqs
    require_bootstrap()
    endpoint = os.environ.get("DYNAMODB_ENDPOINT") or dynamodb_local.fixture_endpoint()
    if endpoint:
        _db = dynamodb_local.External(endpoint)
    else:
        _db = dynamodb_local.DynamoDBLocal()
        unittest.addModuleCleanup(_db.stop)
        _db.start()
    endpoint = os.environ.get("FAUXQS_ENDPOINT") or fauxqs.fixture_endpoint()
    if endpoint:
        _sns_sqs = fauxqs.External(endpoint)
    else:
        _sns_sqs = fauxqs.Fauxqs(region=REGION)
        unittest.addModuleCleanup(_sns_sqs.stop)
        _sns_sqs.start()


# -- helpers ----------------------------------------------------------------------------------

def camel(name):
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p)


def merged(a, b):
    """Two filter patterns as one (both must match)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merged(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def xray_root(trace_header):
    m = re.search(r"Root=(1-[0-9a-f]{8}-[0-9a-f]{24})", trace_header or "")
    return m.group(1) if m else None


def xray_parent(trace_header):
    m = re.search(r"Parent=([0-9a-f]{16})", trace_header or "")
    return m.group(1) if m else None


EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
             "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
             "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
             "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
             "Count/Second", "None"}


def check_emf(test, o):
    """One CloudWatch Embedded Metric Format object, by the rules of reference/observability.md."""
    test.assertLess(len(json.dumps(o)), 256 * 1024)
    aws = o["_aws"]
    test.assertIsInstance(aws["Timestamp"], int)
    test.assertTrue(aws["CloudWatchMetrics"], o)
    for d in aws["CloudWatchMetrics"]:
        test.assertTrue(1 <= len(d["Namespace"]) <= 1024, o)
        for dims in d["Dimensions"]:
            test.assertLessEqual(len(dims), 30, o)
            for name in dims:
                test.assertIsInstance(o.get(name), str, (name, o))
                test.assertLessEqual(len(o[name]), 1024, o)
        test.assertTrue(1 <= len(d["Metrics"]) <= 100, o)
        for m in d["Metrics"]:
            test.assertIn(m.get("Unit", "None"), EMF_UNITS, o)
            value = o[m["Name"]]
            values = value if isinstance(value, list) else [value]
            test.assertTrue(1 <= len(values) <= 100, o)
            for v in values:
                test.assertIsInstance(v, (int, float), o)
                test.assertNotIsInstance(v, bool, o)


def new_trace_header():
    return "Root=1-%08x-%s;Sampled=1" % (int(time.time()), uuid.uuid4().hex[:24])


class XRayDaemon(UDPListener):
    """A UDP listener standing in for one function's X-Ray daemon: its datagrams as documents."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        self.address = "127.0.0.1:%d" % self.port

    def _parsed(self):
        docs, errors = [], []
        for data in self.snapshot():
            head, sep, body = data.partition(b"\n")
            try:
                if not sep or json.loads(head) != XRAY_HEADER:
                    raise ValueError("bad header %r" % head[:80])
                doc = json.loads(body)
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                errors.append("%s: %r" % (e, data[:200]))
                continue
            docs.append(doc)
        return docs, errors

    def documents(self):
        return self._parsed()[0]

    @property
    def errors(self):
        return self._parsed()[1]


class Stack:
    """DynamoDB table + fauxqs + the emulator in stack mode, for one taskd configuration."""

    def __init__(self, config, env):
        self.raw_config = config                           # what taskd reads
        self.config = fauxqs.config_with_defaults(config)  # the same, with what taskd fills in
        self.env = env
        self.tmp = tempfile.mkdtemp(prefix="taskd-pipeline-")
        self.table = "taskd-pl-" + uuid.uuid4().hex[:12]
        self.sns_sqs = _sns_sqs
        self.pipeline = None
        self.proc = None
        self.daemons = {}
        self.lines = []
        self.lock = threading.Lock()
        self.listening = threading.Event()
        self.ready_line = None
        self.table_created = False

    # -- life cycle --------------------------------------------------------------------------------
    def start(self):
        dynamodb_local.create_table(_db.endpoint, self.table)
        self.table_created = True
        self.pipeline = fauxqs.create_pipeline(self.sns_sqs.endpoint, self.config, REGION)
        self.config_path = os.path.join(self.tmp, "taskd.json")
        with open(self.config_path, "w", encoding="utf-8") as f:
            json.dump(self.raw_config, f)
        self.launch(self.description())

    def launch(self, description):
        """Start the emulator on a stack description and wait until it listens."""
        self.stack_path = os.path.join(self.tmp, "stack.json")
        with open(self.stack_path, "w", encoding="utf-8") as f:
            json.dump(description, f, indent=1)
        self.proc = subprocess.Popen([sys.executable, "-B", EMULATOR, "--stack", self.stack_path],
                                     env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=dies_with_test())
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.listening.wait(START_TIMEOUT):
            raise AssertionError("the emulator is not listening after %.0f s:\n%s"
                                 % (START_TIMEOUT, self.text()[-4000:]))
        self.port = int((self.ready_line["address"] or ":0").rpartition(":")[2])
        self.invoke_port = int(self.ready_line["invoke_api"].rpartition(":")[2])
        self.functions = self.ready_line["functions"]

    def description(self):
        """The functions of serverless.yml for this configuration, on the local stand-ins."""
        cfg, p = self.config, self.pipeline
        common = {"TASKD_CONFIG": self.config_path, "AWS_ENDPOINT_URL_DYNAMODB": _db.endpoint,
                  "AWS_ENDPOINT_URL_SNS": self.sns_sqs.endpoint, "AWS_ENDPOINT_URL_SQS": self.sns_sqs.endpoint}
        common.update(self.env)
        functions = {}

        function = self.adder(functions)

        function("api", "api", 10, {"TABLE_NAME": self.table}, concurrency=2, http={"listen": "127.0.0.1:0"})
        consumer = next(c for c in cfg["stream_consumers"] if c.get("action", "publish") == "publish")
        patterns = [merged(pat, TASK_ITEMS) for pat in consumer.get("filter_patterns") or []] or [TASK_ITEMS]
        function("publish", "publish", 10, {"TOPIC_ARN": p["topic_arn"], "TABLE_NAME": self.table},
                 events=[{"stream": {
            "endpoint": _db.endpoint, "table": self.table, "starting_position": "TRIM_HORIZON",
            "batch_size": consumer.get("batch_size", 100),
            "maximum_retry_attempts": -1,  # as serverless.yml: until published
            "function_response_type": "ReportBatchItemFailures", "filter_patterns": patterns}}])
        bound = set()
        for b in cfg["handlers"]:
            bound.add(b["queue"])
            q = p["queues"][b["queue"]]
            concurrency = min(2, b.get("concurrency", 1))
            function("worker" + camel(b["queue"]), "worker", b.get("timeout", 30) + 3,
                     {"TABLE_NAME": self.table, "QUEUE_NAME": b["queue"]}, concurrency=concurrency,
                     events=[{"sqs": {"endpoint": self.sns_sqs.endpoint, "queue_url": q["url"], "arn": q["arn"],
                                      "batch_size": b.get("batch_size", 1), "maximum_concurrency": concurrency,
                                      "function_response_type": "ReportBatchItemFailures"}}])
        for dlq in sorted({q["dead_letter_queue"] for q in cfg["queues"] if q["dead_letter_queue"]} - bound):
            q = p["queues"][dlq]
            function("worker" + camel(dlq), "worker", 10, {"TABLE_NAME": self.table, "QUEUE_NAME": dlq},
                     events=[{"sqs": {"endpoint": self.sns_sqs.endpoint, "queue_url": q["url"], "arn": q["arn"],
                                      "batch_size": 10, "function_response_type": "ReportBatchItemFailures"}}])
        # serverless.yml's schedule (EventBridge) is the test's: it invokes sweep as the rule would
        function("sweep", "sweep", 10, {"TABLE_NAME": self.table})
        # and so is the publish failures' queue: the test invokes recover with its messages
        function("recover", "recover", 30, {"TOPIC_ARN": p["topic_arn"], "TABLE_NAME": self.table})
        return {"region": REGION, "bootstrap": bootstrap_bin(), "environment": common, "functions": functions}

    def adder(self, functions):
        """function(key, handler, timeout, env, ...) adding a function with an X-Ray daemon of its own."""
        def function(key, handler, timeout, env, events=(), concurrency=1, http=None, bootstrap=None):
            self.daemons[key] = XRayDaemon(key)
            f = {"handler": handler, "timeout": timeout, "init_timeout": STACK_INIT_TIMEOUT,
                 "concurrency": concurrency, "tracing": "Active",
                 "environment": dict(env, AWS_XRAY_DAEMON_ADDRESS=self.daemons[key].address),
                 "events": list(events)}
            if http:
                f["http"] = http
            if bootstrap:
                f["bootstrap"] = bootstrap
            functions[key] = f
        return function

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            if not self.listening.is_set() and '"listening"' in line:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("message") == "listening" and obj.get("service") == "emulator":
                    self.ready_line = obj
                    self.listening.set()

    def close(self):
        problems = []
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
                    problems.append("the emulator did not stop on SIGTERM")
            if self.proc.returncode not in (0, None):
                problems.append("the emulator exited %s" % self.proc.returncode)
        if self.pipeline is not None:
            try:
                fauxqs.delete_pipeline(self.sns_sqs.endpoint, self.pipeline)
            except (OSError, fauxqs.AwsError) as e:
                problems.append("the stack's topic and queues were not deleted: %s" % e)
        for d in self.daemons.values():
            d.close()
        if self.table_created:
            try:
                dynamodb_local.delete_table(_db.endpoint, self.table)
            except (OSError, dynamodb_local.DynamoDBError):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        reports = [line for line in self.text().splitlines() if SANITIZER_RE.search(line)]
        if reports:
            problems.append("sanitizer reports in the functions' output: %s" % reports[:5])
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.text()[-3000:])

    # -- what the emulator logged -------------------------------------------------------------------
    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def logs(self, message=None, **match):
        out = []
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and (message is None or obj.get("message") == message) \
                    and all(obj.get(k) == v for k, v in match.items()):
                out.append(obj)
        return out

    # -- the API through the front --------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            hdrs.update(headers or {})
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def create(self, body, headers=None):
        r = self.request("POST", "/tasks", body, headers)
        if r.status != 201:
            raise AssertionError("POST /tasks %r -> %r" % (body, r))
        return r.json()["id"], r

    def task(self, task_id):
        r = self.request("GET", "/tasks/" + task_id)
        if r.status != 200:
            raise AssertionError("GET /tasks/%s -> %r" % (task_id, r))
        return r.json()

    def wait_final(self, task_id, timeout=30.0):
        """Poll the task until it is final; returns (the task, every (status, status_msg) seen)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.task(task_id)
            if not seen or seen[-1] != (t["status"], t["status_msg"]):
                seen.append((t["status"], t["status_msg"]))
            if t["status"] in ("COMPLETED", "FAILED"):
                return t, seen
            time.sleep(0.02)
        raise AssertionError("task %s not final after %.0f s; seen %r\n%s"
                             % (task_id, timeout, seen, self.text()[-4000:]))

    def invoke(self, function, event):
        """Invoke a function through the emulator's Lambda Invoke API; the Response."""
        return self.request("POST", "/2015-03-31/functions/%s/invocations" % function, event, port=self.invoke_port)

    def answer(self, test, function, event):
        """Invoke a function that must answer (no function error); its answer's JSON."""
        r = self.invoke(function, event)
        test.assertEqual(r.status, 200, r)
        test.assertIsNone(r.header("X-Amz-Function-Error"), r)
        return r.json()

    def queue_counts(self, queue):
        return fauxqs.queue_counts(self.sns_sqs.endpoint, self.pipeline["queues"][queue]["url"], REGION)

    def queues_empty(self):
        return all(self.queue_counts(q) == (0, 0, 0) for q in self.pipeline["queues"])

    # -- X-Ray ----------------------------------------------------------------------------------------
    def documents(self, trace_id=None, task_id=None):
        """(function, document) for every X-Ray document received, of one trace / task if given."""
        out = []
        for key, d in self.daemons.items():
            for doc in d.documents():
                if trace_id and doc.get("trace_id") != trace_id:
                    continue
                if task_id and (doc.get("annotations") or {}).get("task_id") != task_id:
                    continue
                out.append((key, doc))
        return out

    def stream_arn(self):
        return dynamodb_local.call(_db.endpoint, "DescribeTable",
                                   {"TableName": self.table})["Table"]["LatestStreamArn"]

    def stream_records(self, task_id):
        """The stream records of a task's item, read from the table's stream (TRIM_HORIZON)."""
        arn = self.stream_arn()

        def streams(op, payload):
            return aws_json(_db.endpoint, "DynamoDBStreams_20120810." + op, payload, REGION, "dynamodb")
        out = []
        for shard in streams("DescribeStream", {"StreamArn": arn})["StreamDescription"]["Shards"]:
            it = streams("GetShardIterator", {"StreamArn": arn, "ShardId": shard["ShardId"],
                                              "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
            while it:
                r = streams("GetRecords", {"ShardIterator": it, "Limit": 1000})
                out += [rec for rec in r.get("Records") or []
                        if rec["dynamodb"]["Keys"].get("id", {}).get("S") == task_id]
                it = r.get("NextShardIterator") if r.get("Records") else None
        for rec in out:
            rec.update(eventSourceARN=arn, awsRegion=REGION)
        return out


class StackTestCase(unittest.TestCase):
    stack_class = Stack
    config = {}
    env = {}
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = cls.stack_class(cls.config, cls.env)
        cls.addClassCleanup(cls.stack.close)
        cls.stack.start()

    def tearDown(self):
        if self.stack.proc.poll() is not None:
            self.fail("the emulator exited (%s) during the test:\n%s"
                      % (self.stack.proc.returncode, self.stack.text()[-4000:]))
        for key, d in self.stack.daemons.items():
            self.assertEqual(d.errors, [], "malformed X-Ray datagrams to %s" % key)

    def wait_queues_empty(self, timeout=15.0):
        wait_until(self.stack.queues_empty, timeout, 0.1, "every queue empty")


# -- the tests --------------------------------------------------------------------------------------

# The defaults, with short timeouts: the TASK1 demo takes 1 s and never fails.
FAST = {
    "queues": [{"name": "task1", "visibility_timeout": 5, "max_receive_count": 3, "dead_letter_queue": "task1-dlq"},
               {"name": "task1-dlq", "visibility_timeout": 5}],
    "handlers": [{"queue": "task1", "handler": "TASK1", "batch_size": 1, "concurrency": 2, "timeout": 3}],
}


def history(stack, task_id):
    """The task's history through the API function: [(status, status_msg)], oldest first."""
    r = stack.request("GET", "/tasks/%s/history" % task_id)
    assert r.status == 200, r
    h = r.json()
    assert h["truncated"] is False, h
    return [(e["status"], e["status_msg"]) for e in h["history"]]


class Walkthrough(StackTestCase):
    """The original walkthrough, through every AWS hop; its trace; a duplicate message."""

    config = FAST
    env = {"TASK1_SECONDS": "1", "TASK1_FAILURE_RATE": "0", "TASKD_METRICS_NAMESPACE": "taskd-test"}

    def test_walkthrough(self):
        s = self.stack
        task1, r = s.create(SEED_BODY)
        self.assertEqual(r.header("Location"), "/tasks/" + task1)
        task2, _ = s.create({"task_type": "TASK2", "data": {"foo": "bar"}})
        t, seen = s.wait_final(task1)
        self.assertIn(("IN_PROGRESS", "Task started"), seen, seen)
        self.assertEqual(seen[-1], ("COMPLETED", "Task completed"), seen)
        self.assertEqual(t["data"], {"foo": "bar"})
        self.assertEqual(history(s, task1), [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                                             ("COMPLETED", "Task completed")])
        self.assertEqual(t["ttl"], 1662381756)
        self.assertIsInstance(t["updated_time"], int)
        self.assertGreaterEqual(t["updated_time"], t["created_time"])
        # TASK2 was published too (its publish span came), no subscription took it: CREATED it stays.
        # A TASK1 created after that span is published after TASK2 was: once it has run and every
        # queue is empty (messages in flight count), a message of TASK2's that a subscription took
        # has reached its queue before the TASK1's and been handled.
        wait_until(lambda: [d for _, d in s.documents(task_id=task2) if d.get("name") == "SNS"],
                   10, 0.05, "TASK2's publish span")
        control, _ = s.create(SEED_BODY)
        self.assertEqual(s.wait_final(control)[0]["status"], "COMPLETED")
        self.wait_queues_empty()
        t2 = s.task(task2)
        self.assertEqual((t2["status"], t2["status_msg"], t2["updated_time"]), ("CREATED", "", None))
        wait_until(lambda: task2 in [t["id"] for t in s.request("GET", "/tasks?status=CREATED&task_type=TASK2")
                                     .json()["tasks"]], 5, 0.05, "TASK2 listed as CREATED")
        # The hops, as the emulator saw them: a stream batch with the INSERTs, one message on task1.
        self.assertTrue(s.logs("stream batch", function="publish"), s.text()[-3000:])
        batches = [b for b in s.logs("sqs batch", function="workerTask1") if b["deleted"]]
        self.assertTrue(batches, s.text()[-3000:])
        self.assertEqual(s.logs("sqs batch", function="workerTask1Dlq"), [])

    def test_data_that_one_sns_message_cannot_carry_is_refused(self):
        """A task's data travels as one SNS message (256 KiB with its attributes): a body over
        that, or data whose JSON text as the message carries it is (1e9 is 1000000000.0), gets
        413; a task that could be stored but never published would stay CREATED."""
        s = self.stack
        limit = 256 * 1024 - 2048
        r = s.request("POST", "/tasks", b'{"task_type":"TASK2","data":{"s":"' + b"x" * limit + b'"}}')
        self.assertEqual((r.status, r.json()), (413, {"detail": "Request body too large (limit %d bytes)" % limit}))
        numbers = ",".join("1e9" for _ in range(30000))  # 120 KB sent, 390 KB as text
        r = s.request("POST", "/tasks", ('{"task_type":"TASK2","data":{"n":[%s]}}' % numbers).encode())
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json(), {"detail": "Task data too large for a queue message: %d bytes as JSON "
                                              "(limit %d bytes)" % (len('{"n":[]}') + 30000 * 13 - 1, limit)})
        # a body at the limit: taken and published (no subscriber: it stays CREATED)
        head, tail = b'{"task_type":"TASK2","data":{"s":"', b'"}}'
        r = s.request("POST", "/tasks", head + b"x" * (limit - len(head) - len(tail)) + tail)
        self.assertEqual(r.status, 201, r)
        task = r.json()["id"]
        wait_until(lambda: [d for _, d in s.documents(task_id=task) if d.get("name") == "SNS"],
                   10, 0.05, "the big task's publish span")
        self.assertEqual(s.logs("cannot publish the task"), [])
        self.assertEqual(s.task(task)["status"], "CREATED")

    def test_metrics_as_embedded_metric_format(self):
        """Each invocation's metrics leave as CloudWatch EMF lines on the function's stdout."""
        s = self.stack
        header = new_trace_header()
        task_id, _ = s.create(SEED_BODY, headers={"X-Amzn-Trace-Id": header})
        t, _ = s.wait_final(task_id)
        self.assertEqual(t["status"], "COMPLETED")
        names = {key: f["function_name"] for key, f in s.functions.items()}

        def emf(function=None, request_id=None):
            return [o for o in s.logs() if "_aws" in o
                    and (function is None or o.get("function_name") == names[function])
                    and (request_id is None or o.get("function_request_id") == request_id)]

        # The api function's invocation for this POST: its request, the task it created.
        calls = [o for o in s.logs("invocation", function="api") if xray_root(o.get("trace_id")) == xray_root(header)]
        self.assertEqual(len(calls), 1, calls)
        wait_until(lambda: emf("api", calls[0]["request_id"]), 5, 0.05, "the POST's metrics")
        by_dims = {tuple(o["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]): o
                   for o in emf("api", calls[0]["request_id"])}
        requests = by_dims[("service", "route", "method", "code")]
        self.assertEqual((requests["route"], requests["method"], requests["code"]), ("/tasks", "POST", "201"))
        self.assertEqual(requests["taskd_http_requests_total"], 1)
        latency = by_dims[("service", "route")]
        self.assertEqual(latency["route"], "/tasks")
        self.assertEqual(len(latency["taskd_http_request_duration_seconds"]), 1)
        self.assertGreater(latency["taskd_http_request_duration_seconds"][0], 0)
        created = by_dims[("service", "task_type")]
        self.assertEqual((created["task_type"], created["taskd_tasks_created_total"]), ("TASK1", 1))
        transition = by_dims[("service", "task_type", "status")]
        self.assertEqual((transition["task_type"], transition["status"]), ("TASK1", "CREATED"))
        self.assertEqual(transition["taskd_task_transitions_total"], 1)
        for o in by_dims.values():
            self.assertEqual(o["service"], "taskd")
            self.assertEqual(o["_aws"]["CloudWatchMetrics"][0]["Namespace"], "taskd-test")
            self.assertLess(abs(o["_aws"]["Timestamp"] - time.time() * 1000), 60000)

        # The worker ran it: TASK1 takes 1 s, and its run is one of the handler's values.
        def handler_runs():
            return [v for o in emf("workerTask1") if o.get("task_type") == "TASK1"
                    for v in o.get("taskd_handler_duration_seconds", [])]
        wait_until(lambda: any(v >= 1 for v in handler_runs()), 10, 0.05, "the worker's handler metric")
        self.assertTrue(all(0 < v < 3 for v in handler_runs()), handler_runs())
        done = [o for o in emf("workerTask1") if o.get("status") == "COMPLETED"]
        self.assertTrue(done and all(o["taskd_task_transitions_total"] >= 1 for o in done), done)
        # Every line obeys the format's rules and names the invocation it counts.
        request_ids = {o["request_id"] for o in s.logs("invocation")}
        for o in emf():
            check_emf(self, o)
            self.assertIn(o["function_request_id"], request_ids)

    def test_one_trace_per_task(self):
        s = self.stack
        header = new_trace_header()
        trace = xray_root(header)
        task_id, r = s.create(SEED_BODY, headers={"X-Amzn-Trace-Id": header})
        t, _ = s.wait_final(task_id)
        self.assertEqual(t["status"], "COMPLETED")
        # The api invocation's Lambda-Runtime-Trace-Id: the caller's Root, a Parent of Lambda's.
        api_calls = [o for o in s.logs("invocation", function="api") if xray_root(o.get("trace_id")) == trace]
        self.assertEqual(len(api_calls), 1, api_calls)
        function_segment = xray_parent(api_calls[0]["trace_id"])
        # The calls to AWS are named for their service: the store's INSERT, the worker's claim and
        # report (two UPDATEs), the publish.
        expected = {"api": {"POST /tasks": 1, "DynamoDB": 1}, "publish": {"process publisher": 1, "SNS": 1},
                    "workerTask1": {"receive task1": 1, "process task1": 1, "DynamoDB": 2, "TASK1": 1}}

        def complete():
            docs = s.documents(trace_id=trace)
            names = {}
            for key, d in docs:
                names.setdefault(key, []).append(d.get("name"))
            return docs if all(names.get(key, []).count(name) >= n
                               for key, want in expected.items() for name, n in want.items()) else None
        docs = wait_until(complete, 10, 0.05, "the task's X-Ray documents from api, publish and worker")
        ids = {d["id"] for _, d in docs}
        self.assertEqual(len(ids), len(docs), "an id sent twice: %r" % docs)
        subsegments = [(k, d) for k, d in docs if d.get("origin") != "AWS::Lambda::Function"]
        segments = [(k, d) for k, d in docs if d.get("origin") == "AWS::Lambda::Function"]
        # Lambda's own segment of the api invocation (sent by the emulator), nothing else of Lambda's:
        # the publish and worker invocations have traces of their own.
        self.assertEqual([(k, d["id"]) for k, d in segments], [("api", function_segment)], segments)
        for key, d in subsegments:
            self.assertEqual(d.get("type"), "subsegment", (key, d))
            self.assertEqual(d["trace_id"], trace, (key, d))
            self.assertIn(d.get("parent_id"), ids, "parent of %s %r is no received document" % (key, d.get("name")))
            self.assertNotEqual(d["parent_id"], d["id"])
            self.assertLessEqual(d["start_time"], d["end_time"])
        by_name = {}
        for key, d in subsegments:
            by_name.setdefault(d["name"], []).append(d)
        post = by_name["POST /tasks"]
        self.assertEqual(len(post), 1)
        self.assertEqual(post[0]["parent_id"], function_segment, "POST /tasks is not under the function segment")
        # Every document leads up to the function segment of the api invocation.
        parents = {d["id"]: d.get("parent_id") for _, d in docs}
        for key, d in subsegments:
            node, hops = d["id"], 0
            while node != function_segment and hops < 50:
                node, hops = parents.get(node), hops + 1
            self.assertEqual(node, function_segment, "%s %r does not lead to the api's segment" % (key, d["name"]))
        # The hops are joined as the README says.
        self.assertEqual(by_name["process publisher"][0]["parent_id"], post[0]["id"])
        self.assertEqual(by_name["SNS"][0]["parent_id"], by_name["process publisher"][0]["id"])
        self.assertEqual(by_name["receive task1"][0]["parent_id"], by_name["SNS"][0]["id"])
        # The calls to AWS in the aws namespace, with what X-Ray's aws object holds (tracing.md §3);
        # no other downstream call is made on AWS, so nothing is remote.
        for key, d in subsegments:
            self.assertNotEqual(d.get("namespace"), "remote", (key, d))
            self.assertEqual(d.get("namespace") == "aws", d["name"] in ("DynamoDB", "SNS"), (key, d))
        calls = {}
        for key, d in subsegments:
            if d.get("namespace") == "aws":
                calls.setdefault((key, d["name"]), []).append(d["aws"])
        insert = calls[("api", "DynamoDB")]
        self.assertEqual([a["operation"] for a in insert], ["PutItem"], insert)
        self.assertEqual((insert[0]["table_name"], insert[0]["region"]), (s.table, REGION), insert)
        self.assertRegex(insert[0].get("request_id", ""), r"^\S+$", insert)
        updates = calls[("workerTask1", "DynamoDB")]  # the claim and the report
        self.assertEqual([a["operation"] for a in updates], ["UpdateItem", "UpdateItem"], updates)
        for a in updates:
            self.assertEqual((a["table_name"], a["region"]), (s.table, REGION), updates)
            self.assertRegex(a.get("request_id", ""), r"^\S+$", updates)
        publish = calls[("publish", "SNS")]
        self.assertEqual([(a["operation"], a["region"]) for a in publish], [("PublishBatch", REGION)], publish)
        self.assertNotIn("table_name", publish[0])
        self.assertEqual(by_name["SNS"][0]["annotations"]["messaging_system"], "aws.sns")
        self.assertEqual(by_name["process task1"][0]["parent_id"], by_name["receive task1"][0]["id"])
        # Every document about the task is in this one trace, but those of the GETs that polled it
        # (each request is a trace of its own).
        others = {}
        for key, d in s.documents(task_id=task_id):
            if d["trace_id"] != trace:
                others.setdefault(d["trace_id"], set()).add((key, d.get("name")))
        for other, names in others.items():
            self.assertEqual(names, {("api", "GET /tasks/_task_id_")}, "trace %s holds %r" % (other, names))

    def test_duplicate_message_runs_once(self):
        s = self.stack
        task_id, _ = s.create(SEED_BODY)
        first, _ = s.wait_final(task_id)
        self.assertEqual(first["status"], "COMPLETED")
        self.wait_queues_empty()
        inserts = [r for r in s.stream_records(task_id) if r["eventName"] == "INSERT"]
        self.assertEqual(len(inserts), 1, inserts)
        before = len(s.logs("sqs batch", function="workerTask1"))
        # The publish function gets the same stream record twice more (a retried batch does that).
        for _ in range(2):
            r = s.invoke("publish", {"Records": inserts})
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.header("X-Amz-Function-Error"), r)
            self.assertEqual(r.json(), {"batchItemFailures": []})
        def done_since():
            return [b for b in s.logs("sqs batch", function="workerTask1")[before:] if b["deleted"]]
        wait_until(lambda: len(done_since()) >= 2, 15, 0.05, "two more task1 messages done")
        self.wait_queues_empty()
        again = s.task(task_id)
        self.assertEqual((again["status"], again["status_msg"], again["updated_time"], again["result"]),
                         (first["status"], first["status_msg"], first["updated_time"], first["result"]))
        # Three deliveries, one run. Spans are flushed right after each response, and a delivery's
        # "receive task1" goes last: it ends after its processing and the claim and run under it,
        # and its function sends them in that order through one socket. Once three are in, every
        # span of the three deliveries is.
        def names():
            return [d.get("name") for _, d in s.documents(task_id=task_id)]
        names = wait_until(lambda: (lambda n: n.count("receive task1") >= 3 and n)(names()), 10, 0.05,
                           "three receive spans")
        self.assertEqual(names.count("receive task1"), 3, names)
        self.assertEqual(names.count("TASK1"), 1, names)
        self.assertEqual(s.logs("sqs batch", function="workerTask1Dlq"), [])
        # the duplicates found it finished: nothing more in its history
        self.assertEqual(history(s, task_id), [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                                               ("COMPLETED", "Task completed")])


class HandlerFailure(StackTestCase):
    """TASK1 failing every time: FAILED with its reason, the message spent (not dead-lettered)."""

    config = FAST
    env = {"TASK1_SECONDS": "1", "TASK1_FAILURE_RATE": "1"}

    def test_task_fails(self):
        s = self.stack
        task_id, _ = s.create(SEED_BODY)
        t, seen = s.wait_final(task_id)
        self.assertIn(("IN_PROGRESS", "Task started"), seen, seen)
        self.assertEqual((t["status"], t["status_msg"]), ("FAILED", "Task failed somehow"))
        self.assertEqual(history(s, task_id), [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                                               ("FAILED", "Task failed somehow")])
        self.wait_queues_empty()
        self.assertEqual(s.logs("sqs batch", function="workerTask1Dlq"), [])
        run = wait_until(lambda: [d for _, d in s.documents(task_id=task_id) if d.get("name") == "TASK1"],
                         10, 0.05, "the run's span")
        self.assertTrue(run[0].get("fault") or run[0].get("error"), run[0])


# What EventBridge sends a function on a schedule (the sweep does not read it).
SCHEDULED_EVENT = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": "123456789012", "time": "2026-12-05T04:00:00Z",
                   "region": REGION, "resources": ["arn:aws:events:eu-west-1:123456789012:rule/taskd-dev-sweep"],
                   "detail": {}}


class ClaimLeases(StackTestCase):
    """A client's claim on AWS: the claim made again with its Idempotency-Key answers 204, and a
    lease that ran out is ended by the sweep function, which a schedule invokes."""

    config = dict(FAST, claim_timeout=1)

    def claim(self, task_id, key):
        body = {"status": "IN_PROGRESS", "status_msg": "mine"}
        return self.stack.request("PATCH", "/tasks/" + task_id, body, {"Idempotency-Key": key})

    def sweep(self):
        return self.stack.answer(self, "sweep", SCHEDULED_EVENT)

    def test_a_lease_that_ran_out_is_ended_by_the_sweep(self):
        s = self.stack
        lapsed, _ = s.create({"task_type": "TASK2"})
        done, _ = s.create({"task_type": "TASK2"})
        for tid in (lapsed, done):
            self.assertEqual(self.claim(tid, "k-" + tid).status, 204)
        self.assertEqual(self.claim(lapsed, "k-" + lapsed).status, 204)  # made again: its 204 was lost
        self.assertEqual(self.claim(lapsed, "another").status, 409)
        r = s.request("PATCH", "/tasks/" + done, {"status": "COMPLETED", "status_msg": "Task completed"})
        self.assertEqual(r.status, 204, r)
        time.sleep(2.2)  # the lease (1 s) runs out, to the second
        self.assertEqual(self.sweep(), {"ended": 1, "more": False})
        t = s.task(lapsed)
        self.assertEqual(t["status"], "FAILED")
        self.assertRegex(t["status_msg"], r"^claim expired: no outcome reported by \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(history(s, lapsed)[-1], ("FAILED", t["status_msg"]))
        self.assertEqual(s.task(done)["status"], "COMPLETED")
        self.assertEqual(self.sweep(), {"ended": 0, "more": False})  # nothing more to end
        said = wait_until(lambda: s.logs("task failed", task_id=lapsed), 5, 0.05, "the sweep's log line")
        self.assertEqual(said[0].get("reason"), t["status_msg"])
        # counted in the invocation's Embedded Metric Format line, by task type
        sweep_name = s.functions["sweep"]["function_name"]
        counted = wait_until(lambda: [o for o in s.logs() if "_aws" in o and o.get("function_name") == sweep_name
                                      and "taskd_claims_expired_total" in o], 5, 0.05, "the sweep's metrics")
        self.assertEqual([(o["task_type"], o["taskd_claims_expired_total"]) for o in counted], [("TASK2", 1)])


class StrandedStack(Stack):
    """The stack without the publish function's stream mapping: new tasks are never published,
    as when the stream drops their records unpublished after 24 h of failures."""

    def description(self):
        d = super().description()
        d["functions"]["publish"]["events"] = []
        return d


def iso_ms(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


class StrandedTasks(StackTestCase):
    """New tasks whose stream records were dropped unpublished: the recover function, given the
    publish failures' report of their batch, publishes again those still CREATED, and they run."""

    stack_class = StrandedStack
    config = FAST
    env = {"TASK1_SECONDS": "0", "TASK1_FAILURE_RATE": "0"}

    def recover(self, first, last):
        report = {"requestContext": {"condition": "RecordAgeExceeded", "approximateInvokeCount": 1440},
                  "version": "1.0", "timestamp": iso_ms(time.time()),
                  "DDBStreamBatchInfo": {"shardId": "shardId-00000001", "startSequenceNumber": "100",
                                         "endSequenceNumber": "300", "batchSize": 3,
                                         "approximateArrivalOfFirstRecord": iso_ms(first),
                                         "approximateArrivalOfLastRecord": iso_ms(last),
                                         "streamArn": self.stack.stream_arn()}}
        event = {"Records": [{"messageId": "f-1", "receiptHandle": "r-1", "body": json.dumps(report),
                              "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                              "eventSource": "aws:sqs",
                              "eventSourceARN": "arn:aws:sqs:%s:000000000000:publish-failures" % REGION}]}
        return self.stack.answer(self, "recover", event)

    def run_control(self):
        """A task created now, its INSERT handed to the publish function as a stream mapping
        would, run to its end, and every queue empty after it (messages in flight count): what
        went to the topic before it has reached its queue and been handled."""
        s = self.stack
        control, _ = s.create(SEED_BODY)
        inserts = wait_until(lambda: [r for r in s.stream_records(control) if r["eventName"] == "INSERT"],
                             5, 0.05, "the control task's stream record")
        self.assertEqual(s.answer(self, "publish", {"Records": inserts}), {"batchItemFailures": []})
        self.assertEqual(s.wait_final(control)[0]["status"], "COMPLETED")
        self.wait_queues_empty()

    def test_stranded_tasks_are_published_again_and_run(self):
        s = self.stack
        t0 = time.time()
        stranded = [s.create(SEED_BODY)[0] for _ in range(3)]
        claimed = stranded.pop()
        r = s.request("PATCH", "/tasks/" + claimed, {"status": "IN_PROGRESS", "status_msg": "mine"})
        self.assertEqual(r.status, 204, r)
        t1 = time.time()
        self.run_control()  # published after them, and run
        self.assertEqual([s.task(t)["status"] for t in stranded], ["CREATED", "CREATED"])  # never published
        # a window long before them publishes nothing (a control published after its answer has run)
        self.assertEqual(self.recover(t0 - 3600, t0 - 1800), {"batchItemFailures": []})
        self.run_control()
        self.assertEqual([s.task(t)["status"] for t in stranded], ["CREATED", "CREATED"])
        self.assertEqual(self.recover(t0, t1), {"batchItemFailures": []})
        for tid in stranded:
            t, _ = s.wait_final(tid)
            self.assertEqual((t["status"], t["status_msg"]), ("COMPLETED", "Task completed"))
        self.assertEqual(s.task(claimed)["status"], "IN_PROGRESS")  # the client's, left to it
        said = wait_until(lambda: [o for o in s.logs("stranded tasks published again") if o.get("count") == "2"],
                          5, 0.05, "recover's log line")
        self.assertEqual(said[0]["message_id"], "f-1")
        self.wait_queues_empty()


class PoisonMessage(StackTestCase):
    """A task whose handler kills the worker's runtime: every delivery fails, fauxqs moves the
    message to task1-dlq after 3 receives, the dead-letter worker fails the task."""

    config = {
        # a visibility longer than a crash takes under a sanitizer beside other tests: one that
        # came back while its first delivery still ran met a fresh claim and was kept, answered
        "queues": [{"name": "task1", "visibility_timeout": 3, "max_receive_count": 3,
                    "dead_letter_queue": "task1-dlq"},
                   {"name": "task1-dlq", "visibility_timeout": 2}],
        # the program's parent is its run's supervisor; the runtime is the supervisor's parent
        "handlers": [{"queue": "task1", "handler": "exec",
                      "command": ["sh", "-c", "kill -9 $(awk '/^PPid:/ {print $2}' /proc/$PPID/status)"],
                      # as long as the queue allows: the kill is at once, but a loaded machine
                      # has taken over 1 s to start it (the run timed out, and was no crash)
                      "batch_size": 1, "concurrency": 1, "timeout": 3}],
    }

    def test_poison_message_ends_in_the_dead_letter_queue(self):
        s = self.stack
        task_id, _ = s.create(SEED_BODY)
        t, seen = s.wait_final(task_id, timeout=40)
        self.assertEqual((t["status"], t["status_msg"]),
                         ("FAILED", "moved to dead-letter queue task1-dlq after 3 receives"), seen)
        # the dead-letter worker's log line names the task's trace, as a handler's failure does;
        # it is written after the task's update, and read from the function's output later
        said = wait_until(lambda: s.logs("task failed", task_id=task_id), 10, 0.05,
                          "the dead-letter worker's log line")
        self.assertEqual([(o["level"], o["reason"]) for o in said], [("WARNING", t["status_msg"])], said)
        logged = said[0].get("trace_id") or ""
        posted = [f for f, d in s.documents(trace_id="1-%s-%s" % (logged[:8], logged[8:]), task_id=task_id)
                  if d.get("name") == "POST /tasks"]
        self.assertEqual(posted, ["api"], "the trace the line names is not the task's: %r" % said)
        self.wait_queues_empty()
        # Three deliveries to the task1 worker, each a crash of its runtime; nothing deleted there.
        crashes = s.logs("sqs batch", function="workerTask1")
        self.assertEqual([b["receive_counts"] for b in crashes], [["1"], ["2"], ["3"]], crashes)
        for b in crashes:
            self.assertEqual((b["outcome"], b.get("function_error"), b["deleted"]),
                             ("error", "Runtime.ExitError", []), crashes)
        self.assertEqual(len(s.logs("environment exited during an invocation", function="workerTask1")), 3)
        # Each delivery that ran it is a claim in its history.
        self.assertEqual(history(s, task_id),
                         [("CREATED", ""), ("IN_PROGRESS", "Task started"),
                          ("IN_PROGRESS", "Task started again (receive 2)"),
                          ("IN_PROGRESS", "Task started again (receive 3)"),
                          ("FAILED", "moved to dead-letter queue task1-dlq after 3 receives")])
        # One delivery from the dead-letter queue, deleted after the task was failed.
        dead = [b for b in s.logs("sqs batch", function="workerTask1Dlq") if b["deleted"]]
        self.assertEqual(len(dead), 1, dead)
        self.assertEqual(dead[0]["message_ids"], crashes[0]["message_ids"])


# -- the emulator's event source mappings themselves, with a scripted runtime -----------------------

# A Lambda runtime (the Runtime API loop) that logs every event it gets to PROBE_LOG and answers as
# each record asks: mode "fail" / "keep" -> listed in batchItemFailures, "error" -> a function
# error, "error-once" -> a function error the first time the record comes; else done.
PROBE_RUNTIME = """
import http.client, json, os
host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
conn = http.client.HTTPConnection(host, int(port))
seen = {}
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    event = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    failures, error = [], False
    for rec in event.get("Records") or []:
        if "dynamodb" in rec:
            mode = rec["dynamodb"].get("NewImage", {}).get("mode", {}).get("S", "ok")
            ident = rec["dynamodb"]["SequenceNumber"]
        else:
            mode = json.loads(rec["body"]).get("mode", "ok")
            ident = rec["messageId"]
        seen[ident] = seen.get(ident, 0) + 1
        if mode in ("fail", "keep"):
            failures.append({"itemIdentifier": ident})
        error = error or mode == "error" or (mode == "error-once" and seen[ident] == 1)
    with open(os.environ["PROBE_LOG"], "a") as f:
        f.write(json.dumps({"request_id": rid, "event": event, "error": error}) + "\\n")
    if error:
        body, path = {"errorType": "Probe.Error", "errorMessage": "asked to"}, "error"
    else:
        body, path = {"batchItemFailures": failures}, "response"
    conn.request("POST", "/2018-06-01/runtime/invocation/%s/%s" % (rid, path), body=json.dumps(body))
    conn.getresponse().read()
"""


class ProbeStack(Stack):
    """A table and two queues feeding the probe runtime: streamProbe (the table's stream, filter:
    mode is not "ignored", 2 retries) and sqsProbe (queue probe, redrive to probe-dlq after 2
    receives, filter: body.mode is not "drop")."""

    QUEUES = {"topic": "probe", "subscriptions": [], "queues": [
        {"name": "probe", "visibility_timeout": 1, "max_receive_count": 2, "dead_letter_queue": "probe-dlq"},
        {"name": "probe-dlq", "visibility_timeout": 5}]}

    def __init__(self, config, env):
        super().__init__(self.QUEUES, env)

    def start(self):
        dynamodb_local.create_table(_db.endpoint, self.table)
        self.table_created = True
        self.pipeline = fauxqs.create_pipeline(self.sns_sqs.endpoint, self.config, REGION)
        os.mkdir(os.path.join(self.tmp, "probe"))
        self.runtime = os.path.join(self.tmp, "probe", "bootstrap")
        with open(self.runtime, "w", encoding="utf-8") as f:
            f.write("#!%s\n%s" % (sys.executable, PROBE_RUNTIME))
        os.chmod(self.runtime, 0o755)
        self.launch(self.description())

    def probe_log(self, key):
        return os.path.join(self.tmp, key + ".jsonl")

    def description(self):
        functions = {}
        function = self.adder(functions)
        q = self.pipeline["queues"]["probe"]
        function("streamProbe", "probe", 5, {"PROBE_LOG": self.probe_log("streamProbe")}, bootstrap=self.runtime,
                 events=[{"stream": {
                     "endpoint": _db.endpoint, "table": self.table, "batch_size": 10, "maximum_retry_attempts": 2,
                     "function_response_type": "ReportBatchItemFailures",
                     "filter_patterns": [
                         {"dynamodb": {"NewImage": {"mode": {"S": [{"anything-but": ["ignored"]}]}}}}]}}])
        function("sqsProbe", "probe", 5, {"PROBE_LOG": self.probe_log("sqsProbe")}, bootstrap=self.runtime,
                 events=[{"sqs": {
                     "endpoint": self.sns_sqs.endpoint, "queue_url": q["url"], "batch_size": 10,
                     "maximum_concurrency": 1, "function_response_type": "ReportBatchItemFailures",
                     "filter_patterns": [json.dumps({"body": {"mode": [{"anything-but": ["drop"]}]}})]}}])
        return {"region": REGION, "functions": functions}

    def invocations(self, key):
        """What the probe function got: [{"request_id", "event", "error"}] in order."""
        try:
            with open(self.probe_log(key), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


class EventSourceMappings(StackTestCase):
    """The emulator's mappings: partial batch responses, retries, skips, filters, redrive, the
    events' exact shapes, and the Invoke API."""

    stack_class = ProbeStack
    emulator_only = True

    def put(self, mode):
        item_id = "probe-%s-%s" % (mode, uuid.uuid4().hex[:8])
        dynamodb_local.call(_db.endpoint, "PutItem", {"TableName": self.stack.table,
                                                       "Item": {"id": {"S": item_id}, "mode": {"S": mode}}})
        return item_id

    def stream_deliveries(self):
        """item id -> [(invocation index, failed?)] for every stream record the probe got."""
        out = {}
        for i, inv in enumerate(self.stack.invocations("streamProbe")):
            for rec in inv["event"]["Records"]:
                out.setdefault(rec["dynamodb"]["Keys"]["id"]["S"], []).append((i, inv["error"]))
        return out

    def test_stream_partial_batch_retry_skip_and_filter(self):
        s = self.stack
        a, b, c, d = self.put("ok"), self.put("fail"), self.put("ignored"), self.put("ok")
        skipped = wait_until(lambda: s.logs("record skipped", function="streamProbe"), 15, 0.05, "B skipped")
        wait_until(lambda: d in self.stream_deliveries() and
                   any(o.get("last_sequence") and o.get("failed_sequence") is None
                       for o in s.logs("stream batch", function="streamProbe")[-1:]), 10, 0.05, "D done")
        got = self.stream_deliveries()
        self.assertEqual(len(got[a]), 1, got)        # done with the first batch that held it
        self.assertEqual(len(got[b]), 3, got)        # the first attempt and maximum_retry_attempts 2
        self.assertNotIn(c, got)                      # filtered out
        records = {r["dynamodb"]["Keys"]["id"]["S"]: r for inv in s.invocations("streamProbe")
                   for r in inv["event"]["Records"]}
        self.assertEqual(len(skipped), 1, skipped)
        self.assertEqual(skipped[0]["sequence_number"], records[b]["dynamodb"]["SequenceNumber"])
        self.assertEqual(skipped[0]["attempts"], 3)
        # A function error retries the whole batch.
        e = self.put("error-once")
        wait_until(lambda: len(self.stream_deliveries().get(e, [])) == 2, 10, 0.05, "E delivered twice")
        self.assertEqual([err for _, err in self.stream_deliveries()[e]], [True, False])
        retried = [o for o in s.logs("stream batch", function="streamProbe")
                   if o.get("function_error") == "Probe.Error"]
        self.assertEqual(len(retried), 1, retried)
        self.assertTrue(retried[0]["retry"])
        self.assertEqual(len(s.logs("record skipped", function="streamProbe")), 1)
        # The records: the stream's, with the mapping's eventSourceARN and region; in order.
        arn = s.stream_arn()
        r = records[a]
        self.assertEqual((r["eventName"], r["eventSource"], r["eventSourceARN"], r["awsRegion"]),
                         ("INSERT", "aws:dynamodb", arn, REGION))
        self.assertEqual(r["dynamodb"]["NewImage"], {"id": {"S": a}, "mode": {"S": "ok"}})
        self.assertEqual(r["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES")
        for key in ("eventID", "eventVersion"):
            self.assertIsInstance(r[key], str)
        for inv in s.invocations("streamProbe"):
            seqs = [int(x["dynamodb"]["SequenceNumber"]) for x in inv["event"]["Records"]]
            self.assertEqual(seqs, sorted(seqs))
            self.assertLessEqual(len(seqs), 10)

    def sqs_deliveries(self):
        """message body mode -> [the record, each time it came]."""
        out = {}
        for inv in self.stack.invocations("sqsProbe"):
            for rec in inv["event"]["Records"]:
                out.setdefault(rec["messageId"], []).append(rec)
        return out

    def send(self, mode, **attributes):
        q = self.stack.pipeline["queues"]["probe"]["url"]
        attrs = {k: {"DataType": "Number" if isinstance(v, int) else "String", "StringValue": str(v)}
                 for k, v in attributes.items()}
        body = {"QueueUrl": q, "MessageBody": json.dumps({"mode": mode})}
        if attrs:
            body["MessageAttributes"] = attrs
        return fauxqs.sqs(self.stack.sns_sqs.endpoint, "SendMessage", body, REGION)["MessageId"]

    def test_sqs_partial_batch_redrive_filter_and_event_shape(self):
        s = self.stack
        sent_at = int(time.time() * 1000)
        ok = self.send("ok", TaskType="TASK1", Priority=5)
        keep = self.send("keep")
        drop = self.send("drop")
        wait_until(lambda: s.queue_counts("probe") == (0, 0, 0) and s.queue_counts("probe-dlq")[0] == 1,
                   15, 0.05, "probe drained, one dead letter")
        got = self.sqs_deliveries()
        self.assertEqual(len(got[ok]), 1, got)
        self.assertEqual([r["attributes"]["ApproximateReceiveCount"] for r in got[keep]], ["1", "2"])
        self.assertNotIn(drop, got)
        self.assertIn(drop, [i for o in s.logs("sqs filtered", function="sqsProbe") for i in o["message_ids"]])
        kept = [o for o in s.logs("sqs batch", function="sqsProbe") if keep in o["kept"]]
        self.assertEqual(len(kept), 2, kept)
        # The record, exactly as Lambda's SQS event has it.
        r = got[ok][0]
        self.assertEqual(set(r), {"messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                                  "md5OfBody", "md5OfMessageAttributes", "eventSource", "eventSourceARN",
                                  "awsRegion"})
        self.assertEqual(r["body"], json.dumps({"mode": "ok"}))
        self.assertTrue(r["receiptHandle"])
        self.assertEqual((r["eventSource"], r["eventSourceARN"], r["awsRegion"]),
                         ("aws:sqs", "arn:aws:sqs:%s:000000000000:probe" % REGION, REGION))
        lists = {"stringListValues": [], "binaryListValues": []}
        self.assertEqual(r["messageAttributes"], {
            "TaskType": dict(lists, stringValue="TASK1", dataType="String"),
            "Priority": dict(lists, stringValue="5", dataType="Number")})
        a = r["attributes"]
        self.assertEqual(a["ApproximateReceiveCount"], "1")
        self.assertTrue(all(isinstance(v, str) for v in a.values()), a)
        self.assertLess(abs(int(a["SentTimestamp"]) - sent_at), 5000, a)
        self.assertGreaterEqual(int(a["ApproximateFirstReceiveTimestamp"]), int(a["SentTimestamp"]))
        self.assertTrue(a["SenderId"])
        self.assertRegex(r["md5OfBody"], r"^[0-9a-f]{32}$")
        self.assertRegex(r["md5OfMessageAttributes"], r"^[0-9a-f]{32}$")
        # A function error deletes nothing: the message comes back until it is dead-lettered.
        err = self.send("error")
        wait_until(lambda: s.queue_counts("probe") == (0, 0, 0) and s.queue_counts("probe-dlq")[0] == 2,
                   15, 0.05, "the failing message dead-lettered")
        batches = [o for o in s.logs("sqs batch", function="sqsProbe") if err in o["message_ids"]]
        self.assertEqual([(o["outcome"], o["function_error"], o["deleted"]) for o in batches],
                         [("error", "Probe.Error", [])] * 2)

    def test_invoke_api(self):
        s = self.stack
        r = s.invoke("nothing-here", {})
        self.assertEqual((r.status, r.header("x-amzn-ErrorType")), (404, "ResourceNotFoundException"))
        event = {"Records": [{"messageId": "direct-1", "body": json.dumps({"mode": "keep"})}]}
        r = s.invoke("sqsProbe", event)
        self.assertEqual((r.status, r.header("X-Amz-Function-Error")), (200, None))
        self.assertEqual(r.json(), {"batchItemFailures": [{"itemIdentifier": "direct-1"}]})
        self.assertTrue(r.header("x-amzn-RequestId"))
        arn = s.functions["sqsProbe"]["arn"]
        r = s.invoke(arn, {"Records": [{"messageId": "direct-2", "body": json.dumps({"mode": "error"})}]})
        self.assertEqual((r.status, r.header("X-Amz-Function-Error")), (200, "Unhandled"))
        self.assertEqual(r.json()["errorType"], "Probe.Error")
        r = s.request("POST", "/2015-03-31/functions/sqsProbe/invocations", b"{not json", port=s.invoke_port)
        self.assertEqual((r.status, r.header("x-amzn-ErrorType")), (400, "InvalidRequestContentException"))
        r = s.request("POST", "/2015-03-31/functions/sqsProbe/invocations", {"Records": []},
                      headers={"X-Amz-Invocation-Type": "Event"}, port=s.invoke_port)
        self.assertEqual(r.status, 202)

    def test_invoke_api_request_over_6mb(self):
        """A request over Lambda's synchronous limit is refused as Lambda refuses it: 413,
        RequestEntityTooLargeException (the model's RequestTooLargeException), Lambda's message;
        from the head, before the body is read."""
        c = http.client.HTTPConnection("127.0.0.1", self.stack.invoke_port, timeout=30)
        try:
            c.putrequest("POST", "/2015-03-31/functions/sqsProbe/invocations")
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(MAX_FUNCTION_REQUEST + 1))
            c.endheaders()
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        self.assertEqual((r.status, r.getheader("x-amzn-ErrorType")), (413, "RequestEntityTooLargeException"))
        self.assertEqual(json.loads(body), {"Type": "User", "message": "Request must be smaller than 6291456 bytes "
                                                                       "for the InvokeFunction operation"})

    def test_invoke_api_event_over_1mb(self):
        """An asynchronous (Event) invocation is held to Lambda's 1,048,576 bytes: one over is
        refused as Lambda refuses it (413, RequestEntityTooLargeException, Lambda's message) and
        never invoked; one at the limit is taken."""
        s = self.stack
        path = "/2015-03-31/functions/sqsProbe/invocations"
        event = b'{"Records":[],"pad":"' + b"x" * (MAX_ASYNC_REQUEST - 23) + b'"}'
        self.assertEqual(len(event), MAX_ASYNC_REQUEST)
        over = event[:-2] + b'x"}'
        r = s.request("POST", path, over, headers={"X-Amz-Invocation-Type": "Event"}, port=s.invoke_port)
        self.assertEqual((r.status, r.header("x-amzn-ErrorType")), (413, "RequestEntityTooLargeException"), r)
        self.assertEqual(r.json(), {"Type": "User", "message": "1048577 byte payload is too large for the Event "
                                                               "invocation type (limit 1048576 bytes)"})
        r = s.request("POST", path, event, headers={"X-Amz-Invocation-Type": "Event"}, port=s.invoke_port)
        self.assertEqual(r.status, 202, r)

        def padded():
            return [len(event_json(inv["event"])) for inv in s.invocations("sqsProbe") if "pad" in inv["event"]]
        wait_until(padded, 60, 0.05, "the Event invocation")
        self.assertEqual(padded(), [MAX_ASYNC_REQUEST])


class StreamBatchPayloadLimit(unittest.TestCase):
    """A stream mapping's batch stops short of Lambda's synchronous payload limit (6,291,456
    bytes), as Lambda's does: the records left go in the next batch, in order."""

    emulator_only = True

    class Function:
        name = "publish"

        def __init__(self):
            self.events = []

        def invoke(self, event):
            self.events.append(event_json(event))
            inv = type("Invocation", (), {})()
            inv.result, inv.request_id = ("response", b"", None), str(uuid.uuid4())
            return inv

    def test_batches_stop_short_of_the_limit(self):
        fn = self.Function()
        m = StreamMapping(fn, {"endpoint": "http://127.0.0.1:1", "table": "tasks", "batch_size": 100},
                          REGION, threading.Event())
        st = Shard("shardId-1", None, "TRIM_HORIZON")
        # records of about 790 KB, as a MODIFY of a 395 KB item carries with both its images
        records = [{"eventID": str(i), "dynamodb": {"SequenceNumber": "%021d" % i,
                                                     "NewImage": {"blob": {"S": "n" * 395_000}},
                                                     "OldImage": {"blob": {"S": "o" * 395_000}}}}
                   for i in range(20)]
        st.pending.extend(records)
        while st.pending:
            m.work(st)
        sent = [json.loads(e)["Records"] for e in fn.events]
        self.assertEqual([r["eventID"] for batch in sent for r in batch], [str(i) for i in range(20)])
        for event in fn.events:
            self.assertLessEqual(len(event), MAX_FUNCTION_REQUEST)
        for batch, following in zip(sent, sent[1:]):  # each as full as the limit lets it be
            self.assertGreater(len(event_json({"Records": batch + following[:1]})), MAX_FUNCTION_REQUEST)
        self.assertEqual([len(b) for b in sent], [7, 7, 6])

    def test_a_batch_under_the_limit_goes_whole(self):
        fn = self.Function()
        m = StreamMapping(fn, {"endpoint": "http://127.0.0.1:1", "table": "tasks", "batch_size": 10},
                          REGION, threading.Event())
        st = Shard("shardId-1", None, "TRIM_HORIZON")
        st.pending.extend({"eventID": str(i), "dynamodb": {"SequenceNumber": str(i)}} for i in range(15))
        m.work(st)
        self.assertEqual(len(json.loads(fn.events[0])["Records"]), 10)

    def test_the_size_is_the_events_utf8_bytes(self):
        """Lambda counts the event's bytes as sent, UTF-8: ten records of about 560 KB in UTF-8
        (one CJK character is 3 bytes, 6 written as a \\u escape) go as one event of 5.6 MB."""
        fn = self.Function()
        m = StreamMapping(fn, {"endpoint": "http://127.0.0.1:1", "table": "tasks", "batch_size": 10},
                          REGION, threading.Event())
        st = Shard("shardId-1", None, "TRIM_HORIZON")
        st.pending.extend({"eventID": str(i), "dynamodb": {"SequenceNumber": str(i),
                                                            "NewImage": {"title": {"S": "\u4efb" * 186_000}}}}
                          for i in range(10))
        m.work(st)
        self.assertEqual(len(json.loads(fn.events[0].decode("utf-8"))["Records"]), 10)
        self.assertIn("\u4efb".encode("utf-8"), fn.events[0])
        self.assertLessEqual(len(fn.events[0]), MAX_FUNCTION_REQUEST)


def _image(status):
    return {"status": {"S": status}, "task_type": {"S": "TASK1"}}


class FilterPatterns(unittest.TestCase):
    """The emulator's filter matching, on the worked examples of lambda-filters.md (part A)."""

    emulator_only = True

    R1 = {"eventName": "INSERT", "dynamodb": {"NewImage": _image("CREATED")}}
    R2 = {"eventName": "MODIFY", "dynamodb": {"OldImage": {"status": {"S": "CREATED"}},
                                              "NewImage": _image("IN_PROGRESS")}}
    R3 = {"eventName": "MODIFY", "dynamodb": {"OldImage": {"status": {"S": "IN_PROGRESS"}},
                                              "NewImage": _image("COMPLETED")}}
    R4 = {"eventName": "REMOVE", "dynamodb": {"OldImage": {"status": {"S": "COMPLETED"}}}}

    def check(self, pattern, expected, records):
        check_pattern(pattern)
        self.assertEqual([pattern_matches(pattern, r) for r in records], expected, pattern)

    def test_stream_examples(self):
        rs = [self.R1, self.R2, self.R3, self.R4]
        self.check({"dynamodb": {"NewImage": {"status": {"S": ["CREATED"]}}}}, [True, False, False, False], rs)
        self.check({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["COMPLETED", "FAILED"]}]}}}},
                   [True, True, False, False], rs)
        self.check({"dynamodb": {"NewImage": {"task_type": {"S": [{"prefix": "TASK"}]}}}},
                   [True, True, True, False], rs)
        self.check({"dynamodb": {"OldImage": {"status": {"S": [{"exists": True}]}}}}, [False, True, True, True], rs)
        self.check({"dynamodb": {"NewImage": {"ttl": {"N": [{"exists": False}]}}}}, [True, True, True, True], rs)
        self.check({"eventName": ["INSERT"]}, [True, False, False, False], rs)
        # deploy/taskd.json's pattern with the task-items condition, as the stack maps it
        self.check(merged({"eventName": ["INSERT"]}, TASK_ITEMS), [True, False, False, False], rs)
        idem = {"eventName": "INSERT", "dynamodb": {"NewImage": {"id": {"S": "idem#k"}}}}
        self.assertFalse(pattern_matches(merged({"eventName": ["INSERT"]}, TASK_ITEMS), idem))
        self.assertTrue(matches_any([{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}], self.R1))
        self.assertTrue(matches_any([], self.R4))

    def test_values_and_operators(self):
        p = {"body": {"priority": [{"numeric": [">=", 5]}]}}
        self.check(p, [True, False, False, False],
                   [{"body": {"priority": 7}}, {"body": {"priority": 4}}, {"body": {"priority": "7"}},
                    {"body": {}}])
        self.check({"n": [{"numeric": [">", 0, "<=", 5]}]}, [False, True, True, False],
                   [{"n": 0}, {"n": 0.5}, {"n": 5}, {"n": 5.5}])
        self.check({"n": [300]}, [True, False, False], [{"n": 300}, {"n": 300.0}, {"n": "300"}])
        self.check({"n": [{"anything-but": [300]}]}, [False, True, True, True],
                   [{"n": 300}, {"n": 300.0}, {"n": "300"}, {"n": 301}])
        self.check({"s": ["a", "b"]}, [True, True, False, True],
                   [{"s": "a"}, {"s": ["x", "b"]}, {"s": "A"}, {"s": ["b"]}])
        self.check({"s": [{"anything-but": {"prefix": "order-"}}]}, [True, False, False],
                   [{"s": "data"}, {"s": "order-1"}, {}])
        self.check({"s": [{"anything-but": "x"}, {"exists": False}]}, [True, False, True],
                   [{"s": "y"}, {"s": "x"}, {}])
        self.check({"s": [{"suffix": ".png"}, {"equals-ignore-case": "ABC"}]}, [True, True, False],
                   [{"s": "a.png"}, {"s": "abc"}, {"s": "png"}])
        self.check({"v": [None, ""]}, [True, True, False, False], [{"v": None}, {"v": ""}, {"v": "x"}, {}])
        self.check({"b": [True]}, [True, False], [{"b": True}, {"b": 1}])

    def test_bad_patterns_are_refused(self):
        for bad in ({}, {"a": "x"}, {"a": []}, {"a": [{"nope": 1}]}, {"a": [{"numeric": ["!", 1]}]},
                    {"a": [{"prefix": 1}]}, {"a": [{"exists": "yes"}]}, {"a": [{"prefix": "a", "suffix": "b"}]},
                    {"a": [[1]]}):
            with self.assertRaises(PatternError, msg=bad):
                check_pattern(bad)


if __name__ == "__main__":
    unittest.main()
