"""The Plan value, the sync state and what they promise: exact JSON round-trips, a
readable review that never shows a secret, placeholder substitution, state updates."""

from __future__ import annotations

import json
from datetime import timedelta

import attrs
import pytest

from scimsync import Group, Member, PatchOperation, User
from scimsync.engine import (
    Ledger,
    Link,
    Operation,
    Placeholder,
    Plan,
    PlannedChange,
    Policy,
    Skip,
    SyncState,
    plan,
)
from scimsync.engine._state import Unkept
from scimsync.engine._values import _plain_slots, new_link
from scimsync.errors import PlanError
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState
from strategies import NOW

SECRET = "correct horse battery staple"


def _busy_plan(**policy: object) -> Plan:
    """A plan with a bit of everything: creates with a secret, updates, members, conflicts,
    skips, a deactivation held by a guard."""
    desired = DesiredState(
        users=[
            DesiredUser(
                key="e1",
                user=User(external_id="e1", user_name="ann@example.com", title="Lead"),
                create_only=User(password=SECRET),
            ),
            DesiredUser(
                key="e2", user=User(external_id="e2", user_name="bob@example.com", title="Dev")
            ),
            DesiredUser(key="e3", user=User(external_id="e3", user_name="cy@example.com")),
            DesiredUser(key="e4", user=User(external_id="e4", user_name="CY@example.com")),
        ],
        groups=[
            DesiredGroup(
                key="g1",
                group=Group(external_id="g1", display_name="Eng"),
                member_keys=["e1", "e2", "ghost"],
            )
        ],
    )
    actual = TargetState(
        users=[
            User(id="a2", external_id="e2", user_name="bob@example.com", title="Intern"),
            User(id="a9", external_id="e9", user_name="dee@example.com", active=True),
            User(id="a8", external_id="e8", user_name="eve@example.com", active=True),
        ],
        groups=[Group(id="g", external_id="g1", display_name="Eng", members=[Member(value="a9")])],
    )
    state = SyncState(users=Ledger(links={"e9": "a9", "e8": "a8"}, last_source_count=4))
    return plan(desired, actual, Policy(max_deprovisions=1, **policy), state, NOW)  # type: ignore[arg-type]


def test_a_plan_round_trips_through_json_exactly() -> None:
    """``Plan.from_json(p.to_json()) == p``, and the bytes are stable."""
    for method in ("patch", "put"):
        original = _busy_plan(update_method=method)
        assert tuple(
            bool(part)
            for part in (original.conflicts, original.held, original.skipped, original.links)
        ) == (True, True, True, True)
        text = original.to_json()
        assert original == Plan.from_json(text)
        assert text == Plan.from_json(text).to_json()


def test_the_json_is_compact_with_sorted_keys() -> None:
    """One canonical text per plan: sorted keys, no whitespace, Unicode kept."""
    text = _busy_plan().to_json()
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert data["format"] == "scimsync-plan/1"
    assert data["now"] == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"format": "something else"}',
        '{"format": "scimsync-plan/1"}',
        '{"format": "scimsync-plan/1", "now": "yesterday", "operations": [], "held": [],'
        ' "guards": [], "conflicts": [], "skipped": [], "links": [], "sourceCounts": {}}',
        '{"format": "scimsync-plan/1", "now": null, "operations": [{"kind": 1}], "held": [],'
        ' "guards": [], "conflicts": [], "skipped": [], "links": [], "sourceCounts": {}}',
    ],
)
def test_reading_something_that_is_not_a_plan_is_a_plan_error(text: str) -> None:
    """Garbage in is a PlanError naming the problem, never a KeyError or TypeError."""
    with pytest.raises(PlanError):
        Plan.from_json(text)


def test_summary_counts_operations_by_kind() -> None:
    """summary() counts what will be applied, then held operations and conflicts."""
    assert _busy_plan().summary() == {
        "create": 1,
        "update": 1,
        "add_members": 1,
        "held": 3,
        "conflicts": 1,
    }


def test_render_reads_like_a_terraform_plan_and_never_shows_a_secret() -> None:
    """+ create, ~ update with old → new, - deactivate; passwords are masked."""
    text = _busy_plan().render()
    assert SECRET not in text
    assert "      password   = (sensitive)" in text
    assert '  + create User "e1"  # not on the target' in text
    assert '  ~ update User "e2" (id a2)  # title changed' in text
    assert '      title : "Intern" → "Dev"' in text
    assert '      + member "e1"' in text
    assert '  - deactivate User "e8" (id a8)  # not in source' in text
    assert "! guard max_deprovisions held 3 operations: 2 users to deprovision" in text
    assert '! duplicate_key_value User "e3", "e4": 2 source records share one userName' in text
    assert text.startswith(
        "Plan: 1 to create, 1 to update, 1 to add members (3 held, 1 conflict, 1 skipped)."
    )


