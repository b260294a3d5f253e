"""LdapSource against a real OpenLDAP slapd on 127.0.0.1 (see ``tests/_directory.py``):
binds, TLS, paging, keys, nested groups, bad input, delta reads."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import pytest

from _directory import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    READER_DN,
    READER_PASSWORD,
    SUFFIX,
    Slapd,
    SlapdInstall,
    find_slapd,
    group,
    group_dn,
    guid_bytes,
    people_dn,
    person,
    running_slapd,
)
from scimsync.errors import ConfigurationError, SourceReadError
from scimsync.mapping import Mapping, ad_active, dn_rdn, ldap_locked
from scimsync.secrets import Secret
from scimsync.sources import IssueCode, LdapFilter, LdapSource, Record, RecordIssue

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.directory

ANN = "00000000-0000-4000-8000-000000000001"
BOB = "00000000-0000-4000-8000-000000000002"
CARL = "00000000-0000-4000-8000-000000000003"
DORA = "00000000-0000-4000-8000-000000000004"
AD_ENABLED = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
AD_DISABLED = "11223344-5566-7788-99aa-bbccddeeff00"
SPECIAL_UID = "o'neil, (x)*\\"


def uuid_of(key: str) -> tuple[str, str]:
    return ("entryUUID", key)


def stamp(day: int) -> tuple[str, str]:
    return ("modifyTimestamp", f"202001{day:02d}000000Z")


SEED = (
    person("ann", given="Ann", sn="Lee", mail=["ann@example.org", "a.lee@example.org"],
           extra=[uuid_of(ANN), stamp(1)])
    + person("bob", given="Bob", sn="Ray", mail=["bob@example.org"],
             extra=[uuid_of(BOB), stamp(2), ("pwdAccountLockedTime", "20240101000000Z")])
    + person(SPECIAL_UID, given="Carl", sn="O'Neil", cn="O'Neil, Carl",
             extra=[uuid_of(CARL), stamp(3)])
    + person("dora", given="Dora", sn="Kay", extra=[uuid_of(DORA), stamp(4)])  # no mail
    + group("eng", [people_dn("ann")])
    + group("ops", [people_dn("bob"), group_dn("eng")])  # nested: eng's members too
    + group("loop-a", [group_dn("loop-b"), people_dn("dora")])
    + group("loop-b", [group_dn("loop-a")])  # a cycle
    + group("strays", [people_dn("ann"), f"uid=ghost,ou=People,{SUFFIX}"])
)  # fmt: skip

AD_SEED = (
    person("ad-enabled", given="Eve", sn="Ad", ou="People",
           extra=[("objectClass", "testAdUser"), ("objectGUID", guid_bytes(AD_ENABLED)),
                  ("userAccountControl", "512"), ("accountExpires", "0"),
                  ("sAMAccountName", "eve"), ("uSNChanged", "100")])
    + person("ad-disabled", given="Fay", sn="Ad", ou="People",
             extra=[("objectClass", "testAdUser"), ("objectGUID", guid_bytes(AD_DISABLED)),
                    ("userAccountControl", "514"), ("accountExpires", "9223372036854775807"),
                    ("sAMAccountName", "fay"), ("uSNChanged", "200")])
)  # fmt: skip


@pytest.fixture(scope="module")
def slapd_install() -> SlapdInstall:
    """This machine's OpenLDAP, or a skip saying why there is none."""
    found = find_slapd()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def directory(slapd_install: SlapdInstall) -> Iterator[Slapd]:
    """One slapd for the tests that only read."""
    with running_slapd(slapd_install, SEED + AD_SEED) as server:
        yield server


def source(server: Slapd, **settings: Any) -> LdapSource:
    """A source reading ou=People / ou=Groups as the reader account, over plain loopback."""
    values: dict[str, Any] = {
        "base_dn": SUFFIX,
        "bind_dn": READER_DN,
        "password": Secret(READER_PASSWORD),
        "user_base": f"ou=People,{SUFFIX}",
        "group_base": f"ou=Groups,{SUFFIX}",
        "attributes": ["uid", "cn", "givenName", "sn", "mail", "pwdAccountLockedTime"],
    }
    values.update(settings)
    return LdapSource(server.url, **values)


def records(read: Any) -> dict[str, Record]:
    return {item.key: item for item in read if isinstance(item, Record) and item.key}


