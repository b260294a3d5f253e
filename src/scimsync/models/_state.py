"""The two sides a sync compares: what the source wants, and what the target holds.

These are the values the mapping produces and the target listing fills, and the
inputs of :func:`scimsync.engine.plan`. They are plain data: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from ._base import to_tuple_or_empty
from ._resources import Group, User

__all__ = ["DesiredGroup", "DesiredState", "DesiredUser", "TargetState"]


def _references(
    values: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    if not values:
        return ()
    pairs = values.items() if isinstance(values, Mapping) else values
    return tuple(sorted((str(path), str(key)) for path, key in pairs))


def _paths(values: Iterable[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):  # one path, not its letters
        return (values,)
    return tuple(sorted(set(values)))


def _kept_paths(values: Iterable[str] | None) -> tuple[str, ...]:
    return _paths(values) or ()


_NO_KEYS: Mapping[str, str] = MappingProxyType({})


def _protected_keys(values: Mapping[str, str] | Iterable[str] | None) -> Mapping[str, str]:
    """Source key -> why, sorted by key; bare keys get an empty reason."""
    if not values:
        return _NO_KEYS
    if isinstance(values, str):  # one key, not its letters
        values = (values,)
    pairs = values.items() if isinstance(values, Mapping) else ((key, "") for key in values)
    return MappingProxyType(dict(sorted((str(key), str(why)) for key, why in pairs)))


@attrs.frozen(kw_only=True)
class DesiredUser:
    """A user as the source wants it on the target.

    ``key`` is the stable source key (an employee number, an ``objectGUID``, ...);
    ``user`` holds only the attributes the mapping manages. ``create_only`` holds
    attributes sent when the user is created and never compared afterwards (an initial
    password, say).

    ``references`` names attributes whose value is the target id of *another* user of
    the source, by that user's source key: ``{"urn:ietf:params:scim:schemas:extension:
    enterprise:2.0:User:manager.value": "E42"}``. The engine writes the id of the
    account ``E42`` is linked to there (or, when the same plan creates it, a
    placeholder resolved at apply time); ``user`` leaves those attributes unset. Given
    as a mapping or as pairs, kept as sorted ``(path, key)`` pairs.
    """

    key: str
    user: User
    create_only: User | None = None
    references: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_references)


@attrs.frozen(kw_only=True)
class DesiredGroup:
    """A group as the source wants it: its attributes and its members' source keys.

    Members are named by the *source keys* of desired users (``member_keys``), not by
    target ids: matching turns them into ids, or placeholders for users the same plan
    creates.
    """

    key: str
    group: Group
    member_keys: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)


@attrs.frozen(kw_only=True)
class DesiredState:
    """Everything the source wants.

    ``complete`` is False when identities may be missing that nobody can name: the
    read stopped early, a record had no key or could not be read at all. Then the
    engine deprovisions nothing (the ``incomplete_listing`` guard).

    ``protected_user_keys`` / ``protected_group_keys`` name the identities the source
    holds but could not describe: a record with an invalid value, a mapping that
    failed on it, a key held by two records. Source key -> why (the reason, for
    people; may be empty), given as a mapping or as bare keys, kept sorted by key.
    Such an identity is missing from ``users`` / ``groups`` (or, when it is there,
    its memberships may not be), so the engine neither deactivates nor deletes its
    account and removes it from no group, while every other deprovision of the plan
    goes ahead (see :func:`scimsync.engine.plan`). The mapping fills both.

    ``managed_user_attributes`` / ``managed_group_attributes`` are the attribute paths
    the source speaks for on every user / group, as a mapping writes them
    (``title``, ``name.givenName``, ``emails[type eq "work"].value``, URN-qualified
    extension attributes): a managed attribute that a desired resource leaves unset
    is *cleared* on the target (HR removed someone's title: the target's title goes
    too). ``None``, the default, means "only what each desired resource sets is
    managed": nothing is ever cleared. The mapping fills both; kept sorted.

    ``kept_user_attributes`` / ``kept_group_attributes`` are the paths the source
    writes when it has a value and never clears (``keep_when_empty``).

    Together they say which values of a multi-valued attribute the source speaks
    for: when every path naming ``emails`` is a filtered element path
    (``emails[type eq "work"].value``), only the emails those filters select are
    compared, changed or removed; the target's other emails stay as they are.
    """

    users: tuple[DesiredUser, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    groups: tuple[DesiredGroup, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    complete: bool = True
    managed_user_attributes: tuple[str, ...] | None = attrs.field(default=None, converter=_paths)
    managed_group_attributes: tuple[str, ...] | None = attrs.field(default=None, converter=_paths)
    kept_user_attributes: tuple[str, ...] = attrs.field(default=(), converter=_kept_paths)
    kept_group_attributes: tuple[str, ...] = attrs.field(default=(), converter=_kept_paths)
    # Compared by ``==``, left out of ``hash()`` (a read-only mapping has no hash).
    protected_user_keys: Mapping[str, str] = attrs.field(
        default=_NO_KEYS, converter=_protected_keys, hash=False
    )
    protected_group_keys: Mapping[str, str] = attrs.field(
        default=_NO_KEYS, converter=_protected_keys, hash=False
    )


@attrs.frozen(kw_only=True)
class TargetState:
    """Everything the target listing returned. ``complete`` is False when it came out short.

    An incomplete listing is never read as "these accounts are gone": the engine does
    not deprovision from it. ``problems`` says why a listing came out short, one text
    each (``"users: the page at startIndex 201 was empty after 200 of 950 resources
    announced"``), for the guard's reason and the report.
    """

    users: tuple[User, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    groups: tuple[Group, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    complete: bool = True
    problems: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
