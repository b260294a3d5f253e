"""The mapping: records in, desired users and groups out, every problem as a value."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import Address, Email, EnterpriseUser, Name, PhoneNumber, Role, User
from scimsync.errors import ConfigurationError
from scimsync.mapping import (
    Mapping,
    boolean,
    coalesce,
    const,
    default,
    field,
    join,
    keep_when_empty,
    key,
    lower,
    multi_line,
    split,
    strip,
    template,
    upper,
)
from scimsync.sources import (
    CombinedSource,
    CsvSource,
    IssueCode,
    MemorySource,
    Record,
    RecordIssue,
    SourceItem,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

FIXTURES = Path(__file__).parent / "fixtures"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BADGE = "urn:example:params:scim:schemas:extension:badge:2.0:User"


def user_record(key: str | None = "k1", line: int | None = 1, **attributes: Any) -> Record:
    return Record(key=key, attributes=attributes, line=line, origin="test")


def one_user(mapping: Mapping, **attributes: Any) -> User:
    result = mapping.map([user_record(**attributes)])
    assert [] == list(result.issues)
    [desired] = result.desired.users
    return desired.user


# -- rules ------------------------------------------------------------------------------


def test_plain_dotted_and_urn_targets_build_the_user() -> None:
    """Copies land in core, sub-attribute, enterprise and custom extension places."""
    mapping = Mapping(
        users={
            "userName": "mail",
            "name.givenName": "first",
            "name.familyName": "last",
            f"{ENTERPRISE}:department": "dept",
            f"{ENTERPRISE}:manager.value": "boss",
            f"{BADGE}:number": "badge",
        }
    )
    user = one_user(
        mapping, mail="a@x.org", first="Ann", last="Lee", dept="R&D", boss="m1", badge="7"
    )
    assert "a@x.org" == user.user_name
    assert Name(given_name="Ann", family_name="Lee") == user.name
    assert EnterpriseUser(department="R&D", manager=user.enterprise.manager) == user.enterprise  # type: ignore[union-attr]
    assert "m1" == user.enterprise.manager.value  # type: ignore[union-attr]
    assert {BADGE: {"number": "7"}} == dict(user.extensions)


def test_a_whole_custom_extension_is_one_object_not_an_attribute_named_user() -> None:
    """``urn:...:2.0:User`` writes the extension object: it is not an attribute ``User``
    of a schema ``urn:...:2.0``, and it is managed as nothing narrower."""
    mapping = Mapping(users={"userName": "mail", BADGE: lambda r: {"number": r["badge"]}})
    user = one_user(mapping, mail="a@x.org", badge="7")
    assert {BADGE: {"number": "7"}} == dict(user.extensions)
    assert ("externalId", "userName") == mapping.managed_user_attributes


def test_core_urn_prefix_is_the_plain_attribute() -> None:
    """``urn:...:core:2.0:User:userName`` is ``userName``."""
    mapping = Mapping(users={"urn:ietf:params:scim:schemas:core:2.0:User:userName": "mail"})
    assert "a@x.org" == one_user(mapping, mail="a@x.org").user_name


def test_external_id_is_the_key_unless_mapped_otherwise() -> None:
    """By default ``externalId`` is the record key; mapping it (even to None) overrides."""
    assert "k1" == one_user(Mapping(users={"userName": "m"}), m="a").external_id
    assert (
        "X"
        == one_user(Mapping(users={"userName": "m", "externalId": "x"}), m="a", x="X").external_id
    )
    assert None is one_user(Mapping(users={"userName": "m", "externalId": None}), m="a").external_id


def test_constants_callables_and_transforms() -> None:
    """Each built-in transform computes what its name says; callables get the record."""
    mapping = Mapping(
        users={
            "userName": lower(strip("mail")),
            "displayName": template("{first} {last}"),
            "nickName": coalesce("nick", "first"),
            "title": default("title", "Employee"),
            "userType": const("Staff"),
            "locale": upper("country"),
            "profileUrl": lambda record: f"https://people.example/{record.key}",
            "timezone": join("/", "region", "city"),
            "preferredLanguage": field("lang"),
            "roles": split("roles", ";"),
            "active": True,
        }
    )
    user = one_user(
        mapping,
        mail="  Ann.Lee@Example.COM ",
        first="Ann",
        last="Lee",
        nick="",
        title=None,
        country="fr",
        region="Europe",
        city="Paris",
        lang="fr-FR",
        roles="admin; ops;",
    )
    assert "ann.lee@example.com" == user.user_name
    assert "Ann Lee" == user.display_name
    assert "Ann" == user.nick_name
    assert "Employee" == user.title
    assert "Staff" == user.user_type
    assert "FR" == user.locale
    assert "https://people.example/k1" == user.profile_url
    assert "Europe/Paris" == user.timezone
    assert "fr-FR" == user.preferred_language
    assert (Role(value="admin"), Role(value="ops")) == user.roles
    assert True is user.active


def test_template_with_an_empty_field_gives_no_value() -> None:
    """``template`` yields nothing rather than half a name; ``coalesce`` can fall back."""
    mapping = Mapping(users={"userName": "m", "displayName": coalesce(template("{a} {b}"), "a")})
    assert "Ann" == one_user(mapping, m="x", a="Ann", b="").display_name


def test_empty_values_leave_attributes_unset() -> None:
    """An empty string or a missing field sets nothing (the attribute stays None)."""
    user = one_user(
        Mapping(users={"userName": "m", "title": "t", "nickName": "absent"}), m="x", t=""
    )
    assert (None, None) == (user.title, user.nick_name)


def test_key_rule_and_nested_field_lookups() -> None:
    """``key()`` is the record key; dotted and URN field names reach into nested JSON."""
    mapping = Mapping(
        users={
            "userName": "userName",
            "nickName": key(),
            "name.givenName": "name.givenName",
            "title": f"{ENTERPRISE}:department",
        }
    )
    user = one_user(
        mapping,
        userName="a",
        name={"GivenName": "Ann"},
        **{ENTERPRISE: {"department": "R&D"}},
    )
    assert ("k1", "Ann", "R&D") == (user.nick_name, user.name.given_name, user.title)  # type: ignore[union-attr]


def test_boolean_reads_the_words_it_is_given() -> None:
    """``boolean`` maps each word to True/False, case-insensitively."""
    mapping = Mapping(
        users={"userName": "m", "active": boolean("s", true={"Active"}, false={"left"})}
    )
    assert True is one_user(mapping, m="a", s="ACTIVE").active
    assert False is one_user(mapping, m="a", s=" left ").active


def test_boolean_of_an_unknown_word_is_an_invalid_value_issue() -> None:
    """A word in neither set is INVALID_VALUE for that record, naming the mapping line."""
    mapping = Mapping(
        users={"userName": "m", "active": boolean("s", true={"active"}, false={"left"})}
    )
    result = mapping.map([user_record(m="a", s="maybe")])
    [issue] = result.issues
    assert (IssueCode.INVALID_VALUE, "k1") == (issue.code, issue.key)
    assert issue.reason.startswith("users['active']: 'maybe' is neither true")
    assert () == result.desired.users


def test_a_value_the_codec_refuses_is_an_invalid_value_issue() -> None:
    """Copying ``"maybe"`` into a boolean is caught with the attribute path."""
    result = Mapping(users={"userName": "m", "active": "s"}).map([user_record(m="a", s="maybe")])
    [issue] = result.issues
    assert IssueCode.INVALID_VALUE == issue.code
    assert "$.active: expected a boolean, got 'maybe'" == issue.reason


def test_a_callable_that_raises_is_a_mapping_failure_with_its_line() -> None:
    """An exception in a callable is MAPPING_FAILED naming the entry; other records flow."""

    def title(record: Record) -> str:
        return str(record["title"])

    mapping = Mapping(users={"userName": "m", "title": title})
    result = mapping.map([user_record(m="a"), user_record(key="k2", m="b", title="Boss")])
    [issue] = result.issues
    assert (IssueCode.MAPPING_FAILED, "k1") == (issue.code, issue.key)
    assert "users['title']" in issue.reason
    assert "KeyError" in issue.reason
    assert ["k2"] == [u.key for u in result.desired.users]


def test_a_required_attribute_left_empty_is_an_issue() -> None:
    """A record whose ``userName`` comes out empty cannot be created: INVALID_VALUE."""
    result = Mapping(users={"userName": "m"}).map([user_record(m="")])
    assert [(IssueCode.INVALID_VALUE, "required attribute userName empty")] == [
        (i.code, i.reason) for i in result.issues
    ]


def test_multi_valued_attributes_from_lists_and_single_values() -> None:
    """A list into a multi-valued complex attribute becomes value objects; so does one value."""
    mapping = Mapping(users={"userName": "m", "emails": "mail", "entitlements.value": split("e")})
    user = one_user(mapping, m="a", mail="a@x.org", e="x,y")
    assert ["a@x.org"] == [e.value for e in user.emails or ()]
    assert ["x", "y"] == [e.value for e in user.entitlements or ()]


def test_an_empty_list_means_none_of_them() -> None:
    """An empty multi-valued column sets the attribute to "none" (``()``), not unset."""
    assert () == one_user(Mapping(users={"userName": "m", "roles": "r"}), m="a", r=[]).roles


def test_create_only_attributes_are_kept_apart() -> None:
    """``create_only`` values go to ``DesiredUser.create_only``, never into the managed user."""
    mapping = Mapping(users={"userName": "m"}, create_only={"password": lambda r: "Init-1234"})
    [desired] = mapping.map([user_record(m="a")]).desired.users
    assert None is desired.user.password
    assert "Init-1234" == desired.create_only.password  # type: ignore[union-attr]


def test_create_only_can_supply_a_required_attribute() -> None:
    """A required attribute set only on create is not reported as missing."""
    mapping = Mapping(users={"title": "t"}, create_only={"userName": "m"})
    [desired] = mapping.map([user_record(m="a", t="x")]).desired.users
    assert "a" == desired.create_only.user_name  # type: ignore[union-attr]


# -- filtered targets -------------------------------------------------------------------------


def test_filtered_targets_build_one_element_per_filter() -> None:
    """``emails[type eq "work"].value`` and the home one make two elements, each complete."""
    mapping = Mapping(
        users={
            "userName": "m",
            'emails[type eq "work"].value': lower("work"),
            'emails[type eq "work"].primary': True,
            'emails[type eq "home"].value': "home",
            'phoneNumbers[type eq "work" and primary eq true].value': "phone",
            'addresses[type eq "work"].locality': "city",
        }
    )
    user = one_user(mapping, m="a", work="A@X.org", home="a@home.org", phone="+33 1", city="Paris")
    assert (
        Email(value="a@x.org", type="work", primary=True),
        Email(value="a@home.org", type="home"),
    ) == user.emails
    assert (PhoneNumber(value="+33 1", type="work", primary=True),) == user.phone_numbers
    assert (Address(locality="Paris", type="work"),) == user.addresses


def test_a_filtered_element_with_nothing_in_it_is_left_out() -> None:
    """No work email: no ``{"type": "work", "primary": true}`` shell; no emails at all."""
    mapping = Mapping(
        users={
            "userName": "m",
            'emails[type eq "work"].value': "work",
            'emails[type eq "work"].primary': True,
            'emails[type eq "home"].value': "home",
        }
    )
    assert (Email(value="h@x.org", type="home"),) == one_user(
        mapping, m="a", work="", home="h@x.org"
    ).emails
    assert one_user(mapping, m="a", work="", home="").emails is None


def test_filtered_targets_on_an_extension_and_whole_elements() -> None:
    """A URN-qualified filtered path, and a filtered path taking a whole object."""
    mapping = Mapping(
        users={
            "userName": "m",
            f'{BADGE}:codes[kind eq "door"].value': "door",
            'ims[type eq "chat"]': lambda r: {"value": r["chat"], "display": "Chat"},
        }
    )
    user = one_user(mapping, m="a", door="D-7", chat="@ann")
    assert {BADGE: {"codes": [{"kind": "door", "value": "D-7"}]}} == dict(user.extensions)
    assert [("@ann", "chat", "Chat")] == [(i.value, i.type, i.display) for i in user.ims or ()]


def test_names_are_spelled_as_the_schema_spells_them() -> None:
    """``USERNAME`` and ``Emails[Type eq "work"].Value`` land where ``userName`` and
    ``emails[type eq "work"].value`` do."""
    mapping = Mapping(users={"USERNAME": "m", 'Emails[Type eq "work"].Value': "w"})
    user = one_user(mapping, m="a", w="a@x.org")
    assert ("a", (Email(value="a@x.org", type="work"),)) == (user.user_name, user.emails)


@pytest.mark.parametrize(
    "path",
    [
        'emails[type co "work"].value',
        'emails[type eq "work" or type eq "home"].value',
        'emails[not (type eq "work")].value',
        "emails[type pr].value",
    ],
)
def test_a_filter_that_cannot_name_one_element_is_refused(path: str) -> None:
    """Only ``sub eq value`` conditions joined by ``and`` say which element to create."""
    with pytest.raises(ConfigurationError, match="can only hold"):
        Mapping(users={"userName": "m", path: "x"})


# -- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "create_only", "message"),
    [
        ({"name": "n", "name.givenName": "g"}, {}, "write the same attribute"),
        ({"userName": "a", "USERNAME": "b"}, {}, "write the same attribute"),
        ({"emails": "a", "emails.value": "b"}, {}, "write the same attribute"),
        ({ENTERPRISE: "e", f"{ENTERPRISE}:department": "d"}, {}, "write the same attribute"),
        ({"userName": "a"}, {"userName": "b"}, "either managed or create-only"),
        ({"name.given.name": "a"}, {}, "is not an attribute path"),
        ({"1name": "a"}, {}, "is not an attribute path"),
        ({"": "a"}, {}, "non-empty string"),
        ({'emails[type eq "work"]': "a", 'emails[type eq "work"].value': "b"}, {}, "same"),
        ({'emails[type eq "work"].value': "a", 'emails[TYPE eq "work"].Value': "b"}, {}, "same"),
        ({"emails": "a", 'emails[type eq "work"].value': "b"}, {}, "write the same attribute"),
        ({"emails.value": "a", 'emails[type eq "work"].value': "b"}, {}, "same attribute"),
        ({'emails[type eq "work"': "a"}, {}, "is not an attribute path"),
    ],
)
def test_bad_mappings_are_refused_when_made(
    users: dict[str, Any], create_only: dict[str, Any], message: str
) -> None:
    """Overlapping targets, bad paths and bad rules raise ConfigurationError at once."""
    with pytest.raises(ConfigurationError, match=message):
        Mapping(users=users, create_only=create_only)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: template("{}"), "needs a field name"),
        (lambda: template("{a!x}"), "unknown conversion"),
        (lambda: template("{a"), "template"),
        (lambda: field(""), "non-empty string"),
        (lambda: boolean("a", true={"x"}, false={"X"}), "are both"),
        (lambda: split("a", ""), "needs a separator"),
        (lambda: join(" "), "at least one"),
        (coalesce, "at least one"),
    ],
)
def test_bad_rules_are_refused_when_made(build: Any, message: str) -> None:
    """Rules that cannot work raise ConfigurationError when built."""
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_group_members_cannot_be_mapped_as_an_attribute() -> None:
    """Members come from member keys, so a ``members`` rule is refused."""
    with pytest.raises(ConfigurationError, match="members"):
        Mapping(users={"userName": "m"}, groups={"displayName": "n", "members": "m"})


def test_filtered_paths_on_a_single_valued_attribute_share_no_element() -> None:
    """Sub-attributes of one single-valued complex attribute may be mapped separately."""
    mapping = Mapping(users={"userName": "m", "name.givenName": "g", "name.familyName": "f"})
    assert Name(given_name="A", family_name="B") == one_user(mapping, m="x", g="A", f="B").name


# -- scope, keys, duplicates, completeness ----------------------------------------------------


def test_out_of_scope_records_are_left_out_without_issues() -> None:
    """Scoping leaves records out on purpose: counted, not reported, even without a key."""
    mapping = Mapping(users={"userName": "m"}, scope=lambda r: r.get("type") != "contractor")
    result = mapping.map(
        [
            user_record(m="a"),
            user_record(key="k2", m="b", type="contractor"),
            user_record(key=None, m="c", type="contractor"),
        ]
    )
    assert (["k1"], 2, (), True) == (
        [u.key for u in result.desired.users],
        result.out_of_scope,
        result.issues,
        result.complete,
    )


def test_a_record_in_scope_without_key_is_an_issue() -> None:
    """No key, in scope: NO_KEY with the line, and the desired state is incomplete."""
    result = Mapping(users={"userName": "m"}).map([user_record(key=None, line=9, m="a")])
    assert [(IssueCode.NO_KEY, 9)] == [(i.code, i.line) for i in result.issues]
    assert False is result.complete


def test_a_scope_that_raises_is_an_issue() -> None:
    """A failing scope predicate is MAPPING_FAILED for that record."""

    def scope(record: Record) -> bool:
        return bool(record["type"] == "staff")

    result = Mapping(users={"userName": "m"}, scope=scope).map([user_record(m="a")])
    assert [IssueCode.MAPPING_FAILED] == [i.code for i in result.issues]


def test_duplicate_keys_use_neither_record_and_report_both() -> None:
    """Two records with one key: neither is used, each issue names the other's line, and
    the key is protected (its account stays) while the state stays complete."""
    result = Mapping(users={"userName": "m"}).map(
        [
            user_record(key="E6", line=11, m="first"),
            user_record(key="E7", line=12, m="other"),
            user_record(key="E6", line=13, m="second"),
        ]
    )
    assert ["E7"] == [u.key for u in result.desired.users]
    assert [
        (IssueCode.DUPLICATE_KEY, 11),
        (IssueCode.DUPLICATE_KEY, 13),
    ] == [(i.code, i.line) for i in result.issues]
    assert "also test line 13" in result.issues[0].reason
    assert "also test line 11" in result.issues[1].reason
    assert (True, ["E6"]) == (result.complete, list(result.desired.protected_user_keys))


def test_a_duplicate_of_a_record_that_failed_is_still_a_duplicate() -> None:
    """The first record failing to map does not let the second one through silently."""
    mapping = Mapping(users={"userName": "m", "active": "s"})
    result = mapping.map([user_record(m="a", s="maybe"), user_record(m="b", s="true", line=2)])
    assert () == result.desired.users
    assert [
        IssueCode.INVALID_VALUE,
        IssueCode.DUPLICATE_KEY,
        IssueCode.DUPLICATE_KEY,
    ] == [i.code for i in result.issues]


def test_issues_from_the_source_pass_through_and_mark_incomplete() -> None:
    """A source's READ_INCOMPLETE (or MALFORMED) issue is kept and makes the state incomplete."""
    stop = RecordIssue(code=IssueCode.READ_INCOMPLETE, reason="page 3 failed")
    result = Mapping(users={"userName": "m"}).map([user_record(m="a"), stop])
    assert ([stop], ["k1"], False) == (
        list(result.issues),
        [u.key for u in result.desired.users],
        result.complete,
    )


