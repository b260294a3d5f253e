"""The pure parts of ``scimsync check``'s sample and probe: what the probe sends for a
mapping (values made up per attribute type, constants and keys as they are, what is
left out and why), and how the sample names what no account holds."""

from __future__ import annotations

from typing import Any

from scimsync.cli._probe import ProbeNames, probe_data, sent_paths
from scimsync.cli._sample import absent_attributes, compared_entries
from scimsync.mapping import Mapping, const, keep_when_empty, lower, ref
from scimsync.schema import CORE_SCHEMAS

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
NAMES = ProbeNames.new("0a1b2c3d")

MAPPING = Mapping(
    users={
        "userName": lower("email"),
        "name.givenName": "first",
        "nickName": keep_when_empty("nick"),
        "profileUrl": "url",
        "userType": "kind",
        "title": const("Staff"),
        "locale": "locale",
        'emails[type eq "work"].value': lower("email"),
        'emails[type eq "work"].primary': True,
        'phoneNumbers[type eq "mobile"].value': "phone",
        f"{ENTERPRISE}:employeeNumber": "number",
        f"{ENTERPRISE}:manager.value": ref("manager"),
        "active": True,
        "externalId": None,
    },
    create_only={"password": "initial"},
    groups={"displayName": "name"},
)


def test_the_probe_user_carries_every_mapped_attribute() -> None:
    """Made-up values by type and name, constants as mapped, the probe's own userName;
    the manager reference, the password and the omitted externalId are not sent, and
    the first two are said to be left out."""
    data, left_out = probe_data(MAPPING, "User", CORE_SCHEMAS, NAMES)
    assert {
        "userName": "scimsync-probe-0a1b2c3d@example.invalid",
        "name": {"givenName": "scimsync-probe givenName"},
        "nickName": "scimsync-probe nickName",
        "profileUrl": "https://example.invalid/scimsync-probe-0a1b2c3d",
        "userType": "scimsync-probe userType",
        "title": "Staff",
        "locale": "en-US",
        "emails": [
            {"type": "work", "value": "scimsync-probe-0a1b2c3d@example.invalid", "primary": True}
        ],
        "phoneNumbers": [{"type": "mobile", "value": "+15555550100"}],
        ENTERPRISE: {"employeeNumber": "scimsync-probe employeeNumber"},
        "active": True,
    } == data
    assert [
        ("User", f"{ENTERPRISE}:manager.value", "another user's id"),
        ("User", "password", "never returned"),
    ] == [(n.resource_type, n.path, n.reason) for n in left_out]
    assert [
        "active",
        "emails.primary",
        "emails.type",
        "emails.value",
        "locale",
        "name.givenName",
        "nickName",
        "phoneNumbers.type",
        "phoneNumbers.value",
        "profileUrl",
        "title",
        f"{ENTERPRISE}:employeeNumber",
        "userName",
        "userType",
    ] == sent_paths(data)


def test_the_probe_group_takes_the_probe_name_and_key() -> None:
    """The group's displayName is the probe's name, its externalId the probe's key."""
    data, left_out = probe_data(MAPPING, "Group", CORE_SCHEMAS, NAMES)
    assert (
        {"displayName": "scimsync-probe-0a1b2c3d", "externalId": "scimsync-probe-0a1b2c3d"},
        [],
    ) == (data, left_out)


def test_the_sample_names_the_part_no_account_holds() -> None:
    """For a filtered path: no email at all, no email with a type, emails with other
    types, a work email without the sub-attribute; a plain path nobody holds; the
    password (never returned) and the omitted externalId are not compared."""
    entries = compared_entries(MAPPING, "User", CORE_SCHEMAS)
    assert "password" not in [e.path.text for e in entries]
    assert "externalId" not in [e.path.text for e in entries]
    work = [e for e in entries if e.path.text == 'emails[type eq "work"].value']

    def missing(*users: dict[str, Any]) -> list[str]:
        return [a.what for a in absent_attributes(work, "User", users)]

    assert ["emails"] == missing({"userName": "a"}, {"userName": "b", "emails": []})
    assert ["emails.type"] == missing({"emails": [{"value": "a@example.com"}]})
    assert ['emails with type "work"'] == missing({"Emails": [{"value": "a", "TYPE": "home"}]})
    assert ["emails.value"] == missing({"emails": [{"type": "Work"}]})
    assert [] == missing(
        {"emails": [{"type": "home"}]}, {"emails": [{"type": "WORK", "value": "x"}]}
    )
    nick = [e for e in entries if e.path.text == "nickName"]
    assert [("User", "nickName", "nickName")] == [
        (a.resource_type, a.path, a.what) for a in absent_attributes(nick, "User", [{}])
    ]


def test_the_sample_reads_groups_with_members_when_they_cannot_be_left_out() -> None:
    """A target answering 400 to ``excludedAttributes=members``: the groups are read
    again without it, and only as many as asked."""
    import asyncio
    from types import SimpleNamespace

    from scimsync import Group
    from scimsync.cli._check import _read_sample
    from scimsync.errors import BadRequestError

    asked: list[list[str] | None] = []

    def iter_all(kind: type[Any], *, page_size: int, excluded_attributes: Any) -> Any:
        asked.append(excluded_attributes)

        async def resources() -> Any:
            if excluded_attributes is not None:
                raise BadRequestError(400, scim_type="invalidValue")
            for n in range(page_size + 3):
                yield Group(display_name=f"g{n}")

        return resources()

    runtime: Any = SimpleNamespace(client=SimpleNamespace(iter_all=iter_all))
    sample = asyncio.run(_read_sample(runtime, Group, 2))
    assert ([["members"], None], ["g0", "g1"]) == (asked, [g["displayName"] for g in sample])
