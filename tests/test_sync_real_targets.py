"""Convergence on targets that do not keep what they are told, through the public Provisioner.

Each quirk of real providers alone, and all of them together, on ScimTestServer:
cycle 1 creates everything; from cycle 3 at the latest a cycle that changes nothing
plans nothing and sends no write; 20 changed titles on a target that keeps titles
are 20 writes; 10 leavers are deactivated; an empty source deprovisions no one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from _filter_refusing import RefusingFilteredPaths
from _home_email_dropping import DroppingHomeEmails
from _members_unlisted import UnlistedMembers
from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient, RequestDetails
from scimsync.engine import Policy
from scimsync.mapping import Mapping, lower, template
from scimsync.models import Group, User
from scimsync.retry import no_waits
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, MemoryStateStore, SqliteStateStore, SyncReport
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "real-targets-token"
USERS = 60
GROUPS = 4
WRITES = ("POST", "PUT", "PATCH", "DELETE")

MAPPING = Mapping(
    users={
        "userName": lower("email"),
        "name.givenName": "given",
        "name.familyName": "family",
        "displayName": template("{given} {family}"),
        "title": "title",
        'emails[type eq "work"].value': lower("email"),
    },
    member_of="group",
)

# 10 leavers of 60 is more than the default 10 %.
POLICY = Policy(max_deprovisions_percent=20, max_source_shrink=20)

LEGACY_PAGING = Quirks(
    items_per_page_echoes_count=True, start_index_past_end_restarts=True, page_size_cap=20
)

QUIRKS: dict[str, Quirks] = {
    "rfc": Quirks(),
    "title dropped": Quirks(dropped_attributes=("title",)),
    "emails.type dropped": Quirks(dropped_attributes=("emails.type",)),
    "add refused": Quirks(patch_add_refused_for=("User",)),
    "replace refused": Quirks(patch_replace_refused_for=("User",)),
    "PATCH refused for groups": Quirks(patch_refused_for=("Group",)),
    "PATCH refused for users": Quirks(patch_refused_for=("User",)),
    "externalId filter refused": Quirks(unfilterable_attributes=("externalId",)),
    "externalId filter ignored": Quirks(
        unfilterable_attributes=("externalId",), unsupported_filter_answer="ignore"
    ),
    "locked writes": Quirks(locked_writes_rate=0.1, locked_writes_seed=7),
    "legacy paging": LEGACY_PAGING,
    "no totalResults": Quirks(discovery_total_results=False, listing_total_results=False),
    "no totalResults, pages of 20": Quirks(
        discovery_total_results=False, listing_total_results=False, page_size_cap=20
    ),
    "lossy": Quirks.profile("lossy"),
    "all together": attrs.evolve(
        Quirks.profile("lossy"),
        patch_refused_for=("Group",),
        listing_total_results=False,
        items_per_page_echoes_count=True,
        start_index_past_end_restarts=True,
        page_size_cap=20,
    ),
}


def people(count: int = USERS, prefix: str = "") -> list[dict[str, Any]]:
    """User i is in group i % 4, with title T<i % 5>."""
    return [
        {
            "id": f"{prefix}e{i}",
            "email": f"{prefix}User{i}@Example.com",
            "given": "Given",
            "family": f"Family{i}",
            "title": f"T{i % 5}",
            "group": f"{prefix}g{i % GROUPS}",
        }
        for i in range(count)
    ]


class Rig:
    """A provisioner from an editable source into a SCIM service, cycle by cycle, counting
    the write requests the client sent (and those answered with success)."""

    def __init__(
        self,
        quirks: Quirks = Quirks(),  # noqa: B008 - frozen
        state: Any = None,
        server: ScimTestServer | None = None,
        *,
        url: str | None = None,
        prefix: str = "",
        wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.sent: list[RequestDetails] = []
        if url is None:
            self.server: ScimTestServer | None = server or ScimTestServer(
                token=TOKEN, quirks=quirks
            )
            server = self.server
            http = (
                server.async_client()
                if wrap is None
                else httpx.AsyncClient(
                    transport=wrap(server.async_transport()),
                    base_url=server.in_process_url,
                    headers=server.headers,
                )
            )
            self.client = AsyncScimClient(
                http=http,
                auth=BearerToken(TOKEN),
                on_request=[self.sent.append],
            )
        else:
            self.server = None
            self.client = AsyncScimClient(url, on_request=[self.sent.append])
        self.records = people(prefix=prefix)
        self.prefix = prefix
        self.target = ScimTarget(self.client)
        self.provisioner = Provisioner(
            MemorySource(users=self.records),
            MAPPING,
            self.target,
            POLICY,
            state=state if state is not None else MemoryStateStore(),
            apply_policy=ApplyPolicy(max_create_attempts=5),
            full_cycle_every=None,
        )

    async def cycle(self) -> tuple[SyncReport, Counter[str]]:
        """One full cycle; the report and the write requests sent (retries included)."""
        self.provisioner.source = MemorySource(users=self.records)
        self.sent.clear()
        report = await self.provisioner.arun_once(full=True)
        writes = Counter(d.method for d in self.sent if d.method in WRITES)
        return report, writes

    def kept(self) -> Counter[str]:
        """Write requests of the last cycle answered with success."""
        return Counter(
            d.method
            for d in self.sent
            if d.method in WRITES and d.status is not None and d.status < 300
        )

    async def users(self) -> list[User]:
        """This rig's users on the target."""
        listed = await self.client.list_all(User)
        return [u for u in listed if (u.external_id or "").startswith(f"{self.prefix}e")]

    async def groups(self) -> list[Group]:
        """This rig's groups on the target, with their members."""
        listed = await self.client.list_all(Group, attributes=["displayName", "members"])
        return [g for g in listed if (g.display_name or "").startswith(f"{self.prefix}g")]


