"""What a mapping manages (so empty values clear the target's), and references by
source key (``ref``): the managed paths, the references, and every misuse refused."""

from __future__ import annotations

from typing import Any

import pytest

from scimsync.errors import ConfigurationError
from scimsync.mapping import Mapping, keep_when_empty, lower, ref, template
from scimsync.sources import IssueCode, MemorySource, Record

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager.value"


def record(key: str, line: int = 1, **attributes: Any) -> Record:
    return Record(key=key, attributes=attributes, line=line, origin="test")


def test_every_mapped_attribute_is_managed_in_its_canonical_spelling() -> None:
    """Paths as PATCH writes them; not the ones left out (None), kept when empty, or
    create-only, nor a whole extension object."""
    mapping = Mapping(
        users={
            "username": lower("email"),
            "Title": "title",
            "name.givenname": "first",
            'emails[type eq "work"].value': "email",
            'emails[type eq "work"].primary': True,
            f"{ENTERPRISE}:department": "dept",
            f"{ENTERPRISE}:manager.value": ref("boss"),
            "displayName": keep_when_empty(template("{first}")),
            "externalId": None,
        },
        create_only={"password": lambda r: "Init-1"},
    )
    assert (
        'emails[type eq "work"].primary',
        'emails[type eq "work"].value',
        "name.givenName",
        "title",
        f"{ENTERPRISE}:department",
        MANAGER,
        "userName",
    ) == mapping.managed_user_attributes
    desired = mapping.map([record("e1", email="a@x", first="A", boss="e1")]).desired
    assert mapping.managed_user_attributes == desired.managed_user_attributes
    assert ("externalId",) == desired.managed_group_attributes
    whole = Mapping(users={"userName": "email", ENTERPRISE: lambda r: {"department": "x"}})
    assert ("externalId", "userName") == whole.managed_user_attributes


def test_ref_puts_the_source_key_aside_for_the_engine() -> None:
    """The manager's key is a reference, not a value of the user; no key, no reference."""
    mapping = Mapping(users={"userName": "email", MANAGER: ref("boss")})
    result = mapping.map(
        MemorySource(
            users=[
                {"id": "e1", "email": "a@x", "boss": " e2 "},
                {"id": "e2", "email": "b@x", "boss": ""},
            ]
        )
    )
    first, second = result.desired.users
    assert (((MANAGER, "e2"),), None) == (first.references, first.user.enterprise)
    assert () == second.references
    assert () == result.issues
    preview = mapping.preview([{"id": "e1", "email": "a@x", "boss": "e2"}]).items[0].scim()
    assert preview is not None
    assert {MANAGER: "e2"} == preview["references (source keys)"]


def test_a_reference_to_nobody_is_an_issue_that_loses_no_identity() -> None:
    """An unknown key is reported with the record's line; out-of-scope or unusable
    records are no such issue (the engine leaves the manager as it is either way)."""
    mapping = Mapping(
        users={"userName": "email", MANAGER: ref("boss")},
        scope=lambda r: r["kind"] != "contractor",
    )
    result = mapping.map(
        [
            record("e1", 1, email="a@x", boss="ghost", kind="staff"),
            record("e2", 2, email="b@x", boss="c1", kind="staff"),
            record("e3", 3, email="", boss="", kind="staff"),
            record("e4", 4, email="d@x", boss="e3", kind="staff"),
            record("c1", 5, email="c@x", boss="", kind="contractor"),
        ]
    )
    codes = [(issue.code, issue.key, issue.line) for issue in result.issues]
    assert [(IssueCode.INVALID_VALUE, "e3", 3), (IssueCode.UNKNOWN_REFERENCE, "e1", 1)] == codes
    assert f"{MANAGER}: 'ghost' is not a user of the source" in result.issues[1].reason
    assert ["e1", "e2", "e4"] == [u.key for u in result.desired.users]
    assert ((MANAGER, "ghost"),) == result.desired.users[0].references


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"users": {"userName": "e", "nickName": lower(ref("boss"))}}, "whole rule"),
        ({"users": {"userName": "e"}, "create_only": {MANAGER: ref("b")}}, "user attributes"),
        ({"users": {"userName": "e"}, "groups": {"displayName": "n", "x": ref("b")}}, "user"),
        ({"users": {"userName": "e", 'emails[type eq "work"].value': ref("b")}}, "one id"),
        ({"users": {"userName": "e", "emails": ref("b")}}, "one id"),
    ],
)
def test_a_reference_where_it_cannot_mean_one_user_is_refused(
    arguments: dict[str, Any], message: str
) -> None:
    """ref() is a whole rule, for a user attribute holding one id, managed every cycle."""
    with pytest.raises(ConfigurationError, match=message):
        Mapping(**arguments)


def test_keep_when_empty_passes_values_through_and_keeps_a_reference_managed_no_more() -> None:
    """keep_when_empty(ref(...)) still refers; an empty key then leaves the manager."""
    mapping = Mapping(users={"userName": "email", MANAGER: keep_when_empty(ref("boss"))})
    assert ("externalId", "userName") == mapping.managed_user_attributes
    (user,) = mapping.map([record("e1", email="a@x", boss="e1")]).desired.users
    assert ((MANAGER, "e1"),) == user.references
    assert "keep_when_empty(ref(field('boss')))" == repr(mapping.user_entries[1].rule)


def test_paths_kept_when_empty_are_listed_apart_and_reach_the_desired_state() -> None:
    """What a mapping writes but never clears: not managed, yet it says which emails the
    source speaks for (the work one, not every one)."""
    mapping = Mapping(
        users={
            "userName": "email",
            'emails[type eq "work"].value': keep_when_empty("email"),
            "displayName": keep_when_empty("name"),
        },
        groups={"displayName": "name", "description": keep_when_empty("about")},
    )
    assert ("displayName", 'emails[type eq "work"].value') == mapping.kept_user_attributes
    assert ("description",) == mapping.kept_group_attributes
    desired = mapping.map([record("e1", email="a@x", name="A")]).desired
    assert (mapping.kept_user_attributes, mapping.kept_group_attributes) == (
        desired.kept_user_attributes,
        desired.kept_group_attributes,
    )
