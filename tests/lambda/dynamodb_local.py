"""DynamoDB Local for the tests of the Lambda build (Python standard library only).

    from dynamodb_local import DynamoDBLocal, shared_instance, create_table, delete_table, call

    db = DynamoDBLocal(); db.start()          # java ... DynamoDBLocal.jar -inMemory -sharedDb on a free port
                                              # (java_options=() for a long run: see TEST_JAVA_OPTIONS)
    create_table(db.endpoint, "tasks-1")      # deploy/table.json, then UpdateTimeToLive; waits for ACTIVE
    call(db.endpoint, "PutItem", {...})       # any DynamoDB JSON 1.0 operation
    delete_table(db.endpoint, "tasks-1")
    db.stop()

    shared_instance().endpoint                # under CTest, the run's one instance (the dynamodb fixture:
                                              # dynamodb_local_start/stop); else one per process, started
                                              # lazily, stopped at exit; DYNAMODB_ENDPOINT names another

The jar comes from scripts/aws-standins.sh (``install``), in the cache folder
``${TASKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskd}``; DYNAMODB_LOCAL_DIR names another
folder holding DynamoDBLocal.jar and DynamoDBLocal_lib.
"""

import atexit
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import sys
import threading
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import standin  # noqa: E402
from standin import External, StandIn  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE_SPEC = os.path.join(REPO, "deploy", "table.json")
REGION = "eu-west-1"
ACCESS_KEY = "AKIDLOCALEXAMPLE"
SECRET_KEY = "localSecretAccessKeyExample0000000000000"
DDB_PACKAGE_DIR = "amplify-dynamodb-simulator-2.9.30"  # as installed by scripts/aws-standins.sh


class DynamoDBError(Exception):
    """An error answer of the DynamoDB API: .type (e.g. ResourceNotFoundException), .status."""

    def __init__(self, status, error_type, message):
        super().__init__("%s (%s): %s" % (error_type, status, message))
        self.status = status
        self.type = error_type
        self.message = message


