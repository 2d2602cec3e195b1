"""fauxqs (SNS + SQS on one port) for the tests of the Lambda build (Python standard library only).

    from fauxqs import Fauxqs, create_pipeline

    sns_sqs = Fauxqs(); sns_sqs.start()        # node <fauxqs> on a free port of 127.0.0.1
    pipeline = create_pipeline(sns_sqs.endpoint, config)
    # {"topic": "tasks", "topic_arn": "arn:aws:sns:eu-west-1:000000000000:tasks",
    #  "queues": {"task1": {"url": ..., "arn": ...}, "task1-dlq": {...}},
    #  "subscriptions": [{"queue": "task1", "arn": ...}]}
    queue_counts(sns_sqs.endpoint, pipeline["queues"]["task1"]["url"])   # visible, in flight, delayed
    delete_pipeline(sns_sqs.endpoint, pipeline)  # the names free for the next one
    sns_sqs.stop()

``create_pipeline`` builds, from a taskd JSON configuration (README "Configuration"; what it
leaves out is taskd's default, as scripts/check-serverless.py fills it in), what serverless.yml
declares on AWS: the topic (SNS CreateTopic), every queue (SQS CreateQueue with VisibilityTimeout,
DelaySeconds, MessageRetentionPeriod, and a RedrivePolicy {deadLetterTargetArn, maxReceiveCount}
for a queue with a dead-letter queue and a max_receive_count above 0; dead-letter queues first),
and every subscription (protocol sqs, RawMessageDelivery true, FilterPolicy and
FilterPolicyScope).

SNS speaks the Query protocol (form POST, XML answers), SQS JSON 1.0; both go to the endpoint
given, never to the host a QueueUrl names. Requests are SigV4-signed for the region (fauxqs
takes a request's region from its credential scope; it checks no signature).

The executable comes from ``scripts/aws-standins.sh fauxqs-bin`` (installed by
``scripts/aws-standins.sh install`` in the cache folder), or FAUXQS_BIN.
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

from emulator import AwsError, aws_json, aws_post
from script_module import load_script
import standin  # noqa: E402
from standin import External, StandIn, environ_without  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STANDINS = os.path.join(REPO, "scripts", "aws-standins.sh")
REGION = "eu-west-1"

__all__ = ["Fauxqs", "External", "fixture_endpoint", "create_pipeline", "delete_pipeline", "config_with_defaults", "queue_counts", "sqs", "sns", "AwsError"]


# -- the configuration ----------------------------------------------------------------------------

_checker = load_script("check-serverless.py")


def config_with_defaults(config=None):
    """The pipeline of a configuration as taskd reads it: every section left out is the default one
    (a section given replaces the default whole), every item with its defaults filled in; the
    checker's view, which it holds serverless.yml to."""
    return _checker.effective_config(config or {})


# -- the two APIs --------------------------------------------------------------------------------

def sqs(endpoint, operation, payload, region=REGION, timeout=10.0):
    """One SQS JSON 1.0 call (X-Amz-Target AmazonSQS.<operation>); AwsError for an error answer."""
    return aws_json(endpoint, "AmazonSQS." + operation, payload, region, "sqs", timeout)


def _strip(tag):
    return tag.rpartition("}")[2]


def sns(endpoint, action, params, region=REGION, timeout=10.0):
    """One SNS Query call; returns the answer's <ActionResult> element (namespaces stripped from
    the tags); AwsError for an error answer."""
    form = dict(params)
    form.update(Action=action, Version="2010-03-31")
    body = urlencode(form).encode("utf-8")
    status, data = aws_post(endpoint, body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                            region, "sns", timeout)
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        raise AwsError(status, "InvalidResponse", data[:200].decode("latin-1"))
    for el in root.iter():
        el.tag = _strip(el.tag)
    if status != 200 or root.tag == "ErrorResponse":
        raise AwsError(status, root.findtext(".//Error/Code") or "UnknownError",
                       root.findtext(".//Error/Message") or "")
    result = root.find(action + "Result")
    return result if result is not None else root


def _entries(prefix, mapping):
    """Query-protocol map entries: <prefix>.entry.N.key / .value, N from 1."""
    out = {}
    for i, (k, v) in enumerate(mapping.items(), 1):
        out["%s.entry.%d.key" % (prefix, i)] = k
        out["%s.entry.%d.value" % (prefix, i)] = v
    return out


def queue_counts(endpoint, url, region=REGION):
    """(visible, in flight, delayed) messages of a queue."""
    a = sqs(endpoint, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": [
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"]}, region)["Attributes"]
    return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
            int(a["ApproximateNumberOfMessagesDelayed"]))


# -- the pipeline of a configuration ------------------------------------------------------------

def _creation_order(queues):
    """Queues with every dead-letter queue before the queues that use it."""
    by_name = {q["name"]: q for q in queues}
    done, order = set(), []

    def visit(q, path):
        if q["name"] in done:
            return
        if q["name"] in path:
            raise ValueError("dead-letter queues form a cycle at %s" % q["name"])
        dlq = q.get("dead_letter_queue")
        if dlq:
            if dlq not in by_name:
                raise ValueError("queue %s: no dead-letter queue %s" % (q["name"], dlq))
            visit(by_name[dlq], path | {q["name"]})
        done.add(q["name"])
        order.append(q)

    for q in queues:
        visit(q, set())
    return order


