"""Properties of the codec over generated resources."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import (
    Address,
    Email,
    EnterpriseUser,
    Entitlement,
    Group,
    GroupMembership,
    Im,
    Manager,
    Member,
    Meta,
    Name,
    PhoneNumber,
    Photo,
    Role,
    User,
    X509Certificate,
    from_json,
    from_scim,
    to_json,
    to_scim,
)

text = st.text(max_size=12)
opt_text = st.none() | text
opt_bool = st.none() | st.booleans()
aware = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)
offset = st.builds(
    lambda dt, minutes: dt.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
# Keys that collide with no declared attribute and are no URN.
unknown_key = st.from_regex(r"\Ax-[a-z]{1,8}\Z")
extra = st.dictionaries(unknown_key, json_value.filter(lambda v: v is not None), max_size=2)
extension_urn = st.from_regex(r"\Aurn:example:ext:[a-z]{1,6}:2\.0:User\Z")


def multi(cls: type[Any]) -> st.SearchStrategy[Any]:
    return st.builds(
        cls, value=opt_text, display=opt_text, type=opt_text, primary=opt_bool, extra=extra
    )


def tuples_of(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | st.lists(strategy, max_size=3).map(tuple)


metas = st.none() | st.builds(
    Meta,
    resource_type=opt_text,
    created=st.none() | aware | offset,
    last_modified=st.none() | aware,
    location=opt_text,
    version=opt_text,
)
names = st.none() | st.builds(
    Name,
    formatted=opt_text,
    family_name=opt_text,
    given_name=opt_text,
    middle_name=opt_text,
    honorific_prefix=opt_text,
    honorific_suffix=opt_text,
    extra=extra,
)
addresses = st.builds(
    Address,
    formatted=opt_text,
    street_address=opt_text,
    locality=opt_text,
    region=opt_text,
    postal_code=opt_text,
    country=opt_text,
    type=opt_text,
    primary=opt_bool,
)
enterprise = st.none() | st.builds(
    EnterpriseUser,
    employee_number=opt_text,
    cost_center=opt_text,
    organization=opt_text,
    division=opt_text,
    department=opt_text,
    manager=st.none()
    | st.builds(Manager, value=opt_text, ref=opt_text, display_name=opt_text, extra=extra),
)
users = st.builds(
    User,
    id=opt_text,
    external_id=opt_text,
    meta=metas,
    user_name=opt_text,
    name=names,
    display_name=opt_text,
    nick_name=opt_text,
    profile_url=opt_text,
    title=opt_text,
    user_type=opt_text,
    preferred_language=opt_text,
    locale=opt_text,
    timezone=opt_text,
    active=opt_bool,
    password=opt_text,
    emails=tuples_of(multi(Email)),
    phone_numbers=tuples_of(multi(PhoneNumber)),
    ims=tuples_of(multi(Im)),
    photos=tuples_of(multi(Photo)),
    addresses=tuples_of(addresses),
    groups=tuples_of(
        st.builds(GroupMembership, value=opt_text, ref=opt_text, display=opt_text, type=opt_text)
    ),
    entitlements=tuples_of(multi(Entitlement)),
    roles=tuples_of(multi(Role)),
    x509_certificates=tuples_of(multi(X509Certificate)),
    enterprise=enterprise,
    extensions=st.dictionaries(extension_urn, st.dictionaries(text, json_value), max_size=2),
    extra=extra,
)
groups = st.builds(
    Group,
    id=opt_text,
    external_id=opt_text,
    meta=metas,
    display_name=opt_text,
    members=tuples_of(
        st.builds(Member, value=opt_text, ref=opt_text, display=opt_text, type=opt_text)
    ),
    extra=extra,
)


@settings(max_examples=200)
@given(users)
def test_users_round_trip(user: User) -> None:
    """from_scim(to_scim(u)) == u for any user, extensions and unknowns included."""
    assert user == from_scim(to_scim(user), User)


@settings(max_examples=200)
@given(groups)
def test_groups_round_trip(group: Group) -> None:
    """from_scim(to_scim(g)) == g for any group."""
    assert group == from_scim(to_scim(group), Group)


@settings(max_examples=60)
@given(users)
def test_json_round_trip(user: User) -> None:
    """from_json(to_json(u)) == u: the bytes form loses nothing either."""
    assert user == from_json(to_json(user), User)


@settings(max_examples=60)
@given(users)
def test_request_mode_is_a_subset_without_read_only(user: User) -> None:
    """Request output is the full output minus id, meta and groups, all else equal."""
    full = to_scim(user)
    request = to_scim(user, request=True)
    assert {k: v for k, v in full.items() if k not in ("id", "meta", "groups")}.keys() == (
        request.keys()
    )