async def converge(rig: Rig, cycles: int = 3) -> list[tuple[SyncReport, Counter[str]]]:
    return [await rig.cycle() for _ in range(cycles)]


async def scenario(rig: Rig, *, keeps_titles: bool = True) -> None:
    """The story every target must pass (see the module docstring)."""
    prefix = rig.prefix
    reports = await converge(rig)
    first, _ = reports[0]
    assert {"create": USERS + GROUPS} == {k: v for k, v in first.planned.items() if k == "create"}
    users = await rig.users()
    assert sorted(r["email"].lower() for r in rig.records) == sorted(
        u.user_name or "" for u in users
    )
    by_id = {u.id: u.user_name for u in users}
    assert {
        f"{prefix}g{g}": {f"{prefix}user{i}@example.com" for i in range(g, USERS, GROUPS)}
        for g in range(GROUPS)
    } == {
        group.display_name: {by_id[m.value] for m in group.members or ()}
        for group in await rig.groups()
    }
    third, third_writes = reports[2]
    assert ({}, Counter()) == (third.planned, third_writes), "\n\n".join(str(r) for r, _ in reports)

    # 20 new titles: one write each where the target keeps titles.
    for record in rig.records[:20]:
        record["title"] = "Lead"
    changed, _ = await rig.cycle()
    if keeps_titles:
        assert {"update": 20} == changed.planned
        assert 20 == sum(rig.kept().values())
        assert 20 == sum(u.title == "Lead" for u in await rig.users())
    else:
        assert {} == changed.planned
    again, again_writes = await rig.cycle()
    assert ({}, Counter()) == (again.planned, again_writes)

    # Drift on what the target keeps is still corrected: someone renames a user there.
    drifted = (await rig.users())[0]
    await rig.client.replace(attrs.evolve(drifted, display_name="Someone"))
    corrected, _ = await rig.cycle()
    assert {"update": 1} == corrected.planned, str(corrected)
    assert "Someone" not in {u.display_name for u in await rig.users()}

    # 10 leavers are deactivated while 3 other records are invalid: those 3 only are kept.
    del rig.records[-10:]
    spoiled = rig.records[20:23]
    originals = [record["email"] for record in spoiled]
    for record in spoiled:
        record["email"] = "bad\x00@example.com"
    left, _ = await rig.cycle()
    assert 10 == left.planned.get("deactivate"), str(left)
    assert sorted(r["id"] for r in spoiled) == sorted(p.source_key for p in left.protected)
    inactive = {u.user_name for u in await rig.users() if u.active is False}
    assert {f"{prefix}user{i}@example.com" for i in range(USERS - 10, USERS)} == inactive
    for record, email in zip(spoiled, originals, strict=True):
        record["email"] = email
    settled, settled_writes = await rig.cycle()
    assert ({}, Counter()) == (settled.planned, settled_writes), str(settled)

    # An empty source deprovisions no one.
    rig.records.clear()
    empty, _ = await rig.cycle()
    assert (True, 0) == (empty.blocked, sum(rig.kept().values()))


