"""The README's walkthrough, pasted as a reader would: every shell block of the
"Walkthrough" section runs, in order, in one bash session against a real taskd.
And its table of routes, against the API's own description (/openapi.json); the
bounds its "Configuration" gives, against the ones taskd refuses a value by; and the
environment variables it names, against the ones taskd and bootstrap read.

The only edits are the ones a reader makes by starting taskd elsewhere: the
address (a free port instead of 127.0.0.1:8080), the wait for TASK1 (the
server runs with TASK1_SECONDS=1, so `sleep 11` becomes `sleep 2`). The test fails when a command fails, when a
block prints an error body, or when what the comments promise is not seen.
"""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Taskd, local_only, run_taskd, write_config  # noqa: E402


def walkthrough_blocks():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"^## Walkthrough\n(.*?)^## ", readme, re.S | re.M)
    if not m:
        raise AssertionError("README.md has no Walkthrough section")
    return re.findall(r"```sh\n(.*?)```", m.group(1), re.S)


@local_only("the walkthrough drives the local taskd")
class Walkthrough(unittest.TestCase):
    def test_walkthrough_pastes_and_works(self):
        blocks = walkthrough_blocks()
        self.assertGreaterEqual(len(blocks), 3, "the walkthrough lost its shell blocks")
        t = Taskd(env={"TASK1_SECONDS": "1", "TASK1_FAILURE_RATE": "0"})
        try:
            base = "http://127.0.0.1:%d" % t.port
            script = ["set -euo pipefail"]
            for b in blocks:
                b = b.replace("http://127.0.0.1:8080", base).replace("sleep 11", "sleep 2")
                script.append(b)
            p = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                               timeout=60)
            out = p.stdout
            self.assertEqual(p.returncode, 0, "walkthrough failed:\n%s\n%s" % (out, p.stderr))
            self.assertNotIn('"detail"', out, out)
            # what the comments promise
            self.assertRegex(out, r"^[0-9a-f]{8}-[0-9a-f]{4}-7", "the first echo prints the id")
            self.assertIn('{"task_type":"TASK2","status":"CREATED","status_msg":""}', out)
            # the task read back, a line of its own (an answer without its newline runs into the
            # next block's first, an object too)
            self.assertRegex(out, r'(?m)^\{"id":.*"status":"(COMPLETED|FAILED)".*\}$')
            self.assertNotIn("}{", out, "an answer printed without its newline")
            # the pages of the two CREATED TASK2 tasks, one a page: the first, then the next_token's
            self.assertEqual(len(re.findall(r"tasks\?limit=1&", "".join(blocks))), 2,
                             "the pages are asked for one task at a time")
            pages = re.findall(r'(?m)^"([0-9a-f-]{36})"$', out)
            self.assertEqual(len(set(pages)), 2, "a page, then the next: " + out)
            self.assertRegex(out, r"(?m)^204$", "the PATCH answers 204")
            self.assertRegex(out, r"(?m)^ 200$|\} 200$", "the repeated Idempotency-Key answers 200")
            self.assertRegex(out, r"(?m)^204\n204\n409\n204$",
                             "a claim made again with its key answers 204, another claimer 409")
            kinds = re.findall(r"(?m)^(SERVER|CLIENT|CONSUMER|PRODUCER|INTERNAL)\t(.+)$", out)
            self.assertEqual([n for _, n in kinds], [
                "POST /tasks", "INSERT tasks", "process publisher", "publish tasks",
                "receive task1", "process task1", "UPDATE tasks", "TASK1", "UPDATE tasks"], out)
            self.assertIn("/tasks/{task_id}", out)  # the openapi paths
            self.assertIn('{"status":"ok"}', out)
            # the long poll answers the finished task, the event stream the new TASK2's INSERT
            self.assertRegex(out, r'(?m)^\{"status":"(COMPLETED|FAILED)","status_msg":"Task ')
            self.assertRegex(out, r"(?m)^retry: 2000$")
            events = re.findall(r"(?m)^data: (\{.*\})$", out)
            self.assertEqual(len(events), 1, out)
            self.assertRegex(events[0], r'"task_type":"TASK2","status":"CREATED".*"event":"INSERT"')
        finally:
            t.close()


