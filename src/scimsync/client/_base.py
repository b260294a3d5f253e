"""Everything :class:`ScimClient` and :class:`AsyncScimClient` share: no I/O here.

Each operation is prepared as a :class:`PreparedCall` (method, URL, body, how to read
the answer) by a pure ``_prepare_*`` method; the I/O classes only send it, with
retries, and hand the response back to :meth:`PreparedCall.result`, which checks the
status and turns the body into models or errors. Rules kept here:

- resources go out with :func:`scimsync.to_scim` (``request=True``) and come back
  with :func:`scimsync.from_scim`; other resource types are plain ``dict`` objects
  with an explicit endpoint;
- an answer that is not JSON, or JSON of the wrong shape, is an
  :class:`~scimsync.errors.InvalidResponseError`, never "empty"; so is a GET by
  ``id`` answered with a resource of another ``id``;
- a POST or PATCH that may have taken effect but did not say so (a 5xx, a timeout
  after sending) is an :class:`~scimsync.errors.OutcomeUnknownError`;
- every attempt has a :class:`Deadline` for the whole exchange (send, then the whole
  answer): ``request_deadline``, cut to what is left of the retry policy's
  ``max_total_seconds``; passing it is a timeout like any other (a ``TransportError``,
  or ``OutcomeUnknownError`` for a write that was sent);
- answers are read as a stream into an :class:`Answer`, never past a limit: a
  success body over ``max_response_bytes`` is an
  :class:`~scimsync.errors.InvalidResponseError` (the rest is not read), an error
  body is cut at :data:`MAX_ERROR_BODY_BYTES` (only an excerpt of it is kept anyway);
- URLs, logs and hook details carry no header and no body, so never a token;
- text the client builds from an answer (a body excerpt, a SCIM ``detail`` or
  ``scimType``, a validation message, a transport error) is masked by a
  :class:`~scimsync.secrets.Redactor` of the secrets the auth holds
  (:class:`~scimsync.auth.SecretHolder`) and of the credentials the request carried
  (``Authorization`` and the like), whatever the target echoes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote, unquote_plus

import attrs
import httpx

from .._urls import require_safe_url
from ..auth import SecretHolder
from ..codec import from_scim, to_scim
from ..errors import (
    EXCERPT_LENGTH,
    ConfigurationError,
    InvalidResponseError,
    OutcomeUnknownError,
    ResourceValidationError,
    ScimSyncError,
    ServerError,
    TooManyRequestsError,
    TransportError,
    error_for_status,
    excerpt,
)
from ..filter import AttrPath, Filter, FilterValue, attr, parse_filter
from ..models import (
    BULK_REQUEST_SCHEMA,
    ERROR_SCHEMA,
    PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA,
    BulkOperation,
    BulkResponse,
    ListResponse,
    PatchOp,
    PatchOperation,
    Resource,
    ResourceType,
    Schema,
    ServiceProviderConfig,
)
from ..retry import RetryPolicy, parse_retry_after
from ..secrets import Redactor, Secret
from ._capabilities import ServiceCapabilities
from ._pagination import Paginator

if TYPE_CHECKING:
    from ..retry import RetryDetails
    from ._ratelimit import RateLimiter

__all__ = [
    "Answer",
    "BaseScimClient",
    "BodyBuffer",
    "Deadline",
    "ListedPage",
    "PreparedCall",
    "RequestDetails",
]

logger = logging.getLogger("scimsync.client")

R = TypeVar("R", bound=Resource)
T = TypeVar("T")

#: Default timeouts: generous for a slow target, short to notice a dead one.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

#: Seconds one attempt may take in all when neither ``request_deadline`` nor the HTTP
#: client's read timeout says.
DEFAULT_REQUEST_DEADLINE = 60.0

#: Page size of listings when the caller does not choose one.
DEFAULT_PAGE_SIZE = 100

#: The largest success body a client reads, in bytes, unless given ``max_response_bytes``:
#: a page of 100 large users is well under 1 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024

#: How much of an error body (non-2xx) is read: enough for a SCIM error's ``detail``;
#: an error message keeps only an excerpt of it.
MAX_ERROR_BODY_BYTES = 64 * 1024

_ACCEPT = "application/scim+json, application/json;q=0.9"
_CONTENT_TYPE = "application/scim+json"

# Failures that happen before a byte of the request leaves: retrying cannot duplicate.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)

# 5xx answers that say the request was refused as a whole, so nothing was applied:
# 501 Not Implemented (a target without PATCH), 505 HTTP Version Not Supported.
_REFUSED_5XX = frozenset({501, 505})

_REDACTED = "**********"

# Marks a body json.loads refused (None is the JSON null).
_NOT_JSON = object()

# Request headers whose values are credentials, masked from what a target echoes.
_CREDENTIAL_HEADER = re.compile(r"authorization|cookie|token|secret|api-?key|password", re.I)

_NO_SECRETS = Redactor()


# An auth scheme (RFC 9110 §11.1 token, in practice letters, digits and dashes).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9._~+-]*")


def _header_secrets(value: str) -> list[str]:
    """A credential header's credentials (the value, less an auth scheme such as
    ``Bearer``), and a Basic pair's parts.

    The scheme is left out: pieces of the secrets are masked too, and a piece spanning
    ``Bearer`` and the token's first letters would mask that word in ordinary text
    ("invalid Bearer token").
    """
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    found = [credentials] if credentials and _SCHEME.fullmatch(scheme) else [value]
    if scheme.lower() == "basic" and credentials:
        try:
            pair = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        _, colon, password = pair.partition(":")
        if colon:
            found += [pair, password, unquote_plus(password)]
    return found


def _redacted_excerpt(content: bytes, redact: Redactor) -> str:
    # Masked before it is cut, so no secret is cut in half and shown in part: the
    # window leaves room for a secret that starts inside the excerpt to end in it, and
    # the second pass masks the prefix of a longer one, left before the excerpt's "…".
    window = content[: 4 * (EXCERPT_LENGTH + 4096)]
    return redact(excerpt(redact(window.decode("utf-8", errors="replace"))))


def _redacted_validation(exc: ResourceValidationError, redact: Redactor) -> ResourceValidationError:
    # A fresh copy: the original keeps cattrs' exceptions, values and all, as context.
    return ResourceValidationError(redact(exc.message), [redact(error) for error in exc.errors])


@attrs.frozen(kw_only=True)
class RequestDetails:
    """What an ``on_request`` hook receives after each attempt: no headers, no body.

    ``url`` has no query string. ``status`` is set when an answer came back;
    ``error`` names the exception (``"ConnectError"``) when none did.
    """

    method: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    elapsed_seconds: float


def _json_bytes(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _is_password(name: object) -> bool:
    # "password", "urn:...:User:password" (a PATCH path): the attribute, however named.
    return isinstance(name, str) and name.lower().rsplit(":", 1)[-1] == "password"


def _without_secrets(payload: object) -> object:
    """``payload`` with every password replaced, at any depth and in PATCH operations.

    Kept on OutcomeUnknownError for the caller's lookup: a password need not be.
    """
    if isinstance(payload, Mapping):
        if _is_password(payload.get("path")) and "value" in payload:
            return {**payload, "value": _REDACTED}
        return {
            key: _REDACTED if _is_password(key) else _without_secrets(value)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [_without_secrets(item) for item in payload]
    return payload


@attrs.frozen(kw_only=True)
class Deadline:
    """When one attempt must be over, on the client's clock: ``at``, ``seconds`` after it began.

    ``setting`` names what set it (``request_deadline``, or what was left of the
    retry policy's ``max_total_seconds``), for the error message.
    """

    at: float
    seconds: float
    setting: str

    def passed(self, now: float) -> bool:
        """True once ``now`` is at or past the deadline."""
        return now >= self.at

    def exceeded(self, request: httpx.Request) -> httpx.ReadTimeout:
        """The timeout to raise for ``request`` (it is retried like any read timeout)."""
        return httpx.ReadTimeout(
            f"no whole answer within {self.seconds:g} s ({self.setting})", request=request
        )

    def timeout(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """``timeout`` with each phase cut to the deadline: no single read outlasts it."""

        def cut(value: float | None) -> float:
            return self.seconds if value is None else min(value, self.seconds)

        return httpx.Timeout(
            connect=cut(timeout.connect),
            read=cut(timeout.read),
            write=cut(timeout.write),
            pool=cut(timeout.pool),
        )


@attrs.frozen(kw_only=True)
class Answer:
    """A response as the clients read it: status, headers and at most ``limit`` bytes of body.

    ``truncated`` is True when the body went past ``limit`` and the rest was not read.
    """

    status: int
    headers: httpx.Headers = attrs.field(eq=False)
    content: bytes = b""
    limit: int
    truncated: bool = False


class BodyBuffer:
    """Collects a streamed body up to a limit; the clients feed it chunks as they arrive.

    The limit is ``max_response_bytes`` for a success and :data:`MAX_ERROR_BODY_BYTES`
    for an error status. A success that declares a larger ``Content-Length`` is cut
    before a byte of its body is read.
    """

    def __init__(self, status: int, headers: httpx.Headers, max_response_bytes: int) -> None:
        self.status = status
        self.headers = headers
        self.limit = max_response_bytes if 200 <= status < 300 else MAX_ERROR_BODY_BYTES
        self.truncated = 200 <= status < 300 and _declared_length(headers) > self.limit
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def wants_more(self) -> bool:
        """False once the body reached the limit: stop reading."""
        return not self.truncated

    def add(self, chunk: bytes) -> bool:
        """Take ``chunk``; return :attr:`wants_more`."""
        room = self.limit - self._size
        if len(chunk) > room:
            self._chunks.append(chunk[:room])
            self._size = self.limit
            self.truncated = True
        else:
            self._chunks.append(chunk)
            self._size += len(chunk)
        return self.wants_more

    def answer(self) -> Answer:
        """What was read, as an :class:`Answer`."""
        return Answer(
            status=self.status,
            headers=self.headers,
            content=b"".join(self._chunks),
            limit=self.limit,
            truncated=self.truncated,
        )


def _declared_length(headers: httpx.Headers) -> int:
    value = headers.get("Content-Length", "")
    return int(value) if value.isdigit() else -1


@attrs.frozen(kw_only=True)
class PreparedCall(Generic[T]):
    """One SCIM operation ready to send: a pure value, sent once per attempt.

    ``reader`` turns the decoded JSON body into the result; with ``empty_ok`` an
    empty body (``204 No Content``) gives ``reader(None)``. ``idempotent`` is False
    for POST and PATCH: their lost answers are outcome-unknown, never retried.
    ``expects`` names what a success answers (``"a User"``, ``"a ListResponse"``),
    for the error when it answers something else; ``array_ok`` takes a JSON array too.
    """

    method: str
    url: str
    reader: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    payload: Any = None
    body: bytes | None = None
    if_match: str | None = None
    idempotent: bool = True
    empty_ok: bool = False
    ignore_body: bool = False
    expects: str = "a SCIM resource"
    array_ok: bool = False

    @property
    def read(self) -> bool:
        """True for a request that only reads: a GET, or a POST ``/.search``. A read
        that failed in a way another try may not (a 500, a body cut short) is retried;
        a write never blindly."""
        return self.method == "GET" or (self.method == "POST" and self.url.endswith("/.search"))

    def result(self, answer: Answer, redact: Redactor = _NO_SECRETS) -> T:
        """Check ``answer`` and read it; raise the matching project error otherwise.

        ``redact`` masks the secrets of the request from every text taken from the answer.
        """
        status = answer.status
        if not 200 <= status < 300:
            raise self.error(answer, redact)
        if answer.truncated:
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with a body over the "
                f"{answer.limit} bytes allowed; the rest was not read (raise the client's "
                "max_response_bytes to accept larger answers)"
            )
        content = answer.content
        if self.ignore_body:
            return self.reader(None)
        if not content.strip():
            if self.empty_ok:
                return self.reader(None)
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with an empty body", transient=True
            )
        try:
            data = json.loads(content)
        except ValueError:
            data = _NOT_JSON
        if data is _NOT_JSON:
            content_type = redact(answer.headers.get("Content-Type", "no content type"))
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with a body that is not JSON"
                f" ({content_type[:100]})",
                body_excerpt=_redacted_excerpt(content, redact),
                transient=True,
            )
        if _is_scim_error(data):
            raise self.error_in_success(answer, data, redact)
        if not (
            isinstance(data, dict)
            or (data is None and self.empty_ok)
            or (isinstance(data, list) and self.array_ok)
        ):
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with {_json_kind(data)}, "
                f"not {self.expects}",
                body_excerpt="" if data is None else _redacted_excerpt(content, redact),
            )
        try:
            return self.reader(data)
        except ResourceValidationError as exc:
            invalid = _redacted_validation(exc, redact)
        # Raised outside the except block: the unmasked original is not its context.
        raise InvalidResponseError(
            f"{self.method} {self.url} answered {status} with an invalid body: {invalid}"
        ) from invalid

    def error_in_success(
        self, answer: Answer, data: Mapping[str, Any], redact: Redactor = _NO_SECRETS
    ) -> InvalidResponseError:
        """The error for a 2xx ``answer`` whose body is a SCIM Error (``data``).

        Its HTTP status says success, its body says failure: neither is taken at its
        word. For a write, whether it took effect is unknown (a look-up tells).
        """
        said = []
        for key, label in (("status", "status"), ("scimType", "scimType")):
            value = _get_folded(data, key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                said.append(f"{label} {_redacted_excerpt(str(value).encode(), redact)[:40]}")
        detail = _get_folded(data, "detail")
        what = f" ({', '.join(said)})" if said else ""
        why = (
            f": {_redacted_excerpt(detail.encode(), redact)}"
            if isinstance(detail, str) and detail
            else ""
        )
        return InvalidResponseError(
            f"{self.method} {self.url} answered {answer.status}, a success, with a SCIM "
            f"Error{what} where {self.expects} was expected{why}",
            body_excerpt="" if why else _redacted_excerpt(answer.content, redact),
        )

    def error(self, answer: Answer, redact: Redactor = _NO_SECRETS) -> ScimSyncError:
        """The error for a non-2xx ``answer`` (see the module docstring)."""
        status = answer.status
        content = answer.content
        scim_type = detail = None
        try:
            data = json.loads(content) if content.strip() else None
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            raw_type = data.get("scimType")
            raw_detail = data.get("detail")
            scim_type = redact(raw_type) if isinstance(raw_type, str) else None
            detail = redact(raw_detail) if isinstance(raw_detail, str) else None
        error = error_for_status(status)(
            status,
            scim_type=scim_type,
            detail=detail,
            method=self.method,
            url=self.url,
            body_excerpt="" if detail else _redacted_excerpt(content, redact),
        )
        if isinstance(error, (TooManyRequestsError, ServerError)):
            error.retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        if isinstance(error, ServerError) and not self.idempotent and status not in _REFUSED_5XX:
            return self.outcome_unknown(f"answered {status}", cause=error)
        return error

    def outcome_unknown(self, what: str, *, cause: BaseException) -> OutcomeUnknownError:
        """The error for a write that may or may not have happened."""
        unknown = OutcomeUnknownError(
            f"{self.method} {self.url} {what}: it may or may not have taken effect; "
            "look the resource up before trying again",
            method=self.method,
            url=self.url,
            payload=_without_secrets(self.payload),
        )
        unknown.__cause__ = cause
        return unknown


# -- readers: decoded JSON -> result ---------------------------------------------------------


def _json_kind(data: Any) -> str:
    """What decoded JSON ``data`` is, in words: ``"JSON null"``, ``"a JSON array"``."""
    if data is None or isinstance(data, bool):
        return f"JSON {json.dumps(data)}"
    if isinstance(data, (int, float)):
        return "a JSON number"
    if isinstance(data, str):
        return "a JSON string"
    if isinstance(data, list):
        return "a JSON array"
    return "a JSON object"


def _get_folded(data: Mapping[str, Any], name: str) -> Any:
    # Attribute names are case-insensitive (RFC 7643 §2.1).
    folded = name.lower()
    return next((v for k, v in data.items() if isinstance(k, str) and k.lower() == folded), None)


def _is_scim_error(data: Any) -> bool:
    """True when ``data`` is a SCIM Error message (RFC 7644 §3.12), by its schemas."""
    if not isinstance(data, dict):
        return False
    schemas = _get_folded(data, "schemas")
    return isinstance(schemas, list) and any(
        isinstance(urn, str) and urn.lower() == ERROR_SCHEMA.lower() for urn in schemas
    )


def _expected(kind: type[Resource] | str) -> str:
    """What an answer about ``kind`` is expected to be: ``"a User"``, ``"a /Devices resource"``."""
    if isinstance(kind, str):
        return f"a {kind} resource"
    name = kind.__name__
    return f"{'an' if name[:1] in 'AEIO' else 'a'} {name}"


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResourceValidationError(
            "invalid resource", [f"$: expected an object, got {data!r:.60}"]
        )
    return data


def _model_reader(cls: type[R]) -> Callable[[Any], R]:
    def read(data: Any) -> R:
        return from_scim(_object(data), cls)

    return read


def _answered_id(resource: object) -> object:
    if isinstance(resource, Mapping):
        return next(
            (v for k, v in resource.items() if isinstance(k, str) and k.lower() == "id"), None
        )
    return getattr(resource, "id", None)


def _for_id(
    asked: str, reader: Callable[[Any], T], note: Callable[[str], None], where: str
) -> Callable[[Any], T]:
    """``reader``, refusing a resource that names another id than the one asked for.

    One that names none is taken as the one asked for (the target routed the URL to
    it), and noted.
    """

    def read(data: Any) -> T:
        resource = reader(data)
        answered = _answered_id(resource)
        if isinstance(answered, (int, float)) and not isinstance(answered, bool):
            answered = str(answered)  # a numeric id, as some targets write them
        if answered is None:
            note(f"{where}: a resource without its id (RFC 7643 §3.1)")
        elif answered != asked:
            raise ResourceValidationError(
                "an answer for another resource",
                [f"$.id: asked for {asked!r}, answered {answered!r:.80}"],
            )
        return resource

    return read


def _optional(reader: Callable[[Any], T]) -> Callable[[Any], T | None]:
    def read(data: Any) -> T | None:
        return None if data is None else reader(data)

    return read


def _ignore(_: Any) -> None:
    return None


@attrs.frozen
class ListedPage(Generic[T]):
    """A page as read: its ListResponse, and whether it carried ``totalResults``.

    Without one (RFC 7644 §3.4.2 requires it), ``response.total_results`` is the
    number of resources on the page, and means nothing more.
    """

    response: ListResponse[T]
    total_announced: bool = True


def _page_reader(item: Any, note: Callable[[str], None], where: str) -> Callable[[Any], Any]:
    # Lenient here only: the ListResponse model stays strict everywhere else.
    def read(data: Any) -> ListedPage[Any]:
        keys = {key.lower(): key for key in _object(data) if isinstance(key, str)}
        if "totalresults" not in keys and "resources" in keys:
            note(f"{where}: ListResponse without totalResults (RFC 7644 §3.4.2)")
            listed = data[keys["resources"]]
            counted = {**data, "totalResults": len(listed) if isinstance(listed, list) else 0}
            return ListedPage(from_scim(counted, ListResponse[item]), total_announced=False)
        page = from_scim(data, ListResponse[item])
        if page.total_results > 0 and "resources" not in keys:
            raise ResourceValidationError(
                "invalid ListResponse",
                [f"$.Resources: missing while totalResults is {page.total_results}"],
            )
        return ListedPage(page)

    return read


def _listed_reader(
    cls: type[T], note: Callable[[str], None], where: str
) -> Callable[[Any], tuple[T, ...]]:
    # Discovery endpoints answer a ListResponse, or (some targets) a bare JSON list.
    def read(data: Any) -> tuple[T, ...]:
        if isinstance(data, list):
            note(f"{where}: a JSON array instead of a ListResponse (RFC 7644 §4)")
            return tuple(from_scim(_object(item), cls) for item in data)
        return tuple(_page_reader(cls, note, where)(data).response.resources)

    return read


# -- the base ----------------------------------------------------------------------------------


def _attribute_list(names: Sequence[str] | None) -> str | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    return ",".join(names)


def _version_of(resource: object) -> str | None:
    if isinstance(resource, Resource):
        return resource.meta.version if resource.meta is not None else None
    if isinstance(resource, Mapping):
        meta = resource.get("meta")
        version = meta.get("version") if isinstance(meta, Mapping) else None
        return version if isinstance(version, str) else None
    return None


def _filter_text(filter: Filter | str | None) -> str | None:
    # Text from the caller is checked here, so a typo fails before any request leaves.
    if filter is None or isinstance(filter, Filter):
        return None if filter is None else str(filter)
    parse_filter(filter)
    return filter


def equality_filter(attribute: str, value: FilterValue) -> Filter:
    """``attribute eq value``, built with the filter builder (never by joining strings)."""
    return attr(attribute).eq(value)


class BaseScimClient:
    """Configuration and request preparation shared by the sync and async clients."""

    def __init__(
        self,
        *,
        base_url: str | httpx.URL,
        auth: httpx.Auth | None,
        retry: RetryPolicy,
        rate_limiter: RateLimiter | None,
        follow_redirects: bool,
        allow_insecure_http: bool,
        etags: bool | None,
        capabilities: ServiceCapabilities | None,
        max_members_per_operation: int | None,
        max_response_bytes: int,
        request_deadline: float | None,
        max_listing_pages: int | None,
        max_listing_resources: int | None,
        on_request: Iterable[Callable[[RequestDetails], None]],
        on_retry: Iterable[Callable[[RetryDetails], None]],
        clock: Callable[[], float],
    ) -> None:
        url = require_safe_url(
            base_url, what="the SCIM base URL", allow_insecure_http=allow_insecure_http
        )
        if url.query or url.fragment:
            raise ConfigurationError("the SCIM base URL must not have a query or a fragment")
        if not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry must be a RetryPolicy")
        if max_members_per_operation is not None and not (
            isinstance(max_members_per_operation, int) and max_members_per_operation >= 1
        ):
            raise ConfigurationError("max_members_per_operation must be an integer, 1 or more")
        if not (isinstance(max_response_bytes, int) and max_response_bytes >= 1):
            raise ConfigurationError("max_response_bytes must be an integer, 1 or more")
        if request_deadline is not None and not (
            isinstance(request_deadline, (int, float))
            and not isinstance(request_deadline, bool)
            and math.isfinite(request_deadline)
            and request_deadline > 0
        ):
            raise ConfigurationError("request_deadline must be a positive number of seconds")
        for name, limit in (
            ("max_listing_pages", max_listing_pages),
            ("max_listing_resources", max_listing_resources),
        ):
            if limit is not None and not (isinstance(limit, int) and limit >= 1):
                raise ConfigurationError(f"{name} must be an integer, 1 or more")
        self.base_url = url
        self._base = str(url).rstrip("/")
        self._auth = auth
        self.retry = retry
        self._rate_limiter = rate_limiter
        self._follow_redirects = follow_redirects
        self._etags = etags
        self._capabilities = capabilities
        self._max_members_per_operation = max_members_per_operation
        self._max_response_bytes = max_response_bytes
        self._request_deadline = request_deadline
        self._max_listing_pages = max_listing_pages
        self._max_listing_resources = max_listing_resources
        self._on_request = tuple(on_request)
        self._on_retry = tuple(on_retry)
        self._counting = threading.Lock()
        self._requests_sent = 0
        self._retries_sent = 0
        self._clock = clock
        self._service_provider_config: ServiceProviderConfig | None = None
        self._schemas: tuple[Schema, ...] | None = None
        self._resource_types: tuple[ResourceType, ...] | None = None
        # Insertion-ordered and set-like; one key assignment is atomic under threads.
        self._deviations: dict[str, None] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base!r}, auth={self._auth!r})"

    def add_hooks(
        self,
        *,
        on_request: Iterable[Callable[[RequestDetails], None]] = (),
        on_retry: Iterable[Callable[[RetryDetails], None]] = (),
    ) -> None:
        """Add ``on_request`` and ``on_retry`` hooks to those the client was made with.

        For an instrumentation attached to a client already made
        (:func:`scimsync.sync.observe` does this); requests already in flight may or
        may not reach the new hooks. A hook runs on the request's own thread or
        task, and what it raises fails the request: keep hooks quick and quiet.
        """
        self._on_request = (*self._on_request, *on_request)
        self._on_retry = (*self._on_retry, *on_retry)

    @property
    def deviations(self) -> tuple[str, ...]:
        """How the target departed from SCIM so far, each way once, in the order seen.

        Short notes for a report, such as ``"GET /Schemas: ListResponse without
        totalResults (RFC 7644 §3.4.2)"``; each is also logged once, as a warning.
        The client reads such answers all the same.
        """
        return tuple(self._deviations)

    def _note_deviation(self, note: str) -> None:
        if note not in self._deviations:
            self._deviations[note] = None
            logger.warning("the SCIM target deviates from the RFCs: %s", note)

    @property
    def requests_sent(self) -> int:
        """HTTP requests this client has sent (every attempt, retries included)."""
        return self._requests_sent

    @property
    def retries_sent(self) -> int:
        """Of :attr:`requests_sent`, the attempts after the first of a request."""
        return self._retries_sent

    # -- URLs ----------------------------------------------------------------------------------

    @staticmethod
    def _endpoint_of(kind: type[Resource] | str) -> str:
        if isinstance(kind, str):
            endpoint = kind
        elif isinstance(kind, type) and issubclass(kind, Resource) and kind.endpoint:
            endpoint = kind.endpoint
        else:
            raise ConfigurationError(
                f"{kind!r} is neither a resource class nor an endpoint such as '/Devices'"
            )
        if (
            not endpoint.startswith("/")
            or any(char in endpoint for char in "?#\\")
            or "://" in endpoint
            or ".." in endpoint.split("/")
        ):
            raise ConfigurationError(f"{endpoint!r} is not an endpoint path such as '/Devices'")
        return endpoint.rstrip("/")

    def _url(self, endpoint: str, id: str | None = None) -> str:
        if id is None:
            return self._base + endpoint
        if not isinstance(id, str) or not id:
            raise ResourceValidationError("a resource id is required", [f"$.id: got {id!r}"])
        return f"{self._base}{endpoint}/{quote(id, safe='')}"

    @staticmethod
    def _reader_for(kind: type[Resource] | str) -> Callable[[Any], Any]:
        return _object if isinstance(kind, str) else _model_reader(kind)

    # -- preparation -----------------------------------------------------------------------------

    def _prepare_create(
        self, resource: Resource | Mapping[str, Any], endpoint: str | None
    ) -> PreparedCall[Any]:
        if isinstance(resource, Resource):
            kind: type[Resource] | str = endpoint or type(resource)
            payload = to_scim(resource, request=True)
        elif isinstance(resource, Mapping):
            if endpoint is None:
                raise ConfigurationError("a resource given as a dict needs an endpoint")
            kind = endpoint
            payload = {k: v for k, v in resource.items() if k not in ("id", "meta")}
        else:
            raise ConfigurationError(f"cannot create {type(resource).__name__}")
        reader = (
            self._reader_for(kind)
            if isinstance(resource, Mapping)
            else _model_reader(type(resource))
        )
        return PreparedCall(
            method="POST",
            url=self._url(self._endpoint_of(kind)),
            reader=reader,
            payload=payload,
            body=_json_bytes(payload),
            idempotent=False,
            expects=_expected(kind if isinstance(resource, Mapping) else type(resource)),
        )

    def _prepare_get(
        self,
        kind: type[Resource] | str,
        id: str,
        attributes: Sequence[str] | None,
        excluded_attributes: Sequence[str] | None,
    ) -> PreparedCall[Any]:
        endpoint = self._endpoint_of(kind)
        return PreparedCall(
            method="GET",
            url=self._url(endpoint, id),
            reader=_for_id(
                id, self._reader_for(kind), self._note_deviation, f"GET {endpoint}/{{id}}"
            ),
            params=self._projection(attributes, excluded_attributes),
            expects=_expected(kind),
        )

    @staticmethod
    def _projection(
        attributes: Sequence[str] | None, excluded_attributes: Sequence[str] | None
    ) -> dict[str, str] | None:
        params: dict[str, str] = {}
        included = _attribute_list(attributes)
        excluded = _attribute_list(excluded_attributes)
        if included:
            params["attributes"] = included
        if excluded:
            params["excludedAttributes"] = excluded
        return params or None

    def _prepare_replace(
        self, resource: Resource | Mapping[str, Any], endpoint: str | None, if_match: str | None
    ) -> PreparedCall[Any]:
        if isinstance(resource, Resource):
            kind: type[Resource] | str = endpoint or type(resource)
            id = resource.id
            payload = to_scim(resource, request=True)
            reader: Callable[[Any], Any] = _model_reader(type(resource))
            expects = _expected(type(resource))
        elif isinstance(resource, Mapping):
            if endpoint is None:
                raise ConfigurationError("a resource given as a dict needs an endpoint")
            kind, id = endpoint, resource.get("id")
            payload = {k: v for k, v in resource.items() if k not in ("id", "meta")}
            reader = _object
            expects = _expected(endpoint)
        else:
            raise ConfigurationError(f"cannot replace {type(resource).__name__}")
        if not isinstance(id, str) or not id:
            raise ResourceValidationError(
                "cannot replace a resource without an id", [f"$.id: got {id!r}"]
            )
        return PreparedCall(
            method="PUT",
            url=self._url(self._endpoint_of(kind), id),
            reader=reader,
            payload=payload,
            body=_json_bytes(payload),
            if_match=if_match,
            expects=expects,
        )

    def _prepare_patch(
        self,
        kind: type[Resource] | str,
        id: str,
        operations: PatchOp | Iterable[PatchOperation],
        if_match: str | None,
        attributes: Sequence[str] | None,
    ) -> PreparedCall[Any]:
        ops = operations.operations if isinstance(operations, PatchOp) else tuple(operations)
        if not ops:
            raise ConfigurationError("a PATCH needs at least one operation")
        if not all(isinstance(op, PatchOperation) for op in ops):
            raise ConfigurationError("PATCH operations must be PatchOperation values")
        payload = {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [to_scim(op) for op in ops],
        }
        return PreparedCall(
            method="PATCH",
            url=self._url(self._endpoint_of(kind), id),
            reader=_optional(self._reader_for(kind)),
            params=self._projection(attributes, None),
            payload=payload,
            body=_json_bytes(payload),
            if_match=if_match,
            idempotent=False,
            empty_ok=True,
            expects=_expected(kind),
        )

    def _prepare_delete(
        self, kind: type[Resource] | str, id: str, if_match: str | None
    ) -> PreparedCall[None]:
        return PreparedCall(
            method="DELETE",
            url=self._url(self._endpoint_of(kind), id),
            reader=_ignore,
            if_match=if_match,
            ignore_body=True,
        )

    def _paginator(self, page_size: int, query: ListQuery) -> Paginator[Any]:
        return Paginator(
            page_size,
            max_pages=self._max_listing_pages,
            max_resources=self._max_listing_resources,
            # A whole listing (what deprovisioning reads) is worth a request to check a
            # first page that reaches totalResults; a lookup by filter is not.
            check_first_page=query.filter is None,
        )

    def _prepare_page(
        self,
        kind: type[Resource] | str,
        query: ListQuery,
        start_index: int,
        count: int,
    ) -> PreparedCall[ListedPage[Any]]:
        item: Any = dict[str, Any] if isinstance(kind, str) else kind
        endpoint = self._endpoint_of(kind)
        if query.use_search:
            payload: dict[str, Any] = {"schemas": [SEARCH_REQUEST_SCHEMA]}
            payload.update(query.search_fields())
            payload.update(startIndex=start_index, count=count)
            return PreparedCall(
                method="POST",
                url=self._url(endpoint + "/.search"),
                reader=_page_reader(item, self._note_deviation, f"POST {endpoint}/.search"),
                payload=payload,
                body=_json_bytes(payload),
                # A search reads; sending it twice changes nothing.
                idempotent=True,
                expects="a ListResponse",
            )
        params = query.query_params()
        params.update(startIndex=str(start_index), count=str(count))
        return PreparedCall(
            method="GET",
            url=self._url(endpoint),
            reader=_page_reader(item, self._note_deviation, f"GET {endpoint}"),
            params=params,
            expects="a ListResponse",
        )

    def _prepare_bulk(
        self, operations: Iterable[BulkOperation], fail_on_errors: int | None
    ) -> PreparedCall[BulkResponse]:
        wire = []
        for op in operations:
            if not isinstance(op, BulkOperation):
                raise ConfigurationError("bulk operations must be BulkOperation values")
            data = to_scim(op.data, request=True) if isinstance(op.data, Resource) else op.data
            wire.append(to_scim(attrs.evolve(op, data=data)))
        if not wire:
            raise ConfigurationError("a bulk request needs at least one operation")
        payload: dict[str, Any] = {"schemas": [BULK_REQUEST_SCHEMA], "Operations": wire}
        if fail_on_errors is not None:
            payload["failOnErrors"] = fail_on_errors
        return PreparedCall(
            method="POST",
            url=self._url("/Bulk"),
            reader=lambda data: from_scim(_object(data), BulkResponse),
            payload=payload,
            body=_json_bytes(payload),
            idempotent=False,
            expects="a BulkResponse",
        )

    def _prepare_service_provider_config(self) -> PreparedCall[ServiceProviderConfig]:
        return PreparedCall(
            method="GET",
            url=self._url("/ServiceProviderConfig"),
            reader=lambda data: from_scim(_object(data), ServiceProviderConfig),
            expects="a ServiceProviderConfig",
        )

    def _prepare_schemas(self) -> PreparedCall[tuple[Schema, ...]]:
        return PreparedCall(
            method="GET",
            url=self._url("/Schemas"),
            reader=_listed_reader(Schema, self._note_deviation, "GET /Schemas"),
            expects="a ListResponse",
            array_ok=True,
        )

    def _prepare_resource_types(self) -> PreparedCall[tuple[ResourceType, ...]]:
        return PreparedCall(
            method="GET",
            url=self._url("/ResourceTypes"),
            reader=_listed_reader(ResourceType, self._note_deviation, "GET /ResourceTypes"),
            expects="a ListResponse",
            array_ok=True,
        )

    def _capabilities_from(self, config: ServiceProviderConfig | None) -> ServiceCapabilities:
        # A target without a ServiceProviderConfig is read as supporting nothing.
        if config is None:
            return ServiceCapabilities(max_members_per_operation=self._max_members_per_operation)
        return ServiceCapabilities.from_config(
            config, max_members_per_operation=self._max_members_per_operation
        )

    # -- sending: pieces the I/O classes share -----------------------------------------------------

    def _settle_deadline(self, timeout: httpx.Timeout) -> None:
        # Called once the HTTP client exists: its read timeout is the default deadline.
        if self._request_deadline is None:
            self._request_deadline = (
                timeout.read if timeout.read is not None else DEFAULT_REQUEST_DEADLINE
            )

    def _deadline(self, call: PreparedCall[Any], first_started: float) -> Deadline:
        """The deadline of the attempt starting now, within the retry policy's total budget."""
        assert self._request_deadline is not None, "the twins settle it at construction"
        now = self._clock()
        left = self.retry.max_total_seconds - (now - first_started)
        if left >= self._request_deadline:
            return Deadline(
                at=now + self._request_deadline,
                seconds=self._request_deadline,
                setting="request_deadline",
            )
        if left <= 0:
            # Nothing left to send with: fail without sending (and without a retry).
            raise TransportError(
                f"{call.method} {call.url} not sent: the retry policy's max_total_seconds "
                f"({self.retry.max_total_seconds:g} s) is spent"
            )
        return Deadline(
            at=now + left,
            seconds=left,
            setting=f"the rest of RetryPolicy.max_total_seconds={self.retry.max_total_seconds:g}",
        )

    def _check_deadline(self, request: httpx.Request, deadline: Deadline) -> None:
        if deadline.passed(self._clock()):
            raise deadline.exceeded(request)

    def _build_request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        call: PreparedCall[Any],
        deadline: Deadline,
    ) -> httpx.Request:
        headers = {"Accept": _ACCEPT}
        if call.body is not None:
            headers["Content-Type"] = _CONTENT_TYPE
        if call.if_match is not None:
            headers["If-Match"] = call.if_match
        return http.build_request(
            call.method,
            call.url,
            params=call.params,
            content=call.body,
            headers=headers,
            timeout=deadline.timeout(http.timeout),
        )

    def _body_buffer(self, response: httpx.Response) -> BodyBuffer:
        return BodyBuffer(response.status_code, response.headers, self._max_response_bytes)

    def _send_arguments(self) -> dict[str, Any]:
        # Streamed: the clients read the body themselves, chunk by chunk, up to a limit.
        arguments: dict[str, Any] = {"follow_redirects": self._follow_redirects, "stream": True}
        if self._auth is not None:
            arguments["auth"] = self._auth
        return arguments

    def _redactor(self, *requests: httpx.Request | None) -> Redactor:
        """A redactor of the auth's secrets and the credentials ``requests`` carried."""
        values: list[Secret | str] = []
        auth: object = self._auth
        if isinstance(auth, SecretHolder):
            values += auth.secrets()
        for request in requests:
            if request is None:
                continue
            for name, value in request.headers.items():
                if _CREDENTIAL_HEADER.search(name):
                    values += _header_secrets(value)
        return Redactor(values)

    def _transport_error(
        self, call: PreparedCall[Any], exc: httpx.RequestError, request: httpx.Request
    ) -> ScimSyncError:
        failed_request: httpx.Request | None
        try:
            failed_request = exc.request
        except RuntimeError:  # pragma: no cover - httpx always sets it when sending
            failed_request = None
        text = str(exc)
        masked = self._redactor(request, failed_request)(text)
        if masked != text:
            # The cause stays chained (the retry policy reads its type): mask it in place.
            exc.args = (masked,)
        if isinstance(exc, httpx.DecodingError):
            return InvalidResponseError(
                f"{call.method} {call.url}: undecodable answer ({masked})", transient=True
            )
        # A failure on another request (the token endpoint's) never reached the target.
        sent = failed_request is request and not isinstance(exc, _NOT_SENT)
        what = f"{type(exc).__name__}: {masked}" if masked else type(exc).__name__
        if sent and not call.idempotent:
            return call.outcome_unknown(f"failed after sending ({what})", cause=exc)
        return TransportError(f"{call.method} {call.url} failed: {what}")

    def _report(
        self,
        call: PreparedCall[Any],
        attempt: int,
        started: float,
        *,
        status: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        elapsed = self._clock() - started
        error_name = type(error).__name__ if error is not None else None
        with self._counting:
            self._requests_sent += 1
            self._retries_sent += attempt > 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                call.method,
                call.url,
                status if status is not None else error_name,
                elapsed * 1000,
                attempt,
            )
        if self._on_request:
            details = RequestDetails(
                method=call.method,
                url=call.url,
                attempt=attempt,
                status=status,
                error=error_name,
                elapsed_seconds=elapsed,
            )
            for hook in self._on_request:
                hook(details)


