"""Managed attributes: what a desired resource speaks for even where it holds nothing.

:func:`~scimsync.patch.diff` compares only the attributes ``new`` sets. A source that
*manages* an attribute and has no value for it wants the target's value gone (HR
removed someone's title). Given the managed paths, this module finds what ``old``
holds there and ``new`` does not, and removes it with the smallest operation:

- ``title``, an extension's ``urn:…:department``, a whole ``name``: ``remove title``;
- ``name.givenName``: ``remove name.givenName``; ``urn:…:manager.value`` when ``new``
  has no manager at all: ``remove urn:…:manager`` (the ``value`` is what a complex
  attribute stands for: a manager without it is no manager, only the ``displayName``
  the target filled in);
- ``emails.value`` (a rule building the whole list): ``remove emails``;
- ``emails[type eq "work"].value`` when ``new`` holds no email at all: ``remove
  emails[type eq "work"]`` (when it holds other emails, the list comparison of
  :func:`~scimsync.patch.diff` removes the work one already); another sub-attribute
  of that element (``.display``) unset in the element ``new`` holds:
  ``remove emails[type eq "work"].display``.

Never removed: required attributes (``userName``), readOnly and immutable ones, and
writeOnly or ``returned: never`` ones (they are never read back, so they never look
set). In ``new``, only None is unset (``[]`` is a value: the list comparison empties
the attribute); in ``old``, ``""``, ``[]`` and ``{}`` are unset too (RFC 7643 §2.5).

Speed: a sync compares every account on every cycle, and most have nothing to clear.
:func:`clearing` compiles the paths, per resource class, into one generated function
telling that at a few attribute reads per path; the detailed walk runs only for the
accounts it points at.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from ..errors import InvalidPathError
from ..filter import And, AttrPath, Comparison, Filter
from ..filter._eval import lookup
from ..filter._nodes import compile_value_filter
from ..models import ENTERPRISE_USER_SCHEMA, Resource, User, scim_name
from ._diff import _json
from ._path import Path, parse_path
from ._scope import ElementScope, equal_values, scope_key

if typing.TYPE_CHECKING:
    from ..schema import AttributeSpec, SchemaTable

__all__ = ["Clearing", "Removal", "clearing", "element_scopes", "removable", "value_reader"]


class Removal(NamedTuple):
    """One value to remove: its PATCH path and what ``old`` holds there (SCIM JSON)."""

    path: str
    old: Any
    #: (urn, attribute[, filter][, sub]), lower-cased: a removal covers the longer ones.
    scope: tuple[str, ...]


def _present(value: Any) -> bool:
    return value is not None and value not in ("", [], {})


def removable(spec: AttributeSpec | None) -> bool:
    """True when a client may remove a value of this attribute (unknown ones: yes)."""
    return spec is None or not (
        spec.required or spec.mutability in ("readOnly", "immutable") or spec.write_only
    )


# -- reading models -----------------------------------------------------------------------


_FIELDS: dict[type, Mapping[str, str]] = {}


def _fields(cls: type) -> Mapping[str, str]:
    """SCIM name (lower-cased) -> Python field name, for an attrs model class."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = {
            scim_name(field.name).lower(): field.name
            for field in attrs.fields(cls)
            if field.name not in ("extra", "extensions")
        }
    return found


@functools.lru_cache(maxsize=128)
def _value_class(cls: Any, field_name: str) -> type | None:
    """The model class a field holds (``Name`` for ``User.name``, ``Email`` for
    ``User.emails``), or None when it holds plain values."""
    hints = typing.get_type_hints(cls)
    pending = [hints.get(field_name)]
    while pending:
        hint = pending.pop()
        if isinstance(hint, type) and attrs.has(hint):
            return hint
        pending.extend(typing.get_args(hint))
    return None


def _get(container: Any, name: str) -> Any:
    """Attribute ``name`` of a complex value held as a model or as a JSON object."""
    if isinstance(container, Mapping):
        return lookup(container, name, name.lower())
    if attrs.has(type(container)):
        field = _fields(type(container)).get(name.lower())
        if field is not None:
            return getattr(container, field)
        return lookup(container.extra, name, name.lower())
    return None


