"""Every error scimsync raises, under one root: :class:`ScimSyncError`.

The tree, split by the phase that failed::

    ScimSyncError
    ├── ConfigurationError            bad settings, caught before any request leaves
    ├── ResourceValidationError       a payload that is not a valid SCIM resource/message
    ├── FilterSyntaxError             a SCIM filter that does not parse
    ├── PatchError                    a PATCH that cannot be applied (carries a SCIM scimType)
    │   ├── InvalidPathError          scimType invalidPath
    │   ├── NoTargetError             scimType noTarget
    │   ├── MutabilityError           scimType mutability
    │   └── InvalidValueError         scimType invalidValue
    ├── PlanError                     the engine refused to produce or apply a plan
    │   ├── MatchConflictError        identities that cannot be matched without guessing
    │   └── GuardTrippedError         a safety guard held the deprovisions of a plan
    ├── TransportError                the request did not complete (connect, timeout, reset)
    │   └── OutcomeUnknownError       a non-idempotent request may or may not have happened
    ├── ScimHTTPError                 the target answered with an HTTP error
    │   ├── BadRequestError           400 (scimType invalidFilter, invalidValue, ...)
    │   ├── UnauthorizedError         401
    │   ├── ForbiddenError            403
    │   ├── NotFoundError             404
    │   ├── ConflictResponseError     409 (scimType uniqueness, ...)
    │   ├── PreconditionFailedError   412
    │   ├── PayloadTooLargeError      413
    │   ├── TooManyRequestsError      429
    │   └── ServerError               5xx
    ├── InvalidResponseError          an answer that is not what SCIM promises (HTML, bad shape)
    │   └── IncompleteListingError    a listing not known to be whole (short, or shifted)
    ├── SourceReadError               a source cannot be read at all (connect, bind, TLS, query)
    ├── StateError                    the state store cannot be read or written
    ├── CycleInProgressError          another sync cycle holds the lock (here or in another process)
    └── ConformanceError              a target failed the conformance kit (an AssertionError too)

Errors keep what helps a person fix the problem (attribute paths, the SCIM ``scimType``,
an excerpt of the offending payload) and never a secret: request headers are not kept.

``ConflictError`` is the deprecated name of :class:`MatchConflictError`, kept for one
release (using it warns): it read like the HTTP 409 :class:`ConflictResponseError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._deprecated import renamed

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BadRequestError",
    "ConfigurationError",
    "ConflictResponseError",
    "ConformanceError",
    "CycleInProgressError",
    "FilterSyntaxError",
    "ForbiddenError",
    "GuardTrippedError",
    "IncompleteListingError",
    "InvalidPathError",
    "InvalidResponseError",
    "InvalidValueError",
    "MatchConflictError",
    "MutabilityError",
    "NoTargetError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PatchError",
    "PayloadTooLargeError",
    "PlanError",
    "PreconditionFailedError",
    "ResourceValidationError",
    "ScimHTTPError",
    "ScimSyncError",
    "ServerError",
    "SourceReadError",
    "StateError",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "error_for_status",
]

#: How much of an offending payload an error keeps, in characters.
EXCERPT_LENGTH = 500


def excerpt(text: str | bytes, limit: int = EXCERPT_LENGTH) -> str:
    """Return the start of ``text`` for an error message, marked when cut."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "…"


class ScimSyncError(Exception):
    """The root of every error scimsync raises."""


class ConfigurationError(ScimSyncError):
    """Settings that cannot work, detected before anything is sent or written."""


class ResourceValidationError(ScimSyncError):
    """A payload that is not a valid SCIM resource or message.

    ``errors`` lists every problem as ``"<path>: <reason>"``, for example
    ``"$.emails[0].primary: expected a boolean, got 'maybe'"``; ``message`` is the
    summary before them.
    """

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        self.message = message
        self.errors: tuple[str, ...] = tuple(errors)
        detail = "; ".join(self.errors)
        super().__init__(f"{message}: {detail}" if detail else message)


class FilterSyntaxError(ScimSyncError):
    """A SCIM filter (RFC 7644 §3.4.2.2) or attribute path that does not parse.

    ``position`` is the 0-based offset in ``text`` where parsing failed and
    ``expected`` says what would have been valid there.
    """

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        shown = excerpt(text, 200)
        super().__init__(f"invalid filter at position {position}: expected {expected} in {shown!r}")


class PatchError(ScimSyncError):
    """A PATCH operation (RFC 7644 §3.5.2) that cannot be applied.

    ``scim_type`` is the RFC 7644 Table 9 ``scimType`` a server would answer with.
    """

    scim_type: str = "invalidValue"
    status: int = 400

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class InvalidPathError(PatchError):
    """The ``path`` is malformed or names no attribute (scimType ``invalidPath``)."""

    scim_type = "invalidPath"


class NoTargetError(PatchError):
    """The ``path`` filter matched nothing where something was required (``noTarget``)."""

    scim_type = "noTarget"


class MutabilityError(PatchError):
    """The operation would change a readOnly or immutable attribute (``mutability``)."""

    scim_type = "mutability"


class InvalidValueError(PatchError):
    """The operation's value is missing or of the wrong type (``invalidValue``)."""

    scim_type = "invalidValue"


class PlanError(ScimSyncError):
    """The engine refused to produce or apply a plan."""


class MatchConflictError(PlanError):
    """Identities that cannot be matched without guessing (duplicate keys, two matches).

    Not an HTTP 409 from a target: that is :class:`ConflictResponseError`.
    """


class GuardTrippedError(PlanError):
    """A safety guard held operations of a plan; apply was refused."""


class TransportError(ScimSyncError):
    """The request did not complete: connection refused or reset, timeout, TLS failure."""


