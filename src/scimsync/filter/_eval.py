"""Compile filter nodes into predicates over models and SCIM JSON objects.

A filter is turned once into a tree of closures (per resource type and schema table):
attribute names are resolved against the schema table, values converted to the
attribute's type, and the case folding decided, so testing a resource does no lookups
it could have done beforehand.

Rules (RFC 7644 §3.4.2.2, and where the RFC is silent):

- A multi-valued attribute matches when any of its values does; comparing a
  multi-valued complex attribute compares its ``value`` sub-attribute.
- ``a ne v`` is ``not (a eq v)``: true when ``a`` has no value.
- ``a eq null`` is ``not (a pr)``; ``a ne null`` is ``a pr``; other operators never
  match ``null``.
- A value that cannot be read as the attribute's type (``active gt "x"``, a dateTime
  that is not one) matches nothing; evaluation never raises.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs

from ..models import ENTERPRISE_USER_SCHEMA, Resource, User, scim_name
from ..schema import AttributeSpec, SchemaTable

if TYPE_CHECKING:
    from ._nodes import AttrPath

Getter = Callable[[Any], Any]
Predicate = Callable[[Any], bool]

_MISSING: Any = object()
_SEQUENCES = (list, tuple)


# -- reading attributes -----------------------------------------------------------------------

# Per attrs class: lower-cased SCIM attribute name -> Python field name (None: not attrs).
_FIELD_MAPS: dict[type, dict[str, str] | None] = {}


def _field_map(cls: type) -> dict[str, str] | None:
    fields: dict[str, str] | None = None
    if attrs.has(cls):
        # ``extra`` and ``extensions`` are containers, never SCIM attributes.
        fields = {
            scim_name(f.name).lower(): f.name
            for f in attrs.fields(cls)
            if f.name not in ("extra", "extensions")
        }
    _FIELD_MAPS[cls] = fields
    return fields


def lookup(mapping: Mapping[Any, Any], name: str, folded: str) -> Any:
    """The value of key ``name`` in ``mapping``, keys compared case-insensitively."""
    value = mapping.get(name, _MISSING)
    if value is not _MISSING:
        return value
    for key, found in mapping.items():
        if type(key) is str and key.lower() == folded:
            return found
    return None


def schemas_of(resource: Resource) -> list[str]:
    """The ``schemas`` of a model, as :func:`scimsync.to_scim` writes them."""
    schemas = [resource.schema_urn]
    if isinstance(resource, User) and resource.enterprise is not None:
        schemas.append(ENTERPRISE_USER_SCHEMA)
    schemas.extend(resource.extensions)
    return schemas


def attribute_getter(name: str) -> Getter:
    """A function reading attribute ``name`` of a model or SCIM object (None if unset)."""
    folded = name.lower()

    def get(obj: Any) -> Any:
        if type(obj) is dict:
            value = obj.get(name, _MISSING)
            return lookup(obj, name, folded) if value is _MISSING else value
        cls = type(obj)
        fields = _FIELD_MAPS.get(cls, _MISSING)
        if fields is _MISSING:
            fields = _field_map(cls)
        if fields is None:
            return lookup(obj, name, folded) if isinstance(obj, Mapping) else None
        field = fields.get(folded)
        if field is not None:
            return getattr(obj, field)
        if folded == "schemas" and isinstance(obj, Resource):
            return schemas_of(obj)
        extra = getattr(obj, "extra", None)
        return lookup(extra, name, folded) if isinstance(extra, Mapping) and extra else None

    return get


def extension_getter(urn: str) -> Getter:
    """A function reading the extension object ``urn`` of a resource (None if absent)."""
    folded = urn.lower()
    enterprise = folded == ENTERPRISE_USER_SCHEMA.lower()

    def get(obj: Any) -> Any:
        if type(obj) is dict or (isinstance(obj, Mapping) and not attrs.has(type(obj))):
            return lookup(obj, urn, folded)
        if enterprise and isinstance(obj, User):
            return obj.enterprise
        if isinstance(obj, Resource):
            return obj.extension(urn)
        return None

    return get


def chain(steps: list[Getter]) -> Getter:
    """Read through ``steps``; values of multi-valued steps are gathered into a list."""
    if len(steps) == 1:
        return steps[0]

    def read(obj: Any) -> Any:
        value = obj
        for step in steps:
            if type(value) in _SEQUENCES:
                gathered: list[Any] = []
                for item in value:
                    found = step(item)
                    if type(found) in _SEQUENCES:
                        gathered.extend(found)
                    elif found is not None:
                        gathered.append(found)
                value = gathered or None
            else:
                value = step(value)
            if value is None:
                return None
        return value

    return read


def is_present(value: Any) -> bool:
    """RFC 7644 ``pr``: a non-empty value, or a complex value with a non-empty part."""
    if value is None:
        return False
    kind = type(value)
    if kind is str:
        return bool(value)
    if kind is bool or kind is int or kind is float:
        return True
    if kind in _SEQUENCES:
        return any(is_present(item) for item in value)
    if isinstance(value, Mapping):
        return any(is_present(item) for item in value.values())
    if attrs.has(kind):
        return any(is_present(getattr(value, f.name)) for f in attrs.fields(kind))
    return True


# -- compile context --------------------------------------------------------------------------


@attrs.frozen
class Context:
    """What a filter is compiled against: the schema table, resource type and scope.

    Inside a value filter (``emails[...]``), ``parent`` is the spec of the attribute
    whose values are tested and paths name its sub-attributes.
    """

    schema: SchemaTable
    resource_type: str | None
    core_urns: frozenset[str]
    extension_urns: frozenset[str]
    inside_value_filter: bool = False
    parent: AttributeSpec | None = None

    @classmethod
    def root(cls, schema: SchemaTable, resource_type: str | None) -> Context:
        """The context of a whole-resource filter."""
        rtype = schema.resource_type(resource_type) if resource_type else None
        if rtype is not None:
            core = frozenset({rtype.schema.lower()})
            extensions = frozenset(urn.lower() for urn in rtype.extensions)
        else:
            core = frozenset(t.schema.lower() for t in schema.resource_types.values())
            extensions = frozenset(schema.schemas) - core
        return cls(schema, resource_type, core, extensions)

    def within(self, path: AttrPath) -> Context:
        """The context of the value filter of ``path[...]``."""
        spec, _ = self.resolve(path)
        return attrs.evolve(self, inside_value_filter=True, parent=spec)

    def resolve(self, path: AttrPath) -> tuple[AttributeSpec | None, list[Getter]]:
        """The spec of ``path`` (None when the schema does not know it) and its readers."""
        if self.inside_value_filter:
            # Inside brackets, names are sub-attributes of the filtered attribute.
            spec = self.parent.sub(path.name) if self.parent is not None else None
            steps = [attribute_getter(spec.name if spec else path.name)]
            if path.sub is not None:
                sub = spec.sub(path.sub) if spec is not None else None
                steps.append(attribute_getter(sub.name if sub else path.sub))
                spec = sub
            return spec, steps
        steps = []
        if path.urn is not None:
            urn = path.urn.lower()
            whole = f"{urn}:{path.name.lower()}"
            if path.sub is None and whole in self.extension_urns:
                # The path names a whole extension ("urn:...:enterprise:2.0:User").
                return self._spec(f"{path.urn}:{path.name}"), [
                    extension_getter(f"{path.urn}:{path.name}")
                ]
            if urn not in self.core_urns:
                steps.append(extension_getter(path.urn))
        spec = self._spec(str(path))
        head = self._spec(f"{path.urn}:{path.name}" if path.urn else path.name)
        steps.append(attribute_getter(head.name if head else path.name))
        if path.sub is not None:
            steps.append(attribute_getter(spec.name if spec else path.sub))
        return spec, steps

    def _spec(self, text: str) -> AttributeSpec | None:
        if self.resource_type is None:
            return None
        return self.schema.resolve(self.resource_type, text)


def resource_type_of(resource: Any, schema: SchemaTable) -> str | None:
    """The resource type of a model (its class) or SCIM object (``schemas``, ``meta``)."""
    name = getattr(type(resource), "resource_type_name", None)
    if name:
        return str(name)
    if not isinstance(resource, Mapping):
        return None
    schemas = lookup(resource, "schemas", "schemas")
    if type(schemas) in _SEQUENCES:
        for urn in schemas:
            if type(urn) is str:
                for rtype in schema.resource_types.values():
                    if rtype.schema.lower() == urn.lower():
                        return rtype.name
    meta = lookup(resource, "meta", "meta")
    if isinstance(meta, Mapping):
        found = lookup(meta, "resourceType", "resourcetype")
        if type(found) is str and schema.resource_type(found) is not None:
            return found
    return None


# -- values -----------------------------------------------------------------------------------

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def to_datetime(value: Any) -> datetime | None:
    """An xsd:dateTime as an aware datetime (no offset means UTC), or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if type(value) is not str:
        return None
    match = _DATETIME_RE.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if match[9]:
        offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
        try:
            tz = timezone(offset if match[9] == "+" else -offset)
        except ValueError:
            return None
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None


