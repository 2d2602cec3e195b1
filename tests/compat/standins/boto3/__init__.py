"""Stand-in for boto3: ``boto3.resource("dynamodb").Table(name)`` kept in memory.

Only what the original's dynamo.py calls, answered as DynamoDB answers it:
- ``put_item``, ``get_item``, ``update_item`` (a SET UpdateExpression, a ConditionExpression
  built from ``boto3.dynamodb.conditions``; a failed condition raises
  ``table.meta.client.exceptions.ConditionalCheckFailedException``), ``scan(Limit=,
  ExclusiveStartKey=)`` in a hash order of the key, with ``LastEvaluatedKey`` whenever the
  page stopped at ``Limit`` (even when nothing follows, as DynamoDB does);
- numbers are stored and returned as ``decimal.Decimal`` in boto3's 38-digit context
  (a float is refused, a number that does not fit raises ``decimal.Inexact`` / ``Rounded``);
- DynamoDB's checks that a client of the original can reach: a key that is empty or over
  2,048 bytes, a starting key that is not a key of the table, an item over 400 KB
  (``ValidationException``, a ``ClientError``; a mistyped parameter raises
  ``ParamValidationError``, as botocore does before sending anything).
"""

import copy
import decimal
import hashlib
import re
import threading

from botocore.exceptions import ClientError, ParamValidationError

from .dynamodb import conditions as _conditions

__all__ = ["resource"]

# boto3.dynamodb.types.DYNAMODB_CONTEXT
DYNAMODB_CONTEXT = decimal.Context(
    Emin=-128, Emax=126, prec=38,
    traps=[decimal.Clamped, decimal.Overflow, decimal.Inexact, decimal.Rounded,
           decimal.Underflow])
MAX_ITEM_SIZE = 400 * 1024
MAX_HASH_KEY_SIZE = 2048

_tables = {}
_tables_lock = threading.Lock()


def resource(service_name, *args, **kwargs):
    if service_name != "dynamodb":
        raise NotImplementedError("boto3 stand-in: only the dynamodb resource exists")
    return _DynamoDBResource()


class _DynamoDBResource:
    def Table(self, name):  # noqa: N802 (boto3's spelling)
        with _tables_lock:
            if name not in _tables:
                _tables[name] = _TableData(name)
            return Table(_tables[name])


class _ConditionalCheckFailedException(ClientError):
    pass


class _Exceptions:
    ConditionalCheckFailedException = _ConditionalCheckFailedException
    ClientError = ClientError


class _Client:
    exceptions = _Exceptions()


class _Meta:
    client = _Client()


class _TableData:
    def __init__(self, name):
        self.name = name
        self.key = "id"  # the original's table: partition key "id" (S), no sort key
        self.items = {}
        self.lock = threading.Lock()