def _top_reader(cls: type, urn: str | None, attribute: str) -> Callable[[Any], Any]:
    """Reads the top-level attribute (``urn`` None: of the core schema) off a model."""
    if urn is None:
        field = _fields(cls).get(attribute.lower())
        if field is not None:
            return lambda resource: getattr(resource, field)
        return lambda resource: lookup(resource.extra, attribute, attribute.lower())
    enterprise = issubclass(cls, User) and urn.lower() == ENTERPRISE_USER_SCHEMA.lower()

    def read(resource: Any) -> Any:
        container = resource.enterprise if enterprise else None
        if container is None:
            container = resource.extension(urn)
        return None if container is None else _get(container, attribute)

    return read


def value_reader(
    cls: type, urn: str | None, attribute: str, sub: str | None = None
) -> Callable[[Any], Any]:
    """Reads the value at an attribute path off a model of class ``cls`` (None: unset).

    Declared fields (the core schema's, the enterprise extension's on ``User``) are
    read with plain attribute access; anything else through the ``extra`` and
    ``extensions`` mappings.
    """
    chain = _declared(cls, urn, attribute, sub)
    if chain is None:
        top = _top_reader(cls, urn, attribute)
        if sub is None:
            return top
        return lambda resource: None if (value := top(resource)) is None else _get(value, sub)
    lines = ["def read(v):"]
    for name in chain[:-1]:
        lines += [f"    v = v.{name}", "    if v is None:", "        return None"]
    lines.append(f"    return v.{chain[-1]}")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - field names of attrs classes only
    read: Callable[[Any], Any] = namespace["read"]
    return read


def _declared(cls: type, urn: str | None, attribute: str, sub: str | None) -> list[str] | None:
    """The model fields leading to the value, when every step is a declared field."""
    chain = []
    holder: type = cls
    if urn is not None:
        if not (issubclass(cls, User) and urn.lower() == ENTERPRISE_USER_SCHEMA.lower()):
            return None
        from ..models import EnterpriseUser

        chain.append("enterprise")
        holder = EnterpriseUser
    field = _fields(holder).get(attribute.lower())
    if field is None:
        return None
    chain.append(field)
    if sub is not None:
        value_class = _value_class(holder, field)
        sub_field = _fields(value_class).get(sub.lower()) if value_class is not None else None
        if sub_field is None or typing.get_origin(typing.get_type_hints(holder)[field]) is tuple:
            return None
        chain.append(sub_field)
    return chain


# -- one managed path ---------------------------------------------------------------------


