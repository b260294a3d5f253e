"""The executor against a target with scripted faults: order, isolation, no duplicates."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from _sync_helpers import WHEN, ScriptedTarget, Timer, memory_target
from scimsync import Email, Group, User
from scimsync.engine import Plan, Policy, SyncState, plan
from scimsync.errors import (
    BadRequestError,
    ConfigurationError,
    ConflictResponseError,
    OutcomeUnknownError,
    PreconditionFailedError,
    ServerError,
    UnauthorizedError,
)
from scimsync.models import DesiredGroup, DesiredState, DesiredUser
from scimsync.sync import ApplyPolicy, Execution, Executor, MemoryStateStore
from scimsync.sync._executor import Journal
from scimsync.sync._verify import Observation

if TYPE_CHECKING:
    from scimsync.targets import MemoryTarget

POLICY = Policy()


def lost(method: str = "POST") -> OutcomeUnknownError:
    return OutcomeUnknownError("connection reset after sending", method=method, url="/Users")


def desired(users: int, groups: dict[str, list[int]] | None = None) -> DesiredState:
    return DesiredState(
        users=[
            DesiredUser(
                key=f"e{i}",
                user=User(external_id=f"e{i}", user_name=f"user{i}", title="Guide"),
            )
            for i in range(users)
        ],
        groups=[
            DesiredGroup(
                key=name,
                group=Group(external_id=name, display_name=name),
                member_keys=[f"e{i}" for i in members],
            )
            for name, members in (groups or {}).items()
        ],
    )


def plan_for(target: MemoryTarget, wanted: DesiredState, **policy: Any) -> Plan:
    return plan(wanted, target.state(), Policy(**policy), now=WHEN)


async def execute(
    target: ScriptedTarget,
    made: Plan,
    *,
    settings: ApplyPolicy | None = None,
    policy: Policy = POLICY,
    state: SyncState | None = None,
    **kwargs: Any,
) -> Execution:
    executor = Executor(
        target.as_target(),
        policy=policy,
        settings=settings,
        state=state,
        timer=Timer(),
        clock=lambda: WHEN,
        **kwargs,
    )
    return await executor.execute(made)


def outcomes(execution: Execution) -> list[tuple[str, str, str | None]]:
    return [(r.kind, r.outcome, r.source_key) for r in execution.results]


def user_names(target: MemoryTarget) -> Counter[str]:
    return Counter(u.user_name or "" for u in target.state().users)


async def test_creates_resolve_placeholders_and_groups_get_real_ids() -> None:
    """Users are created, then the group, then its members by their new ids."""
    target = ScriptedTarget()
    made = plan_for(target.inner, desired(3, {"eng": [0, 1, 2]}))
    execution = await execute(target, made)
    assert all(r.outcome == "applied" for r in execution.results)
    (group,) = target.inner.state().groups
    ids = {u.user_name: u.id for u in target.inner.state().users}
    assert sorted(str(i) for i in ids.values()) == sorted(str(m.value) for m in group.members or ())
    assert {f"urn:scimsync:placeholder:User:e{i}": ids[f"user{i}"] for i in range(3)} == {
        k: v for k, v in execution.resolved.items() if ":User:" in k
    }
    positions = [name for name, _ in target.calls]
    assert positions.index("add_members") > max(
        i for i, name in enumerate(positions) if name == "create_user"
    )


async def test_concurrency_is_bounded() -> None:
    """No more operations are in flight than the policy allows, and that many are."""
    target = ScriptedTarget()
    made = plan_for(target.inner, desired(30))
    await execute(target, made, settings=ApplyPolicy(concurrency=4))
    assert 4 == target.max_in_flight
    assert 30 == len(target.inner.state().users)


async def test_one_failure_never_stops_independent_operations() -> None:
    """A refused create fails alone; the group is made with the other members, and says so."""
    target = ScriptedTarget()
    target.fail(
        "create_user",
        BadRequestError(400, scim_type="invalidValue", detail="bad title"),
        match=lambda args: args[0].user_name == "user1",
    )
    made = plan_for(target.inner, desired(3, {"eng": [0, 1, 2]}))
    execution = await execute(target, made)
    by_key = {(r.kind, r.source_key): r for r in execution.results}
    failed = by_key["create", "e1"]
    assert ("failed", "BadRequestError", 400) == (failed.outcome, failed.error, failed.status)
    assert "bad title" in failed.reason
    members = by_key["add_members", "eng"]
    assert "applied" == members.outcome
    assert "1 member left out: not created" in members.reason
    (group,) = target.inner.state().groups
    assert 2 == len(group.members or ())
    assert [made.operations[i] for i, r in enumerate(execution.results) if r is failed] == (
        execution.not_applied(made)
    )


async def test_an_unexpected_exception_from_a_target_fails_only_its_operation() -> None:
    """A connector that raises something unforeseen fails that operation, named."""
    target = ScriptedTarget()
    target.fail("create_user", KeyError("boom"), match=lambda args: args[0].user_name == "user0")
    execution = await execute(target, plan_for(target.inner, desired(2)))
    assert [("create", "failed", "e0"), ("create", "applied", "e1")] == outcomes(execution)
    assert "KeyError" == execution.results[0].error


# -- duplicate-safe creates -------------------------------------------------------------------


async def test_a_create_whose_answer_was_lost_after_commit_is_found_not_repeated() -> None:
    """Committed, then the answer lost: a lookup finds it, it is linked, one account."""
    target = ScriptedTarget()
    target.fail("create_user", lost(), after=True)
    execution = await execute(target, plan_for(target.inner, desired(1)))
    (result,) = execution.results
    assert ("applied", 1, 1) == (result.outcome, result.writes, result.reads)
    assert "answer was lost" in result.reason
    assert Counter({"user0": 1}) == user_names(target.inner)
    (user,) = target.inner.state().users
    assert {"urn:scimsync:placeholder:User:e0": user.id} == dict(execution.resolved)


async def test_a_create_lost_before_commit_is_sent_again_after_a_lookup() -> None:
    """Nothing was created: the lookup finds nothing and the create is sent again."""
    target = ScriptedTarget()
    target.fail("create_user", lost())
    execution = await execute(target, plan_for(target.inner, desired(1)))
    (result,) = execution.results
    # The lookup tries each match key (externalId, then userName) before sending again.
    assert ("applied", 2, 2) == (result.outcome, result.writes, result.reads)
    assert 1 == execution.retries
    assert Counter({"user0": 1}) == user_names(target.inner)


async def test_creates_give_up_after_the_attempts_allowed() -> None:
    """Each attempt lost and nothing found: after ``max_create_attempts`` it fails."""
    target = ScriptedTarget()
    target.fail("create_user", lost(), times=None)
    settings = ApplyPolicy(max_create_attempts=2)
    execution = await execute(target, plan_for(target.inner, desired(1)), settings=settings)
    (result,) = execution.results
    assert ("failed", 2) == (result.outcome, result.writes)
    assert "not found after 2 attempts" in result.reason


async def test_a_409_then_lost_answer_race_ends_in_one_account() -> None:
    """Lost answer, nothing found yet, sent again: 409 — the account found is this one's."""
    inner = memory_target()
    target = ScriptedTarget(inner)
    target.fail("create_user", lost(), after=True)
    made = plan_for(inner, desired(1))
    # The lookup right after the lost answer misses it (a lagging search index).
    original = inner.find_users
    misses = iter([True, True])

    async def lagging_find(attribute: str, value: str) -> tuple[User, ...]:
        if next(misses, False):
            return ()
        return await original(attribute, value)

    inner.find_users = lagging_find  # type: ignore[method-assign]
    execution = await execute(target, made)
    (result,) = execution.results
    assert ("applied", 2) == (result.outcome, result.writes)
    assert Counter({"user0": 1}) == user_names(inner)


