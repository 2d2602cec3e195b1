"""Differential compatibility: the same requests to taskd and to the original Python API.

The original (its unchanged FastAPI code, ``$TASKD_ORIGINAL_API`` or
``<repo>/../shared/seed/original-api``) runs under Debian's Python with the stand-ins of
``tests/compat/standins``; the corpus, the comparison and the pydantic v1 → v2 translation
live in ``tests/compat/``. Every difference must be classed in
``tests/compat/differences.json`` (better / extension / incompatible), every entry there must
still match, and README.md's compatibility section must be what the table generates.
The original's code is not part of this repository. Where its folder does not exist at all
(a clone on its own), the comparison cannot run: the test says so and exits 77, which CTest
reports as skipped, after the checks that need no original have passed. A folder that is
there but incomplete, or an original that does not start, is a failure.

Run alone: ``TASKD_BIN=build/taskd python3 tests/integration/test_compat.py``.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COMPAT = os.path.join(REPO, "tests", "compat")
sys.path.insert(0, HERE)
sys.path.insert(0, COMPAT)

import compare  # noqa: E402
import corpus  # noqa: E402
import gen_readme  # noqa: E402
import pydantic_v2  # noqa: E402
import run as compat_run  # noqa: E402
import runner  # noqa: E402
from harness import Taskd, on_lambda  # noqa: E402


class TableAndReadme(unittest.TestCase):
    """What needs no server: the corpus, the table and the README agree."""

    def test_corpus_names_are_unique(self):
        corpus.by_name()

    def test_table_is_well_formed(self):
        problems = compare.table_problems(compare.load_table(), set(corpus.names()))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_readme_section_is_generated_from_the_table(self):
        problem = gen_readme.check()
        if problem:
            self.fail(problem)

    def test_every_classed_request_is_shown_with_its_note(self):
        """A request's note (what it sends, as the corpus says) is in the README's row of it,
        in a row that names its requests alone too."""
        with open(gen_readme.README, encoding="utf-8") as f:
            rows = (gen_readme.current_section(f.read()) or "").splitlines()
        steps = corpus.by_name()
        lost = ["%s: %s" % (e["step"], steps[e["step"]].note)
                for e in compare.load_table()["entries"]
                if steps[e["step"]].note
                and not any("`%s`" % e["step"] in row and steps[e["step"]].note.replace("|", "\\|") in row
                            for row in rows)]
        self.assertEqual(lost, [], "notes not in the README's rows:\n" + "\n".join(lost))


SKIPPED = 77  # CTest's SKIP_RETURN_CODE for this test (CMakeLists.txt)


def original_absent():
    return not os.path.isdir(runner.original_dir())


@unittest.skipIf(on_lambda(), "the compatibility suite drives the local taskd")
@unittest.skipIf(original_absent(), "the original's code is not at %s (set TASKD_ORIGINAL_API)"
                 % runner.original_dir())
class AgainstTheOriginal(unittest.TestCase):
    def test_every_difference_is_classified(self):
        try:
            compat_run.check_original()
        except (runner.OracleError, pydantic_v2.TranslationError, OSError) as e:
            self.fail("cannot run the original API as the oracle: %s" % e)
        oracle = runner.Oracle()
        taskd = None
        try:
            taskd = Taskd(env=compat_run.TASKD_ENV)
            observed, names = compat_run.run_both(taskd, oracle)
            self.assertTrue(oracle.alive(), "the original died during the run:\n%s"
                            % oracle.stderr_text()[-4000:])
            self.assertTrue(taskd.alive(), "taskd died during the run:\n%s"
                            % taskd.stderr_text()[-4000:])
        finally:
            oracle.close()
            if taskd is not None:
                taskd.close()
        problems = compare.check(observed, compare.load_table(), names)
        if problems:
            self.fail("%d requests, %d differ; %d problems with tests/compat/differences.json "
                      "(python3 tests/compat/run.py --draft FILE writes the observed table):\n\n%s"
                      % (len(names), len(observed), len(problems), "\n".join(problems)))


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if original_absent() and not on_lambda():
        print("SKIPPED: no comparison with the original: its code is not at %s; "
              "set TASKD_ORIGINAL_API to its folder" % runner.original_dir(), file=sys.stderr)
        sys.exit(SKIPPED)