def format_datetime(value: datetime) -> str:
    """A datetime as SCIM writes it (``Z`` for UTC)."""
    if value.tzinfo is not None and value.utcoffset() == timedelta(0):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def to_number(value: Any) -> int | float | None:
    """A JSON number (or a numeric string) as a number, or None. Booleans are not numbers."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        try:
            return int(value)
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_bool(value: Any) -> bool | None:
    """A boolean, or the strings ``"true"``/``"false"`` in any case, as a bool; else None."""
    if value is True or value is False:
        return value
    if type(value) is str:
        folded = value.strip().lower()
        if folded == "true":
            return True
        if folded == "false":
            return False
    return None


_read_value = attribute_getter("value")


def to_text(value: Any) -> str | None:
    """A value as the string a filter compares it as (complex values: their ``value``)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return json.dumps(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Mapping) or attrs.has(kind):
        inner = _read_value(value)
        if inner is None or isinstance(inner, Mapping) or attrs.has(type(inner)):
            return None
        return to_text(inner)
    return None


def _scalar(value: Any) -> Any:
    # A complex value compares as its "value" sub-attribute (RFC 7644 §3.4.2.2).
    if isinstance(value, Mapping) or attrs.has(type(value)):
        return _read_value(value)
    return value


# -- predicates -------------------------------------------------------------------------------


