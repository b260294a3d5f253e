"""The smallest PATCH turning one resource into another: :func:`diff`.

Only attributes ``new`` sets (not None) are compared: what a desired state leaves unset
is not managed, unless it is named in ``managed`` (see :mod:`scimsync.patch._managed`):
then a value ``old`` holds there is removed. readOnly attributes are never sent, and
neither are writeOnly or ``returned: never`` ones (a password cannot be read back, so
comparing it would update it forever). Values compare exactly; values of
multi-valued complex attributes are matched by identity (see
:mod:`scimsync.patch._identity`), so a changed member list costs one ``add`` of the
new members and one ``remove`` of the old ones, each addressed by a value filter,
never the whole list.

The walk is shared with :func:`changed_attributes`, which tells the same story one
attribute at a time, as a person reviewing a plan wants to read it.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from ..codec import converter
from ..errors import FilterSyntaxError
from ..filter import AttrPath, Filter, or_
from ..filter._eval import format_datetime, lookup
from ..models import ENTERPRISE_USER_SCHEMA, PatchOperation, Resource, User, scim_name
from ..schema import CORE_SCHEMAS, AttributeSpec, SchemaTable
from ._identity import identity, identity_fields, identity_filter
from ._path import Path
from ._scope import ElementScope, scope_key

if TYPE_CHECKING:
    from ._managed import Clearing, Removal

__all__ = ["AttributeChange", "changed_attributes", "diff"]


class AttributeChange(NamedTuple):
    """One changed attribute: its PATCH path, the old and the new value (SCIM JSON).

    A value added to a multi-valued attribute has ``old`` None; a removed one has
    ``new`` None; the path of either names the value by identity
    (``members[value eq "2819c223"]``).
    """

    path: str
    old: Any
    new: Any


# -- what changed -----------------------------------------------------------------------------


@attrs.frozen
class _Set:
    """A whole attribute gets a new value (``path`` None: a key no path can name)."""

    key: str
    path: AttrPath | None
    old: Any
    new: Any


@attrs.frozen
class _Complex:
    """Sub-attributes of a single-valued complex attribute change."""

    path: AttrPath
    changed: dict[str, tuple[Any, Any]]  # sub-attribute -> (old, new)
    was_empty: bool


@attrs.frozen
class _Multi:
    """Values of a multi-valued complex attribute are removed, changed, added.

    ``demoted``: values that stop being primary because another one becomes primary.
    No operation is sent for them: RFC 7644 §3.5.2 has the service provider do it. They
    are listed so that a review says so.
    """

    path: AttrPath
    removed: list[tuple[Filter, Any]]
    changed: list[tuple[Filter, str, Any, Any]]  # (identity filter, sub-attribute, old, new)
    added: list[tuple[Filter, Any]]
    demoted: list[tuple[Filter, Any]] = attrs.field(factory=list)


_Change = _Set | _Complex | _Multi


@attrs.frozen
class _Field:
    name: str  # Python field name
    scim: str  # SCIM attribute name
    spec: AttributeSpec | None
    extension: str | None  # the URN when the field holds an extension (User.enterprise)
    # Per class of the field's values: (Python name, identity spec or None) of each
    # sub-attribute a diff compares. Filled on first use.
    parts: dict[type, tuple[tuple[str, AttributeSpec | None], ...]] = attrs.field(
        factory=dict, eq=False
    )
    # Per class: (Python name, case-folded?) of each identity part, in identity order.
    identity_parts: dict[type, tuple[tuple[str, AttributeSpec], ...]] = attrs.field(
        factory=dict, eq=False
    )
    # Per class: a function reading the identity of one value (see _identity_reader).
    identity_readers: dict[type, Callable[[Any], tuple[Any, ...] | None]] = attrs.field(
        factory=dict, eq=False
    )

    def sub_fields(self, cls: type) -> tuple[tuple[str, AttributeSpec | None], ...]:
        """The sub-attributes of values of class ``cls`` that a diff compares."""
        found = self.parts.get(cls)
        if found is None:
            assert self.spec is not None
            identity_names = {f.name for f in identity_fields(self.spec)}
            if not self.spec.multi_valued:
                identity_names = set()
            parts = []
            for field in attrs.fields(cls):
                if field.name == "extra":
                    continue
                sub = self.spec.sub(scim_name(field.name))
                if sub is not None and (sub.read_only or sub.write_only):
                    continue
                in_identity = sub is not None and sub.name in identity_names
                parts.append((field.name, sub if in_identity else None))
            found = self.parts[cls] = tuple(parts)
        return found

    def covers(self, old: Any, new: Any) -> bool:
        """True when ``old`` already has every part of ``new`` a diff would send.

        The fast answer for the common case (what the target holds has more than the
        source sets, and all of it agrees); False means "compare in detail".
        """
        spec = self.spec
        if spec is None or not spec.complex or old is None:
            return False
        if not spec.multi_valued:
            return self.value_covers(old, new)
        if type(new) is not tuple or type(old) is not tuple or len(new) != len(old):
            return False
        seen = set()
        for before, value in zip(old, new, strict=True):
            if not self.value_covers(before, value):
                return False
            key = self.identity(before)
            if key is None or key in seen:  # values without identity or listed twice
                return False
            seen.add(key)
        return True

    def identity_of(self, cls: type) -> tuple[tuple[str, AttributeSpec], ...]:
        """(Python name, spec) of each identity part of values of class ``cls``."""
        parts = self.identity_parts.get(cls)
        if parts is None:
            parts = self.identity_parts[cls] = tuple(
                (name, sub) for name, sub in self.sub_fields(cls) if sub is not None
            )
        return parts

    def identity(self, value: Any) -> tuple[Any, ...] | None:
        """The identity of a model value, as :func:`identity` computes it on JSON."""
        read = self.identity_readers.get(type(value))
        if read is None:
            read = self.identity_readers[type(value)] = _identity_reader(
                self.identity_of(type(value))
            )
        return read(value)

    def value_covers(self, old: Any, new: Any) -> bool:
        cls = type(new)
        if type(old) is not cls or not attrs.has(cls):
            return False
        for name, identity_spec in self.sub_fields(cls):
            value = getattr(new, name)
            before = getattr(old, name)
            if value is None:
                # An unset identity part means "none": the target's must be none too.
                if identity_spec is not None and before is not None and before != "":
                    return False
            elif value != before and not _default_primary(name, before, value):
                return False
        extra = getattr(new, "extra", None)
        if extra:
            held = getattr(old, "extra", None) or {}
            for key, value in extra.items():
                if value is not None and lookup(held, key, key.lower()) != value:
                    return False
        return True


def _identity_reader(
    parts: tuple[tuple[str, AttributeSpec], ...],
) -> Callable[[Any], tuple[Any, ...] | None]:
    """A function computing :meth:`_Field.identity` for values with these identity parts,
    generated so that it reads each part once: it runs for every value compared."""
    if not parts:
        return lambda value: None
    lines = ["def identity(value):"]
    for index, (name, sub) in enumerate(parts):
        lines += [
            f"    p{index} = value.{name}",
            f'    if p{index} == "":',
            f"        p{index} = None",
        ]
        if not sub.case_exact:
            lines += [f"    elif type(p{index}) is str:", f"        p{index} = p{index}.casefold()"]
    lines.append(f"    return ({''.join(f'p{index}, ' for index in range(len(parts)))})")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from attrs field names only
    reader: Callable[[Any], tuple[Any, ...] | None] = namespace["identity"]
    return reader


_ABSENT = object()
_SEEN = object()


class _ScopedCovers:
    """:meth:`_Field.covers` for an attribute with an element scope: True when every
    value of ``new`` is held already and ``old`` holds no other value the scope selects.

    Values outside the scope (the home email of a mapping that writes the work one)
    are the target's own: they neither need nor spoil anything. The scope's usual
    filters (``type eq "work"``) are read off the identity already computed.
    """

    def __init__(self, field: _Field, scope: ElementScope) -> None:
        self.field = field
        self.scope = scope
        # Per class of the values: (position in the identity, the values selected).
        self.by_identity: dict[type, tuple[int, frozenset[Any]] | None] = {}

    def selected(self, value: Any, key: tuple[Any, ...]) -> bool:
        cls = type(value)
        if cls in self.by_identity:
            found = self.by_identity[cls]
        else:
            found = self.by_identity[cls] = self._identity_test(cls)
        if found is None:
            return self.scope.selects(value)
        position, values = found
        return key[position] in values

    def _identity_test(self, cls: type) -> tuple[int, frozenset[Any]] | None:
        equal = self.scope.equal_values
        if equal is None or not attrs.has(cls):
            return None
        parts = self.field.identity_of(cls)
        name, values = equal
        for position, (_, sub) in enumerate(parts):
            if sub.name.lower() == name.lower():
                fold = not sub.case_exact
                return position, frozenset(
                    v.casefold() if fold and type(v) is str else v for v in values
                )
        return None

    def __call__(self, old: Any, new: Any) -> bool:
        spec = self.field.spec
        if spec is None or not spec.complex or type(new) is not tuple or type(old) is not tuple:
            return False
        count = len(new)
        if len(old) < count:
            return False
        field = self.field
        covers = field.value_covers
        identity = field.identity
        # Usually the target lists the source's values first, in order, then its own:
        # held exactly as sent (one C-level comparison), or covering them.
        if old[:count] != new:
            for index in range(count):
                if not covers(old[index], new[index]):
                    return self.unordered(old, new)
        wanted = set()
        for value in new:
            key = identity(value)
            if key is None or key in wanted:
                return False
            wanted.add(key)
        for index in range(count, len(old)):
            before = old[index]
            key = identity(before)
            # Held twice (one goes), or a value the source no longer wants (to remove).
            if key is None or key in wanted or self.selected(before, key):
                return False
        return True

    def unordered(self, old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
        """The same answer for values in any order."""
        identity = self.field.identity
        wanted: dict[tuple[Any, ...], Any] = {}
        for value in new:
            key = identity(value)
            if key is None or key in wanted:
                return False
            wanted[key] = value
        matched = 0
        for before in old:
            key = identity(before)
            if key is None:
                return False
            value = wanted.get(key, _ABSENT)
            if value is _ABSENT:
                if self.selected(before, key):
                    return False  # a value the source no longer wants: to remove
                continue
            if value is _SEEN or not self.field.value_covers(before, value):
                return False  # held twice (one goes), or a part differs
            wanted[key] = _SEEN
            matched += 1
        return matched == len(wanted)


@functools.lru_cache(maxsize=64)
def _fields(
    cls: type, schema: SchemaTable, resource_type: str | None, prefix: str | None
) -> tuple[_Field, ...]:
    """The fields of ``cls`` that a diff compares, in declaration order."""
    out = []
    for field in attrs.fields(cls):
        if field.name in ("extensions", "extra"):
            continue
        if issubclass(cls, User) and field.name == "enterprise":
            out.append(_Field(field.name, ENTERPRISE_USER_SCHEMA, None, ENTERPRISE_USER_SCHEMA))
            continue
        name = scim_name(field.name)
        spec = _spec(schema, resource_type, f"{prefix}:{name}" if prefix else name)
        if spec is not None and (spec.read_only or spec.write_only):
            continue
        out.append(_Field(field.name, name, spec, None))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _unchanged_check(
    cls: type,
    schema: SchemaTable,
    resource_type: str | None,
    prefix: str | None,
    scopes: tuple[ElementScope, ...] = (),
) -> Callable[[Any, Any], bool]:
    """A function telling, fast, that ``new`` asks nothing of ``old`` (False: look closer).

    Generated per class from its diffable fields, so an unchanged pair (most of a
    sync) costs one attribute read and comparison per field. With ``scopes``, a
    multi-valued attribute compares only the values its scope selects.
    """
    namespace: dict[str, Any] = {"_extension_unchanged": _extension_unchanged}
    by_key = {scope.key: scope for scope in scopes}
    lines = ["def unchanged(old, new):"]
    for index, field in enumerate(_fields(cls, schema, resource_type, prefix)):
        lines.append(f"    v = new.{field.name}")
        lines.append("    if v is not None:")
        lines.append(f"        b = old.{field.name}")
        scope = by_key.get(scope_key(prefix, field.scim))
        if field.extension is not None:
            namespace["_schema"], namespace["_resource_type"] = schema, resource_type
            # Only this extension's scopes: usually none, and cheap to hash per call.
            urn = field.extension.lower()
            namespace[f"_s{index}"] = tuple(s for s in scopes if (s.urn or "").lower() == urn)
            check = (
                "_extension_unchanged(b, v, _schema, _resource_type, "
                f"{field.extension!r}, scopes=_s{index})"
            )
            model = _extension_model(cls, field.name)
            if model is not None:
                # The extension's model is known: its check is bound here, not looked up
                # (and its arguments hashed) per call.
                namespace[f"_c{index}"] = model
                namespace[f"_e{index}"] = _unchanged_check(
                    model, schema, resource_type, field.extension, namespace[f"_s{index}"]
                )
                check = (
                    f"(_e{index}(b, v) if type(v) is _c{index} and type(b) is _c{index} "
                    f"else {check})"
                )
        elif scope is not None and field.spec is not None and field.spec.multi_valued:
            namespace[f"_f{index}"] = _ScopedCovers(field, scope)
            check = f"_f{index}(b, v)"
        else:
            namespace[f"_f{index}"] = field
            check = f"_f{index}.covers(b, v)"
        # `not v == b`: attrs classes have a C-level __eq__ slot but a Python __ne__.
        lines.append(f"        if not v == b and not {check}:")
        lines.append("            return False")
    names = {f.name for f in attrs.fields(cls)}
    for container in ("extra", "extensions"):
        if container in names:  # rare: the detailed walk handles them
            lines.append(f"    if new.{container}:")
            lines.append("        return False")
    lines.append("    return True")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from attrs fields only
    check_function: Callable[[Any, Any], bool] = namespace["unchanged"]
    return check_function


def _extension_model(cls: type, name: str) -> type | None:
    """The attrs class field ``name`` of ``cls`` holds (``User.enterprise``), if one."""
    try:
        hint = typing.get_type_hints(cls)[name]
    except (NameError, KeyError, TypeError):  # an annotation that does not resolve
        return None
    for candidate in typing.get_args(hint) or (hint,):
        if isinstance(candidate, type) and attrs.has(candidate):
            return candidate
    return None


def _extension_unchanged(
    old: Any,
    new: Any,
    schema: SchemaTable,
    resource_type: str | None,
    urn: str,
    *,
    scopes: tuple[ElementScope, ...] = (),
) -> bool:
    cls: Any = type(new)
    if type(old) is not cls or not attrs.has(cls):
        return False
    return _unchanged_check(cls, schema, resource_type, urn, scopes)(old, new)


def _spec(schema: SchemaTable, resource_type: str | None, path: str) -> AttributeSpec | None:
    return schema.resolve(resource_type, path) if resource_type else None


def _json(value: Any) -> Any:
    """A model value as SCIM JSON (what a PATCH carries)."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return format_datetime(value)
    if attrs.has(type(value)):
        return _json(converter.unstructure(value))
    return value


