"""Paths the engine leaves out: what a target does not keep, or a person says to ignore.

A target that drops ``title`` however often it is sent, or returns emails without
their ``type``, would have the same update planned on every cycle forever. The
runner learns such paths (:attr:`Ledger.unkept <scimsync.engine.Ledger.unkept>`) and
people may name more (:attr:`Policy.ignore_paths <scimsync.engine.Policy.ignore_paths>`).
Before planning, :func:`ignoring` takes them out of both sides, so they are neither
compared nor written:

- an ignored path is removed from every desired resource (its create-only values
  too) and from every account listed, so the comparison cannot see it; a reference
  (a manager) written at an ignored path is dropped;
- a managed path under an ignored one is no longer managed (never cleared);
- a managed element path whose filter reads an ignored sub-attribute
  (``emails[type eq "work"].value`` on a target without ``emails.type``) names the
  whole attribute instead (``emails.value``): the target cannot tell the values
  apart any more, so the list the source writes is compared whole;
- a path the target does not clear (a removal it answers with success and ignores)
  stays compared and written when set, but is no longer cleared: it moves from the
  managed paths to the kept ones;
- a path the target changes (a phone number it normalises) is not compared, but a
  user created still gets its value: it moves to the create-only values;
- a path with a value filter (``emails[type eq "home"]``: learned when a target does
  not keep the values a mapping writes with that filter) names only the values it
  selects: they are taken out of both sides, the managed path naming that filter is
  no longer managed, and the other values (the work email) are compared and written
  as before. Sent on create, the attribute goes whole (a create-only value replaces
  a list): the values still compared and those the target changes.

Pure, like the rest of the engine; with nothing to ignore it returns its inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from ..codec import from_scim, to_scim
from ..errors import InvalidPathError
from ..filter import AttrPath, Filter
from ..filter._eval import lookup
from ..filter._nodes import compile_value_filter
from ..models import ENTERPRISE_USER_SCHEMA, DesiredState, Group, TargetState, User
from ..patch import Path, parse_path
from ..patch._managed import _fields
from ._changes import overlay

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..models import DesiredGroup, DesiredUser, Resource
    from ..schema import SchemaTable

__all__ = [
    "IgnoredPath",
    "canonical_path",
    "ignoring",
    "only_paths",
    "parse_ignored",
    "without_paths",
]


class IgnoredPath(NamedTuple):
    """One ignored path: ``urn`` (None for the core schema), ``attribute``, ``sub``, and
    ``value_filter`` when only the values it selects are meant
    (``emails[type eq "home"]``: the home email, not every email)."""

    urn: str | None
    attribute: str
    sub: str | None
    value_filter: Filter | None = None

    @property
    def text(self) -> str:
        """The path as SCIM writes it (``name.givenName``, ``urn:…:User:department``,
        ``emails[type eq "home"]``)."""
        if self.value_filter is not None:
            return str(Path(AttrPath(self.attribute, urn=self.urn), self.value_filter, self.sub))
        return str(AttrPath(self.attribute, sub=self.sub, urn=self.urn))

    def covers(
        self,
        urn: str | None,
        attribute: str,
        sub: str | None,
        value_filter: Filter | None = None,
    ) -> bool:
        """True when this path is, or holds, the path ``urn:attribute.sub`` (of the
        values ``value_filter`` selects, when given).

        A path without a filter holds every value's, filtered or not; one with a
        filter holds only what names the same filter.
        """
        if (self.urn or "").lower() != (urn or "").lower():
            return False
        if self.attribute.lower() != attribute.lower():
            return False
        if self.value_filter is not None and (
            value_filter is None or str(value_filter).lower() != str(self.value_filter).lower()
        ):
            return False
        return self.sub is None or (sub is not None and self.sub.lower() == sub.lower())


@functools.lru_cache(maxsize=512)
def parse_ignored(text: str, resource_type: str, schema: SchemaTable) -> IgnoredPath:
    """``text`` as an :class:`IgnoredPath`, in the schema's spelling.

    A path with a value filter (``emails[type eq "home"]``, what a target was seen not
    to keep of the values a mapping writes with that filter) names only the values it
    selects. Raises :class:`~scimsync.errors.InvalidPathError` for a path that is not one.
    """
    path = parse_path(text)
    attribute = path.attribute
    cls: type[Resource] = User if resource_type == "User" else Group
    urn = attribute.urn
    if urn is not None and urn.lower() == cls.schema_urn.lower():
        urn = None
    if urn is not None:
        urn = next(
            (u for u in schema.extension_urns(resource_type) if u.lower() == urn.lower()), urn
        )
    top = attribute.name if urn is None else f"{urn}:{attribute.name}"
    spec = schema.resolve(resource_type, top)
    name = spec.name if spec is not None else attribute.name
    sub = attribute.sub if path.value_filter is None else path.sub_attribute
    if spec is not None and sub is not None:
        sub_spec = spec.sub(sub)
        sub = sub_spec.name if sub_spec is not None else sub
    return IgnoredPath(urn, name, sub, path.value_filter)


def canonical_path(text: str, resource_type: str, schema: SchemaTable) -> str:
    """``text`` spelled as the schema spells it (``NAME.givenname`` → ``name.givenName``)."""
    return parse_ignored(text, resource_type, schema).text


# -- taking paths out of resources ------------------------------------------------------------


#: What takes values out of one multi-valued attribute: whether a value is selected,
#: and the sub-attribute to take out of it (None: the value itself).
_Selected = tuple["Callable[[Any], bool]", "str | None"]


def without_paths(
    resource: Any, paths: Iterable[IgnoredPath], schema: SchemaTable | None = None
) -> Any:
    """``resource`` without any value at ``paths``; the same object when it holds none.

    A path with a value filter takes out only the values it selects (or their
    sub-attribute); ``schema`` tells how the filter reads them (the core schemas when
    None).
    """
    core: dict[str, set[str] | None] = {}
    by_urn: dict[str, dict[str, set[str] | None]] = {}
    core_selected: dict[str, list[_Selected]] = {}
    selected_by_urn: dict[str, dict[str, list[_Selected]]] = {}
    resource_type = getattr(resource, "resource_type_name", None)
    for path in paths:
        if path.value_filter is not None:
            sel = (
                core_selected
                if path.urn is None
                else selected_by_urn.setdefault(path.urn.lower(), {})
            )
            selects = _selector(path, resource_type, schema or _core_schemas())
            sel.setdefault(path.attribute.lower(), []).append((selects, path.sub))
            continue
        into = core if path.urn is None else by_urn.setdefault(path.urn.lower(), {})
        _note(into, path.attribute, path.sub)
    result = _drop(resource, core, core_selected) if core or core_selected else resource
    urns = by_urn.keys() | selected_by_urn.keys()
    if not urns:
        return result
    changes: dict[str, Any] = {}
    enterprise = ENTERPRISE_USER_SCHEMA.lower()
    if isinstance(result, User) and result.enterprise is not None and enterprise in urns:
        stripped = _drop(
            result.enterprise, by_urn.get(enterprise, {}), selected_by_urn.get(enterprise, {})
        )
        if stripped is not result.enterprise:
            changes["enterprise"] = None if _empty(stripped) else stripped
    if result.extensions:
        extensions = dict(result.extensions)
        for urn, value in result.extensions.items():
            if urn.lower() in urns:
                stripped = _drop(
                    value, by_urn.get(urn.lower(), {}), selected_by_urn.get(urn.lower(), {})
                )
                if stripped is not value and _empty(stripped):
                    del extensions[urn]  # an extension holding nothing is not sent
                else:
                    extensions[urn] = stripped
        if extensions.keys() != result.extensions.keys() or any(
            extensions[urn] is not value for urn, value in result.extensions.items()
        ):
            changes["extensions"] = extensions
    return attrs.evolve(result, **changes) if changes else result


def _core_schemas() -> SchemaTable:
    from ..schema import CORE_SCHEMAS

    return CORE_SCHEMAS


@functools.lru_cache(maxsize=256)
def _selector(
    path: IgnoredPath, resource_type: str | None, schema: SchemaTable
) -> Callable[[Any], bool]:
    """Whether one value (a model or its SCIM JSON) is one ``path``'s filter selects."""
    assert path.value_filter is not None
    return compile_value_filter(
        path.value_filter, AttrPath(path.attribute, urn=path.urn), resource_type, schema
    )


