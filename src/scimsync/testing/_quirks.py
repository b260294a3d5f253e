"""Quirk profiles: the ways real SCIM providers differ from RFC 7644, as data.

The server reads one :class:`Quirks` value; the default is a provider that follows
the RFC. A quirk changes what the server does, not what ``/Schemas`` publishes: the
providers that have these quirks publish the RFC's characteristics and behave
otherwise. Only what a provider does announce shows (``patch.supported: false``).
"""

from __future__ import annotations

import attrs

__all__ = ["Quirks"]


def _check_cap(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"max_members_per_patch_operation must be at least 1, got {value!r}")


@attrs.frozen(kw_only=True)
class Quirks:
    """How this server departs from RFC 7644, like a real provider.

    - ``patch_supported=False``: PATCH answers 501 and the service provider
      configuration says ``patch.supported: false`` (clients must fall back to PUT).
    - ``omit_group_members=True``: GET on groups (by id, listings, searches) leaves
      ``members`` out unless ``attributes=members`` asks for it, as if ``members``
      were ``returned: request``.
    - ``max_members_per_patch_operation=N``: a PATCH operation on a group carrying
      more than N members answers 413 (clients must chunk membership changes).
    - ``case_sensitive_user_name_filter=True``: filters compare ``userName``
      case-sensitively (``userName eq "alice"`` misses ``Alice``), although
      uniqueness stays case-insensitive.

    Add a quirk by adding a field here and reading it where the behaviour lives.
    """

    patch_supported: bool = True
    omit_group_members: bool = False
    max_members_per_patch_operation: int | None = attrs.field(default=None, validator=_check_cap)
    case_sensitive_user_name_filter: bool = False