def _validation(op, message):
    return ClientError({"Error": {"Code": "ValidationException", "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, op)


def _serialize(value, path):
    """A Python value as DynamoDB stores it (boto3's TypeSerializer, then the service)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    if isinstance(value, (int, decimal.Decimal)):
        number = DYNAMODB_CONTEXT.create_decimal(value)
        return decimal.Decimal(str(number))
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict):
        return {str(k): _serialize(v, path + "." + str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize(v, path) for v in value]
    if isinstance(value, (set, frozenset)):
        return {_serialize(v, path) for v in value}
    raise TypeError("Unsupported type \"%s\" for value \"%s\"" % (type(value), value))


def _size(value):
    """DynamoDB's item size accounting (approximate where it does not matter here)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, decimal.Decimal):
        digits = len(value.as_tuple().digits)
        return (digits + 1) // 2 + 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(len(k.encode("utf-8")) + _size(v) + 1 for k, v in value.items())
    if isinstance(value, (list, set)):
        return 3 + sum(_size(v) + 1 for v in value)
    return 0


def _item_size(item):
    return sum(len(k.encode("utf-8")) + _size(v) for k, v in item.items())


def _order(key_value):
    return (hashlib.md5(key_value.encode("utf-8")).hexdigest(), key_value)


class Table:
    meta = _Meta()

    def __init__(self, data):
        self._data = data
        self.name = data.name
        self.table_name = data.name

    # -- keys ------------------------------------------------------------------
    def _key(self, op, key, what="Key"):
        if not isinstance(key, dict):
            raise ParamValidationError("Invalid type for parameter %s, value: %r, type: %s, "
                                       "valid types: <class 'dict'>" % (what, key, type(key)))
        if set(key) != {self._data.key}:
            raise _validation(op, "The provided key element does not match the schema")
        value = key[self._data.key]
        if not isinstance(value, str):
            raise _validation(op, "The provided key element does not match the schema")
        if value == "":
            raise _validation(op, "One or more parameter values are not valid. The AttributeValue "
                                  "for a key attribute cannot contain an empty string value. Key: id")
        if len(value.encode("utf-8")) > MAX_HASH_KEY_SIZE:
            raise _validation(op, "One or more parameter values were invalid: Size of hashkey has "
                                  "exceeded the maximum size limit of2048 bytes")
        return value

    def _check_size(self, op, item):
        if _item_size(item) > MAX_ITEM_SIZE:
            raise _validation(op, "Item size has exceeded the maximum allowed size")

    @staticmethod
    def _ok(extra=None):
        out = dict(extra or {})
        out["ResponseMetadata"] = {"HTTPStatusCode": 200}
        return out

    # -- operations ------------------------------------------------------------
    def put_item(self, Item, ConditionExpression=None, **kwargs):  # noqa: N803
        if not isinstance(Item, dict):
            raise ParamValidationError("Invalid type for parameter Item")
        item = _serialize(Item, "Item")
        key = self._key("PutItem", {self._data.key: item.get(self._data.key)})
        self._check_size("PutItem", item)
        with self._data.lock:
            current = self._data.items.get(key)
            if ConditionExpression is not None and \
                    not _conditions.evaluate(ConditionExpression, current or {}):
                raise _ConditionalCheckFailedException(
                    {"Error": {"Code": "ConditionalCheckFailedException",
                               "Message": "The conditional request failed"}}, "PutItem")
            self._data.items[key] = item
        return self._ok()

    def get_item(self, Key, ConsistentRead=False, **kwargs):  # noqa: N803
        key = self._key("GetItem", Key)
        with self._data.lock:
            item = self._data.items.get(key)
            if item is None:
                return self._ok()
            return self._ok({"Item": copy.deepcopy(item)})

    def update_item(self, Key, UpdateExpression, ExpressionAttributeNames=None,  # noqa: N803
                    ExpressionAttributeValues=None, ConditionExpression=None, **kwargs):
        key = self._key("UpdateItem", Key)
        names = ExpressionAttributeNames or {}
        values = _serialize(ExpressionAttributeValues or {}, "ExpressionAttributeValues")
        actions = _parse_set(UpdateExpression, names, values)
        with self._data.lock:
            current = self._data.items.get(key)
            if ConditionExpression is not None and \
                    not _conditions.evaluate(ConditionExpression, current or {}):
                raise _ConditionalCheckFailedException(
                    {"Error": {"Code": "ConditionalCheckFailedException",
                               "Message": "The conditional request failed"}}, "UpdateItem")
            item = copy.deepcopy(current) if current is not None else {self._data.key: key}
            for attr, value in actions:
                if attr == self._data.key:
                    raise _validation("UpdateItem", "One or more parameter values were invalid: "
                                      "Cannot update attribute id. This attribute is part of the key")
                item[attr] = value
            self._check_size("UpdateItem", item)
            self._data.items[key] = item
        return self._ok()

    def scan(self, Limit=None, ExclusiveStartKey=None, **kwargs):  # noqa: N803
        if Limit is not None and (not isinstance(Limit, int) or Limit < 1):
            raise ParamValidationError("Invalid value for parameter Limit")
        start = None
        if ExclusiveStartKey is not None:
            if not isinstance(ExclusiveStartKey, dict):
                raise ParamValidationError(
                    "Invalid type for parameter ExclusiveStartKey, value: %r, type: %s, "
                    "valid types: <class 'dict'>" % (ExclusiveStartKey, type(ExclusiveStartKey)))
            try:
                start = _order(self._key("Scan", ExclusiveStartKey, "ExclusiveStartKey"))
            except ClientError:
                raise _validation("Scan", "The provided starting key is invalid: The provided key "
                                          "element does not match the schema")
        with self._data.lock:
            ordered = sorted(self._data.items, key=_order)
            if start is not None:
                ordered = [k for k in ordered if _order(k) > start]
            page = ordered[:Limit] if Limit is not None else ordered
            out = {"Items": [copy.deepcopy(self._data.items[k]) for k in page],
                   "Count": len(page), "ScannedCount": len(page)}
            if Limit is not None and len(page) == Limit:
                out["LastEvaluatedKey"] = {self._data.key: page[-1]}
        return self._ok(out)


_SET_RE = re.compile(r"^\s*set\s+(.*)$", re.IGNORECASE | re.DOTALL)
_ACTION_RE = re.compile(r"^\s*(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)\s*$")


def _parse_set(expression, names, values):
    """A ``SET a=:x, #b=:y`` UpdateExpression as [(attribute, value)]."""
    m = _SET_RE.match(expression or "")
    if not m:
        raise _validation("UpdateItem", "Invalid UpdateExpression: %r" % (expression,))
    actions = []
    for part in m.group(1).split(","):
        a = _ACTION_RE.match(part)
        if not a:
            raise _validation("UpdateItem", "Invalid UpdateExpression: %r" % (expression,))
        attr, placeholder = a.groups()
        if attr.startswith("#"):
            if attr not in names:
                raise _validation("UpdateItem", "An expression attribute name used in the "
                                  "document path is not defined; attribute name: %s" % attr)
            attr = names[attr]
        if placeholder not in values:
            raise _validation("UpdateItem", "An expression attribute value used in expression "
                              "is not defined; attribute value: %s" % placeholder)
        actions.append((attr, values[placeholder]))
    return actions