def _note(into: dict[str, set[str] | None], attribute: str, sub: str | None) -> None:
    key = attribute.lower()
    if sub is None:
        into[key] = None
    elif key not in into or into[key] is not None:
        subs = into.setdefault(key, set())
        assert subs is not None
        subs.add(sub.lower())


_NOTHING_SELECTED: Mapping[str, list[_Selected]] = {}


def _drop(
    container: Any,
    names: Mapping[str, set[str] | None],
    selected: Mapping[str, list[_Selected]] = _NOTHING_SELECTED,
) -> Any:
    """``container`` (a model or a JSON object) without the named attributes: a name
    mapped to None goes whole, otherwise only the given sub-attributes of its value(s);
    of the attributes in ``selected``, the values (or sub-attributes of the values)
    their filters select."""
    if isinstance(container, Mapping):
        out = dict(container)
        changed = False
        for key, held in container.items():
            folded = key.lower()
            value = held
            if folded in names:
                subs = names[folded]
                if subs is None:
                    del out[key]
                    changed = True
                    continue
                value = _drop_subs(held, subs)
                if value is not held:
                    out[key] = value
                    changed = True
            if folded in selected:
                stripped = _drop_selected(value, selected[folded])
                if stripped is not value:
                    if stripped is None:
                        del out[key]
                    else:
                        out[key] = stripped
                    changed = True
        return out if changed else container
    if not attrs.has(type(container)):
        return container
    fields = _fields(type(container))
    changes: dict[str, Any] = {}
    extra: dict[str, set[str] | None] = {}
    extra_selected: dict[str, list[_Selected]] = {}
    for name, subs in names.items():
        field = fields.get(name)
        if field is None:
            extra[name] = subs
            continue
        value = getattr(container, field)
        if value is None:
            continue
        if subs is None:
            changes[field] = None
        else:
            stripped = _drop_subs(value, subs)
            if stripped is not value:
                changes[field] = stripped
    for name, entries in selected.items():
        field = fields.get(name)
        if field is None:
            extra_selected[name] = entries
            continue
        value = changes.get(field, getattr(container, field))
        if value is None:
            continue
        stripped = _drop_selected(value, entries)
        if stripped is not value:
            changes[field] = stripped
    if (extra or extra_selected) and getattr(container, "extra", None):
        stripped_extra = _drop(container.extra, extra, extra_selected)
        if stripped_extra is not container.extra:
            changes["extra"] = stripped_extra
    return attrs.evolve(container, **changes) if changes else container


