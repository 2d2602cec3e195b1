"""Run the differential compatibility suite: the original (oracle) and taskd, same corpus.

    python3 tests/compat/run.py                 # run, compare, check differences.json
    python3 tests/compat/run.py --draft FILE    # also write the table with each entry's
                                                # "diff" set to what was observed (new
                                                # differences get class "TODO")

taskd is ``$TASKD_BIN`` (default ``<repo>/build/taskd``), started by the integration
harness on a free port with a fresh database; the original comes from
``$TASKD_ORIGINAL_API`` (default ``<repo>/../shared/seed/original-api``) and runs on
``$TASKD_ORACLE_PYTHON`` (default ``/usr/bin/python3``). Exit status 1 on any problem.
"""

import argparse
import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import compare  # noqa: E402
import corpus  # noqa: E402
import pydantic_v2  # noqa: E402
import runner  # noqa: E402

# The TASK1 demo handler sleeps TASK1_SECONDS (10 by default): keep the stop quick.
TASKD_ENV = {"TASK1_SECONDS": "1"}


def run_both(taskd, oracle):
    """Run the corpus on both servers at once; returns (observed diffs, names)."""
    steps = corpus.STEPS
    results = {}
    errors = []

    def go(label, host, port):
        try:
            results[label] = runner.run(steps, host, port, label)
        except Exception as e:  # reported below, with the other side's outcome
            errors.append(e)

    threads = [threading.Thread(target=go, args=("the original", oracle.host, oracle.port)),
               threading.Thread(target=go, args=("taskd", taskd.host, taskd.port))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    (orun, ovars), (trun, tvars) = results["the original"], results["taskd"]
    observed = compare.compare_runs(orun, trun, "http://%s:%d" % (oracle.host, oracle.port),
                                    "http://%s:%d" % (taskd.host, taskd.port), ovars, tvars)
    return observed, [s.name for s in steps]


def check_original():
    folder = runner.require_original()
    with open(os.path.join(folder, "models.py"), encoding="utf-8") as f:
        pydantic_v2.check_models(f.read())
    return folder


def main():
    ap = argparse.ArgumentParser(description="the differential compatibility suite")
    ap.add_argument("--draft", metavar="FILE", help="write the observed table to FILE")
    args = ap.parse_args()
    import harness

    check_original()
    corpus.by_name()
    oracle = runner.Oracle()
    try:
        taskd = harness.Taskd(env=TASKD_ENV)
        try:
            observed, names = run_both(taskd, oracle)
        finally:
            taskd.close()
    finally:
        oracle.close()
    table = compare.load_table()
    problems = compare.check(observed, table, names)
    if args.draft:
        with open(args.draft, "w", encoding="utf-8") as f:
            json.dump(compare.draft(observed, table, names), f, indent=2, ensure_ascii=False)
            f.write("\n")
    print("%d requests, %d differ" % (len(names), len(observed)))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
