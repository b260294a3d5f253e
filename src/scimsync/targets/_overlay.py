"""Read-modify-write for targets without PATCH: set what is managed, keep the rest."""

from __future__ import annotations

from typing import Any, TypeVar

from ..codec import from_scim, to_scim
from ..models import Group, User

__all__ = ["overlay", "replacement_body"]

R = TypeVar("R", User, Group)


def overlay(current: R, wanted: R) -> R:
    """Return ``current`` with every attribute ``wanted`` sets taken from ``wanted``.

    Objects (complex attributes, extensions) merge attribute by attribute, so a
    mapping that manages ``name.givenName`` keeps the target's ``name.familyName``;
    multi-valued attributes are taken whole. ReadOnly attributes of ``wanted`` are
    ignored. This is what a PUT must send so as not to drop the attributes the
    mapping does not manage.
    """
    merged = _merge(to_scim(current), to_scim(wanted, request=True))
    return from_scim(merged, type(current))


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    folded = {name.lower(): name for name in out}
    for name, value in changes.items():
        if name == "schemas":
            known = {urn.lower() for urn in out.get("schemas", ())}
            out["schemas"] = [
                *out.get("schemas", ()),
                *(u for u in value if u.lower() not in known),
            ]
            continue
        existing = folded.get(name.lower())
        if existing is not None and existing != name:
            del out[existing]  # the same attribute, spelled in another case
        old = base.get(existing) if existing is not None else None
        if isinstance(value, dict) and isinstance(old, dict):
            out[name] = _merge(old, value)
        else:
            out[name] = value
    return out


def replacement_body(resource: User | Group) -> dict[str, Any]:
    """The body of a PUT replacing ``resource``: its SCIM JSON without readOnly attributes."""
    return to_scim(resource, request=True)
