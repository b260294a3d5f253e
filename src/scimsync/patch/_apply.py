"""Applying PATCH operations (RFC 7644 §3.5.2) to a resource.

The work happens on a copy of the resource's SCIM JSON, so a failing operation leaves
nothing half-done: either every operation applies or the caller gets a
:class:`~scimsync.errors.PatchError` and the resource as it was. Paths are resolved
through the schema table and dictionary keys only, never ``getattr``, so no text can
reach anything but SCIM attributes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar, overload

import attrs

from ..codec import converter, from_scim, to_scim
from ..errors import (
    InvalidPathError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    PatchError,
    ResourceValidationError,
)
from ..filter import And, AttrPath, Comparison, Filter
from ..filter._eval import format_datetime, lookup, resource_type_of, to_bool, to_datetime
from ..filter._nodes import compile_value_filter
from ..models import PatchOp, PatchOperation, Resource
from ..schema import CORE_SCHEMAS, AttributeSpec, SchemaTable
from ._identity import identity, identity_fields
from ._path import Path, parse_path

__all__ = ["apply_patch"]

R = TypeVar("R", bound=Resource)

_OPS = ("add", "remove", "replace")
_MISSING: Any = object()


# -- reading the operations -------------------------------------------------------------------


@attrs.frozen
class _Operation:
    op: str
    path: Path | None
    value: Any  # JSON-ready; _MISSING when the operation has none


def _jsonable(value: Any, where: str) -> Any:
    """The operation's value as plain JSON (models converted, tuples as lists)."""
    if value is None or type(value) in (str, bool, int):
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise InvalidValueError(f"{where}: {value!r} is not a JSON number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValueError(f"{where}: object keys must be strings, got {key!r}")
            out[key] = _jsonable(item, where)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, where) for item in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if attrs.has(type(value)):
        return _jsonable(converter.unstructure(value), where)
    # Subclasses of the JSON types (str and int enums): their plain value.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _jsonable(float(value), where)
    raise InvalidValueError(f"{where}: {type(value).__name__} is not a JSON value")


def _read_operations(operations: Any) -> list[_Operation]:
    if isinstance(operations, PatchOp):
        operations = operations.operations
    elif isinstance(operations, Mapping):
        # A whole PatchOp body: {"schemas": [...], "Operations": [...]}.
        found = lookup(operations, "Operations", "operations")
        if found is None:
            raise InvalidValueError("a PATCH body needs 'Operations'")
        operations = found
    if isinstance(operations, (str, bytes)) or not isinstance(operations, Iterable):
        raise InvalidValueError("PATCH operations must be a list of operations")
    return [_read_operation(item, index) for index, item in enumerate(operations)]


def _read_operation(item: Any, index: int) -> _Operation:
    where = f"Operations[{index}]"
    if isinstance(item, PatchOperation):
        op, path, value = item.op, item.path, item.value
        value = _MISSING if value is None else value
    elif isinstance(item, Mapping):
        op = lookup(item, "op", "op")
        path = lookup(item, "path", "path")
        value = _MISSING
        for key in item:
            if isinstance(key, str) and key.lower() == "value":
                value = item[key]
    else:
        raise InvalidValueError(f"{where}: expected an operation object, got {item!r:.60}")
    if not isinstance(op, str) or op.lower() not in _OPS:
        raise InvalidValueError(f"{where}: 'op' must be add, remove or replace, got {op!r:.60}")
    if path is not None and not isinstance(path, str):
        raise InvalidPathError(f"{where}: 'path' must be a string, got {path!r:.60}")
    parsed = None
    if path is not None:
        try:
            parsed = parse_path(path)
        except InvalidPathError as exc:
            raise InvalidPathError(f"{where}: {exc.detail}") from None
    if value is not _MISSING:
        value = _jsonable(value, where)
    return _Operation(op.lower(), parsed, value)


# -- where an operation lands -----------------------------------------------------------------


@attrs.frozen
class _Target:
    """A resolved path: which object holds the attribute, and which part of it is meant."""

    text: str
    extension: str | None  # the extension URN holding the attribute; None: the resource
    name: str | None  # the attribute; None when the path is a whole extension
    spec: AttributeSpec | None
    sub: str | None = None
    sub_spec: AttributeSpec | None = None
    value_filter: Filter | None = None
    attribute: AttrPath | None = None

    @property
    def multi_valued(self) -> bool:
        return self.spec is not None and self.spec.multi_valued


