"""Quirk profiles: the ways real SCIM providers differ from RFC 7644, as data.

The server reads one :class:`Quirks` value; the default is a provider that follows
the RFC. A quirk changes what the server does, not what ``/Schemas`` publishes: the
providers that have these quirks publish the RFC's characteristics and behave
otherwise. Only what a provider does announce shows (``patch.supported: false``,
``etag.supported: false``).
"""

from __future__ import annotations

import attrs

from ..errors import ConfigurationError

__all__ = ["Quirks"]


def _at_least_one(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


@attrs.frozen(kw_only=True)
class Quirks:
    """How this server departs from RFC 7644, like a real provider. All off by default.

    Writing:

    - ``patch_supported=False``: PATCH answers 501 and the service provider
      configuration says ``patch.supported: false`` (clients must fall back to PUT).
    - ``max_members_per_patch_operation=N``: a PATCH operation on a group carrying
      more than N members answers 413 (clients must chunk membership changes).
    - ``duplicate_members_on_add=True``: groups do not de-duplicate their members: a
      PATCH ``add`` of a member already in the group lists it twice (and a POST or
      PUT keeps the duplicates it is sent). Removing the member removes every copy.
    - ``location_header=False``: a 201 Created has no ``Location`` header (the body
      still carries ``id`` and ``meta.location``).
    - ``etag_supported=False``: no ETags at all: no ``meta.version``, no ``ETag``
      header, ``If-Match`` and ``If-None-Match`` ignored (the last writer wins), and
      ``etag.supported: false`` in the service provider configuration.

    Reading:

    - ``omit_group_members=True``: GET on groups (by id, listings, searches, and the
      answers to writes) leaves ``members`` out unless ``attributes=members`` asks
      for it, as if ``members`` were ``returned: request``.
    - ``case_sensitive_user_name_filter=True``: filters compare ``userName``
      case-sensitively (``userName eq "alice"`` misses ``Alice``), although
      uniqueness stays case-insensitive.
    - ``string_booleans=True``: every boolean in a successful answer is written as
      the string ``"True"`` or ``"False"`` (``"active": "False"``), discovery
      documents included.

    Paging:

    - ``items_per_page_echoes_count=True``: ``itemsPerPage`` repeats the ``count``
      asked for (or the default page size) instead of how many resources the page
      holds, so a client that advances by it skips resources.
    - ``start_index_past_end_restarts=True``: a ``startIndex`` past the last resource
      answers the first page again instead of an empty one, so a client that stops
      only at an empty page never stops.
    - ``page_size_cap=N``: pages hold at most N resources whatever ``count`` asks,
      and N is the page size when ``count`` is absent, without saying so
      (``filter.maxResults`` still announces the server's ``max_page_size``). 20 is
      a common default page size; 1000 is scim2-server's silent cap.

    :meth:`profile` names bundles of these. Add a quirk by adding a field here and
    reading it where the behaviour lives.
    """

    patch_supported: bool = True
    omit_group_members: bool = False
    max_members_per_patch_operation: int | None = attrs.field(default=None, validator=_at_least_one)
    case_sensitive_user_name_filter: bool = False
    items_per_page_echoes_count: bool = False
    start_index_past_end_restarts: bool = False
    page_size_cap: int | None = attrs.field(default=None, validator=_at_least_one)
    etag_supported: bool = True
    location_header: bool = True
    duplicate_members_on_add: bool = False
    string_booleans: bool = False

    @classmethod
    def profile(cls, name: str) -> Quirks:
        """The quirks of a named profile (see :meth:`profile_names`).

        - ``"strict"``: none; the server follows RFC 7644 (the same as ``Quirks()``).
        - ``"legacy"``: the quirks of an older provider that gets listings and types
          wrong but supports PATCH: ``itemsPerPage`` echoing ``count``, pages past the
          end starting over, pages capped at 20, no ETags, no ``Location`` header,
          duplicated members, string booleans, groups without members, and
          case-sensitive ``userName`` filters.

        Adjust a profile with :func:`attrs.evolve`. An unknown name raises
        :class:`~scimsync.errors.ConfigurationError`.
        """
        try:
            return _PROFILES[name]
        except KeyError:
            known = ", ".join(sorted(_PROFILES))
            raise ConfigurationError(f"no quirk profile {name!r}; known: {known}") from None

    @staticmethod
    def profile_names() -> tuple[str, ...]:
        """The names :meth:`profile` knows, sorted."""
        return tuple(sorted(_PROFILES))


_PROFILES = {
    "strict": Quirks(),
    "legacy": Quirks(
        omit_group_members=True,
        case_sensitive_user_name_filter=True,
        items_per_page_echoes_count=True,
        start_index_past_end_restarts=True,
        page_size_cap=20,
        etag_supported=False,
        location_header=False,
        duplicate_members_on_add=True,
        string_booleans=True,
    ),
}