@pytest.mark.parametrize(
    ("adopt", "outcome", "adopted"),
    [("adopt", "applied", True), ("fail", "failed", False), ("ignore", "skipped", False)],
)
async def test_a_uniqueness_conflict_with_an_unowned_account_follows_the_policy(
    adopt: str, outcome: str, adopted: bool
) -> None:
    """409 on create: the existing account is adopted (and brought in line), refused or
    left alone, per ``Policy.adopt``; never a second account."""
    inner = memory_target(users=[User(user_name="USER0", title="Old")])
    target = ScriptedTarget(inner)
    made = plan(desired(1), attrs.evolve(inner.state(), users=()), POLICY, now=WHEN)
    policy = Policy(adopt=adopt)  # type: ignore[arg-type]
    execution = await execute(target, made, policy=policy)
    (result,) = execution.results
    assert (outcome, adopted) == (result.outcome, result.adopted)
    (user,) = inner.state().users
    if adopt == "adopt":
        assert ("Guide", "e0") == (user.title, user.external_id)
        assert {"urn:scimsync:placeholder:User:e0": user.id} == dict(execution.resolved)
    else:
        assert ("Old", None) == (user.title, user.external_id)
        assert {} == dict(execution.resolved)


async def test_a_conflict_on_another_attribute_is_a_failure() -> None:
    """409 while no account holds the identity: the clash is elsewhere; it fails, named."""
    target = ScriptedTarget()
    target.fail("create_user", ConflictResponseError(409, scim_type="uniqueness"))
    execution = await execute(target, plan_for(target.inner, desired(1)))
    (result,) = execution.results
    assert "failed" == result.outcome
    assert "the clash is on another attribute" in result.reason