def issues(read: Any) -> list[RecordIssue]:
    return [item for item in read if isinstance(item, RecordIssue)]


# -- reading ---------------------------------------------------------------------------


def test_users_are_keyed_by_entry_uuid_with_their_attributes(directory: Slapd) -> None:
    """Each user is a record keyed by entryUUID, holding the attributes asked for under
    those names, its DN, multi-valued values as lists, and nothing for a missing one."""
    users = {k: r for k, r in records(source(directory).read()).items() if r.kind == "user"}
    assert {ANN, BOB, CARL, DORA} <= set(users)
    ann = users[ANN]
    assert {
        "dn": people_dn("ann"),
        "uid": "ann",
        "cn": "Ann Lee",
        "givenName": "Ann",
        "sn": "Lee",
        "mail": ["ann@example.org", "a.lee@example.org"],
    } == dict(ann.attributes)
    assert ["bob@example.org"] == users[BOB]["mail"]  # a list even with one value
    assert "mail" not in users[DORA]
    assert f"{directory.url} {people_dn('ann')}" == ann.origin


def test_special_characters_in_a_dn_are_read_back_as_they_are(directory: Slapd) -> None:
    """A uid holding a comma, quote, parentheses, star and backslash is read back
    unchanged, and its escaped DN names the entry."""
    carl = records(source(directory).read())[CARL]
    assert (SPECIAL_UID, "O'Neil, Carl") == (carl["uid"], carl["cn"])
    assert "O'Neil, Carl" == dn_rdn("cn")(carl)


def test_paged_results_read_every_entry_one_page_at_a_time(directory: Slapd) -> None:
    """With a page of one entry, every user and group is still read, each once."""
    whole = [str(i.key) for i in source(directory).read() if isinstance(i, Record)]
    paged = [str(i.key) for i in source(directory, page_size=1).read() if isinstance(i, Record)]
    assert sorted(whole) == sorted(paged)
    assert len(set(paged)) == len(paged)


def test_nested_groups_are_flattened_and_cycles_survived(directory: Slapd) -> None:
    """A group's members include its nested groups' users; a cycle of groups gives each
    group the users of both, once."""
    groups = {r["cn"]: r for r in records(source(directory).read()).values() if r.kind == "group"}
    assert (ANN,) == groups["eng"].members
    assert {BOB, ANN} == set(groups["ops"].members)
    assert (DORA,) == groups["loop-a"].members
    assert (DORA,) == groups["loop-b"].members


def test_a_member_dn_that_is_no_user_read_is_left_out_with_an_issue(directory: Slapd) -> None:
    """A member DN naming nobody read is left out of the group, and an UNKNOWN_MEMBER
    issue names the group and the DN."""
    read = list(source(directory).read())
    strays = next(r for r in records(read).values() if r.get("cn") == "strays")
    assert (ANN,) == strays.members
    found = [i for i in issues(read) if i.key == strays.key]
    assert [IssueCode.UNKNOWN_MEMBER] == [i.code for i in found]
    assert "uid=ghost" in found[0].reason


def test_filter_values_are_escaped_so_a_value_cannot_widen_the_search(directory: Slapd) -> None:
    """A value holding filter syntax ("*)(uid=*") matches nobody instead of everyone,
    and a uid holding every special character is found by its exact value."""
    hostile = LdapFilter.all_of("(objectClass=inetOrgPerson)", LdapFilter.eq("uid", "*)(uid=*"))
    assert {} == records(source(directory, user_filter=hostile, group_filter=None).read())
    exact = LdapFilter.eq("uid", SPECIAL_UID)
    assert [CARL] == list(records(source(directory, user_filter=exact, group_filter=None).read()))


def test_a_filter_setting_with_unbalanced_parentheses_is_refused() -> None:
    """Filter text from a setting whose parentheses do not balance is refused before any
    connection, naming the filter."""
    with pytest.raises(ConfigurationError, match="do not balance"):
        LdapSource("ldap://127.0.0.1:1", base_dn=SUFFIX, user_filter="(&(uid=a)(cn=b)")