def test_a_clean_source_gives_a_complete_state() -> None:
    """No issues: complete."""
    assert True is Mapping(users={"userName": "m"}).map([user_record(m="a")]).complete


def test_a_record_with_an_invalid_value_protects_its_key_and_nobody_else() -> None:
    """A bad value in one keyed record: that key is protected, with the reason, and the
    state stays complete, so the other identities' deprovisioning may go ahead."""
    result = Mapping(users={"userName": "m", "active": "s"}).map(
        [user_record(key="k1", m="a", s="maybe"), user_record(key="k2", m="b", s="true")]
    )
    [issue] = result.issues
    assert (True, ["k2"], {"k1": f"source record has an issue: invalid_value: {issue.reason}"}) == (
        result.complete,
        [u.key for u in result.desired.users],
        dict(result.desired.protected_user_keys),
    )


def test_a_scope_that_raises_protects_the_key() -> None:
    """Whether the record is in scope is unknown: its key is protected, not a departure."""

    def scope(record: Record) -> bool:
        return bool(record["type"] == "staff")

    result = Mapping(users={"userName": "m"}, scope=scope).map([user_record(key="k7", m="a")])
    assert (True, ["k7"]) == (result.complete, list(result.desired.protected_user_keys))


def test_a_source_issue_naming_a_key_protects_it() -> None:
    """A source's keyed issue (not a read error) protects that key."""
    issue = RecordIssue(code=IssueCode.INVALID_VALUE, reason="control character", key="E9")
    result = Mapping(users={"userName": "m"}).map([user_record(m="a"), issue])
    assert (True, {"E9": "source record has an issue: invalid_value: control character"}) == (
        result.complete,
        dict(result.desired.protected_user_keys),
    )