def test_render_masks_paths_the_policy_calls_sensitive() -> None:
    """sensitive_paths adds attributes to mask in the review."""
    text = _busy_plan(sensitive_paths=["title"]).render()
    assert '"Lead"' not in text
    assert "title      = (sensitive)" in text


def test_render_can_colour_symbols() -> None:
    """With color=True, the symbol lines carry ANSI colours."""
    assert "\x1b[32m  + create User" in _busy_plan().render(color=True)


def test_an_empty_plan_says_no_changes() -> None:
    """Nothing to do reads as such."""
    assert Plan().render() == "Plan: no changes.\n"
    assert (Plan().is_empty, Plan().blocked) == (True, False)


def test_resolve_substitutes_placeholders_everywhere() -> None:
    """target ids, member lists, PATCH values, PUT bodies and links get the real ids."""
    user = str(Placeholder(resource_type="User", key="e1"))
    group = str(Placeholder(resource_type="Group", key="g1"))
    original = Plan(
        operations=[
            Operation(
                kind="add_members",
                resource_type="Group",
                target_id=group,
                members=[user, "a2"],
                patch=[PatchOperation(op="add", path="members", value=[{"value": user}])],
            ),
            Operation(
                kind="update",
                resource_type="Group",
                target_id="g",
                body=Group(display_name="x", members=[Member(value=user)]),
            ),
        ],
        links=[Link(resource_type="User", source_key="e1", target_id=user, matched_by="create")],
    )
    resolved = original.resolve({user: "a1", group: "g1id"})
    first, second = resolved.operations
    assert (first.target_id, first.members) == ("g1id", ("a1", "a2"))
    assert first.patch[0].value == [{"value": "a1"}]
    assert second.body == Group(display_name="x", members=[Member(value="a1")])
    assert resolved.links[0].target_id == "a1"
    assert first.resolve({user: "a1", group: "g1id"}).placeholders == ()


def test_placeholder_string_form_parses_back() -> None:
    """A placeholder's string names its resource type and source key; real ids are not one."""
    placeholder = Placeholder(resource_type="User", key="k:with:colons")
    assert placeholder == Placeholder.parse(str(placeholder))
    assert Placeholder.parse("2819c223-7f76") is None


def test_operation_method_follows_its_kind_and_body() -> None:
    """POST for creates, DELETE for deletes, PUT when a body is carried, PATCH otherwise."""
    assert [
        Operation(kind="create", resource_type="User", target_id="p", body=User()).method,
        Operation(kind="delete", resource_type="User", target_id="a").method,
        Operation(kind="update", resource_type="User", target_id="a", body=User()).method,
        Operation(kind="update", resource_type="User", target_id="a").method,
    ] == ["POST", "DELETE", "PUT", "PATCH"]


def test_changes_and_patch_values_are_kept_as_json() -> None:
    """Models and tuples given to a change or PATCH value become JSON data (exact round-trips)."""
    change = PlannedChange(path="members", new=(Member(value="a"),))
    op = Operation(
        kind="update",
        resource_type="Group",
        target_id="g",
        patch=[PatchOperation(op="add", path="members", value=(Member(value="a"),))],
    )
    assert change.new == [{"value": "a"}]
    assert op.patch[0].value == [{"value": "a"}]


# -- the state ---------------------------------------------------------------------------------


def test_the_state_round_trips_through_plain_json() -> None:
    """to_dict gives JSON data a store can keep; from_dict reads it back equal."""
    state = SyncState(
        users=Ledger(
            links={"e1": "a1"},
            owned=["a7"],
            last_source_count=12,
            deactivated_at={"a7": NOW - timedelta(days=3)},
        ),
        groups=Ledger(links={"g1": "g"}),
    )
    data = json.loads(json.dumps(state.to_dict()))
    assert state == SyncState.from_dict(data)
    assert data["users"]["owned"] == ["a1", "a7"]


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"format": 2},
        {"format": 1, "users": {"links": {"e1": 3}}},
        {"format": 1, "users": {"owned": "a1"}},
        {"format": 1, "users": {"lastSourceCount": -1}},
        {"format": 1, "users": {"deactivatedAt": {"a1": "2026-01-01T00:00:00"}}},
    ],
)
def test_a_corrupt_state_is_a_plan_error(data: object) -> None:
    """A state store holding garbage stops the cycle with a clear error (naive times too)."""
    with pytest.raises(PlanError, match=r"invalid sync state"):
        SyncState.from_dict(data)


