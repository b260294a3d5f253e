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
  user created still gets its value: it moves to the create-only values.

Pure, like the rest of the engine; with nothing to ignore it returns its inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from ..codec import from_scim, to_scim
from ..errors import InvalidPathError
from ..filter import AttrPath
from ..filter._eval import lookup
from ..models import ENTERPRISE_USER_SCHEMA, DesiredState, Group, TargetState, User
from ..patch import Path, parse_path
from ..patch._managed import _fields
from ._changes import overlay

if TYPE_CHECKING:
    from collections.abc import Iterable

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
    """One ignored path: ``urn`` (None for the core schema), ``attribute``, ``sub``."""

    urn: str | None
    attribute: str
    sub: str | None

    @property
    def text(self) -> str:
        """The path as SCIM writes it (``name.givenName``, ``urn:…:User:department``)."""
        return str(AttrPath(self.attribute, sub=self.sub, urn=self.urn))

    def covers(self, urn: str | None, attribute: str, sub: str | None) -> bool:
        """True when this path is, or holds, the path ``urn:attribute.sub``."""
        if (self.urn or "").lower() != (urn or "").lower():
            return False
        if self.attribute.lower() != attribute.lower():
            return False
        return self.sub is None or (sub is not None and self.sub.lower() == sub.lower())


@functools.lru_cache(maxsize=512)
def parse_ignored(text: str, resource_type: str, schema: SchemaTable) -> IgnoredPath:
    """``text`` as an :class:`IgnoredPath`, in the schema's spelling.

    Raises :class:`~scimsync.errors.InvalidPathError` for a path with a value filter
    (an ignored path names an attribute or a sub-attribute of every value).
    """
    path = parse_path(text)
    if path.value_filter is not None:
        raise InvalidPathError(f"{text!r}: an ignored path names no value filter")
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
    sub = attribute.sub
    if spec is not None and sub is not None:
        sub_spec = spec.sub(sub)
        sub = sub_spec.name if sub_spec is not None else sub
    return IgnoredPath(urn, name, sub)


def canonical_path(text: str, resource_type: str, schema: SchemaTable) -> str:
    """``text`` spelled as the schema spells it (``NAME.givenname`` → ``name.givenName``)."""
    return parse_ignored(text, resource_type, schema).text


# -- taking paths out of resources ------------------------------------------------------------


def without_paths(resource: Any, paths: Iterable[IgnoredPath]) -> Any:
    """``resource`` without any value at ``paths``; the same object when it holds none."""
    core: dict[str, set[str] | None] = {}
    by_urn: dict[str, dict[str, set[str] | None]] = {}
    for path in paths:
        into = core if path.urn is None else by_urn.setdefault(path.urn.lower(), {})
        _note(into, path.attribute, path.sub)
    result = _drop(resource, core) if core else resource
    if not by_urn:
        return result
    changes: dict[str, Any] = {}
    if isinstance(result, User) and result.enterprise is not None:
        names = by_urn.pop(ENTERPRISE_USER_SCHEMA.lower(), None)
        if names is not None:
            stripped = _drop(result.enterprise, names)
            if stripped is not result.enterprise:
                changes["enterprise"] = None if _empty(stripped) else stripped
    if by_urn and result.extensions:
        extensions = dict(result.extensions)
        for urn, value in result.extensions.items():
            names = by_urn.get(urn.lower())
            if names is not None:
                stripped = _drop(value, names)
                if stripped is not value and _empty(stripped):
                    del extensions[urn]  # an extension holding nothing is not sent
                else:
                    extensions[urn] = stripped
        if extensions.keys() != result.extensions.keys() or any(
            extensions[urn] is not value for urn, value in result.extensions.items()
        ):
            changes["extensions"] = extensions
    return attrs.evolve(result, **changes) if changes else result


def _note(into: dict[str, set[str] | None], attribute: str, sub: str | None) -> None:
    key = attribute.lower()
    if sub is None:
        into[key] = None
    elif key not in into or into[key] is not None:
        subs = into.setdefault(key, set())
        assert subs is not None
        subs.add(sub.lower())


def _drop(container: Any, names: Mapping[str, set[str] | None]) -> Any:
    """``container`` (a model or a JSON object) without the named attributes: a name
    mapped to None goes whole, otherwise only the given sub-attributes of its value(s)."""
    if isinstance(container, Mapping):
        out = dict(container)
        changed = False
        for key, value in container.items():
            if key.lower() not in names:
                continue
            subs = names[key.lower()]
            if subs is None:
                del out[key]
                changed = True
            else:
                stripped = _drop_subs(value, subs)
                if stripped is not value:
                    out[key] = stripped
                    changed = True
        return out if changed else container
    if not attrs.has(type(container)):
        return container
    fields = _fields(type(container))
    changes: dict[str, Any] = {}
    extra: dict[str, set[str] | None] = {}
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
    if extra and getattr(container, "extra", None):
        stripped_extra = _drop(container.extra, extra)
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
        return without_paths(resource, self.ignored) if self.ignored else resource

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

    def _parts(self, path: Path) -> tuple[str | None, str, str | None]:
        """``(urn, attribute, sub)`` a path names (the core schema's URN as None)."""
        attribute = path.attribute
        urn = attribute.urn
        cls: type[Resource] = User if self.resource_type == "User" else Group
        if urn is not None and urn.lower() == cls.schema_urn.lower():
            urn = None
        sub = attribute.sub if path.value_filter is None else path.sub_attribute
        return urn, attribute.name, sub

    def _rewritten(self, text: str) -> str | None:
        """A managed path with what is ignored taken out: None when nothing is left."""
        try:
            path = parse_path(text)
        except InvalidPathError:
            return text  # the planner reports it
        urn, name, sub = self._parts(path)
        if any(p.covers(urn, name, sub) for p in self.ignored):
            return None
        value_filter = path.value_filter
        if value_filter is not None:
            read = {p.name.lower() for p in value_filter.attribute_paths()}
            if any(
                p.sub is not None and p.sub.lower() in read and p.covers(urn, name, p.sub)
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
    on_create = tuple(parse_ignored(text, "User", schema) for text in user_sent_on_create)
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
        held = only_paths(record.user, on_create)
        if held is not None:
            create_only = held if create_only is None else overlay(held, create_only)
    references = paths.references(record.references)
    if (
        user is record.user
        and create_only is record.create_only
        and references is record.references
    ):
        return record
    return attrs.evolve(record, user=user, create_only=create_only, references=references)


def only_paths(user: User, paths: Iterable[IgnoredPath]) -> User | None:
    """A user holding only ``user``'s values at ``paths`` (None when it holds none):
    whole attributes, or sub-attributes of singular complex ones."""
    data = to_scim(user)
    out: dict[str, Any] = {}
    for path in paths:
        source: Any = data if path.urn is None else lookup(data, path.urn, path.urn.lower())
        if not isinstance(source, Mapping):
            continue
        value = lookup(source, path.attribute, path.attribute.lower())
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
