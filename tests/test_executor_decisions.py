"""The executor's rules as pure functions: errors, creates, re-planning, order, quarantine."""

from __future__ import annotations

from datetime import datetime, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scimsync import Group, Member, Meta, PatchOperation, User
from scimsync.engine import Ledger, Operation, PlannedChange, Policy, SyncState
from scimsync.errors import (
    BadRequestError,
    ConflictResponseError,
    ForbiddenError,
    InvalidResponseError,
    NotFoundError,
    OutcomeUnknownError,
    PreconditionFailedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
from scimsync.models import DesiredGroup, DesiredUser, TargetState
from scimsync.sync import JournalEntry
from scimsync.sync._decisions import (
    MASK,
    CreateAction,
    ErrorAction,
    create_identity,
    decide_create,
    decide_error,
    dependencies,
    fingerprint,
    holds_identity,
    matches_identity,
    next_delay,
    quarantine_reason,
    rebase,
    recover,
    redact,
    secrets_of,
)

POLICY = Policy()
WHEN = datetime(2026, 3, 1, tzinfo=timezone.utc)
USER_PLACEHOLDER = "urn:scimsync:placeholder:User:e1"


def create_op(key: str = "e1", user_name: str = "ann", password: str | None = None) -> Operation:
    return Operation(
        kind="create",
        resource_type="User",
        target_id=f"urn:scimsync:placeholder:User:{key}",
        source_key=key,
        body=User(external_id=key, user_name=user_name, password=password),
    )


def update_op(**kwargs: object) -> Operation:
    values: dict[str, object] = {
        "kind": "update",
        "resource_type": "User",
        "target_id": "u1",
        "source_key": "e1",
        "patch": [PatchOperation(op="replace", path="title", value="Lead")],
        "changes": [PlannedChange(path="title", old="Guide", new="Lead")],
    }
    values.update(kwargs)
    return Operation(**values)  # type: ignore[arg-type]


def account(
    account_id: str = "u1", user_name: str = "ann", external_id: str | None = "e1", **kw: object
) -> User:
    return User(id=account_id, user_name=user_name, external_id=external_id, **kw)  # type: ignore[arg-type]


def http(cls: type, status: int, scim_type: str | None = None) -> BaseException:
    return cls(status, scim_type=scim_type)  # type: ignore[no-any-return]


# -- errors --------------------------------------------------------------------------------

LOST = OutcomeUnknownError("lost", method="POST", url="/Users")


@pytest.mark.parametrize(
    ("kind", "error", "expected"),
    [
        ("create", LOST, ErrorAction.LOOKUP),
        ("create", InvalidResponseError("garbage"), ErrorAction.LOOKUP),
        ("create", http(ConflictResponseError, 409, "uniqueness"), ErrorAction.LOOKUP),
        ("create", http(ConflictResponseError, 409), ErrorAction.LOOKUP),
        ("create", http(ConflictResponseError, 409, "mutability"), ErrorAction.FAIL),
        ("create", http(BadRequestError, 400, "invalidValue"), ErrorAction.FAIL),
        ("create", http(ServerError, 503), ErrorAction.FAIL),
        ("create", http(UnauthorizedError, 401), ErrorAction.STOP_WRITING),
        ("update", http(ForbiddenError, 403), ErrorAction.STOP_WRITING),
        ("update", http(PreconditionFailedError, 412), ErrorAction.REREAD),
        ("update", LOST, ErrorAction.REREAD),
        ("update", http(NotFoundError, 404), ErrorAction.FAIL),
        ("update", http(ServerError, 500), ErrorAction.FAIL),
        ("update", TransportError("refused"), ErrorAction.FAIL),
        ("update", ValueError("a bug in a connector"), ErrorAction.FAIL),
        ("delete", http(NotFoundError, 404), ErrorAction.ALREADY_DONE),
        ("deactivate", http(NotFoundError, 404), ErrorAction.ALREADY_DONE),
        ("remove_members", http(NotFoundError, 404), ErrorAction.ALREADY_DONE),
        ("remove_members", http(BadRequestError, 400, "noTarget"), ErrorAction.REREAD),
        ("add_members", http(BadRequestError, 400, "noTarget"), ErrorAction.FAIL),
        ("add_members", LOST, ErrorAction.REREAD),
    ],
)
def test_what_each_error_means(kind: str, error: BaseException, expected: ErrorAction) -> None:
    """Lost answers and conflicts on creates lead to a lookup; 412 and lost answers on
    other writes to a re-read; 401/403 stop writing; a 404 on a deletion is success;
    everything else fails the operation (never a blind retry)."""
    op = create_op() if kind == "create" else update_op(kind=kind)
    assert expected == decide_error(op, error, rereads=0, max_rereads=3).action


def test_rereads_are_bounded() -> None:
    """An operation whose resource keeps changing fails after ``max_rereads`` re-reads."""
    error = http(PreconditionFailedError, 412)
    assert ErrorAction.REREAD == decide_error(update_op(), error, rereads=2, max_rereads=3).action
    decision = decide_error(update_op(), error, rereads=3, max_rereads=3)
    assert ErrorAction.FAIL == decision.action
    assert "after 3 re-reads" in decision.reason


# -- creates ---------------------------------------------------------------------------------


def test_the_identity_of_a_create_is_its_match_key_values() -> None:
    """The values a lookup compares are those of the policy's match keys, as sent."""
    assert {"externalId": "e1", "userName": "Ann"} == create_identity(
        create_op(user_name="Ann"), POLICY
    )
    group = Operation(
        kind="create",
        resource_type="Group",
        target_id="urn:scimsync:placeholder:Group:g1",
        source_key="g1",
        body=Group(display_name="Eng"),
    )
    assert {"displayName": "Eng"} == create_identity(group, POLICY)


def test_identity_matching_follows_case_exactness() -> None:
    """userName compares case-insensitively, externalId exactly; every value must agree."""
    identity = {"externalId": "e1", "userName": "Ann"}
    assert matches_identity("User", identity, account(user_name="ANN"), POLICY)
    assert not matches_identity("User", identity, account(external_id="E1"), POLICY)
    assert not matches_identity("User", identity, account(external_id=None), POLICY)
    assert not matches_identity("User", {}, account(), POLICY)


@pytest.mark.parametrize(
    ("found", "ledger", "maybe_ours", "adopt", "expected"),
    [
        ([], Ledger(), True, "fail", CreateAction.RETRY),
        ([account("u1"), account("u2")], Ledger(), True, "adopt", CreateAction.FAIL),
        ([account()], Ledger(), True, "fail", CreateAction.LINK),
        ([account()], Ledger(), False, "fail", CreateAction.LINK),  # its own externalId
        ([account(external_id=None)], Ledger(), False, "fail", CreateAction.FAIL),
        ([account(external_id=None)], Ledger(), False, "adopt", CreateAction.ADOPT),
        ([account(external_id=None)], Ledger(), False, "ignore", CreateAction.IGNORE),
        ([account(external_id=None)], Ledger(owned=["u1"]), False, "fail", CreateAction.LINK),
        ([account()], Ledger(links={"e9": "u1"}), True, "adopt", CreateAction.FAIL),
    ],
)
def test_what_a_lookup_after_a_create_decides(
    found: list[User], ledger: Ledger, maybe_ours: bool, adopt: str, expected: CreateAction
) -> None:
    """Nothing found: send again. Several: never guess. The account the create made
    (its answer was lost), or one scimsync owns: link. Another's: per ``adopt``.
    An account another source key owns: fail."""
    policy = Policy(adopt=adopt)  # type: ignore[arg-type]
    decision = decide_create(
        create_op(), found, policy=policy, ledger=ledger, maybe_ours=maybe_ours
    )
    assert expected == decision.action
    if expected in (CreateAction.LINK, CreateAction.ADOPT):
        assert found[0] is decision.account


def test_a_lost_answer_claims_only_an_account_with_its_whole_identity() -> None:
    """After a lost answer, an account holding the userName under another externalId
    is not the one the create made: the adoption policy decides (here: refuse)."""
    other = account(external_id="x9")
    identity = {"externalId": "e1", "userName": "ann"}
    assert (True, False) == (
        holds_identity("User", identity, other, POLICY),
        matches_identity("User", identity, other, POLICY),
    )
    decision = decide_create(create_op(), [other], policy=POLICY, ledger=Ledger(), maybe_ours=True)
    assert CreateAction.FAIL == decision.action


def test_a_managed_prefix_makes_an_account_owned() -> None:
    """An account whose externalId carries the policy's prefix is linked, not adopted."""
    policy = Policy(external_id_prefix="hr-")
    found = [account(external_id="hr-e1")]
    op = attrs.evolve(create_op(), body=User(user_name="ann"))
    decision = decide_create(op, found, policy=policy, ledger=Ledger(), maybe_ours=False)
    assert CreateAction.LINK == decision.action


# -- re-planning -------------------------------------------------------------------------------


def test_an_unchanged_resource_gets_the_planned_operation() -> None:
    """The values the plan saw are still there: the operation goes as planned."""
    op = update_op()
    rebased = rebase(op, account(title="Guide"), POLICY)
    assert (op, False) == (rebased.op, rebased.replanned)


def test_what_is_done_already_is_not_sent() -> None:
    """A resource that already holds what the operation sets needs no write."""
    rebased = rebase(update_op(), account(title="Lead"), POLICY)
    assert (None, True) == (rebased.op, rebased.done)


def test_a_resource_changed_meanwhile_is_re_diffed() -> None:
    """Someone changed the title since the plan: the change is computed again."""
    op = update_op(
        patch=[
            PatchOperation(op="replace", path="title", value="Lead"),
            PatchOperation(op="replace", path="displayName", value="Ann Lee"),
        ],
        changes=[
            PlannedChange(path="title", old="Guide", new="Lead"),
            PlannedChange(path="displayName", old="Ann", new="Ann Lee"),
        ],
    )
    rebased = rebase(op, account(title="Lead", display_name="Annie"), POLICY)
    assert rebased.op is not None
    assert [("replace", "displayName", "Ann Lee")] == [
        (p.op, p.path, p.value) for p in rebased.op.patch
    ]
    assert rebased.replanned


def test_a_resource_gone_meanwhile() -> None:
    """Gone: a deactivation or deletion is done already; an update cannot be done."""
    assert rebase(update_op(kind="delete", patch=()), None, POLICY).done
    assert rebase(update_op(kind="deactivate"), None, POLICY).done
    gone = rebase(update_op(), None, POLICY)
    assert (None, False) == (gone.op, gone.done)


def test_member_changes_are_narrowed_to_what_remains() -> None:
    """Members added (or removed) meanwhile are not sent again."""
    group = Group(id="g1", display_name="Eng", members=[Member(value="a"), Member(value="b")])
    add = Operation(kind="add_members", resource_type="Group", target_id="g1", members=["a", "c"])
    rebased = rebase(add, group, POLICY)
    assert rebased.op is not None
    assert (("c",), True) == (rebased.op.members, rebased.replanned)
    assert [{"value": "c"}] == rebased.op.patch[0].value
    remove = Operation(kind="remove_members", resource_type="Group", target_id="g1", members=["x"])
    assert rebase(remove, group, POLICY).done
    unknown = attrs.evolve(group, members=None)
    assert add == rebase(add, unknown, POLICY).op  # members not shown: send as planned


def test_a_put_is_rebuilt_on_the_current_resource() -> None:
    """A whole-resource write keeps what changed meanwhile on other attributes."""
    op = Operation(
        kind="update",
        resource_type="User",
        target_id="u1",
        body=User(user_name="ann", title="Lead", nick_name="old"),
        changes=[PlannedChange(path="title", old="Guide", new="Lead")],
    )
    current = account(title="Guide", nick_name="changed meanwhile", meta=Meta(version='W/"2"'))
    rebased = rebase(op, current, POLICY)
    assert rebased.op is not None
    body = rebased.op.body
    assert isinstance(body, User)
    assert ("Lead", "changed meanwhile", None) == (
        body.title,
        body.nick_name,
        body.meta,
    )


def test_a_put_member_removal_is_rebuilt_on_the_current_members() -> None:
    """A PUT removing members keeps the members added meanwhile."""
    op = Operation(
        kind="remove_members",
        resource_type="Group",
        target_id="g1",
        members=["a"],
        body=Group(display_name="Eng", members=[Member(value="b")]),
        changes=[PlannedChange(path="members", old=["a"])],
    )
    current = Group(id="g1", display_name="Eng", members=[Member(value=v) for v in "abz"])
    rebased = rebase(op, current, POLICY)
    assert rebased.op is not None
    assert isinstance(rebased.op.body, Group)
    assert ["b", "z"] == [m.value for m in rebased.op.body.members or ()]


# -- order ---------------------------------------------------------------------------------


def test_operations_wait_for_the_creates_they_need_and_their_resource() -> None:
    """Group changes wait for the user creates they name; one group's chunks go in turn."""
    group = "urn:scimsync:placeholder:Group:g1"
    ops = [
        create_op("e1"),
        create_op("e2", "bob"),
        Operation(kind="create", resource_type="Group", target_id=group, body=Group()),
        Operation(
            kind="add_members",
            resource_type="Group",
            target_id=group,
            members=[USER_PLACEHOLDER],
        ),
        Operation(
            kind="add_members",
            resource_type="Group",
            target_id=group,
            members=["urn:scimsync:placeholder:User:e2"],
        ),
        update_op(target_id="u9"),
    ]
    assert [(), (), (), (0, 2), (1, 2, 3), ()] == dependencies(ops)


# -- quarantine and delays ---------------------------------------------------------------------


def test_quarantine_needs_enough_writes_and_too_many_failures() -> None:
    """Below ``min_operations`` nothing is decided; above the rate, writing stops."""
    assert quarantine_reason(19, 19, max_failure_rate=0.2, min_operations=20) is None
    assert quarantine_reason(20, 4, max_failure_rate=0.2, min_operations=20) is None
    reason = quarantine_reason(20, 5, max_failure_rate=0.2, min_operations=20)
    assert reason is not None
    assert "5 of 20 writes failed (25%)" in reason


@given(
    interval=st.floats(min_value=1, max_value=3600),
    jitter=st.floats(min_value=0, max_value=0.99),
    draw=st.floats(min_value=0, max_value=0.999999),
    level=st.integers(min_value=0, max_value=20),
)
def test_delays_stay_within_jitter_of_the_backed_off_interval(
    interval: float, jitter: float, draw: float, level: int
) -> None:
    """The wait is the interval, doubled per back-off level up to the cap, ± jitter."""
    cap = interval * 10
    delay = next_delay(interval, jitter=jitter, draw=draw, backoff_level=level, max_delay=cap)
    base = min(interval * 2**level, cap)
    assert base * (1 - jitter) - 1e-6 <= delay <= base * (1 + jitter) + 1e-6


def test_delays_without_jitter() -> None:
    """No jitter, no back-off: exactly the interval; back-off doubles it."""
    assert 60.0 == next_delay(60, jitter=0, draw=0.7)
    assert 240.0 == next_delay(60, jitter=0, draw=0.7, backoff_level=2)
    assert 300.0 == next_delay(60, jitter=0, draw=0.7, backoff_level=9, max_delay=300)


# -- fingerprints and secrets --------------------------------------------------------------------


def test_fingerprints_ignore_create_only_values_and_member_order() -> None:
    """An initial password drawn afresh never makes an identity changed; members compare
    as a set; any managed attribute does."""
    user = User(user_name="ann", title="Guide")
    one = DesiredUser(key="e1", user=user, create_only=User(password="first-password"))
    two = DesiredUser(key="e1", user=user, create_only=User(password="other-password"))
    assert fingerprint(one) == fingerprint(two)
    assert fingerprint(one) != fingerprint(attrs.evolve(one, user=User(user_name="ann")))
    group = DesiredGroup(key="g1", group=Group(display_name="Eng"), member_keys=["a", "b"])
    assert fingerprint(group) == fingerprint(attrs.evolve(group, member_keys=["b", "a"]))


def test_secrets_of_an_operation_and_their_redaction() -> None:
    """A create's password (writeOnly) is found and masked wherever it appears."""
    op = create_op(password="Sup3r-secret")
    assert ("Sup3r-secret",) == secrets_of(op, POLICY)
    text = 'HTTP 400: password "Sup3r-secret" is too weak'
    assert f'HTTP 400: password "{MASK}" is too weak' == redact(text, secrets_of(op, POLICY))
    assert () == secrets_of(update_op(), POLICY)


def test_a_password_echoed_in_part_or_encoded_is_masked() -> None:
    """Pieces of 8 characters or more, upper case, percent-encoded: all masked, whole;
    a password under 8 characters only where it appears whole."""
    password = "Init-Pa55/word+2024-xy"
    secrets = secrets_of(create_op(password=password), POLICY)
    texts = {
        f"password {password[:12]}... too weak": f"password {MASK}... too weak",
        f"ends in ...{password[-9:]}": f"ends in ...{MASK}",
        f"PASSWORD {password.upper()}": f"PASSWORD {MASK}",
        "value=Init-Pa55%2Fword%2B2024-xy": f"value={MASK}",
        f"short {password[:7]}": f"short {password[:7]}",
    }
    assert texts == {text: redact(text, secrets) for text in texts}
    assert f"pw {MASK} and {MASK}" == redact("pw abcd and abcd", ("abcd",))


def test_sensitive_paths_of_the_policy_are_secrets_too() -> None:
    """Attributes the policy names sensitive are masked like passwords."""
    policy = Policy(sensitive_paths=["nickName"])
    op = attrs.evolve(create_op(), body=User(user_name="ann", nick_name="hidden-nick"))
    assert ("hidden-nick",) == secrets_of(op, policy)


# -- recovery after a crash --------------------------------------------------------------------


def test_recovery_links_what_a_killed_cycle_created() -> None:
    """Creates it recorded are linked; an intent never recorded is linked to the one
    account holding its identity; deactivations and deletions are kept."""
    state = SyncState(users=Ledger(links={"e0": "u0", "e8": "u8"}))
    journal = [
        JournalEntry(
            event="intent",
            resource_type="User",
            source_key="e1",
            target_id=USER_PLACEHOLDER,
            identity={"externalId": "e1", "userName": "ann"},
        ),
        JournalEntry(
            event="intent",
            resource_type="User",
            source_key="e2",
            identity={"externalId": "e2", "userName": "bob"},
        ),
        JournalEntry(
            event="intent",
            resource_type="User",
            source_key="e3",
            identity={"externalId": "e3", "userName": "cy"},
        ),
        JournalEntry(event="created", resource_type="User", source_key="e2", target_id="u2"),
        JournalEntry(event="deactivated", resource_type="User", target_id="u0", at=WHEN),
        JournalEntry(event="deleted", resource_type="User", target_id="u8"),
    ]
    actual = TargetState(users=[account("u1", "ANN", "e1"), account("u0", "zed", "e0")])
    recovered, notes, unresolved = recover(state, journal, actual, POLICY)
    assert {"e0": "u0", "e1": "u1", "e2": "u2"} == dict(recovered.users.links)
    assert {"u0", "u1", "u2"} == set(recovered.users.owned)
    assert {"u0": WHEN} == dict(recovered.users.deactivated_at)
    assert [journal[2]] == unresolved  # e3: nowhere yet; it may still land
    assert 3 == len(notes)


def test_recovery_never_takes_another_keys_account() -> None:
    """An account already linked to another source key is not linked to the intent."""
    state = SyncState(users=Ledger(links={"e9": "u1"}))
    journal = [
        JournalEntry(
            event="intent",
            resource_type="User",
            source_key="e1",
            identity={"userName": "ann"},
        )
    ]
    recovered, notes, unresolved = recover(
        state, journal, TargetState(users=[account("u1")]), POLICY
    )
    assert ({"e9": "u1"}, [], []) == (dict(recovered.users.links), notes, unresolved)