@pytest.mark.parametrize("name", sorted(QUIRKS))
async def test_a_quirky_target_settles_and_still_takes_changes(name: str) -> None:
    """Cycle 1 creates everyone; from cycle 3 on a no-change cycle plans nothing and
    sends no write; 20 new titles are 20 writes where titles are kept; 10 leavers are
    deactivated; an empty source deprovisions no one."""
    quirks = QUIRKS[name]
    rig = Rig(quirks)
    async with rig.client:
        with no_waits():
            await scenario(
                rig, keeps_titles="title" not in {p.lower() for p in quirks.dropped_attributes}
            )


@pytest.mark.parametrize("learned_before", [False, True])
async def test_a_deactivation_the_target_does_not_keep_fails_on_every_cycle(
    learned_before: bool,
) -> None:
    """A target that answers 2xx and ignores ``active``: a leaver's deactivation fails,
    saying why, on every cycle (a non-zero exit), and is never learned away: not even
    from a state an earlier version taught that the target does not keep it."""
    state = MemoryStateStore()
    rig = Rig(Quirks(dropped_attributes=("active",)), state=state)
    async with rig.client:
        with no_waits():
            await converge(rig, cycles=2)
            del rig.records[-2:]
            if learned_before:
                stored = state.load()
                users = stored.state.users
                for _ in range(2):
                    users = users.learn([("active", "dropped")], None)
                assert "active" in users.ignored_paths()
                state.save(attrs.evolve(stored, state=attrs.evolve(stored.state, users=users)))
            for _ in range(3):
                report, _ = await rig.cycle()
                assert 2 == report.planned.get("deactivate"), str(report)
                assert (2, 1) == (len(report.failures), report.exit_code), str(report)
                assert all("the account is still active" in r.reason for r in report.failures), str(
                    report
                )
        leavers = [u for u in await rig.users() if u.external_id in {"e58", "e59"}]
    assert [True, True] == [u.active is not False for u in leavers]
    if not learned_before:
        assert "active" not in state.load().state.users.unkept


async def test_scim2_server_settles_and_still_takes_changes(scim2_asgi_url: str) -> None:
    """The same story on scim2-server, an independent implementation that answers PATCH
    with 204 and no body: each update is read back to check it was kept."""
    rig = Rig(url=scim2_asgi_url, prefix=f"rt{uuid.uuid4().hex[:6]}-")
    async with rig.client:
        await scenario(rig)


async def test_what_was_learned_survives_a_restart(tmp_path: Path) -> None:
    """A second process with the same state store sends no request the first one learned
    the target refuses, and no write of what it learned the target does not keep."""
    quirks = Quirks(dropped_attributes=("title",), patch_refused_for=("Group",))
    first = Rig(quirks, state=SqliteStateStore(tmp_path / "state.db"))
    async with first.client:
        report, _ = await first.cycle()
        # Members of created groups are added with PATCH: refused once, then PUT.
        assert 2 == len(report.target_warnings), str(report)
    second = Rig(quirks, state=SqliteStateStore(tmp_path / "state.db"), server=first.server)
    second.records.append(people(USERS + 1)[-1])
    async with second.client:
        report, writes = await second.cycle()
    refused = [d for d in second.sent if d.status == 501]
    assert ([], ()) == (refused, report.target_warnings), str(report)
    assert {"create": 1, "add_members": 1} == report.planned
    assert Counter({"POST": 1, "PUT": 1}) == writes