def test_state_after_a_plan_records_links_deactivations_and_deletions() -> None:
    """Creates link to their new ids, deactivations are dated, deletions forget the account."""
    desired = DesiredState(
        users=[
            DesiredUser(key="e1", user=User(external_id="e1", user_name="ann@example.com")),
            DesiredUser(key="e2", user=User(external_id="e2", user_name="bob@example.com")),
            DesiredUser(
                key="e3", user=User(external_id="e3", user_name="cy@example.com", active=True)
            ),
        ]
    )
    actual = TargetState(
        users=[
            User(id="a3", external_id="e3", user_name="cy@example.com", active=False),
            User(id="a8", user_name="old@example.com", active=True),
            User(id="a9", user_name="older@example.com", active=False),
        ]
    )
    state = SyncState(
        users=Ledger(
            links={"e8": "a8", "e9": "a9", "e3": "a3"},
            deactivated_at={"a9": NOW - timedelta(days=40), "a3": NOW - timedelta(days=1)},
            last_source_count=3,
        )
    )
    policy = Policy(
        deprovision="delete",
        delete_after_days=30,
        max_deprovisions=None,
        max_deprovisions_percent=None,
    )
    result = plan(desired, actual, policy, state, NOW)
    assert [op.kind for op in result.operations] == [
        "create",
        "create",
        "reactivate",
        "deactivate",
        "delete",
    ]
    e1 = str(Placeholder(resource_type="User", key="e1"))
    e2 = str(Placeholder(resource_type="User", key="e2"))
    failed_create = next(op for op in result.operations if op.target_id == e2)
    after = state.after(result, {e1: "a1"}, failed=[failed_create])
    assert dict(after.users.links) == {"e1": "a1", "e3": "a3", "e8": "a8"}
    assert dict(after.users.deactivated_at) == {"a8": NOW}
    assert frozenset({"a1", "a3", "a8"}) == after.users.owned
    assert after.users.last_source_count == 3


def test_state_after_a_failed_deactivation_records_no_time() -> None:
    """An operation that failed leaves no trace in the next state."""
    actual = TargetState(users=[User(id="a8", user_name="old@example.com", active=True)])
    desired = DesiredState(
        users=[DesiredUser(key="x", user=User(external_id="x", user_name="x@example.com"))]
    )
    state = SyncState(users=Ledger(links={"e8": "a8"}))
    result = plan(desired, actual, Policy(max_deprovisions_percent=None), state, NOW)
    deactivate = result.operations[-1]
    assert deactivate.kind == "deactivate"
    assert dict(state.after(result, failed=[deactivate]).users.deactivated_at) == {}


def test_skip_and_link_values_compare_by_value() -> None:
    """Plan parts are plain values: equal when their fields are."""
    assert Skip(resource_type="User", reason="r") == Skip(resource_type="User", reason="r")
    assert attrs.evolve(
        Link(resource_type="User", source_key="k", target_id="t", matched_by="create"), adopted=True
    ).adopted


@pytest.mark.parametrize("adopted", [False, True])
def test_links_made_in_bulk_are_the_links_the_constructor_makes(adopted: bool) -> None:
    """A first cycle makes its links without ``Link.__init__``: same value, hash, repr."""
    fields = {"resource_type": "User", "source_key": "k", "target_id": "t", "matched_by": "id"}
    made, built = new_link(**fields, adopted=adopted), Link(**fields, adopted=adopted)
    assert (made, hash(made), repr(made)) == (built, hash(built), repr(built))
    assert attrs.asdict(made) == attrs.asdict(built)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.target_id = "other"  # type: ignore[misc]


def test_the_bulk_link_maker_refuses_classes_it_would_build_wrong() -> None:
    """A validator, converter, init hook or cached hash would be bypassed: refused."""

    @attrs.frozen
    class Plain:
        a: str

    @attrs.frozen
    class Validated:
        a: str = attrs.field(validator=attrs.validators.instance_of(str))

    @attrs.frozen
    class Hooked:
        a: str

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen(cache_hash=True)
    class Cached:
        a: str

    assert _plain_slots(Plain, ("a",))
    assert not _plain_slots(Plain, ("a", "b"))
    for cls in (Validated, Hooked, Cached):
        assert not _plain_slots(cls, ("a",)), cls


# -- what the plan leaves out on this target ---------------------------------------------------


