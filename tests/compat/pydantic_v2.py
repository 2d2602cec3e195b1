"""The oracle's 422 answers translated from pydantic v1 to pydantic v2.

Debian's oracle runs the original on FastAPI 0.92 with pydantic **v1** (python3-pydantic
1.10): its 422 items are ``{"loc", "msg", "type"[, "ctx"]}`` in v1's words
(``value_error.missing`` / "field required"). The original's requirements are unpinned,
so installing it today gives FastAPI >= 0.100 with pydantic **v2**, whose items are
``{"type", "loc", "msg", "input"[, "ctx"]}`` in v2's words (``missing`` / "Field
required"). taskd speaks v2, so the suite compares taskd's items with the oracle's items
translated here:

v1 item (oracle)                         -> v2 item (expected of taskd)
  value_error.missing                    -> missing "Field required"; input: the enclosing
                                            object (null for a missing body)
  type_error.none.not_allowed            -> the wrong-type item of the field's kind (below)
  value_error.const, type_error (literal)-> literal_error "Input should be 'A', 'B' or 'C'",
                                            ctx {"expected": "'A', 'B' or 'C'"}
  type_error.dict at ["body"]            -> model_attributes_type "Input should be a valid
                                            dictionary or object to extract fields from"
  type_error.dict at a dict field        -> dict_type "Input should be a valid dictionary"
  type_error.integer, input a string     -> int_parsing "Input should be a valid integer,
                                            unable to parse string as an integer"
  type_error.integer, other input        -> int_type "Input should be a valid integer"
  type_error.str                         -> string_type "Input should be a valid string"
  value_error.jsondecode (ctx msg)       -> json_invalid "JSON decode error", input {},
                                            ctx {"error": msg} (FastAPI's own item)

Every v2 item has "input": the value at its loc, as FastAPI >= 0.100 reports it.

v1 also *accepts* some values that v2 refuses (lax coercions). For those the oracle's answer
is not a 422 at all, so the translation adds the v2 item, turning a 2xx into the 422 that the
original installed today gives:

  int field, a float with a fraction (1.5)    v1 truncates to 1     -> int_from_float "Input
                                                                       should be a valid integer,
                                                                       got a number with a
                                                                       fractional part"
  int field, a string with digits other than  v1 gives int(value):  -> int_parsing (v2 reads
  ASCII's ("\u0665", fullwidth "\uff15")     5                        ASCII digits alone)
  str field, a number or boolean (5, true)    v1 gives "5", "True"  -> string_type
  dict field, a list of pairs or a string     v1 gives dict(value)  -> dict_type
  that dict() takes ([], "", [["a", 1]])
  the body, a JSON array or string that       v1 validates          -> one model_attributes_type
  dict() takes ([], [["task_type", ...]])     dict(body)               item at ["body"]

These tables cover the value kinds the corpus sends; a v1 error type not listed here makes
the suite fail ("no v2 translation"), so a new corpus entry cannot slip through untranslated.
"""

import re

# The original's request models (models.py), field by field in declaration order:
# (name, kind, required, literal values). check_models() verifies this against models.py.
MODELS = {
    "CreatePayload": [
        ("task_type", "literal", True, ("TASK1", "TASK2", "TASK3")),
        ("data", "dict", True, None),
        ("ttl", "int", True, None),
    ],
    "UpdatePayload": [
        ("status", "literal", True, ("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED")),
        ("status_msg", "str", False, None),
    ],
}

MSG = {
    "missing": "Field required",
    "model_attributes_type": "Input should be a valid dictionary or object to extract fields from",
    "dict_type": "Input should be a valid dictionary",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_type": "Input should be a valid integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "string_type": "Input should be a valid string",
    "json_invalid": "JSON decode error",
}

_NOTHING = object()


class TranslationError(Exception):
    pass


def check_models(models_py_text):
    """Fail when the original's models.py no longer declares what MODELS assumes."""
    kinds = {"dict": "dict", "int": "int", "str": "str",
             "task_types": "literal", "status_types": "literal"}
    literals = {}
    for name, values in re.findall(r"^(\w+)\s*=\s*Literal\[(.*?)\]", models_py_text, re.M):
        literals[name] = tuple(re.findall(r'"([^"]*)"', values))
    problems = []
    for model, fields in MODELS.items():
        m = re.search(r"^class %s\(BaseModel\):\n((?:[ \t]+.*\n?)+)" % model, models_py_text, re.M)
        if not m:
            problems.append("class %s not found" % model)
            continue
        found = []
        for fname, ftype, default in re.findall(r"^\s+(\w+):\s*([\w\[\]]+)\s*(=.*)?$",
                                                m.group(1), re.M):
            kind = kinds.get(ftype, ftype)
            found.append((fname, kind, not default,
                          literals.get(ftype) if kind == "literal" else None))
        if found != fields:
            problems.append("%s declares %r, the translation assumes %r" % (model, found, fields))
    if problems:
        raise TranslationError("the original's models.py changed: " + "; ".join(problems))