def test_a_record_the_source_could_not_read_makes_the_read_incomplete_whatever_its_key() -> None:
    """MALFORMED: a row with a wrong number of fields may carry another column's value as
    its key: nothing may be deprovisioned; the key it gave is protected all the same,
    should the guard be forced (a wrong key protected costs nothing)."""
    issue = RecordIssue(code=IssueCode.MALFORMED, reason="3 fields where the header has 5", key="x")
    result = Mapping(users={"userName": "m"}).map([user_record(m="a"), issue])
    assert (False, ["x"]) == (result.complete, list(result.desired.protected_user_keys))


def test_a_failing_member_of_rule_makes_the_read_incomplete() -> None:
    """The groups the record names are unknown (any group may be one of them): the read
    is incomplete, and the record's key is protected (its memberships are unknown)."""

    def groups(record: Record) -> list[str]:
        raise KeyError("groups")

    result = Mapping(users={"userName": "m"}, member_of=groups).map([user_record(key="k1", m="a")])
    assert (False, ["k1"], ["k1"]) == (
        result.complete,
        [u.key for u in result.desired.users],
        list(result.desired.protected_user_keys),
    )


def test_a_group_named_only_by_records_with_issues_is_protected() -> None:
    """A group only a duplicated record names is not in the desired state, but protected:
    it is not deleted for want of a good record naming it."""
    mapping = Mapping(users={"userName": "m"}, member_of="g")
    result = mapping.map(
        [
            user_record(key="u1", line=1, m="a", g="eng"),
            user_record(key="u1", line=2, m="b", g="ops"),
            user_record(key="u2", line=3, m="c", g="eng"),
        ]
    )
    assert (True, ["eng"], ["u1"]) == (
        result.complete,
        [g.key for g in result.desired.groups],
        list(result.desired.protected_user_keys),
    )
    assert {"ops": "named by member_of only in user records with an issue: 'u1'"} == dict(
        result.desired.protected_group_keys
    )


