"""Compare the original's answers with taskd's, and check them against differences.json.

What is compared, request by request (the oracle's answer after the pydantic v1 → v2
translation of pydantic_v2.py; in the lines below "original" always means that
translated answer):
- the status code;
- Content-Type (lower case, spaces dropped; when either answer has a body), Location on
  201 and 307 (the server's own ``http://host:port`` dropped, each saved variable's value
  written ``{name}``, any other UUID ``{uuid}``), and Allow on 405 (as a set of methods);
- the body's kind (empty, JSON, text), and for JSON its *shape*: keys and value types,
  recursively; a list by its length and the merged shape of its elements (so that the
  same tasks in another order compare equal); values only for ``detail`` strings and for
  the fields a step names (``task_type``, ``status``, ``status_msg`` of a task);
- for a 422, each item of ``detail`` in order: its ``loc``, its keys, and its ``type``,
  ``msg``, ``ctx`` and ``input`` values.

Every difference is one line of text, deterministic from run to run. A request whose status
pair and lines are not exactly those its entry in differences.json records fails the suite,
and so does an entry whose request no longer differs, or differs otherwise.
"""

import difflib
import email.message
import json
import os
import re
from urllib.parse import quote

import pydantic_v2

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "differences.json")
CLASSES = ("better", "extension", "incompatible")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class View:
    """An answer reduced to what is compared."""

    def __init__(self, status, ctype, location, allow, kind, value, translated=False):
        self.status = status
        self.ctype = ctype
        self.location = location
        self.allow = allow
        self.kind = kind  # "none" (no answer), "empty", "json", "text"
        self.value = value  # the decoded JSON, or the text
        self.translated = translated


def _norm_location(value, base, variables):
    if value is None:
        return None
    if value.startswith(base):
        value = value[len(base):]
    for name, v in sorted(variables.items(), key=lambda kv: -len(kv[1])):
        for form in {v, quote(v, safe="")}:
            value = value.replace(form, "{%s}" % name)
    return UUID_RE.sub("{uuid}", value)


def view(answer, base, variables):
    if answer.status is None:
        return View(None, None, None, None, "none", answer.error)
    ctype = answer.header("content-type")
    ctype = ctype.lower().replace(" ", "") if ctype is not None else None
    location = _norm_location(answer.header("location"), base, variables)
    allow = answer.header("allow")
    allow = sorted({m.strip().upper() for m in allow.split(",") if m.strip()}) \
        if allow is not None else None
    if not answer.body:
        return View(answer.status, ctype, location, allow, "empty", None)
    try:
        return View(answer.status, ctype, location, allow, "json",
                    json.loads(answer.body.decode("utf-8")))
    except (ValueError, UnicodeDecodeError):
        return View(answer.status, ctype, location, allow, "text",
                    answer.body.decode("utf-8", "replace"))


def request_body_as_seen(step):
    """(value, is_json): the body as FastAPI hands it to validation."""
    raw = step.body_bytes()
    if not raw:
        return None, False
    ctype = step.content_type()
    is_json = False
    if not ctype:
        is_json = True
    else:
        message = email.message.Message()
        message["content-type"] = ctype
        if message.get_content_maintype() == "application":
            sub = message.get_content_subtype()
            is_json = sub == "json" or sub.endswith("+json")
    if is_json:
        try:
            return json.loads(raw), True
        except (ValueError, UnicodeDecodeError):
            return None, False
    return raw.decode("utf-8", "replace"), False


def translate_view(step, v):
    """The oracle's answer as the original installed today (pydantic v2) gives it."""
    model = step.model()
    if model is None or v.status is None:
        return v
    body, is_json = request_body_as_seen(step)
    v1_items = None
    if v.status == 422 and v.kind == "json" and isinstance(v.value, dict) \
            and isinstance(v.value.get("detail"), list):
        v1_items = v.value["detail"]
    elif v.status >= 300:
        return v  # a redirect, a 405, a 500: pydantic never had its say
    items = pydantic_v2.translate(model, v1_items, body, is_json, v.status)
    if items is None:
        return v
    return View(422, "application/json", None, None, "json", {"detail": items}, translated=True)


# -- the diff ----------------------------------------------------------------------------

def _j(value, limit=90):
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…(%d chars)" % len(text)


def _type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "array"
    return "object"


def _shape(value):
    """{"types": set, "keys": {k: shape}, "items": shape or None, "present": True}."""
    t = _type(value)
    shape = {"types": {t}, "keys": None, "items": None}
    if t == "object":
        shape["keys"] = {k: _shape(v) for k, v in value.items()}
    elif t == "array":
        shape["items"] = _merge_all([_shape(v) for v in value])
    return shape


