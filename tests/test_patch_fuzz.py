"""Fuzzing apply_patch: random and mutated PATCH bodies raise only PatchError."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import Group, User, from_scim
from scimsync.errors import PatchError
from scimsync.patch import apply_patch

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
    "id": "2819c223",
    "userName": "bjensen",
    "name": {"familyName": "Jensen", "givenName": "Barbara"},
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza"}],
    ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
}
GROUP = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "e9e30dba",
    "displayName": "Tour Guides",
    "members": [{"value": "2819c223", "display": "Babs"}, {"value": "902c246b"}],
}
SEED_OPERATIONS: list[dict[str, Any]] = [
    {"op": "add", "path": "members", "value": [{"value": "08e1d05d", "display": "James"}]},
    {"op": "add", "value": {"emails": [{"value": "b@j.org", "type": "home"}], "nickname": "B"}},
    {"op": "remove", "path": 'members[value eq "2819c223"]'},
    {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'},
    {"op": "replace", "path": 'addresses[type eq "work"].streetAddress', "value": "1010 Broadway"},
    {"op": "Replace", "path": "active", "value": "False"},
    {"op": "Add", "path": 'emails[type eq "work"].value', "value": "x@example.com"},
    {"op": "Remove", "path": f"{ENTERPRISE}:manager"},
    {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "42"},
    {"op": "replace", "path": "name", "value": {"givenName": "Babs"}},
    {"op": "add", "path": ENTERPRISE, "value": {"department": "Tours"}},
    {"op": "replace", "path": "members", "value": [{"value": "a"}]},
]
JUNK_VALUES: list[Any] = [
    None,
    "",
    "x",
    0,
    -1.5,
    True,
    [],
    {},
    [None],
    [1, "a"],
    {"value": None},
    {"": 1},
    {"value": {"value": []}},
    [{"type": []}],
    "2011-05-13T04:42:34Z",
    {"__class__": "x"},
    float("inf"),
    object(),
]
PATH_PIECES = ['"', "[", "]", ".", ":", " eq ", " and ", "not (", ")", "urn:", "__", "$ref", "\x00"]


def _mutate_text(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(chars))
        action = rng.randrange(3)
        if action == 0 and chars:
            del chars[min(at, len(chars) - 1)]
        elif action == 1:
            chars[at:at] = list(rng.choice(PATH_PIECES))
        else:
            chars = chars[:at]
    return "".join(chars)


def _mutate(rng: random.Random, operation: dict[str, Any]) -> Any:
    operation = copy.deepcopy(operation)
    action = rng.randrange(8)
    if action == 0:
        operation["op"] = rng.choice(["ADD", "rEmOvE", "move", "", None, 3])
    elif action == 1 and "path" in operation:
        operation["path"] = _mutate_text(rng, operation["path"])
    elif action == 2:
        operation["value"] = rng.choice(JUNK_VALUES)
    elif action == 3:
        operation.pop(rng.choice(list(operation)), None)
    elif action == 4:
        operation["path"] = rng.choice([None, 42, [], "", "members[", "__dict__", "id"])
    elif action == 5 and isinstance(operation.get("value"), dict):
        key = rng.choice(["__class__", "schemas", "id", "name.x", "urn:x:y", "emails[x eq 1]"])
        operation["value"][key] = rng.choice(JUNK_VALUES)
    elif action == 6:
        return rng.choice(JUNK_VALUES)  # not an operation object at all
    return operation


def _apply(resource: Any, operations: Any) -> None:
    """Apply; only a PatchError may escape, and a model stays a model."""
    try:
        result = apply_patch(resource, operations)
    except PatchError:
        return
    assert type(resource) is type(result) or isinstance(resource, dict)


def test_ten_thousand_mutated_patch_bodies() -> None:
    """10,000 mutated PATCH bodies on users and groups, as dicts and models."""
    rng = random.Random(7644)
    user_model = from_scim(USER, User)
    group_model = from_scim(GROUP, Group)
    targets: list[Any] = [USER, GROUP, user_model, group_model]
    for _ in range(10_000):
        operations: Any = [
            _mutate(rng, rng.choice(SEED_OPERATIONS)) for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < 0.05:
            operations = rng.choice([{"Operations": operations}, {"x": 1}, "add", 42, None])
        _apply(rng.choice(targets), operations)
    # Nothing leaked into the shared inputs.
    assert from_scim(USER, User) == user_model
    assert [{"value": "2819c223", "display": "Babs"}, {"value": "902c246b"}] == GROUP["members"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["value", "type", "display", "givenName", "x"]), children)
    ),
    max_leaves=6,
)
operations = st.lists(
    st.dictionaries(
        st.sampled_from(["op", "path", "value", "Op", "PATH"]),
        st.one_of(
            st.sampled_from(["add", "remove", "replace", "Replace"]),
            st.sampled_from(
                ["emails", 'emails[type eq "work"].value', "name.givenName", "members"]
            ),
            st.text(max_size=12),
            json_values,
        ),
    ),
    max_size=3,
)


@settings(max_examples=500)
@given(operations, st.sampled_from([USER, GROUP]))
def test_random_operations_raise_only_patch_errors(ops: list[dict[str, Any]], base: Any) -> None:
    """Random operation objects never raise anything but a PatchError."""
    _apply(base, ops)
    _apply(from_scim(base, User if "userName" in base else Group), ops)
