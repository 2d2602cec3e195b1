"""Render differences.json as the README's compatibility section, or check it.

    python3 tests/compat/gen_readme.py           # check: exit 1 when README.md differs
    python3 tests/compat/gen_readme.py --write   # rewrite the section in README.md

The section is the text between ``<!-- compat:begin -->`` and ``<!-- compat:end -->``; only
that span is written. When the markers are absent, ``--write`` adds them under a
``## Compatibility with the original's clients`` heading placed just before the README's
``## Configuration`` section (or at the end when there is none).
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
README = os.path.join(REPO, "README.md")
sys.path.insert(0, HERE)

import corpus  # noqa: E402

BEGIN = "<!-- compat:begin -->"
END = "<!-- compat:end -->"
HEADING = "## Compatibility with the original's clients"
ANCHOR = "## Configuration"
TABLE = os.path.join(HERE, "differences.json")
ORDER = ("better", "extension", "incompatible")
MAX_LISTED = 8  # longer groups list their requests by name, and note, only
TITLES = {
    "better": "Deliberately better",
    "extension": "Compatible extensions",
    "incompatible": "Deliberate incompatibilities",
}


def cell(text):
    """text in a table's cell: no '|' of its own, one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def _named(name, steps):
    """The request's name, and its note where it has one: a long group's entry."""
    step = steps.get(name)
    return "`%s`" % name + (" (%s)" % step.note if step is not None and step.note else "")


def _request(name, steps):
    step = steps.get(name)
    if step is None:
        return "`%s`" % name
    text = "`%s`: `%s`" % (name, step.describe().replace("`", "'"))
    body = step.body_summary()
    if body:
        text += " `%s`" % body.replace("`", "'")
    if step.content_type() not in (None, "application/json"):
        text += " (Content-Type `%s`)" % step.content_type()
    if step.note:
        text += " — " + step.note
    return text


def render(table=None):
    if table is None:
        with open(TABLE, encoding="utf-8") as f:
            table = json.load(f)
    steps = corpus.by_name()
    entries = table.get("entries", [])
    counts = {c: sum(1 for e in entries if e.get("class") == c) for c in ORDER}
    identical = len(steps) - len(entries)
    out = [
        "The differential suite (`tests/compat/`, run by CTest as `integration_test_compat`) sends the",
        "same %d requests to taskd and to the original Python API itself (its unchanged code, on"
        % len(steps),
        "FastAPI with in-memory stand-ins for boto3's Table, Powertools and Mangum) and compares",
        "status, `Content-Type`, `Location`, `Allow` and the shape of every body; a 422 is compared",
        "item by item (`loc`, `type`, `msg`, `ctx`, `input`) with the original's answer translated from",
        "the pydantic v1 that Debian packages to the pydantic v2 that the original's unpinned",
        "requirements install today (`tests/compat/pydantic_v2.py`). Every difference is classed in",
        "`tests/compat/differences.json`; the suite fails on a difference the table does not list",
        "and on an entry that no longer matches, and this section is generated from the table",
        "(`python3 tests/compat/gen_readme.py --write`). The original's code is read, unchanged, from",
        "`../shared/seed/original-api` beside the clone, or from the folder `TASKD_ORIGINAL_API`",
        "names; where there is none, CTest reports the comparison as skipped.",
        "",
        "| identical | better | extension | incompatible | requests |",
        "|---|---|---|---|---|",
        "| %d | %d | %d | %d | %d |" % (identical, counts["better"], counts["extension"],
                                       counts["incompatible"], len(steps)),
    ]
    for cls in ORDER:
        group = [e for e in entries if e.get("class") == cls]
        if not group:
            continue
        # requests with the same explanation share a row
        rows = []
        index = {}
        for e in group:
            key = (e.get("differs", ""), e.get("why", ""))
            if key not in index:
                index[key] = len(rows)
                rows.append((key, []))
            rows[index[key]][1].append(e)
        out += ["", "**%s** (%d requests)" % (TITLES[cls], len(group)), "",
                "| request | original → taskd | what differs | why |", "|---|---|---|---|"]
        for (differs, why), members in rows:
            if len(members) > MAX_LISTED:
                # a long group: its requests by name, its status pairs once each
                reqs = "%d requests: %s" % (len(members), ", ".join(cell(_named(e["step"], steps))
                                                                    for e in members))
                statuses = "<br>".join(dict.fromkeys(e.get("status", "?") for e in members))
            else:
                reqs = "<br>".join(cell(_request(e["step"], steps)) for e in members)
                statuses = "<br>".join(e.get("status", "?") for e in members)
            out.append("| %s | %s | %s | %s |" % (reqs, statuses, cell(differs), cell(why)))
    return "\n".join(out) + "\n"


def splice(readme_text, section):
    """README text with the section between the markers (markers added when absent)."""
    block = BEGIN + "\n" + section + END
    if BEGIN in readme_text and END in readme_text:
        start = readme_text.index(BEGIN)
        end = readme_text.index(END, start) + len(END)
        return readme_text[:start] + block + readme_text[end:]
    insert = HEADING + "\n\n" + block + "\n\n"
    m = re.search(r"^%s\s*$" % re.escape(ANCHOR), readme_text, re.M)
    if m:
        return readme_text[:m.start()] + insert + readme_text[m.start():]
    return readme_text.rstrip("\n") + "\n\n" + insert


def current_section(readme_text):
    if BEGIN not in readme_text or END not in readme_text:
        return None
    start = readme_text.index(BEGIN) + len(BEGIN) + 1
    return readme_text[start:readme_text.index(END, start)]


def check(readme=README):
    """None when README.md holds what the table generates, else a message with a diff."""
    import difflib
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    want = render()
    have = current_section(text)
    if have is None:
        return ("README.md has no %s ... %s section; run python3 tests/compat/gen_readme.py --write"
                % (BEGIN, END))
    if have != want:
        d = difflib.unified_diff(have.splitlines(), want.splitlines(), "README.md", "generated",
                                 lineterm="")
        return ("README.md's compatibility section is not what differences.json generates; run "
                "python3 tests/compat/gen_readme.py --write\n" + "\n".join(d))
    return None


def main():
    if "--write" in sys.argv[1:]:
        with open(README, encoding="utf-8") as f:
            text = f.read()
        new = splice(text, render())
        if new != text:
            with open(README, "w", encoding="utf-8") as f:
                f.write(new)
            print("README.md: compatibility section written")
        else:
            print("README.md: compatibility section up to date")
        return 0
    problem = check()
    if problem:
        print(problem)
        return 1
    print("README.md: compatibility section up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
