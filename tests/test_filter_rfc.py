"""The filter examples of RFC 7644 §3.4.2.2, as a table: parse, text, evaluation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from scimsync import Email, Im, Meta, Name, User
from scimsync.filter import attr, parse_filter

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"

# Every example filter of RFC 7644 §3.4.2.2, the filter built with the builder, and its
# result on BJENSEN below.
RFC_EXAMPLES = [
    ('userName eq "bjensen"', attr("userName").eq("bjensen"), True),
    ('name.familyName co "O\'Malley"', attr("name.familyName").co("O'Malley"), True),
    ('userName sw "J"', attr("userName").sw("J"), False),
    (f'{CORE_USER}:userName sw "J"', attr(f"{CORE_USER}:userName").sw("J"), False),
    ("title pr", attr("title").pr(), True),
    (
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        attr("meta.lastModified").gt("2011-05-13T04:42:34Z"),
        True,
    ),
    (
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        attr("meta.lastModified").ge("2011-05-13T04:42:34Z"),
        True,
    ),
    (
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        attr("meta.lastModified").lt("2011-05-13T04:42:34Z"),
        False,
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        attr("meta.lastModified").le("2011-05-13T04:42:34Z"),
        False,
    ),
    (
        'title pr and userType eq "Employee"',
        attr("title").pr() & attr("userType").eq("Employee"),
        True,
    ),
    (
        'title pr or userType eq "Intern"',
        attr("title").pr() | attr("userType").eq("Intern"),
        True,
    ),
    (f'schemas eq "{ENTERPRISE}"', attr("schemas").eq(ENTERPRISE), False),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        attr("userType").eq("Employee")
        & (attr("emails").co("example.com") | attr("emails.value").co("example.org")),
        True,
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        attr("userType").ne("Employee")
        & ~(attr("emails").co("example.com") | attr("emails.value").co("example.org")),
        False,
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        attr("userType").eq("Employee") & attr("emails.type").eq("work"),
        True,
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        attr("userType").eq("Employee")
        & attr("emails").where(attr("type").eq("work") & attr("value").co("@example.com")),
        True,
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        attr("emails").where(attr("type").eq("work") & attr("value").co("@example.com"))
        | attr("ims").where(attr("type").eq("xmpp") & attr("value").co("@foo.com")),
        True,
    ),
]

BJENSEN = User(
    user_name="bjensen",
    name=Name(family_name="O'Malley", given_name="Barbara"),
    title="Tour Guide",
    user_type="Employee",
    emails=[Email(value="bjensen@example.com", type="work")],
    ims=[Im(value="bjensen@foo.com", type="xmpp")],
    meta=Meta(last_modified=datetime(2011, 5, 13, 4, 42, 35, tzinfo=timezone.utc)),
)


@pytest.mark.parametrize(("text", "built", "_"), RFC_EXAMPLES)
def test_rfc_example_parses_to_the_built_filter(text: str, built: object, _: bool) -> None:
    """Each RFC example parses to what the builder makes, and prints as written.

    The one example with redundant parentheses prints without them.
    """
    assert built == parse_filter(text)
    assert text.replace('(emails.type eq "work")', 'emails.type eq "work"') == str(built)


@pytest.mark.parametrize(("text", "_", "expected"), RFC_EXAMPLES)
def test_rfc_example_evaluates(text: str, _: object, expected: bool) -> None:
    """Each RFC example gives the expected answer on a user shaped like the RFC's."""
    assert expected == parse_filter(text).matches(BJENSEN)
