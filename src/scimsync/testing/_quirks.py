"""Quirk profiles: the ways real SCIM providers differ from RFC 7644, as data.

The server reads one :class:`Quirks` value; the default is a provider that follows
the RFC. A quirk changes what the server does, not what ``/Schemas`` publishes: the
providers that have these quirks publish the RFC's characteristics and behave
otherwise. Only what a provider does announce shows (``patch.supported: false``,
``etag.supported: false``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import attrs

from ..errors import ConfigurationError
from ._lossy import dropped_refs, resource_type_names, unfilterable_refs

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Quirks"]

UnsupportedFilterAnswer = Literal["400", "ignore"]


def _at_least_one(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


def _strings(value: Iterable[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _resource_types(value: Iterable[str] | str) -> tuple[str, ...]:
    """Resource type names as the server spells them (``"user"`` -> ``"User"``)."""
    known = resource_type_names()
    out = []
    for name in _strings(value):
        if name.lower() not in known:
            raise ValueError(
                f"no resource type {name!r}; known: {', '.join(sorted(known.values()))}"
            )
        out.append(known[name.lower()])
    return tuple(out)


def _check_dropped(_: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    dropped_refs(value)


def _check_unfilterable(
    _: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    unfilterable_refs(value)


def _check_rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


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
    - ``patch_refused_for=("Group",)``: PATCH on resources of these types answers 501,
      although the service provider configuration says ``patch.supported: true``
      (unlike ``patch_supported=False``, nothing announces it: clients must fall back
      to PUT for that type when they get the 501).
    - ``patch_add_refused_for=("User",)``: a PATCH ``add`` that sets a singular
      attribute of these types (``title``, ``name.givenName``, an extension attribute,
      ``emails[type eq "work"].value``, or an ``add`` without ``path`` whose value holds
      one) answers ``501 {"detail": "", "status": 501}``, a bare body without
      ``schemas``, and applies nothing, while ``replace`` works. An ``add`` that only
      adds values to a multi-valued attribute still works: its path names the
      attribute itself (``emails``, ``members``), or it has no path and its value
      holds only multi-valued attributes. Clients must send ``replace`` for
      attributes and keep ``add`` for members.
    - ``patch_replace_refused_for=("Group",)``: the mirror: every PATCH ``replace`` on
      these types answers ``patch_replace_refused_status`` (501 or 400, a SCIM error)
      and applies nothing, while ``add`` works (it sets singular attributes too, as
      RFC 7644 §3.5.2.1 says). Clients must send ``add``, and ``remove`` then ``add``
      to replace values of a multi-valued attribute.
    - ``dropped_attributes=("title", "emails.type")``: attributes published in
      ``/Schemas`` that the target accepts and never stores: a POST, PUT or PATCH (of
      any style, even one whose only operation sets a dropped attribute) answers 2xx,
      and the attribute is not stored and not returned; a PATCH that changes nothing
      else keeps the version. Seed data loses them too. Paths name attributes as
      filters do, case-insensitively; a plain path is a User attribute, one of
      another type starts with its name (``"Group:externalId"``), and an extension
      attribute is URN-qualified
      (``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"``).
      A sub-attribute path drops only that part: with ``"emails.type"`` emails are
      kept as ``{"value", "primary"}``, so ``emails[type eq "work"]`` then matches
      nothing the target holds. readOnly, immutable and required attributes cannot
      be dropped (a ``ValueError``). Clients must compare what the target answers
      with what they sent, and stop re-sending what it does not keep.
    - ``locked_writes_rate=r``: a write (POST, PUT, PATCH or DELETE of a resource,
      each operation of a bulk request) answers ``500 {"detail": "database is
      locked"}`` with probability ``r`` and applies nothing, as a provider on SQLite
      does when writes overlap. The draw stands in for the overlap (in-process the
      server answers one request at a time): it comes from a random generator seeded
      with ``locked_writes_seed``, restarted whenever quirks are assigned, so the same
      writes in the same order lock alike. A client cannot tell a write that was not
      applied from one whose answer was lost: it must look the resource up, or read
      it again, before it retries.

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
    - ``discovery_total_results=False``: the ``/Schemas`` and ``/ResourceTypes``
      listings have no ``totalResults`` (RFC 7644 §3.4.2 requires it). Clients must
      read ``Resources`` whatever the count says.
    - ``unfilterable_attributes=("externalId",)``: a filter naming one of these
      attributes, or a sub-attribute of one, anywhere (in ``and``, ``or``, ``not`` or a
      value filter) is not supported. Paths as for ``dropped_attributes`` (plain means
      User: ``"Group:externalId"`` for groups). ``unsupported_filter_answer`` says what
      the target does then: ``"400"`` answers ``400 invalidFilter``; ``"ignore"``
      ignores the filter and lists every resource of that type, as if none had been
      given. Clients must look up by another attribute, and check that what a filter
      returned matches it.

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
    - ``listing_total_results=False``: listings of resources (``GET /Users``,
      ``/Groups``, ``.search``) have no ``totalResults``. Clients must page on until
      a page comes back short or empty.

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
    discovery_total_results: bool = True
    listing_total_results: bool = True
    dropped_attributes: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_check_dropped
    )
    patch_refused_for: tuple[str, ...] = attrs.field(default=(), converter=_resource_types)
    patch_add_refused_for: tuple[str, ...] = attrs.field(default=(), converter=_resource_types)
    patch_replace_refused_for: tuple[str, ...] = attrs.field(default=(), converter=_resource_types)
    patch_replace_refused_status: Literal[400, 501] = attrs.field(
        default=501, validator=attrs.validators.in_((400, 501))
    )
    unfilterable_attributes: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_check_unfilterable
    )
    unsupported_filter_answer: UnsupportedFilterAnswer = attrs.field(
        default="400", validator=attrs.validators.in_(("400", "ignore"))
    )
    locked_writes_rate: float = attrs.field(default=0.0, validator=_check_rate)
    locked_writes_seed: int = 0

    @classmethod
    def profile(cls, name: str) -> Quirks:
        """The quirks of a named profile (see :meth:`profile_names`).

        - ``"strict"``: none; the server follows RFC 7644 (the same as ``Quirks()``).
        - ``"legacy"``: the quirks of an older provider that gets listings and types
          wrong but supports PATCH: ``itemsPerPage`` echoing ``count``, pages past the
          end starting over, pages capped at 20, no ETags, no ``Location`` header,
          duplicated members, string booleans, groups without members, and
          case-sensitive ``userName`` filters.
        - ``"lossy"``: the quirks of a provider that does not keep what it is told
          (seen on a widely used Django one): discovery listings without
          ``totalResults``, ``title`` and ``emails.type`` dropped, PATCH ``add`` on
          user attributes refused (501) while ``replace`` works, no ``externalId``
          filter on users or groups (400 ``invalidFilter``), and 2% of writes
          answering 500 "database is locked".

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
    "lossy": Quirks(
        discovery_total_results=False,
        dropped_attributes=("title", "emails.type"),
        patch_add_refused_for=("User",),
        unfilterable_attributes=("externalId", "Group:externalId"),
        unsupported_filter_answer="400",
        locked_writes_rate=0.02,
    ),
}
