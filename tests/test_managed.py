"""Managed attributes in diff: a value the source cleared is removed, with the smallest
operation, and never one a client may not remove."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import (
    Email,
    EnterpriseUser,
    Group,
    Manager,
    Name,
    PatchOperation,
    PhoneNumber,
    User,
    to_scim,
)
from scimsync.errors import InvalidPathError
from scimsync.patch import AttributeChange, apply_patch, changed_attributes, diff
from scimsync.patch._managed import clearing
from scimsync.schema import CORE_SCHEMAS, SchemaTable
from test_diff import ENTERPRISE, _disagreements, users

WORK = 'emails[type eq "work"]'

HELD = User(
    user_name="bjensen@example.com",
    external_id="701984",
    title="Tour Guide",
    nick_name="Babs",
    name=Name(given_name="Barbara", family_name="Jensen"),
    emails=[Email(value="bjensen@example.com", type="work", primary=True)],
    phone_numbers=[PhoneNumber(value="555-0100", type="work")],
    enterprise=EnterpriseUser(
        department="Tours", manager=Manager(value="26118915", display_name="John Smith")
    ),
)


def _removals(old: User, new: User, managed: list[str]) -> list[tuple[str, str | None]]:
    return [(o.op, o.path) for o in diff(old, new, managed=managed)]


@pytest.mark.parametrize(
    ("managed", "new", "expected"),
    [
        (["title"], User(user_name="bjensen@example.com"), ["title"]),
        (["name.givenName"], User(name=Name(family_name="Jensen")), ["name.givenName"]),
        (["name.givenName"], User(), ["name.givenName"]),
        (["name"], User(), ["name"]),
        ([f"{ENTERPRISE}:department"], User(), [f"{ENTERPRISE}:department"]),
        # A manager is its value: without one, the whole manager goes (its displayName
        # is the target's own), unless the source still sets another part of it.
        ([f"{ENTERPRISE}:manager.value"], User(), [f"{ENTERPRISE}:manager"]),
        (
            [f"{ENTERPRISE}:manager.value"],
            User(enterprise=EnterpriseUser(manager=Manager(ref="../Users/1"))),
            [f"{ENTERPRISE}:manager.value"],
        ),
        # A filtered element whose value is gone goes whole; its flags with it.
        ([f"{WORK}.value", f"{WORK}.primary"], User(), [WORK]),
        (["emails.value"], User(), ["emails"]),
        (["phoneNumbers"], User(), ["phoneNumbers"]),
        # The source sets the attribute: nothing of it is cleared.
        (["title"], User(title="Lead"), []),
        # The element is there, without a sub-attribute the target still holds.
        (
            [f"{WORK}.value", f"{WORK}.primary"],
            User(emails=[Email(value="bjensen@example.com", type="work")]),
            [f"{WORK}.primary"],
        ),
        # Nothing held there: nothing to remove.
        (["displayName", 'emails[type eq "home"].value'], User(), []),
        # Never: required, readOnly, writeOnly (unreadable, so never seen set).
        (["userName", "id", "meta", "groups", "password"], User(), []),
    ],
)
def test_a_managed_value_the_source_left_unset_is_removed_smallest_first(
    managed: list[str], new: User, expected: list[str]
) -> None:
    """One ``remove`` per cleared value, of the smallest thing that holds it."""
    assert [("remove", path) for path in expected] == [
        op for op in _removals(HELD, new, managed) if op[0] == "remove"
    ]


def test_removals_come_after_the_other_changes_in_path_order() -> None:
    """Sets first (schema order), then removals sorted by path; changed_attributes agrees."""
    new = User(user_name="bjensen@example.com", nick_name="B")
    managed = ["title", "nickName", "name.givenName", f"{ENTERPRISE}:department"]
    assert [
        ("replace", "nickName", "B"),
        ("remove", "name.givenName", None),
        ("remove", "title", None),
        ("remove", f"{ENTERPRISE}:department", None),
    ] == [(o.op, o.path, o.value) for o in diff(HELD, new, managed=managed)]
    assert [
        AttributeChange("nickName", "Babs", "B"),
        AttributeChange("name.givenName", "Barbara", None),
        AttributeChange("title", "Tour Guide", None),
        AttributeChange(f"{ENTERPRISE}:department", "Tours", None),
    ] == changed_attributes(HELD, new, managed=managed)


def test_unmanaged_attributes_stay_whatever_the_source_leaves_unset() -> None:
    """Without ``managed`` (or outside it), an unset attribute is not compared."""
    assert [] == diff(HELD, User())
    assert [] == diff(HELD, User(), managed=[])
    assert [("remove", "title")] == _removals(HELD, User(), ["title"])


def test_empty_values_on_the_target_count_as_unset() -> None:
    """``""``, ``[]`` and an empty complex value are nothing to remove (RFC 7643 §2.5)."""
    held = User(title="", emails=(), name=Name(), nick_name="")
    assert [] == diff(held, User(), managed=["title", "emails", "name", "nickName"])


def test_an_immutable_or_required_attribute_of_the_target_schema_is_never_removed() -> None:
    """The target's own schema decides: its immutable and required attributes stay."""
    table = _schema_with(title={"mutability": "immutable"}, nickName={"required": True})
    assert [] == diff(HELD, User(), managed=["title", "nickName"], schema=table)
    assert [("remove", "nickName"), ("remove", "title")] == _removals(
        HELD, User(), ["title", "nickName"]
    )


