"""References: user attributes holding the target id of another user of the source.

A desired user says "my manager is E42" (:attr:`~scimsync.models.DesiredUser.references`,
by source key); the engine writes the id of the account E42 is linked to, or, when
the same plan creates E42, its placeholder, resolved at apply time like a group
member's. Creates are ordered so that a manager is created before the people it
manages. When users refer to each other in a circle (A manages B, B manages A), the
circle is broken at one reference, by key order: that user is created without it,
and gets it in an update once the other exists.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ..codec import from_scim, to_scim
from ..errors import ConfigurationError, InvalidPathError
from ..filter._eval import lookup
from ..models import User
from ..patch import parse_path
from ..patch._managed import value_reader

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ..schema import SchemaTable

__all__ = ["creation_order", "reader", "with_values"]


@functools.lru_cache(maxsize=64)
def _parts(path: str, schema: SchemaTable) -> tuple[str | None, str, str | None]:
    """``(urn, attribute, sub)`` of a reference path, in the schema's spelling."""
    try:
        parsed = parse_path(path)
    except InvalidPathError as exc:
        raise ConfigurationError(f"reference {path!r}: {exc}") from None
    if parsed.value_filter is not None:
        raise ConfigurationError(f"reference {path!r}: a reference names one value, not a filter")
    attribute = parsed.attribute
    urn = attribute.urn
    if urn is not None and urn.lower() == User.schema_urn.lower():
        urn = None
    if urn is not None:
        urn = next((u for u in schema.extension_urns("User") if u.lower() == urn.lower()), urn)
    return urn, attribute.name, attribute.sub


@functools.lru_cache(maxsize=64)
def reader(path: str, schema: SchemaTable) -> Callable[[Any], Any]:
    """Reads the value at reference ``path`` off a user model (None when unset)."""
    return value_reader(User, *_parts(path, schema))


def with_values(user: User, values: Sequence[tuple[str, str]], schema: SchemaTable) -> User:
    """``user`` with each ``(path, id)`` of ``values`` written at its path."""
    data = to_scim(user)
    for path, value in values:
        urn, name, sub = _parts(path, schema)
        container = data
        if urn is not None:
            container = _child(data, urn)
            schemas = data.setdefault("schemas", [])
            if all(s.lower() != urn.lower() for s in schemas):
                schemas.append(urn)
        if sub is None:
            _drop(container, name)
            container[name] = value
        else:
            _child(container, name)[sub] = value
    result: User = from_scim(data, type(user))
    return result


def _child(data: dict[str, Any], name: str) -> dict[str, Any]:
    found = lookup(data, name, name.lower())
    if not isinstance(found, dict):
        _drop(data, name)
        found = data[name] = {}
    return found


def _drop(data: dict[str, Any], name: str) -> None:
    for key in [k for k in data if k.lower() == name.lower()]:
        del data[key]


def creation_order(
    refers_to: Mapping[str, Sequence[tuple[str, str]]],
) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """The order of creates whose users refer to one another, and where to break circles.

    ``refers_to`` maps each created user's key to its ``(path, key)`` references to
    other created users. Returns each key's rank (0: refers to no user created
    before it; otherwise one more than the highest rank it refers to) and the
    ``(key, path)`` references left out of the creates, to be written by an update
    once everyone exists: one per circle, found by a depth-first walk in key order,
    so the same inputs always break the same reference.
    """
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    rank: dict[str, int] = {}
    deferred: set[tuple[str, str]] = set()
    for root in sorted(refers_to):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(sorted(refers_to[root])))]
        while stack:
            node, pending = stack[-1]
            for path, target in pending:
                seen = state.get(target)
                if seen == 1:  # back to a user on the path: a circle
                    deferred.add((node, path))
                elif seen is None:
                    state[target] = 1
                    stack.append((target, iter(sorted(refers_to.get(target, ())))))
                    break
            else:
                stack.pop()
                state[node] = 2
                rank[node] = 1 + max(
                    (
                        rank[target]
                        for path, target in refers_to.get(node, ())
                        if (node, path) not in deferred
                    ),
                    default=-1,
                )
    return rank, deferred
