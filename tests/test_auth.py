"""Secret, BearerToken and OAuth2ClientCredentials, driven through httpx.MockTransport.

Real token endpoints on loopback are in ``test_auth_integration.py``.
"""

from __future__ import annotations

import base64
import copy
import json
import pickle
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import httpx
import pytest

from _mock_target import BASE, json_response
from scimsync import User
from scimsync.auth import BearerToken, OAuth2ClientCredentials
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.errors import (
    ConfigurationError,
    InvalidResponseError,
    ServerError,
    UnauthorizedError,
)
from scimsync.retry import RetryPolicy, no_waits
from scimsync.secrets import Secret

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN_URL = "https://login.example.com/oauth2/token"
USER_JSON = {"id": "u-1", "userName": "bjensen"}


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class IdentityProvider:
    """A token endpoint and a SCIM target in one MockTransport handler.

    The token endpoint hands out ``tok-1``, ``tok-2``...; the target accepts the tokens
    in ``accepted`` (all of them by default).
    """

    def __init__(self, *, expires_in: object = 3600, accepted: set[str] | None = None) -> None:
        self.expires_in = expires_in
        self.accepted = accepted
        self.issued = 0
        self.token_requests: list[httpx.Request] = []
        self.scim_requests: list[httpx.Request] = []
        # Headers as received: a request re-sent after a 401 is the same, mutated object.
        self.authorizations: list[str | None] = []
        self.token_answers: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.example.com":
            self.token_requests.append(request)
            if self.token_answers:
                return self.token_answers.pop(0)
            self.issued += 1
            body = {"access_token": f"tok-{self.issued}", "token_type": "bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in  # type: ignore[assignment]
            return httpx.Response(200, json=body)
        self.scim_requests.append(request)
        self.authorizations.append(request.headers.get("Authorization"))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.accepted is not None and token not in self.accepted:
            return json_response(401, {"status": "401", "detail": "invalid token"})
        if request.method == "POST":
            return json_response(201, USER_JSON)
        return json_response(200, USER_JSON)

    def client(self, auth: httpx.Auth, **options: object) -> ScimClient:
        return ScimClient(
            BASE,
            http=httpx.Client(transport=httpx.MockTransport(self)),
            auth=auth,
            **options,  # type: ignore[arg-type]
        )

    def tokens_sent(self) -> list[str | None]:
        return list(self.authorizations)


def oauth(clock: Clock | None = None, **options: object) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        TOKEN_URL,
        "client-1",
        "the-client-secret",
        clock=clock or Clock(),
        **options,  # type: ignore[arg-type]
    )


# -- Secret ---------------------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    """repr, str, f-strings, %-formatting and containers all print the redaction."""
    secret = Secret("hunter2")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret:>12}", "%s" % secret, str([secret])]  # noqa: UP031
    assert [] == [text for text in shown if "hunter2" in text]
    assert "hunter2" == secret.reveal()


def test_secret_compares_by_value_and_is_immutable() -> None:
    """Equal values are equal secrets; a secret cannot be changed or made of non-strings."""
    assert Secret("a") == Secret(Secret("a"))
    assert Secret("a") != Secret("b")
    assert hash(Secret("a")) == hash(Secret("a"))
    with pytest.raises(AttributeError):
        Secret("a")._value = "b"
    with pytest.raises(TypeError):
        Secret(42)  # type: ignore[arg-type]


def test_secret_is_not_pickled_but_copies() -> None:
    """Pickling would write the value in clear: refused; copies are the same secret."""
    secret = Secret("hunter2")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret is copy.deepcopy(secret)
    assert secret is copy.copy(secret)


# -- BearerToken ----------------------------------------------------------------------------------


def test_bearer_token_sets_the_header() -> None:
    """A static token goes in ``Authorization: Bearer``; its repr is redacted."""
    idp = IdentityProvider()
    auth = BearerToken("static-token-1")
    idp.client(auth).get(User, "u-1")
    assert ["Bearer static-token-1"] == idp.tokens_sent()
    assert "static-token-1" not in repr(auth)


def test_bearer_token_callable_is_asked_for_every_request() -> None:
    """A callable token source supports rotation: each request carries its current answer."""
    idp = IdentityProvider()
    tokens: Iterator[str | Secret] = iter(["rot-1", Secret("rot-2")])
    client = idp.client(BearerToken(lambda: next(tokens)))
    client.get(User, "u-1")
    client.get(User, "u-1")
    assert ["Bearer rot-1", "Bearer rot-2"] == idp.tokens_sent()


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "tök"])
def test_bearer_tokens_that_would_corrupt_the_header_are_refused(token: str) -> None:
    """Tokens outside RFC 6750's syntax are refused, and never repeated in the error."""
    with pytest.raises(ConfigurationError) as caught:
        BearerToken(token)
    assert (token == "") or token not in str(caught.value)


def test_any_httpx_auth_works() -> None:
    """The clients take any httpx.Auth, here HTTP Basic."""
    idp = IdentityProvider()
    idp.client(httpx.BasicAuth("svc", "pw")).get(User, "u-1")
    expected = "Basic " + base64.b64encode(b"svc:pw").decode()
    assert [expected] == idp.tokens_sent()


