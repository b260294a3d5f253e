"""PATCH paths (RFC 7644 §3.5.2): ``attrPath``, ``valuePath``, ``valuePath.subAttr``."""

from __future__ import annotations

import attrs

from ..errors import FilterSyntaxError, InvalidPathError
from ..filter import AttrPath, Filter, ValuePath
from ..filter._nodes import _NAME_RE
from ..filter._parse import parse_path_parts

__all__ = ["Path", "parse_path"]


@attrs.frozen(cache_hash=True, repr=False)
class Path:
    """The target of a PATCH operation.

    ``attribute`` is the attribute path (possibly URN-qualified, possibly with a
    sub-attribute: ``name.givenName``); ``value_filter`` selects values of a
    multi-valued attribute (``emails[type eq "work"]``); ``sub_attribute`` is the
    sub-attribute after the filter (``emails[type eq "work"].value``).
    ``str(path)`` is the canonical text and ``parse_path(str(p)) == p``.
    """

    attribute: AttrPath
    value_filter: Filter | None = None
    sub_attribute: str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.attribute, AttrPath):
            raise TypeError(f"attribute must be an AttrPath, got {type(self.attribute).__name__}")
        if self.value_filter is not None:
            # ValuePath checks what a value filter may hold (no nesting, no sub-attribute).
            ValuePath(self.attribute, self.value_filter)
        if self.sub_attribute is not None:
            if self.value_filter is None:
                raise ValueError("a sub-attribute follows a value filter; use name.sub instead")
            if not isinstance(self.sub_attribute, str) or not _NAME_RE.fullmatch(
                self.sub_attribute
            ):
                raise InvalidPathError(f"invalid sub-attribute name {self.sub_attribute!r}")

    def __str__(self) -> str:
        if self.value_filter is None:
            return str(self.attribute)
        text = f"{self.attribute}[{self.value_filter}]"
        return f"{text}.{self.sub_attribute}" if self.sub_attribute else text

    def __repr__(self) -> str:
        return f"parse_path({str(self)!r})"


def parse_path(text: str) -> Path:
    """Parse the ``path`` of a PATCH operation (RFC 7644 §3.5.2).

    Accepts ``userName``, ``name.givenName``, URN-qualified paths
    (``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value``),
    value paths (``members[value eq "2819c223"]``) and a sub-attribute after the filter
    (``emails[type eq "work"].value``). Raises :class:`~scimsync.errors.InvalidPathError`
    (scimType ``invalidPath``) for anything else.
    """
    try:
        attribute, value_filter, sub = parse_path_parts(text)
    except FilterSyntaxError as exc:
        raise InvalidPathError(
            f"invalid path {exc.text!r}: expected {exc.expected} at position {exc.position}"
        ) from None
    return Path(attribute, value_filter, sub)