@attrs.frozen(kw_only=True)
class ListQuery:
    """The parameters of a listing other than paging (RFC 7644 §3.4.2)."""

    filter: str | None = None
    attributes: str | None = None
    excluded_attributes: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    use_search: bool = False

    @classmethod
    def build(
        cls,
        *,
        filter: Filter | str | None,
        attributes: Sequence[str] | None,
        excluded_attributes: Sequence[str] | None,
        sort_by: str | None,
        sort_order: str | None,
        use_search: bool,
    ) -> ListQuery:
        """Check and normalise the caller's parameters."""
        if sort_order is not None and sort_order not in ("ascending", "descending"):
            raise ConfigurationError("sort_order is 'ascending' or 'descending'")
        return cls(
            filter=_filter_text(filter),
            attributes=_attribute_list(attributes),
            excluded_attributes=_attribute_list(excluded_attributes),
            sort_by=None if sort_by is None else str(AttrPath.parse(sort_by)),
            sort_order=sort_order,
            use_search=use_search,
        )

    def query_params(self) -> dict[str, str]:
        """The query string of a GET listing."""
        params = {
            "filter": self.filter,
            "attributes": self.attributes,
            "excludedAttributes": self.excluded_attributes,
            "sortBy": self.sort_by,
            "sortOrder": self.sort_order,
        }
        return {key: value for key, value in params.items() if value}

    def search_fields(self) -> dict[str, Any]:
        """The body fields of a POST ``/.search`` (RFC 7644 §3.4.3)."""
        fields: dict[str, Any] = {
            "filter": self.filter,
            "attributes": self.attributes.split(",") if self.attributes else None,
            "excludedAttributes": (
                self.excluded_attributes.split(",") if self.excluded_attributes else None
            ),
            "sortBy": self.sort_by,
            "sortOrder": self.sort_order,
        }
        return {key: value for key, value in fields.items() if value}