def _drop_subs(value: Any, subs: set[str]) -> Any:
    names: dict[str, set[str] | None] = dict.fromkeys(subs)
    if isinstance(value, (tuple, list)):
        items = [_drop(item, names) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    stripped = _drop(value, names)
    return None if stripped is not value and _empty(stripped) else stripped


def _drop_selected(value: Any, entries: list[_Selected]) -> Any:
    """The values of a multi-valued attribute without those (or the sub-attributes of
    those) ``entries`` select; None when no value is left."""
    if not isinstance(value, (tuple, list)):
        return value
    items = []
    changed = False
    for item in value:
        new = item
        for selects, sub in entries:
            if new is None or not selects(item):
                continue
            new = None if sub is None else _drop(new, {sub.lower(): None})
        changed = changed or new is not item
        if new is not None:
            items.append(new)
    if not changed:
        return value
    if not items:
        return None
    return tuple(items) if isinstance(value, tuple) else items


def _empty(value: Any) -> bool:
    """True for a complex value holding nothing (``name`` with every part taken out)."""
    if isinstance(value, Mapping):
        return not value
    return attrs.has(type(value)) and all(
        getattr(value, field.name) in (None, {}) for field in attrs.fields(type(value))
    )


# -- the desired and target states --------------------------------------------------------------


class _Paths:
    """The ignored and never-cleared paths of one resource type, parsed."""

    def __init__(
        self,
        resource_type: str,
        ignored: Iterable[str],
        uncleared: Iterable[str],
        schema: SchemaTable,
    ) -> None:
        self.resource_type = resource_type
        self.schema = schema
        self.ignored = tuple(
            dict.fromkeys(parse_ignored(text, resource_type, schema) for text in ignored)
        )
        self.uncleared = tuple(
            dict.fromkeys(parse_ignored(text, resource_type, schema) for text in uncleared)
        )

    def __bool__(self) -> bool:
        return bool(self.ignored or self.uncleared)

    def strip(self, resource: Any) -> Any:
        return without_paths(resource, self.ignored, self.schema) if self.ignored else resource

    def managed(
        self, managed: tuple[str, ...] | None, kept: tuple[str, ...]
    ) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        """The managed and kept paths with the ignored ones out, the uncleared ones kept."""
        new_kept = [p for text in kept if (p := self._rewritten(text)) is not None]
        if managed is None:
            return None, tuple(new_kept)
        new_managed = []
        for text in managed:
            rewritten = self._rewritten(text)
            if rewritten is None:
                continue
            if self._uncleared(rewritten):
                new_kept.append(rewritten)
            else:
                new_managed.append(rewritten)
        return tuple(new_managed), tuple(new_kept)

    def _parts(self, path: Path) -> tuple[str | None, str, str | None, Filter | None]:
        """``(urn, attribute, sub, value filter)`` a path names (the core schema's URN as
        None)."""
        attribute = path.attribute
        urn = attribute.urn
        cls: type[Resource] = User if self.resource_type == "User" else Group
        if urn is not None and urn.lower() == cls.schema_urn.lower():
            urn = None
        sub = attribute.sub if path.value_filter is None else path.sub_attribute
        return urn, attribute.name, sub, path.value_filter

    def _rewritten(self, text: str) -> str | None:
        """A managed path with what is ignored taken out: None when nothing is left."""
        try:
            path = parse_path(text)
        except InvalidPathError:
            return text  # the planner reports it
        urn, name, sub, value_filter = self._parts(path)
        if any(p.covers(urn, name, sub, value_filter) for p in self.ignored):
            return None
        if value_filter is not None:
            read = {p.name.lower() for p in value_filter.attribute_paths()}
            if any(
                p.sub is not None
                and p.value_filter is None
                and p.sub.lower() in read
                and p.covers(urn, name, p.sub)
                for p in self.ignored
            ):
                return str(AttrPath(name, sub=sub or "value", urn=path.attribute.urn))
        return text

    def _uncleared(self, text: str) -> bool:
        return any(p.covers(*self._parts(parse_path(text))) for p in self.uncleared)

    def references(self, references: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        if not references or not self.ignored:
            return references
        return tuple(
            (text, key)
            for text, key in references
            if not any(p.covers(*self._parts(parse_path(text))) for p in self.ignored)
        )


def ignoring(
    desired: DesiredState,
    actual: TargetState,
    *,
    schema: SchemaTable,
    user_ignored: Iterable[str] = (),
    group_ignored: Iterable[str] = (),
    user_uncleared: Iterable[str] = (),
    group_uncleared: Iterable[str] = (),
    user_sent_on_create: Iterable[str] = (),
) -> tuple[DesiredState, TargetState]:
    """``desired`` and ``actual`` with the ignored paths out of both (see the module
    documentation); the inputs themselves when there is nothing to ignore."""
    users = _Paths("User", user_ignored, user_uncleared, schema)
    on_create = tuple(
        dict.fromkeys(parse_ignored(text, "User", schema) for text in user_sent_on_create)
    )
    groups = _Paths("Group", group_ignored, group_uncleared, schema)
    if not users and not groups:
        return desired, actual
    changes: dict[str, Any] = {}
    if users:
        changes["users"] = tuple(_desired_user(d, users, on_create) for d in desired.users)
        managed, kept = users.managed(desired.managed_user_attributes, desired.kept_user_attributes)
        changes["managed_user_attributes"] = managed
        changes["kept_user_attributes"] = kept
    if groups:
        changes["groups"] = tuple(_desired_group(d, groups) for d in desired.groups)
        managed, kept = groups.managed(
            desired.managed_group_attributes, desired.kept_group_attributes
        )
        changes["managed_group_attributes"] = managed
        changes["kept_group_attributes"] = kept
    new_desired = attrs.evolve(desired, **changes)
    new_actual = attrs.evolve(
        actual,
        users=tuple(map(users.strip, actual.users)) if users.ignored else actual.users,
        groups=tuple(map(groups.strip, actual.groups)) if groups.ignored else actual.groups,
    )
    return new_desired, new_actual


def _desired_user(
    record: DesiredUser, paths: _Paths, on_create: tuple[IgnoredPath, ...]
) -> DesiredUser:
    user = paths.strip(record.user)
    create_only = paths.strip(record.create_only) if record.create_only is not None else None
    if on_create:
        held = only_paths(record.user, on_create, paths.schema)
        if held is not None:
            held = _whole_lists(record.user, held, paths, on_create)
            create_only = held if create_only is None else overlay(held, create_only)
    references = paths.references(record.references)
    if (
        user is record.user
        and create_only is record.create_only
        and references is record.references
    ):
        return record
    return attrs.evolve(record, user=user, create_only=create_only, references=references)


def _whole_lists(user: User, held: User, paths: _Paths, on_create: tuple[IgnoredPath, ...]) -> User:
    """``held`` (what a create sends of the paths the target changes) with each
    multi-valued attribute some of whose values it holds (``emails[type eq "home"]``)
    as the create sends it whole: those values and the ones still compared (the work
    email), without those ignored otherwise. A create-only value replaces a list whole."""
    heads = tuple(
        dict.fromkeys(
            IgnoredPath(p.urn, p.attribute, None)
            for p in on_create
            if p.value_filter is not None and only_paths(user, (p,), paths.schema) is not None
        )
    )
    if not heads:
        return held
    sent = without_paths(user, [p for p in paths.ignored if p not in on_create], paths.schema)
    lists = only_paths(sent, heads)
    return held if lists is None else overlay(held, lists)


def only_paths(
    user: User, paths: Iterable[IgnoredPath], schema: SchemaTable | None = None
) -> User | None:
    """A user holding only ``user``'s values at ``paths`` (None when it holds none):
    whole attributes, sub-attributes of singular complex ones, or the values a path's
    filter selects (``emails[type eq "home"]``, read as ``schema`` says)."""
    data = to_scim(user)
    out: dict[str, Any] = {}
    for path in paths:
        source: Any = data if path.urn is None else lookup(data, path.urn, path.urn.lower())
        if not isinstance(source, Mapping):
            continue
        value = lookup(source, path.attribute, path.attribute.lower())
        if path.value_filter is not None:
            selects = _selector(path, "User", schema or _core_schemas())
            chosen = [v for v in value if selects(v)] if isinstance(value, list) else []
            if not chosen:
                continue
            into = out if path.urn is None else out.setdefault(path.urn, {})
            held_values = into.setdefault(path.attribute, [])
            if isinstance(held_values, list):  # else the whole attribute is held already
                held_values.extend(v for v in chosen if v not in held_values)
            continue
        if path.sub is not None:
            value = (
                lookup(value, path.sub, path.sub.lower()) if isinstance(value, Mapping) else None
            )
            value = None if value is None else {path.sub: value}
        if value is None:
            continue
        into = out if path.urn is None else out.setdefault(path.urn, {})
        held = into.get(path.attribute)
        if isinstance(held, dict) and isinstance(value, dict):
            held.update(value)
        else:
            into[path.attribute] = value
    if not out:
        return None
    out["schemas"] = [User.schema_urn, *(k for k in out if k.lower().startswith("urn:"))]
    return from_scim(out, User)


def _desired_group(record: DesiredGroup, paths: _Paths) -> DesiredGroup:
    group = paths.strip(record.group)
    return record if group is record.group else attrs.evolve(record, group=group)