def _never(_: Any) -> bool:
    return False


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _kind(spec: AttributeSpec | None, value: Any) -> str:
    if spec is not None and spec.complex:
        spec = spec.sub("value")
    if spec is not None:
        if spec.type == "boolean":
            return "boolean"
        if spec.type in ("integer", "decimal"):
            return "number"
        if spec.type == "dateTime":
            return "dateTime"
        return "string"
    if value is True or value is False:
        return "boolean"
    if type(value) in (int, float):
        return "number"
    return "string"


def _case_exact(spec: AttributeSpec | None) -> bool:
    if spec is not None and spec.complex:
        spec = spec.sub("value")
    if spec is None:
        return False
    return spec.case_exact or spec.type == "binary"


def _string_test(op: str, needle: str, case_exact: bool) -> Callable[[Any], bool]:
    if not case_exact:
        needle = needle.casefold()
    if op == "co":
        check: Callable[[str], bool] = lambda text: needle in text  # noqa: E731
    elif op == "sw":
        check = lambda text: text.startswith(needle)  # noqa: E731
    elif op == "ew":
        check = lambda text: text.endswith(needle)  # noqa: E731
    else:
        compare = _ORDER[op]
        check = lambda text: compare(text, needle)  # noqa: E731

    if case_exact:

        def test(value: Any) -> bool:
            text = value if type(value) is str else to_text(value)
            return text is not None and check(text)

    else:

        def test(value: Any) -> bool:
            text = value if type(value) is str else to_text(value)
            return text is not None and check(text.casefold())

    return test


def _value_test(kind: str, op: str, value: Any, case_exact: bool) -> Callable[[Any], bool] | None:
    """A test of one attribute value against the filter's ``value``, or None if none can match."""
    if kind == "string":
        text = to_text(value)
        return None if text is None else _string_test(op, text, case_exact)
    if kind == "boolean":
        expected = to_bool(value)
        if expected is None or op != "eq":
            return None
        return lambda actual: to_bool(_scalar(actual)) is expected
    if kind == "number":
        number = to_number(value)
        if number is None or op not in _ORDER:
            return None
        compare = _ORDER[op]

        def test_number(actual: Any) -> bool:
            found = to_number(_scalar(actual))
            return found is not None and compare(found, number)

        return test_number
    # dateTime: ordered as instants; co/sw/ew look at the text as SCIM writes it.
    if op not in _ORDER:
        text = to_text(value)
        return None if text is None else _string_test(op, text, True)
    instant = to_datetime(value)
    if instant is None:
        return None
    compare = _ORDER[op]

    def test_datetime(actual: Any) -> bool:
        found = to_datetime(_scalar(actual))
        return found is not None and compare(found, instant)

    return test_datetime


def comparison(ctx: Context, path: AttrPath, op: str, value: Any) -> Predicate:
    """The predicate of ``path op value``."""
    spec, steps = ctx.resolve(path)
    read = chain(steps)
    if value is None:
        if op == "eq":
            return lambda resource: not is_present(read(resource))
        if op == "ne":
            return lambda resource: is_present(read(resource))
        return _never
    if op == "ne":
        equal = comparison(ctx, path, "eq", value)
        return lambda resource: not equal(resource)
    test = _value_test(_kind(spec, value), op, value, _case_exact(spec))
    if test is None:
        return _never

    def predicate(resource: Any) -> bool:
        found = read(resource)
        if found is None:
            return False
        if type(found) in _SEQUENCES:
            return any(test(item) for item in found if item is not None)
        return test(found)

    return predicate


def present(ctx: Context, path: AttrPath) -> Predicate:
    """The predicate of ``path pr``."""
    _, steps = ctx.resolve(path)
    read = chain(steps)
    return lambda resource: is_present(read(resource))


def value_path(ctx: Context, path: AttrPath, inner: Predicate) -> Predicate:
    """The predicate of ``path[inner]``: some value of ``path`` satisfies ``inner``."""
    _, steps = ctx.resolve(path)
    read = chain(steps)

    def predicate(resource: Any) -> bool:
        found = read(resource)
        if found is None:
            return False
        if type(found) in _SEQUENCES:
            return any(inner(item) for item in found if item is not None)
        return inner(found)

    return predicate


def all_of(predicates: list[Predicate]) -> Predicate:
    """True when every predicate is (evaluated left to right, stopping at the first false)."""
    if len(predicates) == 2:
        first, second = predicates
        return lambda resource: first(resource) and second(resource)

    def every(resource: Any) -> bool:
        return all(predicate(resource) for predicate in predicates)

    return every


def any_of(predicates: list[Predicate]) -> Predicate:
    """True when some predicate is (evaluated left to right, stopping at the first true)."""
    if len(predicates) == 2:
        first, second = predicates
        return lambda resource: first(resource) or second(resource)

    def some(resource: Any) -> bool:
        return any(predicate(resource) for predicate in predicates)

    return some