class OutcomeUnknownError(TransportError):
    """A non-idempotent request (POST, PATCH) may or may not have taken effect.

    Raised when the connection dropped or timed out after the request was sent, or a
    5xx came back after the body was sent. Look the resource up before retrying, or a
    duplicate may be created. ``method`` and ``url`` say which request it was; the body
    is kept in ``payload`` (never headers, so never a token).
    """

    def __init__(
        self, message: str, *, method: str, url: str, payload: object | None = None
    ) -> None:
        self.method = method
        self.url = url
        self.payload = payload
        super().__init__(message)


class ScimHTTPError(ScimSyncError):
    """The target answered with an HTTP error status.

    ``status`` is the HTTP status, ``scim_type`` and ``detail`` come from the SCIM
    error body when there is one (RFC 7644 §3.12), ``body_excerpt`` is the start of
    the raw answer.
    """

    def __init__(
        self,
        status: int,
        *,
        scim_type: str | None = None,
        detail: str | None = None,
        method: str | None = None,
        url: str | None = None,
        body_excerpt: str = "",
    ) -> None:
        self.status = status
        self.scim_type = scim_type
        self.detail = detail
        self.method = method
        self.url = url
        self.body_excerpt = body_excerpt
        where = f" for {method} {url}" if method and url else ""
        what = f" ({scim_type})" if scim_type else ""
        why = f": {detail}" if detail else (f": {body_excerpt}" if body_excerpt else "")
        super().__init__(f"HTTP {status}{what}{where}{why}")


class BadRequestError(ScimHTTPError):
    """400 Bad Request."""


class UnauthorizedError(ScimHTTPError):
    """401 Unauthorized: the credentials were refused."""


class ForbiddenError(ScimHTTPError):
    """403 Forbidden."""


class NotFoundError(ScimHTTPError):
    """404 Not Found."""


class ConflictResponseError(ScimHTTPError):
    """409 Conflict, typically ``scim_type == "uniqueness"``."""


class PreconditionFailedError(ScimHTTPError):
    """412 Precondition Failed: the resource changed since its version was read."""


class PayloadTooLargeError(ScimHTTPError):
    """413 Payload Too Large."""


class TooManyRequestsError(ScimHTTPError):
    """429 Too Many Requests. ``retry_after`` is the wait asked for, in seconds, if any."""

    retry_after: float | None = None


class ServerError(ScimHTTPError):
    """A 5xx answer. ``retry_after`` is the wait asked for (503), in seconds, if any."""

    retry_after: float | None = None


class InvalidResponseError(ScimSyncError):
    """An answer that is not what SCIM promises: not JSON, or JSON of the wrong shape.

    ``transient`` is True when the answer looks cut short in transit (an empty body,
    one that is not JSON, one that cannot be decoded): a read may be tried again.
    """

    def __init__(self, message: str, *, body_excerpt: str = "", transient: bool = False) -> None:
        self.body_excerpt = body_excerpt
        self.transient = transient
        super().__init__(f"{message}: {body_excerpt}" if body_excerpt else message)


class IncompleteListingError(InvalidResponseError):
    """A listing not known to be whole: it ended short of its ``totalResults``, or
    ``totalResults`` changed while it ran (pages shift, a resource can slip by).

    What was listed is not the whole truth: nothing missing from it may be read as
    deleted. ``listed`` is how many distinct resources came back, ``total_results``
    what the target announced.
    """

    def __init__(self, message: str, *, listed: int, total_results: int | None) -> None:
        self.listed = listed
        self.total_results = total_results
        super().__init__(message)


class SourceReadError(ScimSyncError):
    """A source cannot be read at all: its server is unreachable, refuses the bind (a
    wrong password), fails the TLS handshake (an expired or unknown certificate), or
    refuses the query. Nothing was read, so nothing is planned from it: the cycle
    reports an error. A read that fails *midway* is not raised: the source yields a
    ``READ_INCOMPLETE`` issue instead (see :class:`~scimsync.sources.Source`). The
    message names the server and never carries a password.
    """


class StateError(ScimSyncError):
    """The state store cannot be read or written: not a state database, a newer schema."""


class CycleInProgressError(ScimSyncError):
    """A sync cycle is already running against this state, in this process or another.

    Cycles never overlap: the second one is refused rather than queued, so a slow
    cycle never piles up others behind it. ``holder`` says who holds the lock, when
    known (``"pid 4242"``).
    """

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        self.holder = holder
        super().__init__(message)


class ConformanceError(ScimSyncError, AssertionError):
    """A target did not meet the expectations of the conformance kit
    (:func:`scimsync.testing.check_target`).

    An :class:`AssertionError` too, so a test framework reports it as a failed test.
    The message names every expectation not met and why; ``failures`` holds them as
    ``(expectation name, why)`` pairs.
    """

    def __init__(self, message: str, *, failures: Sequence[tuple[str, str]] = ()) -> None:
        self.failures = tuple(failures)
        super().__init__(message)


_BY_STATUS: dict[int, type[ScimHTTPError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictResponseError,
    412: PreconditionFailedError,
    413: PayloadTooLargeError,
    429: TooManyRequestsError,
}


def error_for_status(status: int) -> type[ScimHTTPError]:
    """Return the :class:`ScimHTTPError` subclass for an HTTP ``status``."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ScimHTTPError)


_RENAMED = {"ConflictError": "MatchConflictError"}

if TYPE_CHECKING:  # the deprecated name as type checkers see it
    ConflictError = MatchConflictError
else:  # at run time, each use of it warns

    def __getattr__(name: str) -> Any:
        return renamed(__name__, name, _RENAMED, globals())
