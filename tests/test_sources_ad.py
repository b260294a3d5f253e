"""LdapSource against an Active Directory-shaped LDAP server on 127.0.0.1 (see
``tests/_ad_server.py``): what OpenLDAP cannot show. Large groups answered in ranges,
update sequence numbers as the delta watermark, binary GUIDs, continuation
references, all through ldap3's real network code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from _ad_server import AdServer, Entry, running_ad
from scimsync.errors import SourceReadError
from scimsync.mapping import Mapping, ad_active
from scimsync.secrets import Secret
from scimsync.sources import IssueCode, LdapSource, Record, RecordIssue

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

pytest.importorskip("ldap3", reason="ldap3 (the ldap extra) is not installed")

pytestmark = pytest.mark.directory

BASE = "DC=corp,DC=example,DC=com"
STAFF = f"OU=Staff,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
SERVICE = f"CN=svc-scimsync,OU=Service Accounts,{BASE}"
PASSWORD = "Svc-pass-2024!"
RANGE = 500  # values of member per answer (AD: MaxValRange, 1500)
PEOPLE = 1100  # three ranges


def guid(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def user_dn(number: int) -> str:
    return f"CN=User {number},{STAFF}"


def group_dn(name: str) -> str:
    return f"CN={name},{GROUPS}"


def user(number: int, *, usn: int, disabled: bool = False) -> Entry:
    import uuid

    return {
        "objectClass": [b"top", b"person", b"user"],
        "objectGUID": [uuid.UUID(guid(number)).bytes_le],
        "sAMAccountName": [f"user{number}".encode()],
        "cn": [f"User {number}".encode()],
        "userAccountControl": [b"514" if disabled else b"512"],
        "uSNChanged": [str(usn).encode()],
    }


def group(number: int, name: str, members: Iterable[str], *, usn: int) -> Entry:
    import uuid

    return {
        "objectClass": [b"top", b"group"],
        "objectGUID": [uuid.UUID(guid(number)).bytes_le],
        "cn": [name.encode()],
        "member": [dn.encode() for dn in members],
        "uSNChanged": [str(usn).encode()],
    }


def directory() -> dict[str, Entry]:
    """PEOPLE staff (the last one disabled) and two contractors; "All Staff" holds every
    staff member and the "Contractors" group, which holds "All Staff" back (a cycle)."""
    entries: dict[str, Entry] = {}
    for number in range(1, PEOPLE + 3):
        entries[user_dn(number)] = user(number, usn=2000 + number, disabled=number == PEOPLE)
    contractors = [user_dn(PEOPLE + 1), user_dn(PEOPLE + 2), group_dn("All Staff")]
    everyone = [*(user_dn(n) for n in range(1, PEOPLE + 1)), group_dn("Contractors")]
    entries[group_dn("All Staff")] = group(900_001, "All Staff", everyone, usn=1500)
    entries[group_dn("Contractors")] = group(900_002, "Contractors", contractors, usn=1501)
    return entries


@pytest.fixture
def ad() -> Iterator[AdServer]:
    with running_ad(directory(), {SERVICE: PASSWORD}, max_range=RANGE) as server:
        yield server


def source(server: AdServer, **settings: Any) -> LdapSource:
    values: dict[str, Any] = {
        "base_dn": BASE,
        "bind_dn": SERVICE,
        "password": Secret(PASSWORD),
        "user_base": STAFF,
        "user_filter": "(&(objectClass=user)(objectClass=person))",
        "group_base": GROUPS,
        "group_filter": "(objectClass=group)",
        "attributes": ["sAMAccountName", "cn", "userAccountControl"],
        "key": "objectGUID",
        "delta": "uSNChanged",
    }
    values.update(settings)
    return LdapSource(server.url, **values)


def split(read: Iterable[Any]) -> tuple[dict[str, Record], dict[str, Record], list[RecordIssue]]:
    users: dict[str, Record] = {}
    groups: dict[str, Record] = {}
    issues: list[RecordIssue] = []
    for item in read:
        if isinstance(item, RecordIssue):
            issues.append(item)
        else:
            assert item.key is not None
            (users if item.kind == "user" else groups)[item.key] = item
    return users, groups, issues


def test_a_large_group_is_read_range_by_range(ad: AdServer) -> None:
    """A group of 1,101 members comes as member;range=0-499: the rest is fetched with
    base searches for the next ranges, and the group holds every member, its nested
    group's users included, through a cycle (All Staff in Contractors in All Staff)."""
    users, groups, issues = split(source(ad).read())
    assert ([], PEOPLE + 2) == (issues, len(users))
    everyone = {guid(n) for n in range(1, PEOPLE + 3)}
    assert everyone == set(groups[guid(900_001)].members)
    assert PEOPLE + 2 == len(groups[guid(900_001)].members)  # each once
    assert everyone == set(groups[guid(900_002)].members)
    ranges = [attrs for base, _, attrs, _ in ad.searches if base == group_dn("All Staff")]
    assert [("member;range=500-*",), ("member;range=1000-*",)] == ranges


def test_guids_are_keys_and_disabled_accounts_inactive(ad: AdServer) -> None:
    """objectGUID (16 bytes, little-endian fields) becomes the canonical GUID text, the
    key; the ACCOUNTDISABLE bit of userAccountControl maps to active false."""
    mapping = Mapping(users={"userName": "sAMAccountName", "active": ad_active()})
    desired = {
        u.key: u.user.active for u in mapping.map(source(ad, group_filter=None)).desired.users
    }
    assert (True, False) == (desired[guid(1)], desired[guid(PEOPLE)])


