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
from scimsync.patch._diff import _unchanged_check, walk
from scimsync.patch._identity import identity, identity_fields
from scimsync.patch._managed import clearing, element_scopes
from scimsync.patch._scope import scope_key
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
    wanted = to_scim(new)
    assert [] == _disagreements(_in_scope(to_scim(result), wanted, managed), wanted)
    assert [] == clearing(User, tuple(managed), CORE_SCHEMAS).removals(result, new)
    assert [] == diff(result, new, managed=managed)


def _in_scope(data: dict[str, Any], wanted: dict[str, Any], managed: list[str]) -> dict[str, Any]:
    """``data`` with only the values of scoped attributes that their scope selects or
    that ``wanted`` lists: what the diff speaks for."""
    out = dict(data)
    for scope in element_scopes(User, tuple(managed), CORE_SCHEMAS):
        name = next((k for k in out if scope_key(None, k) == scope.key), None)
        if name is None:
            continue
        fields = identity_fields(CORE_SCHEMAS.resolve("User", name))
        listed = {identity(fields, e) for e in wanted.get(name) or ()}
        out[name] = [
            e for e in out[name] if scope.selects(e) or identity(fields, e) in listed
        ] or None
    return out


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.tuples(users, users), cleared_pairs), managed_sets)
def test_values_outside_the_managed_filters_are_never_removed(
    pair: tuple[User, User], managed: list[str]
) -> None:
    """Every email or phone number the filters of ``managed`` do not select (and the
    source does not list) is still on the target after the diff is applied."""
    old, new = pair
    result = to_scim(apply_patch(old, diff(old, new, managed=managed)))
    before = to_scim(old)
    wanted = to_scim(new)
    for scope in element_scopes(User, tuple(managed), CORE_SCHEMAS):
        name = next((k for k in before if scope_key(None, k) == scope.key), None)
        if name is None:
            continue
        fields = identity_fields(CORE_SCHEMAS.resolve("User", name))
        listed = {identity(fields, e) for e in wanted.get(name) or ()}
        expected = [
            identity(fields, e)
            for e in before[name]
            if not scope.selects(e) and identity(fields, e) not in listed
        ]
        held = {identity(fields, e) for e in result.get(name) or ()}
        assert [] == [value for value in expected if value not in held]


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


# -- element scopes: the values a filtered path speaks for -------------------------------------

TWO_MAILS = User(
    user_name="bjensen@example.com",
    emails=[
        Email(value="bjensen@example.com", type="work", primary=True),
        Email(value="babs@jensen.org", type="home"),
    ],
)


def test_filtered_paths_compare_only_the_values_their_filters_select() -> None:
    """The work email is compared; the home one is the target's own, neither removed nor
    a reason to look closer (the fast check settles the pair)."""
    managed = (f"{WORK}.value", f"{WORK}.primary")
    new = User(emails=[Email(value="bjensen@example.com", type="work", primary=True)])
    scopes = element_scopes(User, managed, CORE_SCHEMAS)
    assert ['emails[type eq "work"]'] == [f"emails[{f}]" for s in scopes for f in s.filters]
    assert True is _unchanged_check(User, CORE_SCHEMAS, "User", None, scopes)(TWO_MAILS, new)
    assert ([], []) == (
        diff(TWO_MAILS, new, managed=managed),
        changed_attributes(TWO_MAILS, new, managed=managed),
    )
    moved = User(emails=[Email(value="b@example.com", type="work", primary=True)])
    assert [
        ("remove", 'emails[type eq "work" and value eq "bjensen@example.com"]', None),
        ("add", "emails", [{"value": "b@example.com", "type": "work", "primary": True}]),
    ] == [(o.op, o.path, o.value) for o in diff(TWO_MAILS, moved, managed=managed)]


@pytest.mark.parametrize(
    ("managed", "scoped"),
    [
        ([f"{WORK}.value", 'emails[type eq "home"].display'], True),
        ([f"{WORK}.value", "emails.display"], False),  # emails.display builds the whole list
        ([f"{WORK}.value", "emails"], False),
        (["title", "name.givenName"], False),
    ],
)
def test_an_attribute_named_whole_by_any_path_has_no_scope(
    managed: list[str], scoped: bool
) -> None:
    """One unfiltered path makes the desired list the whole list."""
    assert scoped == bool(element_scopes(User, tuple(managed), CORE_SCHEMAS))


def test_a_value_made_primary_says_which_one_stops_being_primary() -> None:
    """RFC 7644 §3.5.2: the target clears the other flag itself, so the diff sends one
    operation; the review lists both."""
    held = User(
        emails=[
            Email(value="a@work.example", type="work"),
            Email(value="a@home.example", type="home", primary=True),
        ]
    )
    new = User(emails=[Email(value="a@work.example", type="work", primary=True)])
    managed = [f"{WORK}.value", f"{WORK}.primary"]
    work = 'emails[type eq "work" and value eq "a@work.example"].primary'
    home = 'emails[type eq "home" and value eq "a@home.example"].primary'
    assert [PatchOperation(op="replace", path=work, value=True)] == diff(held, new, managed=managed)
    assert [AttributeChange(work, None, True), AttributeChange(home, True, False)] == (
        changed_attributes(held, new, managed=managed)
    )
    after = apply_patch(held, diff(held, new, managed=managed))
    assert [False, True] == [
        e.primary for e in sorted(after.emails or (), key=lambda e: e.type or "")
    ]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.tuples(users, users), cleared_pairs), managed_sets)
def test_the_scoped_fast_check_says_unchanged_only_when_nothing_changed(
    pair: tuple[User, User], managed: list[str]
) -> None:
    """The generated check with element scopes never hides a change the walk finds."""
    old, new = pair
    scopes = element_scopes(User, tuple(managed), CORE_SCHEMAS)
    if _unchanged_check(User, CORE_SCHEMAS, "User", None, scopes)(old, new):
        assert [] == walk(old, new, CORE_SCHEMAS, scopes)
