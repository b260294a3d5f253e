"""Talk to a SCIM 2.0 service provider (RFC 7644) over HTTP: :class:`ScimClient`
and its asynchronous twin :class:`AsyncScimClient`.

Both share one pure base that prepares every request and checks every answer; they
differ only in how they send. Around that: retries (:class:`~scimsync.retry.RetryPolicy`),
authentication (:mod:`scimsync.auth`), robust pagination (:class:`Listing` says
whether a listing is whole), discovery (:class:`Capabilities`), an optional shared
:class:`RateLimiter` and hooks that receive :class:`RequestDetails`.

Every error is a :class:`~scimsync.errors.ScimSyncError`; see :mod:`scimsync.errors`.
"""

from ._async import AsyncScimClient
from ._base import DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT, RequestDetails
from ._capabilities import Capabilities
from ._pagination import Listing, Paginator
from ._ratelimit import RateLimiter
from ._sync import ScimClient

__all__ = [
    "AsyncScimClient",
    "Capabilities",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "Listing",
    "Paginator",
    "RateLimiter",
    "RequestDetails",
    "ScimClient",
]
