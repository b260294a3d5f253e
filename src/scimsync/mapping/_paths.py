"""Target paths: where a mapped value goes in the SCIM JSON of a desired resource.

Plain (``userName``), dotted (``name.givenName``), URN-qualified
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``, or a
custom extension's) and filtered (``emails[type eq "work"].value``). A filtered
path names one element of a multi-valued attribute by equality conditions; the
element is created with those values when the record has something to put in it.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..models import ENTERPRISE_USER_SCHEMA
from ..schema import CORE_SCHEMAS, split_urn

__all__ = ["TargetPath", "parse_target"]

# RFC 7644 §3.10 ATTRNAME, plus "$ref".
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*|\$ref")


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
    def whole(self) -> str:
        """The top-level attribute it writes into, lower-cased, for overlap checks."""
        return f"{(self.urn or '').lower()}|{self.attribute.lower()}"


def parse_target(text: str, resource_type: str, core_urn: str) -> TargetPath:
    """Parse a target path of a mapping; raise ConfigurationError when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"a target path must be a non-empty string, got {text!r}")
    path = text.strip()
    known = (core_urn, ENTERPRISE_USER_SCHEMA)
    urn, rest = split_urn(path, known) if "[" not in path else _split_filtered_urn(path, known)
    if urn is not None and urn.lower() == core_urn.lower():
        urn = None
        if not rest:
            raise ConfigurationError(f"{text!r} names the core schema itself, not an attribute")
    if "[" in rest:
        return _parse_filtered(text, urn, rest, resource_type)
    parts = rest.split(".") if rest else []
    if len(parts) > 2 or any(not _NAME.fullmatch(part) for part in parts):
        raise ConfigurationError(f"{text!r} is not an attribute path (name or name.subName)")
    if not parts:
        return TargetPath(text=text, urn=urn, attribute="")
    return TargetPath(
        text=text, urn=urn, attribute=parts[0], sub=parts[1] if len(parts) == 2 else None
    )


def _split_filtered_urn(path: str, known: tuple[str, ...]) -> tuple[str | None, str]:
    # The filter may hold colons ("urn:...:User:emails[value eq "a:b"]"): split before it.
    head, bracket, tail = path.partition("[")
    urn, rest = split_urn(head, known)
    return urn, rest + bracket + tail


def _parse_filtered(text: str, urn: str | None, rest: str, resource_type: str) -> TargetPath:
    # Filtered targets are read with scimsync.patch's path parser, which understands the
    # whole filter grammar; only "sub eq value" conditions joined by "and" can say
    # which element to create.
    raise ConfigurationError(
        f"{text!r}: filtered target paths need scimsync.patch, which is not available yet"
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
