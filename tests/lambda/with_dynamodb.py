#!/usr/bin/env python3
"""Run a command with a DynamoDB Local of its own: with_dynamodb.py COMMAND [ARGS...]

Starts DynamoDB Local on a free port (tests/lambda/dynamodb_local.py), runs the
command with DYNAMODB_ENDPOINT naming it and TASKD_TABLE_JSON naming the table
definition, stops it, and exits with the command's status. CTest uses it for the
C tests that run the store contract over DynamoDB too.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dynamodb_local import DynamoDBLocal  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    with DynamoDBLocal() as db:
        env = dict(os.environ, DYNAMODB_ENDPOINT=db.endpoint,
                   TASKD_TABLE_JSON=os.path.join(REPO, "deploy", "table.json"))
        return subprocess.call(argv, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