def cache_dir():
    return os.environ.get("TASKD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "taskd")


def jar_dir():
    return os.environ.get("DYNAMODB_LOCAL_DIR") or os.path.join(cache_dir(), DDB_PACKAGE_DIR, "emulator")


# -- the JSON API -------------------------------------------------------------------------------

def _sign(host, target, body, region=REGION):
    """Headers of a SigV4-signed DynamoDB request (fake keys; DynamoDB Local checks only the form)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    headers = {"content-type": "application/x-amz-json-1.0", "host": host, "x-amz-date": amz_date,
               "x-amz-target": target}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           signed, hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/dynamodb/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (day, region, "dynamodb", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {"Content-Type": headers["content-type"], "X-Amz-Date": amz_date, "X-Amz-Target": target,
           "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                            % (ACCESS_KEY, scope, signed, signature)}
    return out


def call(endpoint, operation, payload, timeout=10.0):
    """One DynamoDB JSON 1.0 call (X-Amz-Target DynamoDB_20120810.<operation>); returns the answer.

    Raises DynamoDBError for an error answer, OSError when nothing answers.
    """
    u = urlsplit(endpoint)
    body = json.dumps(payload).encode("utf-8")
    host = u.netloc
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request("POST", "/", body=body, headers=_sign(host, "DynamoDB_20120810." + operation, body))
        r = conn.getresponse()
        data = r.read()
    except http.client.HTTPException as e:
        raise OSError("DynamoDB %s: %s" % (operation, e))
    finally:
        conn.close()
    try:
        obj = json.loads(data.decode("utf-8")) if data else {}
    except (UnicodeDecodeError, ValueError):
        obj = {"__type": "InvalidResponse", "message": data[:200].decode("latin-1")}
    if r.status != 200:
        etype = str(obj.get("__type", "UnknownError")).rpartition("#")[2]
        raise DynamoDBError(r.status, etype, obj.get("message") or obj.get("Message") or "")
    return obj


def table_spec(path=TABLE_SPEC):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def create_table(endpoint, name, spec_path=TABLE_SPEC, timeout=30.0):
    """Create table `name` as deploy/table.json describes it, set its TTL, wait for ACTIVE."""
    spec = table_spec(spec_path)
    ttl = spec.pop("TimeToLiveSpecification", None)  # CloudFormation's key, not CreateTable's
    spec.pop("TableName", None)
    spec["TableName"] = name
    call(endpoint, "CreateTable", spec)
    if ttl:
        try:
            call(endpoint, "UpdateTimeToLive", {"TableName": name, "TimeToLiveSpecification": ttl})
        except DynamoDBError:
            pass  # DynamoDB Local's TTL support varies between versions; it never expires items anyway
    deadline = time.monotonic() + timeout
    while True:
        t = call(endpoint, "DescribeTable", {"TableName": name})["Table"]
        indexes = t.get("GlobalSecondaryIndexes") or []
        if t.get("TableStatus") == "ACTIVE" and all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes):
            return t
        if time.monotonic() > deadline:
            raise TimeoutError("table %s not ACTIVE after %.0f s: %s" % (name, timeout, t.get("TableStatus")))
        time.sleep(0.05)


def delete_table(endpoint, name):
    """Delete a table; a table that does not exist is no error."""
    try:
        call(endpoint, "DeleteTable", {"TableName": name})
    except DynamoDBError as e:
        if e.type != "ResourceNotFoundException":
            raise


# -- the process --------------------------------------------------------------------------------

# The JVM for the tests (one a CTest run, or one a test process run alone): the client compiler
# alone (no C2) and the serial collector halve its CPU time, start-up and calls together
# (test_api's store contract: 7-9 s of the JVM's CPU against 15-18 s, 9-13 s of wall time against
# 14-23 s, on two loaded cores; measured with a JVM a test, not yet for a run's). A long run whose
# figures are DynamoDB Local's steady state (bench/lambda.sh) passes java_options=().
TEST_JAVA_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class DynamoDBLocal(StandIn):
    """One DynamoDB Local process on 127.0.0.1 (in memory, one database for every key and region)."""

    name = "DynamoDB Local"
    ready_what = "an answer to ListTables"
    fixture = "dynamodb"
    fixture_variable = "DYNAMODB_LOCAL_FIXTURE"

    def __init__(self, directory=None, port=None, java_options=TEST_JAVA_OPTIONS):
        super().__init__(port)
        self.directory = directory or jar_dir()
        self.java_options = list(java_options)

    def command(self, port):
        java = shutil.which("java")
        if not java:
            raise RuntimeError("java not found: DynamoDB Local needs a Java runtime "
                               "(scripts/install-deps.sh --test installs one)")
        jar = os.path.join(self.directory, "DynamoDBLocal.jar")
        if not os.path.isfile(jar):
            raise RuntimeError("DynamoDB Local not found at %s: run scripts/aws-standins.sh install" % jar)
        return ([java] + self.java_options
                + ["-Djava.library.path=" + os.path.join(self.directory, "DynamoDBLocal_lib"),
                   "-jar", jar, "-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)],
                None, self.directory)

    def ready(self):
        try:
            call(self.endpoint, "ListTables", {}, timeout=2)
            return True
        except (OSError, DynamoDBError):
            return False


_shared = None
_shared_lock = threading.Lock()


def shared_instance():
    """The process-wide DynamoDB (an object with .endpoint): DYNAMODB_ENDPOINT when set, else the
    CTest run's (DYNAMODB_LOCAL_FIXTURE), else one DynamoDB Local started on first use and stopped
    when the process exits."""
    global _shared
    with _shared_lock:
        if _shared is None:
            endpoint = os.environ.get("DYNAMODB_ENDPOINT") or fixture_endpoint()
            if endpoint:
                _shared = External(endpoint)
            else:
                db = DynamoDBLocal()
                db.start()
                atexit.register(db.stop)
                _shared = db
        return _shared


# -- one for a whole CTest run ------------------------------------------------------------------
#
# CTest's fixture dynamodb (CMakeLists.txt): dynamodb_local_start runs `dynamodb_local.py start
# DIR`, dynamodb_local_stop `dynamodb_local.py stop DIR`; the tests that require it have
# DYNAMODB_LOCAL_FIXTURE=DIR (standin.py tells how they find it, and how it ends with CTest).

def fixture_endpoint():
    """The endpoint of the CTest run's DynamoDB Local, or None outside the fixture."""
    return standin.fixture_endpoint(DynamoDBLocal)


if __name__ == "__main__":
    sys.exit(standin.fixture_main(DynamoDBLocal, __file__, sys.argv[1:]))
