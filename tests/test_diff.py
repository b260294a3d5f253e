"""diff: the minimal PATCH between two resources, and changed_attributes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import (
    Address,
    Email,
    EnterpriseUser,
    Group,
    GroupMembership,
    Manager,
    Member,
    Meta,
    Name,
    PatchOperation,
    PhoneNumber,
    User,
    to_scim,
)
from scimsync.filter import attr, or_, parse_filter
from scimsync.patch import AttributeChange, Path, apply_patch, changed_attributes, diff, parse_path

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

TARGET = User(
    id="2819c223",
    external_id="701984",
    user_name="bjensen@example.com",
    name=Name(given_name="Barbara", family_name="Jensen", formatted="Barbara Jensen"),
    title="Tour Guide",
    active=True,
    emails=[Email(value="bjensen@example.com", type="work", primary=True)],
    groups=[GroupMembership(value="g1", display="Tour Guides")],
    enterprise=EnterpriseUser(
        department="Tours", manager=Manager(value="26118915", display_name="John Smith")
    ),
    meta=Meta(resource_type="User", created=datetime(2010, 1, 23, tzinfo=timezone.utc)),
)
# What a source wants: only the attributes the mapping manages.
DESIRED = User(
    external_id="701984",
    user_name="bjensen@example.com",
    name=Name(given_name="Barbara", family_name="Jensen"),
    title="Tour Guide",
    active=True,
    emails=[Email(value="bjensen@example.com", type="work")],
    enterprise=EnterpriseUser(department="Tours", manager=Manager(value="26118915")),
)


def _ops(operations: list[PatchOperation]) -> list[tuple[str, str | None, Any]]:
    return [(o.op, o.path, o.value) for o in operations]


def test_an_unchanged_pair_needs_nothing() -> None:
    """Attributes the desired state leaves unset (id, meta, groups, primary) are not managed."""
    assert [] == diff(TARGET, DESIRED)
    assert [] == changed_attributes(TARGET, DESIRED)
    assert [] == diff(TARGET, TARGET)


def test_one_changed_attribute_is_one_operation() -> None:
    """A changed simple attribute is one replace, an unset one too; in schema order."""
    old = User(user_name="bjensen", title="Guide")
    new = User(user_name="bjensen", title="Lead", nick_name="Babs", active=False)
    expected = [
        ("replace", "nickName", "Babs"),
        ("replace", "title", "Lead"),
        ("replace", "active", False),
    ]
    assert expected == _ops(diff(old, new))


def test_complex_attributes_by_sub_attribute() -> None:
    """One changed sub-attribute: its own path; several: one replace of the attribute."""
    old = User(name=Name(given_name="Barbara", family_name="Jensen"))
    one = User(name=Name(given_name="Babs"))
    two = User(name=Name(given_name="Babs", family_name="J"))
    assert [("replace", "name.givenName", "Babs")] == _ops(diff(old, one))
    assert [("replace", "name", {"givenName": "Babs", "familyName": "J"})] == _ops(diff(old, two))
    assert [("replace", "name", {"givenName": "Babs"})] == _ops(diff(User(), one))


def test_never_read_only_never_write_only() -> None:
    """id, meta, groups, manager.displayName and the password are never sent."""
    old = User(user_name="x")
    new = User(
        id="other",
        user_name="x",
        password="s3cret",
        meta=Meta(version='W/"2"'),
        groups=[GroupMembership(value="g")],
        enterprise=EnterpriseUser(manager=Manager(display_name="Boss")),
    )
    assert [] == diff(old, new)


def test_enterprise_attributes_use_urn_paths() -> None:
    """Extension attributes are addressed with their schema URN."""
    new = DESIRED.__class__(
        enterprise=EnterpriseUser(department="Ops", manager=Manager(value="42"))
    )
    assert [
        ("replace", f"{ENTERPRISE}:department", "Ops"),
        ("replace", f"{ENTERPRISE}:manager.value", "42"),
    ] == _ops(diff(TARGET, new))
    assert [("replace", f"{ENTERPRISE}:department", "Ops")] == _ops(
        diff(User(), User(enterprise=EnterpriseUser(department="Ops")))
    )


def test_emails_by_identity() -> None:
    """Emails are matched by type and value: changes address the value with a filter."""
    old = User(
        emails=[
            Email(value="a@example.com", type="work", primary=True),
            Email(value="b@example.com", type="home"),
        ]
    )
    new = User(
        emails=[
            Email(value="a@example.com", type="work", primary=False),
            Email(value="c@example.com", type="home"),
        ]
    )
    expected = [
        ("remove", 'emails[type eq "home" and value eq "b@example.com"]', None),
        ("replace", 'emails[type eq "work" and value eq "a@example.com"].primary', False),
        ("add", "emails", [{"value": "c@example.com", "type": "home"}]),
    ]
    assert expected == _ops(diff(old, new))


def test_a_value_without_type_is_named_by_absence() -> None:
    """A missing identity sub-attribute is written ``not (type pr)``, not a guess."""
    old = User(emails=[Email(value="a@example.com")])
    new = User(emails=[])
    expected = [("remove", 'emails[not (type pr) and value eq "a@example.com"]', None)]
    assert expected == _ops(diff(old, new))


def test_group_members_added_and_removed_not_replaced() -> None:
    """Membership changes name only the changed members, with the builder's escaping."""
    old = Group(display_name="G", members=[Member(value="a"), Member(value='b"c')])
    new = Group(display_name="G", members=[Member(value="a"), Member(value="d")])
    operations = diff(old, new)
    expected = [
        ("remove", 'members[value eq "b\\"c"]', None),
        ("add", "members", [{"value": "d"}]),
    ]
    assert expected == _ops(operations)
    assert parse_path(operations[0].path or "") == Path(
        parse_path("members").attribute, attr("value").eq('b"c')
    )