class _Patcher:
    def __init__(self, schema: SchemaTable, resource_type: str | None) -> None:
        self.schema = schema
        self.resource_type = resource_type
        rtype = schema.resource_type(resource_type) if resource_type else None
        self.known = rtype is not None
        if rtype is not None:
            self.core = {rtype.schema.lower()}
            self.extensions = {urn.lower(): urn for urn in rtype.extensions}
        else:
            self.core = {t.schema.lower() for t in schema.resource_types.values()}
            self.extensions = {
                d.id.lower(): d.id for key, d in schema.schemas.items() if key not in self.core
            }

    def run(self, doc: dict[str, Any], operations: list[_Operation]) -> dict[str, Any]:
        for index, operation in enumerate(operations):
            try:
                if operation.op == "remove":
                    self.remove(doc, operation)
                else:
                    self.write(doc, operation)
            except PatchError as exc:
                raise type(exc)(f"Operations[{index}] ({operation.op}): {exc.detail}") from None
        return doc

    # -- resolving ----------------------------------------------------------------------------

    def locate(self, path: Path) -> _Target:
        attribute = path.attribute
        text = str(path)
        extension: str | None = None
        if attribute.urn is not None:
            urn = attribute.urn.lower()
            whole = f"{urn}:{attribute.name.lower()}"
            if attribute.sub is None and whole in self.extensions:
                if path.value_filter is not None:
                    raise InvalidPathError(f"{text}: an extension takes no value filter")
                return _Target(text, self.extensions[whole], None, None)
            if urn in self.extensions:
                extension = self.extensions[urn]
            elif urn not in self.core:
                if self.known:
                    raise InvalidPathError(f"{text}: unknown schema {attribute.urn}")
                extension = attribute.urn
        spec = sub_spec = None
        sub = attribute.sub or path.sub_attribute
        if self.known:
            assert self.resource_type is not None
            qualified = f"{extension}:{attribute.name}" if extension else attribute.name
            spec = self.schema.resolve(self.resource_type, qualified)
            if spec is None:
                raise InvalidPathError(f"{text}: no attribute {attribute.name!r}")
            if sub is not None:
                sub_spec = spec.sub(sub)
                if sub_spec is None:
                    raise InvalidPathError(f"{text}: {spec.name} has no sub-attribute {sub!r}")
            if path.value_filter is not None and not spec.multi_valued:
                raise InvalidPathError(f"{text}: {spec.name} is not multi-valued")
        name = spec.name if spec is not None else attribute.name
        if sub_spec is not None:
            sub = sub_spec.name
        return _Target(
            text,
            extension,
            name,
            spec,
            sub,
            sub_spec,
            path.value_filter,
            AttrPath(attribute.name, urn=attribute.urn),
        )

    def selector(self, target: _Target) -> Any:
        assert target.value_filter is not None
        assert target.attribute is not None
        return compile_value_filter(
            target.value_filter, target.attribute, self.resource_type, self.schema
        )

    # -- containers -----------------------------------------------------------------------------

    def container(
        self, doc: dict[str, Any], target: _Target, create: bool
    ) -> dict[str, Any] | None:
        if target.extension is None:
            return doc
        key = _find_key(doc, target.extension)
        found = doc.get(key) if key is not None else None
        if isinstance(found, dict):
            return found
        if not create:
            return None
        box: dict[str, Any] = {}
        doc[key or target.extension] = box
        schemas = lookup(doc, "schemas", "schemas")
        if isinstance(schemas, list) and target.extension.lower() not in _lowered(schemas):
            schemas.append(target.extension)
        return box

    def drop_if_empty(self, doc: dict[str, Any], target: _Target) -> None:
        if target.extension is None:
            return
        key = _find_key(doc, target.extension)
        if key is not None and doc[key] in ({}, None):
            self.drop_extension(doc, target.extension)

    def drop_extension(self, doc: dict[str, Any], urn: str) -> None:
        key = _find_key(doc, urn)
        if key is not None:
            del doc[key]
        schemas = lookup(doc, "schemas", "schemas")
        if isinstance(schemas, list):
            schemas[:] = [
                s for s in schemas if not (isinstance(s, str) and s.lower() == urn.lower())
            ]

    # -- add and replace ------------------------------------------------------------------------

    def write(self, doc: dict[str, Any], operation: _Operation) -> None:
        value = operation.value
        if value is _MISSING:
            raise InvalidValueError(f"{operation.op} needs a 'value'")
        if operation.path is None:
            # No path: the value is an object of attribute paths and their values.
            if not isinstance(value, dict):
                raise InvalidValueError(f"{operation.op} without a path needs an object value")
            for key, item in value.items():
                if key.lower() == "schemas":
                    continue  # the resource's schemas follow its extensions
                try:
                    path = parse_path(key)
                except InvalidPathError as exc:
                    raise InvalidPathError(f"value key {key!r}: {exc.detail}") from None
                if path.value_filter is not None:
                    raise InvalidPathError(f"value key {key!r}: a key cannot hold a filter")
                self.write_to(doc, self.locate(path), operation.op, item)
            return
        self.write_to(doc, self.locate(operation.path), operation.op, value)

    def write_to(self, doc: dict[str, Any], target: _Target, op: str, value: Any) -> None:
        if value is None:
            if op == "add":
                raise InvalidValueError(f"{target.text}: add needs a value, not null")
            # RFC 7643 §2.5: null is "unassigned"; replacing with it removes.
            self.remove_target(doc, target, _MISSING)
            return
        if target.name is None:
            if not isinstance(value, dict):
                raise InvalidValueError(f"{target.text}: an extension's value is an object")
            assert target.extension is not None
            self.container(doc, target, create=True)
            for key, item in value.items():
                if key.lower() == "schemas":
                    continue  # some clients repeat the URN inside the extension object
                path = _attribute_key(key, target.text)
                inner = self.locate(Path(AttrPath(path.name, sub=path.sub, urn=target.extension)))
                self.write_to(doc, inner, op, item)
            return
        self.check_writable(target)
        box = self.container(doc, target, create=True)
        assert box is not None
        if target.value_filter is not None:
            self.write_filtered(box, target, op, value)
            return
        key = _find_key(box, target.name)
        current = box.get(key) if key is not None else None
        if target.sub is not None:
            self.write_sub(box, key, current, target, value)
            return
        new = _coerce(target.spec, value, target.text)
        if current is None or (op == "replace" and target.multi_valued):
            if current is not None:
                _check_immutable(target.spec, current, new, target.text)
            box[key or target.name] = new
            if isinstance(new, list):
                _settle_primary(target.spec, new, new)
            return
        if target.multi_valued or isinstance(current, list):
            merged = current if isinstance(current, list) else [current]
            additions = new if isinstance(new, list) else [new]
            box[key or target.name] = _merge_values(target.spec, merged, additions, target.text)
            return
        if isinstance(current, dict) and isinstance(new, dict):
            for sub_name, item in new.items():
                sub_spec = target.spec.sub(sub_name) if target.spec else None
                old = lookup(current, sub_name, sub_name.lower())
                _check_immutable(sub_spec, old, item, f"{target.text}.{sub_name}")
                _store(current, sub_name, item)
            return
        _check_immutable(target.spec, current, new, target.text)
        box[key or target.name] = new

    def write_sub(
        self, box: dict[str, Any], key: str | None, current: Any, target: _Target, value: Any
    ) -> None:
        assert target.sub is not None
        assert target.name is not None
        new = _coerce(target.sub_spec, value, target.text)
        if target.multi_valued or isinstance(current, list):
            elements = [e for e in (current or []) if isinstance(e, dict)]
            if not elements:
                raise NoTargetError(f"{target.text}: {target.name} has no values")
            for element in elements:
                self.write_element_sub(element, target, new)
            _settle_primary(target.spec, current, elements)
            return
        if not isinstance(current, dict):
            current = {}
            box[key or target.name] = current
        self.write_element_sub(current, target, new)

    def write_element_sub(self, element: dict[str, Any], target: _Target, new: Any) -> None:
        assert target.sub is not None
        old = lookup(element, target.sub, target.sub.lower())
        _check_immutable(target.sub_spec, old, new, target.text)
        _store(element, target.sub, new)

    def write_filtered(self, box: dict[str, Any], target: _Target, op: str, value: Any) -> None:
        assert target.name is not None
        key = _find_key(box, target.name)
        current = box.get(key) if key is not None else None
        elements = current if isinstance(current, list) else []
        select = self.selector(target)
        matched = [e for e in elements if isinstance(e, dict) and select(e)]
        if not matched:
            created = _described_value(target.value_filter, target.spec) if op == "add" else None
            if created is None:
                raise NoTargetError(f"{target.text}: the filter matches no value")
            # "add" to emails[type eq "work"].value where there is no work email yet
            # creates it, as Microsoft Entra ID expects.
            matched = [created]
            elements = [*elements, created]
            box[key or target.name] = elements
        if target.sub is not None:
            new = _coerce(target.sub_spec, value, target.text)
            for element in matched:
                self.write_element_sub(element, target, new)
        else:
            element_spec = attrs.evolve(target.spec, multi_valued=False) if target.spec else None
            new = _coerce(element_spec, value, target.text)
            if not isinstance(new, dict):
                raise InvalidValueError(f"{target.text}: the value of a filtered path is an object")
            for element in matched:
                if op == "add":
                    for sub_name, item in new.items():
                        sub_spec = target.spec.sub(sub_name) if target.spec else None
                        old = lookup(element, sub_name, sub_name.lower())
                        _check_immutable(sub_spec, old, item, f"{target.text}.{sub_name}")
                        _store(element, sub_name, item)
                else:
                    # RFC 7644 §3.5.2.3: "all matching record values SHALL be replaced".
                    for sub_name in list(element):
                        if sub_name not in new:
                            sub_spec = target.spec.sub(sub_name) if target.spec else None
                            if sub_spec is not None and sub_spec.read_only:
                                new[sub_name] = element[sub_name]
                            else:
                                _check_immutable(sub_spec, element[sub_name], None, target.text)
                    for sub_name, item in new.items():
                        sub_spec = target.spec.sub(sub_name) if target.spec else None
                        old = lookup(element, sub_name, sub_name.lower())
                        _check_immutable(sub_spec, old, item, f"{target.text}.{sub_name}")
                    element.clear()
                    element.update(new)
        _settle_primary(target.spec, elements, matched)

    def check_writable(self, target: _Target) -> None:
        for spec in (target.spec, target.sub_spec):
            if spec is not None and spec.read_only:
                raise MutabilityError(f"{target.text}: {spec.name} is readOnly")

    # -- remove ---------------------------------------------------------------------------------

    def remove(self, doc: dict[str, Any], operation: _Operation) -> None:
        if operation.path is None:
            raise NoTargetError("remove needs a path")
        self.remove_target(doc, self.locate(operation.path), operation.value)

    def remove_target(self, doc: dict[str, Any], target: _Target, value: Any) -> None:
        if target.name is None:
            assert target.extension is not None
            self.drop_extension(doc, target.extension)
            return
        self.check_writable(target)
        box = self.container(doc, target, create=False)
        if box is None:
            return
        key = _find_key(box, target.name)
        current = box.get(key) if key is not None else None
        if key is None or current is None:
            return
        if target.value_filter is not None:
            if not isinstance(current, list):
                return
            select = self.selector(target)
            matched = [e for e in current if isinstance(e, dict) and select(e)]
            if target.sub is not None:
                for element in matched:
                    self.remove_element_sub(element, target)
            else:
                chosen = {id(element) for element in matched}
                self.keep(box, key, target, [e for e in current if id(e) not in chosen])
        elif target.sub is not None:
            elements = current if isinstance(current, list) else [current]
            for element in elements:
                if isinstance(element, dict):
                    self.remove_element_sub(element, target)
            if isinstance(current, dict) and not current:
                del box[key]
        elif value is not _MISSING and value is not None and isinstance(current, list):
            # Microsoft Entra ID removes members as {"path": "members", "value": [...]}.
            self.keep(box, key, target, _without(target.spec, current, value, target.text))
        else:
            self.check_removable(target.spec, current, target.text)
            del box[key]
        self.drop_if_empty(doc, target)

    def keep(self, box: dict[str, Any], key: str, target: _Target, remaining: list[Any]) -> None:
        if remaining:
            box[key] = remaining
        else:
            self.check_removable(target.spec, box[key], target.text)
            del box[key]

    def remove_element_sub(self, element: dict[str, Any], target: _Target) -> None:
        assert target.sub is not None
        sub_key = _find_key(element, target.sub)
        if sub_key is not None:
            self.check_removable(target.sub_spec, element[sub_key], target.text)
            del element[sub_key]

    def check_removable(self, spec: AttributeSpec | None, current: Any, where: str) -> None:
        if spec is None:
            return
        if spec.required:
            raise InvalidValueError(f"{where}: {spec.name} is required")
        if spec.mutability == "immutable" and current is not None:
            raise MutabilityError(f"{where}: {spec.name} is immutable")


