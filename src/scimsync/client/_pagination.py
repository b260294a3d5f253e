"""Index-based pagination (RFC 7644 §3.4.2.4) that survives real servers.

The rules, pure and in one place (the clients only send the requests it asks for):

- ``startIndex`` starts at 1 and advances by the number of resources a page actually
  returned, never by ``itemsPerPage`` (servers echo the requested count there);
- the listing stops at ``totalResults``, at an empty page, or at a page that brings
  nothing new (servers answer pages past the end with everything again, or ignore
  ``startIndex``) — so it never loops forever;
- resources are de-duplicated by ``id`` (pages shift when the target changes);
- a listing that stops short of ``totalResults`` is *incomplete*, with the reason:
  never a smaller truth. So is one during which ``totalResults`` changed: resources
  that came or went shift the pages, and a resource can slip between two of them
  while the count still adds up. (A create and a delete between the same two pages
  cancel out in the count; no client can see that without a snapshot.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from ..errors import ConfigurationError, IncompleteListingError, InvalidResponseError

if TYPE_CHECKING:
    from ..models import ListResponse

__all__ = ["Listing", "Paginator"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Listing(Generic[T]):
    """Every resource a listing returned, and whether that is all of them.

    ``complete`` is False when the target stopped short of the ``totalResults`` it
    announced (``problem`` says how): then a resource missing from ``resources`` may
    still exist, and must not be read as deleted. Iterating a listing iterates its
    resources.
    """

    resources: tuple[T, ...]
    complete: bool
    total_results: int | None
    """The last ``totalResults`` the target announced."""
    pages: int
    """How many pages were requested."""
    problem: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def require_complete(self) -> Listing[T]:
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
    """

    def __init__(self, page_size: int) -> None:
        if not (isinstance(page_size, int) and page_size >= 1):
            raise ConfigurationError("page_size must be an integer, 1 or more")
        self.start_index = 1
        self.count = page_size
        self.pages = 0
        self.listed = 0
        self.total_results: int | None = None
        self.done = False
        self.problem: str | None = None
        self._seen: set[object] = set()
        self._changed_from: int | None = None

    @property
    def complete(self) -> bool:
        """True once the listing has stopped with everything the target announced."""
        return self.done and self.problem is None

    def feed(self, page: ListResponse[T]) -> list[T]:
        """Take the page asked for; return the resources not seen on earlier pages."""
        if self.done:
            raise RuntimeError("the listing is over")
        if page.total_results < 0:
            raise InvalidResponseError(f"negative totalResults ({page.total_results})")
        self.pages += 1
        if self.total_results is not None and page.total_results != self.total_results:
            # Resources came or went mid-listing: pages may have shifted past some.
            self._changed_from = self._changed_from or self.total_results
        self.total_results = page.total_results
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
        returned = len(page.resources)
        if returned == 0:
            self._stop(f"the page at startIndex {self.start_index} was empty")
        elif not fresh:
            self._stop(
                f"the page at startIndex {self.start_index} held only resources already listed"
            )
        elif self.listed >= page.total_results:
            self._stop("")
        else:
            self.start_index += returned
        return fresh

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

    def listing(self, resources: list[T]) -> Listing[T]:
        """The :class:`Listing` of a finished listing, holding ``resources``."""
        return Listing(
            resources=tuple(resources),
            complete=self.complete,
            total_results=self.total_results,
            pages=self.pages,
            problem=self.problem,
        )

    def incomplete_error(self) -> IncompleteListingError:
        """The error that says this listing stopped short."""
        return IncompleteListingError(
            f"incomplete listing: {self.problem}",
            listed=self.listed,
            total_results=self.total_results,
        )
