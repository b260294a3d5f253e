"""What a target kept of a write: each rule of ``scimsync.sync._verify``, one test each.

A create (or PUT) body is checked against the answer with ``unkept_by_resource``, PATCH
operations with ``unkept_by_patch``. A target that keeps everything shows nothing; one
that drops, changes or does not clear a value shows that path, in the schema's
spelling, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import Address, Email, EnterpriseUser, Group, Member, Name, PhoneNumber, User
from scimsync.codec import from_scim, to_scim
from scimsync.engine import Ledger, Policy, SyncState, plan
from scimsync.engine._state import CONFIRMATIONS
from scimsync.models import DesiredState, DesiredUser, PatchOperation, TargetState
from scimsync.patch import apply_patch
from scimsync.schema import CORE_SCHEMAS, SchemaTable, core_schema_documents
from scimsync.sync._verify import Observation, scopes_of, unkept_by_patch, unkept_by_resource
from strategies import any_users, as_mapped, managed_sets

if TYPE_CHECKING:
    from collections.abc import Callable

    from scimsync.engine._state import UnkeptHow

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BADGE = "urn:example:scim:schemas:1.0:Badge"

#: The core schemas and an extension with one attribute of each kind verify cares about.
SCHEMA = SchemaTable.from_scim(
    [
        *core_schema_documents(),
        {
            "id": BADGE,
            "name": "Badge",
            "attributes": [
                {"name": "number", "type": "string", "caseExact": True},
                {"name": "colour", "type": "string", "caseExact": False},
                {"name": "issued", "type": "string", "mutability": "readOnly"},
                {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
                {"name": "audit", "type": "string", "returned": "request"},
                {"name": "secret", "type": "string", "returned": "never"},
            ],
        },
    ],
    [
        {
            "name": "User",
            "endpoint": "/Users",
            "schema": USER_URN,
            "schemaExtensions": [
                {"schema": ENTERPRISE, "required": False},
                {"schema": BADGE, "required": False},
            ],
        },
        {
            "name": "Group",
            "endpoint": "/Groups",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
        },
    ],
)


def user(**fields: Any) -> User:
    """A user as SCIM JSON would give it (extensions as their URNs)."""
    return from_scim({"schemas": [USER_URN], "userName": "ann", **fields}, User)


def ops(*triples: tuple[str, str | None, Any]) -> list[PatchOperation]:
    return [PatchOperation(op=op, path=path, value=value) for op, path, value in triples]


def seen(*pairs: tuple[str, UnkeptHow]) -> list[Observation]:
    """Observations of User paths, in the order the checker reports them (sorted)."""
    return [Observation("User", path, how) for path, how in sorted(pairs)]


# -- a target that keeps everything --------------------------------------------------------


@given(any_users)
def test_a_target_that_keeps_everything_shows_nothing(sent: User) -> None:
    """Any user answered as it was sent has nothing unkept (emails sharing an address
    in two roles included)."""
    assert [] == unkept_by_resource("User", sent, sent, CORE_SCHEMAS)


def test_one_address_in_two_roles_is_two_values() -> None:
    """Two emails with one address, work and home, answered as sent are kept: each is
    found by its value and its type, not both by the first with that value."""
    sent = user(emails=[{"value": "a@x.org", "type": "work"}, {"value": "a@x.org", "type": "home"}])
    answered = user(
        emails=[{"value": "a@x.org", "type": "home"}, {"value": "A@x.org", "type": "work"}]
    )
    assert [] == unkept_by_resource("User", sent, answered, CORE_SCHEMAS)


def test_what_the_target_adds_on_its_own_is_no_concern() -> None:
    """Only what was sent is checked: meta, an id, a formatted name, a primary flag and
    attributes nobody sent, all added by the target, show nothing."""
    sent = User(user_name="ann", name=Name(given_name="Ann"), emails=(Email(value="a@x.org"),))
    answered = user(
        id="7",
        meta={"resourceType": "User", "version": 'W/"1"'},
        nickName="annie",
        name={"givenName": "Ann", "formatted": "Ann"},
        emails=[{"value": "a@x.org", "primary": True, "type": "work"}],
        groups=[{"value": "g1"}],
    )
    assert [] == unkept_by_resource("User", sent, answered, CORE_SCHEMAS)


def test_every_dropped_attribute_is_one_observation() -> None:
    """An answer missing attributes that were sent shows each of them dropped, sorted."""
    sent = user(title="Lead", nickName="annie", name={"givenName": "Ann", "familyName": "Lee"})
    answered = user(name={"familyName": "Lee"})
    assert seen(
        ("name.givenName", "dropped"), ("nickName", "dropped"), ("title", "dropped")
    ) == unkept_by_resource("User", sent, answered, CORE_SCHEMAS)


# -- never what cannot come back -----------------------------------------------------------


def test_write_only_read_only_and_request_only_values_are_never_checked() -> None:
    """A password (writeOnly), readOnly, writeOnly, ``returned: never`` and ``returned:
    request`` extension attributes sent and not answered show nothing; a plain one does."""
    sent = user(
        password="s3cret",
        **{
            BADGE: {
                "issued": "2020",
                "pin": "1234",
                "audit": "on",
                "secret": "x",
                "number": "B-1",
            }
        },
    )
    assert seen((f"{BADGE}:number", "dropped")) == unkept_by_resource("User", sent, user(), SCHEMA)


def test_patches_of_values_that_cannot_come_back_are_never_checked() -> None:
    """PATCH operations on a password, a readOnly, a ``returned: request`` attribute,
    ``id``, ``meta``, ``groups`` and group ``members`` show nothing on an empty answer."""
    operations = ops(
        ("replace", "password", "s3cret"),
        ("replace", f"{BADGE}:issued", "2020"),
        ("replace", f"{BADGE}:audit", "on"),
        ("replace", f"{BADGE}:pin", "1234"),
        ("add", "groups", [{"value": "g1"}]),
        ("replace", "meta.version", "x"),
    )
    assert [] == unkept_by_patch("User", operations, user(), SCHEMA)
    members = ops(("add", "members", [{"value": "u1"}]), ("remove", 'members[value eq "u2"]', None))
    group = Group(display_name="Eng", members=(Member(value="u2"),))
    assert [] == unkept_by_patch("Group", members, group, CORE_SCHEMAS)


def test_group_members_of_a_created_group_are_not_checked() -> None:
    """A group created with members and answered without them shows nothing."""
    sent = Group(display_name="Eng", members=(Member(value="u1"),))
    assert [] == unkept_by_resource("Group", sent, Group(display_name="Eng"), CORE_SCHEMAS)


# -- compared as the schema says -----------------------------------------------------------


def test_case_is_ignored_where_the_schema_says_case_exact_false() -> None:
    """userName, title, name parts, email values and a caseExact-false extension
    attribute answered in another case are kept."""
    sent = user(
        title="Lead",
        name={"givenName": "Ann"},
        emails=[{"value": "Ann@X.org", "type": "work"}],
        **{BADGE: {"colour": "Blue"}},
    )
    answered = from_scim(
        {
            "schemas": [USER_URN],
            "userName": "ANN",
            "title": "lead",
            "name": {"givenName": "ANN"},
            "emails": [{"value": "ann@x.org", "type": "WORK"}],
            BADGE: {"colour": "blue"},
        },
        User,
    )
    assert [] == unkept_by_resource("User", sent, answered, SCHEMA)


def test_case_matters_where_the_schema_says_case_exact_true() -> None:
    """externalId and a caseExact extension attribute answered in another case changed."""
    sent = user(externalId="E1", **{BADGE: {"number": "B-1"}})
    answered = user(externalId="e1", **{BADGE: {"number": "b-1"}})
    assert seen(("externalId", "changed"), (f"{BADGE}:number", "changed")) == (
        unkept_by_resource("User", sent, answered, SCHEMA)
    )


def test_a_changed_value_is_changed() -> None:
    """A title or a name part answered with another value is changed, not dropped."""
    operations = ops(("replace", "title", "Lead"), ("replace", "name.givenName", "Ann"))
    answered = user(title="Leader", name={"givenName": "Anne"})
    assert seen(("name.givenName", "changed"), ("title", "changed")) == unkept_by_patch(
        "User", operations, answered, CORE_SCHEMAS
    )


def test_an_empty_value_sent_needs_nothing_back() -> None:
    """``""``, ``[]`` and ``{}`` sent (in a body or a PATCH) need nothing back."""
    sent = user(title="", emails=[], name={})
    assert [] == unkept_by_resource("User", sent, user(), CORE_SCHEMAS)
    operations = ops(("replace", "title", ""), ("add", "emails", []), ("replace", "nickName", None))
    assert [] == unkept_by_patch("User", operations, user(), CORE_SCHEMAS)


def test_a_primary_of_false_may_come_back_absent() -> None:
    """``primary: false`` answered without ``primary`` is kept (false is its default);
    ``primary: true`` answered without it is ``emails.primary`` dropped."""
    answered = user(emails=[{"value": "a@x.org", "type": "work"}])
    not_primary = user(emails=[{"value": "a@x.org", "type": "work", "primary": False}])
    primary = user(emails=[{"value": "a@x.org", "type": "work", "primary": True}])
    assert ([], seen(("emails.primary", "dropped"))) == (
        unkept_by_resource("User", not_primary, answered, CORE_SCHEMAS),
        unkept_by_resource("User", primary, answered, CORE_SCHEMAS),
    )


def test_a_complex_value_answered_as_something_else_is_changed() -> None:
    """An object sent and answered as a string is that attribute changed."""
    answered = user(office="3rd floor")
    assert seen(("office", "changed")) == unkept_by_resource(
        "User", user(office={"floor": "3"}), answered, CORE_SCHEMAS
    )


# -- values of multi-valued attributes, found by identity ------------------------------------


def test_an_email_answered_without_its_type_is_the_same_email_type_dropped() -> None:
    """An email answered without ``type`` is found by its value: ``emails.type`` dropped,
    not a different email."""
    sent = user(emails=[{"value": "a@x.org", "type": "work"}])
    answered = user(emails=[{"value": "a@x.org"}])
    assert seen(("emails.type", "dropped")) == unkept_by_resource(
        "User", sent, answered, CORE_SCHEMAS
    )


def test_values_are_found_in_any_order() -> None:
    """Emails and phone numbers answered in another order are kept."""
    sent = User(
        user_name="ann",
        emails=(Email(value="a@x.org", type="work"), Email(value="b@x.org", type="home")),
        phone_numbers=(PhoneNumber(value="+1 555", type="work"),),
    )
    answered = user(
        emails=[{"value": "b@x.org", "type": "home"}, {"value": "a@x.org", "type": "work"}],
        phoneNumbers=[{"value": "+1 555", "type": "work"}],
    )
    assert [] == unkept_by_resource("User", sent, answered, CORE_SCHEMAS)


def test_a_value_without_value_is_found_by_its_type() -> None:
    """An address (no ``value``) is found by its type; a changed street is
    ``addresses.streetAddress`` changed."""
    sent = User(user_name="ann", addresses=(Address(type="work", street_address="1 Main St"),))
    answered = user(
        addresses=[
            {"type": "home", "streetAddress": "9 Elm St"},
            {"type": "work", "streetAddress": "2 Main St"},
        ]
    )
    assert seen(("addresses.streetAddress", "changed")) == unkept_by_resource(
        "User", sent, answered, CORE_SCHEMAS
    )


def test_an_address_answered_without_its_type_is_the_same_address_type_dropped() -> None:
    """An address (found by its type) answered without a type is ``addresses.type``
    dropped, not the whole ``addresses`` changed: its street is still compared."""
    sent = User(user_name="ann", addresses=(Address(type="work", street_address="1 Main St"),))
    kept = user(addresses=[{"streetAddress": "1 Main St"}])
    moved = user(addresses=[{"streetAddress": "2 Main St"}])
    assert (
        seen(("addresses.type", "dropped")),
        seen(("addresses.streetAddress", "changed"), ("addresses.type", "dropped")),
    ) == (
        unkept_by_resource("User", sent, kept, CORE_SCHEMAS),
        unkept_by_resource("User", sent, moved, CORE_SCHEMAS),
    )


def test_simple_multi_valued_values_are_found_by_equality() -> None:
    """Values of a multi-valued string attribute (an unknown one) are found by value;
    one missing is the attribute changed."""
    sent = user(tags=["a", "B"])
    assert ([], seen(("tags", "changed"))) == (
        unkept_by_resource("User", sent, user(tags=["b", "A", "c"]), CORE_SCHEMAS),
        unkept_by_resource("User", sent, user(tags=["a"]), CORE_SCHEMAS),
    )


def test_a_value_not_kept_is_the_attribute_not_kept() -> None:
    """An email the target did not keep, a phone number it rewrote, in a list written
    whole (no element scope says which value is which): the attribute is reported
    (``emails``, ``phoneNumbers``), never its ``value``, which left out would have the
    engine write values without one. A work email set through a filtered path to
    another address is that value (see the scoped tests below)."""
    sent = user(
        emails=[{"value": "a@x.org", "type": "work"}, {"value": "b@x.org", "type": "home"}],
        phoneNumbers=[{"value": "+1 (555) 010", "type": "work"}],
    )
    answered = user(
        emails=[{"value": "a@x.org", "type": "work"}],
        phoneNumbers=[{"value": "+1555010", "type": "work"}],
    )
    assert seen(("emails", "changed"), ("phoneNumbers", "changed")) == unkept_by_resource(
        "User", sent, answered, CORE_SCHEMAS
    )
    operations = ops(("replace", 'emails[type eq "work"].value', "a@x.org"))
    elsewhere = user(emails=[{"value": "z@x.org", "type": "work"}])
    assert seen(('emails[type eq "work"]', "changed")) == unkept_by_patch(
        "User", operations, elsewhere, CORE_SCHEMAS
    )


# -- PATCH paths ---------------------------------------------------------------------------


def test_a_filtered_path_whose_filter_attribute_was_dropped_reports_that_attribute() -> None:
    """``replace emails[type eq "work"].value`` answered with the email but without its
    type reports ``emails.type`` dropped (the filter selects nothing any more)."""
    operations = ops(("replace", 'emails[type eq "work"].value', "a@x.org"))
    answered = user(emails=[{"value": "a@x.org"}])
    assert seen(("emails.type", "dropped")) == unkept_by_patch(
        "User", operations, answered, CORE_SCHEMAS
    )


def test_a_filtered_path_kept_shows_nothing() -> None:
    """``replace emails[type eq "work"].value`` answered with that work email (in
    another case, beside a home email) is kept."""
    operations = ops(("replace", 'emails[type eq "work"].value', "a@x.org"))
    kept = user(emails=[{"value": "A@x.org", "type": "work"}, {"value": "h@x.org", "type": "home"}])
    assert [] == unkept_by_patch("User", operations, kept, CORE_SCHEMAS)


def test_a_filtered_path_with_no_values_at_all_is_dropped() -> None:
    """A filtered set answered with no emails at all is the value the filter selects
    dropped (``emails[type eq "work"]``), not every email."""
    operations = ops(("replace", 'emails[type eq "work"].primary', True))
    assert seen(('emails[type eq "work"]', "dropped")) == unkept_by_patch(
        "User", operations, user(), CORE_SCHEMAS
    )


def test_an_add_without_path_is_checked_as_a_body() -> None:
    """``add`` without a path checks each attribute of its value, extensions by URN."""
    operations = ops(("add", None, {"title": "Lead", ENTERPRISE: {"department": "R&D"}}))
    assert seen((f"{ENTERPRISE}:department", "dropped"), ("title", "dropped")) == (
        unkept_by_patch("User", operations, user(), CORE_SCHEMAS)
    )


def test_a_sub_attribute_path_is_checked_alone() -> None:
    """``replace name.givenName`` checks that sub-attribute; the rest of the name is no
    concern."""
    operations = ops(("replace", "name.givenName", "Ann"))
    assert ([], seen(("name.givenName", "dropped"))) == (
        unkept_by_patch("User", operations, user(name={"givenName": "Ann"}), CORE_SCHEMAS),
        unkept_by_patch("User", operations, user(name={"familyName": "Lee"}), CORE_SCHEMAS),
    )


def test_sub_attributes_sent_to_an_attribute_answered_absent_are_each_dropped() -> None:
    """A name sent with only ``givenName`` (by PATCH or in a body) and answered without
    any name is ``name.givenName`` dropped: what was sent, not the whole ``name`` (whose
    other parts the target may keep)."""
    operations = ops(("replace", "name.givenName", "Ann"))
    sent = user(name={"givenName": "Ann"}, **{ENTERPRISE: {"manager": {"value": "m1"}}})
    assert (
        seen(("name.givenName", "dropped")),
        seen(("name.givenName", "dropped"), (f"{ENTERPRISE}:manager.value", "dropped")),
    ) == (
        unkept_by_patch("User", operations, user(), CORE_SCHEMAS),
        unkept_by_resource("User", sent, user(), CORE_SCHEMAS),
    )


def test_paths_are_reported_in_the_schemas_spelling() -> None:
    """Paths written in any case, or qualified with the core URN, are reported as the
    schema spells them, without the core URN."""
    operations = ops(
        ("replace", "NAME.GIVENNAME", "Ann"),
        ("replace", f"{USER_URN}:title", "Lead"),
        ("replace", f"{ENTERPRISE.upper()}:DEPARTMENT", "R&D"),
    )
    assert seen(
        ("name.givenName", "dropped"), ("title", "dropped"), (f"{ENTERPRISE}:department", "dropped")
    ) == unkept_by_patch("User", operations, user(name={"familyName": "Lee"}), CORE_SCHEMAS)


def test_an_unparsable_path_is_left_alone() -> None:
    """An operation whose path does not parse is not checked (the target answered it)."""
    assert [] == unkept_by_patch(
        "User", ops(("replace", "emails[type eq", "x")), user(), CORE_SCHEMAS
    )


def test_dropped_says_more_than_changed() -> None:
    """A path both changed and dropped by one write is reported once, dropped."""
    operations = ops(
        ("replace", 'emails[value eq "a@x.org"].type', "home"),
        ("add", "emails", [{"value": "b@x.org", "type": "work"}]),
    )
    answered = user(emails=[{"value": "a@x.org", "type": "other"}, {"value": "b@x.org"}])
    assert seen(("emails.type", "dropped")) == unkept_by_patch(
        "User", operations, answered, CORE_SCHEMAS
    )


# -- removals ------------------------------------------------------------------------------


def test_a_removal_answered_with_the_value_still_there_is_not_cleared() -> None:
    """``remove title``, ``remove name.givenName`` and ``remove emails[type eq "work"]``
    answered with the values still there are each not cleared."""
    operations = ops(
        ("remove", "title", None),
        ("remove", "name.givenName", None),
        ("remove", 'emails[type eq "work"]', None),
    )
    answered = user(
        title="Lead", name={"givenName": "Ann"}, emails=[{"value": "a@x.org", "type": "work"}]
    )
    assert seen(
        ('emails[type eq "work"]', "not_cleared"),
        ("name.givenName", "not_cleared"),
        ("title", "not_cleared"),
    ) == unkept_by_patch("User", operations, answered, CORE_SCHEMAS)


def test_a_removal_applied_shows_nothing() -> None:
    """The same removals answered without the values are kept; other emails stay."""
    operations = ops(
        ("remove", "title", None),
        ("remove", "name.givenName", None),
        ("remove", 'emails[type eq "work"]', None),
        ("remove", 'emails[type eq "home"].display', None),
    )
    answered = user(name={"familyName": "Lee"}, emails=[{"value": "h@x.org", "type": "home"}])
    assert [] == unkept_by_patch("User", operations, answered, CORE_SCHEMAS)


def test_removing_a_sub_attribute_of_every_value_is_checked_on_every_value() -> None:
    """``remove emails.type`` applied (emails kept, without types) shows nothing; a type
    left on one email is ``emails.type`` not cleared."""
    operations = ops(("remove", "emails.type", None))
    cleared = user(emails=[{"value": "a@x.org"}, {"value": "b@x.org"}])
    left = user(emails=[{"value": "a@x.org"}, {"value": "b@x.org", "type": "home"}])
    assert ([], seen(("emails.type", "not_cleared"))) == (
        unkept_by_patch("User", operations, cleared, CORE_SCHEMAS),
        unkept_by_patch("User", operations, left, CORE_SCHEMAS),
    )


# -- extensions and unknown attributes -----------------------------------------------------


def test_extension_attributes_are_found_by_urn_in_any_case() -> None:
    """Enterprise and other extension attributes are found under their URN, whatever
    its case in the answer, and reported URN-qualified when dropped."""
    sent = User(user_name="ann", enterprise=EnterpriseUser(department="R&D", cost_center="42"))
    answered = from_scim(
        {
            "schemas": [USER_URN, ENTERPRISE],
            "userName": "ann",
            ENTERPRISE.lower(): {"Department": "R&D"},
        },
        User,
    )
    assert seen((f"{ENTERPRISE}:costCenter", "dropped")) == unkept_by_resource(
        "User", sent, answered, CORE_SCHEMAS
    )
    badge = user(**{BADGE: {"number": "B-1", "colour": "blue"}})
    lower = from_scim(
        {"schemas": [USER_URN], "userName": "ann", BADGE.lower(): {"NUMBER": "B-1"}}, User
    )
    assert seen((f"{BADGE}:colour", "dropped")) == unkept_by_resource("User", badge, lower, SCHEMA)


def test_an_extension_the_schema_does_not_know_is_checked_too() -> None:
    """An extension the schema table does not know is still checked attribute by
    attribute, by its URN as sent."""
    sent = user(**{"urn:example:other:1.0:User": {"level": "3", "room": "12"}})
    answered = user(**{"urn:example:other:1.0:User": {"level": "3"}})
    assert seen(("urn:example:other:1.0:User:room", "dropped")) == unkept_by_resource(
        "User", sent, answered, SCHEMA
    )


def test_unknown_attributes_are_checked_case_insensitively() -> None:
    """An attribute no schema knows is checked as sent: kept when answered under any
    case with a value of any case, dropped when missing."""
    sent = user(costCode="ab-1", floor="3")
    answered = user(COSTCODE="AB-1")
    assert seen(("floor", "dropped")) == unkept_by_resource("User", sent, answered, CORE_SCHEMAS)


def test_a_name_no_path_can_spell_is_not_reported() -> None:
    """An unknown attribute whose name is no SCIM attribute name (``cost code``),
    dropped, is not reported (no path could leave it out) and breaks nothing: the rest
    is still checked."""
    sent = user(**{"cost code": "7", "floor": "3"})
    assert seen(("floor", "dropped")) == unkept_by_resource("User", sent, user(), CORE_SCHEMAS)


# -- what is learned stops the loop ----------------------------------------------------------

#: Ways targets do not keep what they are told, on SCIM JSON (each idempotent, as a
#: target's storage is).
LOSSES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "title dropped": lambda d: {k: v for k, v in d.items() if k != "title"},
    "title rewritten": lambda d: {**d, "title": "Staff"} if "title" in d else d,
    "givenName dropped": lambda d: _each_sub(d, "name", lambda n: _without(n, "givenName")),
    "emails.type dropped": lambda d: _each_value(d, "emails", lambda e: _without(e, "type")),
    "emails rewritten": lambda d: _each_value(
        d, "emails", lambda e: {**e, "value": e["value"].upper()}
    ),
    "one email kept": lambda d: {**d, "emails": d["emails"][:1]} if d.get("emails") else d,
    "department dropped": lambda d: _each_sub(d, ENTERPRISE, lambda x: _without(x, "department")),
    "displayName upper-cased": lambda d: (
        {**d, "displayName": d["displayName"].upper()} if "displayName" in d else d
    ),
}
# Not among them: ``active`` dropped. A user's ``active`` is never learned away (a
# leaver would stay active): such a write fails on every cycle instead (see
# test_a_deactivation_the_target_does_not_keep_fails_on_every_cycle).


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def _each_sub(
    data: dict[str, Any], key: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    if key not in data:
        return data
    changed = change(data[key])
    return {**data, key: changed} if changed else _without(data, key)


def _each_value(
    data: dict[str, Any], key: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    return {**data, key: [change(v) for v in data[key]]} if data.get(key) else data


def _stored(resource: User, losses: list[str]) -> User:
    data = to_scim(resource)
    for loss in losses:
        data = LOSSES[loss](data)
    return from_scim(data, User)


def _mapped(user: User) -> User:
    """A user without what these properties leave aside: ``primary: false`` (see
    ``test_a_primary_of_false_dropped_is_not_planned_again``) and one address in two
    roles (dropping their types makes two equal values)."""
    emails = user.emails or ()
    if len({e.value for e in emails}) < len(emails):
        emails = emails[:1]
    emails = tuple(attrs.evolve(e, primary=e.primary or None) for e in emails)
    return attrs.evolve(user, external_id="e1", emails=emails or None)


@settings(max_examples=300, deadline=None)
@given(any_users, any_users, managed_sets, st.lists(st.sampled_from(sorted(LOSSES)), unique=True))
def test_what_is_learned_of_a_lossy_target_stops_the_same_write(
    before: User, wanted: User, managed: tuple[str, ...] | None, losses: list[str]
) -> None:
    """On a target that drops, rewrites or loses values, learning what each update's
    answer did not keep (twice, as cycles would) leaves nothing to write by the third
    plan: the same update is not sent forever."""
    wanted = _mapped(as_mapped(wanted, managed))
    held = _stored(attrs.evolve(_mapped(before), id="1", user_name=wanted.user_name), losses)
    desired = DesiredState(
        users=[DesiredUser(key="e1", user=wanted)], managed_user_attributes=managed
    )
    state = SyncState(users=Ledger(links={"e1": "1"}))
    writes = []
    for _ in range(3):
        made = plan(desired, TargetState(users=[held]), Policy(), state)
        if not made.operations:
            return
        [update] = made.operations
        writes.append([(o.op, o.path, o.value) for o in update.patch])
        held = _stored(apply_patch(held, update.patch), losses)
        found = unkept_by_patch("User", update.patch, held, CORE_SCHEMAS)
        state = state.learn([("User", o.path, o.how) for o in found] * CONFIRMATIONS)
    raise AssertionError(f"still writing after three plans: {writes}")


def test_a_primary_of_false_dropped_is_not_planned_again() -> None:
    """A work email with ``primary: false`` held without the flag (its default, which
    verification accepts as kept) is not planned again: otherwise the same replace goes
    out on every cycle and nothing is ever learned."""
    wanted = user(externalId="e1", emails=[{"value": "a@x.org", "type": "work", "primary": False}])
    held = user(id="1", externalId="e1", emails=[{"value": "a@x.org", "type": "work"}])
    desired = DesiredState(users=[DesiredUser(key="e1", user=wanted)])
    state = SyncState(users=Ledger(links={"e1": "1"}))
    made = plan(desired, TargetState(users=[held]), Policy(), state)
    assert [] == unkept_by_resource("User", wanted, held, CORE_SCHEMAS)
    assert () == made.operations


# -- values a mapping selects by a filter ------------------------------------------------


SCOPED = scopes_of(
    "User",
    (
        'emails[type eq "work"].value',
        'emails[type eq "home"].value',
        'phoneNumbers[type eq "work"].value',
    ),
    CORE_SCHEMAS,
)


def test_a_value_a_mapping_selects_by_a_filter_is_learned_as_that_value() -> None:
    """The mapping writes ``emails[type eq "home"].value`` and ``phoneNumbers[type eq
    "work"].value``: a home email the target does not keep is ``emails[type eq "home"]``
    dropped, a phone number it rewrites ``phoneNumbers[type eq "work"]`` changed, so the
    work email stays compared; a dropped ``type`` is still every value's."""
    sent = user(
        emails=[{"value": "a@x.org", "type": "work"}, {"value": "b@x.org", "type": "home"}],
        phoneNumbers=[{"value": "+1 (555) 010", "type": "work"}],
    )
    answered = user(
        emails=[{"value": "a@x.org", "type": "work"}],
        phoneNumbers=[{"value": "+1555010", "type": "work"}],
    )
    assert seen(
        ('emails[type eq "home"]', "dropped"), ('phoneNumbers[type eq "work"]', "changed")
    ) == unkept_by_resource("User", sent, answered, CORE_SCHEMAS, SCOPED)
    untyped = user(emails=[{"value": "a@x.org"}, {"value": "b@x.org"}])
    assert seen(("emails.type", "dropped"), ("phoneNumbers", "dropped")) == unkept_by_resource(
        "User", sent, untyped, CORE_SCHEMAS, SCOPED
    )


def test_a_filtered_patch_path_not_kept_is_the_value_it_selects() -> None:
    """``add emails [home]`` and ``replace phoneNumbers[type eq "work"].value`` on a
    target that drops the one and rewrites the other: those values, not the attributes."""
    operations = ops(
        ("add", "emails", [{"value": "b@x.org", "type": "home"}]),
        ("replace", 'phoneNumbers[type eq "work"].value', "+1 (555) 011"),
    )
    answered = user(
        emails=[{"value": "a@x.org", "type": "work"}],
        phoneNumbers=[{"value": "+1555011", "type": "work"}],
    )
    assert seen(
        ('emails[type eq "home"]', "dropped"), ('phoneNumbers[type eq "work"]', "changed")
    ) == unkept_by_patch("User", operations, answered, CORE_SCHEMAS, SCOPED)
