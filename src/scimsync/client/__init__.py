"""Talk to a SCIM 2.0 service provider (RFC 7644) over HTTP: :class:`ScimClient`
and its asynchronous twin :class:`AsyncScimClient`.

Both share one pure base that prepares every request and checks every answer; they
differ only in how they send. Around that: retries (:class:`~scimsync.retry.RetryPolicy`),
authentication (:mod:`scimsync.auth`), robust pagination (:class:`PagedListing` says
whether a listing is whole), discovery (:class:`ServiceCapabilities`), an optional shared
:class:`RateLimiter` and hooks that receive :class:`RequestDetails`.

Every error is a :class:`~scimsync.errors.ScimSyncError`; see :mod:`scimsync.errors`.

Deprecated names, kept for one release (using them warns): ``Listing``, now
:class:`PagedListing`; ``Capabilities``, now :class:`ServiceCapabilities`.
"""

from typing import TYPE_CHECKING, Any

from .._deprecated import renamed
from ._async import AsyncScimClient
from ._base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUEST_DEADLINE,
    DEFAULT_TIMEOUT,
    RequestDetails,
)
from ._capabilities import ServiceCapabilities
from ._pagination import MAX_LISTED_PAGES, MAX_LISTED_RESOURCES, PagedListing, Paginator
from ._ratelimit import RateLimiter
from ._sync import ScimClient

__all__ = [
    "AsyncScimClient",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_REQUEST_DEADLINE",
    "DEFAULT_TIMEOUT",
    "MAX_LISTED_PAGES",
    "MAX_LISTED_RESOURCES",
    "PagedListing",
    "Paginator",
    "RateLimiter",
    "RequestDetails",
    "ScimClient",
    "ServiceCapabilities",
]

_RENAMED = {"Capabilities": "ServiceCapabilities", "Listing": "PagedListing"}

if TYPE_CHECKING:  # the deprecated names as type checkers see them
    Capabilities = ServiceCapabilities
    Listing = PagedListing
else:  # at run time, each use of one warns

    def __getattr__(name: str) -> Any:
        return renamed(__name__, name, _RENAMED, globals())