def test_active_directory_keys_flags_and_expiry_map_to_scim(directory: Slapd) -> None:
    """With key="objectGUID" the binary GUID becomes its canonical text, and ad_active
    reads the disabled bit of userAccountControl (514) as active false."""
    ad = source(
        directory,
        key="objectGUID",
        user_filter="(objectClass=testAdUser)",
        group_filter=None,
        attributes=["sAMAccountName", "userAccountControl", "accountExpires", "objectGUID"],
    )
    users = records(ad.read())
    assert {AD_ENABLED, AD_DISABLED} == set(users)
    assert AD_ENABLED == users[AD_ENABLED]["objectGUID"]
    mapping = Mapping(users={"userName": "sAMAccountName", "active": ad_active()})
    desired = {u.key: u.user.active for u in mapping.map(ad).desired.users}
    assert {AD_ENABLED: True, AD_DISABLED: False} == desired


def test_a_locked_openldap_account_maps_to_inactive(directory: Slapd) -> None:
    """pwdAccountLockedTime (the password policy's lock) read by name maps to active
    false through ldap_locked."""
    mapping = Mapping(
        users={"userName": "uid", "active": lambda r: not ldap_locked()(r)},
    )
    desired = {u.key: u.user.active for u in mapping.map(source(directory)).desired.users}
    assert (False, True) == (desired[BOB], desired[ANN])


# -- binds and TLS -------------------------------------------------------------------------


def test_ldaps_with_the_ca_file_reads(directory: Slapd) -> None:
    """LDAPS verifies the server against the given CA file, and reads."""
    assert directory.pki is not None
    over_tls = LdapSource(
        directory.ldaps_url,
        base_dn=SUFFIX,
        bind_dn=READER_DN,
        password=READER_PASSWORD,
        ca_file=directory.pki.ca,
        group_filter=None,
    )
    assert {ANN, BOB, CARL, DORA} <= set(records(over_tls.read()))


def test_start_tls_upgrades_the_plain_port(directory: Slapd) -> None:
    """StartTLS on the plain port, verified against the CA file, reads."""
    assert directory.pki is not None
    upgraded = source(directory, start_tls=True, ca_file=directory.pki.ca, group_filter=None)
    assert ANN in records(upgraded.read())


def test_an_unknown_certificate_authority_is_refused(directory: Slapd) -> None:
    """Verification is on by default: the throwaway CA is not among the system's, so
    the read raises SourceReadError before any record."""
    untrusted = LdapSource(
        directory.ldaps_url, base_dn=SUFFIX, bind_dn=READER_DN, password=READER_PASSWORD
    )
    with pytest.raises(SourceReadError, match="cannot connect to"):
        list(untrusted.read())


def test_sasl_external_binds_with_the_client_certificate(directory: Slapd) -> None:
    """SASL EXTERNAL over LDAPS binds as the client certificate's subject and reads
    (anonymous reads see nothing under this server's rules)."""
    assert directory.pki is not None
    external = LdapSource(
        directory.ldaps_url,
        base_dn=SUFFIX,
        sasl_external=True,
        cert_file=directory.pki.client_cert,
        key_file=directory.pki.client_key,
        ca_file=directory.pki.ca,
        group_filter=None,
    )
    assert {ANN, BOB} <= set(records(external.read()))


def test_a_wrong_password_raises_without_the_password(directory: Slapd) -> None:
    """A refused bind raises SourceReadError naming the server; neither the error nor
    the source's repr carries the password."""
    wrong = source(directory, password=Secret("not-the-password-123"))
    with pytest.raises(SourceReadError, match="cannot bind to") as raised:
        list(wrong.read())
    assert "not-the-password-123" not in str(raised.value)
    assert "not-the-password-123" not in repr(wrong)
    assert directory.url in str(raised.value)


def test_an_unreachable_server_raises_a_clear_error() -> None:
    """Nothing listening on the port: SourceReadError saying it cannot connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        unreachable = LdapSource(f"ldap://127.0.0.1:{port}", base_dn=SUFFIX, timeout=5)
        with pytest.raises(SourceReadError, match="cannot connect to"):
            list(unreachable.read())


def test_a_host_name_that_does_not_resolve_is_said_in_words() -> None:
    """A misspelt directory host (``.invalid`` never resolves, RFC 2606): the error
    says the name does not resolve, not only ldap3's "invalid server address"."""
    misspelt = LdapSource("ldaps://dc1.example.invalid", base_dn=SUFFIX, timeout=5)
    with pytest.raises(SourceReadError, match=r"the host name 'dc1\.example\.invalid' does not"):
        list(misspelt.read())


