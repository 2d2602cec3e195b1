"""Run the original Python API (unchanged) as the compatibility suite's oracle.

Run with Debian's Python, which has python3-fastapi, python3-uvicorn and python3-pydantic
(``scripts/install-deps.sh --test``):

    /usr/bin/python3 tests/compat/oracle.py [--original DIR] [--port N]

The original's folder (``$TASKD_ORIGINAL_API``, else ``<repo>/../shared/seed/original-api``)
is imported as a package (its ``__init__.py`` does ``from . import dynamo, models``) with
``standins/`` first on ``sys.path`` (boto3's Table in memory, aws_lambda_powertools,
mangum) and ``TABLE_NAME`` set; uvicorn serves its FastAPI app on 127.0.0.1. The first
line on stdout is JSON, ``{"listening": "127.0.0.1:PORT"}``, printed once the socket
listens (requests sent from then on wait in the backlog until uvicorn runs).
"""

import argparse
import importlib.util
import json
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STANDINS = os.path.join(HERE, "standins")
PACKAGE = "original_api"


def original_dir():
    """The original's folder: $TASKD_ORIGINAL_API, else <repo>/../shared/seed/original-api."""
    return os.environ.get("TASKD_ORIGINAL_API") or \
        os.path.normpath(os.path.join(REPO, "..", "shared", "seed", "original-api"))


def load_app(folder):
    init = os.path.join(folder, "__init__.py")
    if not os.path.isfile(init):
        raise SystemExit("oracle: the original API is not at %s (no __init__.py); "
                         "set TASKD_ORIGINAL_API" % folder)
    sys.path.insert(0, STANDINS)
    os.environ.setdefault("TABLE_NAME", "tasks")
    spec = importlib.util.spec_from_file_location(PACKAGE, init,
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module.app


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", default=original_dir())
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    app = load_app(args.original)
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    host, port = sock.getsockname()
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    print(json.dumps({"listening": "%s:%d" % (host, port)}), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