def test_a_group_record_with_an_issue_protects_the_group() -> None:
    """A group record that cannot be mapped protects its group (not deleted, members kept)."""
    result = Mapping(users={"userName": "m"}, groups={"displayName": "n"}).map(
        MemorySource(groups=[{"id": "g1", "n": ""}, {"id": "g2", "n": "Two"}])
    )
    assert (True, ["g2"], ["g1"]) == (
        result.complete,
        [g.key for g in result.desired.groups],
        list(result.desired.protected_group_keys),
    )


_keys = st.sampled_from(["a", "b", "c", "d", None])
_records = st.lists(
    st.builds(
        lambda k, m, s, inside: Record(key=k, attributes={"m": m, "s": s, "in": inside}, line=None),
        _keys,
        st.sampled_from(["x@y", "", "z@w"]),
        st.sampled_from(["true", "false", "maybe"]),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(items=_records)
def test_every_record_in_scope_is_desired_or_reported(items: list[Record]) -> None:
    """No record vanishes: each in-scope key is desired once or has an issue, never both;
    each keyed record with an issue is protected, and the state is complete exactly when
    no issue loses an identity nobody can name (a record without key)."""
    mapping = Mapping(users={"userName": "m", "active": "s"}, scope=lambda r: bool(r["in"]))
    result = mapping.map(items)
    desired = [u.key for u in result.desired.users]
    reported = {i.key for i in result.issues}
    in_scope = {r.key for r in items if r["in"]}
    assert len(desired) == len(set(desired))
    assert in_scope == set(desired) | reported
    assert set() == set(desired) & reported
    assert (not any(i.code.loses_identity and i.key is None for i in result.issues)) == (
        result.complete
    )
    troubled = {i.key for i in result.issues if i.code.loses_identity and i.key is not None}
    assert troubled == set(result.desired.protected_user_keys)


# -- groups --------------------------------------------------------------------------------


def test_member_of_makes_groups_from_user_attributes() -> None:
    """Group keys from a user field become groups (named by key) with the users' keys."""
    mapping = Mapping(users={"userName": "m"}, member_of="groups")
    result = mapping.map(
        [
            user_record(key="u1", m="a", groups=["eng", "all"]),
            user_record(key="u2", m="b", groups=["all", "all"]),
            user_record(key="u3", m="c", groups=[]),
        ]
    )
    assert [
        ("all", "all", ("u1", "u2")),
        ("eng", "eng", ("u1",)),
    ] == [(g.key, g.group.display_name, g.member_keys) for g in result.desired.groups]
    assert "all" == result.desired.groups[0].group.external_id


def test_group_records_map_with_their_members() -> None:
    """Group records map through ``groups=`` and keep their member keys."""
    mapping = Mapping(users={"userName": "m"}, groups={"displayName": "name"})
    source = MemorySource(
        users=[{"id": "u1", "m": "a"}, {"id": "u2", "m": "b"}],
        groups=[{"id": "g1", "name": "Eng", "members": ["u2", "u1"]}],
    )
    [group] = mapping.map(source).desired.groups
    assert ("g1", "Eng", "g1", ("u2", "u1")) == (
        group.key,
        group.group.display_name,
        group.group.external_id,
        group.member_keys,
    )


def test_group_records_and_member_of_add_up() -> None:
    """A group named by both a group record and users' fields gets both sets of members."""
    mapping = Mapping(users={"userName": "m"}, groups={"displayName": "name"}, member_of="g")
    source = MemorySource(
        users=[{"id": "u1", "m": "a", "g": "eng"}, {"id": "u2", "m": "b"}],
        groups=[{"id": "eng", "name": "Engineering", "members": ["u2"]}],
    )
    [group] = mapping.map(source).desired.groups
    assert ("Engineering", ("u2", "u1")) == (group.group.display_name, group.member_keys)


def test_unknown_members_are_left_out_and_reported_without_marking_incomplete() -> None:
    """A member key no user has is UNKNOWN_MEMBER: dropped, and the state stays complete."""
    mapping = Mapping(users={"userName": "m"}, groups={"displayName": "name"})
    source = MemorySource(
        users=[{"id": "u1", "m": "a"}],
        groups=[{"id": "g1", "name": "Eng", "members": ["u1", "ghost"]}],
    )
    result = mapping.map(source)
    assert ("u1",) == result.desired.groups[0].member_keys
    [issue] = result.issues
    assert (IssueCode.UNKNOWN_MEMBER, "g1", "group") == (issue.code, issue.key, issue.kind)
    assert True is result.complete


def test_members_out_of_scope_are_left_out_silently() -> None:
    """Members scoped out are not provisioned, so they are not members either."""
    mapping = Mapping(
        users={"userName": "m"}, member_of="g", scope=lambda r: r.get("type") != "contractor"
    )
    result = mapping.map(
        [
            user_record(key="u1", m="a", g="eng"),
            user_record(key="u2", m="b", g="eng", type="contractor"),
        ]
    )
    assert (("u1",), ()) == (result.desired.groups[0].member_keys, result.issues)


def test_members_whose_record_failed_stay_members() -> None:
    """A user with an issue keeps its memberships: its groups must not shed it by accident."""
    mapping = Mapping(users={"userName": "m", "active": "s"}, member_of="g")
    result = mapping.map([user_record(key="u1", m="a", s="maybe", g="eng")])
    assert ("u1",) == result.desired.groups[0].member_keys


def test_unknown_members_stay_when_the_read_was_incomplete() -> None:
    """After a partial read an unknown member may be a user not read: it is kept."""
    mapping = Mapping(users={"userName": "m"}, groups={"displayName": "n"})
    items: list[SourceItem] = [
        Record(key="g1", kind="group", attributes={"n": "Eng"}, members=("u9",)),
        RecordIssue(code=IssueCode.READ_INCOMPLETE, reason="timeout"),
    ]
    assert ("u9",) == mapping.map(items).desired.groups[0].member_keys


def test_unknown_members_stay_when_a_user_had_no_key() -> None:
    """A user record without key might be the unknown member: it is kept, and reported."""
    mapping = Mapping(users={"userName": "m"}, groups={"displayName": "n"})
    items: list[SourceItem] = [
        user_record(key=None, m="a"),
        Record(key="g1", kind="group", attributes={"n": "Eng"}, members=("u9",)),
    ]
    result = mapping.map(items)
    assert ("u9",) == result.desired.groups[0].member_keys
    assert [IssueCode.NO_KEY, IssueCode.UNKNOWN_MEMBER] == [i.code for i in result.issues]


def test_group_records_without_group_rules_are_issues() -> None:
    """Group records reaching a mapping without ``groups=`` are reported, not dropped."""
    result = Mapping(users={"userName": "m"}).map(MemorySource(groups=[{"id": "g1"}]))
    assert [IssueCode.MAPPING_FAILED] == [i.code for i in result.issues]


def test_group_without_display_name_is_an_issue() -> None:
    """A group record whose displayName comes out empty is INVALID_VALUE."""
    result = Mapping(users={"userName": "m"}, groups={"displayName": "n"}).map(
        MemorySource(groups=[{"id": "g1", "n": ""}])
    )
    assert [(IssueCode.INVALID_VALUE, "g1")] == [(i.code, i.key) for i in result.issues]


def test_duplicate_group_keys_use_neither_group() -> None:
    """Two group records with one key: neither is used, both reported."""
    result = Mapping(users={"userName": "m"}, groups={"displayName": "n"}).map(
        MemorySource(groups=[{"id": "g1", "n": "A"}, {"id": "g1", "n": "B"}])
    )
    assert ((), [IssueCode.DUPLICATE_KEY] * 2) == (
        result.desired.groups,
        [i.code for i in result.issues],
    )


# -- the whole messy file -------------------------------------------------------------------


def people_mapping() -> Mapping:
    return Mapping(
        users={
            "userName": lower("email"),
            "name.givenName": "first_name",
            "name.familyName": "last_name",
            "displayName": template("{first_name} {last_name}"),
            f"{ENTERPRISE}:department": "department",
            "active": boolean("status", true={"active"}, false={"leave"}),
        },
        member_of="groups",
        scope=lambda record: record["status"] != "terminated",
    )


def test_the_messy_csv_maps_to_exactly_the_good_people() -> None:
    """From people.csv: the good rows become users, every other row one issue with its line."""
    source = CsvSource(FIXTURES / "people.csv", key="employee_id", multi_valued={"groups": ";"})
    result = people_mapping().map(source)
    assert ["E001", "E002", "E003", "E004", "E009"] == [u.key for u in result.desired.users]
    assert [
        (8, IssueCode.INVALID_VALUE),
        (9, IssueCode.NO_KEY),
        (13, IssueCode.MALFORMED),
        (16, IssueCode.MALFORMED),
        (11, IssueCode.DUPLICATE_KEY),
        (12, IssueCode.DUPLICATE_KEY),
    ] == [(i.line, i.code) for i in result.issues]
    assert (False, 1, 10) == (result.complete, result.out_of_scope, result.records)
    # The invalid and duplicated rows are protected; the malformed ones (E007 has too
    # few fields, E010 a quote never closed) and the keyless one make the read
    # incomplete, the keys the malformed ones gave protected too.
    assert ["E005", "E006", "E007", "E010"] == sorted(result.desired.protected_user_keys)
    users = {u.key: u.user for u in result.desired.users}
    assert "bob@example.com" == users["E002"].user_name
    assert "Zoë Ångström" == users["E003"].display_name
    assert False is users["E004"].active
    groups = {g.key: g.member_keys for g in result.desired.groups}
    assert {
        "all": ("E001", "E002", "E004", "E009"),
        "eng": ("E001", "E003"),
        "sales": ("E002", "E009"),
    } == groups
    assert ("note",) == result.unread_fields


def test_a_users_file_and_a_groups_file_together() -> None:
    """Group records from their own file refer to users of the other; unknown ones reported."""
    users = CsvSource(FIXTURES / "people.csv", key="employee_id", multi_valued={"groups": ";"})
    groups = CsvSource(FIXTURES / "groups.csv", key="group_id", kind="group", members="members")
    mapping = Mapping(users={"userName": lower("email")}, groups={"displayName": "display_name"})
    result = mapping.map(CombinedSource(users, groups))
    # E404 names no user; but a row of people.csv has no key, so it might be that one.
    assert [
        ("G1", ("E001", "E003", "E404")),
        ("G2", ("E002", "E009")),
    ] == [(g.key, g.member_keys) for g in result.desired.groups]
    group_issues = [(i.key, i.code) for i in result.issues if i.kind == "group"]
    assert [("G1", IssueCode.UNKNOWN_MEMBER), ("G3", IssueCode.INVALID_VALUE)] == group_issues
    assert "kept" in result.issues[-2].reason


def test_unread_fields_leave_out_the_key_and_flag_callables() -> None:
    """Fields no declarative rule reads are listed (the key column is the source's own)."""
    mapping = Mapping(users={"userName": "email"}, scope=lambda r: True)
    source = CsvSource(FIXTURES / "people-semicolon.csv", key="employee_id", delimiter=";")
    result = mapping.map(source)
    assert (("first_name", "groups", "last_name"), True) == (
        result.unread_fields,
        result.callables_read,
    )
    assert "callables may read them" in str(result)


# -- preview -------------------------------------------------------------------------------


def test_preview_shows_what_the_first_records_become() -> None:
    """Each previewed record has its desired user, issues and unread fields; passwords masked."""
    mapping = Mapping(
        users={"userName": lower("mail"), "active": boolean("s")},
        create_only={"password": lambda r: "Secret-123"},
        scope=lambda r: r.get("kind") != "bot",
    )
    preview = mapping.preview(
        [
            {"id": "1", "mail": "A@X.ORG", "s": "yes", "extra": "?"},
            {"id": "2", "mail": "b@x.org", "s": "perhaps"},
            {"id": "3", "mail": "bot@x.org", "kind": "bot"},
            {"id": "4", "mail": "never@x.org"},
        ],
        limit=3,
    )
    first, second, third = preview.items
    assert {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": "1",
        "userName": "a@x.org",
        "active": True,
        "on create only": {"password": "********"},
    } == first.scim()
    assert ("extra",) == first.unread_fields
    assert [IssueCode.INVALID_VALUE] == [i.code for i in second.issues]
    assert None is second.desired
    assert False is third.in_scope
    text = str(preview)
    assert "Secret-123" not in text
    assert '"userName": "a@x.org"' in text
    assert "out of scope" in text
    assert 3 == preview.result.records


def test_preview_of_a_group_lists_member_keys() -> None:
    """A previewed group shows its members as source keys."""
    mapping = Mapping(users={"userName": "m"}, groups={"displayName": "n"})
    preview = mapping.preview(
        MemorySource(
            users=[{"id": "u1", "m": "a"}], groups=[{"id": "g", "n": "G", "members": ["u1"]}]
        )
    )
    assert ["u1"] == preview.items[1].scim()["members (source keys)"]  # type: ignore[index]


# -- async -----------------------------------------------------------------------------------


class AsyncListSource:
    def __init__(self, items: list[SourceItem]) -> None:
        self.items = items
        self.key = "id"

    async def _read(self) -> AsyncIterator[SourceItem]:
        for item in self.items:
            await asyncio.sleep(0)
            yield item

    def read(self) -> AsyncIterator[SourceItem]:
        return self._read()


async def test_amap_reads_async_sources() -> None:
    """``amap`` consumes an async source the way ``map`` consumes a sync one."""
    mapping = Mapping(users={"userName": "m"})
    result = await mapping.amap(AsyncListSource([user_record(m="a"), user_record(key="k2", m="b")]))
    assert ["k1", "k2"] == [u.key for u in result.desired.users]


async def test_amap_reads_sync_sources_off_the_event_loop() -> None:
    """A sync source is read in a worker thread, with the same result as ``map``."""
    source = CsvSource(FIXTURES / "people.csv", key="employee_id", multi_valued={"groups": ";"})
    assert people_mapping().map(source) == await people_mapping().amap(source)


def test_filtered_fields_read_scim_json_records() -> None:
    """``'emails[type eq "work"].value'`` reads the matching element (the primary one
    when several match) from a record holding SCIM JSON."""
    mapping = Mapping(
        users={
            "userName": "userName",
            'emails[type eq "work"].value': 'emails[type eq "work"].value',
            "title": f'{BADGE}:codes[kind eq "door"].value',
        }
    )
    user = one_user(
        mapping,
        userName="ann",
        emails=[
            {"value": "first@x.org", "type": "work"},
            {"value": "main@x.org", "type": "Work", "primary": True},
            {"value": "home@x.org", "type": "home"},
        ],
        **{BADGE: {"codes": [{"kind": "door", "value": "D-7"}]}},
    )
    assert ((Email(value="main@x.org", type="work"),), "D-7") == (user.emails, user.title)
    assert one_user(mapping, userName="bob", emails="not a list").emails is None


def test_a_filtered_field_that_is_no_path_is_refused() -> None:
    """A field name with a broken filter is a ConfigurationError when the rule is made."""
    with pytest.raises(ConfigurationError, match="not an attribute path"):
        field('emails[type eq "work".value')


# -- control characters ----------------------------------------------------------------------


def test_a_nul_byte_from_a_csv_row_is_an_invalid_value_and_the_record_is_not_used(
    tmp_path: Path,
) -> None:
    """``E4,nul\\x00@example.com`` is an INVALID_VALUE issue naming the key and the
    attribute; the other rows still map."""
    path = tmp_path / "people.csv"
    path.write_text(
        "id,email\nE3,ann@example.com\nE4,nul\x00@example.com\nE5,bob@example.com\n",
        encoding="utf-8",
    )
    result = Mapping(users={"userName": "email"}).map(CsvSource(path, key="id"))
    [issue] = result.issues
    assert (IssueCode.INVALID_VALUE, "E4", 3) == (issue.code, issue.key, issue.line)
    assert (
        "users['userName']: the value holds a control character (U+0000), which is never sent"
    ) == issue.reason
    assert ["E3", "E5"] == [u.key for u in result.desired.users]


@pytest.mark.parametrize(
    "character", ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
)
def test_every_c0_c1_and_del_control_is_refused(character: str) -> None:
    """C0 controls, DEL and C1 controls (U+0080-U+009F) are refused in any attribute."""
    mapping = Mapping(users={"userName": "name", "title": "title"})
    result = mapping.map([user_record(name="ann", title=f"boss{character}")])
    assert ([], [IssueCode.INVALID_VALUE]) == (
        list(result.desired.users),
        [issue.code for issue in result.issues],
    )
    assert f"(U+{ord(character):04X})" in result.issues[0].reason


@pytest.mark.parametrize("character", ["\t", "\n", "\r"])
def test_line_breaks_and_tabs_are_refused_outside_multi_line_text(character: str) -> None:
    """Tab, line feed and carriage return are refused in a one-line attribute, and the
    reason says where they may go."""
    result = Mapping(users={"userName": "name"}).map([user_record(name=f"ann{character}x")])
    [issue] = result.issues
    assert issue.reason.endswith(
        "; line breaks and tabs only go in addresses.formatted and multi_line() rules"
    )


def test_addresses_formatted_holds_line_breaks_but_no_other_control() -> None:
    """``addresses.formatted`` is multi-line text: tabs and line breaks pass, by a
    filtered path or inside whole address objects; a NUL there is still refused."""
    mapping = Mapping(users={"userName": "name", 'addresses[type eq "work"].formatted': "address"})
    user = one_user(mapping, name="ann", address="1 Main St\r\nSpringfield\tUSA")
    assert (Address(type="work", formatted="1 Main St\r\nSpringfield\tUSA"),) == user.addresses
    whole = Mapping(users={"userName": "name", "addresses": lambda r: r["addresses"]})
    user = one_user(whole, name="ann", addresses=[{"formatted": "a\nb", "locality": "Town"}])
    assert "a\nb" == (user.addresses or ())[0].formatted
    cases: list[tuple[Mapping, dict[str, Any]]] = [
        (mapping, {"address": "1 Main St\x00"}),
        (whole, {"addresses": [{"formatted": "a\x00b"}]}),
        (whole, {"addresses": [{"formatted": "a", "locality": "Town\n"}]}),
    ]
    for mapped, address in cases:
        result = mapped.map([user_record(name="ann", **address)])
        assert [IssueCode.INVALID_VALUE] == [issue.code for issue in result.issues]


def test_multi_line_lets_another_attribute_hold_line_breaks() -> None:
    """A rule wrapped in multi_line() (also inside keep_when_empty) may hold tabs and line
    breaks; other controls stay refused."""
    mapping = Mapping(
        users={
            "userName": "name",
            "title": multi_line("title"),
            "nickName": keep_when_empty(multi_line("nick")),
        }
    )
    user = one_user(mapping, name="ann", title="line one\nline two", nick="a\tb")
    assert ("line one\nline two", "a\tb") == (user.title, user.nick_name)
    result = mapping.map([user_record(name="ann", title="bell\x07")])
    assert [IssueCode.INVALID_VALUE] == [issue.code for issue in result.issues]
    assert "multi_line(field('title'))" == repr(mapping.user_entries[1].rule)


def test_a_control_character_in_a_create_only_value_is_refused_without_showing_it() -> None:
    """An initial password holding a control character is refused; the reason never
    shows the value."""
    mapping = Mapping(users={"userName": "name"}, create_only={"password": "secret"})
    result = mapping.map([user_record(name="ann", secret="hunter2\x00")])
    [issue] = result.issues
    assert (IssueCode.INVALID_VALUE, []) == (issue.code, list(result.desired.users))
    assert "create_only['password']" in issue.reason
    assert "hunter2" not in str(issue)


def test_a_control_character_in_a_group_key_of_member_of_is_refused() -> None:
    """member_of giving a group key with a control character: the user record is not used
    and no group is made of that key; other users and groups map."""
    mapping = Mapping(users={"userName": "name"}, member_of="groups")
    result = mapping.map(
        [
            user_record(key="k1", name="ann", groups=["eng\x1b[31m"]),
            user_record(key="k2", name="bob", groups=["ops"]),
        ]
    )
    [issue] = result.issues
    assert (IssueCode.INVALID_VALUE, "k1") == (issue.code, issue.key)
    assert "member_of: the value holds a control character (U+001B)" in issue.reason
    assert (["k2"], ["ops"]) == (
        [u.key for u in result.desired.users],
        [g.key for g in result.desired.groups],
    )


def test_a_control_character_in_a_group_attribute_is_refused() -> None:
    """Group records go through the same check as users."""
    mapping = Mapping(users={"userName": "name"}, groups={"displayName": "name"})
    result = mapping.map(
        [
            Record(key="g1", attributes={"name": "eng\x00"}, kind="group"),
            Record(key="g2", attributes={"name": "ops"}, kind="group"),
        ]
    )
    assert ([IssueCode.INVALID_VALUE], ["g2"]) == (
        [issue.code for issue in result.issues],
        [g.key for g in result.desired.groups],
    )