def test_pages_never_exceed_the_page_size(ad: AdServer) -> None:
    """Every search is paged (RFC 2696): no answer holds more than page_size entries,
    and the pages together hold every entry."""
    users, _, _ = split(source(ad, page_size=300, group_filter=None).read())
    assert PEOPLE + 2 == len(users)
    assert all(length <= 300 for length in ad.page_lengths)
    assert (PEOPLE + 2, 4) == (sum(ad.page_lengths), len(ad.page_lengths))


def test_continuation_references_are_not_followed(ad: AdServer) -> None:
    """AD ends a subtree search with references to its application partitions; with
    referrals off (the default) they are passed over: no issue, no other server."""
    ad.referral = f"ldap://DomainDnsZones.corp.example.com/DC=DomainDnsZones,{BASE}"
    users, groups, issues = split(source(ad).read())
    assert ([], PEOPLE + 2, 2) == (issues, len(users), len(groups))


def test_a_delta_read_reads_users_changed_since_the_usn(ad: AdServer) -> None:
    """A full read's watermark is the highestCommittedUSN taken before it; after one
    user changes, a delta read yields that user alone (and the groups, read whole)."""
    reader = source(ad)
    full = reader.read_changes(None)
    first = [item for item in full if isinstance(item, Record)]
    assert str(2000 + PEOPLE + 2) == full.watermark
    ad.modify(user_dn(7), cn=["Seven Renamed"])
    change = reader.read_changes(full.watermark, first)
    users, groups, issues = split(change)
    assert ([], [guid(7)]) == (issues, list(users))
    assert "Seven Renamed" == users[guid(7)]["cn"]
    assert 2 == len(groups)
    # Members are still named by key, from the DNs of the previous read.
    assert PEOPLE + 2 == len(groups[guid(900_001)].members)
    assert str(2000 + PEOPLE + 3) == change.watermark


def test_changes_made_during_a_read_are_read_next_time(ad: AdServer) -> None:
    """Users changed while the read is between pages are not missed, even one whose
    page went by before a later page brought a higher USN: the watermark is the USN
    from before the read, so the next delta read yields both."""
    reader = source(ad, page_size=300, group_filter=None)

    def change(page: int) -> None:
        if page == 1:  # user 1 was on page 1; user PEOPLE - 1 comes on page 4
            ad.modify(user_dn(1), cn=["Changed Mid-read"])
            ad.modify(user_dn(PEOPLE - 1), cn=["Changed Too"])

    ad.after_page = change
    full = reader.read_changes(None)
    users, _, _ = split(full)
    assert ("User 1", "Changed Too") == (users[guid(1)]["cn"], users[guid(PEOPLE - 1)]["cn"])
    ad.after_page = None
    changed, _, _ = split(reader.read_changes(full.watermark, list(users.values())))
    assert {"Changed Mid-read", "Changed Too"} == {r["cn"] for r in changed.values()}


def test_a_wrong_password_is_refused_without_showing_it(ad: AdServer) -> None:
    """AD's invalidCredentials answer becomes SourceReadError naming the server, not
    the password."""
    with pytest.raises(SourceReadError, match="cannot bind to") as raised:
        list(source(ad, password=Secret("Wrong-pass-99")).read())
    assert "Wrong-pass-99" not in str(raised.value)
    assert ad.url in str(raised.value)


def test_a_dropped_connection_between_ranges_makes_the_read_incomplete(ad: AdServer) -> None:
    """The server going away while the rest of a large group's members are fetched
    yields READ_INCOMPLETE for the groups: nobody is deprovisioned on that read."""
    original = ad._range

    def broken(name: str, values: list[bytes], low: int) -> bytes:
        if low > 0:
            raise ConnectionResetError("gone")  # the handler's socket closes
        return original(name, values, low)

    ad._range = broken  # type: ignore[method-assign]
    read = list(source(ad, timeout=5).read())
    incomplete = [i for i in read if isinstance(i, RecordIssue)]
    assert [IssueCode.READ_INCOMPLETE] == [i.code for i in incomplete]
    assert "group" == incomplete[0].kind
    result = Mapping(users={"userName": "sAMAccountName"}, groups={"displayName": "cn"}).map(read)
    assert False is result.desired.complete


def test_odd_entries_are_named_and_the_rest_flows(ad: AdServer) -> None:
    """A value that is not UTF-8 is an INVALID_VALUE issue naming the entry's DN and
    key; an entry without the key attribute is a record without a key (the mapping
    names it by DN); an attribute name too long for the fast path is still read. The
    other entries are read as usual."""
    bad = user(PEOPLE + 10, usn=10)
    bad["cn"] = [b"Caf\xe9"]  # Latin-1, not UTF-8
    keyless = user(PEOPLE + 11, usn=11)
    del keyless["objectGUID"]
    long_name = "x" * 130
    odd = user(PEOPLE + 12, usn=12)
    odd[long_name] = [b"long"]
    ad.entries.update({user_dn(PEOPLE + 10): bad, user_dn(PEOPLE + 11): keyless})
    ad.entries[user_dn(PEOPLE + 12)] = odd
    read = list(
        source(ad, group_filter=None, attributes=["sAMAccountName", "cn", long_name]).read()
    )
    issues = [i for i in read if isinstance(i, RecordIssue)]
    assert [(IssueCode.INVALID_VALUE, guid(PEOPLE + 10))] == [(i.code, i.key) for i in issues]
    assert "cn" in issues[0].reason
    assert user_dn(PEOPLE + 10) in str(issues[0].origin)
    records = [i for i in read if isinstance(i, Record)]
    assert [user_dn(PEOPLE + 11)] == [r["dn"] for r in records if r.key is None]
    assert "long" == next(r for r in records if r.key == guid(PEOPLE + 12))[long_name]
    assert PEOPLE + 4 == len(records)
