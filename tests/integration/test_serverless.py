"""serverless.yml: the template osls makes of it agrees with deploy/taskd.json and deploy/table.json.

Template runs `osls package --stage dev --region eu-west-1` (osls 4.3.1, the open-source Serverless
Framework v3 line, from the cache folder where scripts/aws-standins.sh installs it) in a temporary
copy of serverless.yml and deploy/, with a dummy dist/lambda.zip (package.artifact must name an
existing file; the real zip is test_lambda_zip's business), no AWS credentials and a HOME of its
own; then scripts/check-serverless.py, run as a program, must accept the output, and a few facts
are read directly. Checker feeds the checker copies of that output (or of the configuration) each
wrong in one way and expects a rejection naming the fault; it calls the checker's main() in this
process (the module loaded once), but for a folder that does not exist, which the program must refuse with
exit status 2. NewRelic packages again with the New Relic settings empty (the template must not
change), with OTLP settings (they must reach every function) and with the layer plugin switched on
(osls must go looking for the plugin). The module's runs share the validator osls compiles from its
configuration schema, which the first run makes.
ShippedConfig checks deploy/taskd.json: it is the README's defaults (and the checker's,
scripts/taskd-defaults.json), and taskd runs with it.
"""

import contextlib
import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

sys.path.insert(0, harness.LAMBDA_DIR)
from script_module import load_script  # noqa: E402

REPO = harness.REPO
CHECKER = os.path.join(REPO, "scripts", "check-serverless.py")
check_serverless = load_script("check-serverless.py")
OSLS_VERSION = "4.3.1"
OSLS_TIMEOUT = 120
TEMPLATE = "cloudformation-template-update-stack.json"
STATE = "serverless-state.json"
# variables of the deploying shell that serverless.yml reads; the tests set them explicitly
PASSTHROUGH = ("OTEL_", "NEW_RELIC_", "TASKD_NEW_RELIC_LAYER", "TASKD_METRICS_NAMESPACE", "LOG_LEVEL", "AWS_",
               "SLS_", "SERVERLESS_")


def cache_dir():
    return os.environ.get("TASKD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "taskd")


def osls_bin():
    return os.path.join(cache_dir(), "osls-%s" % OSLS_VERSION, "node_modules", ".bin", "osls")


def package(workdir, env=None):
    """osls package in a fresh copy under workdir; (CompletedProcess, .serverless dir).

    The runs in one folder share osls's compiled configuration schema: osls keeps it under
    SLS_SCHEMA_CACHE_BASE_DIR (HOME by default) and compiles it when absent, 5 s of CPU a run."""
    exe = osls_bin()
    if not os.access(exe, os.X_OK):
        raise RuntimeError("osls %s not found at %s: run scripts/aws-standins.sh install"
                           % (OSLS_VERSION, exe))
    os.makedirs(os.path.join(workdir, "dist"))
    os.makedirs(os.path.join(workdir, "home"))
    shutil.copy(os.path.join(REPO, "serverless.yml"), workdir)
    shutil.copytree(os.path.join(REPO, "deploy"), os.path.join(workdir, "deploy"))
    with zipfile.ZipFile(os.path.join(workdir, "dist", "lambda.zip"), "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(PASSTHROUGH)}
    run_env.update({
        "HOME": os.path.join(workdir, "home"),  # no ~/.aws, no ~/.serverlessrc of the user's
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(workdir, "no-credentials"),
        "AWS_CONFIG_FILE": os.path.join(workdir, "no-config"),
        "SLS_SCHEMA_CACHE_BASE_DIR": os.path.dirname(workdir),
    })
    run_env.update(env or {})
    p = subprocess.run([exe, "package", "--stage", "dev", "--region", "eu-west-1"], cwd=workdir,
                       env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=OSLS_TIMEOUT)
    return p, os.path.join(workdir, ".serverless")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj))  # json.dumps() without indent encodes in C, json.dump() in Python


def run_checker(out_dir):
    """The checker run as a program, as CI and a deploying shell run it."""
    return subprocess.run([sys.executable, "-B", CHECKER, out_dir], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, universal_newlines=True)


def check(out_dir, config=None, table=None):
    """The checker's main() in this process, its output caught: what run_checker() returns, without
    a Python started for each of the many cases."""
    argv = (["--config", config] if config else []) + (["--table", table] if table else []) + [out_dir]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        returncode = check_serverless.main(argv)
    return subprocess.CompletedProcess(argv, returncode, out.getvalue(), err.getvalue())


def normalized(template):
    """The template without what changes from one package run to the next."""
    text = json.dumps(template, sort_keys=True)
    text = re.sub(r"serverless/taskd/dev/[^\"]*/lambda\.zip", "serverless/taskd/dev/X/lambda.zip", text)
    return re.sub(r"ApiGatewayDeployment\d+", "ApiGatewayDeploymentN", text)