class AnsweringAnother(ScriptedTarget):
    """A target with unique userNames that answers a clashing create with success and
    the account it clashed with (an "idempotent create"), instead of a 409."""

    async def create_user(self, user: User) -> User:
        self.calls.append(("create_user", (user,)))
        folded = (user.user_name or "").casefold()
        for held in self.inner.state().users:
            if (held.user_name or "").casefold() == folded or held.emails == user.emails:
                return held
        created: User = await self.inner.create_user(user)
        return created


@pytest.mark.parametrize("adopt", ["fail", "adopt"])
async def test_a_create_answered_with_another_account_never_links_it(adopt: str) -> None:
    """A create answered 2xx with an account holding another identity (someone else's,
    clashing on an email): not linked, not adopted, not checked against what was sent;
    the create fails, naming the account, and is not sent again."""
    email = (Email(value="ann@example.com", type="work"),)
    admin = User(user_name="admin-ann", emails=email, title="Admin")
    inner = memory_target(users=[admin])
    target = AnsweringAnother(inner)
    wanted = DesiredState(
        users=[DesiredUser(key="e0", user=User(external_id="e0", user_name="ann", emails=email))]
    )
    made = plan(wanted, attrs.evolve(inner.state(), users=()), POLICY, now=WHEN)
    execution = await execute(target, made, policy=Policy(adopt=adopt))  # type: ignore[arg-type]
    (result,) = execution.results
    assert ("failed", 1) == (result.outcome, target.count("create_user"))
    assert (
        f"the target answered the create with account {inner.state().users[0].id}, which "
        "holds another identity (userName 'admin-ann'); no account holds this identity: "
        "not sent again this cycle"
    ) == result.reason
    assert ({}, ()) == (dict(execution.resolved), execution.unkept)
    (held,) = inner.state().users
    assert ("admin-ann", None, "Admin") == (held.user_name, held.external_id, held.title)


class AnsweringWithoutId(ScriptedTarget):
    """A target that creates, and answers with the resource but no id."""

    async def create_user(self, user: User) -> User:
        self.calls.append(("create_user", (user,)))
        created: User = await self.inner.create_user(user)
        return attrs.evolve(created, id=None)


async def test_a_create_answered_without_an_id_is_looked_up_not_failed() -> None:
    """The account the create made is found by its identity and linked; nothing is
    sent twice."""
    target = AnsweringWithoutId()
    execution = await execute(target, plan_for(target.inner, desired(2)))
    assert [("create", "applied", "e0"), ("create", "applied", "e1")] == outcomes(execution)
    assert 2 == target.count("create_user")
    assert Counter({"user0": 1, "user1": 1}) == user_names(target.inner)
    ids = {u.external_id: u.id for u in target.inner.state().users}
    assert {f"urn:scimsync:placeholder:User:{k}": ids[k] for k in ("e0", "e1")} == dict(
        execution.resolved
    )