def test_member_changes_are_chunked() -> None:
    """``max_members_per_operation`` caps the values of each add and remove."""
    old = Group(members=[Member(value=f"old{i}") for i in range(120)])
    new = Group(members=[Member(value=f"new{i}") for i in range(250)])
    operations = diff(old, new, max_members_per_operation=100)
    assert ["remove", "remove", "add", "add", "add"] == [o.op for o in operations]
    removed = [
        len(parse_path(o.path or "").value_filter.filters)  # type: ignore[union-attr]
        for o in operations[:2]
    ]
    assert [100, 20] == removed
    assert [100, 100, 50] == [len(o.value) for o in operations[2:]]
    assert operations[0].path == str(
        Path(
            parse_path("members").attribute, or_(*(attr("value").eq(f"old{i}") for i in range(100)))
        )
    )
    assert 2 == len(diff(old, new))


def test_chunk_size_must_be_positive() -> None:
    """A cap below one is a programming error."""
    with pytest.raises(ValueError, match="at least 1"):
        diff(Group(), Group(members=[]), max_members_per_operation=0)


def test_changed_attributes_show_old_and_new() -> None:
    """One entry per changed attribute or value, with old and new values as SCIM JSON."""
    old = Group(display_name="Guides", members=[Member(value="a"), Member(value="b")])
    new = Group(display_name="Tour Guides", members=[Member(value="b"), Member(value="c")])
    assert [
        AttributeChange("displayName", "Guides", "Tour Guides"),
        AttributeChange('members[value eq "a"]', {"value": "a"}, None),
        AttributeChange('members[value eq "c"]', None, {"value": "c"}),
    ] == changed_attributes(old, new)


def test_unknown_attributes_are_compared_too() -> None:
    """Attributes kept in ``extra`` and other extensions are diffed as plain values."""
    old = User(extra={"nickNames": ["a"]}, extensions={"urn:example:badge:1.0": {"n": 1}})
    new = User(extra={"nickNames": ["b"]}, extensions={"urn:example:badge:1.0": {"n": 2}})
    expected = [
        ("replace", "nickNames", ["b"]),
        ("replace", "urn:example:badge:1.0:n", 2),
    ]
    assert expected == _ops(diff(old, new))


def test_diff_needs_two_models_of_one_type() -> None:
    """Comparing a User with a Group is a programming error."""
    with pytest.raises(TypeError):
        diff(User(), Group())


# -- properties -------------------------------------------------------------------------------

short_text = st.text(alphabet="abAB@.", max_size=3)
maybe_text = st.none() | short_text


def _email_identity(email: Email) -> tuple[str | None, str | None]:
    return (
        (email.type or None) and email.type.casefold(),
        (email.value or None) and email.value.casefold(),
    )


def _one_primary(values: list[Any]) -> bool:
    return sum(v.primary is True for v in values) <= 1


emails = st.lists(
    st.builds(
        Email,
        value=maybe_text,
        type=st.none() | st.sampled_from(["work", "Work", "home", ""]),
        primary=st.none() | st.booleans(),
        display=maybe_text,
    ),
    max_size=3,
    unique_by=_email_identity,
).filter(_one_primary)
phones = st.lists(
    st.builds(PhoneNumber, value=maybe_text, type=st.none() | st.sampled_from(["work", "mobile"])),
    max_size=2,
    unique_by=lambda p: ((p.type or None), (p.value or None) and p.value.casefold()),
)
addresses = st.lists(
    st.builds(
        Address,
        type=st.none() | st.sampled_from(["work", "home"]),
        street_address=maybe_text,
        locality=maybe_text,
    ),
    max_size=2,
    unique_by=lambda a: a.type or None,
)
users = st.builds(
    User,
    id=st.none() | st.just("id-1"),
    external_id=maybe_text,
    user_name=maybe_text,
    display_name=maybe_text,
    title=maybe_text,
    active=st.none() | st.booleans(),
    password=st.none() | short_text,
    name=st.none() | st.builds(Name, given_name=maybe_text, family_name=maybe_text),
    emails=st.none() | emails,
    phone_numbers=st.none() | phones,
    addresses=st.none() | addresses,
    enterprise=st.none()
    | st.builds(
        EnterpriseUser,
        department=maybe_text,
        employee_number=maybe_text,
        manager=st.none() | st.builds(Manager, value=maybe_text, display_name=maybe_text),
    ),
)
groups = st.builds(
    Group,
    display_name=maybe_text,
    members=st.none()
    | st.lists(
        st.builds(Member, value=st.text("abc", min_size=1, max_size=3), display=maybe_text),
        max_size=6,
        unique_by=lambda m: m.value,
    ),
)