def test_missing_tls_files_are_refused_when_the_source_is_made(tmp_path: Path) -> None:
    """A ca_file, cert_file or key_file that is not there: refused at once, naming the
    option and the path, not at the first read."""
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigurationError, match=f"ca_file '{missing}' is not a file"):
        LdapSource("ldaps://dc1.example.com", base_dn=SUFFIX, ca_file=missing)
    with pytest.raises(ConfigurationError, match="cert_file"):
        LdapSource("ldaps://dc1.example.com", base_dn=SUFFIX, cert_file=missing)
    present = tmp_path / "key.pem"
    present.write_text("not read here", "utf-8")
    with pytest.raises(ConfigurationError, match="a key_file needs a cert_file"):
        LdapSource("ldaps://dc1.example.com", base_dn=SUFFIX, key_file=present)


def test_plain_ldap_to_a_remote_host_is_refused_unless_allowed() -> None:
    """ldap:// without StartTLS to a host that is not loopback is refused (the password
    would travel in clear), unless allow_insecure is given."""
    with pytest.raises(ConfigurationError, match="plain LDAP"):
        LdapSource("ldap://dc1.example.com", base_dn=SUFFIX)
    allowed = LdapSource("ldap://dc1.example.com", base_dn=SUFFIX, allow_insecure=True)
    assert "ldap://dc1.example.com" == allowed.url
    assert "ldaps://dc1.example.com" == LdapSource("ldaps://dc1.example.com", base_dn=SUFFIX).url


def test_an_expired_server_certificate_is_refused(slapd_install: SlapdInstall) -> None:
    """A server whose certificate has expired fails verification: SourceReadError."""
    with running_slapd(slapd_install, "", expired=True) as server:
        assert server.pki is not None
        expired = LdapSource(
            server.ldaps_url,
            base_dn=SUFFIX,
            bind_dn=READER_DN,
            password=READER_PASSWORD,
            ca_file=server.pki.ca,
        )
        with pytest.raises(SourceReadError, match="cannot connect to"):
            list(expired.read())


# -- a read that fails midway --------------------------------------------------------------


def test_a_read_that_fails_midway_ends_with_read_incomplete(slapd_install: SlapdInstall) -> None:
    """The server going away between two pages ends the read with a READ_INCOMPLETE
    issue after the records already read; the mapping then deprovisions nobody."""
    with running_slapd(slapd_install, SEED, tls=False) as server:
        read = source(server, page_size=1).read()
        first = next(read)
        server.stop()
        rest = list(read)
    assert isinstance(first, Record)
    assert [IssueCode.READ_INCOMPLETE] == [i.code for i in rest if isinstance(i, RecordIssue)]
    result = Mapping(users={"userName": "uid"}).map([first, *rest])
    assert False is result.desired.complete


# -- delta reads ---------------------------------------------------------------------------


def modify(server: Slapd, dn: str, **changes: str) -> None:
    """Change attributes of an entry as the directory's administrator."""
    import ldap3

    connection = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE),
        user=ADMIN_DN,
        password=ADMIN_PASSWORD,
        auto_bind=True,
        raise_exceptions=True,
    )
    try:
        connection.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in changes.items()})
    finally:
        connection.unbind()


def test_delta_read_returns_changed_users_and_every_group(slapd_install: SlapdInstall) -> None:
    """After a full read, a delta read from its watermark yields the users changed since
    (and those of the watermark's own instant, read again), every group, and a newer
    watermark; groups are read whole, users are not."""
    with running_slapd(slapd_install, SEED, tls=False) as server:
        reader = source(server, delta="modifyTimestamp")
        full = reader.read_changes(None)
        first = list(full)
        assert "20200104000000Z" == full.watermark  # the newest entry read (dora)
        modify(server, people_dn("ann"), sn="Lee-Smith")
        change = reader.read_changes(full.watermark, [i for i in first if isinstance(i, Record)])
        items = list(change)
    users = {k for k, r in records(items).items() if r.kind == "user"}
    assert {ANN, DORA} == users
    assert "Lee-Smith" == records(items)[ANN]["sn"]
    assert {"eng", "ops", "loop-a", "loop-b", "strays"} == {
        r["cn"] for r in records(items).values() if r.kind == "group"
    }
    # Members of unchanged users are still named, from the previous read's DNs.
    ops = next(r for r in records(items).values() if r.get("cn") == "ops")
    assert {BOB, ANN} == set(ops.members)
    assert frozenset({"group"}) == change.full_kinds
    assert change.watermark is not None
    assert change.watermark > "20200104000000Z"