async def test_group_members_shown_only_by_id_are_compared_and_removed() -> None:
    """A target whose group listings never show members (asked for or not), and whose
    groups read by id do: members are read group by group, a user moved to another
    group leaves the old one, and a settled cycle sends nothing."""
    rig = Rig(wrap=UnlistedMembers)
    async with rig.client:
        with no_waits():
            first, second = await converge(rig, cycles=2)
            rig.records[1]["group"] = "g2"
            moved, _ = await rig.cycle()
            settled, settled_writes = await rig.cycle()
    assert ({}, Counter()) == (second[0].planned, second[1]), str(second[0])
    assert {"remove_members": 1, "add_members": 1} == moved.planned, str(moved)
    assert ({}, Counter()) == (settled.planned, settled_writes), str(settled)
    assert rig.server is not None
    names = {u.id: u.external_id for u in rig.server.users()}
    held = {g.display_name: {names[m.value] for m in g.members or ()} for g in rig.server.groups()}
    assert ("e1" in held["g2"], "e1" in held["g1"]) == (True, False)
    reports = [first[0], second[0], moved, settled]
    said = [w for r in reports for w in r.target_warnings if "read by id" in w]
    assert 1 == len(said), [r.target_warnings for r in reports]


async def test_empty_groups_listed_without_members_cost_a_few_reads() -> None:
    """Groups that are all empty (members left out, as RFC 7643 lets an empty attribute
    be): three are read by id to tell, not every one, and they are listed as empty."""
    rig = Rig(wrap=UnlistedMembers)
    assert rig.server is not None
    rig.server.seed(groups=[Group(display_name=f"empty{i}") for i in range(10)])
    async with rig.client:
        rig.sent.clear()
        listing = await rig.target.list_groups()
    by_id = [d for d in rig.sent if d.method == "GET" and "/Groups/" in d.url]
    assert (True, 3) == (listing.complete, len(by_id))
    assert {()} == {g.members for g in listing.resources}
    assert [] == rig.target.facts.deviations


async def test_a_target_refusing_filtered_patch_paths_converges() -> None:
    """Against a target refusing value-filter PATCH paths: a changed work email (with a
    new title) and a user moved to another group are written with PUT, the title and
    the removal from the old group included; the next cycle plans nothing; a later
    email change sends no refused PATCH, and a title change alone is still a PATCH."""
    rig = Rig(wrap=RefusingFilteredPaths)
    async with rig.client:
        with no_waits():
            await converge(rig, cycles=1)
            rig.records[0].update(email="Moved0@Example.com", title="Lead")
            rig.records[1]["group"] = "g2"
            changed, _ = await rig.cycle()
            refused = Counter(d.url.rsplit("/", 2)[-2] for d in rig.sent if d.status == 400)
            settled, settled_writes = await rig.cycle()
            rig.records[2]["email"] = "Moved2@Example.com"
            rig.records[3]["title"] = "Boss"
            later, later_writes = await rig.cycle()
            later_refused = [d for d in rig.sent if d.status == 400]
            users = {u.external_id: u for u in await rig.users()}
            groups = {
                g.display_name: {m.value for m in g.members or ()} for g in await rig.groups()
            }
    assert ({"update": 1, "remove_members": 1, "add_members": 1}, ()) == (
        changed.planned,
        changed.failures,
    ), str(changed)
    assert Counter({"Users": 2, "Groups": 1}) == refused  # a style tried again for the user
    assert 2 == len(changed.target_warnings), changed.target_warnings
    assert ({}, Counter()) == (settled.planned, settled_writes), str(settled)
    assert ([], Counter({"PUT": 1, "PATCH": 1})) == (later_refused, later_writes), str(later)
    assert {"update": 2} == later.planned
    e0, e1, e2, e3 = (users[f"e{i}"] for i in range(4))
    assert (
        ["moved0@example.com"],
        "Lead",
        ["moved2@example.com"],
        "Boss",
    ) == (
        [e.value for e in e0.emails or ()],
        e0.title,
        [e.value for e in e2.emails or ()],
        e3.title,
    )
    assert (e1.id not in groups["g1"], e1.id in groups["g2"]) == (True, True)