# -- OAuth2 client credentials --------------------------------------------------------------------


def test_token_is_fetched_once_and_reused() -> None:
    """One token request serves every SCIM request until the token nears expiry."""
    idp = IdentityProvider()
    client = idp.client(oauth(scope=["scim.read", "scim.write"]))
    for _ in range(3):
        client.get(User, "u-1")
    assert 1 == len(idp.token_requests)
    assert idp.tokens_sent() == ["Bearer tok-1"] * 3
    token_request = idp.token_requests[0]
    form = dict(parse_qsl(token_request.content.decode()))
    assert {"grant_type": "client_credentials", "scope": "scim.read scim.write"} == form
    expected = base64.b64encode(b"client-1:the-client-secret").decode()
    assert f"Basic {expected}" == token_request.headers["Authorization"]


def test_client_secret_post_puts_credentials_in_the_form() -> None:
    """``client_auth="post"`` sends client_id and client_secret in the form, no Basic header."""
    idp = IdentityProvider()
    idp.client(oauth(client_auth="post", extra_params={"audience": "scim"})).get(User, "u-1")
    request = idp.token_requests[0]
    assert {
        "grant_type": "client_credentials",
        "audience": "scim",
        "client_id": "client-1",
        "client_secret": "the-client-secret",
    } == dict(parse_qsl(request.content.decode()))
    assert None is request.headers.get("Authorization")


def test_token_is_refreshed_before_it_expires() -> None:
    """With 120 s of life and a 60 s margin, a new token is fetched after 60 s, not before."""
    idp = IdentityProvider(expires_in=120)
    clock = Clock()
    client = idp.client(oauth(clock, refresh_margin=60))
    client.get(User, "u-1")
    clock.now += 59
    client.get(User, "u-1")
    clock.now += 2
    client.get(User, "u-1")
    assert ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"] == idp.tokens_sent()


def test_short_lived_tokens_refresh_at_half_life() -> None:
    """A token living less than twice the margin is refreshed at half its life."""
    idp = IdentityProvider(expires_in=10)
    clock = Clock()
    client = idp.client(oauth(clock, refresh_margin=60))
    client.get(User, "u-1")
    clock.now += 4
    client.get(User, "u-1")
    clock.now += 2
    client.get(User, "u-1")
    assert ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"] == idp.tokens_sent()


def test_a_401_refreshes_the_token_once() -> None:
    """A token the target refuses is replaced once, and the request succeeds."""
    idp = IdentityProvider(accepted={"tok-2"})
    user = idp.client(oauth()).get(User, "u-1")
    assert "u-1" == user.id
    assert ["Bearer tok-1", "Bearer tok-2"] == idp.tokens_sent()


def test_a_second_401_is_unauthorized_without_more_fetches() -> None:
    """Refused again with a fresh token: UnauthorizedError, after exactly two token fetches."""
    idp = IdentityProvider(accepted=set())
    with pytest.raises(UnauthorizedError):
        idp.client(oauth()).create(User(user_name="bjensen"))
    assert 2 == len(idp.token_requests)
    assert 2 == len(idp.scim_requests)


def test_concurrent_401s_share_one_refresh() -> None:
    """A request refused with a token another request already replaced reuses the new one."""
    idp = IdentityProvider()
    auth = oauth()

    def token_answer(flow_request: httpx.Request) -> httpx.Response:
        return idp(flow_request)

    first = auth.sync_auth_flow(httpx.Request("GET", f"{BASE}/Users/a"))
    second = auth.sync_auth_flow(httpx.Request("GET", f"{BASE}/Users/b"))
    request_a = first.send(token_answer(next(first)))
    request_b = next(second)  # the cached token: no token request
    assert ["Bearer tok-1", "Bearer tok-1"] == [
        request_a.headers["Authorization"],
        request_b.headers["Authorization"],
    ]
    refresh = first.send(httpx.Response(401))
    request_a = first.send(token_answer(refresh))
    request_b = second.send(httpx.Response(401))  # already refreshed: straight to the retry
    assert ["Bearer tok-2", "Bearer tok-2"] == [
        request_a.headers["Authorization"],
        request_b.headers["Authorization"],
    ]
    assert 2 == len(idp.token_requests)


@pytest.mark.parametrize(
    ("answer", "error", "shown"),
    [
        (
            httpx.Response(401, json={"error": "invalid_client", "error_description": "bad"}),
            UnauthorizedError,
            "invalid_client (bad)",
        ),
        (httpx.Response(200, json={"token_type": "bearer"}), InvalidResponseError, "access_token"),
        (
            httpx.Response(200, json={"access_token": "t", "token_type": "mac"}),
            InvalidResponseError,
            "unsupported type",
        ),
        (
            httpx.Response(200, json={"access_token": "t", "expires_in": "soon"}),
            InvalidResponseError,
            "expires_in",
        ),
        (httpx.Response(200, text="<html>login</html>"), InvalidResponseError, "not answer JSON"),
    ],
)
def test_token_endpoint_failures_are_clear_and_secret_free(
    answer: httpx.Response, error: type[Exception], shown: str
) -> None:
    """Each failure says what went wrong and never shows the client secret or a token body."""
    idp = IdentityProvider()
    idp.token_answers.append(answer)
    with pytest.raises(error) as caught:
        idp.client(oauth(), retry=RetryPolicy.never()).get(User, "u-1")
    message = str(caught.value)
    assert shown in message
    assert "the-client-secret" not in message
    assert [] == idp.scim_requests