def _merge(a, b):
    if a is None:
        return b
    if b is None:
        return a
    out = {"types": a["types"] | b["types"], "keys": None, "items": _merge(a["items"], b["items"])}
    if a["keys"] is not None or b["keys"] is not None:
        ka, kb = a["keys"] or {}, b["keys"] or {}
        keys = {}
        for k in set(ka) | set(kb):
            sa, sb = ka.get(k), kb.get(k)
            if a["keys"] is not None and sa is None:
                sa = {"types": {"absent"}, "keys": None, "items": None}
            if b["keys"] is not None and sb is None:
                sb = {"types": {"absent"}, "keys": None, "items": None}
            keys[k] = _merge(sa, sb)
        out["keys"] = keys
    return out


def _merge_all(shapes):
    out = None
    for s in shapes:
        out = _merge(out, s)
    return out


def _types(shape):
    return "|".join(sorted(shape["types"]))


def _shape_diff(path, a, b, lines):
    if a is None or b is None:
        if a is not b:
            lines.append("%s: original %s, taskd %s" % (path, "no items" if a is None else "items",
                                                        "no items" if b is None else "items"))
        return
    if a["types"] != b["types"]:
        lines.append("%s: original %s, taskd %s" % (path, _types(a), _types(b)))
    if a["keys"] is not None and b["keys"] is not None:
        for k in sorted(set(a["keys"]) | set(b["keys"])):
            sub = "%s.%s" % (path, k)
            if k not in b["keys"]:
                lines.append("%s: only the original has it (%s)" % (sub, _types(a["keys"][k])))
            elif k not in a["keys"]:
                lines.append("%s: only taskd has it (%s)" % (sub, _types(b["keys"][k])))
            else:
                _shape_diff(sub, a["keys"][k], b["keys"][k], lines)
    if a["items"] is not None or b["items"] is not None:
        if a["items"] is not None and b["items"] is not None:
            _shape_diff(path + "[]", a["items"], b["items"], lines)


def _list_lengths(path, a, b, lines):
    """Lengths of lists at the same places (shapes merge them away)."""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            lines.append("%s: original %d items, taskd %d items" % (path, len(a), len(b)))
    elif isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) & set(b)):
            if k != "detail":
                _list_lengths("%s.%s" % (path, k), a[k], b[k], lines)


def _loc(item):
    loc = item.get("loc") if isinstance(item, dict) else None
    return ".".join(str(p) for p in loc) if isinstance(loc, list) else _j(loc)


def _detail_diff(a, b, lines):
    """422 items: locs in order, then each common loc's keys and values."""
    la, lb = [_loc(i) for i in a], [_loc(i) for i in b]
    if la != lb:
        lines.append("detail locs: original [%s], taskd [%s]" % (", ".join(la), ", ".join(lb)))
    for loc in [x for x in la if x in lb]:
        ia, ib = a[la.index(loc)], b[lb.index(loc)]
        if not isinstance(ia, dict) or not isinstance(ib, dict):
            continue
        if set(ia) != set(ib):
            lines.append("detail[%s] keys: original %s, taskd %s" % (loc, sorted(ia), sorted(ib)))
        for field in ("type", "msg", "ctx", "input"):
            if field in ia and field in ib and ia[field] != ib[field]:
                lines.append("detail[%s].%s: original %s, taskd %s"
                             % (loc, field, _j(ia[field]), _j(ib[field])))


