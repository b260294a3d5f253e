"""The two sides a sync compares: what the source wants, and what the target holds.

These are the values the mapping produces and the target listing fills, and the
inputs of :func:`scimsync.engine.plan`. They are plain data: no I/O, no clock.
"""

from __future__ import annotations

import attrs

from ._base import to_tuple_or_empty
from ._resources import Group, User

__all__ = ["DesiredGroup", "DesiredState", "DesiredUser", "TargetState"]


@attrs.frozen(kw_only=True)
class DesiredUser:
    """A user as the source wants it on the target.

    ``key`` is the stable source key (an employee number, an ``objectGUID``, ...);
    ``user`` holds only the attributes the mapping manages. ``create_only`` holds
    attributes sent when the user is created and never compared afterwards (an initial
    password, say).
    """

    key: str
    user: User
    create_only: User | None = None


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
    """Everything the source wants. ``complete`` is False when the read was partial."""

    users: tuple[DesiredUser, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    groups: tuple[DesiredGroup, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    complete: bool = True


@attrs.frozen(kw_only=True)
class TargetState:
    """Everything the target listing returned. ``complete`` is False when it came out short.

    An incomplete listing is never read as "these accounts are gone": the engine does
    not deprovision from it.
    """

    users: tuple[User, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    groups: tuple[Group, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    complete: bool = True