def test_a_managed_path_that_is_no_attribute_path_is_an_error() -> None:
    """A typo in the managed paths is a clear project error, not a silent no-op."""
    with pytest.raises(InvalidPathError, match="managed attribute"):
        diff(HELD, User(), managed=["title["])


def test_group_attributes_are_managed_the_same_way() -> None:
    """An extension attribute of a group the source no longer sets is removed."""
    urn = "urn:example:params:scim:schemas:extension:acme:2.0:Group"
    held = Group(display_name="Ops", extensions={urn: {"costCenter": "42"}})
    assert [("remove", f"{urn}:costCenter")] == [
        (o.op, o.path) for o in diff(held, Group(display_name="Ops"), managed=[f"{urn}:costCenter"])
    ]
    # displayName is required on groups: never removed.
    assert [] == diff(held, Group(), managed=["displayName"])


def _schema_with(**changes: dict[str, Any]) -> SchemaTable:
    """The core schema table with some User attributes' characteristics changed."""
    import attrs

    key = "urn:ietf:params:scim:schemas:core:2.0:user"
    core = CORE_SCHEMAS.schemas[key]
    attributes = dict(core.attributes)
    for name, values in changes.items():
        attributes[name.lower()] = attrs.evolve(attributes[name.lower()], **values)
    schemas = {**CORE_SCHEMAS.schemas, key: attrs.evolve(core, attributes=attributes)}
    table: SchemaTable = attrs.evolve(CORE_SCHEMAS, schemas=schemas)
    return table


# -- properties -------------------------------------------------------------------------------

MANAGED_POOL = [
    "title",
    "displayName",
    "nickName",
    "userName",
    "password",
    "externalId",
    "name.givenName",
    "name",
    f"{WORK}.value",
    f"{WORK}.display",
    f"{WORK}.primary",
    'emails[type eq "home"].value',
    "emails.value",
    "phoneNumbers",
    'phoneNumbers[type eq "work"].value',
    'addresses[type eq "work"].locality',
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:manager.value",
]
managed_sets = st.lists(st.sampled_from(MANAGED_POOL), unique=True, max_size=8)
_CLEARABLE = ["title", "display_name", "nick_name", "name", "emails", "phone_numbers"]


def _cleared(user: User, fields: list[str], email_subs: list[str]) -> User:
    """``user`` as a source that cleared some of it wants it (the interesting pairs)."""
    import attrs

    changes: dict[str, Any] = dict.fromkeys(fields)
    if "emails" not in fields and user.emails:
        unset: dict[str, Any] = dict.fromkeys(email_subs)
        changes["emails"] = [attrs.evolve(e, **unset) for e in user.emails]
    return attrs.evolve(user, id=None, **changes)


# Pairs where the source cleared some of what the target holds.
cleared_pairs = users.flatmap(
    lambda user: st.tuples(
        st.just(user),
        st.builds(
            _cleared,
            st.just(user),
            st.lists(st.sampled_from(_CLEARABLE), unique=True),
            st.lists(st.sampled_from(["display", "primary"]), unique=True),
        ),
    )
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.tuples(users, users), cleared_pairs), managed_sets)
def test_the_fast_check_never_misses_a_removal(pair: tuple[User, User], managed: list[str]) -> None:
    """The generated check says "nothing to clear" only when there is nothing to clear."""
    old, new = pair
    compiled = clearing(User, tuple(managed), CORE_SCHEMAS)
    assert compiled.needed(old, new) or [] == compiled.removals(old, new)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.tuples(users, users), cleared_pairs), managed_sets)
def test_applying_the_diff_clears_what_the_source_left_unset_and_settles(
    pair: tuple[User, User], managed: list[str]
) -> None:
    """``apply_patch(a, diff(a, b, managed=m))`` agrees with ``b`` on what it sets, holds
    nothing removable where ``b`` leaves a managed path unset, and needs no more change."""
    old, new = pair
    result = apply_patch(old, diff(old, new, managed=managed))
    assert [] == _disagreements(to_scim(result), to_scim(new))
    assert [] == clearing(User, tuple(managed), CORE_SCHEMAS).removals(result, new)
    assert [] == diff(result, new, managed=managed)


@settings(max_examples=200, deadline=None)
@given(users, managed_sets)
def test_a_user_needs_no_change_to_itself_whatever_is_managed(
    user: User, managed: list[str]
) -> None:
    """Managing attributes never makes ``diff(x, x)`` non-empty."""
    assert [] == diff(user, user, managed=managed)


def test_removal_operations_are_plain_patch_operations() -> None:
    """What diff returns for a cleared value is a ``remove`` without value."""
    (op,) = diff(HELD, User(), managed=["title"])
    assert PatchOperation(op="remove", path="title") == op