def test_uSNChanged_delta_reads_past_the_watermark(directory: Slapd) -> None:
    """With delta="uSNChanged", a read from watermark 100 yields the entries whose
    uSNChanged is above it (the AD way: the next USN on)."""
    ad = source(
        directory,
        key="objectGUID",
        user_filter="(objectClass=testAdUser)",
        group_filter=None,
        attributes=["sAMAccountName"],
        delta="uSNChanged",
    )
    change = ad.read_changes("100")
    assert [AD_DISABLED] == list(records(change))
    # slapd has no highestCommittedUSN: the newest uSNChanged read is the watermark.
    assert "200" == change.watermark


# -- through the runner -----------------------------------------------------------------------


def test_a_directory_that_cannot_be_read_deprovisions_nobody(slapd_install: SlapdInstall) -> None:
    """A cycle provisions the directory's users; once the server is gone the next cycle
    reports an error (SourceReadError) and deactivates nobody."""
    from _sync_helpers import memory_target
    from scimsync import Provisioner
    from scimsync.sync import MemoryStateStore

    target = memory_target()
    mapping = Mapping(users={"userName": "uid", "displayName": "cn"}, groups={"displayName": "cn"})
    with running_slapd(slapd_install, SEED, tls=False) as server:
        provisioner = Provisioner(source(server), mapping, target, state=MemoryStateStore())
        first = provisioner.run_once()
    second = provisioner.run_once(full=True)
    provisioner.close()
    assert (True, "error") == (first.ok, second.outcome)
    assert "SourceReadError" in str(second.to_json())
    users = target.state().users
    assert (4, []) == (len(users), [u.user_name for u in users if u.active is False])


def test_delta_cycles_through_the_runner(slapd_install: SlapdInstall, tmp_path: Any) -> None:
    """With delta="modifyTimestamp" and a SQLite state store: the first cycle reads the
    directory whole; the next, after a rename, reads from the stored watermark and
    applies it (groups still whole, nested members named from the snapshot); an entry
    deleted from the directory stays until the next full cycle, which deactivates it."""
    import ldap3

    from _sync_helpers import Clock, memory_target
    from scimsync import Provisioner
    from scimsync.engine import Policy
    from scimsync.sync import SqliteStateStore

    mapping = Mapping(users={"userName": "uid", "displayName": "cn"}, groups={"displayName": "cn"})
    target = memory_target()
    clock = Clock()
    policy = Policy(max_deprovisions_percent=None, max_source_shrink=None)
    with (
        running_slapd(slapd_install, SEED, tls=False) as server,
        SqliteStateStore(tmp_path / "state.db") as store,
    ):
        reader = source(server, delta="modifyTimestamp")
        sinces: list[str | None] = []
        read_changes = reader.read_changes

        def noted(since: str | None, previous: Any = ()) -> Any:
            sinces.append(since)
            return read_changes(since, previous)

        reader.read_changes = noted  # type: ignore[method-assign]
        made = Provisioner(reader, mapping, target, state=store, clock=clock, policy=policy)
        assert made.run_once().ok
        modify(server, people_dn("ann"), cn="Ann Lee-Smith")
        clock.advance(60)
        assert made.run_once().ok
        admin = ldap3.Connection(
            ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE),
            user=ADMIN_DN,
            password=ADMIN_PASSWORD,
            auto_bind=True,
        )
        admin.delete(people_dn("bob"))
        admin.unbind()
        clock.advance(60)
        assert made.run_once().ok
        users = {u.user_name: u for u in target.state().users}
        still = (users["bob"].active is not False, users["ann"].display_name)
        clock.advance(60)
        assert made.run_once(full=True).ok
        made.close()
    assert [None, "20200104000000Z", sinces[2], None] == sinces
    assert str(sinces[2]) > "2021"  # the rename's time
    assert (True, "Ann Lee-Smith") == still  # a delta read sees no deletion
    users = {u.user_name: u for u in target.state().users}
    assert (False, True) == (users["bob"].active, users["ann"].active is not False)
    ops = next(g for g in target.state().groups if g.display_name == "ops")
    assert {users["ann"].id} == {m.value for m in ops.members or ()}