class Shared:
    """One package run for the whole module."""
    tmp = out = template = state = None

    @classmethod
    def get(cls):
        if cls.out is None:
            cls.tmp = tempfile.mkdtemp(prefix="taskd-serverless-")
            p, out = package(os.path.join(cls.tmp, "base"))
            if p.returncode != 0:
                raise AssertionError("osls package failed (rc=%d):\n%s" % (p.returncode, p.stdout.decode()))
            cls.out = out
            cls.template = read_json(os.path.join(out, TEMPLATE))
            cls.state = read_json(os.path.join(out, STATE))
        return cls


def tearDownModule():
    if Shared.tmp:
        shutil.rmtree(Shared.tmp, ignore_errors=True)


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        s = Shared.get()
        cls.out, cls.t, cls.state = s.out, s.template, s.state
        cls.res = cls.t["Resources"]

    def of_type(self, typ):
        return {k: v["Properties"] for k, v in self.res.items() if v["Type"] == typ}

    def test_checker_accepts_it(self):
        p = run_checker(self.out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("check-serverless: ok", p.stdout)

    def test_functions(self):
        fns = self.of_type("AWS::Lambda::Function")
        handlers = sorted((p["Handler"], p["Environment"]["Variables"].get("QUEUE_NAME", "")) for p in fns.values())
        self.assertEqual(handlers, [("api", ""), ("publish", ""), ("recover", ""), ("sweep", ""),
                                    ("worker", "task1"), ("worker", "task1-dlq")])
        queues = {p["Tags"][0]["Value"]: p for p in self.of_type("AWS::SQS::Queue").values() if "Tags" in p}
        for p in fns.values():
            self.assertEqual(p["Runtime"], "provided.al2023")
            self.assertEqual(p["Architectures"], ["x86_64"])
            self.assertEqual(p["TracingConfig"], {"Mode": "Active"})
            env = p["Environment"]["Variables"]
            self.assertEqual(env["LOG_LEVEL"], "INFO")
            self.assertEqual(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "")  # empty: taskd exports nothing
            if p["Handler"] == "worker":
                # the task starts only if the binding's 30 s fit before the deadline minus 1 s;
                # AWS advises a queue's visibility timeout of 6 x the timeout of the function
                # that reads it
                q = env["QUEUE_NAME"]
                if q == "task1":
                    self.assertGreaterEqual(p["Timeout"], 30 + 5)
                self.assertEqual(queues[q]["VisibilityTimeout"], 6 * p["Timeout"])
        self.assertNotIn("IamRoleLambdaExecution", self.res)  # every function has its own role

    def test_stream_mapping(self):
        (m,) = [p for p in self.of_type("AWS::Lambda::EventSourceMapping").values()
                if "StreamArn" in json.dumps(p["EventSourceArn"])]
        self.assertEqual(m["StartingPosition"], "TRIM_HORIZON")
        self.assertEqual([json.loads(f["Pattern"]) for f in m["FilterCriteria"]["Filters"]],
                         [{"eventName": ["INSERT"],
                           "dynamodb": {"NewImage": {"task_type": {"S": [{"exists": True}]}}}}])
        # a record SNS did not take is retried until it is published; what the stream drops
        # unpublished (24 h) is reported to a queue of its own, kept 14 days
        self.assertEqual(m["MaximumRetryAttempts"], -1)
        self.assertEqual(m["MaximumRecordAgeInSeconds"], 82800)  # under the stream's 24 h
        self.assertEqual(m["DestinationConfig"]["OnFailure"]["Destination"],
                         {"Fn::GetAtt": ["PublishFailuresQueue", "Arn"]})
        self.assertEqual(self.res["PublishFailuresQueue"]["Properties"]["MessageRetentionPeriod"], 1209600)

    def test_api_and_outputs(self):
        self.assertTrue(self.state["service"]["provider"]["tracing"]["apiGateway"])
        # its 503 at the deadline comes well before API Gateway's 29 s
        self.assertLessEqual(self.res["ApiLambdaFunction"]["Properties"]["Timeout"], 25)
        self.assertIn("ServiceEndpoint", self.t["Outputs"])
        self.assertIn("execute-api", json.dumps(self.t["Outputs"]["ApiUrl"]))


class Checker(unittest.TestCase):
    """Each case spoils one thing in a copy of the output; the checker must name it."""

    @classmethod
    def setUpClass(cls):
        s = Shared.get()
        cls.base = s.out
        cls.tmp = tempfile.mkdtemp(prefix="taskd-serverless-check-")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def checked(self, spoil=None, spoil_state=None, config=None, table=None):
        """The checker's run on a copy of the output, spoiled, and of deploy/taskd.json and
        deploy/table.json, changed (as taskd-changed.json and table-changed.json)."""
        Checker.n += 1
        d = os.path.join(self.tmp, "case%d" % self.n)
        os.makedirs(d)
        t = copy.deepcopy(Shared.template) if spoil else Shared.template
        st = copy.deepcopy(Shared.state) if spoil_state else Shared.state
        if spoil:
            spoil(t["Resources"], t)
        if spoil_state:
            spoil_state(st)
        write_json(os.path.join(d, TEMPLATE), t)
        write_json(os.path.join(d, STATE), st)
        paths = {}
        for arg, change, name in (("config", config, "taskd"), ("table", table, "table")):
            if change:
                paths[arg] = os.path.join(d, "%s-changed.json" % name)
                obj = read_json(os.path.join(REPO, "deploy", "%s.json" % name))
                change(obj)
                write_json(paths[arg], obj)
        return check(d, **paths)

    def rejected(self, spoil=None, *needles, spoil_state=None, config=None, table=None):
        p = self.checked(spoil, spoil_state, config, table)
        self.assertEqual(p.returncode, 1, "the checker accepted it:\n%s%s" % (p.stdout, p.stderr))
        for n in needles:
            self.assertIn(n, p.stderr)
        return p.stderr

    @staticmethod
    def statements(res, role):
        return res[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    def test_control(self):
        """The same round trip with nothing spoiled passes, so each rejection below is for its fault."""
        p = self.checked()
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_filter_policy(self):
        def spoil(r, t):
            r["Task1Subscription"]["Properties"]["FilterPolicy"] = {"TaskType": ["TASK2"]}
        self.rejected(spoil, "subscription Task1Subscription", "FilterPolicy", "TASK2", "TASK1")

    def test_filter_policy_scope(self):
        def spoil(r, t):
            r["Task1Subscription"]["Properties"]["FilterPolicyScope"] = "MessageBody"
        self.rejected(spoil, "Task1Subscription", "FilterPolicyScope MessageBody")

    def test_raw_delivery(self):
        def spoil(r, t):
            del r["Task1Subscription"]["Properties"]["RawMessageDelivery"]
        self.rejected(spoil, "Task1Subscription", "RawMessageDelivery")

    def test_queue_policy(self):
        def spoil(r, t):
            del r["Task1QueuePolicy"]
        self.rejected(spoil, "queue Task1Queue (task1)", "QueuePolicy")

    def test_queue_policy_open(self):
        def spoil(r, t):
            st = r["Task1QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
            st["Principal"] = "*"
            del st["Condition"]
        self.rejected(spoil, "queue policy Task1QueuePolicy: allows", "to anyone",
                      "no AWS::SQS::QueuePolicy letting sns.amazonaws.com")

    def test_redrive_policy_dropped(self):
        def spoil(r, t):
            del r["Task1Queue"]["Properties"]["RedrivePolicy"]
        self.rejected(spoil, "queue Task1Queue (task1)", "no RedrivePolicy", "task1-dlq")

    def test_redrive_policy_wrong(self):
        def spoil(r, t):
            rp = r["Task1Queue"]["Properties"]["RedrivePolicy"]
            rp["maxReceiveCount"] = 5
            rp["deadLetterTargetArn"] = {"Fn::GetAtt": ["Task1Queue", "Arn"]}
        self.rejected(spoil, "maxReceiveCount 5", "max_receive_count is 3", "deadLetterTargetArn")

    def test_queue_attributes(self):
        def spoil(r, t):
            r["Task1Queue"]["Properties"]["MessageRetentionPeriod"] = 60
            r["Task1DlqQueue"]["Properties"]["VisibilityTimeout"] = 60  # the configured value
        self.rejected(spoil, "MessageRetentionPeriod 60", "task1.retention is 345600",
                      "Task1DlqQueue's VisibilityTimeout 60, expected 180",
                      "6 x the function's Timeout 30")

    def test_dead_letter_queue_outlives_its_source(self):
        """SQS counts a dead letter's age from its first send: a dead-letter queue that keeps
        messages no longer than its source could drop one before its worker fails the task."""
        def spoil(r, t):
            r["Task1DlqQueue"]["Properties"]["MessageRetentionPeriod"] = 345600

        def config(c):
            c["queues"][1]["retention"] = 345600  # the template and the configuration agree
        err = self.rejected(spoil, "queue Task1DlqQueue (task1-dlq): MessageRetentionPeriod 345600, not longer "
                                   "than task1's 345600", config=config)
        self.assertEqual(err.count("check-serverless: "), 2, err)  # that fault and the count

    def test_dead_letter_queue_retention_defaults_to_the_most(self):
        """A dead-letter queue that gives no retention keeps SQS's most, 14 days, as taskd does."""
        def config(c):
            del c["queues"][1]["retention"]
        p = self.checked(config=config)
        self.assertEqual(p.returncode, 0, p.stderr)

        def spoil(r, t):
            r["Task1DlqQueue"]["Properties"]["MessageRetentionPeriod"] = 864000
        self.rejected(spoil, "MessageRetentionPeriod 864000, config task1-dlq.retention is 1209600", config=config)

    def test_missing_queue(self):
        def spoil(r, t):
            r["Task1DlqQueue"]["Properties"]["Tags"] = []
        self.rejected(spoil, "queue task1-dlq: no AWS::SQS::Queue")

    def test_wildcard_dynamodb(self):
        def spoil(r, t):
            self.statements(r, "WorkerTask1Role").append(
                {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
        self.rejected(spoil, "role WorkerTask1Role", "wildcard action dynamodb:*")

    def test_star_resource(self):
        def spoil(r, t):
            self.statements(r, "PublishRole").append(
                {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"})
        self.rejected(spoil, "role PublishRole", "sns:Publish on resource *")

    def test_logs_of_its_own(self):
        """A role may write the logs of its own function, and no other function's."""
        def spoil(r, t):
            for st in self.statements(r, "WorkerTask1Role"):
                if "logs:PutLogEvents" in st["Action"]:
                    st["Resource"] = {"Fn::GetAtt": ["ApiLogGroup", "Arn"]}
        self.rejected(spoil, "role WorkerTask1Role", "logs:PutLogEvents on ApiLogGroup.Arn, not the function's own "
                                                    "log group WorkerTask1LogGroup.Arn",
                      "lacks logs:PutLogEvents on WorkerTask1LogGroup.Arn")

    def test_needless_permission(self):
        def spoil(r, t):
            self.statements(r, "WorkerTask1Role").append({"Effect": "Allow", "Action": "dynamodb:DeleteItem",
                                                          "Resource": {"Fn::GetAtt": ["TasksTable", "Arn"]}})
            self.statements(r, "WorkerTask1Role").append({"Effect": "Allow", "Action": "sqs:ReceiveMessage",
                                                          "Resource": {"Fn::GetAtt": ["Task1DlqQueue", "Arn"]}})
        self.rejected(spoil, "role WorkerTask1Role", "grants dynamodb:DeleteItem",
                      "grants sqs:ReceiveMessage on Task1DlqQueue.Arn")

    def test_key_deletes_only(self):
        # the API role frees the key items of expired tasks, and may delete nothing else
        deletes = [s for s in self.statements(Shared.template["Resources"], "ApiRole") if s["Action"] == "dynamodb:DeleteItem"]
        self.assertEqual(len(deletes), 1)
        self.assertEqual(deletes[0]["Condition"],
                         {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["idem#*", "idem~*"]}})

        def spoil(r, t):
            for s in self.statements(r, "ApiRole"):
                if s["Action"] == "dynamodb:DeleteItem":
                    del s["Condition"]
        self.rejected(spoil, "role ApiRole", "grants dynamodb:DeleteItem beyond the idempotency key items")

    def test_key_deletes_needed(self):
        def spoil(r, t):
            st = self.statements(r, "ApiRole")
            st[:] = [s for s in st if s["Action"] != "dynamodb:DeleteItem"]
        self.rejected(spoil, "role ApiRole", "lacks dynamodb:DeleteItem on TasksTable.Arn")

    def test_missing_permission(self):
        def spoil(r, t):
            st = self.statements(r, "ApiRole")
            st[:] = [s for s in st if s["Action"] != "dynamodb:Query"]
        self.rejected(spoil, "role ApiRole", "lacks dynamodb:Query on TasksTable.Arn/index/all_by_id")

    def test_shared_role(self):
        def spoil(r, t):
            r["WorkerTask1DlqLambdaFunction"]["Properties"]["Role"] = {"Fn::GetAtt": ["WorkerTask1Role", "Arn"]}
        self.rejected(spoil, "role WorkerTask1Role: shared by")

    def test_stream_filter(self):
        def spoil(r, t):
            p = r["PublishEventSourceMappingDynamodbTasksTable"]["Properties"]
            p["FilterCriteria"]["Filters"] = [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]
            p["BisectBatchOnFunctionError"] = False
            p["MaximumRetryAttempts"] = 5
        self.rejected(spoil, "stream mapping PublishEventSourceMappingDynamodbTasksTable", "FilterCriteria",
                      "BisectBatchOnFunctionError", "MaximumRetryAttempts 5: a record whose message SNS did not take")

    def test_stream_starting_position(self):
        """LATEST would skip the tasks written before the mapping was made, or made again."""
        def spoil(r, t):
            r["PublishEventSourceMappingDynamodbTasksTable"]["Properties"]["StartingPosition"] = "LATEST"
        self.rejected(spoil, "stream mapping PublishEventSourceMappingDynamodbTasksTable",
                      "StartingPosition LATEST, expected TRIM_HORIZON")

    def test_stream_record_age(self):
        """Without a maximum age under the stream's 24 h the mapping retries a record until the
        stream trims it, and nothing says it reports such a record to its OnFailure queue."""
        for age in (None, -1, 86400, "a day"):
            def spoil(r, t, age=age):
                p = r["PublishEventSourceMappingDynamodbTasksTable"]["Properties"]
                if age is None:
                    del p["MaximumRecordAgeInSeconds"]
                else:
                    p["MaximumRecordAgeInSeconds"] = age
            self.rejected(spoil, "stream mapping PublishEventSourceMappingDynamodbTasksTable",
                          "MaximumRecordAgeInSeconds %s: a record still unpublished" % age)

    def test_stream_failures_reported(self):
        def spoil(r, t):
            del r["PublishEventSourceMappingDynamodbTasksTable"]["Properties"]["DestinationConfig"]
        self.rejected(spoil, "stream mapping PublishEventSourceMappingDynamodbTasksTable",
                      "DestinationConfig OnFailure null is not an SQS queue of the template")

        def spoil_role(r, t):
            st = self.statements(r, "PublishRole")
            st[:] = [s for s in st if s["Action"] != "sqs:SendMessage"]
        self.rejected(spoil_role, "role PublishRole", "lacks sqs:SendMessage on PublishFailuresQueue.Arn")

    def test_publish_fails_the_task_of_a_refused_message(self):
        """publish fails, in the table, the task of a message SNS refuses: it needs the table's
        name and the grants a worker's report has."""
        def spoil_role(r, t):
            st = self.statements(r, "PublishRole")
            st[:] = [s for s in st if "dynamodb:UpdateItem" not in s["Action"]]
        self.rejected(spoil_role, "role PublishRole", "lacks dynamodb:UpdateItem on TasksTable.Arn")

        def spoil_env(r, t):
            del r["PublishLambdaFunction"]["Properties"]["Environment"]["Variables"]["TABLE_NAME"]
        self.rejected(spoil_env, "function PublishLambdaFunction: TABLE_NAME null, expected Ref TasksTable")

    def test_sqs_mapping(self):
        def spoil(r, t):
            p = r["WorkerTask1EventSourceMappingSQSTask1Queue"]["Properties"]
            del p["FunctionResponseTypes"]
            p["BatchSize"] = 10
        self.rejected(spoil, "sqs mapping WorkerTask1EventSourceMappingSQSTask1Queue",
                      "lacks ReportBatchItemFailures", "BatchSize 10")

    def test_worker_timeout(self):
        def spoil(r, t):
            r["WorkerTask1LambdaFunction"]["Properties"]["Timeout"] = 31
        self.rejected(spoil, "function WorkerTask1LambdaFunction (queue task1): Timeout 31")

    def test_worker_timeout_holds_a_batch(self):
        """A batch of 2 tasks of 30 s each does not fit a 40 s function: its tail could go back unrun."""
        def spoil(r, t):
            r["WorkerTask1EventSourceMappingSQSTask1Queue"]["Properties"]["BatchSize"] = 2

        def config(c):
            c["handlers"][0]["batch_size"] = 2
        self.rejected(spoil, "function WorkerTask1LambdaFunction (queue task1): Timeout 40, below batch_size 2",
                      config=config)

    def test_worker_batch_over_ten_needs_a_window(self):
        """Lambda refuses an SQS mapping of more than 10 messages a batch without a batching window."""
        def spoil(r, t):
            r["WorkerTask1EventSourceMappingSQSTask1Queue"]["Properties"]["BatchSize"] = 11
            r["WorkerTask1LambdaFunction"]["Properties"]["Timeout"] = 11 * 30 + 10
            r["Task1Queue"]["Properties"]["VisibilityTimeout"] = 6 * (11 * 30 + 10)

        def config(c):
            c["handlers"][0]["batch_size"] = 11
        err = self.rejected(spoil, "sqs mapping WorkerTask1EventSourceMappingSQSTask1Queue (queue task1): BatchSize 11 "
                                   "with MaximumBatchingWindowInSeconds absent (0)", config=config)
        self.assertEqual(err.count("check-serverless: "), 2, err)  # that fault and the count

    def test_worker_batch_size_not_a_number(self):
        """A BatchSize that is no integer is named as a mismatch, not a crash of the check."""
        def spoil(r, t):
            r["WorkerTask1EventSourceMappingSQSTask1Queue"]["Properties"]["BatchSize"] = "ten"
        self.rejected(spoil, "sqs mapping WorkerTask1EventSourceMappingSQSTask1Queue (queue task1): BatchSize ten, "
                             "config batch_size of the binding is 1")

    def test_worker_timeout_not_a_number(self):
        """A Timeout that is no integer is named, not a crash of the check."""
        def spoil(r, t):
            r["WorkerTask1LambdaFunction"]["Properties"]["Timeout"] = "a minute"
        self.rejected(spoil, "function WorkerTask1LambdaFunction (queue task1): Timeout a minute is no number")

    def test_worker_concurrency_of_one(self):
        """Lambda takes an SQS mapping's MaximumConcurrency from 2: a binding of concurrency 1 is
        refused by name, whether the mapping keeps another bound or has none."""
        def config(c):
            c["handlers"][0]["concurrency"] = 1

        def unbounded(r, t):
            del r["WorkerTask1EventSourceMappingSQSTask1Queue"]["Properties"]["ScalingConfig"]
        for spoil in (None, unbounded):
            err = self.rejected(spoil, "taskd-changed.json: binding of task1 has concurrency 1, which AWS cannot "
                                       "keep to: an SQS mapping's MaximumConcurrency is at least 2", config=config)
            self.assertEqual(err.count("check-serverless: "), 2, err)

    def test_worker_reserved_concurrency(self):
        """A reserved concurrency below the mapping's maximum has Lambda throttle the mapping, and
        each throttled batch comes back counting a receive toward the dead-letter queue."""
        def spoil(r, t):
            r["WorkerTask1LambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] = 2
        self.rejected(spoil, "function WorkerTask1LambdaFunction (queue task1): ReservedConcurrentExecutions 2, "
                             "below its mapping's MaximumConcurrency 8")

    def test_worker_queue_name(self):
        def spoil(r, t):
            r["WorkerTask1LambdaFunction"]["Properties"]["Environment"]["Variables"]["QUEUE_NAME"] = "task2"
        self.rejected(spoil, "QUEUE_NAME task2", "queue task1 (handler binding): 0 worker functions")

    def test_no_dead_letter_worker(self):
        def spoil(r, t):
            del r["WorkerTask1DlqLambdaFunction"]
            del r["WorkerTask1DlqEventSourceMappingSQSTask1DlqQueue"]
        self.rejected(spoil, "queue task1-dlq (dead-letter queue): 0 worker functions")

    def test_function_basics(self):
        def spoil(r, t):
            p = r["ApiLambdaFunction"]["Properties"]
            p["Runtime"] = "provided.al2"
            p["TracingConfig"] = {"Mode": "PassThrough"}
            r["PublishLambdaFunction"]["Properties"]["Handler"] = "bootstrap"
        self.rejected(spoil, "function ApiLambdaFunction: Runtime provided.al2",
                      "function ApiLambdaFunction: TracingConfig", "Handler bootstrap")

    def test_table(self):
        def spoil(r, t):
            p = r["TasksTable"]["Properties"]
            p["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"].remove("task_ttl")
            p["TimeToLiveSpecification"]["AttributeName"] = "task_ttl"  # the original service's bug
            p["StreamSpecification"]["StreamViewType"] = "NEW_IMAGE"
            p["GlobalSecondaryIndexes"] = [g for g in p["GlobalSecondaryIndexes"]
                                           if g["IndexName"] != "claims_by_expiry"]
        table = os.path.relpath(os.path.join(REPO, "deploy", "table.json"))  # as the checker names it
        self.rejected(spoil, "GSI all_by_id NonKeyAttributes", "TimeToLiveSpecification",
                      "StreamViewType NEW_IMAGE", "GSI claims_by_expiry of %s is missing" % table)

    def test_table_named_as_read(self):
        """A mismatch with the table definition names the file the checker read."""
        def table(t):
            t["TimeToLiveSpecification"]["AttributeName"] = "expires_at"
        err = self.rejected(None, "TimeToLiveSpecification {\"AttributeName\":\"ttl\",\"Enabled\":true}, ",
                            "table-changed.json has {\"AttributeName\":\"expires_at\"",
                            "table-changed.json: TTL attribute is expires_at, taskd writes ttl", table=table)
        self.assertNotIn("deploy/table.json", err)
        closing = err.strip().splitlines()[-1]
        self.assertRegex(closing, r"mismatch(es)? between the template and \S+ and \S*table-changed\.json$")

    def test_table_outlives_the_stack(self):
        """The tasks are the job store's: a removed stack keeps them, and a bad write can be undone."""
        def spoil(r, t):
            del r["TasksTable"]["DeletionPolicy"]
            r["TasksTable"]["UpdateReplacePolicy"] = "Delete"
            del r["TasksTable"]["Properties"]["PointInTimeRecoverySpecification"]
        self.rejected(spoil, "table TasksTable: DeletionPolicy absent (Delete), expected Retain",
                      "table TasksTable: UpdateReplacePolicy Delete, expected Retain",
                      "table TasksTable: PointInTimeRecoverySpecification absent: point-in-time recovery is off")

    def test_sweep_schedule(self):
        def rules(r):
            return [v["Properties"] for v in r.values() if v["Type"] == "AWS::Events::Rule"]

        def slow(r, t):
            rules(r)[0]["ScheduleExpression"] = "rate(1 hour)"
        self.rejected(slow, "ScheduleExpression \"rate(1 hour)\"; expected a rate of at most 5 minutes")

        def plural_one(r, t):
            rules(r)[0]["ScheduleExpression"] = "rate(1 minutes)"  # AWS refuses it
        self.rejected(plural_one, "ScheduleExpression \"rate(1 minutes)\"")

        def off(r, t):
            rules(r)[0]["State"] = "DISABLED"
        self.rejected(off, "State DISABLED, the sweep would never run")

        def short(r, t):
            r["SweepLambdaFunction"]["Properties"]["Timeout"] = 5
        self.rejected(short, "function SweepLambdaFunction: Timeout 5; the sweep takes no step in its last 5 s")

        def unscheduled(r, t):
            for k in [k for k, v in r.items() if v["Type"] in ("AWS::Events::Rule", "AWS::Lambda::Permission")
                      and "Sweep" in json.dumps(v)]:
                del r[k]
        self.rejected(unscheduled, "function SweepLambdaFunction: no AWS::Events::Rule runs it")

        def gone(r, t):
            del r["SweepLambdaFunction"]
        self.rejected(gone, "functions: 0 sweep functions, expected 1")

    def test_recover_reads_the_publish_failures(self):
        def maps(r):
            return {k: v["Properties"] for k, v in r.items() if v["Type"] == "AWS::Lambda::EventSourceMapping"
                    and "RecoverLambdaFunction" in json.dumps(v["Properties"]["FunctionName"])}

        def elsewhere(r, t):
            next(iter(maps(r).values()))["EventSourceArn"] = {"Fn::GetAtt": ["Task1DlqQueue", "Arn"]}
        self.rejected(elsewhere, "reads", "not the queue the stream mapping reports dropped records to "
                                          "(PublishFailuresQueue)")

        def batched(r, t):
            next(iter(maps(r).values()))["BatchSize"] = 10
        self.rejected(batched, "BatchSize 10, expected 1")

        def unreported(r, t):
            del next(iter(maps(r).values()))["FunctionResponseTypes"]
        self.rejected(unreported, "lacks ReportBatchItemFailures (recover answers batchItemFailures)")

        def quick(r, t):
            r["PublishFailuresQueue"]["Properties"]["VisibilityTimeout"] = 30
        self.rejected(quick, "queue PublishFailuresQueue: VisibilityTimeout 30, below 6 x function "
                             "RecoverLambdaFunction's Timeout 300")

        def lists_all(r, t):
            for st in self.statements(r, "RecoverRole"):
                if st["Action"] == "dynamodb:Query":
                    st["Resource"] = {"Fn::Sub": "${TasksTable.Arn}/index/all_by_id"}
        self.rejected(lists_all, "role RecoverRole", "grants dynamodb:Query on TasksTable.Arn/index/all_by_id",
                      "lacks dynamodb:Query on TasksTable.Arn/index/type_status_by_id")

        def gone(r, t):
            del r["RecoverLambdaFunction"]
            for k in list(maps(r)):
                del r[k]
        self.rejected(gone, "functions: 0 recover functions, expected 1")

    def test_claims_index_is_the_sweeps_alone(self):
        def api_queries_it(r, t):
            for st in self.statements(r, "ApiRole"):
                if st["Action"] == "dynamodb:Query":
                    st["Resource"].append({"Fn::Sub": "${TasksTable.Arn}/index/claims_by_expiry"})
        self.rejected(api_queries_it, "role ApiRole", "grants dynamodb:Query on TasksTable.Arn/index/claims_by_expiry")

        def sweep_cannot(r, t):
            sts = self.statements(r, "SweepRole")
            sts[:] = [st for st in sts if st["Action"] != "dynamodb:Query"]
        self.rejected(sweep_cannot, "role SweepRole", "lacks dynamodb:Query on TasksTable.Arn/index/claims_by_expiry")

    def test_api_tracing(self):
        def spoil_state(st):
            st["service"]["provider"]["tracing"]["apiGateway"] = False
        self.rejected(None, "API Gateway tracing is off", spoil_state=spoil_state)

    def test_api_timeout(self):
        """API Gateway gives up after 29 s from its call, a cold start included: the api function's
        answer at its deadline must come before that, or the client reads API Gateway's 504. Nor
        may a create's write land later than recover's windows reach back for it
        (RECOVER_CREATE_MS, which the checker reads from recover_role.h). 26 s is refused whatever
        the header says: 4 of API Gateway's 29 are kept for a cold start."""
        with open(os.path.join(REPO, "src", "aws", "recover_role.h")) as f:
            reach_s = int(re.search(r"^#define RECOVER_CREATE_MS (\d+)$", f.read(), re.M)[1]) // 1000
        most = min(25, reach_s)
        for timeout in (29, 26, reach_s + 1):
            def spoil(r, t):
                r["ApiLambdaFunction"]["Properties"]["Timeout"] = timeout
            self.rejected(spoil, "function ApiLambdaFunction: Timeout %d; API Gateway gives up after 29 s"
                          % timeout, "(RECOVER_CREATE_MS): at most %d" % most)

    def test_api_url_output(self):
        def spoil(r, t):
            del t["Outputs"]["ApiUrl"]
            del t["Outputs"]["ServiceEndpoint"]
        self.rejected(spoil, "none gives the API URL")

    def test_config_drift(self):
        """The template stays, the configuration changes: the checker names the configuration's side."""
        def config(c):
            c["queues"][0]["delay"] = 5
            c["handlers"][0]["batch_size"] = 5
            c["subscriptions"].append({"queue": "task1", "filter_policy": {"TaskType": ["TASK2"]}})
            c["stream_consumers"][0]["filter_patterns"] = [{"eventName": ["INSERT", "MODIFY"]}]
        self.rejected(None, "DelaySeconds 0, config task1.delay is 5", "BatchSize 1, config batch_size",
                      "subscription of queue task1: no AWS::SNS::Subscription", "MODIFY", config=config)

    def test_unreadable(self):
        p = run_checker(os.path.join(self.tmp, "nowhere"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read template", p.stderr)


class NewRelic(unittest.TestCase):
    """The New Relic options: inert when empty, wired when set."""

    @classmethod
    def setUpClass(cls):
        s = Shared.get()
        cls.base, cls.tmp = s.template, s.tmp

    def package(self, name, env):
        p, out = package(os.path.join(self.tmp, name), env)
        return p, out

    def test_empty_settings_change_nothing(self):
        env = {"TASKD_NEW_RELIC_LAYER": "", "NEW_RELIC_ACCOUNT_ID": "", "NEW_RELIC_API_KEY": "",
               "OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_HEADERS": ""}
        for name, extra in (("empty", env), ("off", dict(env, TASKD_NEW_RELIC_LAYER="false"))):
            p, out = self.package(name, extra)
            self.assertEqual(p.returncode, 0, p.stdout.decode())
            self.assertEqual(normalized(read_json(os.path.join(out, TEMPLATE))), normalized(self.base), name)

    def test_settings_reach_every_function(self):
        # every OTEL_ variable the exporter reads (src/trace/otel_env.c), LOG_LEVEL and
        # TASKD_METRICS_NAMESPACE: set in the deploying shell, each reaches every function
        with open(os.path.join(REPO, "src", "trace", "otel_env.c"), encoding="utf-8") as f:
            names = sorted(set(re.findall(r'"(OTEL_[A-Z_]+)"', f.read())))
        self.assertIn("OTEL_EXPORTER_OTLP_TRACES_HEADERS", names)
        settings = {n: "value-of-" + n for n in names}
        settings.update({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.eu01.nr-data.net",
                         "OTEL_EXPORTER_OTLP_HEADERS": "api-key=0123456789abcdef",
                         "LOG_LEVEL": "DEBUG", "TASKD_METRICS_NAMESPACE": "taskd-eu"})
        p, out = self.package("settings", settings)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        t = read_json(os.path.join(out, TEMPLATE))
        fns = {k: v["Properties"] for k, v in t["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
        self.assertEqual(len(fns), 6)
        for fn, f in sorted(fns.items()):
            env = f["Environment"]["Variables"]
            for name, value in sorted(settings.items()):
                self.assertEqual(env.get(name), value, "%s of %s" % (name, fn))
        c = check(out)
        self.assertEqual(c.returncode, 0, c.stderr)

    def test_layer_switch_loads_the_plugin(self):
        # not installed in the copy: osls must say it looked for it
        p, _ = self.package("layer", {"TASKD_NEW_RELIC_LAYER": "true", "NEW_RELIC_ACCOUNT_ID": "1234567"})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("serverless-newrelic-lambda-layers", p.stdout.decode())


class ShippedConfig(unittest.TestCase):
    """deploy/taskd.json, which scripts/lambda.sh puts into the zip as taskd.json."""

    PATH = os.path.join(REPO, "deploy", "taskd.json")

    def test_is_the_defaults(self):
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        m = re.search(r"## Configuration\n.*?```json\n(.*?)```", readme, re.S)
        self.assertIsNotNone(m, "README.md has no Configuration JSON block")
        self.assertEqual(read_json(self.PATH), json.loads(m.group(1)))
        # and the sections the checker takes for those a configuration leaves out (test_config
        # holds them to taskd's)
        sections = read_json(os.path.join(REPO, "scripts", "taskd-defaults.json"))["sections"]
        self.assertEqual(sections, {k: v for k, v in read_json(self.PATH).items() if k in sections})

    def test_taskd_runs_with_it(self):
        t = harness.Taskd(config=self.PATH)
        try:
            task_id = t.create(task_type="TASK2")  # no subscriber by default: it stays CREATED
            self.assertEqual(t.task(task_id)["status"], "CREATED")
            self.assertEqual(t.stop(), 0)
        finally:
            t.close()


if __name__ == "__main__":
    unittest.main()