async def test_creates_are_verified_first_when_asked() -> None:
    """With ``verify_creates`` (an incomplete listing) a create looks its identity up
    first, and links what it finds instead of sending a POST."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0")])
    target = ScriptedTarget(inner)
    made = plan(desired(2), attrs.evolve(inner.state(), users=()), POLICY, now=WHEN)
    executor = Executor(target.as_target(), policy=POLICY, timer=Timer(), clock=lambda: WHEN)
    execution = await executor.execute(made, verify_creates=True)
    assert [("create", "applied", "e0"), ("create", "applied", "e1")] == outcomes(execution)
    # e0 found by its externalId; e1 looked up by externalId and userName, then created.
    assert (1, 3) == (target.count("create_user"), target.count("find_users"))
    assert Counter({"user0": 1, "user1": 1}) == user_names(inner)


async def test_creates_an_interrupted_cycle_sent_are_looked_up_first() -> None:
    """A create an earlier, killed cycle may have sent is looked up before it is sent,
    and the account holding its whole identity is taken as its own (not adopted)."""
    inner = memory_target(users=[User(user_name="user0")])  # landed after the crash
    target = ScriptedTarget(inner)
    made = plan(
        DesiredState(users=[DesiredUser(key="e0", user=User(user_name="user0"))]),
        attrs.evolve(inner.state(), users=()),
        POLICY,
        now=WHEN,
    )
    executor = Executor(
        target.as_target(),
        policy=POLICY,
        timer=Timer(),
        clock=lambda: WHEN,
        earlier_attempts={("User", "e0")},
    )
    execution = await executor.execute(made)
    (result,) = execution.results
    assert ("applied", False, 0) == (result.outcome, result.adopted, target.count("create_user"))
    assert {"urn:scimsync:placeholder:User:e0": inner.state().users[0].id} == dict(
        execution.resolved
    )


# -- other writes -----------------------------------------------------------------------------


async def test_a_412_rereads_and_sends_again() -> None:
    """The resource changed since it was read: read it again, re-plan, send again."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0", title="Old")])
    target = ScriptedTarget(inner)
    target.fail("update_user", PreconditionFailedError(412))
    made = plan_for(inner, desired(1))
    execution = await execute(target, made)
    (result,) = execution.results
    assert ("update", "applied", 2, 1) == (result.kind, result.outcome, result.writes, result.reads)
    assert "Guide" == inner.state().users[0].title


