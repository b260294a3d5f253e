"""Rules for directory records (LDAP, Active Directory): GUIDs, account flags, DNs.

``now`` is read when a rule runs (a time rule compares with the clock); pass ``now``
to pin it, as the tests do.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..sources._ldap_text import filetime, generalized_time, guid_text, rdn_value
from ._rules import InvalidRecordValueError, Rule, RuleLike, _Composite, to_rule

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ad_active", "ad_disabled", "ad_expired", "dn_rdn", "guid", "ldap_locked"]

#: userAccountControl's ACCOUNTDISABLE bit.
ACCOUNTDISABLE = 0x2


class _Transform(_Composite):
    """One value through a function; lists element by element when ``each``."""

    __slots__ = ("each", "function", "label", "produces")

    def __init__(
        self,
        label: str,
        function: Callable[..., Any],
        parts: tuple[Rule, ...],
        *,
        produces: str,
        each: bool = False,
    ) -> None:
        self.label = label
        self.function = function
        self.parts = parts
        self.produces = produces
        self.each = each

    def __repr__(self) -> str:
        return f"{self.label}({', '.join(map(repr, self.parts))})"

    def __call__(self, record: Any) -> Any:
        values = [part(record) for part in self.parts]
        if self.each and isinstance(values[0], list):
            return [self.function(v) for v in values[0] if v is not None]
        return self.function(*values)


def _guid(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            raise InvalidRecordValueError(f"a GUID has 16 bytes, got {len(value)}")
        return guid_text(bytes(value))
    text = str(value).strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 16:
        return guid_text(raw)
    raise InvalidRecordValueError(f"{value!r} is no GUID (text, 16 bytes, or their base64)")


def guid(value: RuleLike = "objectGUID") -> Rule:
    """The canonical GUID text (``"00112233-4455-6677-8899-aabbccddeeff"``, lower case)
    of a GUID given as text (any case, braces), as the 16 bytes of Active Directory's
    ``objectGUID`` (first three fields little-endian), or as their base64."""
    return _Transform("guid", _guid, (to_rule(value),), produces="string", each=True)


def _flags(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidRecordValueError(f"{value!r} is no integer of flags") from None


def ad_disabled(value: RuleLike = "userAccountControl") -> Rule:
    """True when Active Directory's ``userAccountControl`` has the ACCOUNTDISABLE bit
    (``0x2``: ``514`` is a disabled normal account, ``512`` an enabled one)."""

    def disabled(raw: Any) -> bool | None:
        flags = _flags(raw)
        return None if flags is None else bool(flags & ACCOUNTDISABLE)

    return _Transform("ad_disabled", disabled, (to_rule(value),), produces="boolean")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(timezone.utc)


def ad_expired(value: RuleLike = "accountExpires", *, now: datetime | None = None) -> Rule:
    """True when Active Directory's ``accountExpires`` (100-ns intervals since 1601;
    ``0`` or ``9223372036854775807``: never) is past; False when it is not set."""

    def expired(raw: Any) -> bool:
        if raw is None:
            return False
        try:
            when = filetime(str(raw).strip())
        except ValueError:
            raise InvalidRecordValueError(f"{raw!r} is no accountExpires value") from None
        return when is not None and when <= _now(now)

    return _Transform("ad_expired", expired, (to_rule(value),), produces="boolean")


def ldap_locked(value: RuleLike = "pwdAccountLockedTime") -> Rule:
    """True when OpenLDAP's password policy has locked the account: the operational
    attribute ``pwdAccountLockedTime`` is present (read it by name: ``attributes=[...,
    "pwdAccountLockedTime"]``). ``000001010000Z`` means locked for good."""

    def locked(raw: Any) -> bool:
        if raw is None:
            return False
        text = str(raw).strip()
        if text != "000001010000Z" and generalized_time(text) is None:
            raise InvalidRecordValueError(f"{raw!r} is no GeneralizedTime")
        return True

    return _Transform("ldap_locked", locked, (to_rule(value),), produces="boolean")


def ad_active(
    user_account_control: RuleLike = "userAccountControl",
    account_expires: RuleLike = "accountExpires",
    *,
    now: datetime | None = None,
) -> Rule:
    """SCIM ``active`` for an Active Directory account: not disabled in
    ``userAccountControl`` and not past ``accountExpires``. No ``userAccountControl``
    means no value (the attribute is left unset)."""
    disabled = ad_disabled(user_account_control)
    expired = ad_expired(account_expires, now=now)

    def active(is_disabled: Any, is_expired: Any) -> bool | None:
        if is_disabled is None:
            return None
        return not is_disabled and not is_expired

    return _Transform("ad_active", active, (disabled, expired), produces="boolean")


def dn_rdn(value: RuleLike = "dn") -> Rule:
    """The value of a DN's first RDN, unescaped: ``"cn=Lee\\, Ann,ou=People,…"`` →
    ``"Lee, Ann"``; a list of DNs (``memberOf``) gives a list of names."""

    def name(raw: Any) -> str | None:
        return None if raw is None else rdn_value(str(raw)) or None

    return _Transform("dn_rdn", name, (to_rule(value),), produces="any", each=True)
