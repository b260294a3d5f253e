"""Paths the engine leaves out: ``scimsync.engine._ignore``.

``without_paths`` takes values out of one resource; ``ignoring`` takes ignored paths
out of both sides of a plan and rewrites the managed and kept paths; ``parse_ignored``
spells a path as the schema does. Each rule of the module's documentation is pinned
here, and through :func:`~scimsync.engine.plan` where the planner wires it.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given

from scimsync import Email, EnterpriseUser, Group, Manager, Member, Name, PhoneNumber, User
from scimsync.codec import from_scim
from scimsync.engine import Ledger, Policy, SyncState, plan
from scimsync.engine._ignore import (
    IgnoredPath,
    canonical_path,
    ignoring,
    only_paths,
    parse_ignored,
    without_paths,
)
from scimsync.engine._state import Unkept
from scimsync.errors import InvalidPathError
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState
from scimsync.schema import CORE_SCHEMAS
from strategies import any_users

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager.value"
OTHER = "urn:example:scim:schemas:1.0:Badge"


def paths(*texts: str, resource_type: str = "User") -> list[IgnoredPath]:
    return [parse_ignored(text, resource_type, CORE_SCHEMAS) for text in texts]


def user(**fields: Any) -> User:
    """A user read from SCIM JSON (unknown attributes and extensions kept)."""
    return from_scim({"schemas": [USER_URN], "userName": "ann", **fields}, User)


ANN = User(
    user_name="ann",
    title="Lead",
    name=Name(given_name="Ann", family_name="Lee"),
    emails=(Email(value="a@x.org", type="work"), Email(value="h@x.org", type="home")),
    enterprise=EnterpriseUser(department="R&D", cost_center="42", manager=Manager(value="m1")),
)


# -- parse_ignored -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NAME.givenname", IgnoredPath(None, "name", "givenName")),
        ("Emails.TYPE", IgnoredPath(None, "emails", "type")),
        (f"{USER_URN}:title", IgnoredPath(None, "title", None)),
        (f"{ENTERPRISE.upper()}:COSTCENTER", IgnoredPath(ENTERPRISE, "costCenter", None)),
        (f"{ENTERPRISE}:manager.VALUE", IgnoredPath(ENTERPRISE, "manager", "value")),
        (f"{OTHER}:level", IgnoredPath(OTHER, "level", None)),
        ("costCode.floor", IgnoredPath(None, "costCode", "floor")),
    ],
)
def test_ignored_paths_are_spelled_as_the_schema_spells_them(
    text: str, expected: IgnoredPath
) -> None:
    """Names take the schema's case, the core URN goes, extension URNs take their
    published spelling; what the schema does not know stays as written."""
    assert expected == parse_ignored(text, "User", CORE_SCHEMAS)


def test_an_ignored_path_with_a_value_filter_names_the_values_it_selects() -> None:
    """``EMAILS[type eq "home"]`` (learned of a target that does not keep the home
    email) parses to the values its filter selects, in the schema's spelling, and
    round-trips through its text; a sub-attribute after the filter is kept."""
    path = parse_ignored('EMAILS[type eq "home"]', "User", CORE_SCHEMAS)
    assert (path.attribute, path.sub, str(path.value_filter)) == ("emails", None, 'type eq "home"')
    assert path.text == 'emails[type eq "home"]'
    assert parse_ignored(path.text, "User", CORE_SCHEMAS) == path
    assert parse_ignored('emails[type eq "work"].DISPLAY', "User", CORE_SCHEMAS).text == (
        'emails[type eq "work"].display'
    )
    with pytest.raises(InvalidPathError):
        parse_ignored('emails[type eq "work"', "User", CORE_SCHEMAS)


def test_canonical_path_and_text_write_scim_paths() -> None:
    """``canonical_path`` and ``IgnoredPath.text`` give the path as SCIM writes it."""
    assert ("name.givenName", f"{ENTERPRISE}:manager.value") == (
        canonical_path("name.GIVENNAME", "User", CORE_SCHEMAS),
        IgnoredPath(ENTERPRISE, "manager", "value").text,
    )


def test_a_path_covers_itself_and_what_it_holds() -> None:
    """``name`` covers ``name`` and ``name.givenName``; ``name.givenName`` covers only
    itself; a URN tells extensions from the core, in any case."""
    name, given = IgnoredPath(None, "name", None), IgnoredPath(None, "name", "givenName")
    department = IgnoredPath(ENTERPRISE, "department", None)
    assert (True, True, True, False, False, True, False) == (
        name.covers(None, "NAME", None),
        name.covers(None, "name", "familyName"),
        given.covers(None, "name", "GIVENNAME"),
        given.covers(None, "name", None),
        given.covers(None, "name", "familyName"),
        department.covers(ENTERPRISE.lower(), "Department", None),
        department.covers(None, "department", None),
    )


# -- without_paths -------------------------------------------------------------------------


def test_core_attributes_are_taken_out() -> None:
    """A core attribute named is unset; the rest stays."""
    assert attrs.evolve(ANN, title=None) == without_paths(ANN, paths("title"))


def test_a_sub_attribute_of_a_singular_complex_attribute_is_taken_out() -> None:
    """``name.givenName`` unsets that part of the name only."""
    assert Name(family_name="Lee") == without_paths(ANN, paths("name.givenName")).name


def test_a_sub_attribute_of_a_multi_valued_attribute_is_taken_out_of_every_value() -> None:
    """``emails.type`` unsets the type of each email, keeping the emails."""
    assert (Email(value="a@x.org"), Email(value="h@x.org")) == (
        without_paths(ANN, paths("emails.type")).emails
    )


def test_a_whole_attribute_goes_whatever_its_sub_attributes_say() -> None:
    """``name`` with ``name.givenName`` (in either order) unsets the whole name."""
    assert (None, None) == (
        without_paths(ANN, paths("name", "name.givenName")).name,
        without_paths(ANN, paths("name.givenName", "name")).name,
    )


def test_enterprise_extension_attributes_are_taken_out() -> None:
    """URN-qualified enterprise attributes and sub-attributes are taken out of the
    enterprise extension, the rest of it kept (a manager left with nothing goes)."""
    stripped = without_paths(ANN, paths(f"{ENTERPRISE}:department", MANAGER))
    assert EnterpriseUser(cost_center="42") == stripped.enterprise


def test_other_extensions_are_taken_out_of_their_objects() -> None:
    """An extension held as a plain object loses the attributes and sub-attributes
    named, its URN and names matched in any case."""
    badge = user(**{OTHER: {"level": "3", "Room": {"floor": "2", "desk": "9"}, "pin": "1"}})
    stripped = without_paths(badge, paths(f"{OTHER.upper()}:LEVEL", f"{OTHER}:room.FLOOR"))
    assert {OTHER: {"Room": {"desk": "9"}, "pin": "1"}} == dict(stripped.extensions)


def test_unknown_attributes_are_taken_out_of_extra() -> None:
    """Attributes no model field holds (``extra``), and their sub-attributes, go too;
    so do unknown sub-attributes of a known complex attribute (a ``name`` left with
    nothing goes)."""
    odd = user(costCode="7", office={"floor": "2", "desk": "9"}, name={"pronunciation": "an"})
    stripped = without_paths(odd, paths("COSTCODE", "office.floor", "name.pronunciation"))
    assert ({"office": {"desk": "9"}}, None) == (dict(stripped.extra), stripped.name)


def test_group_attributes_are_taken_out() -> None:
    """Groups lose their attributes the same way; members stay."""
    eng = Group(display_name="Eng", external_id="g1", members=(Member(value="u1"),))
    ignored = paths("externalId", resource_type="Group")
    assert attrs.evolve(eng, external_id=None) == without_paths(eng, ignored)


@pytest.mark.parametrize(
    "names",
    [
        ("nickName",),
        ("addresses.type",),
        ("name.middleName",),
        (f"{ENTERPRISE}:division",),
        (f"{OTHER}:level",),
        ("costCode",),
    ],
)
def test_the_same_object_comes_back_when_it_holds_nothing_named(names: tuple[str, ...]) -> None:
    """Paths the resource holds no value at give back the very same object."""
    assert ANN is without_paths(ANN, paths(*names))


@given(any_users)
def test_nothing_to_take_out_is_the_same_object(sent: User) -> None:
    """``without_paths(x, [])`` is ``x``, for any user."""
    assert sent is without_paths(sent, [])


@given(any_users)
def test_taking_out_twice_is_taking_out_once(sent: User) -> None:
    """Taking paths out of what already lacks them changes nothing more."""
    ignored = paths("title", "emails.type", "name.givenName", f"{ENTERPRISE}:department")
    once = without_paths(sent, ignored)
    assert once is without_paths(once, ignored)


# -- ignoring ------------------------------------------------------------------------------


def _desired(*users: DesiredUser, **options: Any) -> DesiredState:
    return DesiredState(users=users, **options)


def test_nothing_to_ignore_gives_back_the_inputs() -> None:
    """With no ignored and no uncleared path, ``ignoring`` returns its inputs themselves."""
    desired = _desired(DesiredUser(key="e1", user=ANN), managed_user_attributes=["title"])
    actual = TargetState(users=[attrs.evolve(ANN, id="1")])
    result = ignoring(desired, actual, schema=CORE_SCHEMAS)
    assert desired is result[0]
    assert actual is result[1]


def test_ignored_paths_leave_both_sides() -> None:
    """An ignored path leaves every desired user, its create-only values, every listed
    account, and groups likewise."""
    desired = DesiredState(
        users=[
            DesiredUser(
                key="e1",
                user=attrs.evolve(ANN, external_id="e1"),
                create_only=User(title="Intern", nick_name="annie"),
            )
        ],
        groups=[DesiredGroup(key="g1", group=Group(display_name="Eng", external_id="g1"))],
    )
    actual = TargetState(
        users=[attrs.evolve(ANN, id="1", title="Guide")],
        groups=[Group(id="G", display_name="Eng", external_id="g1")],
    )
    new_desired, new_actual = ignoring(
        desired,
        actual,
        schema=CORE_SCHEMAS,
        user_ignored=["title"],
        group_ignored=["externalId"],
    )
    assert (None, None, "annie", None, None, None) == (
        new_desired.users[0].user.title,
        new_desired.users[0].create_only.title,  # type: ignore[union-attr]
        new_desired.users[0].create_only.nick_name,  # type: ignore[union-attr]
        new_actual.users[0].title,
        new_desired.groups[0].group.external_id,
        new_actual.groups[0].external_id,
    )


def test_managed_paths_under_an_ignored_path_are_no_longer_managed() -> None:
    """Managed and kept paths at or under an ignored path go; the others stay."""
    desired = _desired(
        managed_user_attributes=["userName", "name.givenName", "name.familyName", "title"],
        kept_user_attributes=[f"{ENTERPRISE}:department", "nickName"],
    )
    new, _ = ignoring(
        desired,
        TargetState(),
        schema=CORE_SCHEMAS,
        user_ignored=["NAME", f"{ENTERPRISE}:department"],
    )
    assert (("title", "userName"), ("nickName",)) == (
        new.managed_user_attributes,
        new.kept_user_attributes,
    )


def test_a_filter_on_an_ignored_sub_attribute_names_the_whole_attribute() -> None:
    """With ``emails.type`` ignored, ``emails[type eq "work"].value`` becomes
    ``emails.value`` (managed or kept): the values cannot be told apart any more."""
    desired = _desired(
        managed_user_attributes=['emails[type eq "work"].value', "userName"],
        kept_user_attributes=['emails[type eq "work"].display'],
    )
    new, _ = ignoring(desired, TargetState(), schema=CORE_SCHEMAS, user_ignored=["emails.type"])
    assert (("emails.value", "userName"), ("emails.display",)) == (
        new.managed_user_attributes,
        new.kept_user_attributes,
    )


def test_a_filter_on_a_kept_sub_attribute_stays() -> None:
    """``emails[type eq "work"].value`` stays when only ``emails.display`` is ignored."""
    desired = _desired(managed_user_attributes=['emails[type eq "work"].value'])
    new, _ = ignoring(desired, TargetState(), schema=CORE_SCHEMAS, user_ignored=["emails.display"])
    assert ('emails[type eq "work"].value',) == new.managed_user_attributes


def test_paths_never_cleared_move_from_managed_to_kept() -> None:
    """A path the target does not clear stays written but is no longer cleared: it
    moves from the managed paths to the kept ones (a filtered one too)."""
    desired = _desired(
        managed_user_attributes=["title", "userName", 'emails[type eq "work"].value'],
        kept_user_attributes=["nickName"],
    )
    new, _ = ignoring(
        desired, TargetState(), schema=CORE_SCHEMAS, user_uncleared=["TITLE", "emails"]
    )
    assert (("userName",), ('emails[type eq "work"].value', "nickName", "title")) == (
        new.managed_user_attributes,
        tuple(sorted(new.kept_user_attributes)),
    )


def test_with_nothing_managed_the_kept_paths_are_still_rewritten() -> None:
    """``managed=None`` stays None; kept paths lose the ignored ones."""
    desired = _desired(kept_user_attributes=["title", "nickName"])
    new, _ = ignoring(desired, TargetState(), schema=CORE_SCHEMAS, user_ignored=["title"])
    assert (None, ("nickName",)) == (new.managed_user_attributes, new.kept_user_attributes)


def test_references_at_ignored_paths_are_dropped() -> None:
    """A manager reference is dropped when the manager (or its value) is ignored, and
    kept when something else is."""
    record = DesiredUser(key="e1", user=User(user_name="ann"), references={MANAGER: "e2"})
    desired = _desired(record)
    dropped = [
        ignoring(desired, TargetState(), schema=CORE_SCHEMAS, user_ignored=[ignored])[0]
        .users[0]
        .references
        for ignored in (f"{ENTERPRISE}:manager", MANAGER.upper(), "title")
    ]
    assert [(), (), ((MANAGER, "e2"),)] == dropped


def test_a_desired_user_with_nothing_ignored_is_the_same_record() -> None:
    """Records and accounts holding no ignored value are passed on as they are."""
    record = DesiredUser(key="e1", user=User(user_name="ann"))
    account = User(id="1", user_name="ann")
    new_desired, new_actual = ignoring(
        _desired(record), TargetState(users=[account]), schema=CORE_SCHEMAS, user_ignored=["title"]
    )
    assert record is new_desired.users[0]
    assert account is new_actual.users[0]


# -- through plan ----------------------------------------------------------------------------

LINKED = SyncState(users=Ledger(links={"e1": "1"}))


def _plan(
    wanted: User,
    held: User,
    *,
    policy: Policy | None = None,
    state: SyncState = LINKED,
    managed: tuple[str, ...] | None = None,
) -> list[tuple[str, str | None, Any]]:
    desired = _desired(
        DesiredUser(key="e1", user=attrs.evolve(wanted, external_id="e1")),
        managed_user_attributes=managed,
    )
    actual = TargetState(users=[attrs.evolve(held, id="1", external_id="e1")])
    made = plan(desired, actual, policy or Policy(), state)
    return [(o.op, o.path, o.value) for op in made.operations for o in op.patch]


def _learned(**unkept: str) -> SyncState:
    return SyncState(
        users=Ledger(
            links={"e1": "1"},
            unkept={path: Unkept(how=how, seen=2) for path, how in unkept.items()},  # type: ignore[arg-type]
        )
    )


def test_an_ignored_path_is_neither_compared_nor_written() -> None:
    """A title the policy ignores is not updated, and a confirmed dropped one neither;
    the rest of the user still is."""
    wanted = User(user_name="ann", title="Lead", nick_name="annie")
    held = User(user_name="ann", title="Guide")
    expected = [("replace", "nickName", "annie")]
    assert (expected, expected) == (
        _plan(wanted, held, policy=Policy(ignore_paths=["title"])),
        _plan(wanted, held, state=_learned(title="dropped")),
    )


def test_a_path_seen_once_is_still_compared() -> None:
    """A path seen not kept once (not confirmed) is still written."""
    state = SyncState(users=Ledger(links={"e1": "1"}, unkept={"title": Unkept(how="dropped")}))
    assert [("replace", "title", "Lead")] == _plan(
        User(user_name="ann", title="Lead"), User(user_name="ann"), state=state
    )


def test_a_path_never_cleared_is_set_but_not_cleared() -> None:
    """A managed title the target does not clear is not removed when the source has
    none, and still set when it has one."""
    state = _learned(title="not_cleared")
    managed = ("title", "userName", "externalId")
    assert ([], [("replace", "title", "Lead")]) == (
        _plan(
            User(user_name="ann"),
            User(user_name="ann", title="Guide"),
            state=state,
            managed=managed,
        ),
        _plan(
            User(user_name="ann", title="Lead"),
            User(user_name="ann", title="Guide"),
            state=state,
            managed=managed,
        ),
    )


def test_emails_without_types_are_compared_whole() -> None:
    """On a target that drops ``emails.type``, the work email a mapping writes matches
    the email held without a type: nothing to write."""
    wanted = User(user_name="ann", emails=(Email(value="a@x.org", type="work"),))
    held = User(user_name="ann", emails=(Email(value="a@x.org"),))
    managed = ('emails[type eq "work"].value', "userName", "externalId")
    assert [] == _plan(wanted, held, state=_learned(**{"emails.type": "dropped"}), managed=managed)


def test_a_value_the_target_changes_is_still_sent_on_create() -> None:
    """A confirmed "changed" path (phone numbers the target normalises) is not compared
    on the linked account, but a user created gets it (as a create-only value)."""
    phone = [PhoneNumber(value="+1 (555) 1234", type="work")]
    linked = User(
        id="1",
        external_id="e1",
        user_name="a",
        phone_numbers=[PhoneNumber(value="+15551234", type="work")],
    )
    desired = DesiredState(
        users=[
            DesiredUser(key="e1", user=User(external_id="e1", user_name="a", phone_numbers=phone)),
            DesiredUser(key="e2", user=User(external_id="e2", user_name="b", phone_numbers=phone)),
        ]
    )
    state = SyncState(
        users=Ledger(links={"e1": "1"}, unkept={"phoneNumbers": Unkept(how="changed", seen=2)})
    )
    made = plan(desired, TargetState(users=[linked]), Policy(), state)
    (create,) = made.operations
    assert ("create", "e2") == (create.kind, create.source_key)
    assert isinstance(create.body, User)
    assert phone == list(create.body.phone_numbers or ())


def test_only_paths_keeps_attributes_and_sub_attributes_of_singular_ones() -> None:
    """``only_paths`` holds the values at the paths given: a whole attribute, a
    sub-attribute of ``name``, an extension attribute; None when there are none."""
    user = User(
        user_name="a",
        title="Lead",
        name=Name(given_name="Ann", family_name="Smith"),
        enterprise=EnterpriseUser(department="Ops", cost_center="42"),
    )
    paths = [
        parse_ignored(text, "User", CORE_SCHEMAS)
        for text in ("title", "name.givenName", f"{ENTERPRISE}:department")
    ]
    assert User(
        title="Lead",
        name=Name(given_name="Ann"),
        enterprise=EnterpriseUser(department="Ops"),
    ) == only_paths(user, paths)
    assert None is only_paths(User(user_name="a"), paths)


def test_a_complex_value_left_empty_is_left_out() -> None:
    """Taking out every part of ``name``, of the enterprise extension or of another
    extension leaves none of them behind as an empty object (a create would send
    ``"name": {}``)."""
    user = User(
        user_name="a",
        name=Name(given_name="Ann"),
        enterprise=EnterpriseUser(department="Ops"),
        extensions={"urn:example:2.0:Badge": {"level": "2"}},
    )
    paths = [
        parse_ignored(text, "User", CORE_SCHEMAS)
        for text in ("name.givenName", f"{ENTERPRISE}:department", "urn:example:2.0:Badge:level")
    ]
    assert User(user_name="a") == without_paths(user, paths)


# -- values a filter selects ------------------------------------------------------------------


def _emails_user(*emails: tuple[str, str]) -> User:
    return User(
        user_name="ann",
        external_id="e1",
        emails=tuple(Email(value=v, type=t) for t, v in emails) or None,
    )


def test_a_filtered_ignored_path_takes_out_only_the_values_it_selects() -> None:
    """Ignoring ``emails[type eq "home"]`` leaves the home email out of both sides and out
    of the managed paths; the work email stays compared and managed."""
    desired = DesiredState(
        users=[
            DesiredUser(
                key="e1",
                user=_emails_user(("work", "new@x.org"), ("home", "ann@home.org")),
            )
        ],
        managed_user_attributes=[
            "userName",
            'emails[type eq "work"].value',
            'emails[type eq "home"].value',
        ],
    )
    actual = TargetState(
        users=[
            attrs.evolve(_emails_user(("work", "old@x.org"), ("home", "other@home.org")), id="1")
        ]
    )
    new_desired, new_actual = ignoring(
        desired, actual, schema=CORE_SCHEMAS, user_ignored=['emails[type eq "home"]']
    )
    assert [("work", "new@x.org")] == [
        (e.type, e.value) for e in new_desired.users[0].user.emails or ()
    ]
    assert [("work", "old@x.org")] == [(e.type, e.value) for e in new_actual.users[0].emails or ()]
    assert ('emails[type eq "work"].value', "userName") == new_desired.managed_user_attributes
    # Only home emails: nothing left of the attribute on either side.
    only_home = _emails_user(("home", "ann@home.org"))
    assert (
        without_paths(
            only_home, [parse_ignored('emails[type eq "home"]', "User", CORE_SCHEMAS)]
        ).emails
        is None
    )


def test_a_filtered_path_the_target_changes_is_sent_whole_on_create() -> None:
    """A home email the target changes is not compared, but a created user gets it, with
    the work email: the create-only list is the whole list the create sends."""
    desired = DesiredState(
        users=[
            DesiredUser(
                key="e1",
                user=_emails_user(("work", "ann@x.org"), ("home", "ann@home.org")),
            )
        ],
        managed_user_attributes=[
            "userName",
            'emails[type eq "work"].value',
            'emails[type eq "home"].value',
        ],
    )
    new_desired, _ = ignoring(
        desired,
        TargetState(),
        schema=CORE_SCHEMAS,
        user_ignored=['emails[type eq "home"]'],
        user_sent_on_create=['emails[type eq "home"]'],
    )
    record = new_desired.users[0]
    assert record.create_only is not None
    assert [("work", "ann@x.org")] == [(e.type, e.value) for e in record.user.emails or ()]
    assert [("work", "ann@x.org"), ("home", "ann@home.org")] == [
        (e.type, e.value) for e in record.create_only.emails or ()
    ]