class _Walk:
    def __init__(
        self,
        schema: SchemaTable,
        resource_type: str | None,
        scopes: tuple[ElementScope, ...] = (),
        *,
        fast: bool = True,
    ) -> None:
        self.schema = schema
        self.resource_type = resource_type
        self.scopes = {scope.key: scope for scope in scopes}
        self.changes: list[_Change] = []
        self.fast = fast

    def model(self, old: Any, new: Any, prefix: str | None) -> None:
        """Compare two models of one class, attribute by attribute."""
        cls: Any = type(new)  # classes are hashable; typeshed's type[Any] says otherwise
        for field in _fields(cls, self.schema, self.resource_type, prefix):
            value = getattr(new, field.name)
            if value is None:
                continue
            before = getattr(old, field.name) if old is not None else None
            # The cheap checks: most attributes are unchanged.
            if value == before or (self.fast and field.covers(before, value)):
                continue
            if field.extension is not None:
                self.extension(field.extension, before, value)
            else:
                self.attribute(prefix, field.scim, field.spec, _json(before), _json(value))
        extra = getattr(new, "extra", None)
        if extra:
            self.mapping(prefix, getattr(old, "extra", None) or {}, extra)
        if isinstance(new, Resource) and new.extensions:
            for urn, value in new.extensions.items():
                before = old.extension(urn) if old is not None else None
                if value is not None and value != before:
                    self.extension(urn, before, value)

    def extension(self, urn: str, old: Any, new: Any) -> None:
        if attrs.has(type(new)) and (old is None or type(old) is type(new)):
            self.model(old, new, urn)
        else:
            before = _json(old)
            self.mapping(urn, before if isinstance(before, dict) else {}, _json(new))

    def mapping(self, prefix: str | None, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """Compare attributes held as JSON (``extra``, extensions without a model)."""
        for key, value in new.items():
            before = lookup(old, key, key.lower())
            if value is None or value == before:
                continue
            spec = _spec(self.schema, self.resource_type, f"{prefix}:{key}" if prefix else key)
            if spec is not None and (spec.read_only or spec.write_only):
                continue
            self.attribute(prefix, key, spec, _json(before), _json(value))

    def attribute(
        self, prefix: str | None, name: str, spec: AttributeSpec | None, old: Any, new: Any
    ) -> None:
        """Compare one attribute's JSON values and record what changed."""
        if old == new:
            return
        try:
            path = AttrPath(name, urn=prefix)
        except FilterSyntaxError:  # a key no path can name: replace it through the value
            self.changes.append(
                _Set(name if prefix is None else f"{prefix}:{name}", None, old, new)
            )
            return
        fields = identity_fields(spec) if spec is not None and spec.multi_valued else ()
        scope = self.scopes.get(scope_key(prefix, name)) if self.scopes else None
        selects = scope.selects if scope is not None and isinstance(new, list) else None
        if fields and isinstance(new, list) and isinstance(old, (list, type(None))):
            change = self.values(path, spec, fields, old or [], new, selects=selects)
            if change is not None:
                if change.removed or change.changed or change.added:
                    self.changes.append(change)
                return
        if selects is not None and isinstance(old, list):
            # Values without identity: the ones outside the scope stay, the rest is new.
            kept = [e for e in old if not selects(e) and e not in new]
            if [e for e in old if e not in kept] != new:
                self.changes.append(_Set(str(path), path, old, [*kept, *new]))
            return
        if isinstance(new, dict) and (spec is None or (spec.complex and not spec.multi_valued)):
            self.complex(path, spec, old if isinstance(old, dict) else None, new)
            return
        self.changes.append(_Set(str(path), path, old, new))

    def complex(
        self, path: AttrPath, spec: AttributeSpec | None, old: dict[str, Any] | None, new: Any
    ) -> None:
        changed = _changed_subs(spec, old or {}, new)
        if not changed:
            return
        if not all(_is_name(sub) for sub in changed):
            self.changes.append(_Set(str(path), path, old, new))
            return
        self.changes.append(_Complex(path, changed, not old))

    def values(
        self,
        path: AttrPath,
        spec: AttributeSpec | None,
        fields: tuple[AttributeSpec, ...],
        old: list[Any],
        new: list[Any],
        *,
        selects: Callable[[Any], bool] | None = None,
    ) -> _Multi | None:
        """Match values by identity; None when some value has none (compare whole lists).

        With ``selects`` (an element scope), the values of ``old`` it does not select
        and ``new`` does not name are left alone: never removed.
        """
        new_by: dict[tuple[Any, ...], dict[str, Any]] = {}
        for element in new:
            key = identity(fields, element)
            if key is None:
                return None
            new_by.setdefault(key, _writable(spec, element))
        old_by: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        others: list[Any] = []  # outside the scope
        for element in old:
            key = identity(fields, element)
            if selects is not None and key not in new_by and not selects(element):
                others.append(element)
                continue
            if key is None:
                return None
            old_by.setdefault(key, []).append(element)
        removed, changed, added = [], [], []
        for key, elements in old_by.items():
            # A value listed twice is removed and added back once.
            if key not in new_by or len(elements) > 1:
                removed.append((identity_filter(fields, elements[0]), elements[0]))
        promoted = False
        for key, element in new_by.items():
            before = old_by.get(key)
            if before is None or len(before) > 1:
                added.append((identity_filter(fields, element), element))
                promoted = promoted or primary_of(element) is True
                continue
            selector = identity_filter(fields, before[0])
            for sub, (was, now) in _changed_subs(spec, before[0], element).items():
                changed.append((selector, sub, was, now))
                promoted = promoted or (sub == "primary" and now is True)
        demoted = []
        if promoted:
            # What RFC 7644 §3.5.2 has the target do: the other primary value stops
            # being primary. No operation (the target does it); said in the review.
            for element in (*others, *(e[0] for k, e in old_by.items() if k in new_by)):
                if primary_of(element) is not True:
                    continue
                wanted = new_by.get(identity(fields, element) or ())
                if wanted is None or primary_of(wanted) is None:
                    demoted.append((identity_filter(fields, element), element))
        return _Multi(path, removed, changed, added, demoted)


def primary_of(value: Any) -> Any:
    """The ``primary`` flag of a multi-valued attribute's value, as SCIM JSON or a model."""
    if isinstance(value, Mapping):
        return lookup(value, "primary", "primary")
    return getattr(value, "primary", None)


def _is_name(text: str) -> bool:
    try:
        AttrPath(text)
    except FilterSyntaxError:
        return False
    return True


def _writable(spec: AttributeSpec | None, element: Any) -> Any:
    """A value without the sub-attributes a client may not send."""
    if spec is None or not isinstance(element, dict):
        return element
    out = {}
    for key, value in element.items():
        sub = spec.sub(key)
        if value is not None and not (sub is not None and (sub.read_only or sub.write_only)):
            out[key] = value
    return out


def _changed_subs(
    spec: AttributeSpec | None, old: dict[str, Any], new: dict[str, Any]
) -> dict[str, tuple[Any, Any]]:
    changed: dict[str, tuple[Any, Any]] = {}
    for sub_name, value in new.items():
        if value is None:
            continue
        sub = spec.sub(sub_name) if spec is not None else None
        if sub is not None and (sub.read_only or sub.write_only):
            continue
        before = lookup(old, sub_name, sub_name.lower())
        if before != value and not _default_primary(sub_name, before, value):
            changed[sub.name if sub is not None else sub_name] = (before, value)
    return changed


def _default_primary(name: str, before: Any, value: Any) -> bool:
    """True for ``primary: false`` against a value held without ``primary``: false is its
    default (RFC 7643 §2.4), and targets leave it out."""
    return value is False and before is None and name.lower() == "primary"


def walk(
    old: Any,
    new: Any,
    schema: SchemaTable,
    scopes: tuple[ElementScope, ...] = (),
    *,
    fast: bool = True,
) -> list[_Change]:
    """What changed between two resources of one type, before rendering.

    Rendered as PATCH operations by :func:`operations` and for review by
    :func:`attribute_changes`; ``scopes`` limit multi-valued attributes to the values
    they select (see :mod:`scimsync.patch._scope`). ``fast=False`` skips the shortcuts
    telling an unchanged pair at a glance and compares attribute by attribute: the
    answer must be the same (the properties check it).
    """
    if type(old) is not type(new):
        raise TypeError(
            f"diff compares two resources of one type, got {type(old).__name__} "
            f"and {type(new).__name__}"
        )
    if not isinstance(new, Resource):
        raise TypeError(f"diff compares SCIM models (User, Group), got {type(new).__name__}")
    cls: Any = type(new)
    resource_type = cls.resource_type_name or None
    if fast and _unchanged_check(cls, schema, resource_type, None, scopes)(old, new):
        return []
    walker = _Walk(schema, resource_type, scopes, fast=fast)
    walker.model(old, new, None)
    return walker.changes


# -- rendering ----------------------------------------------------------------------------------


def _chunks(items: list[Any], size: int | None) -> list[list[Any]]:
    if not items:
        return []
    if size is None:
        return [items]
    return [items[start : start + size] for start in range(0, len(items), size)]


def _managed(
    new: Resource, managed: Iterable[str] | None, schema: SchemaTable
) -> tuple[Clearing | None, tuple[ElementScope, ...]]:
    """The compiled clearing of the ``managed`` paths, and their element scopes."""
    if not managed:
        return None, ()
    from ._managed import clearing, element_scopes

    paths = managed if type(managed) is tuple else tuple(managed)
    return clearing(type(new), paths, schema), element_scopes(type(new), paths, schema)


def cleared_values(
    compiled: Clearing | None, old: Resource, new: Resource, *, fast: bool = True
) -> list[Removal]:
    """The managed values ``old`` holds and ``new`` leaves unset (none without ``compiled``).

    ``fast=False`` skips the quick "nothing to clear" check (the answer is the same).
    """
    if compiled is None or (fast and not compiled.needed(old, new)):
        return []
    return compiled.removals(old, new)


def operations(
    changes: list[_Change], max_members_per_operation: int | None = None
) -> list[PatchOperation]:
    """The PATCH operations of walked ``changes`` (see :func:`diff`)."""
    out: list[PatchOperation] = []
    for change in changes:
        if isinstance(change, _Set):
            if change.path is None:
                out.append(PatchOperation(op="replace", value={change.key: change.new}))
            else:
                # replace, set or not before (RFC 7644 §3.5.2.3: a replace of an
                # attribute without a value adds it): what targets accept most widely.
                out.append(PatchOperation(op="replace", path=change.key, value=change.new))
        elif isinstance(change, _Complex):
            if len(change.changed) == 1 and not change.was_empty:
                ((sub, (_, now)),) = change.changed.items()
                path = AttrPath(change.path.name, sub=sub, urn=change.path.urn)
                out.append(PatchOperation(op="replace", path=str(path), value=now))
            else:
                value = {sub: now for sub, (_, now) in change.changed.items()}
                out.append(PatchOperation(op="replace", path=str(change.path), value=value))
        else:
            for chunk in _chunks(change.removed, max_members_per_operation):
                selector = or_(*(f for f, _ in chunk))
                out.append(PatchOperation(op="remove", path=str(Path(change.path, selector))))
            out.extend(
                PatchOperation(op="replace", path=str(Path(change.path, selector, sub)), value=now)
                for selector, sub, _, now in change.changed
            )
            out.extend(
                PatchOperation(op="add", path=str(change.path), value=[e for _, e in chunk])
                for chunk in _chunks(change.added, max_members_per_operation)
            )
    return out


def attribute_changes(changes: list[_Change]) -> list[AttributeChange]:
    """Walked ``changes`` one attribute (or one value) at a time (see
    :func:`changed_attributes`)."""
    out: list[AttributeChange] = []
    for change in changes:
        if isinstance(change, _Set):
            out.append(AttributeChange(change.key, change.old, change.new))
        elif isinstance(change, _Complex):
            for sub, (was, now) in change.changed.items():
                path = AttrPath(change.path.name, sub=sub, urn=change.path.urn)
                out.append(AttributeChange(str(path), was, now))
        else:
            for selector, element in change.removed:
                out.append(AttributeChange(str(Path(change.path, selector)), element, None))
            for selector, sub, was, now in change.changed:
                out.append(AttributeChange(str(Path(change.path, selector, sub)), was, now))
            for selector, element in change.added:
                out.append(AttributeChange(str(Path(change.path, selector)), None, element))
            for selector, _ in change.demoted:
                out.append(
                    AttributeChange(str(Path(change.path, selector, "primary")), True, False)
                )
    return out


def diff(
    old: Resource,
    new: Resource,
    *,
    schema: SchemaTable = CORE_SCHEMAS,
    max_members_per_operation: int | None = None,
    managed: Iterable[str] | None = None,
) -> list[PatchOperation]:
    """The PATCH operations turning ``old`` into ``new`` for the attributes ``new`` sets.

    ``old`` is what the target holds, ``new`` what it should hold (both ``User`` or
    both ``Group``). Attributes ``new`` leaves as None are not compared; readOnly
    attributes and writeOnly / ``returned: never`` ones (a password) are never emitted.
    A changed single-valued attribute is one ``replace`` operation, also when
    ``old`` has no value (RFC 7644 §3.5.2.3: it is then added; targets accept
    ``replace`` more widely than ``add``). Values of multi-valued complex attributes are matched by
    identity (members by ``value``, emails by ``type`` and ``value``): removed ones go
    in one ``remove`` with a value filter (``members[value eq "a" or value eq "b"]``),
    changed sub-attributes are ``replace`` operations on a filtered path, new ones one
    ``add``. ``max_members_per_operation`` caps how many values one ``add`` or
    ``remove`` carries (targets commonly accept 100 or fewer per operation).

    ``managed`` names the attribute paths ``new`` speaks for (as
    :attr:`Mapping.managed_user_attributes <scimsync.mapping.Mapping.managed_user_attributes>`
    gives them). A managed value ``new`` leaves unset is removed. A multi-valued
    attribute whose managed paths are all filtered element paths
    (``emails[type eq "work"].value``) is compared only on the values those filters
    select: ``old``'s other values (a home email) are left alone, never removed.

    The output is deterministic: attributes in schema order, then removals, changes
    and additions in the order of the values. ``diff(x, x) == []``, and
    ``apply_patch(old, diff(old, new))`` agrees with ``new`` on every attribute ``new``
    sets (on the values in scope, for a scoped attribute).
    """
    if max_members_per_operation is not None and max_members_per_operation < 1:
        raise ValueError("max_members_per_operation must be at least 1")
    compiled, scopes = _managed(new, managed, schema)
    out = operations(walk(old, new, schema, scopes), max_members_per_operation)
    out.extend(
        PatchOperation(op="remove", path=removal.path)
        for removal in cleared_values(compiled, old, new)
    )
    return out


def changed_attributes(
    old: Resource,
    new: Resource,
    *,
    schema: SchemaTable = CORE_SCHEMAS,
    managed: Iterable[str] | None = None,
) -> list[AttributeChange]:
    """What :func:`diff` would change, one attribute (or one value) at a time.

    For showing a plan: ``[AttributeChange("title", "Guide", "Lead"),
    AttributeChange('members[value eq "42"]', None, {"value": "42"})]``. Same rules and
    order as :func:`diff` (a managed value removed has ``new`` None); values are SCIM
    JSON. One more kind of entry says what the target does by itself: when a value
    becomes ``primary``, another value that was primary stops being so (RFC 7644
    §3.5.2), shown as ``emails[...].primary`` going from ``True`` to ``False``.
    """
    compiled, scopes = _managed(new, managed, schema)
    out = attribute_changes(walk(old, new, schema, scopes))
    out.extend(
        AttributeChange(removal.path, removal.old, None)
        for removal in cleared_values(compiled, old, new)
    )
    return out
