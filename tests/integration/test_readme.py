"""The README's walkthrough, pasted as a reader would: every shell block of the
"Walkthrough" section runs, in order, in one bash session against a real taskd.

The only edits are the ones a reader makes by starting taskd elsewhere: the
address (a free port instead of 127.0.0.1:8080), the wait for TASK1 (the
server runs with TASK1_SECONDS=1, so `sleep 11` becomes `sleep 2`), and the
dashboard line (no browser here). The test fails when a command fails, when a
block prints an error body, or when what the comments promise is not seen.
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Taskd, local_only  # noqa: E402


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
                b = "\n".join(line for line in b.splitlines() if not line.startswith("xdg-open"))
                script.append(b)
            p = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                               timeout=60)
            out = p.stdout
            self.assertEqual(p.returncode, 0, "walkthrough failed:\n%s\n%s" % (out, p.stderr))
            self.assertNotIn('"detail"', out, out)
            # what the comments promise
            self.assertRegex(out, r"^[0-9a-f]{8}-[0-9a-f]{4}-7", "the first echo prints the id")
            self.assertIn('{"task_type":"TASK2","status":"CREATED","status_msg":""}', out)
            self.assertRegex(out, r'"status":"(COMPLETED|FAILED)"')
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


if __name__ == "__main__":
    unittest.main()