async def test_412s_without_end_fail_after_the_rereads_allowed() -> None:
    """A resource that keeps changing fails the operation after ``max_rereads``."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0", title="Old")])
    target = ScriptedTarget(inner)
    target.fail("update_user", PreconditionFailedError(412), times=None)
    execution = await execute(
        target, plan_for(inner, desired(1)), settings=ApplyPolicy(max_rereads=2)
    )
    (result,) = execution.results
    assert ("failed", 3, 2) == (result.outcome, result.writes, result.reads)


async def test_a_lost_member_change_is_checked_not_repeated() -> None:
    """Members added, answer lost: the re-read shows them there; nothing is sent again."""
    inner = memory_target(
        users=[User(user_name=f"user{i}", external_id=f"e{i}") for i in range(2)],
        groups=[Group(display_name="eng", external_id="eng", members=[])],
    )
    target = ScriptedTarget(inner)
    target.fail("add_members", lost("PATCH"), after=True)
    made = plan_for(inner, desired(2, {"eng": [0, 1]}), adopt="adopt")
    execution = await execute(target, made, policy=Policy(adopt="adopt"))
    members = [r for r in execution.results if r.kind == "add_members"]
    assert [("applied", 1, 1)] == [(r.outcome, r.writes, r.reads) for r in members]
    assert 2 == len(inner.state().groups[0].members or ())


async def test_deactivation_and_reactivation_use_the_targets_own_calls() -> None:
    """A plain deactivation goes through ``deactivate_user``; other updates ``update_user``."""
    inner = memory_target(
        users=[
            User(user_name="user0", external_id="e0", title="Guide", active=False),
            User(user_name="gone", external_id="x1"),
        ]
    )
    target = ScriptedTarget(inner)
    ids = {u.user_name: u.id for u in inner.state().users}
    state = SyncState.from_dict(
        {
            "format": 1,
            "users": {
                "links": {"e0": ids["user0"], "x1": ids["gone"]},
                "deactivatedAt": {ids["user0"]: "2026-01-01T00:00:00+00:00"},
            },
            "groups": {},
        }
    )
    wanted = DesiredState(
        users=[DesiredUser(key="e0", user=User(external_id="e0", user_name="user0", title="Guide"))]
    )
    policy = Policy(max_deprovisions_percent=None)
    made = plan(wanted, inner.state(), policy, state, now=WHEN)
    execution = await execute(target, made, policy=policy, state=state)
    assert [("reactivate", "applied", "e0"), ("deactivate", "applied", "x1")] == outcomes(execution)
    assert (1, 1, 0) == (
        target.count("reactivate_user"),
        target.count("deactivate_user"),
        target.count("update_user"),
    )


# -- stopping ---------------------------------------------------------------------------------


async def test_a_401_stops_every_write_at_once() -> None:
    """Credentials refused: the operation fails, nothing else starts, and it says why."""
    target = ScriptedTarget()
    target.fail("create_user", UnauthorizedError(401, detail="token expired"))
    made = plan_for(target.inner, desired(5))
    execution = await execute(target, made, settings=ApplyPolicy(concurrency=1))
    assert ["failed", "skipped", "skipped", "skipped", "skipped"] == [
        r.outcome for r in execution.results
    ]
    assert execution.stopped is not None
    assert "refused the credentials (401)" in execution.stopped
    assert 1 == target.count("create_user")


async def test_too_many_failures_quarantine_the_cycle() -> None:
    """Once enough writes came back and too many failed, writing stops."""
    target = ScriptedTarget()
    target.fail("create_user", ServerError(503), times=None)
    made = plan_for(target.inner, desired(40))
    settings = ApplyPolicy(concurrency=1, min_operations=10, max_failure_rate=0.5)
    execution = await execute(target, made, settings=settings)
    assert 10 == target.count("create_user")
    assert execution.quarantine is not None
    assert "10 of 10 writes failed" in execution.quarantine
    assert Counter({"failed": 10, "skipped": 30}) == Counter(r.outcome for r in execution.results)


async def test_a_stop_request_lets_operations_in_flight_finish() -> None:
    """Asked to stop, the executor starts nothing new and reports the rest as skipped."""
    target = ScriptedTarget()
    made = plan_for(target.inner, desired(10))
    seen: list[object] = []
    execution = await execute(
        target,
        made,
        settings=ApplyPolicy(concurrency=2),
        on_result=seen.append,
        stop_requested=lambda: len(seen) >= 3,
    )
    assert Counter({"applied": 4, "skipped": 6}) == Counter(r.outcome for r in execution.results)
    assert 4 == len(target.inner.state().users)
    assert "a stop was requested" in (execution.stopped or "")


async def test_a_result_hook_that_raises_leaves_no_write_running() -> None:
    """``on_result`` raising: the error reaches the caller once the operations in flight
    have ended; nothing more starts, and no worker is left writing in the background."""
    target = ScriptedTarget()
    made = plan_for(target.inner, desired(10))

    calls: list[object] = []

    def broken(result: object) -> None:
        calls.append(result)
        if len(calls) == 1:  # once: the other worker would go on
            raise RuntimeError("the hook broke")

    with pytest.raises(RuntimeError, match="the hook broke"):
        await execute(target, made, settings=ApplyPolicy(concurrency=2), on_result=broken)
    assert [] == [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert 0 == target.in_flight
    assert target.count("create_user") == len(target.inner.state().users) <= 2


# -- against the target as it is now ----------------------------------------------------------


async def test_a_stale_plan_is_re_planned_against_the_target_now() -> None:
    """Given the current target, done operations are not sent and an identity created
    meanwhile is linked rather than created twice."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0", title="Old")])
    made = plan_for(inner, desired(2))
    assert ["create", "update"] == [op.kind for op in made.operations]
    await inner.update_user(inner.state().users[0].id or "", User(title="Guide"))
    await inner.create_user(User(user_name="user1", external_id="e1", title="Guide"))
    target = ScriptedTarget(inner)
    executor = Executor(target.as_target(), policy=POLICY, timer=Timer(), clock=lambda: WHEN)
    execution = await executor.execute(made, current=inner.state())
    assert [("create", "applied", 0), ("update", "applied", 0)] == [
        (r.kind, r.outcome, r.writes) for r in execution.results
    ]
    assert "already as planned" in execution.results[1].reason
    assert [] == target.calls
    assert Counter({"user0": 1, "user1": 1}) == user_names(inner)


# -- journal and secrets ----------------------------------------------------------------------


