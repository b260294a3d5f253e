"""Directory text without a server: filter and DN escaping, GUIDs, times, AD ranges,
nested groups, the mapping helpers, and LdapSource's settings checks."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scimsync.errors import ConfigurationError
from scimsync.mapping import (
    Mapping,
    ad_active,
    ad_disabled,
    ad_expired,
    dn_rdn,
    guid,
    ldap_locked,
)
from scimsync.sources import IssueCode, LdapFilter, LdapSource, Record
from scimsync.sources._ldap_text import (
    escape_dn_value,
    escape_filter_value,
    filetime,
    flatten_groups,
    generalized_time,
    normalize_dn,
    parse_range,
)

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
GUID_BYTES = bytes.fromhex("ff19966f868b11d0b42d00c04fc964ff")


def test_filter_values_escape_every_rfc4515_special() -> None:
    """*, (, ), backslash and NUL are escaped as \\xx; other text is kept as it is."""
    assert "a\\2ab\\28c\\29d\\5ce\\00f é" == escape_filter_value("a*b(c)d\\e\x00f é")


def test_a_filter_built_from_a_hostile_value_stays_one_clause() -> None:
    """An injection attempt becomes part of one assertion value, never a new clause."""
    hostile = LdapFilter.eq("sAMAccountName", "x)(|(objectClass=*")
    text = str(LdapFilter.all_of(LdapFilter.eq("objectClass", "user"), hostile))
    assert "(&(objectClass=user)(sAMAccountName=x\\29\\28|\\28objectClass=\\2a))" == text
    assert "(objectGUID=\\ff\\19)" == str(LdapFilter.eq("objectGUID", b"\xff\x19"))


def test_attribute_names_are_checked() -> None:
    """A name that is no LDAP attribute (it would smuggle filter text) is refused."""
    with pytest.raises(ConfigurationError, match="not an LDAP attribute name"):
        LdapFilter.eq("uid=*)(cn", "x")


@pytest.mark.parametrize(
    "text",
    ["uid=ann", "(uid=ann", "(uid=ann))", "(uid=ann)(cn=b)", "((uid=a)"],
)
def test_filter_text_from_settings_must_be_one_balanced_filter(text: str) -> None:
    """Filter text that is not one parenthesised, balanced filter is refused."""
    with pytest.raises(ConfigurationError):
        LdapFilter.parse(text)


def test_dn_values_escape_rfc4514_specials() -> None:
    """Commas, plus, quotes, backslash, angle brackets, semicolons, equals, a leading #
    or space and a trailing space are escaped in a DN value."""
    assert '\\#Lee\\, Ann \\+ \\"B\\"\\\\\\<x\\>\\;\\=\\ ' == escape_dn_value(
        '#Lee, Ann + "B"\\<x>;= '
    )


def test_dns_compare_without_case_or_spaces() -> None:
    """normalize_dn folds case and the spaces around separators."""
    assert normalize_dn("CN=Ann Lee, OU=People,dc=Example") == normalize_dn(
        "cn=ann lee,ou=people, DC=example"
    )


@given(st.text(alphabet=st.sampled_from("aZ=,+ \t\n\r\x0b\x0c\xa0\u2003İ\\"), max_size=30))
def test_normalize_dn_takes_out_every_space_by_separators(dn: str) -> None:
    """Its shortcut for DNs without such spaces gives what the full rule gives."""
    assert re.sub(r"\s+(?=[,=+])|(?<=[,=+])\s+", "", dn.strip().lower()) == normalize_dn(dn)


def test_active_directory_ranges_are_read() -> None:
    """member;range=0-1499 is a range ending at 1499; member;range=1500-* the last."""
    assert ("member", 0, 1499) == parse_range("member;range=0-1499")
    assert ("member", 1500, None) == parse_range("member;range=1500-*")
    assert None is parse_range("member")


def test_nested_groups_flatten_through_cycles() -> None:
    """Users of nested groups count, a cycle ends, each key once, own users first."""
    flat = flatten_groups(
        {"A": (["u1"], ["B"]), "B": (["u2", "u1"], ["C"]), "C": (["u3"], ["A"]), "D": ([], [])}
    )
    assert {
        "A": ("u1", "u2", "u3"),
        "B": ("u2", "u1", "u3"),
        "C": ("u3", "u1", "u2"),
        "D": (),
    } == flat


def test_times_are_read() -> None:
    """GeneralizedTime with an offset or fraction, and AD's 1601-based integers (0 and
    2**63-1 mean never)."""
    assert datetime(2024, 1, 31, 10, 0, tzinfo=timezone.utc) == generalized_time(
        "20240131120000+0200"
    )
    assert datetime(2024, 1, 31, 12, 0, 0, 500000, tzinfo=timezone.utc) == generalized_time(
        "20240131120000.5Z"
    )
    assert None is generalized_time("yesterday")
    assert datetime(2024, 1, 1, tzinfo=timezone.utc) == filetime(133485408000000000)
    assert (None, None) == (filetime(0), filetime(9223372036854775807))


# -- mapping helpers ------------------------------------------------------------------------


def record(**attributes: Any) -> Record:
    return Record(key="k", attributes=attributes)


def test_guid_reads_bytes_base64_and_text() -> None:
    """The same GUID given as AD bytes, their base64 or braced upper-case text maps to
    one canonical text; anything else is an invalid value."""
    import base64

    rule = guid("g")
    assert [GUID] * 3 == [
        rule(record(g=GUID_BYTES)),
        rule(record(g=base64.b64encode(GUID_BYTES).decode())),
        rule(record(g="{" + GUID.upper() + "}")),
    ]
    result = Mapping(users={"userName": "u", "externalId": guid("g")}).map(
        [Record(key="k", attributes={"u": "ann", "g": "not-a-guid"})]
    )
    assert [IssueCode.INVALID_VALUE] == [issue.code for issue in result.issues]


def test_account_flags_map_to_active() -> None:
    """The ACCOUNTDISABLE bit, a past accountExpires and a password-policy lock each
    make an account inactive; missing values leave active unset or false as said."""
    now = datetime(2024, 6, 1, tzinfo=timezone.utc)
    past, future = "133485408000000000", "143485408000000000"
    assert (True, False, None) == (
        ad_disabled()(record(userAccountControl="514")),
        ad_disabled()(record(userAccountControl="512")),
        ad_disabled()(record()),
    )
    assert (True, False, False) == (
        ad_expired(now=now)(record(accountExpires=past)),
        ad_expired(now=now)(record(accountExpires=future)),
        ad_expired(now=now)(record(accountExpires="0")),
    )
    active = ad_active(now=now)
    assert (True, False, False, None) == (
        active(record(userAccountControl="66048", accountExpires=future)),
        active(record(userAccountControl="66050")),
        active(record(userAccountControl="512", accountExpires=past)),
        active(record()),
    )
    assert (True, False) == (
        ldap_locked()(record(pwdAccountLockedTime="000001010000Z")),
        ldap_locked()(record()),
    )


def test_dn_rdn_names_groups_from_member_of() -> None:
    """dn_rdn turns one DN or a list of DNs into their first RDN values, unescaped."""
    rule = dn_rdn("memberOf")
    assert ["Lee, Ann", "Eng+Ops"] == rule(
        record(memberOf=["CN=Lee\\, Ann,OU=Groups,DC=x", "cn=Eng\\2BOps,dc=x"])
    )


# -- LdapSource settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "settings", "message"),
    [
        ("http://dc1", {}, "ldap://host"),
        ("ldap://u:p@127.0.0.1", {}, "credentials"),
        ("ldap://127.0.0.1/dc=x?cn", {}, "not in the LDAP URL"),
        ("ldaps://dc1", {"start_tls": True}, "TLS already"),
        ("ldaps://dc1", {"sasl_external": True, "bind_dn": "cn=x"}, "no password"),
        ("ldap://127.0.0.1", {"sasl_external": True}, "needs TLS"),
        ("ldaps://dc1", {"password": "x"}, "needs a bind_dn"),
        ("ldaps://dc1", {"page_size": 0}, "page_size"),
        ("ldaps://dc1", {"delta": "whenChanged"}, "delta must be"),
    ],
)
def test_settings_that_cannot_work_are_refused(
    url: str, settings: dict[str, Any], message: str
) -> None:
    """Each impossible combination raises ConfigurationError before any connection."""
    with pytest.raises(ConfigurationError, match=message):
        LdapSource(url, base_dn="dc=x", **settings)


class RangedConnection:
    """Answers the base searches that fetch the rest of an AD range attribute."""

    def __init__(self, ranges: dict[int, tuple[str, list[bytes]]]) -> None:
        self.ranges = ranges
        self.asked: list[str] = []
        self.response: list[dict[str, Any]] = []

    def search(self, dn: str, search_filter: str, **kwargs: Any) -> None:
        (name,) = kwargs["attributes"]
        self.asked.append(name)
        low = int(name.split("=")[1].split("-")[0])
        attribute, values = self.ranges[low]
        self.response = [
            {"dn": dn, "raw_attributes": {attribute: values}, "type": "searchResEntry"}
        ]


def test_a_large_member_attribute_is_fetched_range_by_range() -> None:
    """An entry holding member;range=0-1 gets the rest through base searches for
    member;range=2-* until a range ends in *, every value kept in order."""
    source = LdapSource("ldaps://dc1", base_dn="dc=x")
    connection = RangedConnection(
        {
            2: ("member;range=2-3", [b"cn=c", b"cn=d"]),
            4: ("member;range=4-*", [b"cn=e"]),
        }
    )
    entry = {"dn": "cn=big", "raw_attributes": {"member;range=0-1": [b"cn=a", b"cn=b"]}}
    read = source._reader("group")(connection, entry)
    assert ["cn=a", "cn=b", "cn=c", "cn=d", "cn=e"] == source._members(connection, read)
    assert ["member;range=2-*", "member;range=4-*"] == connection.asked


def test_the_password_is_a_secret() -> None:
    """A plain password is kept as a Secret: neither repr nor vars show it."""
    source = LdapSource("ldaps://dc1", base_dn="dc=x", bind_dn="cn=r", password="hunter2-long")
    assert "hunter2-long" not in repr(source)
    assert "hunter2-long" not in repr(vars(source))


def test_ldap3_is_imported_only_by_the_ldap_source() -> None:
    """The sources, the mapping and its directory helpers load without ldap3 (an
    extra); without it installed, LdapSource says how to get it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['ldap3'] = None  # as if not installed\n"
        "import scimsync.mapping, scimsync.sync\n"
        "from scimsync.sources import LdapFilter, LdapSource, SqlSource\n"
        "from scimsync.errors import ConfigurationError\n"
        "try:\n"
        "    LdapSource('ldaps://dc1', base_dn='dc=x')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'scimsync[ldap]'" in out
