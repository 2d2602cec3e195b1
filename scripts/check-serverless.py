#!/usr/bin/env python3
"""Check the CloudFormation template that `osls package` made from serverless.yml against the
configuration taskd reads (deploy/taskd.json) and the table definition (deploy/table.json).

Usage: scripts/check-serverless.py [--config FILE] [--table FILE] [SERVERLESS_DIR]

SERVERLESS_DIR (default .serverless beside serverless.yml) holds
cloudformation-template-update-stack.json and serverless-state.json, as written by
`npx osls package --stage dev --region eu-west-1`. What the
configuration leaves out is taskd's default, read from taskd-defaults.json beside this script.

What must hold:
  table          one AWS::DynamoDB::Table equal to deploy/table.json: keys, attribute
                 definitions, billing mode, GSIs with their projections, stream view type,
                 TTL on the same attribute (`ttl`); DeletionPolicy and UpdateReplacePolicy
                 Retain (the job store outlives the stack) and point-in-time recovery on
  topic          one AWS::SNS::Topic tagged taskd:topic = the configured topic
  queues         per configured queue one AWS::SQS::Queue tagged taskd:queue = its name, with
                 the configured VisibilityTimeout (for a queue a worker reads, the larger of it
                 and 6 x the worker's Timeout, as AWS advises), DelaySeconds,
                 MessageRetentionPeriod and,
                 when it has a dead-letter queue, RedrivePolicy (deadLetterTargetArn = that
                 queue, maxReceiveCount) and a dead-letter queue that keeps messages longer
                 than it does (SQS counts a dead letter's age from its first send); no other
                 tagged queue
  subscriptions  per configured subscription one AWS::SNS::Subscription from the topic to its
                 queue, RawMessageDelivery true, the same FilterPolicy and FilterPolicyScope;
                 a queue policy letting the topic send to each subscribed queue (and none
                 letting anyone send unconditionally)
  stream         per stream consumer one event source mapping on the table's stream to a
                 `publish` function: FilterCriteria = the consumer's patterns each with the
                 task-item condition added, BatchSize, MaximumRetryAttempts -1 (a record
                 whose message SNS did not take is retried until it is published; the
                 function skips by itself a record it cannot read), MaximumRecordAgeInSeconds
                 under 24 h (the mapping drops such a record before the stream trims it, and
                 reports it), an SQS queue of the template as DestinationConfig OnFailure
                 (where the records dropped unpublished are reported), BisectBatchOnFunctionError, FunctionResponseTypes
                 ReportBatchItemFailures, StartingPosition TRIM_HORIZON (LATEST would skip
                 the tasks written before the mapping was made)
  workers        per handler binding and per dead-letter queue one `worker` function
                 (QUEUE_NAME = the queue) with one SQS mapping from that queue: the binding's
                 BatchSize (and concurrency as MaximumConcurrency, which Lambda takes from 2,
                 so a concurrency of 1 is refused, with no ReservedConcurrentExecutions below
                 it; over 10, a MaximumBatchingWindowInSeconds of at least 1, as Lambda requires),
                 ReportBatchItemFailures;
                 Timeout at least the binding's batch_size x its timeout + WORKER_MARGIN s
  functions      Runtime provided.al2023, Handler api|publish|worker|sweep|recover, x86_64, TracingConfig
                 Active, a log group with a retention, a role of its own whose statements
                 grant only what that handler needs (no wildcard action, no `*` resource
                 except for xray actions; logs actions on the function's own log group,
                 and writing to it granted)
  api            ANY / and ANY /{proxy+} as AWS_PROXY to the api function, API Gateway
                 tracing on (serverless-state.json: osls applies it after the deploy), an
                 Output with the API URL; the api function's Timeout at most 25 s, so that
                 its answer at the deadline (503 when DynamoDB does not answer) comes before
                 API Gateway's own 29 s, which a cold start's init counts toward, and no
                 later than recover's windows reach back for a create's write
                 (RECOVER_CREATE_MS of src/aws/recover_role.h)
  sweep          one `sweep` function (TABLE_NAME = the table) that an enabled AWS::Events::Rule
                 runs at a rate of at most 5 minutes, with the permission to invoke it, and a
                 Timeout of at least 15 s (it starts no step in its last 5); its
                 role may Query the claims_by_expiry index alone (the api role the others)
  recover        one `recover` function (TABLE_NAME, TOPIC_ARN) whose one SQS mapping reads the
                 queue the stream mapping reports dropped records to, with BatchSize 1 and
                 ReportBatchItemFailures; that queue's VisibilityTimeout at least 6 x its Timeout;
                 its role may Query the type_status_by_id index alone and Publish to the topic

Exit status: 0 all holds; 1 mismatches, one line each on stderr naming the resource and the
configuration entry; 2 unreadable input (or a template shape the check cannot read).
"""

import argparse
import copy
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TEMPLATE = "cloudformation-template-update-stack.json"
STATE = "serverless-state.json"

RUNTIME = "provided.al2023"
HANDLERS = ("api", "publish", "worker", "sweep", "recover")
# The index recover lists a task type's CREATED tasks by
RECOVER_INDEX = "type_status_by_id"
# The index of client claims with a lease: the sweep's alone (the API lists by the others)
CLAIMS_INDEX = "claims_by_expiry"
# A lease ends at most this long after it ran out (and the sweep's own run)
SWEEP_RATE_MAX_S = 300
# The sweep takes no step in an invocation's last 5 s (sweep_role.c): room for a few steps more
SWEEP_TIMEOUT_MIN_S = 15
# API Gateway's REST integration gives up after 29 s, counted from its call, so a cold start's
# init counts too; the api function answers 503 at its deadline (less at most 0.5 s, bootstrap.c),
# which reaches the client only if that deadline comes well before API Gateway's
API_GATEWAY_TIMEOUT_S = 29
API_COLD_START_S = 4  # of those 29 s, kept for a cold start's init


def recover_reach_s():
    """How far back recover's windows reach for a create's write (RECOVER_CREATE_MS of
    recover_role.h), read from the header so that the two cannot part."""
    with open(os.path.join(ROOT, "src", "aws", "recover_role.h")) as h:
        m = re.search(r"^#define RECOVER_CREATE_MS (\d+)$", h.read(), re.M)
    if not m:
        sys.exit("check-serverless: src/aws/recover_role.h has no '#define RECOVER_CREATE_MS <ms>'")
    return int(m[1]) // 1000


# A create's write may land until the api function's deadline, so its Timeout is held both
# before API Gateway's (a cold start counted) and within recover's reach: 25 s today
RECOVER_REACH_S = recover_reach_s()
API_TIMEOUT_MAX_S = min(API_GATEWAY_TIMEOUT_S - API_COLD_START_S, RECOVER_REACH_S)
WORKER_MARGIN = 5  # s: a worker's Timeout over its binding's timeout (the runner keeps 1 s)
VISIBILITY_PER_TIMEOUT = 6  # a worker's queue's VisibilityTimeout over the worker's Timeout

# Only task items pass the stream filter: the idempotency-key items ("idem#...") and the meta
# items ("meta#secret") written into the same table have no task_type.
TASK_ITEM_PATTERN = {"dynamodb": {"NewImage": {"task_type": {"S": [{"exists": True}]}}}}

# taskd's defaults (README "Configuration"): a section given replaces the default section whole;
# an item's missing keys take the item defaults, and a dead-letter queue's retention
# dead_letter_queue_retention. test_config holds them to src/core/config.c.
DEFAULTS = os.path.join(HERE, "taskd-defaults.json")

