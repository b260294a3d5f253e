"""SCIM resources of RFC 7643: User (§4.1), Group (§4.2), the enterprise extension (§4.3).

Models are frozen and slotted. Field names are the snake_case of the SCIM names
(``userName`` is ``user_name``, ``$ref`` is ``ref``); :func:`scimsync.to_scim` and
:func:`scimsync.from_scim` translate. ``None`` means "not set"; for multi-valued
attributes ``()`` means "set, and empty", which is what a desired state uses to say
"this user has no phone numbers".

Every resource keeps what it does not model: ``extensions`` maps schema URNs other
than the enterprise one to their value (a ``dict``, or an instance of an attrs class
registered with :func:`scimsync.codec.register_extension`), and ``extra`` (on resources
and on every complex attribute) holds attributes this version does not declare, so a
round-trip never drops data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ._base import (
    EMPTY,
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    _repr_mapping,
    extra_field,
    to_tuple,
)

__all__ = [
    "Address",
    "Email",
    "EnterpriseUser",
    "Entitlement",
    "Group",
    "GroupMembership",
    "Im",
    "Manager",
    "Member",
    "Meta",
    "MultiValuedAttribute",
    "Name",
    "PhoneNumber",
    "Photo",
    "Resource",
    "Role",
    "User",
    "X509Certificate",
]


@attrs.frozen(kw_only=True)
class Meta:
    """Resource metadata (RFC 7643 §3.1), set by the service provider; readOnly."""

    resource_type: str | None = None
    created: datetime | None = None
    last_modified: datetime | None = None
    location: str | None = None
    version: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Name:
    """The components of a user's real name (RFC 7643 §4.1.1)."""

    formatted: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    honorific_prefix: str | None = None
    honorific_suffix: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class MultiValuedAttribute:
    """The sub-attributes every multi-valued complex attribute has (RFC 7643 §2.4)."""

    value: str | None = None
    display: str | None = None
    type: str | None = None
    primary: bool | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Email(MultiValuedAttribute):
    """An email address of a user; ``type`` is usually ``work``, ``home`` or ``other``."""


@attrs.frozen(kw_only=True)
class PhoneNumber(MultiValuedAttribute):
    """A phone number; ``value`` should be an RFC 3966 ``tel:`` URI, in practice often not."""


@attrs.frozen(kw_only=True)
class Im(MultiValuedAttribute):
    """An instant messaging address."""


@attrs.frozen(kw_only=True)
class Photo(MultiValuedAttribute):
    """A URL of an image of the user; ``type`` is ``photo`` or ``thumbnail``."""


@attrs.frozen(kw_only=True)
class Entitlement(MultiValuedAttribute):
    """An entitlement of the user."""


@attrs.frozen(kw_only=True)
class Role(MultiValuedAttribute):
    """A role of the user."""


@attrs.frozen(kw_only=True)
class X509Certificate(MultiValuedAttribute):
    """A DER-encoded X.509 certificate, base64 in ``value``."""


@attrs.frozen(kw_only=True)
class Address:
    """A physical mailing address (RFC 7643 §4.1.2)."""

    formatted: str | None = None
    street_address: str | None = None
    locality: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    type: str | None = None
    primary: bool | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class GroupMembership:
    """A group the user belongs to, as the service provider reports it (readOnly)."""

    value: str | None = None
    ref: str | None = None
    display: str | None = None
    type: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Member:
    """A member of a group (RFC 7643 §4.2): ``value`` is the member's ``id``."""

    value: str | None = None
    ref: str | None = None
    display: str | None = None
    type: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Manager:
    """The user's manager (RFC 7643 §4.3): ``value`` is the manager's ``id``."""

    value: str | None = None
    ref: str | None = None
    display_name: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class EnterpriseUser:
    """The enterprise user extension (RFC 7643 §4.3), found on ``User.enterprise``."""

    schema_urn: ClassVar[str] = ENTERPRISE_USER_SCHEMA

    employee_number: str | None = None
    cost_center: str | None = None
    organization: str | None = None
    division: str | None = None
    department: str | None = None
    manager: Manager | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Resource:
    """What every SCIM resource has (RFC 7643 §3.1), plus what scimsync keeps for you.

    ``extensions`` maps extension schema URNs to their values; ``extra`` holds
    attributes of the core schema that this model does not declare.
    """

    schema_urn: ClassVar[str] = ""
    resource_type_name: ClassVar[str] = ""
    endpoint: ClassVar[str] = ""

    id: str | None = None
    external_id: str | None = None
    meta: Meta | None = None
    extensions: Mapping[str, Any] = attrs.field(default=EMPTY, repr=_repr_mapping)
    extra: Mapping[str, Any] = attrs.field(default=EMPTY, repr=_repr_mapping)

    def extension(self, urn: str) -> Any:
        """Return the value of extension ``urn`` (URNs compare case-insensitively), or None."""
        value = self.extensions.get(urn)
        if value is not None:
            return value
        folded = urn.casefold()
        for key, found in self.extensions.items():
            if key.casefold() == folded:
                return found
        return None


@attrs.frozen(kw_only=True)
class User(Resource):
    """A SCIM User (RFC 7643 §4.1)."""

    schema_urn: ClassVar[str] = USER_SCHEMA
    resource_type_name: ClassVar[str] = "User"
    endpoint: ClassVar[str] = "/Users"

    user_name: str | None = None
    name: Name | None = None
    display_name: str | None = None
    nick_name: str | None = None
    profile_url: str | None = None
    title: str | None = None
    user_type: str | None = None
    preferred_language: str | None = None
    locale: str | None = None
    timezone: str | None = None
    active: bool | None = None
    password: str | None = attrs.field(default=None, repr=False)
    emails: tuple[Email, ...] | None = attrs.field(default=None, converter=to_tuple)
    phone_numbers: tuple[PhoneNumber, ...] | None = attrs.field(default=None, converter=to_tuple)
    ims: tuple[Im, ...] | None = attrs.field(default=None, converter=to_tuple)
    photos: tuple[Photo, ...] | None = attrs.field(default=None, converter=to_tuple)
    addresses: tuple[Address, ...] | None = attrs.field(default=None, converter=to_tuple)
    groups: tuple[GroupMembership, ...] | None = attrs.field(default=None, converter=to_tuple)
    entitlements: tuple[Entitlement, ...] | None = attrs.field(default=None, converter=to_tuple)
    roles: tuple[Role, ...] | None = attrs.field(default=None, converter=to_tuple)
    x509_certificates: tuple[X509Certificate, ...] | None = attrs.field(
        default=None, converter=to_tuple
    )
    enterprise: EnterpriseUser | None = None


@attrs.frozen(kw_only=True)
class Group(Resource):
    """A SCIM Group (RFC 7643 §4.2)."""

    schema_urn: ClassVar[str] = GROUP_SCHEMA
    resource_type_name: ClassVar[str] = "Group"
    endpoint: ClassVar[str] = "/Groups"

    display_name: str | None = None
    members: tuple[Member, ...] | None = attrs.field(default=None, converter=to_tuple)
