"""Target paths: where a mapped value goes in the SCIM JSON of a desired resource.

Plain (``userName``), dotted (``name.givenName``), URN-qualified
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``, or a
custom extension's) and filtered (``emails[type eq "work"].value``). A filtered
path names one element of a multi-valued attribute by equality conditions; the
element is created with those values when the record has something to put in it.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..codec import registered_extensions
from ..errors import ConfigurationError, InvalidPathError
from ..filter import And, AttrPath, Comparison, Filter, and_, attr
from ..models import ENTERPRISE_USER_SCHEMA
from ..patch import Path, parse_path
from ..schema import CORE_SCHEMAS, split_urn

__all__ = ["TargetPath", "parse_target"]


@attrs.frozen(kw_only=True)
class TargetPath:
    """A parsed target path.

    ``urn`` is the extension schema (None for the resource's core schema),
    ``attribute`` the top-level attribute ("" for a whole extension object), ``sub``
    the sub-attribute, and ``conditions`` the equalities that select (and create)
    one element of a multi-valued attribute, for filtered paths.
    """

    text: str
    urn: str | None
    attribute: str
    sub: str | None = None
    conditions: tuple[tuple[str, Any], ...] | None = None

    @property
    def schema_path(self) -> str:
        """The path without value filter, as :meth:`SchemaTable.resolve` takes it."""
        inner = self.attribute if self.sub is None else f"{self.attribute}.{self.sub}"
        if self.urn is None:
            return inner
        return f"{self.urn}:{inner}" if inner else self.urn

    @property
    def path(self) -> str:
        """The path as PATCH writes it (``emails[type eq "work"].value``); for a whole
        extension object, its URN."""
        if not self.attribute:
            return self.urn or ""
        if self.conditions is None:
            return str(AttrPath(self.attribute, sub=self.sub, urn=self.urn))
        value_filter = and_(*(attr(name).eq(value) for name, value in self.conditions))
        return str(Path(AttrPath(self.attribute, urn=self.urn), value_filter, self.sub))

    @property
    def whole(self) -> str:
        """The top-level attribute it writes into, lower-cased, for overlap checks."""
        return f"{(self.urn or '').lower()}|{self.attribute.lower()}"


def parse_target(text: str, resource_type: str, core_urn: str) -> TargetPath:
    """Parse a target path of a mapping; raise ConfigurationError when it is not one.

    Names are rewritten to the core schema's spelling (``username`` is ``userName``),
    so two spellings of one attribute are one place.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"a target path must be a non-empty string, got {text!r}")
    path = text.strip()
    if "[" not in path:
        urn, rest = split_urn(path, _known_urns(core_urn, resource_type))
        if urn is not None and _names_an_extension(rest, resource_type):
            urn, rest = path, ""
        if urn is not None and not rest:
            if urn.lower() == core_urn.lower():
                raise ConfigurationError(f"{text!r} names the core schema itself, not an attribute")
            return TargetPath(text=text, urn=urn, attribute="")  # a whole extension object
    try:
        parsed = parse_path(path)
    except InvalidPathError as exc:
        raise ConfigurationError(f"{text!r} is not an attribute path: {exc}") from None
    attribute = parsed.attribute
    urn = attribute.urn
    if urn is not None and urn.lower() == core_urn.lower():
        urn = None
    if parsed.value_filter is None:
        target = TargetPath(text=text, urn=urn, attribute=attribute.name, sub=attribute.sub)
    else:
        target = TargetPath(
            text=text,
            urn=urn,
            attribute=attribute.name,
            sub=parsed.sub_attribute,
            conditions=_conditions(parsed.value_filter, text),
        )
    return _canonical(target, resource_type)


def _known_urns(core_urn: str, resource_type: str) -> tuple[str, ...]:
    return (
        core_urn,
        ENTERPRISE_USER_SCHEMA,
        *CORE_SCHEMAS.extension_urns(resource_type),
        *registered_extensions(),
    )


def _names_an_extension(rest: str, resource_type: str) -> bool:
    """``urn:acme:params:scim:schemas:extension:acme:2.0:User`` names a whole custom
    extension, not an attribute ``User`` of a schema ``...:2.0``: extension URNs end in
    the resource type they extend (RFC 7643 §3.3), and attribute names never are one."""
    return rest.lower() == resource_type.lower()


def _conditions(value_filter: Filter, text: str) -> tuple[tuple[str, Any], ...]:
    """The equalities of a value filter: what the element to write must hold."""
    if isinstance(value_filter, And):
        return tuple(c for part in value_filter.filters for c in _conditions(part, text))
    if (
        isinstance(value_filter, Comparison)
        and value_filter.op == "eq"
        and value_filter.path.sub is None
        and value_filter.path.urn is None
    ):
        return ((value_filter.path.name, value_filter.value),)
    raise ConfigurationError(
        f"{text!r}: a target's filter says which element to write, so it can only hold"
        " 'sub eq value' conditions joined by 'and'"
    )


def _canonical(path: TargetPath, resource_type: str) -> TargetPath:
    top = path.attribute if path.urn is None else f"{path.urn}:{path.attribute}"
    spec = CORE_SCHEMAS.resolve(resource_type, top)
    if spec is None:
        return path
    urn = path.urn
    if urn is not None:
        urn = next(
            (u for u in CORE_SCHEMAS.extension_urns(resource_type) if u.lower() == urn.lower()),
            urn,
        )

    def sub_name(name: str) -> str:
        sub = spec.sub(name)
        return sub.name if sub is not None else name

    return attrs.evolve(
        path,
        urn=urn,
        attribute=spec.name,
        sub=sub_name(path.sub) if path.sub is not None else None,
        conditions=(
            tuple((sub_name(name), value) for name, value in path.conditions)
            if path.conditions is not None
            else None
        ),
    )


def multi_valued(resource_type: str, path: TargetPath) -> tuple[bool, bool]:
    """Whether the top-level attribute is multi-valued, and complex, in the core schemas.

    Custom extensions are unknown here and read as single-valued.
    """
    top = path.attribute if path.urn is None else f"{path.urn}:{path.attribute}"
    spec = CORE_SCHEMAS.resolve(resource_type, top) if path.attribute else None
    if spec is None:
        return path.conditions is not None, path.conditions is not None
    return spec.multi_valued, spec.complex
