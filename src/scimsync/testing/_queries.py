"""Listing and searching: ``GET /Users?filter=…`` and ``POST /.search`` (RFC 7644 §3.4).

Both come down to one :class:`Listing` and one answer, in order: paging within the
server's limits (and the quirks' cap), the projection asked for, the filter
(parsed, compiled per resource type against the filter table, ``User.groups``
computed only when the filter can name it), sorting by each attribute's
``caseExact``, then the page. Pure listing rules (paging, sorting, projection) live
in ``_listing``; this module applies them to the store.

Faults and quirks met here: a page drifting under a paging client (a resource
removed from or added at the front before a page after the first), a short page
while more remain, attributes a filter may not name (refused, or ignored so the
listing is unfiltered), a start past the end that starts over, ``itemsPerPage``
echoing the count asked for, no ``totalResults``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import FilterSyntaxError
from ..filter import parse_filter
from ..models import LIST_RESPONSE_SCHEMA, SEARCH_REQUEST_SCHEMA, SearchRequest
from ._discovery import filter_table
from ._faults import FaultKind
from ._listing import Paging, sort_resources
from ._lossy import names_any, unfilterable_refs
from ._store import USER
from ._validation import parse_json, read_message, read_resource
from ._wire import ScimRequestError, json_response

if TYPE_CHECKING:
    from ..filter import Filter
    from ..schema import SchemaTable
    from ._faults import FaultInjector
    from ._quirks import Quirks
    from ._render import Renderer
    from ._resources import Resources
    from ._routes import Context
    from ._store import Store
    from ._validation import Kind
    from ._wire import WireResponse

__all__ = ["Listing", "Queries"]

Resource = dict[str, Any]


@attrs.frozen(kw_only=True)
class Listing:
    """What a listing asks for, from the query string or a SearchRequest body."""

    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    start_index: object = None
    count: object = None
    attributes: str | None = None
    excluded: str | None = None


class Queries:
    """Answers listings and searches over ``resources`` (call under the service lock)."""

    def __init__(self, resources: Resources, *, default_page_size: int, max_page_size: int) -> None:
        self.resources = resources
        self.store: Store = resources.store
        self.table: SchemaTable = resources.table
        self.renderer: Renderer = resources.renderer
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size

    def answer_query(self, kind: Kind, context: Context) -> WireResponse:
        """``GET /Users`` (or ``/Groups``), with the query string's parameters."""
        params = context.params
        listing = Listing(
            filter=params.get("filter"),
            sort_by=params.get("sortby"),
            sort_order=params.get("sortorder"),
            start_index=params.get("startindex"),
            count=params.get("count"),
            attributes=params.get("attributes"),
            excluded=params.get("excludedattributes"),
        )
        return self.answer_listing([kind], listing, context)

    def answer_search(self, kinds: list[Kind], context: Context) -> WireResponse:
        """``POST /.search`` (every kind) or ``POST /Users/.search``: a SearchRequest body."""
        data = parse_json(context.request.body)
        search: SearchRequest = read_message(data, SearchRequest, SEARCH_REQUEST_SCHEMA)
        listing = Listing(
            filter=search.filter,
            sort_by=search.sort_by,
            sort_order=search.sort_order,
            start_index=search.start_index,
            count=search.count,
            attributes=",".join(search.attributes) if search.attributes is not None else None,
            excluded=",".join(search.excluded_attributes)
            if search.excluded_attributes is not None
            else None,
        )
        return self.answer_listing(kinds, listing, context)

    def answer_listing(self, kinds: list[Kind], listing: Listing, context: Context) -> WireResponse:
        """The ListResponse for ``listing`` over the resources of ``kinds``."""
        quirks = context.quirks
        paging = Paging.parse(
            listing.start_index,
            listing.count,
            default_count=self.default_page_size,
            max_count=min(self.max_page_size, quirks.page_size_cap or self.max_page_size),
        )
        sort_order = (listing.sort_order or "ascending").lower()
        if sort_order not in ("ascending", "descending"):
            raise ScimRequestError(
                400,
                f"sortOrder must be ascending or descending, got {listing.sort_order!r}",
                "invalidValue",
            )
        selections = {
            kind.name: self.renderer.selections(
                kind.name, context, listing.attributes or "", listing.excluded or ""
            )
            for kind in kinds
        }
        if context.fault is FaultKind.PAGE_DRIFT and paging.start_index > 1:
            context.applied.append(context.fault)
            assert context.injector is not None
            self._drift(kinds[0], context.injector)
        candidates = [(kind.name, r) for kind in kinds for r in self.store.all(kind.name)]
        if listing.filter is not None and listing.filter.strip():
            candidates = self._filtered(kinds, candidates, listing.filter, quirks)
        if listing.sort_by:
            candidates = sort_resources(
                candidates,
                listing.sort_by,
                descending=sort_order == "descending",
                table=self.table,
            )
        total = len(candidates)
        first = paging.start_index - 1
        if quirks.start_index_past_end_restarts and first >= total:
            first = 0
        page = candidates[first : first + paging.count]
        if context.fault is FaultKind.SHORT_PAGE and first + len(page) < total:
            context.applied.append(context.fault)
            page = page[: len(page) // 2]
        origin = context.request.origin
        resources = [
            self.renderer.render(kind_name, resource, origin, *selections[kind_name], quirks=quirks)
            for kind_name, resource in page
        ]
        items_per_page = paging.asked if quirks.items_per_page_echoes_count else len(resources)
        body: dict[str, Any] = {"schemas": [LIST_RESPONSE_SCHEMA]}
        if quirks.listing_total_results:
            body["totalResults"] = total
        body.update(itemsPerPage=items_per_page, startIndex=paging.start_index, Resources=resources)
        return json_response(200, body)

    def _filtered(
        self,
        kinds: list[Kind],
        candidates: list[tuple[str, Resource]],
        text: str,
        quirks: Quirks,
    ) -> list[tuple[str, Resource]]:
        """The candidates ``text`` matches (RFC 7644 §3.4.2.2), or 400 ``invalidFilter``."""
        try:
            parsed = parse_filter(text)
        except FilterSyntaxError as exc:
            raise ScimRequestError(400, str(exc), "invalidFilter") from None
        table = filter_table(quirks)
        kind_names = {kind.name for kind in kinds}
        ignored = self._unfilterable(parsed, kind_names, quirks)
        predicates = {
            kind_name: parsed.compile(schema=table, resource_type=kind_name)
            for kind_name in kind_names - ignored
        }
        # User.groups is computed, not stored: add it only when the filter can name it.
        with_groups = "groups" in text.lower()
        return [
            (kind_name, resource)
            for kind_name, resource in candidates
            if kind_name in ignored
            or predicates[kind_name](
                self.renderer.with_groups(resource)
                if with_groups and kind_name == USER
                else resource
            )
        ]

    def _unfilterable(self, parsed: Filter, kind_names: set[str], quirks: Quirks) -> set[str]:
        """The resource types whose listing ignores ``parsed`` (``unfilterable_attributes``
        in ``"ignore"`` mode), or 400 ``invalidFilter`` in ``"400"`` mode."""
        refs = unfilterable_refs(quirks.unfilterable_attributes)
        named = {
            kind_name
            for kind_name in kind_names
            if names_any(parsed, kind_name, refs.get(kind_name, ()), self.table)
        }
        if named and quirks.unsupported_filter_answer == "400":
            raise ScimRequestError(
                400, f"filtering on these attributes is not supported: {parsed}", "invalidFilter"
            )
        return named

    def _drift(self, kind: Kind, injector: FaultInjector) -> None:
        """Change the listing under a paging client: remove the first resource or add one."""
        existing = self.store.all(kind.name)
        if existing and injector.pick(2) == 0:
            self.resources.remove(kind, existing[0]["id"])
            return
        name = f"drift-{uuid.uuid4().hex[:12]}"
        data = {"schemas": [kind.schema], "userName" if kind.name == USER else "displayName": name}
        resource = self.resources.stored(
            kind, read_resource(data, kind, self.table), str(uuid.uuid4())
        )
        self.store.put_first(kind.name, resource)
