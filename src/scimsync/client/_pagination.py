"""Index-based pagination (RFC 7644 §3.4.2.4) that survives real servers.

The rules, pure and in one place (the clients only send the requests it asks for):

- ``startIndex`` starts at 1 and advances by the number of resources a page actually
  returned, never by ``itemsPerPage`` (servers echo the requested count there);
- the listing stops at ``totalResults``, at an empty page, or at a page that brings
  nothing new (servers answer pages past the end with everything again, or ignore
  ``startIndex``);
- it never loops forever, even against a target that answers every page with new
  ids and an endless ``totalResults``: it stops at a limit of pages and of resources,
  given (``max_pages``, ``max_resources``) or derived from the first ``totalResults``
  announced (twice the pages and resources it needs, plus some), and never above
  :data:`MAX_LISTED_PAGES` and :data:`MAX_LISTED_RESOURCES` unless given; a listing
  stopped there is incomplete, and says which limit to raise;
- resources are de-duplicated by ``id`` (pages shift when the target changes);
- ``totalResults`` is checked, not trusted: a full page that reaches it (and, in a
  whole listing, a first page) asks for one more page, and pages holding more
  resources than it counts (targets that put the size of the page there, or 0) are
  read as if it were left out, below;
- a page without ``totalResults`` (RFC 7644 §3.4.2 requires it; some targets leave it
  out) is read all the same: the listing then ends at an empty page, a page with
  nothing new, or a page shorter than both the count asked for and the largest page
  seen before (a first short page may be the target's own page cap, so one more page
  is asked for). Such a listing cannot be found short by count: it says so in
  ``PagedListing.deviations``;
- a page that cannot be read (its retries spent) after the first ends the listing
  there, *incomplete*, with what was read: the caller can go on with it (what is
  missing is never read as gone) instead of starting over;
- a listing that stops short of ``totalResults`` is *incomplete*, with the reason:
  never a smaller truth. So is one during which ``totalResults`` changed: resources
  that came or went shift the pages, and a resource can slip between two of them
  while the count still adds up. (A create and a delete between the same two pages
  cancel out in the count; no client can see that without a snapshot.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from ..errors import ConfigurationError, IncompleteListingError, InvalidResponseError

if TYPE_CHECKING:
    from ..models import ListResponse

__all__ = ["MAX_LISTED_PAGES", "MAX_LISTED_RESOURCES", "PagedListing", "Paginator"]

T = TypeVar("T")

#: The most resources a listing collects unless told otherwise, whatever is announced.
MAX_LISTED_RESOURCES = 10_000_000

#: The most pages a listing requests unless told otherwise, whatever is announced.
MAX_LISTED_PAGES = 1_000_000

_WITHOUT_TOTAL = (
    "ListResponse without totalResults (RFC 7644 §3.4.2): the end of the listing was "
    "read from its pages, not checked against a count"
)
_PAST_END_ERROR = (
    "ListResponse: a page asked for past totalResults answered an error, not an empty "
    "page (RFC 7644 §3.4.2.4)"
)
_MISCOUNTED = (
    "ListResponse totalResults below the resources its pages hold (RFC 7644 §3.4.2: it "
    "counts the whole result, not a page): the end of the listing was read from its "
    "pages, not checked against a count"
)


@attrs.frozen(kw_only=True)
class PagedListing(Generic[T]):
    """Every resource a listing returned, and whether that is all of them.

    ``complete`` is False when the target stopped short of the ``totalResults`` it
    announced, or the listing was stopped at one of its limits (``problem`` says how,
    and which limit to raise): then a resource missing from ``resources`` may still
    exist, and must not be read as deleted. Iterating a listing iterates its
    resources.
    """

    resources: tuple[T, ...]
    complete: bool
    total_results: int | None
    """The last ``totalResults`` the target announced (None if it never did)."""
    pages: int
    """How many pages were requested."""
    problem: str | None = None
    deviations: tuple[str, ...] = ()
    """How the target's pages departed from RFC 7644, each once: a page without
    ``totalResults`` means ``complete`` was judged from the pages alone."""

    def __iter__(self) -> Iterator[T]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def require_complete(self) -> PagedListing[T]:
        """Return this listing, or raise :class:`IncompleteListingError` if it is not whole."""
        if not self.complete:
            raise IncompleteListingError(
                f"incomplete listing: {self.problem}",
                listed=len(self.resources),
                total_results=self.total_results,
            )
        return self


def _id_of(resource: object) -> object:
    if isinstance(resource, Mapping):
        return resource.get("id")
    return getattr(resource, "id", None)


class Paginator(Generic[T]):
    """The state of one listing: which page to ask for next, and what came back.

    ``start_index`` and ``count`` are the parameters of the next page to request while
    ``done`` is False; :meth:`feed` takes each page and returns its new resources.
    ``max_pages`` and ``max_resources`` bound the listing (see the module docstring):
    by default twice what the first ``totalResults`` needs, plus some, at most
    :data:`MAX_LISTED_PAGES` pages and :data:`MAX_LISTED_RESOURCES` resources.
    ``check_first_page``: a first page that reaches ``totalResults`` asks for the next
    one too, in case the count is of the page (the clients do it for whole listings,
    not for lookups by filter); a full page that reaches it always does.
    """

    def __init__(
        self,
        page_size: int,
        *,
        max_pages: int | None = None,
        max_resources: int | None = None,
        check_first_page: bool = False,
    ) -> None:
        if not (isinstance(page_size, int) and page_size >= 1):
            raise ConfigurationError("page_size must be an integer, 1 or more")
        for name, limit in (("max_pages", max_pages), ("max_resources", max_resources)):
            if limit is not None and not (isinstance(limit, int) and limit >= 1):
                raise ConfigurationError(f"{name} must be an integer, 1 or more")
        self.start_index = 1
        self.count = page_size
        self.pages = 0
        self.listed = 0
        self.total_results: int | None = None
        self.done = False
        self.problem: str | None = None
        self.deviations: list[str] = []
        self._seen: set[object] = set()
        self._changed_from: int | None = None
        self._largest_page = 0
        self._derived = False
        self._confirming = False  # one more page asked for, to check totalResults
        self._confirm_pending = False  # and it is the page asked for now
        self._check_first_page = check_first_page
        self._miscounted = False  # totalResults proved wrong: read as if left out
        self._max_pages = max_pages
        self._max_resources = max_resources
        # The limits in force, with why: given, or derived once totalResults is known.
        self._page_limit: tuple[int, str]
        self._resource_limit: tuple[int, str]
        self._given_limits()

    def _given_limits(self) -> None:
        """The limits given, else the ceilings: none derived from a totalResults."""
        self._page_limit = (
            (self._max_pages, "as given")
            if self._max_pages
            else (MAX_LISTED_PAGES, "MAX_LISTED_PAGES")
        )
        self._resource_limit = (
            (self._max_resources, "as given")
            if self._max_resources
            else (MAX_LISTED_RESOURCES, "MAX_LISTED_RESOURCES")
        )

    @property
    def complete(self) -> bool:
        """True once the listing has stopped with everything the target announced."""
        return self.done and self.problem is None

    def feed(self, page: ListResponse[T], *, total_announced: bool = True) -> list[T]:
        """Take the page asked for; return the resources not seen on earlier pages.

        ``total_announced`` is False for a page that had no ``totalResults``: its
        ``total_results`` is then not read.
        """
        if self.done:
            raise RuntimeError("the listing is over")
        if total_announced and page.total_results < 0:
            raise InvalidResponseError(f"negative totalResults ({page.total_results})")
        self.pages += 1
        # A totalResults proved wrong is read no further: as if the pages left it out.
        total_announced = total_announced and not self._miscounted
        confirming, self._confirm_pending = self._confirm_pending, False
        fresh: list[T] = []
        for resource in page.resources:
            key = _id_of(resource)
            if not isinstance(key, str) or not key:
                raise InvalidResponseError(
                    f"a listed resource has no id (page at startIndex {self.start_index})"
                )
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(resource)
        self.listed += len(fresh)
        # The page after the count (asked for to check it) counting fewer than are now
        # listed: a count of the page, not a change. So is an empty page past the end
        # counting fewer (resources gone since): nothing can have slipped past.
        past_end = (confirming or not page.resources) and page.total_results < self.listed
        if total_announced:
            if self.total_results is None or not past_end:
                if self.total_results is not None and page.total_results != self.total_results:
                    # Resources came or went mid-listing: pages may have shifted past some.
                    self._changed_from = self._changed_from or self.total_results
                self.total_results = page.total_results
        elif not self._miscounted and _WITHOUT_TOTAL not in self.deviations:
            self.deviations.append(_WITHOUT_TOTAL)
        returned = len(page.resources)
        if total_announced and not self._derived:
            self._derive_limits(page.total_results, returned)
        if returned == 0:
            self._stop(f"the page at startIndex {self.start_index} was empty")
        elif not fresh:
            self._stop(
                f"the page at startIndex {self.start_index} held only resources already listed"
            )
        elif (
            total_announced
            and self.listed >= page.total_results
            and not self._check_count(page.total_results, returned)
        ):
            self._stop("")
        elif not total_announced and returned < min(self.count, self._largest_page):
            # Shorter than asked and than the target's evident page size: the last page.
            self._stop("")
        elif (limit := self._limit_reached()) is not None:
            self.done, self.problem = True, limit
        else:
            self.start_index += returned
        self._largest_page = max(self._largest_page, returned)
        return fresh

    def _check_count(self, total: int, returned: int) -> bool:
        """True when the listing must go on although ``total`` resources are listed:
        it holds more than that while the count stayed the same (the count is wrong),
        or the page was full or the first (it may be the target's own page cap, and
        some targets count the page, not the result): the next one is asked for once,
        to see that nothing follows."""
        if self.listed > total and self._changed_from is None:
            # (A count that changed may be resources deleted meanwhile: incomplete.)
            self._miscounted = True
            self.deviations.append(_MISCOUNTED)
            self._given_limits()  # derived from a wrong count, they stop it short
            return True
        first = self.pages == 1 and self._check_first_page
        if not self._confirming and (returned >= self.count or first):
            # A full page, or a first page that may be the target's own page cap.
            self._confirming = self._confirm_pending = True
            return True
        return False

    def _derive_limits(self, total: int, first_page: int) -> None:
        # Twice what the first announcement needs, plus some: room for a target that
        # grows while it is listed, none for one that makes up pages forever.
        self._derived = True
        derived = f"derived from the first totalResults, {total}"
        if not self._max_pages and first_page:
            pages = 2 * math.ceil(total / first_page) + 10
            self._page_limit = (
                (pages, derived)
                if pages <= MAX_LISTED_PAGES
                else (MAX_LISTED_PAGES, f"MAX_LISTED_PAGES, below the limit {derived}")
            )
        if not self._max_resources:
            resources = 2 * total + self.count
            self._resource_limit = (
                (resources, derived)
                if resources <= MAX_LISTED_RESOURCES
                else (MAX_LISTED_RESOURCES, f"MAX_LISTED_RESOURCES, below the limit {derived}")
            )

    def _limit_reached(self) -> str | None:
        """The problem of a listing at one of its limits, naming the one to raise."""
        for reached, (limit, why), unit in (
            (self.pages, self._page_limit, "pages"),
            (self.listed, self._resource_limit, "resources"),
        ):
            if reached >= limit:
                announced = (
                    f" of {self.total_results} announced" if self.total_results is not None else ""
                )
                return (
                    f"stopped at the limit of {limit} {unit} "
                    f"({why}) with {self.listed} "
                    f"resources listed{announced}: set max_listing_{unit} on the client "
                    f"(max_{unit} of a Paginator) to list further"
                )
        return None

    def fail(self, error: BaseException) -> None:
        """Stop after a page that could not be read (its retries spent): what was listed
        stays, and the listing is incomplete, saying why. But for the page asked for past
        a count reached (some targets answer an error there): then the listing holds
        what it announced, and is complete."""
        self.done = True
        if self._confirm_pending and self.problem is None and not self._miscounted:
            reached = self.total_results is not None and self.listed >= self.total_results
            if reached and self._changed_from is None:
                if _PAST_END_ERROR not in self.deviations:
                    self.deviations.append(_PAST_END_ERROR)
                return
        announced = f" of {self.total_results} announced" if self.total_results is not None else ""
        self.problem = (
            f"the page at startIndex {self.start_index} could not be read after "
            f"{self.listed} resources{announced}: {type(error).__name__}: {error}"
        )

    def _stop(self, reason: str) -> None:
        self.done = True
        if self.total_results is not None and self.listed < self.total_results:
            self.problem = (
                f"{reason} after {self.listed} of {self.total_results} resources announced"
            )
        elif self._changed_from is not None:
            self.problem = (
                f"totalResults went from {self._changed_from} to {self.total_results} during "
                "the listing: resources may have shifted between pages unseen"
            )

    def listing(self, resources: list[T]) -> PagedListing[T]:
        """The :class:`PagedListing` of a finished listing, holding ``resources``."""
        return PagedListing(
            resources=tuple(resources),
            complete=self.complete,
            total_results=self.total_results,
            pages=self.pages,
            problem=self.problem,
            deviations=tuple(self.deviations),
        )

    def incomplete_error(self) -> IncompleteListingError:
        """The error that says this listing stopped short."""
        return IncompleteListingError(
            f"incomplete listing: {self.problem}",
            listed=self.listed,
            total_results=self.total_results,
        )