# -- values -----------------------------------------------------------------------------------


def _lowered(values: list[Any]) -> set[str]:
    return {v.lower() for v in values if isinstance(v, str)}


def _find_key(box: Mapping[str, Any], name: str) -> str | None:
    if name in box:
        return name
    folded = name.lower()
    for key in box:
        if isinstance(key, str) and key.lower() == folded:
            return key
    return None


def _store(box: dict[str, Any], name: str, value: Any) -> None:
    key = _find_key(box, name)
    if value is None:
        if key is not None:
            del box[key]
        return
    box[key or name] = value


def _attribute_key(key: str, where: str) -> AttrPath:
    try:
        return AttrPath.parse(key)
    except Exception:
        raise InvalidPathError(f"{where}: {key!r} is not an attribute name") from None


def _coerce(spec: AttributeSpec | None, value: Any, where: str) -> Any:
    """Check ``value`` against ``spec`` and return it in canonical form."""
    if spec is None:
        return value
    if spec.multi_valued:
        items = value if isinstance(value, list) else [value]
        element = attrs.evolve(spec, multi_valued=False)
        return [_coerce(element, item, where) for item in items if item is not None]
    if isinstance(value, list):
        raise InvalidValueError(f"{where}: {spec.name} takes one value, not a list")
    if spec.complex:
        if not isinstance(value, dict):
            raise InvalidValueError(f"{where}: {spec.name} takes an object, got {value!r:.60}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = spec.sub(key)
            if sub is None:
                raise InvalidValueError(f"{where}: {spec.name} has no sub-attribute {key!r}")
            if sub.read_only or item is None:
                continue  # readOnly values are ignored, as in a PUT (RFC 7644 §3.5.1)
            out[sub.name] = _coerce(sub, item, f"{where}.{sub.name}")
        return out
    return _coerce_simple(spec, value, where)


def _coerce_simple(spec: AttributeSpec, value: Any, where: str) -> Any:
    kind = spec.type
    if isinstance(value, dict):
        raise InvalidValueError(f"{where}: {spec.name} takes a {kind}, not an object")
    if kind == "boolean":
        flag = to_bool(value)
        if flag is None:
            raise InvalidValueError(f"{where}: {spec.name} takes a boolean, got {value!r:.60}")
        return flag
    if kind == "integer":
        if type(value) is not int:
            raise InvalidValueError(f"{where}: {spec.name} takes an integer, got {value!r:.60}")
        return value
    if kind == "decimal":
        if type(value) not in (int, float):
            raise InvalidValueError(f"{where}: {spec.name} takes a number, got {value!r:.60}")
        return value
    if kind == "dateTime":
        if to_datetime(value) is None:
            raise InvalidValueError(
                f"{where}: {spec.name} takes an xsd:dateTime, got {value!r:.60}"
            )
        return value
    if type(value) is str:
        return value
    if type(value) in (int, float):  # numbers for strings happen in the wild
        return str(value)
    raise InvalidValueError(f"{where}: {spec.name} takes a {kind}, got {value!r:.60}")


def _check_immutable(spec: AttributeSpec | None, old: Any, new: Any, where: str) -> None:
    # RFC 7643 §2.2: an immutable attribute may be set once, never changed.
    if spec is not None and spec.mutability == "immutable" and old is not None and old != new:
        raise MutabilityError(f"{where}: {spec.name} is immutable")


def _merge_values(
    spec: AttributeSpec | None, current: list[Any], additions: list[Any], where: str
) -> list[Any]:
    """Add values to a multi-valued attribute without duplicating any (RFC 7644 §3.5.2.1)."""
    fields = identity_fields(spec)
    merged = list(current)
    by_identity: dict[tuple[Any, ...], Any] = {}
    for element in reversed(merged):  # the first value of an identity wins
        key = identity(fields, element)
        if key is not None:
            by_identity[key] = element
    written: list[Any] = []
    for item in additions:
        key = identity(fields, item)
        same = None
        if key is not None:
            same = by_identity.get(key)
        elif item in merged:
            continue
        if same is None:
            merged.append(item)
            written.append(item)
            if key is not None:
                by_identity[key] = item
            continue
        for sub_name, value in item.items():
            sub_spec = spec.sub(sub_name) if spec is not None else None
            old = lookup(same, sub_name, sub_name.lower())
            _check_immutable(sub_spec, old, value, f"{where}.{sub_name}")
            _store(same, sub_name, value)
        written.append(same)
    _settle_primary(spec, merged, written)
    return merged


def _without(spec: AttributeSpec | None, current: list[Any], value: Any, where: str) -> list[Any]:
    """``current`` less the values named by ``value`` (by identity, else by equality)."""
    fields = identity_fields(spec)
    doomed = value if isinstance(value, list) else [value]
    keys = {identity(fields, item) for item in doomed} - {None}
    remaining = []
    for element in current:
        key = identity(fields, element)
        if (key is not None and key in keys) or element in doomed:
            continue
        remaining.append(element)
    return remaining


def _settle_primary(spec: AttributeSpec | None, elements: list[Any], written: list[Any]) -> None:
    # RFC 7644 §3.5.2: a value set primary makes every other value non-primary.
    if spec is None or spec.sub("primary") is None:
        return
    if not any(isinstance(e, dict) and lookup(e, "primary", "primary") is True for e in written):
        return
    chosen = {id(element) for element in written}
    for element in elements:
        if isinstance(element, dict) and id(element) not in chosen:
            key = _find_key(element, "primary")
            if key is not None and element[key] is True:
                element[key] = False


def _described_value(
    value_filter: Filter | None, spec: AttributeSpec | None
) -> dict[str, Any] | None:
    """The value an ``eq``-only filter describes (``type eq "work"``), or None."""
    parts = value_filter.filters if isinstance(value_filter, And) else (value_filter,)
    out: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, Comparison) or part.op != "eq" or part.path.sub is not None:
            return None
        if part.path.urn is not None or part.value is None:
            return None
        sub = spec.sub(part.path.name) if spec is not None else None
        out[sub.name if sub else part.path.name] = part.value
    return out