def test_token_endpoint_unavailable_is_retried_even_for_a_create() -> None:
    """A 503 from the token endpoint means the POST never left: it is retried, not unknown."""
    idp = IdentityProvider()
    idp.token_answers.append(httpx.Response(503))
    with no_waits():
        created = idp.client(oauth()).create(User(user_name="bjensen"))
    assert "u-1" == created.id
    assert 2 == len(idp.token_requests)
    assert 1 == len(idp.scim_requests)


def test_the_token_request_gets_the_attempts_timeouts() -> None:
    """The token fetch runs inside the SCIM request's send: it gets its deadline-cut timeouts.

    An ``httpx.Request`` built by an auth flow otherwise has no timeout at all.
    """
    idp = IdentityProvider()
    idp.client(oauth(), request_deadline=0.75).get(User, "u-1")
    token_timeout = idp.token_requests[0].extensions["timeout"]
    assert idp.scim_requests[0].extensions["timeout"] == token_timeout
    assert 0.75 == token_timeout["read"]


def test_token_endpoint_errors_are_scim_http_errors_of_the_token_url() -> None:
    """The error names the token endpoint, so a reader knows which server refused."""
    idp = IdentityProvider()
    idp.token_answers.append(httpx.Response(500, text="oops"))
    with pytest.raises(ServerError) as caught:
        idp.client(oauth(), retry=RetryPolicy.never()).get(User, "u-1")
    assert caught.value.url == TOKEN_URL


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://login.example.com/token", False),
        ("http://127.0.0.1:9000/token", True),
        ("https://login.example.com/token", True),
    ],
)
def test_token_url_must_be_https_off_loopback(url: str, ok: bool) -> None:
    """The client secret never travels over plain http, except to loopback."""
    if ok:
        OAuth2ClientCredentials(url, "id", "secret")
    else:
        with pytest.raises(ConfigurationError):
            OAuth2ClientCredentials(url, "id", "secret")


@pytest.mark.parametrize(
    "settings",
    [{"client_id": ""}, {"client_auth": "jwt"}, {"refresh_margin": -1.0}],
)
def test_oauth_settings_are_checked(settings: dict[str, object]) -> None:
    """An empty client id, an unknown client auth or a negative margin is refused."""
    arguments: dict[str, object] = {"client_id": "id", **settings}
    with pytest.raises(ConfigurationError):
        OAuth2ClientCredentials(TOKEN_URL, client_secret="s", **arguments)  # type: ignore[arg-type]


def test_oauth_repr_is_redacted() -> None:
    """The repr names the endpoint and client, never the secret or a token."""
    idp = IdentityProvider()
    auth = oauth()
    idp.client(auth).get(User, "u-1")
    text = repr(auth)
    assert "client-1" in text
    assert [
        "the-client-secret",
        "tok-1",
    ] == [s for s in ["the-client-secret", "tok-1"] if s not in text]


# -- async twin -----------------------------------------------------------------------------------


async def test_async_client_fetches_caches_and_refreshes_on_401() -> None:
    """The async flow fetches once, reuses the token, and replaces it once on 401."""
    idp = IdentityProvider(accepted={"tok-2"})
    client = AsyncScimClient(
        BASE, http=httpx.AsyncClient(transport=httpx.MockTransport(idp)), auth=oauth()
    )
    async with client:
        await client.get(User, "u-1")
        await client.get(User, "u-1")
    assert ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"] == idp.tokens_sent()
    assert 2 == len(idp.token_requests)


async def test_async_second_401_is_unauthorized() -> None:
    """The async flow also gives up after one refresh."""
    idp = IdentityProvider(accepted=set())
    client = AsyncScimClient(
        BASE, http=httpx.AsyncClient(transport=httpx.MockTransport(idp)), auth=oauth()
    )
    with pytest.raises(UnauthorizedError):
        await client.get(User, "u-1")
    assert 2 == len(idp.token_requests)


def test_token_response_body_is_never_kept_in_errors() -> None:
    """A token answer that fails validation does not leak its access_token into the error."""
    idp = IdentityProvider()
    idp.token_answers.append(
        httpx.Response(200, content=json.dumps({"access_token": "leak me", "token_type": "bearer"}))
    )
    with pytest.raises(InvalidResponseError) as caught:
        idp.client(oauth(), retry=RetryPolicy.never()).get(User, "u-1")
    assert "leak me" not in str(caught.value)