def routes_table():
    """The rows of the README's "Routes" table: (routes [(METHOD, path)], the row's text)."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"^### Routes\n(.*?)^#", readme, re.S | re.M)
    if not m:
        raise AssertionError("README.md has no Routes section")
    rows = []
    for line in m.group(1).splitlines():
        if not line.startswith("| `"):
            continue
        routes = re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/[^`?\s]*)", line.split(" | ")[0])
        rows.append(([(meth, path.replace("{id}", "{task_id}")) for meth, path in routes], line))
    return rows


@local_only("the table describes the local taskd's routes")
class RoutesTable(unittest.TestCase):
    # answered on every route alike, and said once for all: 401 and 403 by the access rules
    # ("Running taskd", docs/auth.md), 503 past max_in_flight ("Configuration")
    EVERY_ROUTE = {"401", "403", "503"}

    def test_every_route_has_its_row_with_every_status_it_answers(self):
        t = Taskd()
        try:
            spec = t.get("/openapi.json").json()
        finally:
            t.close()
        rows = routes_table()
        self.assertGreaterEqual(len(rows), 10, "the routes table lost its rows")
        listed, unsaid, unbounded = set(), [], []
        for routes, line in rows:
            said = set(re.findall(r"`([1-5][0-9][0-9])\b", line))
            for meth, path in routes:
                listed.add((meth, path))
                op = spec["paths"].get(path, {}).get(meth.lower())
                self.assertIsNotNone(op, "%s %s: no such route in /openapi.json" % (meth, path))
                # what the table must name: every status but the 2xx of a row that describes
                # its answer in words, and those every route shares
                answers = {c for c in op["responses"] if not c.startswith("2")} - self.EVERY_ROUTE
                if answers - said:
                    unsaid.append("%s %s: %s" % (meth, path, ", ".join(sorted(answers - said))))
                # a query parameter's bounds, as `wait=1..60`, and its default
                for param in op.get("parameters", []):
                    schema = param.get("schema", {})
                    if "maximum" not in schema:
                        continue
                    bounds = "`%s=%s..%s`" % (param["name"], schema.get("minimum", ""),
                                              schema["maximum"])
                    default = r"\bdefault %s\b|\b%s by default\b" % ((schema.get("default"),) * 2)
                    if bounds not in line or ("default" in schema and not re.search(default, line)):
                        unbounded.append("%s %s: %s, default %s" % (meth, path, bounds,
                                                                    schema.get("default")))
        self.assertEqual(unsaid, [], "statuses the routes answer and the README's table omits")
        self.assertEqual(unbounded, [], "query parameters whose bounds the table omits")
        served = {(meth.upper(), path) for path, ops in spec["paths"].items()
                  for meth in ops if meth in ("get", "post", "patch", "put", "delete")}
        self.assertEqual(served - listed, set(), "routes the README's table leaves out")


def config_keys():
    """The configuration's keys, as src/core/config.c reads them: (section, key), section None
    for the top level."""
    with open(os.path.join(REPO, "src", "core", "config.c"), encoding="utf-8") as f:
        source = f.read()
    keys = [(None, k) for k in re.findall(r'strcmp\(key, "([a-z_0-9]+)"\) == 0', source)]
    for section, reader in (("queues", "read_queue"), ("stream_consumers", "read_consumer"),
                            ("handlers", "read_handler")):
        body = re.search(r"static bool %s\(.*?\n}\n" % reader, source, re.S)
        if not body:
            raise AssertionError("config.c has no %s()" % reader)
        read = re.findall(r'read_uint\(r, o, "([a-z_0-9]+)"', body.group(0))
        keys += [(section, k) for k in read]
    return keys


def with_value(section, key, value):
    """A configuration that gives key (of an entry of section) value, and nothing else amiss."""
    if section is None:
        return {key: value}
    if section == "queues":
        return {"queues": [{"name": "q", key: value}]}
    if section == "stream_consumers":
        return {"stream_consumers": [{"name": "c", key: value}]}
    return {"queues": [{"name": "q"}], "subscriptions": [],
            "handlers": [{"queue": "q", "handler": "exec", "command": ["/bin/true"], key: value}]}


class ConfigurationBounds(unittest.TestCase):
    def test_the_readme_gives_every_integer_keys_bounds(self):
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        keys = config_keys()
        self.assertGreaterEqual(len(keys), 25, "config.c's keys were not found")
        unsaid, bounded = [], 0
        with tempfile.TemporaryDirectory() as d:
            for section, key in keys:
                path = write_config(d, with_value(section, key, 10 ** 13))
                p = run_taskd(["--config", path, "--db", os.path.join(d, "x.db"),
                               "--listen", "127.0.0.1:0"])
                m = re.search(r"must be an integer from (\d+) to (\d+)", p.stderr.decode())
                if not m:
                    continue  # not a number (a name, a section): no bounds to give
                self.assertEqual(p.returncode, 2, p.stderr)
                bounded += 1
                bounds = "%s–%s" % m.groups()
                # the key named, and its bounds within a few lines after
                if not any(bounds in readme[at.start():at.start() + 400]
                           for at in re.finditer(r"`%s`" % key, readme)):
                    unsaid.append("%s%s: %s" % (section + " " if section else "", key, bounds))
        self.assertGreaterEqual(bounded, 25)
        self.assertEqual(unsaid, [], "bounds taskd holds a key to and the README does not give")


def metrics_said(readme):
    """The metrics the README names, each with the label sets it gives it: a group such as
    `taskd_queue_depth` / `_in_flight` / `_delayed{queue}` gives its last labels to every name
    in it, and `_in_flight` stands for taskd_queue_in_flight."""
    said = {}
    item = r"`_?[a-z_]+(?:\{[a-z_,]+\})?`"
    for group in re.finditer(r"`taskd_[a-z_]+(?:\{[a-z_,]+\})?`(?:\s*/\s*%s)*" % item, readme):
        items = re.findall(r"`([a-z_]+)(?:\{([a-z_,]+)\})?`", group.group(0))
        labels = next((given for _, given in reversed(items) if given), "")
        for name, _ in items:
            if name.startswith("_"):
                name = items[0][0].rsplit("_", 1)[0] + name
            said.setdefault(name, set()).add(frozenset(labels.split(",")) - {""})
    return said


@local_only("the metrics are the local taskd's")
class Metrics(unittest.TestCase):
    def test_the_readme_names_every_metric_with_its_labels(self):
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            said = metrics_said(f.read())
        t = Taskd(env={"TASK1_SECONDS": "0"})
        try:
            task = t.post("/tasks", {"task_type": "TASK1"}).json()["id"]
            t.get("/tasks/%s?wait=10" % task)
            text = t.get("/metrics").body.decode()
        finally:
            t.close()
        histograms = set(re.findall(r"(?m)^# TYPE (\S+) histogram$", text))
        shown = {}
        for name, labels in re.findall(r"(?m)^(taskd_[a-z_]+)(?:\{(.*)\})? ", text):
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            name = family if family in histograms else name
            shown.setdefault(name, set()).add(
                frozenset(re.findall(r"([a-z_]+)=\"", labels)) - {"le"})
        self.assertGreaterEqual(len(shown), 15, text)
        unsaid = ["%s{%s}" % (name, ",".join(sorted(labels)))
                  for name, sets in sorted(shown.items()) for labels in sets
                  if labels not in said.get(name, set())]
        self.assertEqual(unsaid, [], "metrics or labels /metrics shows and the README does not")


class Variables(unittest.TestCase):
    def test_the_readme_names_every_variable_taskd_and_bootstrap_read(self):
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        # every string of src/ shaped as a variable (NAME_NAME) is one, but the task statuses
        read = set()
        for folder, _, files in os.walk(os.path.join(REPO, "src")):
            for name in files:
                if name.endswith(".c"):
                    with open(os.path.join(folder, name), encoding="utf-8") as f:
                        read |= set(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]+)"', f.read()))
        with open(os.path.join(REPO, "src", "core", "task.c"), encoding="utf-8") as f:
            read -= set(re.findall(r'"([A-Z_]+)"', f.read()))
        for expected in ("TASKD_LISTEN", "OTEL_EXPORTER_OTLP_TIMEOUT", "AWS_DEFAULT_REGION",
                         "SSL_CERT_FILE"):
            self.assertIn(expected, read, "the variables of src/ were not found")
        self.assertEqual(sorted(v for v in read if not re.search(r"`%s[`=]" % v, readme)), [],
                         "variables taskd or bootstrap reads that the README does not name")
        # the timeout is in milliseconds, as the OpenTelemetry specification has it
        at = readme.index("`OTEL_EXPORTER_OTLP_TIMEOUT`")
        self.assertIn("milliseconds", readme[at:at + 200])


if __name__ == "__main__":
    unittest.main()