# SQS's own defaults, for a property the template leaves out
SQS_DEFAULTS = {"VisibilityTimeout": 30, "DelaySeconds": 0, "MessageRetentionPeriod": 345600}
SQS_RETENTION_MAX = 1209600  # 14 days
# Lambda's least ScalingConfig.MaximumConcurrency of an SQS mapping
MAXIMUM_CONCURRENCY_MIN = 2

LOGS_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords",
                "xray:GetSamplingRules", "xray:GetSamplingTargets"}
BASE_REQUIRED = {"logs:CreateLogStream", "logs:PutLogEvents",
                 "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
SQS_POLL = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


class Input(Exception):
    pass


# The one delete the API does: an idempotency key item (id "idem#<key>", or "idem~<hex>" for a
# key that is not UTF-8) whose task is gone.
KEY_ITEMS_ONLY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["idem#*", "idem~*"]}}


def key_items_only(statement):
    """Whether a statement's Condition limits it to the idempotency key items."""
    cond = statement.get("Condition") or {}
    keys = as_list((cond.get("ForAllValues:StringLike") or {}).get("dynamodb:LeadingKeys"))
    return bool(keys) and all(isinstance(k, str) and k.startswith(("idem#", "idem~")) for k in keys)


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise Input("cannot read %s %s: %s" % (what, path, e.strerror))
    except ValueError as e:
        raise Input("%s %s is not JSON: %s" % (what, path, e))