def literal_expected(values):
    quoted = ["'%s'" % v for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _wrong_kind(kind, value, values):
    """The v2 item (type, msg, ctx) for a value of the wrong kind for a field."""
    if kind == "literal":
        expected = literal_expected(values)
        return "literal_error", "Input should be %s" % expected, {"expected": expected}
    if kind == "dict":
        return "dict_type", MSG["dict_type"], None
    if kind == "int":
        if isinstance(value, str):
            return "int_parsing", MSG["int_parsing"], None
        if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")) \
                and not value.is_integer():
            return "int_from_float", MSG["int_from_float"], None
        return "int_type", MSG["int_type"], None
    if kind == "str":
        return "string_type", MSG["string_type"], None
    raise TranslationError("unknown field kind %r" % kind)


def _v1_accepts_dict(value):
    try:
        dict(value)
    except (TypeError, ValueError):
        return False
    return True


def _int_of_other_digits(text):
    """Whether Python's int(), which v1 reads a string with, takes text and a digit of it is not
    ASCII: v2 refuses every such text (int_parsing), its digits being 0-9 alone."""
    try:
        int(text)
    except ValueError:
        return False
    return any(c.isdigit() and not c.isascii() for c in text)


def v1_only_coercion(kind, value):
    """True when pydantic v1 accepts value for a field of this kind and v2 refuses it."""
    if kind == "int":
        if isinstance(value, str):
            return _int_of_other_digits(value)
        return isinstance(value, float) and value == value and \
            value not in (float("inf"), float("-inf")) and not value.is_integer()
    if kind == "str":
        return isinstance(value, (int, float)) and not isinstance(value, str)
    if kind == "dict":
        return not isinstance(value, dict) and isinstance(value, (list, str)) and _v1_accepts_dict(value)
    return False


def _item(type_, loc, msg, input_, ctx=None):
    item = {"type": type_, "loc": list(loc), "msg": msg, "input": input_}
    if ctx is not None:
        item["ctx"] = ctx
    return item


def translate(model, v1_items, body, body_is_json, v1_status):
    """The v2 items the original installed today answers, or None for "not a 422".

    model: "CreatePayload" / "UpdatePayload"; v1_items: the oracle's detail list (None when
    the oracle did not answer 422); body: the request body as the endpoint saw it (the
    decoded JSON value when body_is_json, else the raw text; None for no body);
    v1_status: the oracle's status code.
    """
    fields = MODELS[model]
    items = list(v1_items or [])
    # A JSON decode error (or a missing body) is FastAPI's own single item.
    if len(items) == 1 and items[0].get("type") == "value_error.jsondecode":
        it = items[0]
        return [_item("json_invalid", it["loc"], MSG["json_invalid"], {},
                      {"error": (it.get("ctx") or {}).get("msg")})]
    if len(items) == 1 and items[0].get("loc") == ["body"] and \
            items[0].get("type") == "value_error.missing":
        return [_item("missing", ["body"], MSG["missing"], None)]
    # The body as a whole: v2 validates a model only from an object.
    if not (body_is_json and isinstance(body, dict)):
        if body is None and not items:
            return None
        if items or (body_is_json and _v1_accepts_dict(body)):
            return [_item("model_attributes_type", ["body"], MSG["model_attributes_type"], body)]
        return None
    by_field = {}
    for it in items:
        loc = it.get("loc") or []
        if len(loc) != 2 or loc[0] != "body" or loc[1] not in [f[0] for f in fields]:
            raise TranslationError("no v2 translation for a v1 item at loc %r: %r" % (loc, it))
        by_field.setdefault(loc[1], []).append(it)
    out = []
    for name, kind, required, values in fields:
        value = body.get(name, _NOTHING)
        for it in by_field.get(name, []):
            t1 = it.get("type")
            if t1 == "value_error.missing":
                out.append(_item("missing", ["body", name], MSG["missing"], body))
            elif t1 in ("type_error.none.not_allowed", "value_error.const", "type_error",
                        "type_error.dict", "type_error.integer", "type_error.str"):
                if value is _NOTHING:
                    raise TranslationError("v1 item %r for a field the body lacks" % (it,))
                t2, msg, ctx = _wrong_kind(kind, value, values)
                out.append(_item(t2, ["body", name], msg, value, ctx))
            else:
                raise TranslationError("no v2 translation for v1 error type %r: %r" % (t1, it))
        if name not in by_field and value is not _NOTHING and v1_only_coercion(kind, value):
            t2, msg, ctx = _wrong_kind(kind, value, values)
            out.append(_item(t2, ["body", name], msg, value, ctx))
    if not out:
        if v1_status == 422:
            raise TranslationError("a v1 422 with nothing translated: %r" % (items,))
        return None
    return out