async def test_a_home_email_not_kept_is_learned_alone_and_work_emails_still_sync(
    tmp_path: Path,
) -> None:
    """A target that never stores home emails: the mapping writes work and home emails
    with value filters. The first cycle learns ``emails[type eq "home"]`` (said once,
    kept in SQLite), not ``emails``; the next plans nothing; a changed work email is
    then planned, written and kept, and the cycle after plans nothing again."""
    server = ScimTestServer(token=TOKEN)
    records = [
        {"id": f"e{i}", "email": f"User{i}@Example.com", "home": f"user{i}@home.example"}
        for i in range(3)
    ]
    http = httpx.AsyncClient(
        transport=DroppingHomeEmails(server.async_transport()),
        base_url=server.in_process_url,
        headers=server.headers,
    )
    mapping = Mapping(
        users={
            "userName": lower("email"),
            'emails[type eq "work"].value': lower("email"),
            'emails[type eq "home"].value': "home",
        }
    )
    provisioner = Provisioner(
        MemorySource(users=records),
        mapping,
        ScimTarget(AsyncScimClient(http=http, auth=BearerToken(TOKEN))),
        Policy(),
        state=SqliteStateStore(tmp_path / "state.db"),
        full_cycle_every=None,
    )

    async def cycle() -> SyncReport:
        provisioner.source = MemorySource(users=records)
        return await provisioner.arun_once(full=True)

    async with http:
        first = await cycle()
        learned = provisioner.learned()
        settled = await cycle()
        records[0]["email"] = "Moved0@Example.com"
        changed = await cycle()
        after = await cycle()
        provisioner.forget(['emails[type eq "home"]'])
        asked_again = await provisioner.aplan()
    home = 'emails[type eq "home"]'
    assert ({"create": 3}, ()) == (first.planned, first.failures), str(first)
    [warning] = first.target_warnings
    assert f"does not keep User {home} (seen 3 times): it drops it" in warning
    assert (f"User {home}: the target drops it (seen 3 times)",) == learned
    assert ({}, ()) == (settled.planned, settled.target_warnings), str(settled)
    assert ({"update": 1}, (), ()) == (
        changed.planned,
        changed.failures,
        changed.target_warnings,
    ), str(changed)
    assert ({}, ()) == (after.planned, after.target_warnings), str(after)
    e0 = next(u for u in server.users() if u.external_id == "e0")
    assert [("work", "moved0@example.com")] == [(e.type, e.value) for e in e0.emails or ()]
    assert {"update": 3} == asked_again.summary()


def test_locked_writes_are_not_retried_blindly() -> None:
    """A write answered 500 "database is locked" is looked up before it is sent again:
    no user is created twice."""
    rig = Rig(Quirks(locked_writes_rate=0.3, locked_writes_seed=3))

    async def run() -> None:
        async with rig.client:
            with no_waits():
                await converge(rig)

    asyncio.run(run())
    assert rig.server is not None
    names = Counter(u.user_name for u in rig.server.users())
    assert [] == [n for n, c in names.items() if c > 1]
    assert USERS == len(names)


async def test_what_was_learned_is_listed_and_forgotten_on_request() -> None:
    """``learned()`` lists the paths the target does not keep and what it refuses;
    ``forget(paths)`` asks again about those paths only (the next cycle writes the
    titles again), ``forget()`` about everything."""
    rig = Rig(Quirks(dropped_attributes=("title",), patch_refused_for=("Group",)))
    async with rig.client:
        with no_waits():
            first, _ = await rig.cycle()
            learned = rig.provisioner.learned()
            rig.provisioner.forget(["TITLE"], resource_type="User")
            after_forget = rig.provisioner.learned()
            again, _ = await rig.cycle()
            rig.provisioner.forget()
    put = "the target refuses PATCH on Groups: they are written with PUT"
    assert (f"User title: the target drops it (seen {USERS} times)", put) == learned
    assert (put,) == after_forget
    assert {"update": USERS} == again.planned, str(again)
    assert () == rig.provisioner.learned()
    assert any("does not keep User title" in w for w in first.target_warnings)


async def test_reports_count_the_requests_on_the_wire() -> None:
    """Without a RequestStats, a report counts the HTTP requests its ScimTarget's client
    sent (listing pages, read-backs and retries included), not the target calls."""
    rig = Rig(Quirks(page_size_cap=20))
    assert rig.server is not None
    async with rig.client:
        with no_waits():
            first, _ = await rig.cycle()
            rig.server.faults = Faults(kinds=["503"], limit=1, methods=["GET"])
            second, _ = await rig.cycle()
    assert (len(rig.sent), 1) == (second.requests, second.retries)
    assert first.requests > USERS + GROUPS  # the creates, the members, the pages