def canon(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def as_json(v):
    """A property CloudFormation takes either as an object or as a JSON string."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def truthy(v):
    return v is True or (isinstance(v, str) and v.lower() == "true")


def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


# ---- the configuration ------------------------------------------------------------------------

def effective_config(raw):
    """taskd's configuration with its defaults applied (only what the AWS side uses)."""
    d = load_json(DEFAULTS, "taskd's defaults")
    c = {}
    for section, default in d["sections"].items():
        c[section] = copy.deepcopy(raw[section] if section in raw else default)
    dead_letter_queues = {q.get("dead_letter_queue") for q in c["queues"]}
    c["queues"] = [{**d["queue"], **({"retention": d["dead_letter_queue_retention"]}
                                     if q.get("name") in dead_letter_queues else {}), **q}
                   for q in c["queues"]]
    c["subscriptions"] = [dict(d["subscription"], **s) for s in c["subscriptions"]]
    c["stream_consumers"] = [dict(d["stream_consumer"], **s) for s in c["stream_consumers"]]
    c["handlers"] = [dict(d["handler"], **h) for h in c["handlers"]]
    return c


def merge_pattern(pattern, extra):
    """pattern AND extra: extra's keys added where pattern has none of its own."""
    out = copy.deepcopy(pattern)
    for k, v in extra.items():
        if k not in out:
            out[k] = copy.deepcopy(v)
        elif isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = merge_pattern(out[k], v)
        # a leaf the configuration sets itself stays as configured
    return out


def expected_patterns(consumer):
    pats = consumer.get("filter_patterns") or []
    if not pats:
        return [TASK_ITEM_PATTERN]
    return [merge_pattern(p, TASK_ITEM_PATTERN) for p in pats]


# ---- template helpers -------------------------------------------------------------------------

def getatt(v):
    """(logical id, attribute) of a Fn::GetAtt, else None."""
    if isinstance(v, dict) and len(v) == 1 and "Fn::GetAtt" in v:
        a = v["Fn::GetAtt"]
        if isinstance(a, str) and "." in a:
            return tuple(a.split(".", 1))
        if isinstance(a, list) and len(a) == 2:
            return a[0], a[1]
    return None


def ref(v):
    if isinstance(v, dict) and len(v) == 1 and isinstance(v.get("Ref"), str):
        return v["Ref"]
    return None


def resource_token(v):
    """A policy resource as text: "X.Arn" for a GetAtt, "!X" for a Ref, a Sub's string with
    ${X.Arn} written X.Arn, literal strings as they are; None when it cannot be read."""
    if isinstance(v, str):
        return v
    g = getatt(v)
    if g:
        return "%s.%s" % g
    r = ref(v)
    if r:
        return "!" + r
    if isinstance(v, dict) and len(v) == 1 and "Fn::Sub" in v:
        s = v["Fn::Sub"]
        if isinstance(s, list):
            s = s[0] if s and isinstance(s[0], str) else None
        if isinstance(s, str):
            return re.sub(r"\$\{([A-Za-z0-9]+)(\.[A-Za-z0-9]+)?\}",
                          lambda m: m.group(1) + m.group(2) if m.group(2) else "!" + m.group(1), s)
    if isinstance(v, dict) and len(v) == 1 and "Fn::Join" in v:
        j = v["Fn::Join"]
        if isinstance(j, list) and len(j) == 2 and isinstance(j[1], list):
            parts = [resource_token(p) for p in j[1]]
            if all(p is not None for p in parts):
                return j[0].join(parts)
    return None


def services(statement):
    """The service principals a policy statement names."""
    pr = statement.get("Principal") if isinstance(statement, dict) else None
    return as_list(pr.get("Service")) if isinstance(pr, dict) else []


def tags(props):
    return {t.get("Key"): t.get("Value") for t in props.get("Tags") or [] if isinstance(t, dict)}


class Checker:
    def __init__(self, template, state, config, table, config_name, table_name):
        self.t = template
        self.state = state
        self.cfg = config
        self.table_spec = table
        self.config_name = config_name  # the files read, as the messages name them
        self.table_name = table_name
        self.res = template.get("Resources") or {}
        self.problems = []
        self.summary = []

    def fail(self, msg, *args):
        self.problems.append(msg % args if args else msg)

    def of_type(self, typ):
        return {k: v for k, v in self.res.items() if isinstance(v, dict) and v.get("Type") == typ}

    def props(self, logical):
        return (self.res.get(logical) or {}).get("Properties") or {}

    # ---- table --------------------------------------------------------------------------------

    def check_table(self):
        tables = self.of_type("AWS::DynamoDB::Table")
        if len(tables) != 1:
            self.fail("table: %d AWS::DynamoDB::Table resources (%s), expected 1",
                      len(tables), ", ".join(sorted(tables)) or "none")
            self.table = None
            return
        self.table = next(iter(tables))
        p = self.props(self.table)
        spec = self.table_spec
        name, spec_name = "table %s" % self.table, self.table_name
        if p.get("KeySchema") != spec.get("KeySchema"):
            self.fail("%s: KeySchema %s, %s has %s", name,
                      canon(p.get("KeySchema")), spec_name, canon(spec.get("KeySchema")))
        want_attrs = {(a["AttributeName"], a["AttributeType"]) for a in spec.get("AttributeDefinitions", [])}
        have_attrs = {(a.get("AttributeName"), a.get("AttributeType"))
                      for a in p.get("AttributeDefinitions") or []}
        if want_attrs != have_attrs:
            self.fail("%s: AttributeDefinitions %s, %s has %s", name,
                      sorted(have_attrs), spec_name, sorted(want_attrs))
        if p.get("BillingMode", "PROVISIONED") != spec.get("BillingMode", "PROVISIONED"):
            self.fail("%s: BillingMode %s, %s has %s", name,
                      p.get("BillingMode"), spec_name, spec.get("BillingMode"))
        want_gsi = {g["IndexName"]: g for g in spec.get("GlobalSecondaryIndexes", [])}
        have_gsi = {g.get("IndexName"): g for g in p.get("GlobalSecondaryIndexes") or []}
        for n in sorted(set(want_gsi) - set(have_gsi)):
            self.fail("%s: GSI %s of %s is missing", name, n, spec_name)
        for n in sorted(set(have_gsi) - set(want_gsi)):
            self.fail("%s: GSI %s is not in %s", name, n, spec_name)
        for n in sorted(set(want_gsi) & set(have_gsi)):
            w, h = want_gsi[n], have_gsi[n]
            if h.get("KeySchema") != w.get("KeySchema"):
                self.fail("%s: GSI %s KeySchema %s, %s has %s", name, n,
                          canon(h.get("KeySchema")), spec_name, canon(w.get("KeySchema")))
            wp, hp = w.get("Projection") or {}, h.get("Projection") or {}
            if hp.get("ProjectionType") != wp.get("ProjectionType"):
                self.fail("%s: GSI %s ProjectionType %s, %s has %s", name, n,
                          hp.get("ProjectionType"), spec_name, wp.get("ProjectionType"))
            if sorted(hp.get("NonKeyAttributes") or []) != sorted(wp.get("NonKeyAttributes") or []):
                self.fail("%s: GSI %s NonKeyAttributes %s, %s has %s", name, n,
                          sorted(hp.get("NonKeyAttributes") or []), spec_name,
                          sorted(wp.get("NonKeyAttributes") or []))
        ws, hs = spec.get("StreamSpecification") or {}, p.get("StreamSpecification") or {}
        if ws.get("StreamEnabled", bool(ws)) and hs.get("StreamViewType") != ws.get("StreamViewType"):
            self.fail("%s: StreamSpecification.StreamViewType %s, %s has %s", name,
                      hs.get("StreamViewType"), spec_name, ws.get("StreamViewType"))
        wt, ht = spec.get("TimeToLiveSpecification") or {}, p.get("TimeToLiveSpecification") or {}
        if (ht.get("AttributeName") != wt.get("AttributeName")
                or truthy(ht.get("Enabled")) != truthy(wt.get("Enabled"))):
            self.fail("%s: TimeToLiveSpecification %s, %s has %s", name, canon(ht), spec_name, canon(wt))
        if wt.get("AttributeName") != "ttl":
            self.fail("%s: TTL attribute is %s, taskd writes ttl", spec_name, wt.get("AttributeName"))
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            have = self.res[self.table].get(policy)
            if have != "Retain":
                self.fail("%s: %s %s, expected Retain: the tasks are the job store's, and a stack removed "
                          "(or an update that replaces the table) would delete them all", name, policy,
                          have or "absent (Delete)")
        pitr = p.get("PointInTimeRecoverySpecification") or {}
        if not truthy(pitr.get("PointInTimeRecoveryEnabled")):
            self.fail("%s: PointInTimeRecoverySpecification %s: point-in-time recovery is off, so a bad "
                      "write or a deleted table could not be restored", name, canon(pitr) if pitr else "absent")
        self.summary.append("table %s (%d GSIs)" % (self.table, len(have_gsi)))

    # ---- topic, queues, subscriptions ---------------------------------------------------------

    def check_topic(self):
        topics = self.of_type("AWS::SNS::Topic")
        want = self.cfg["topic"]
        named = [k for k, v in topics.items() if tags(v.get("Properties") or {}).get("taskd:topic") == want]
        self.topic = named[0] if len(named) == 1 else None
        if len(named) != 1:
            self.fail("topic: %d AWS::SNS::Topic tagged taskd:topic=%s (config topic), expected 1",
                      len(named), want)
        for k, v in topics.items():
            t = tags(v.get("Properties") or {}).get("taskd:topic")
            if t is not None and t != want:
                self.fail("topic %s: tagged taskd:topic=%s, the configured topic is %s", k, t, want)

    def check_queues(self):
        self.queue_of = {}  # configured name -> logical id
        by_name = {}
        for k, v in self.of_type("AWS::SQS::Queue").items():
            n = tags(v.get("Properties") or {}).get("taskd:queue")
            if n is not None:
                by_name.setdefault(n, []).append(k)
        self.name_of = {}
        for k_list in by_name.values():
            for k in k_list:
                self.name_of[k] = None
        configured = {q["name"]: q for q in self.cfg["queues"]}
        for n, ks in sorted(by_name.items()):
            if n not in configured:
                self.fail("queue %s: tagged taskd:queue=%s, which %s does not configure",
                          ", ".join(ks), n, self.config_name)
            elif len(ks) > 1:
                self.fail("queue %s: %d AWS::SQS::Queue resources tagged taskd:queue=%s (%s)", n, len(ks), n,
                          ", ".join(ks))
        for q in self.cfg["queues"]:
            ks = by_name.get(q["name"], [])
            if not ks:
                self.fail("queue %s: no AWS::SQS::Queue tagged taskd:queue=%s", q["name"], q["name"])
                continue
            self.queue_of[q["name"]] = ks[0]
            self.name_of[ks[0]] = q["name"]
        for q in self.cfg["queues"]:
            logical = self.queue_of.get(q["name"])
            if not logical:
                continue
            p = self.props(logical)
            label = "queue %s (%s)" % (logical, q["name"])
            worked = any(h["queue"] == q["name"] for h in self.cfg["handlers"]) or any(
                x["dead_letter_queue"] == q["name"] for x in self.cfg["queues"])
            for prop, key in (("VisibilityTimeout", "visibility_timeout"), ("DelaySeconds", "delay"),
                              ("MessageRetentionPeriod", "retention")):
                if prop == "VisibilityTimeout" and worked:
                    continue  # with its worker's Timeout (check_worker_timeout)
                have = as_int(p.get(prop, SQS_DEFAULTS[prop]))
                if have != q[key]:
                    self.fail("%s: %s %s, config %s.%s is %s", label, prop, have, q["name"], key, q[key])
            rp = as_json(p.get("RedrivePolicy"))
            dlq = q.get("dead_letter_queue") or ""
            if dlq and q["max_receive_count"] > 0:
                if not isinstance(rp, dict):
                    self.fail("%s: no RedrivePolicy, config sends it to dead-letter queue %s after %d receives",
                              label, dlq, q["max_receive_count"])
                    continue
                target = getatt(rp.get("deadLetterTargetArn"))
                want = self.queue_of.get(dlq)
                if not target or target[1] != "Arn" or target[0] != want:
                    self.fail("%s: RedrivePolicy.deadLetterTargetArn %s, config dead_letter_queue is %s (%s)",
                              label, canon(rp.get("deadLetterTargetArn")), dlq, want or "no resource")
                if as_int(rp.get("maxReceiveCount")) != q["max_receive_count"]:
                    self.fail("%s: RedrivePolicy.maxReceiveCount %s, config %s.max_receive_count is %d",
                              label, rp.get("maxReceiveCount"), q["name"], q["max_receive_count"])
                if want:
                    self.check_dead_letter_retention(logical, q["name"], want, dlq)
            elif rp is not None:
                self.fail("%s: has a RedrivePolicy, config gives it no dead-letter queue", label)
        self.summary.append("%d queues" % len(self.queue_of))

    def check_dead_letter_retention(self, logical, name, dlq_logical, dlq):
        """A dead letter keeps its first send's age (SQS, standard queues): a dead-letter queue that
        keeps messages no longer than its source may drop one before its worker fails its task."""
        def retention(k):
            return as_int(self.props(k).get("MessageRetentionPeriod", SQS_DEFAULTS["MessageRetentionPeriod"]))
        source, dead = retention(logical), retention(dlq_logical)
        if isinstance(source, int) and isinstance(dead, int) and dead <= source:
            self.fail("queue %s (%s): MessageRetentionPeriod %d, not longer than %s's %d, whose dead-letter "
                      "queue it is: SQS counts a dead letter's age from its first send, so it could expire "
                      "before the dead-letter worker fails its task (AWS advises a longer retention, at most "
                      "%d; %s: %s.retention)", dlq_logical, dlq, dead, name, source,
                      SQS_RETENTION_MAX, self.config_name, dlq)

    def check_subscriptions(self):
        subs = self.of_type("AWS::SNS::Subscription")
        seen = []  # (logical, queue name, policy, scope)
        for k, v in sorted(subs.items()):
            p = v.get("Properties") or {}
            label = "subscription %s" % k
            if self.topic and ref(p.get("TopicArn")) != self.topic:
                self.fail("%s: TopicArn %s, expected Ref %s", label, canon(p.get("TopicArn")), self.topic)
            if p.get("Protocol") != "sqs":
                self.fail("%s: Protocol %s, expected sqs", label, p.get("Protocol"))
            g = getatt(p.get("Endpoint"))
            qname = self.name_of.get(g[0]) if g and g[1] == "Arn" else None
            if not qname:
                self.fail("%s: Endpoint %s is no configured queue", label, canon(p.get("Endpoint")))
                continue
            if not truthy(p.get("RawMessageDelivery")):
                self.fail("%s (queue %s): RawMessageDelivery %s, expected true", label, qname,
                          p.get("RawMessageDelivery"))
            policy = as_json(p.get("FilterPolicy"))
            scope = p.get("FilterPolicyScope") or "MessageAttributes"
            seen.append((k, qname, policy, scope))
        unmatched = list(seen)
        for s in self.cfg["subscriptions"]:
            cands = [x for x in unmatched if x[1] == s["queue"]]
            exact = [x for x in cands
                     if canon(x[2]) == canon(s["filter_policy"]) and x[3] == s["filter_policy_scope"]]
            if exact:
                unmatched.remove(exact[0])
                continue
            if not cands:
                self.fail("subscription of queue %s: no AWS::SNS::Subscription to its queue", s["queue"])
                continue
            k, qname, policy, scope = cands[0]
            unmatched.remove(cands[0])
            if canon(policy) != canon(s["filter_policy"]):
                self.fail("subscription %s (queue %s): FilterPolicy %s, config filter_policy is %s", k, qname,
                          canon(policy) if policy is not None else "absent",
                          canon(s["filter_policy"]) if s["filter_policy"] is not None else "absent")
            if scope != s["filter_policy_scope"]:
                self.fail("subscription %s (queue %s): FilterPolicyScope %s, config filter_policy_scope is %s",
                          k, qname, scope, s["filter_policy_scope"])
        for k, qname, _, _ in unmatched:
            self.fail("subscription %s (queue %s): not in %s's subscriptions", k, qname, self.config_name)
        # the topic may send to each subscribed queue, and no one may send without a condition
        policies = self.of_type("AWS::SQS::QueuePolicy")
        for pk, pv in sorted(policies.items()):
            for st in as_list((((pv.get("Properties") or {}).get("PolicyDocument")) or {}).get("Statement")):
                pr = st.get("Principal")
                anyone = pr == "*" or (isinstance(pr, dict) and "*" in as_list(pr.get("AWS")))
                if st.get("Effect") == "Allow" and anyone and not st.get("Condition"):
                    self.fail("queue policy %s: allows %s to anyone, with no condition", pk,
                              canon(st.get("Action")))
        for qname in sorted({s["queue"] for s in self.cfg["subscriptions"]}):
            logical = self.queue_of.get(qname)
            if not logical or not self.topic:
                continue
            ok = False
            for pk, pv in policies.items():
                pp = pv.get("Properties") or {}
                if logical not in [ref(x) for x in as_list(pp.get("Queues"))]:
                    continue
                for st in as_list((pp.get("PolicyDocument") or {}).get("Statement")):
                    cond = canon(st.get("Condition"))
                    if (st.get("Effect") == "Allow" and "sns.amazonaws.com" in services(st)
                            and "sqs:SendMessage" in as_list(st.get("Action"))
                            and '{"Ref":"%s"}' % self.topic in cond):
                        ok = True
            if not ok:
                self.fail("queue %s (%s): no AWS::SQS::QueuePolicy letting sns.amazonaws.com SendMessage "
                          "with aws:SourceArn = the topic %s", logical, qname, self.topic)
        self.summary.append("%d subscriptions" % len(seen))

    # ---- functions, roles ---------------------------------------------------------------------

    def check_functions(self):
        fns = self.of_type("AWS::Lambda::Function")
        self.functions = fns
        self.kind = {}
        roles_used = {}
        self.log_group_of = {}  # function -> logical id of its log group
        log_groups = {(v.get("Properties") or {}).get("LogGroupName"): k
                      for k, v in self.of_type("AWS::Logs::LogGroup").items()}
        for k, v in sorted(fns.items()):
            p = v.get("Properties") or {}
            label = "function %s" % k
            if p.get("Runtime") != RUNTIME:
                self.fail("%s: Runtime %s, expected %s", label, p.get("Runtime"), RUNTIME)
            if p.get("Handler") not in HANDLERS:
                self.fail("%s: Handler %s names no role of bootstrap (%s)", label, p.get("Handler"),
                          ", ".join(HANDLERS))
            self.kind[k] = p.get("Handler")
            if p.get("Architectures", ["x86_64"]) != ["x86_64"]:
                self.fail("%s: Architectures %s, the zip is x86_64", label, p.get("Architectures"))
            if (p.get("TracingConfig") or {}).get("Mode") != "Active":
                self.fail("%s: TracingConfig %s, expected Mode Active", label, canon(p.get("TracingConfig")))
            lg = log_groups.get("/aws/lambda/%s" % p.get("FunctionName"))
            if not lg:
                self.fail("%s: no log group /aws/lambda/%s", label, p.get("FunctionName"))
            elif not self.props(lg).get("RetentionInDays"):
                self.fail("%s: log group %s keeps logs forever (no RetentionInDays)", label, lg)
            if lg:
                self.log_group_of[k] = lg
            g = getatt(p.get("Role"))
            if not g or g[1] != "Arn" or (self.res.get(g[0]) or {}).get("Type") != "AWS::IAM::Role":
                self.fail("%s: Role %s is not an AWS::IAM::Role of this template", label, canon(p.get("Role")))
                continue
            roles_used.setdefault(g[0], []).append(k)
        for role, users in sorted(roles_used.items()):
            if len(users) > 1:
                self.fail("role %s: shared by %s; each function needs its own", role, ", ".join(users))
        self.role_of = {k: getatt(v["Properties"]["Role"])[0] for k, v in fns.items()
                        if getatt((v.get("Properties") or {}).get("Role"))}
        self.summary.append("%d functions" % len(fns))

    def env(self, fn):
        return ((self.props(fn).get("Environment") or {}).get("Variables")) or {}

    def check_roles(self):
        for fn, role in sorted(self.role_of.items()):
            kind = self.kind.get(fn)
            if kind not in HANDLERS:
                continue
            self.check_role(fn, role, kind)

    def allowed(self, fn, kind):
        """{action: set of resource tokens} the role of fn may grant, and the required ones."""
        t = self.table
        table_arn = "%s.Arn" % t
        allow, need = {}, {}
        if kind == "api":
            for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                      "dynamodb:DeleteItem"):  # DeleteItem: key items only (KEY_ITEMS_ONLY)
                allow[a] = need[a] = {table_arn}
            idx = {"%s/index/%s" % (table_arn, g["IndexName"])
                   for g in self.table_spec.get("GlobalSecondaryIndexes", [])
                   if g["IndexName"] != CLAIMS_INDEX}
            allow["dynamodb:Query"] = idx | {table_arn}
            need["dynamodb:Query"] = idx
        elif kind == "publish":
            stream = "%s.StreamArn" % t
            for a in STREAM_READ | {"dynamodb:ListStreams"}:
                allow[a] = {stream}
            for a in STREAM_READ:
                need[a] = {stream}
            allow["sns:Publish"] = need["sns:Publish"] = {"!%s" % self.topic}
            # a task whose message SNS refuses is failed (conditional UpdateItem, facts GetItem)
            for a in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
                allow[a] = need[a] = {table_arn}
            failures = {"%s.Arn" % q for (_, p, src, f) in self.mappings()
                        if f == fn and src and src[1] == "StreamArn" for q in [self.failure_queue(p)] if q}
            if failures:
                allow["sqs:SendMessage"] = need["sqs:SendMessage"] = failures
        elif kind == "sweep":
            for a in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
                allow[a] = need[a] = {table_arn}
            allow["dynamodb:Query"] = need["dynamodb:Query"] = {"%s/index/%s" % (table_arn, CLAIMS_INDEX)}
        elif kind == "recover":
            # each task read whole (GetItem); one whose message SNS refuses is failed (UpdateItem)
            for a in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
                allow[a] = need[a] = {table_arn}
            allow["dynamodb:Query"] = need["dynamodb:Query"] = {"%s/index/%s" % (table_arn, RECOVER_INDEX)}
            allow["sns:Publish"] = need["sns:Publish"] = {"!%s" % self.topic}
            failures = {"%s.Arn" % q for (_, p, src, f) in self.mappings()
                        if f == fn and src and src[1] == "Arn" for q in [src[0]]}
            for a in SQS_POLL:
                allow[a] = need[a] = failures
        elif kind == "worker":
            for a in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
                allow[a] = need[a] = {table_arn}
            q = self.queue_of.get(self.env(fn).get("QUEUE_NAME"))
            if q:
                for a in SQS_POLL | {"sqs:ChangeMessageVisibility"}:
                    allow[a] = {"%s.Arn" % q}
                for a in SQS_POLL:
                    need[a] = {"%s.Arn" % q}
        return allow, need

    def check_role(self, fn, role, kind):
        p = self.props(role)
        label = "role %s (function %s, %s)" % (role, fn, kind)
        principals = []
        for st in as_list((p.get("AssumeRolePolicyDocument") or {}).get("Statement")):
            principals += services(st)
        if "lambda.amazonaws.com" not in principals:
            self.fail("%s: AssumeRolePolicyDocument does not trust lambda.amazonaws.com", label)
        if p.get("ManagedPolicyArns"):
            self.fail("%s: ManagedPolicyArns %s cannot be checked for least privilege; use inline statements",
                      label, canon(p.get("ManagedPolicyArns")))
        allow, need = self.allowed(fn, kind)
        # logs: the function's own log group (its Arn ends in :*, which takes in its streams)
        own_logs = "%s.Arn" % self.log_group_of[fn] if fn in self.log_group_of else None
        granted = {}
        for pol in as_list(p.get("Policies")):
            for st in as_list((pol.get("PolicyDocument") or {}).get("Statement")):
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st or "NotResource" in st:
                    self.fail("%s: a statement with NotAction/NotResource grants too much", label)
                    continue
                actions = [a for a in as_list(st.get("Action")) if isinstance(a, str)]
                resources = [resource_token(r) for r in as_list(st.get("Resource"))]
                for a in actions:
                    if "*" in a:
                        self.fail("%s: wildcard action %s", label, a)
                        continue
                    if a == "dynamodb:DeleteItem" and not key_items_only(st):
                        self.fail("%s: grants dynamodb:DeleteItem beyond the idempotency key items "
                                  "(needs Condition %s)", label, canon(KEY_ITEMS_ONLY))
                    only_base = a in LOGS_ACTIONS or a in XRAY_ACTIONS
                    for r in resources:
                        if r is None:
                            self.fail("%s: %s on a resource this check cannot read", label, a)
                            continue
                        granted.setdefault(a, set()).add(r)
                        if a in LOGS_ACTIONS and own_logs and r != own_logs:
                            self.fail("%s: %s on %s, not the function's own log group %s", label, a, r, own_logs)
                        if only_base:
                            continue
                        if "*" in r:
                            self.fail("%s: %s on resource %s: `*` only for logs and xray actions", label, a, r)
                        elif a not in allow:
                            self.fail("%s: grants %s, which a %s function does not need", label, a, kind)
                        elif r not in allow[a]:
                            self.fail("%s: grants %s on %s; allowed: %s", label, a, r,
                                      ", ".join(sorted(allow[a])))
        for a in sorted(BASE_REQUIRED - set(granted)):
            self.fail("%s: lacks %s (logs and X-Ray tracing need it)", label, a)
        for a in sorted(BASE_REQUIRED & LOGS_ACTIONS & set(granted)):
            if own_logs and own_logs not in granted[a]:
                self.fail("%s: lacks %s on %s: the function could not write its logs", label, a, own_logs)
        for a, rs in sorted(need.items()):
            for r in sorted(rs - granted.get(a, set())):
                self.fail("%s: lacks %s on %s", label, a, r)

    # ---- event sources ------------------------------------------------------------------------

    def mappings(self):
        out = []
        for k, v in sorted(self.of_type("AWS::Lambda::EventSourceMapping").items()):
            p = v.get("Properties") or {}
            src = getatt(p.get("EventSourceArn"))
            fn = getatt(p.get("FunctionName"))
            fn = fn[0] if fn else ref(p.get("FunctionName"))
            out.append((k, p, src, fn))
        return out

    def check_stream(self):
        consumers = [c for c in self.cfg["stream_consumers"]]
        stream_maps = [m for m in self.mappings() if m[2] and m[2][1] == "StreamArn"]
        for c in consumers:
            if c["action"] != "publish":
                self.fail("stream consumer %s: action %s has no AWS counterpart (only publish)",
                          c.get("name"), c["action"])
        consumers = [c for c in consumers if c["action"] == "publish"]
        unmatched = list(stream_maps)
        for c in consumers:
            best = None
            for m in unmatched:
                probs = self.stream_problems(c, m)
                if best is None or len(probs) < len(best[1]):
                    best = (m, probs)
            if best is None:
                self.fail("stream consumer %s: no event source mapping on the table's stream", c.get("name"))
                continue
            unmatched.remove(best[0])
            self.problems.extend(best[1])
        for m in unmatched:
            self.fail("event source mapping %s: on the table's stream but no stream consumer in %s",
                      m[0], self.config_name)
        self.summary.append("%d stream mappings" % len(stream_maps))

    def failure_queue(self, props):
        """The logical id of the SQS queue a stream mapping reports dropped records to, or None."""
        dest = getatt(((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
        if dest and dest[1] == "Arn" and (self.res.get(dest[0]) or {}).get("Type") == "AWS::SQS::Queue":
            return dest[0]
        return None

    def stream_problems(self, c, m):
        k, p, src, fn = m
        label = "stream mapping %s (consumer %s)" % (k, c.get("name"))
        probs = []
        if src[0] != self.table:
            probs.append("%s: EventSourceArn is the stream of %s, not of the table %s"
                         % (label, src[0], self.table))
        if self.kind.get(fn) != "publish":
            probs.append("%s: function %s is not a publish function" % (label, fn))
        elif self.topic and ref(self.env(fn).get("TOPIC_ARN")) != self.topic:
            probs.append("%s: function %s has TOPIC_ARN %s, expected Ref %s"
                         % (label, fn, canon(self.env(fn).get("TOPIC_ARN")), self.topic))
        want = sorted(canon(x) for x in expected_patterns(c))
        have = []
        for f in ((p.get("FilterCriteria") or {}).get("Filters") or []):
            have.append(canon(as_json(f.get("Pattern"))))
        if sorted(have) != want:
            probs.append("%s: FilterCriteria patterns %s, config filter_patterns with the task-item condition "
                         "give %s" % (label, "[%s]" % ", ".join(sorted(have)), "[%s]" % ", ".join(want)))
        if as_int(p.get("BatchSize", 100)) != c["batch_size"]:
            probs.append("%s: BatchSize %s, config batch_size is %d"
                         % (label, p.get("BatchSize"), c["batch_size"]))
        if as_int(p.get("MaximumRetryAttempts", -1)) != -1:
            probs.append("%s: MaximumRetryAttempts %s: a record whose message SNS did not take must "
                         "be retried until it is published (-1), not dropped with its task left CREATED"
                         % (label, p.get("MaximumRetryAttempts")))
        age = as_int(p.get("MaximumRecordAgeInSeconds", -1))
        if not (isinstance(age, int) and 60 <= age < 86400):
            probs.append("%s: MaximumRecordAgeInSeconds %s: a record still unpublished must be dropped "
                         "by the mapping, which reports it to its OnFailure queue, before the stream "
                         "trims it at 24 h (from 60 to 86399)" % (label, p.get("MaximumRecordAgeInSeconds")))
        if not self.failure_queue(p):
            probs.append("%s: DestinationConfig OnFailure %s is not an SQS queue of the template: a "
                         "record the stream drops unpublished would leave no trace"
                         % (label, canon((p.get("DestinationConfig") or {}).get("OnFailure"))))
        if not truthy(p.get("BisectBatchOnFunctionError")):
            probs.append("%s: BisectBatchOnFunctionError %s, expected true"
                         % (label, p.get("BisectBatchOnFunctionError")))
        if "ReportBatchItemFailures" not in as_list(p.get("FunctionResponseTypes")):
            probs.append("%s: FunctionResponseTypes %s lacks ReportBatchItemFailures (publish answers "
                         "batchItemFailures)" % (label, canon(p.get("FunctionResponseTypes"))))
        if p.get("StartingPosition") != "TRIM_HORIZON":
            # LATEST skips what the stream holds when the mapping is made (or made again): those
            # tasks would stay CREATED, unpublished, with nothing to report them
            probs.append("%s: StartingPosition %s, expected TRIM_HORIZON (LATEST leaves the tasks written "
                         "before the mapping unpublished)" % (label, p.get("StartingPosition")))
        if p.get("Enabled") is False:
            probs.append("%s: disabled" % label)
        return probs

    def check_workers(self):
        bindings = {h["queue"]: h for h in self.cfg["handlers"]}
        dlqs = {q["dead_letter_queue"] for q in self.cfg["queues"] if q["dead_letter_queue"]}
        servable = set(bindings) | dlqs
        workers = {}
        for fn, kind in sorted(self.kind.items()):
            if kind != "worker":
                continue
            e = self.env(fn)
            qn = e.get("QUEUE_NAME")
            if not isinstance(qn, str) or not qn:
                self.fail("function %s: worker without QUEUE_NAME", fn)
                continue
            if qn not in servable:
                self.fail("function %s: QUEUE_NAME %s has no handler binding and is no dead-letter queue "
                          "in %s", fn, qn, self.config_name)
            workers.setdefault(qn, []).append(fn)
            if self.table and ref(e.get("TABLE_NAME")) != self.table:
                self.fail("function %s: TABLE_NAME %s, expected Ref %s", fn, canon(e.get("TABLE_NAME")),
                          self.table)
        for qn in sorted(servable):
            what = "handler binding" if qn in bindings else "dead-letter queue"
            fns = workers.get(qn, [])
            if len(fns) != 1:
                self.fail("queue %s (%s): %d worker functions with QUEUE_NAME=%s, expected 1%s", qn, what,
                          len(fns), qn, " (%s)" % ", ".join(fns) if fns else "")
        sqs_maps = {}
        for k, p, src, fn in self.mappings():
            if self.kind.get(fn) == "recover":
                continue  # check_recover
            if src and src[1] == "Arn" and (self.res.get(src[0]) or {}).get("Type") == "AWS::SQS::Queue":
                sqs_maps.setdefault(fn, []).append((k, p, src[0]))
        for qn, fns in sorted(workers.items()):
            for fn in fns:
                maps = sqs_maps.pop(fn, [])
                logical = self.queue_of.get(qn)
                if len(maps) != 1:
                    self.fail("function %s (queue %s): %d SQS event source mappings, expected 1",
                              fn, qn, len(maps))
                    continue
                k, p, src = maps[0]
                label = "sqs mapping %s (queue %s)" % (k, qn)
                if src != logical:
                    self.fail("%s: reads %s, but the function's QUEUE_NAME is %s (%s)", label, src, qn, logical)
                if "ReportBatchItemFailures" not in as_list(p.get("FunctionResponseTypes")):
                    self.fail("%s: FunctionResponseTypes %s lacks ReportBatchItemFailures (the worker answers "
                              "batchItemFailures)", label, canon(p.get("FunctionResponseTypes")))
                if p.get("Enabled") is False:
                    self.fail("%s: disabled", label)
                b = bindings.get(qn)
                if b:
                    if as_int(p.get("BatchSize", 10)) != b["batch_size"]:
                        self.fail("%s: BatchSize %s, config batch_size of the binding is %d", label,
                                  p.get("BatchSize", "absent (10)"), b["batch_size"])
                    window = as_int(p.get("MaximumBatchingWindowInSeconds", 0))
                    size = as_int(p.get("BatchSize", 10))  # not a number: the mismatch above
                    if isinstance(size, int) and size > 10 and not (isinstance(window, int) and window >= 1):
                        # Lambda refuses such a mapping: the deploy would fail
                        self.fail("%s: BatchSize %s with MaximumBatchingWindowInSeconds %s: a batch of more "
                                  "than 10 needs a window of at least 1 s", label, p.get("BatchSize"),
                                  p.get("MaximumBatchingWindowInSeconds", "absent (0)"))
                    mc = as_int((p.get("ScalingConfig") or {}).get("MaximumConcurrency"))
                    if b["concurrency"] < MAXIMUM_CONCURRENCY_MIN:
                        self.fail("%s: binding of %s has concurrency %d, which AWS cannot keep "
                                  "to: an SQS mapping's MaximumConcurrency is at least %d, and a reserved "
                                  "concurrency of %d has Lambda throttle the mapping, each throttled batch coming "
                                  "back counting a receive toward the dead-letter queue; give it a concurrency of "
                                  "%d or more", self.config_name, qn, b["concurrency"], MAXIMUM_CONCURRENCY_MIN,
                                  b["concurrency"], MAXIMUM_CONCURRENCY_MIN)
                    elif mc != b["concurrency"]:
                        self.fail("%s: ScalingConfig.MaximumConcurrency %s, config concurrency is %d", label,
                                  mc, b["concurrency"])
                    reserved = as_int(self.props(fn).get("ReservedConcurrentExecutions", mc))
                    if isinstance(mc, int) and not (isinstance(reserved, int) and reserved >= mc):
                        self.fail("function %s (queue %s): ReservedConcurrentExecutions %s, below its mapping's "
                                  "MaximumConcurrency %d: Lambda would throttle the mapping, each throttled batch "
                                  "coming back counting a receive toward the dead-letter queue", fn, qn, reserved, mc)
                self.check_worker_timeout(fn, qn, b)
        for fn, maps in sorted(sqs_maps.items()):
            for k, p, src in maps:
                self.fail("sqs mapping %s: function %s reading %s is not a worker of a configured queue",
                          k, fn, src)
        self.summary.append("%d workers" % sum(len(v) for v in workers.values()))

    def check_worker_timeout(self, fn, qn, binding):
        timeout = as_int(self.props(fn).get("Timeout", 6))
        q = next((x for x in self.cfg["queues"] if x["name"] == qn), None)
        label = "function %s (queue %s)" % (fn, qn)
        if not isinstance(timeout, int):
            self.fail("%s: Timeout %s is no number of seconds", label, timeout)
            return
        if binding and timeout < binding["timeout"] + WORKER_MARGIN:
            self.fail("%s: Timeout %s, below the binding's timeout %d + %d s: its tasks would never start",
                      label, timeout, binding["timeout"], WORKER_MARGIN)
        elif binding and timeout < binding["batch_size"] * binding["timeout"] + WORKER_MARGIN:
            # a worker runs a batch's tasks one after another, each given the whole timeout
            self.fail("%s: Timeout %s, below batch_size %d x the binding's timeout %d + %d s: the last "
                      "tasks of a batch could go back unrun, each return counting a receive toward "
                      "the dead-letter queue", label, timeout, binding["batch_size"], binding["timeout"],
                      WORKER_MARGIN)
        logical = self.queue_of.get(qn)
        if logical and q:
            # AWS's advice for a queue a function reads: a VisibilityTimeout of at least six times
            # the function's timeout, so that a batch whose invocation was throttled is retried
            # before its messages come back (each return counts a receive toward the dead-letter
            # queue); the configured visibility_timeout when it is longer
            vt = as_int(self.props(logical).get("VisibilityTimeout", SQS_DEFAULTS["VisibilityTimeout"]))
            want = max(q["visibility_timeout"], VISIBILITY_PER_TIMEOUT * timeout)
            if vt != want:
                self.fail("%s: %s's VisibilityTimeout %s, expected %d (the larger of %d x the function's "
                          "Timeout %s and config %s.visibility_timeout %d)", label, logical, vt, want,
                          VISIBILITY_PER_TIMEOUT, timeout, qn, q["visibility_timeout"])
        if binding and q and binding["timeout"] > q["visibility_timeout"]:
            self.fail("%s: binding of %s has timeout %d above the queue's visibility_timeout %d",
                      self.config_name, qn, binding["timeout"], q["visibility_timeout"])

    def check_env(self):
        for fn, kind in sorted(self.kind.items()):
            e = self.env(fn)
            if kind in ("api", "publish") and self.table and ref(e.get("TABLE_NAME")) != self.table:
                self.fail("function %s: TABLE_NAME %s, expected Ref %s", fn, canon(e.get("TABLE_NAME")),
                          self.table)
            if kind == "publish" and self.topic and ref(e.get("TOPIC_ARN")) != self.topic:
                self.fail("function %s: TOPIC_ARN %s, expected Ref %s", fn, canon(e.get("TOPIC_ARN")), self.topic)
        kinds = sorted(self.kind.values())
        if kinds.count("api") != 1:
            self.fail("functions: %d api functions, expected 1", kinds.count("api"))
        for fn, kind in sorted(self.kind.items()):
            if kind == "recover" and self.topic and ref(self.env(fn).get("TOPIC_ARN")) != self.topic:
                self.fail("function %s: TOPIC_ARN %s, expected Ref %s", fn, canon(self.env(fn).get("TOPIC_ARN")),
                          self.topic)
            if kind in ("sweep", "recover") and self.table and ref(self.env(fn).get("TABLE_NAME")) != self.table:
                self.fail("function %s: TABLE_NAME %s, expected Ref %s", fn, canon(self.env(fn).get("TABLE_NAME")),
                          self.table)

    # ---- API Gateway --------------------------------------------------------------------------

    def check_api(self):
        apis = self.of_type("AWS::ApiGateway::RestApi")
        if len(apis) != 1:
            self.fail("api: %d AWS::ApiGateway::RestApi resources, expected 1", len(apis))
            return
        rest = next(iter(apis))
        api_fns = [k for k, v in self.kind.items() if v == "api"]
        proxy_resources = {k for k, v in self.of_type("AWS::ApiGateway::Resource").items()
                           if (v.get("Properties") or {}).get("PathPart") == "{proxy+}"
                           and getatt((v.get("Properties") or {}).get("ParentId")) == (rest, "RootResourceId")}
        root = proxy = False
        for k, v in self.of_type("AWS::ApiGateway::Method").items():
            p = v.get("Properties") or {}
            integ = p.get("Integration") or {}
            if p.get("HttpMethod") != "ANY" or integ.get("Type") != "AWS_PROXY":
                continue
            if not any('"%s"' % f in canon(integ.get("Uri")) for f in api_fns):
                continue
            if getatt(p.get("ResourceId")) == (rest, "RootResourceId"):
                root = True
            elif ref(p.get("ResourceId")) in proxy_resources:
                proxy = True
        if not root:
            self.fail("api %s: no ANY / method proxied (AWS_PROXY) to the api function", rest)
        if not proxy:
            self.fail("api %s: no ANY /{proxy+} method proxied (AWS_PROXY) to the api function", rest)
        for fn in sorted(api_fns):
            timeout = as_int(self.props(fn).get("Timeout", 6))
            if not isinstance(timeout, int) or timeout > API_TIMEOUT_MAX_S:
                self.fail("function %s: Timeout %s; API Gateway gives up after %d s, cold start included "
                          "(%d s kept for it), so the api function's 503 at its deadline would reach "
                          "the client as API Gateway's 504, and recover's windows reach back %d s for "
                          "a create's write (RECOVER_CREATE_MS): at most %d", fn, timeout,
                          API_GATEWAY_TIMEOUT_S, API_COLD_START_S, RECOVER_REACH_S, API_TIMEOUT_MAX_S)
        tracing = ((self.state.get("service") or {}).get("provider") or {}).get("tracing") or {}
        if tracing.get("apiGateway") is not True:
            self.fail("api %s: API Gateway tracing is off (serverless-state.json provider.tracing.apiGateway %s)",
                      rest, canon(tracing.get("apiGateway")))
        if tracing.get("lambda") not in (True, "Active"):
            self.fail("provider.tracing.lambda %s in serverless-state.json, expected true",
                      canon(tracing.get("lambda")))
        outputs = [k for k, v in (self.t.get("Outputs") or {}).items()
                   if rest in canon(v.get("Value")) and "execute-api" in canon(v.get("Value"))]
        if not outputs:
            self.fail("outputs: none gives the API URL (https://<%s>.execute-api...)", rest)
        self.summary.append("api %s (outputs %s)" % (rest, ", ".join(sorted(outputs))))

    # ---- the schedule ---------------------------------------------------------------------------

    def check_sweep(self):
        """One sweep function, run by an enabled schedule of at most SWEEP_RATE_MAX_S."""
        sweeps = sorted(k for k, v in self.kind.items() if v == "sweep")
        if len(sweeps) != 1:
            self.fail("functions: %d sweep functions, expected 1 (claim_timeout needs one to end leases)", len(sweeps))
            return
        fn = sweeps[0]
        rules = []
        for k, v in sorted(self.of_type("AWS::Events::Rule").items()):
            p = v.get("Properties") or {}
            if any(getatt(t.get("Arn")) == (fn, "Arn") for t in as_list(p.get("Targets"))):
                rules.append((k, p))
        if not rules:
            self.fail("function %s: no AWS::Events::Rule runs it", fn)
            return
        for k, p in rules:
            # AWS's form: rate(1 minute), rate(5 minutes): the unit singular for 1 alone
            m = re.fullmatch(r"rate\(([1-9]\d*) (minute|minutes|hour|hours)\)", p.get("ScheduleExpression") or "")
            if m and (m.group(1) == "1") != (m.group(2) in ("minute", "hour")):
                m = None
            seconds = int(m.group(1)) * (60 if m.group(2).startswith("minute") else 3600) if m else None
            if seconds is None or seconds > SWEEP_RATE_MAX_S:
                self.fail("rule %s: ScheduleExpression %s; expected a rate of at most %d minutes", k,
                          canon(p.get("ScheduleExpression")), SWEEP_RATE_MAX_S // 60)
            if p.get("State", "ENABLED") != "ENABLED":
                self.fail("rule %s: State %s, the sweep would never run", k, p.get("State"))
        perms = [v for v in self.of_type("AWS::Lambda::Permission").values()
                 if getatt((v.get("Properties") or {}).get("FunctionName")) == (fn, "Arn")
                 and (v.get("Properties") or {}).get("Principal") == "events.amazonaws.com"]
        if not perms:
            self.fail("function %s: no AWS::Lambda::Permission lets events.amazonaws.com invoke it", fn)
        timeout = self.props(fn).get("Timeout", 6)
        if not isinstance(timeout, int) or timeout < SWEEP_TIMEOUT_MIN_S:
            self.fail("function %s: Timeout %s; the sweep takes no step in its last 5 s, so it needs at least %d",
                      fn, timeout, SWEEP_TIMEOUT_MIN_S)
        self.summary.append("sweep %s every %s" % (fn, rules[0][1].get("ScheduleExpression")))

    # ---- what the stream dropped unpublished ----------------------------------------------------

    def check_recover(self):
        """One recover function, reading the queue the stream mapping reports dropped records to."""
        fns = sorted(k for k, v in self.kind.items() if v == "recover")
        if len(fns) != 1:
            self.fail("functions: %d recover functions, expected 1 (a record the stream drops unpublished "
                      "would leave its task CREATED for good)", len(fns))
            return
        fn = fns[0]
        failures = {self.failure_queue(p) for (_, p, src, f) in self.mappings()
                    if src and src[1] == "StreamArn" and self.kind.get(f) == "publish"} - {None}
        maps = [(k, p, src) for (k, p, src, f) in self.mappings() if f == fn]
        if len(maps) != 1:
            self.fail("function %s: %d event source mappings, expected 1 (the publish failures' queue)", fn, len(maps))
            return
        k, p, src = maps[0]
        label = "sqs mapping %s (function %s)" % (k, fn)
        if not src or src[1] != "Arn" or src[0] not in failures:
            self.fail("%s: reads %s, not the queue the stream mapping reports dropped records to (%s)", label,
                      canon(p.get("EventSourceArn")), ", ".join(sorted(failures)) or "none")
            return
        if as_int(p.get("BatchSize", 10)) != 1:
            self.fail("%s: BatchSize %s, expected 1 (a window can take the whole invocation)", label,
                      p.get("BatchSize", "absent (10)"))
        if "ReportBatchItemFailures" not in as_list(p.get("FunctionResponseTypes")):
            self.fail("%s: FunctionResponseTypes %s lacks ReportBatchItemFailures (recover answers "
                      "batchItemFailures)", label, canon(p.get("FunctionResponseTypes")))
        if p.get("Enabled") is False:
            self.fail("%s: disabled", label)
        timeout = as_int(self.props(fn).get("Timeout", 6))
        vt = as_int(self.props(src[0]).get("VisibilityTimeout", SQS_DEFAULTS["VisibilityTimeout"]))
        if vt is None or timeout is None or vt < VISIBILITY_PER_TIMEOUT * timeout:
            self.fail("queue %s: VisibilityTimeout %s, below %d x function %s's Timeout %s", src[0], vt,
                      VISIBILITY_PER_TIMEOUT, fn, timeout)
        self.summary.append("recover %s from %s" % (fn, src[0]))

    def run(self):
        self.check_table()
        self.check_topic()
        self.check_queues()
        self.check_subscriptions()
        self.check_functions()
        self.check_env()
        self.check_roles()
        self.check_stream()
        self.check_workers()
        self.check_api()
        self.check_sweep()
        self.check_recover()
        return self.problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="taskd's configuration (default deploy/taskd.json)")
    ap.add_argument("--table", help="the table definition (default deploy/table.json)")
    ap.add_argument("dir", nargs="?", default=os.path.join(ROOT, ".serverless"),
                    help="the output of osls package (default .serverless)")
    a = ap.parse_args(argv)
    # the files read, named in messages as they were given, a default from where the check runs
    config_name = a.config or os.path.relpath(os.path.join(ROOT, "deploy", "taskd.json"))
    table_name = a.table or os.path.relpath(os.path.join(ROOT, "deploy", "table.json"))
    try:
        template = load_json(os.path.join(a.dir, TEMPLATE), "template")
        state = load_json(os.path.join(a.dir, STATE), "state")
        raw = load_json(config_name, "configuration")
        table = load_json(table_name, "table definition")
        if not isinstance(raw, dict) or not isinstance(table, dict) or not isinstance(template, dict):
            raise Input("configuration, table definition and template must be JSON objects")
        c = Checker(template, state, effective_config(raw), table, config_name, table_name)
        problems = c.run()
    except Input as e:
        print("check-serverless: %s" % e, file=sys.stderr)
        return 2
    except Exception as e:  # a shape this check does not know: not a pass, not a mismatch list
        import traceback
        traceback.print_exc()
        print("check-serverless: cannot check the template (%s: %s)" % (type(e).__name__, e), file=sys.stderr)
        return 2
    if problems:
        for p in problems:
            print("check-serverless: %s" % p, file=sys.stderr)
        print("check-serverless: %d mismatch%s between the template and %s and %s" %
              (len(problems), "es" if len(problems) != 1 else "", config_name, table_name), file=sys.stderr)
        return 1
    print("check-serverless: ok: %s match %s and %s" % (", ".join(c.summary), config_name, table_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