async def test_creates_are_journaled_before_they_are_sent() -> None:
    """Every create's intent is written before the first POST; each create after it."""
    store = MemoryStateStore()
    target = ScriptedTarget()
    seen_at_first_post: list[int] = []
    original = target.inner.create_user

    async def create(user: User) -> User:
        if not seen_at_first_post:
            seen_at_first_post.append(len(store.load().journal))
        return await original(user)

    target.inner.create_user = create  # type: ignore[method-assign]
    timer = Timer()
    journal = Journal(store, clock=lambda: WHEN, timer=timer)
    executor = Executor(
        target.as_target(), policy=POLICY, journal=journal, timer=timer, clock=lambda: WHEN
    )
    await executor.execute(plan_for(target.inner, desired(3)))
    assert [3] == seen_at_first_post
    events = Counter(entry.event for entry in store.load().journal)
    assert Counter({"intent": 3, "created": 3}) == events
    intent = store.load().journal[0]
    assert {"externalId": "e0", "userName": "user0"} == dict(intent.identity)


def with_password(password: str) -> DesiredState:
    """One user, ``e0``, created with an initial ``password``."""
    return DesiredState(
        users=[
            DesiredUser(
                key="e0",
                user=User(external_id="e0", user_name="ann"),
                create_only=User(password=password),
            )
        ]
    )


async def test_errors_never_carry_the_password_of_the_operation() -> None:
    """A target echoing the password in its error: the result masks it."""
    target = ScriptedTarget()
    target.fail("create_user", BadRequestError(400, detail="password 'Init-Pa55word' too weak"))
    wanted = with_password("Init-Pa55word")
    execution = await execute(target, plan(wanted, target.inner.state(), POLICY, now=WHEN))
    (result,) = execution.results
    assert "Init-Pa55word" not in repr(result)
    assert "password '********' too weak" in result.reason


async def test_a_stop_reason_never_carries_the_password(caplog: pytest.LogCaptureFixture) -> None:
    """A 401 on a create whose detail echoes the password: every write stops, and
    neither the stop reason nor its log record shows the password."""
    target = ScriptedTarget()
    target.fail("create_user", UnauthorizedError(401, detail="bad login for 'Init-Pa55word'"))
    wanted = with_password("Init-Pa55word")
    with caplog.at_level("ERROR", logger="scimsync"):
        execution = await execute(target, plan(wanted, target.inner.state(), POLICY, now=WHEN))
    assert "writing stopped" in caplog.text
    assert "Init-Pa55word" not in caplog.text + (execution.stopped or "")


async def test_errors_never_carry_a_piece_of_the_password() -> None:
    """A target echoing the start of the password, or its upper case: masked too."""
    password = "Init-Pa55word-2024-xy"
    target = ScriptedTarget()
    detail = f"password {password[:12]}... too weak ({password.upper()})"
    target.fail("create_user", BadRequestError(400, detail=detail))
    wanted = with_password(password)
    execution = await execute(target, plan(wanted, target.inner.state(), POLICY, now=WHEN))
    (result,) = execution.results
    assert False is (password[:12] in repr(result) or password.upper() in repr(result))
    assert "password ********... too weak (********)" in result.reason


def test_apply_policy_refuses_settings_that_cannot_work() -> None:
    """Concurrency below 1 or a failure rate above 1 is a configuration error."""
    with pytest.raises(ConfigurationError):
        ApplyPolicy(concurrency=0)
    with pytest.raises(ConfigurationError):
        ApplyPolicy(max_failure_rate=1.5)