class _Managed:
    """One managed path, compiled for one resource class."""

    def __init__(
        self, text: str, cls: type[Resource], schema: SchemaTable, resource_type: str
    ) -> None:
        try:
            path = parse_path(text)
        except InvalidPathError as exc:
            raise InvalidPathError(f"managed attribute {text!r}: {exc}") from None
        attribute = path.attribute
        if path.value_filter is not None and attribute.sub is not None:
            raise InvalidPathError(f"managed attribute {text!r}: a sub-attribute before a filter")
        urn = attribute.urn
        if urn is not None and urn.lower() == cls.schema_urn.lower():
            urn = None
        if urn is not None:
            known = schema.extension_urns(resource_type)
            urn = next((u for u in known if u.lower() == urn.lower()), urn)
        top = attribute.name if urn is None else f"{urn}:{attribute.name}"
        spec = schema.resolve(resource_type, top)
        sub = attribute.sub if path.value_filter is None else path.sub_attribute
        sub_spec = spec.sub(sub) if spec is not None and sub is not None else None
        self.urn = urn
        self.attribute = spec.name if spec is not None else attribute.name
        self.sub = sub_spec.name if sub_spec is not None else sub
        self.value_filter = path.value_filter
        self.multi_valued = spec.multi_valued if spec is not None else False
        self.attr_path = AttrPath(self.attribute, urn=urn)
        self.read = _top_reader(cls, urn, self.attribute)
        # Where the value lives on the model, for the generated fast check.
        self.field: str | None = None
        if urn is None:
            self.field = _fields(cls).get(self.attribute.lower())
        elif issubclass(cls, User) and urn.lower() == ENTERPRISE_USER_SCHEMA.lower():
            from ..models import EnterpriseUser

            self.field = _fields(EnterpriseUser).get(self.attribute.lower())
        self.whole_ok = removable(spec)
        self.sub_ok = sub is not None and self.whole_ok and removable(sub_spec)
        self.scope_head = scope_key(urn, self.attribute)
        self.matches: Callable[[Any], bool] | None = None
        if self.value_filter is not None:
            self.matches = compile_value_filter(
                self.value_filter, self.attr_path, resource_type, schema
            )
        self.text = str(
            Path(AttrPath(self.attribute, sub=self.sub, urn=urn))
            if self.value_filter is None
            else Path(self.attr_path, self.value_filter, self.sub)
        )

    # What gets removed, and what it covers.

    def _whole(self, old: Any) -> Removal | None:
        if not self.whole_ok:
            return None
        return Removal(str(self.attr_path), old, self.scope_head)

    def _sub(self, old: Any) -> Removal | None:
        if not self.sub_ok:
            return None
        assert self.sub is not None
        path = AttrPath(self.attribute, sub=self.sub, urn=self.urn)
        return Removal(str(path), old, (*self.scope_head, "", self.sub.lower()))

    def _element(self, old: Any, sub: bool) -> Removal | None:
        if not (self.sub_ok if sub else self.whole_ok):
            return None
        assert self.value_filter is not None
        filter_text = str(self.value_filter).lower()
        if sub:
            assert self.sub is not None
            path = Path(self.attr_path, self.value_filter, self.sub)
            return Removal(str(path), old, (*self.scope_head, filter_text, self.sub.lower()))
        path = Path(self.attr_path, self.value_filter)
        return Removal(str(path), old, (*self.scope_head, filter_text))

    def removal(self, old: Resource, new: Resource) -> Removal | None:
        """What ``old`` holds at this path and ``new`` does not, as the removal to send."""
        old_top = _json(self.read(old))
        if not _present(old_top):
            return None
        new_top = _json(self.read(new))
        sub = self.sub
        if self.matches is None:
            if sub is None or self.multi_valued or isinstance(old_top, list):
                # A whole attribute (a list built whole, too). An empty list in ``new``
                # is a value: diff empties the attribute itself.
                return self._whole(old_top) if new_top is None else None
            if isinstance(new_top, dict) and _get(new_top, sub) is not None:
                return None
            old_sub = _get(old_top, sub) if isinstance(old_top, dict) else None
            if not _present(old_sub):
                return None
            if sub.lower() == "value" and not _present(new_top):
                return self._whole(old_top) or self._sub(old_sub)
            return self._sub(old_sub)
        if not isinstance(old_top, list):
            return None
        matches = self.matches
        chosen = [e for e in old_top if isinstance(e, dict) and matches(e)]
        if not chosen:
            return None
        if new_top is None and (sub is None or sub.lower() == "value"):
            return self._element(chosen[0] if len(chosen) == 1 else chosen, sub=False)
        if sub is None:
            return None  # new holds the list: diff compares it whole
        if new_top is not None:
            held = [e for e in new_top if isinstance(e, dict) and matches(e)]
            if not held or any(_get(e, sub) is not None for e in held):
                return None  # no such element (diff removes it) or it has the value
        values = [v for e in chosen if _present(v := _get(e, sub))]
        if not values:
            return None
        return self._element(values[0] if len(values) == 1 else values, sub=True)


# -- all managed paths of a resource class ------------------------------------------------


def _covered(scope: tuple[str, ...], taken: set[tuple[str, ...]]) -> bool:
    return any(scope[:length] in taken for length in range(2, len(scope)))


