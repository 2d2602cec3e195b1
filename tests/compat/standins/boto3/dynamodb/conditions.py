"""Stand-in for boto3.dynamodb.conditions: the conditions the original builds.

``Attr(name).exists()``, ``Attr(name).eq(value)`` and ``And(a, b)`` (also ``&``), plus
``not_exists``, ``ne`` and ``Or`` for symmetry; the boto3 stand-in's Table evaluates them
against the stored item (``{}`` when there is none), as DynamoDB evaluates a
ConditionExpression.
"""


class ConditionBase:
    def __and__(self, other):
        return And(self, other)

    def __or__(self, other):
        return Or(self, other)

    def __invert__(self):
        return Not(self)

    def evaluate(self, item):
        raise NotImplementedError


class AttributeBase:
    def __init__(self, name):
        self.name = name


class Attr(AttributeBase):
    def exists(self):
        return AttributeExists(self)

    def not_exists(self):
        return AttributeNotExists(self)

    def eq(self, value):
        return Equals(self, value)

    def ne(self, value):
        return NotEquals(self, value)


class Key(AttributeBase):
    def eq(self, value):
        return Equals(self, value)


class AttributeExists(ConditionBase):
    def __init__(self, attr):
        self.attr = attr

    def evaluate(self, item):
        return self.attr.name in item


class AttributeNotExists(AttributeExists):
    def evaluate(self, item):
        return self.attr.name not in item


class Equals(ConditionBase):
    def __init__(self, attr, value):
        self.attr = attr
        self.value = value

    def evaluate(self, item):
        return self.attr.name in item and item[self.attr.name] == self.value


class NotEquals(Equals):
    def evaluate(self, item):
        return not Equals.evaluate(self, item)


class And(ConditionBase):
    def __init__(self, *values):
        self.values = values

    def evaluate(self, item):
        return all(v.evaluate(item) for v in self.values)


class Or(And):
    def evaluate(self, item):
        return any(v.evaluate(item) for v in self.values)


class Not(ConditionBase):
    def __init__(self, value):
        self.value = value

    def evaluate(self, item):
        return not self.value.evaluate(item)


def evaluate(condition, item):
    if not isinstance(condition, ConditionBase):
        raise TypeError("ConditionExpression: a boto3.dynamodb.conditions condition expected")
    return condition.evaluate(item)