async def test_a_put_target_gets_whole_resources() -> None:
    """With ``update_method="put"`` updates carry the resource, sent via ``update_user``."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0", title="Old")])
    target = ScriptedTarget(inner)
    made = plan_for(inner, desired(1), update_method="put")
    execution = await execute(target, made, policy=Policy(update_method="put"))
    assert [("update", "applied", "e0")] == outcomes(execution)
    ((name, args),) = target.calls
    assert ("update_user", True) == (name, isinstance(args[1], User))
    assert "Guide" == inner.state().users[0].title


async def test_an_empty_plan_does_nothing() -> None:
    """No operations: no call, an empty execution."""
    target = ScriptedTarget()
    execution = await execute(target, Plan())
    assert ((), [], None) == (execution.results, target.calls, execution.stopped)


# -- references and cleared attributes --------------------------------------------------------

MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"


def reports(pairs: dict[str, str | None], **managed: Any) -> DesiredState:
    """Users keyed by name, each with the manager named (by key) in ``pairs``."""
    return DesiredState(
        users=[
            DesiredUser(
                key=key,
                user=User(external_id=key, user_name=key),
                references={MANAGER: boss} if boss else (),
            )
            for key, boss in pairs.items()
        ],
        **managed,
    )


def manager_of(target: MemoryTarget) -> dict[str | None, str | None]:
    ids = {u.id: u.user_name for u in target.state().users}
    return {
        u.user_name: ids.get(u.enterprise.manager.value)
        for u in target.state().users
        if u.enterprise is not None and u.enterprise.manager is not None
    }


async def test_a_report_is_created_with_the_id_of_a_manager_created_just_before() -> None:
    """The placeholder in the create body becomes the manager's new id, whatever the
    concurrency; a circle of managers ends with each pointing at the other."""
    target = ScriptedTarget()
    made = plan_for(target.inner, reports({"a": "boss", "boss": None, "x": "y", "y": "x"}))
    execution = await execute(target, made, settings=ApplyPolicy(concurrency=8))
    assert all(r.outcome == "applied" for r in execution.results)
    assert {"a": "boss", "x": "y", "y": "x"} == manager_of(target.inner)
    creates = [args[0].user_name for name, args in target.calls if name == "create_user"]
    assert creates.index("boss") < creates.index("a")
    assert plan_for(target.inner, reports({"a": "boss", "boss": None, "x": "y", "y": "x"})).is_empty


async def test_a_report_whose_manager_could_not_be_created_is_created_without_one() -> None:
    """A failed create never takes its reports down with it: they are created, the
    reference left out, and the result says so (the next cycle sets it)."""
    target = ScriptedTarget()
    target.fail(
        "create_user",
        BadRequestError(400, scim_type="invalidValue", detail="no"),
        match=lambda args: args[0].user_name == "boss",
    )
    made = plan_for(target.inner, reports({"a": "boss", "boss": None}))
    execution = await execute(target, made)
    by_key = {r.source_key: r for r in execution.results}
    assert ("failed", "applied") == (by_key["boss"].outcome, by_key["a"].outcome)
    assert "1 reference to users not created left out" in by_key["a"].reason
    assert ["a"] == [u.user_name for u in target.inner.state().users]
    assert {} == manager_of(target.inner)


async def test_a_circle_applied_against_the_target_now_updates_what_it_just_created() -> None:
    """With the current target given, the update of a user this run created is sent,
    not refused as "gone since the plan was made"."""
    inner = memory_target()
    made = plan_for(inner, reports({"x": "y", "y": "x"}))
    assert ["create", "create", "update"] == [op.kind for op in made.operations]
    executor = Executor(
        ScriptedTarget(inner).as_target(), policy=POLICY, timer=Timer(), clock=lambda: WHEN
    )
    execution = await executor.execute(made, current=inner.state())
    assert ["applied"] * 3 == [r.outcome for r in execution.results]
    assert {"x": "y", "y": "x"} == manager_of(inner)


async def test_a_put_target_clears_a_title_with_a_remove_and_keeps_the_rest() -> None:
    """A body only sets what it holds: the cleared title goes as PATCH operations,
    which a target without PATCH applies to what it holds."""
    inner = memory_target(
        users=[User(user_name="user0", external_id="e0", title="Tour Guide", nick_name="Babs")]
    )
    target = ScriptedTarget(inner)
    wanted = reports({"e0": None}, managed_user_attributes=("title", "userName", "externalId"))
    wanted = attrs.evolve(
        wanted, users=[DesiredUser(key="e0", user=User(external_id="e0", user_name="user0"))]
    )
    policy = Policy(update_method="put", adopt="adopt")
    made = plan(wanted, inner.state(), policy, now=WHEN)
    execution = await execute(target, made, policy=policy)
    assert [("update", "applied", "e0")] == outcomes(execution)
    ((name, args),) = target.calls
    assert ("update_user", [("remove", "title")]) == (name, [(o.op, o.path) for o in args[1]])
    (user,) = inner.state().users
    assert (None, "Babs") == (user.title, user.nick_name)


async def test_a_put_update_re_planned_against_the_target_now_keeps_a_changed_email() -> None:
    """A whole-body write rebuilt on the current resource sets a changed email whole,
    rather than dropping the value the plan adds."""
    from scimsync import Email

    inner = memory_target(
        users=[
            User(
                user_name="user0",
                external_id="e0",
                emails=[Email(value="old@example.com", type="work")],
            )
        ]
    )
    wanted = DesiredState(
        users=[
            DesiredUser(
                key="e0",
                user=User(
                    external_id="e0",
                    user_name="user0",
                    emails=[Email(value="new@example.com", type="work")],
                ),
            )
        ]
    )
    policy = Policy(update_method="put", adopt="adopt")
    made = plan(wanted, inner.state(), policy, now=WHEN)
    executor = Executor(
        ScriptedTarget(inner).as_target(), policy=policy, timer=Timer(), clock=lambda: WHEN
    )
    execution = await executor.execute(made, current=inner.state())
    assert ["applied"] == [r.outcome for r in execution.results]
    assert ["new@example.com"] == [e.value for e in inner.state().users[0].emails or ()]


async def test_a_cleared_work_email_re_planned_against_the_target_now_is_still_removed() -> None:
    """Re-planned on the current resource, a removal the plan holds is kept (the re-diff
    knows the removed paths are managed)."""
    from scimsync import Email

    work = 'emails[type eq "work"]'
    inner = memory_target(
        users=[
            User(
                user_name="user0",
                external_id="e0",
                emails=[Email(value="old@example.com", type="work")],
                title="Guide",
            )
        ]
    )
    wanted = DesiredState(
        users=[DesiredUser(key="e0", user=User(external_id="e0", user_name="user0"))],
        managed_user_attributes=("userName", "externalId", "title", f"{work}.value"),
    )
    policy = Policy(adopt="adopt")
    made = plan(wanted, inner.state(), policy, now=WHEN)
    assert [("remove", work), ("remove", "title")] == [
        (o.op, o.path) for o in made.operations[0].patch
    ]
    executor = Executor(
        ScriptedTarget(inner).as_target(), policy=policy, timer=Timer(), clock=lambda: WHEN
    )
    execution = await executor.execute(made, current=inner.state())
    assert ["applied"] == [r.outcome for r in execution.results]
    (user,) = inner.state().users
    assert (None, None) == (user.emails, user.title)


# -- what the target kept --------------------------------------------------------------------


class DroppingTitles(ScriptedTarget):
    """A target that accepts titles and never keeps them, and answers updates without
    the resource (as a PATCH answered 204 does)."""

    async def create_user(self, user: User) -> User:
        created: User = await self.inner.create_user(attrs.evolve(user, title=None))
        return created

    async def update_user(self, user_id: str, change: Any) -> None:
        self.calls.append(("update_user", (user_id, change)))
        kept = [op for op in change if (op.path or "").lower() != "title"]
        if kept:
            await self.inner.update_user(user_id, kept)


async def test_what_a_created_resource_was_answered_without_is_unkept() -> None:
    """Each create answered without its title adds ``title`` dropped to
    ``Execution.unkept``, and says so in the operation's result."""
    target = DroppingTitles()
    execution = await execute(target, plan_for(target.inner, desired(2)))
    assert (
        (Observation("User", "title", "dropped"),) * 2,
        ["the target did not keep title (dropped)"] * 2,
    ) == (execution.unkept, [r.reason for r in execution.results])


async def test_an_update_answered_without_the_resource_is_read_back() -> None:
    """An update answered without a body is read back once (a GET), and what that
    read shows not kept is unkept: the title here, not the display name."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0", title="Old")])
    target = DroppingTitles(inner)
    user = User(user_name="user0", external_id="e0", title="Guide", display_name="Zed")
    wanted = DesiredState(users=[DesiredUser(key="e0", user=user)])
    execution = await execute(target, plan_for(inner, wanted))
    assert ((Observation("User", "title", "changed"),), 1, "Zed") == (
        execution.unkept,
        target.count("get_user"),
        inner.state().users[0].display_name,
    )


async def test_writes_are_not_checked_when_told_not_to() -> None:
    """``verify_writes=False``: no read-back, nothing unkept."""
    inner = memory_target(users=[User(user_name="user0", external_id="e0", title="Old")])
    target = DroppingTitles(inner)
    made = plan_for(inner, desired(2))
    execution = await execute(target, made, settings=ApplyPolicy(verify_writes=False))
    assert ((), 0, ["applied", "applied"]) == (
        execution.unkept,
        target.count("get_user"),
        [r.outcome for r in execution.results],
    )
