"""Authentication for SCIM targets, as :class:`httpx.Auth` flows.

- :class:`BearerToken`: a static token, or a callable returning the current one
  (for tokens another process rotates).
- :class:`OAuth2ClientCredentials`: the OAuth 2.0 client credentials grant
  (RFC 6749 §4.4). The token is fetched on first use, cached, fetched again shortly
  before it expires, and once more when the target answers 401; a second 401 is
  the caller's :class:`~scimsync.errors.UnauthorizedError`.

Any other :class:`httpx.Auth` works with the clients as well.

Tokens and client secrets are held as :class:`~scimsync.secrets.Secret`: they are
never in a ``repr``, a log line, an exception message or a URL. Both auths are
:class:`SecretHolder` objects: they say which secrets they hold, so the clients mask
them (and the token endpoint's errors do) wherever a server echoes them back. The token request
goes through the same :class:`httpx.Client` as the SCIM requests (so proxies and
certificates configured there apply) but is never retried blindly or logged with
its body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote_plus

import httpx

from ._urls import require_safe_url
from .errors import ConfigurationError, InvalidResponseError, error_for_status
from .secrets import Redactor, Secret

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator, Iterable

__all__ = ["BearerToken", "OAuth2ClientCredentials", "SecretHolder"]

# RFC 6750 §2.1 b64token: what may follow "Bearer " in a header.
_TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _checked_token(value: str | Secret, where: str) -> Secret:
    secret = Secret(value)
    if not _TOKEN_SYNTAX.fullmatch(secret.reveal()):
        # The value itself is never shown, not even in part.
        raise ConfigurationError(f"{where} is not a valid bearer token (RFC 6750 §2.1)")
    return secret


@runtime_checkable
class SecretHolder(Protocol):
    """An auth that says which secrets it holds, so that text from a server is masked of them.

    The clients call :meth:`secrets` whenever they build an error from a target's
    answer, and mask each value (as it is, and percent-, HTML- or JSON-escaped: see
    :class:`~scimsync.secrets.Redactor`) from the error's message, ``detail``,
    ``scim_type`` and body excerpt. Give your own :class:`httpx.Auth` this method to
    have its secrets masked too; the ``Authorization`` header a request carried is
    masked in any case.
    """

    def secrets(self) -> tuple[Secret, ...]:
        """Every secret value this auth holds now, in each form it sends it."""
        ...


class BearerToken(httpx.Auth):
    """Send ``Authorization: Bearer <token>`` with every request.

    ``token`` is the token (a ``str`` or a :class:`~scimsync.secrets.Secret`), or a
    callable returning the current one, called for each request.
    """

    def __init__(self, token: str | Secret | Callable[[], str | Secret]) -> None:
        if callable(token):
            self._static: Secret | None = None
            self._source: Callable[[], str | Secret] | None = token
        else:
            self._static = _checked_token(token, "BearerToken")
            self._source = None
        self._last_sent: Secret | None = self._static

    def current(self) -> Secret:
        """The token to send now."""
        if self._static is not None:
            return self._static
        assert self._source is not None
        return _checked_token(self._source(), "the token returned by BearerToken's callable")

    def secrets(self) -> tuple[Secret, ...]:
        """The token (for a callable: the last token sent), for the clients to mask.

        See :class:`SecretHolder`.
        """
        return () if self._last_sent is None else (self._last_sent,)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header and send the request once."""
        token = self.current()
        self._last_sent = token
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        yield request

    def __repr__(self) -> str:
        if self._source is not None:
            return f"BearerToken({getattr(self._source, '__qualname__', 'callable')})"
        return f"BearerToken({self._static!r})"