class Clearing:
    """The managed paths of one resource class, compiled (see :func:`clearing`).

    :meth:`needed` answers fast whether ``old`` may hold a value ``new`` leaves unset
    at a managed path (False: certainly not); :meth:`removals` says exactly which.
    """

    def __init__(self, managed: tuple[_Managed, ...], needed: Callable[[Any, Any], bool]) -> None:
        self.managed = managed
        self.needed = needed
        self.paths = frozenset(m.text for m in managed)

    def removals(self, old: Resource, new: Resource) -> list[Removal]:
        """The values to remove, in path order; none inside another one removed whole."""
        found = [r for m in self.managed if (r := m.removal(old, new)) is not None]
        if len(found) < 2:
            return found
        taken: set[tuple[str, ...]] = set()
        out = []
        for removal in sorted(found, key=lambda r: len(r.scope)):
            if not _covered(removal.scope, taken) and removal.scope not in taken:
                taken.add(removal.scope)
                out.append(removal)
        return sorted(out, key=lambda r: r.path)


def _canonical_paths(
    cls: type[Resource], paths: Sequence[str], schema: SchemaTable
) -> tuple[_Managed, ...]:
    resource_type = cls.resource_type_name
    compiled: dict[str, _Managed] = {}
    for text in paths:
        managed = _Managed(text, cls, schema, resource_type)
        compiled.setdefault(managed.text, managed)
    return tuple(compiled[key] for key in sorted(compiled))


def clearing(cls: type[Resource], paths: tuple[str, ...], schema: SchemaTable) -> Clearing:
    """The managed ``paths`` of resources of class ``cls``, compiled (and cached).

    Raises :class:`~scimsync.errors.InvalidPathError` for a path that is not an
    attribute path.
    """
    key: Any = cls  # classes are hashable; typeshed's type[...] says otherwise
    return _compiled(key, paths, schema)


@functools.lru_cache(maxsize=256)
def _compiled(cls: Any, paths: tuple[str, ...], schema: SchemaTable) -> Clearing:
    managed = _canonical_paths(cls, paths, schema)
    return Clearing(managed, _generate(cls, managed))


def element_scopes(
    cls: type[Resource], paths: tuple[str, ...], schema: SchemaTable
) -> tuple[ElementScope, ...]:
    """The element scopes the managed ``paths`` give (see :mod:`scimsync.patch._scope`).

    One per multi-valued attribute whose paths are all filtered element paths
    (``emails[type eq "work"].value`` and ``emails[type eq "work"].primary``: the work
    emails); none for an attribute named whole by any path. Sorted; cached.
    Raises :class:`~scimsync.errors.InvalidPathError` for a path that is not one.
    """
    key: Any = cls  # classes are hashable; typeshed's type[...] says otherwise
    return _scopes(key, paths, schema)


@functools.lru_cache(maxsize=256)
def _scopes(cls: Any, paths: tuple[str, ...], schema: SchemaTable) -> tuple[ElementScope, ...]:
    by_head: dict[tuple[str, ...], list[_Managed]] = {}
    for managed in _canonical_paths(cls, paths, schema):
        by_head.setdefault(managed.scope_head, []).append(managed)
    out = []
    for head in sorted(by_head):
        chosen: dict[str, tuple[Filter, Callable[[Any], bool]]] = {}
        for m in by_head[head]:
            if m.value_filter is None or m.matches is None:
                break  # the attribute is named whole: the desired list is all of it
            chosen[str(m.value_filter)] = (m.value_filter, m.matches)
        else:
            first = by_head[head][0]
            ordered = [chosen[text] for text in sorted(chosen)]
            filters = tuple(f for f, _ in ordered)
            out.append(
                ElementScope(
                    urn=first.urn,
                    attribute=first.attribute,
                    filters=filters,
                    selects=_any_of(tuple(p for _, p in ordered)),
                    equal_values=equal_values(filters),
                )
            )
    return tuple(out)


def _any_of(predicates: tuple[Callable[[Any], bool], ...]) -> Callable[[Any], bool]:
    if len(predicates) == 1:
        return predicates[0]
    return lambda value: any(predicate(value) for predicate in predicates)


