#!/usr/bin/env python3
"""Run a command with an AWS stand-in of its own: with_standin.py dynamodb|fauxqs COMMAND [ARGS...]

Starts the stand-in on a free port — DynamoDB Local (tests/lambda/dynamodb_local.py)
or fauxqs, SNS + SQS (tests/lambda/fauxqs.py) — runs the command with
DYNAMODB_ENDPOINT (and TASKD_TABLE_JSON, the table definition) or FAUXQS_ENDPOINT
naming it, stops it, and exits with the command's status. CTest uses it for the C
tests that run against a stand-in; under its fixture dynamodb or fauxqs
(CMakeLists.txt) the stand-in is the run's own, shared, and not stopped here.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin import die_with_starter, fixture_endpoint  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(kind, endpoint, command):
    if kind == "dynamodb":
        env = dict(os.environ, DYNAMODB_ENDPOINT=endpoint,
                   TASKD_TABLE_JSON=os.path.join(REPO, "deploy", "table.json"))
    else:
        env = dict(os.environ, FAUXQS_ENDPOINT=endpoint)
    return subprocess.call(command, env=env, preexec_fn=die_with_starter)  # killed with us too


def main(argv):
    if len(argv) < 2 or argv[0] not in ("dynamodb", "fauxqs"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    kind, command = argv[0], argv[1:]
    # the one module its stand-in needs: fauxqs's imports the emulator and a checker, 0.1 s of
    # CPU that a test against DynamoDB had spent on every start
    if kind == "dynamodb":
        from dynamodb_local import DynamoDBLocal as cls
    else:
        from fauxqs import Fauxqs as cls
    shared = fixture_endpoint(cls)
    if shared:
        return run(kind, shared, command)
    with cls() as standin:
        return run(kind, standin.endpoint, command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