def diff(step, o, t):
    """The lines that tell the two (normalised) answers apart; [] when they agree."""
    lines = []
    if o.status != t.status:
        lines.append("status: original %s, taskd %s" % (o.status, t.status))
    if o.kind == "none" or t.kind == "none":
        if o.kind != t.kind:
            lines.append("answer: original %s, taskd %s" % ("none" if o.kind == "none" else "yes",
                                                            "none" if t.kind == "none" else "yes"))
        return lines
    if o.ctype != t.ctype and (o.kind != "empty" or t.kind != "empty"):
        # (a 204 or a 307 has no content to type: FastAPI labels its 204 JSON anyway)
        lines.append("content-type: original %s, taskd %s" % (_j(o.ctype), _j(t.ctype)))
    if o.status in (201, 307) or t.status in (201, 307):
        if o.location != t.location:
            lines.append("location: original %s, taskd %s" % (_j(o.location), _j(t.location)))
    if o.status == 405 or t.status == 405:
        if o.allow != t.allow:
            lines.append("allow: original %s, taskd %s" % (_j(o.allow), _j(t.allow)))
    if not step.shape:
        return lines
    if o.kind != t.kind:
        lines.append("body: original %s, taskd %s" % (o.kind, t.kind))
        return lines
    if o.kind == "text":
        if o.value != t.value:
            lines.append("body: original %s, taskd %s" % (_j(o.value, 60), _j(t.value, 60)))
        return lines
    if o.kind != "json":
        return lines
    a, b = o.value, t.value
    details = isinstance(a, dict) and isinstance(b, dict) and \
        isinstance(a.get("detail"), list) and isinstance(b.get("detail"), list)
    if details:  # 422 items are compared item by item below, not by merged shape
        _shape_diff("body", _shape({k: v for k, v in a.items() if k != "detail"}),
                    _shape({k: v for k, v in b.items() if k != "detail"}), lines)
    else:
        _shape_diff("body", _shape(a), _shape(b), lines)
    _list_lengths("body", a, b, lines)
    if isinstance(a, dict) and isinstance(b, dict):
        da, db = a.get("detail"), b.get("detail")
        if isinstance(da, str) and isinstance(db, str) and da != db:
            lines.append("body.detail: original %s, taskd %s" % (_j(da), _j(db)))
        if isinstance(da, list) and isinstance(db, list):
            _detail_diff(da, db, lines)
        for key in step.values:
            if key in a and key in b and a[key] != b[key]:
                lines.append("body.%s: original %s, taskd %s" % (key, _j(a[key]), _j(b[key])))
    return lines


def compare_runs(original_run, taskd_run, original_base, taskd_base, original_vars, taskd_vars):
    """{step name: {"status": "original → taskd", "diff": [lines]}} for every step whose
    answers differ, in corpus order."""
    out = {}
    for (step, oa), (step2, ta) in zip(original_run, taskd_run):
        assert step is step2
        o = translate_view(step, view(oa, original_base, original_vars))
        t = view(ta, taskd_base, taskd_vars)
        lines = diff(step, o, t)
        if lines:
            out[step.name] = {"status": "%s → %s" % (o.status, t.status), "diff": lines}
    return out


# -- the classification table --------------------------------------------------------------

def load_table(path=TABLE):
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    return table


def table_problems(table, step_names):
    """Problems with the table itself (not with the answers)."""
    problems = []
    seen = set()
    for i, e in enumerate(table.get("entries", [])):
        where = "differences.json entry %d (%s)" % (i, e.get("step"))
        for key in ("step", "class", "status", "differs", "why", "diff"):
            if not e.get(key):
                problems.append("%s: no %r" % (where, key))
        if e.get("class") not in CLASSES:
            problems.append("%s: class %r is not one of %s" % (where, e.get("class"), ", ".join(CLASSES)))
        if e.get("step") in seen:
            problems.append("%s: a second entry for the same request" % where)
        seen.add(e.get("step"))
        if e.get("step") not in step_names:
            problems.append("STALE %s: no request of that name in the corpus" % where)
    return problems


def check(observed, table, step_names):
    """Every problem, as text: unexplained, changed and stale differences, bad entries."""
    problems = table_problems(table, step_names)
    entries = {e.get("step"): e for e in table.get("entries", [])}
    for name in step_names:
        seen = observed.get(name)
        entry = entries.get(name)
        if seen and entry is None:
            problems.append("UNEXPLAINED %s (%s): the answers differ and differences.json has no "
                            "entry:\n%s" % (name, seen["status"],
                                            "\n".join("    " + x for x in seen["diff"])))
        elif entry is not None and not seen:
            problems.append("STALE %s: differences.json classes it %r, but the answers no longer differ"
                            % (name, entry.get("class")))
        elif entry is not None:
            want = ["status " + str(entry.get("status"))] + list(entry.get("diff") or [])
            got = ["status " + seen["status"]] + seen["diff"]
            if want != got:
                udiff = difflib.unified_diff(want, got, "differences.json", "observed", lineterm="")
                problems.append("CHANGED %s: the answers differ otherwise than differences.json "
                                "says:\n%s" % (name, "\n".join("    " + x for x in udiff)))
    return problems


def draft(observed, table, step_names):
    """The table with each entry's diff set to what was observed (new ones class TODO)."""
    old = {e["step"]: e for e in table.get("entries", []) if e.get("step")}
    entries = []
    for name in step_names:
        if name not in observed:
            continue
        e = dict(old.get(name) or {"step": name, "class": "TODO", "differs": "", "why": ""})
        e["status"] = observed[name]["status"]
        e["diff"] = observed[name]["diff"]
        entries.append({k: e[k] for k in ("step", "class", "status", "differs", "why", "diff")
                        if k in e})
    out = {k: v for k, v in table.items() if k != "entries"}
    out["entries"] = entries
    return out