def create_pipeline(endpoint, config=None, region=REGION):
    """Create the topic, the queues and the subscriptions of a taskd configuration; returns their
    names, ARNs and URLs (see the module comment)."""
    cfg = config_with_defaults(config)
    topic = cfg["topic"]
    topic_arn = sns(endpoint, "CreateTopic", {"Name": topic}, region).findtext("TopicArn")
    queues = {}
    for q in _creation_order(cfg["queues"]):
        attributes = {"VisibilityTimeout": str(q["visibility_timeout"]), "DelaySeconds": str(q["delay"]),
                      "MessageRetentionPeriod": str(q["retention"])}
        if q["dead_letter_queue"] and q["max_receive_count"] > 0:
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": queues[q["dead_letter_queue"]]["arn"],
                                                      "maxReceiveCount": q["max_receive_count"]})
        url = sqs(endpoint, "CreateQueue", {"QueueName": q["name"], "Attributes": attributes}, region)["QueueUrl"]
        arn = sqs(endpoint, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
                  region)["Attributes"]["QueueArn"]
        queues[q["name"]] = {"url": url, "arn": arn}
    subscriptions = []
    for s in cfg.get("subscriptions") or []:
        attributes = {"RawMessageDelivery": "true"}
        if s.get("filter_policy") is not None:
            attributes["FilterPolicy"] = json.dumps(s["filter_policy"])
            attributes["FilterPolicyScope"] = s.get("filter_policy_scope", "MessageAttributes")
        params = {"TopicArn": topic_arn, "Protocol": "sqs", "Endpoint": queues[s["queue"]]["arn"],
                  "ReturnSubscriptionArn": "true"}
        params.update(_entries("Attributes", attributes))
        arn = sns(endpoint, "Subscribe", params, region).findtext("SubscriptionArn")
        subscriptions.append({"queue": s["queue"], "arn": arn})
    return {"topic": topic, "topic_arn": topic_arn, "queues": queues, "subscriptions": subscriptions,
            "region": region}


def delete_pipeline(endpoint, pipeline):
    """Delete what create_pipeline made: the topic with its subscriptions, and the queues with
    their messages. The same names can then be made again, empty."""
    region = pipeline["region"]
    sns(endpoint, "DeleteTopic", {"TopicArn": pipeline["topic_arn"]}, region)
    for q in pipeline["queues"].values():
        sqs(endpoint, "DeleteQueue", {"QueueUrl": q["url"]}, region)


# -- the process --------------------------------------------------------------------------------

def fauxqs_bin():
    """The fauxqs executable: FAUXQS_BIN, else where scripts/aws-standins.sh installs it."""
    explicit = os.environ.get("FAUXQS_BIN")
    if explicit:
        return explicit
    r = subprocess.run(["bash", STANDINS, "fauxqs-bin"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("aws-standins.sh fauxqs-bin failed: %s" % r.stderr.decode("utf-8", "replace"))
    return r.stdout.decode().strip()


def _healthy(endpoint):
    u = urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
    try:
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
        return r.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Fauxqs(StandIn):
    """One fauxqs process on 127.0.0.1 (SNS and SQS in memory)."""

    name = "fauxqs"
    ready_what = "an answer to /health"
    fixture = "fauxqs"
    fixture_variable = "FAUXQS_FIXTURE"

    def __init__(self, region=REGION, port=None):
        super().__init__(port)
        self.region = region

    def command(self, port):
        node = shutil.which("node")
        if not node:
            raise RuntimeError("node not found: fauxqs needs Node.js (scripts/install-deps.sh --test installs it)")
        script = fauxqs_bin()
        if not os.path.isfile(script):
            raise RuntimeError("fauxqs not found at %s: run scripts/aws-standins.sh install" % script)
        env = environ_without("AWS_", "FAUXQS_")
        env.update(FAUXQS_PORT=str(port), FAUXQS_HOST="127.0.0.1", FAUXQS_DEFAULT_REGION=self.region)
        return [node, script], env, None

    def ready(self):
        return _healthy(self.endpoint)


# -- one for a whole CTest run ------------------------------------------------------------------
#
# CTest's fixture fauxqs (CMakeLists.txt): fauxqs_start runs `fauxqs.py start DIR`, fauxqs_stop
# `fauxqs.py stop DIR`; the tests that require it have FAUXQS_FIXTURE=DIR (standin.py tells how
# they find it, and how it ends with CTest). Each test makes a topic and queues of its own names.

def fixture_endpoint():
    """The endpoint of the CTest run's fauxqs, or None outside the fixture."""
    return standin.fixture_endpoint(Fauxqs)


if __name__ == "__main__":
    sys.exit(standin.fixture_main(Fauxqs, __file__, sys.argv[1:]))