_NEVER_SENT = {"schemas", "id", "meta", "groups", "password"}
_IDENTITY = {"members": ("value",), "addresses": ("type",)}
_FOLDED = {"type", "value"}


def _identity_of(attribute: str, value: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for field in _IDENTITY.get(attribute, ("type", "value")):
        found = value.get(field) or None
        if found is not None and attribute != "members" and field in _FOLDED:
            found = found.casefold()
        out.append(found)
    return tuple(out)


def _set_parts(value: dict[str, Any]) -> dict[str, Any]:
    # manager.displayName is readOnly: never sent, so never expected to change.
    return {k: v for k, v in value.items() if k != "displayName"}


def _disagreements(result: dict[str, Any], wanted: dict[str, Any], where: str = "") -> list[str]:
    """Where ``result`` differs from ``wanted`` on what ``wanted`` sets (empty: agrees)."""
    problems = []
    for key, value in wanted.items():
        if key in _NEVER_SENT:
            continue
        got = result.get(key)
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            got_by = {_identity_of(key, g): g for g in got or []}
            if set(got_by) != {_identity_of(key, v) for v in value}:
                problems.append(f"{where}{key}: {got!r} != {value!r}")
                continue
            for item in value:
                found = got_by[_identity_of(key, item)]
                # primary false is its default: a value without it is not primary.
                if any(found.get(k) != v and (k, v) != ("primary", False) for k, v in item.items()):
                    problems.append(f"{where}{key}: {found!r} does not have {item!r}")
        elif isinstance(value, dict):
            wanted_parts = _set_parts(value)
            if key == ENTERPRISE:
                problems.extend(_disagreements(got or {}, wanted_parts, f"{key}:"))
            elif any((got or {}).get(k) != v for k, v in wanted_parts.items()):
                problems.append(f"{where}{key}: {got!r} does not have {value!r}")
        elif got != value:
            problems.append(f"{where}{key}: {got!r} != {value!r}")
    return problems


@settings(max_examples=300, deadline=None)
@given(users, users)
def test_applying_the_diff_reaches_the_desired_user(old: User, new: User) -> None:
    """``apply_patch(a, diff(a, b))`` equals ``b`` on every attribute ``b`` sets; then no diff."""
    operations = diff(old, new)
    result = apply_patch(old, operations)
    assert [] == _disagreements(to_scim(result), to_scim(new))
    assert [] == diff(result, new)


@settings(max_examples=200, deadline=None)
@given(groups, groups, st.none() | st.integers(1, 3))
def test_applying_the_diff_reaches_the_desired_group(
    old: Group, new: Group, chunk: int | None
) -> None:
    """The same for groups, with member changes chunked."""
    operations = diff(old, new, max_members_per_operation=chunk)
    result = apply_patch(old, operations)
    assert [] == _disagreements(to_scim(result), to_scim(new))
    assert [] == diff(result, new)
    if chunk is not None:
        for operation in operations:
            if operation.op == "add" and operation.path == "members":
                assert len(operation.value) <= chunk


@given(users)
def test_a_resource_needs_no_change_to_itself(user: User) -> None:
    """``diff(a, a) == []``."""
    assert [] == diff(user, user)


@settings(max_examples=200)
@given(users, users)
def test_diff_never_sends_what_a_client_may_not(old: User, new: User) -> None:
    """No operation touches id, meta, groups, password or manager.displayName."""
    for operation in diff(old, new):
        assert operation.path is not None
        head = parse_path(operation.path).attribute
        assert head.name not in {"id", "meta", "groups", "password"}
        assert (head.name, head.sub) != ("manager", "displayName")
        if head.name == "manager" and isinstance(operation.value, dict):
            assert "displayName" not in operation.value
        assert "password" not in str(operation.value)


@settings(max_examples=200)
@given(users, users)
def test_changed_attributes_follow_diff(old: User, new: User) -> None:
    """changed_attributes is empty exactly when diff is, and its paths parse."""
    changes = changed_attributes(old, new)
    assert (changes == []) == (diff(old, new) == [])
    for change in changes:
        parse_path(change.path)


def test_filters_in_paths_evaluate_as_apply_sees_them() -> None:
    """The identity filter of a value selects exactly that value (case folded per schema)."""
    selector = parse_filter('emails[type eq "WORK" and value eq "A@example.com"]')
    assert selector.matches(User(emails=[Email(type="work", value="a@example.com")]))