def _learned_plan(
    policy: Policy, unkept: dict[str, Unkept], group_unkept: dict[str, Unkept]
) -> Plan:
    desired = DesiredState(
        users=[DesiredUser(key="e1", user=User(external_id="e1", user_name="ann", title="Lead"))]
    )
    state = SyncState(users=Ledger(unkept=unkept), groups=Ledger(unkept=group_unkept))
    return plan(desired, TargetState(), policy, state, NOW)


def test_not_compared_lists_ignored_and_confirmed_paths_with_why() -> None:
    """``Plan.not_compared`` names the policy's ignored paths and the confirmed paths the
    target does not keep, per resource type, saying why; one seen once is not there."""
    made = _learned_plan(
        Policy(ignore_paths=["nickName"], group_ignore_paths=["externalId"]),
        {
            "title": Unkept(how="dropped", seen=2),
            "emails.type": Unkept(how="changed", seen=3),
            "name.givenName": Unkept(how="not_cleared", seen=2),
            "locale": Unkept(how="dropped"),
        },
        {"externalId": Unkept(how="dropped", seen=2)},
    )
    assert (
        "User nickName: Policy.ignore_paths",
        "User emails.type: the target changes it: sent on create only",
        "User name.givenName: the target does not clear it: never cleared",
        "User title: the target drops it",
        "Group externalId: Policy.group_ignore_paths",
        "Group externalId: the target drops it",
    ) == made.not_compared


def test_nothing_left_out_says_nothing() -> None:
    """With nothing ignored and nothing confirmed, ``not_compared`` is empty."""
    assert () == _learned_plan(Policy(), {"title": Unkept(how="dropped")}, {}).not_compared


def test_not_compared_and_target_notes_round_trip_and_are_rendered() -> None:
    """``not_compared`` and ``target_notes`` survive JSON exactly and end the review,
    each under its heading."""
    made = attrs.evolve(
        _learned_plan(Policy(ignore_paths=["title"]), {}, {}),
        target_notes=["the target refuses PATCH on Groups: they are written with PUT"],
    )
    text = made.to_json()
    data = json.loads(text)
    assert (made, ["User title: Policy.ignore_paths"]) == (
        Plan.from_json(text),
        data["notCompared"],
    )
    assert made.render().endswith(
        "\nNot compared on this target:\n"
        "  User title: Policy.ignore_paths\n"
        "\nAbout this target:\n"
        "  the target refuses PATCH on Groups: they are written with PUT\n"
    )


def test_a_plan_without_them_reads_back_without_them() -> None:
    """JSON written before ``notCompared`` and ``targetNotes`` existed reads as empty."""
    data = json.loads(Plan().to_json())
    del data["notCompared"], data["targetNotes"]
    assert Plan() == Plan.from_dict(data)


def _leaver_plan(policy: Policy) -> Plan:
    desired = DesiredState(
        users=[DesiredUser(key="e2", user=User(external_id="e2", user_name="bob"))]
    )
    actual = TargetState(users=[User(id="a1", external_id="e1", user_name="ann", active=True)])
    state = SyncState(users=Ledger(links={"e1": "a1"}, last_source_count=1))
    return plan(desired, actual, policy, state, NOW)


def test_a_target_that_does_not_keep_active_deactivates_no_one() -> None:
    """With ``active`` ignored, a leaver is not deactivated (it would be planned every
    cycle) but skipped, saying why; ``deprovision="delete"`` still deletes."""
    loose = {"max_deprovisions_percent": None, "max_source_shrink": None}
    skipping = _leaver_plan(Policy(ignore_paths=["active"], **loose))  # type: ignore[arg-type]
    deleting = _leaver_plan(
        Policy(ignore_paths=["active"], deprovision="delete", **loose)  # type: ignore[arg-type]
    )
    assert (["create"], ["a1"], ["create", "delete"]) == (
        [op.kind for op in skipping.operations],
        [s.target_id for s in skipping.skipped if "does not keep active" in s.reason],
        [op.kind for op in deleting.operations],
    )


def test_active_ignored_in_any_spelling_deactivates_no_one() -> None:
    """``active`` named with the core schema URN is ``active``: the leaver is skipped,
    not deactivated on every cycle (its ``active`` is never seen false)."""
    loose = {"max_deprovisions_percent": None, "max_source_shrink": None}
    spelled = "urn:ietf:params:scim:schemas:core:2.0:User:Active"
    made = _leaver_plan(Policy(ignore_paths=[spelled], **loose))  # type: ignore[arg-type]
    assert (["create"], ["a1"]) == (
        [op.kind for op in made.operations],
        [s.target_id for s in made.skipped if "does not keep active" in s.reason],
    )