def _generate(cls: type[Resource], managed: tuple[_Managed, ...]) -> Callable[[Any, Any], bool]:
    """One function telling, in a few attribute reads per path, that nothing is to clear.

    Paths on declared fields of the model (the core schema's, the enterprise
    extension's) are read inline; the others, and the cases the inline reads cannot
    settle (a filter, a sub-attribute of a value the model does not declare), go to
    the path's detailed :meth:`_Managed.removal`.
    """
    namespace: dict[str, Any] = {}
    lines = ["def needed(old, new):"]
    enterprise = any(m.field is not None and m.urn is not None for m in managed)
    if enterprise:
        lines += ["    ne = new.enterprise", "    oe = old.enterprise"]
    present = 'b is not None and b != "" and b != ()'
    for index, m in enumerate(managed):
        namespace[f"_m{index}"] = m
        slow = f"_m{index}.removal(old, new) is not None"
        if m.field is None:
            lines += [f"    if {slow}:", "        return True"]
            continue
        if m.urn is None:
            new_top, old_top = f"new.{m.field}", f"old.{m.field}"
            holder: type = cls
        else:
            new_top = f"(ne.{m.field} if ne is not None else None)"
            old_top = f"(oe.{m.field} if oe is not None else None)"
            from ..models import EnterpriseUser

            holder = EnterpriseUser
        value_class = _value_class(holder, m.field)
        sub_field = (
            _fields(value_class).get(m.sub.lower())
            if m.sub is not None and value_class is not None
            else None
        )
        if m.matches is None and (m.sub is None or m.multi_valued):
            lines += [
                f"    if {new_top} is None:",
                f"        b = {old_top}",
                f"        if {present}:",
                "            return True",
            ]
        elif m.matches is None and sub_field is not None:
            lines += [
                f"    c = {new_top}",
                f"    if c is None or c.{sub_field} is None:",
                f"        c = {old_top}",
                "        if c is not None:",
                f"            b = c.{sub_field}",
                f"            if {present}:",
                "                return True",
            ]
        elif m.matches is None:
            lines += [f"    if {old_top} is not None and {slow}:", "        return True"]
        else:
            lines += [
                f"    b = {old_top}",
                "    if b:",
                f"        v = {new_top}",
                "        if v is None:",
                f"            if {slow}:",
                "                return True",
            ]
            if m.sub is not None:
                lines.append("        else:")
                lines += _element_check(m, value_class, sub_field, namespace, index, slow)
    lines.append("    return False")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from parsed paths only
    needed: Callable[[Any, Any], bool] = namespace["needed"]
    return needed


def _element_check(  # noqa: PLR0917 - one call site, each argument named there
    m: _Managed,
    value_class: type | None,
    sub_field: str | None,
    namespace: dict[str, Any],
    index: int,
    slow: str,
) -> list[str]:
    """Lines telling whether ``v`` (the new list) leaves the element's sub-attribute unset.

    The list comparison of diff settles the elements themselves; a sub-attribute an
    element keeps without a value is this module's. For the filters a mapping writes
    (equalities joined by ``and``) on declared fields, an element of ``v`` that
    matches and holds the sub-attribute settles it inline; otherwise the path's
    detailed check runs.
    """
    conditions = _equalities(m.value_filter)
    tests: list[str] = []
    if value_class is not None and sub_field is not None and conditions is not None:
        for position, (name, value) in enumerate(conditions):
            field = _fields(value_class).get(name.lower())
            if field is None:
                tests = []
                break
            namespace[f"_c{index}_{position}"] = value
            tests.append(f"e.{field} == _c{index}_{position}")
    if not tests:
        return [f"            if {slow}:", "                return True"]
    held = " and ".join([*tests, f"e.{sub_field} is not None"])
    return [
        "            for e in v:",
        f"                if {held}:",
        "                    break",
        "            else:",
        f"                if {slow}:",
        "                    return True",
    ]


def _equalities(value_filter: Filter | None) -> list[tuple[str, Any]] | None:
    if isinstance(value_filter, And):
        out: list[tuple[str, Any]] = []
        for part in value_filter.filters:
            found = _equalities(part)
            if found is None:
                return None
            out.extend(found)
        return out
    if (
        isinstance(value_filter, Comparison)
        and value_filter.op == "eq"
        and value_filter.path.sub is None
        and value_filter.path.urn is None
    ):
        return [(value_filter.path.name, value_filter.value)]
    return None