class OAuth2ClientCredentials(httpx.Auth):
    """Fetch a bearer token with the OAuth 2.0 client credentials grant and keep it fresh.

    ``token_url`` must be ``https`` (plain ``http`` only to loopback, or with
    ``allow_insecure_http=True``). The client authenticates with HTTP Basic
    (``client_auth="basic"``, the RFC 6749 default) or with ``client_id`` and
    ``client_secret`` in the form (``"post"``). ``scope`` is a space-separated string
    or an iterable of scopes; ``extra_params`` go into the form too (``audience``,
    ``resource``...).

    A token is fetched again ``refresh_margin`` seconds before it expires (or half its
    lifetime, if that is shorter), and once when the target answers 401 with it.
    ``clock`` is for tests.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | Secret,
        *,
        scope: str | Iterable[str] | None = None,
        extra_params: dict[str, str] | None = None,
        client_auth: str = "basic",
        refresh_margin: float = 60.0,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = require_safe_url(
            token_url, what="the token URL", allow_insecure_http=allow_insecure_http
        )
        if not client_id:
            raise ConfigurationError("OAuth2ClientCredentials needs a client_id")
        if client_auth not in ("basic", "post"):
            raise ConfigurationError("client_auth is 'basic' or 'post'")
        if not (math.isfinite(refresh_margin) and refresh_margin >= 0):
            raise ConfigurationError("refresh_margin must be 0 or more seconds")
        self.client_id = client_id
        self._client_secret = Secret(client_secret)
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self._extra_params = dict(extra_params or {})
        self._client_auth = client_auth
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: Secret | None = None
        self._refresh_at: float | None = None
        # Bumped at each new token: a 401 for an older token needs no new fetch.
        self._generation = 0
        self._thread_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._async_locks = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={str(self.token_url)!r}, "
            f"client_id={self.client_id!r}, client_secret={self._client_secret!r}, "
            f"scope={self.scope!r})"
        )

    def secrets(self) -> tuple[Secret, ...]:
        """The client secret, its HTTP Basic forms and the current token, for masking.

        See :class:`SecretHolder`. Both Basic forms are given: ``base64(id:secret)``
        as RFC 7617 has it and with both parts form-encoded first as RFC 6749 §2.3.1
        (what is sent).
        """
        secret = self._client_secret.reveal()
        pairs = (
            f"{self.client_id}:{secret}",
            f"{quote_plus(self.client_id)}:{quote_plus(secret)}",
        )
        held = [self._client_secret]
        held += (Secret(base64.b64encode(pair.encode()).decode()) for pair in pairs)
        if self._token is not None:
            held.append(self._token)
        return tuple(held)

    # -- the pure part: when to fetch, what to send, what came back ---------------------

    def _fresh(self, stale_generation: int | None) -> bool:
        if self._token is None:
            return False
        if stale_generation is not None and self._generation == stale_generation:
            return False
        return self._refresh_at is None or self._clock() < self._refresh_at

    def build_token_request(self) -> httpx.Request:
        """The POST to the token endpoint (the secret is only in this request)."""
        form = {"grant_type": "client_credentials", **self._extra_params}
        if self.scope:
            form["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if self._client_auth == "basic":
            # RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret.reveal())}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = self._client_secret.reveal()
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def _token_request_for(self, request: httpx.Request) -> httpx.Request:
        # The token request goes out inside the SCIM request's send: it gets the same
        # timeouts (which the clients cut to the attempt's deadline), not none at all.
        token_request = self.build_token_request()
        timeout = request.extensions.get("timeout")
        if timeout is not None:
            token_request.extensions["timeout"] = timeout
        return token_request

    def _accept(self, response: httpx.Response) -> None:
        where = f"token endpoint {self.token_url}"
        if response.status_code != 200:
            raise _token_error(response, str(self.token_url), Redactor(self.secrets()))
        try:
            data = json.loads(response.content)
        except ValueError:
            raise InvalidResponseError(f"the {where} did not answer JSON") from None
        if not isinstance(data, dict):
            raise InvalidResponseError(f"the {where} did not answer a JSON object")
        # The body holds the token: errors below name fields, never show the body.
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise InvalidResponseError(f"the {where} answered without an access_token")
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise InvalidResponseError(f"the {where} issued a token of unsupported type")
        lifetime = _seconds(data.get("expires_in"))
        if lifetime is None and data.get("expires_in") is not None:
            raise InvalidResponseError(f"the {where} answered a malformed expires_in")
        try:
            secret = _checked_token(token, f"the access_token from the {where}")
        except ConfigurationError as exc:
            raise InvalidResponseError(str(exc)) from None
        now = self._clock()
        self._token = secret
        self._generation += 1
        self._refresh_at = (
            None if lifetime is None else now + lifetime - min(self._refresh_margin, lifetime / 2)
        )

    @staticmethod
    def _authorize(request: httpx.Request, token: Secret) -> None:
        request.headers["Authorization"] = f"Bearer {token.reveal()}"

    # -- the flows ---------------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Authorize ``request``, fetching a token first when needed; retry once on 401."""
        stale: int | None = None
        for _ in range(2):
            with self._thread_lock:
                if not self._fresh(stale):
                    token_response = yield self._token_request_for(request)
                    token_response.read()
                    self._accept(token_response)
                assert self._token is not None
                token, generation = self._token, self._generation
            self._authorize(request, token)
            response = yield request
            if response.status_code != 401:
                return
            stale = generation

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authorize ``request``, fetching a token first when needed; retry once on 401."""
        lock = self._async_lock()
        stale: int | None = None
        for _ in range(2):
            async with lock:
                if not self._fresh(stale):
                    token_response = yield self._token_request_for(request)
                    await token_response.aread()
                    self._accept(token_response)
                assert self._token is not None
                token, generation = self._token, self._generation
            self._authorize(request, token)
            response = yield request
            if response.status_code != 401:
                return
            stale = generation

    def _async_lock(self) -> asyncio.Lock:
        # One lock per event loop: an asyncio.Lock may not be shared across loops.
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    if isinstance(value, str) and value.strip().isdigit():
        return float(value)
    return None


def _token_error(response: httpx.Response, url: str, redact: Redactor) -> Exception:
    # The endpoint's own words may repeat the request, Basic credentials included.
    error = description = None
    try:
        data: Any = json.loads(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error") if isinstance(data.get("error"), str) else None
        described = data.get("error_description")
        description = described if isinstance(described, str) else None
    detail = "the token endpoint refused the request"
    if error:
        detail += f": {redact(error)}"
    if description:
        detail += f" ({redact(description)[:200]})"
    cls = error_for_status(response.status_code)
    return cls(response.status_code, detail=detail, method="POST", url=url)