def _clone(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clone(item) for item in value]
    return value


# -- the public function ------------------------------------------------------------------------


@overload
def apply_patch(
    resource: R,
    operations: Any,
    *,
    schema: SchemaTable = ...,
    resource_type: str | None = ...,
) -> R: ...
@overload
def apply_patch(
    resource: Mapping[str, Any],
    operations: Any,
    *,
    schema: SchemaTable = ...,
    resource_type: str | None = ...,
) -> dict[str, Any]: ...
def apply_patch(
    resource: Any,
    operations: Any,
    *,
    schema: SchemaTable = CORE_SCHEMAS,
    resource_type: str | None = None,
) -> Any:
    """Apply PATCH ``operations`` (RFC 7644 §3.5.2) to ``resource`` and return the result.

    ``resource`` is a model (``User``, ``Group``: a new model of the same type comes
    back) or a SCIM JSON object (a new ``dict`` comes back; the input is not touched).
    ``operations`` is a list of :class:`~scimsync.models.PatchOperation` or of raw
    operation objects (``{"op": "Replace", "path": ..., "value": ...}``, names in any
    case), or a whole :class:`~scimsync.models.PatchOp` or PatchOp body.

    ``add``, ``replace`` and ``remove`` follow RFC 7644 §3.5.2: with or without a path,
    value filters (``emails[type eq "work"].value``), URN-qualified paths, ``add`` to a
    multi-valued attribute merging with the value of the same identity instead of
    duplicating it, a value set ``primary`` making the others non-primary.

    All or nothing: a failing operation raises a
    :class:`~scimsync.errors.PatchError` (``InvalidPathError``, ``NoTargetError``,
    ``MutabilityError`` or ``InvalidValueError``, each with its ``scim_type``) and no
    change is kept. Paths only reach SCIM attributes of the schema table (any attribute
    when the resource type is unknown), never Python attributes.
    """
    ops = _read_operations(operations)
    if isinstance(resource, Resource):
        rtype = resource_type or type(resource).resource_type_name or None
        patched = _Patcher(schema, rtype).run(to_scim(resource), ops)
        try:
            return from_scim(patched, type(resource))
        except ResourceValidationError as exc:
            raise InvalidValueError(f"the patched resource is invalid: {exc}") from None
    if isinstance(resource, Mapping):
        rtype = resource_type or resource_type_of(resource, schema)
        return _Patcher(schema, rtype).run(_clone(resource), ops)
    raise TypeError(f"apply_patch takes a SCIM model or a dict, got {type(resource).__name__}")
