"""Targets that echo the request back: no secret reaches an error, a repr or a log.

Real loopback servers answer with the request's headers (and a token endpoint with
its form) in every place a client reads text from: an HTML error page, a SCIM
``detail`` and ``scimType``, a body that is not JSON, an ill-typed attribute, a 5xx
to a write. They echo each secret as sent, percent-encoded (either case of hex),
JSON-escaped with ``\\/`` and, for Basic credentials, decoded. Every exception (with
its causes and contexts, attributes included), every repr and every log record at
DEBUG is then searched for each secret, its encoded forms, and the start of each
(a secret cut short by an excerpt must not show in part either).
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

import httpx
import pytest

from _mock_target import BASE, MockTarget, scim_error
from _servers import Reply, Request, ScriptedServer
from scimsync import User
from scimsync.auth import BearerToken, OAuth2ClientCredentials, SecretHolder
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.errors import (
    OutcomeUnknownError,
    ScimHTTPError,
    ScimSyncError,
    TransportError,
    UnauthorizedError,
)
from scimsync.retry import RetryPolicy
from scimsync.secrets import MIN_REDACTED_LENGTH, Redactor, Secret

if TYPE_CHECKING:
    from collections.abc import Generator

pytestmark = pytest.mark.integration

# Long enough that a 60-character cut in a validation message falls inside it; with
# the characters that percent- and JSON-escaping change.
TOKEN = "tok-7a6b5c4d3e2f/1a2b3c4d5e6f+7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d=="
CLIENT_ID = "client id/1"
CLIENT_SECRET = "cs 9f8e/7d6c+5b4a&3c2d<1e0f>"
BASIC_PASSWORD = "hunter2 but/long+er"


def _forms(secret: str) -> list[str]:
    """The secret and every form an echoing server uses for it below."""
    encoded = quote(secret, safe="")
    return [
        secret,
        encoded,
        encoded.lower(),
        quote_plus(secret),
        json.dumps(secret)[1:-1].replace("/", "\\/"),
    ]


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


SECRETS = [
    TOKEN,
    CLIENT_SECRET,
    BASIC_PASSWORD,
    _basic(CLIENT_ID, CLIENT_SECRET),
    _basic(quote_plus(CLIENT_ID), quote_plus(CLIENT_SECRET)),
    _basic("admin", BASIC_PASSWORD),
]


def _leaks(text: str) -> list[str]:
    """Every secret form found in ``text``, and every secret whose first 12 characters are."""
    found = [form for secret in SECRETS for form in _forms(secret) if form in text]
    return found + [secret[:12] for secret in SECRETS if secret[:12] in text]


def _echo(request: Request) -> str:
    """Everything a careless server repeats: credentials first (in several encodings),
    then every header and the body."""
    lines: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in ("authorization", "x-api-key"):
            credentials = value.partition(" ")[2] or value
            lines += _forms(credentials)
            if value.startswith("Basic "):
                lines.append(base64.b64decode(credentials).decode())
    lines += [f"{name}={value}" for name, value in request.headers.items()]
    lines.append(request.body.decode())
    return "\n".join(lines)


def echo_target(request: Request) -> Reply:
    """A SCIM target whose every answer, on every path, repeats the request."""
    echo = _echo(request)
    path = request.path.split("?")[0]
    if path.endswith("/html"):
        page = f"<html><body><h1>Bad request</h1><pre>{echo}</pre></body></html>"
        return Reply(400, page.encode(), {"Content-Type": "text/html"})
    if path.endswith("/detail"):
        return Reply(400, {"status": "400", "scimType": echo, "detail": echo})
    if path.endswith("/notjson"):
        return Reply(200, echo.encode(), {"Content-Type": "text/plain"})
    if path.endswith("/invalid"):
        lines = echo.splitlines()
        return Reply(200, {"id": "invalid", "userName": "x", "active": lines, "title": lines})
    if path.endswith("/short-invalid"):
        # The credential first, so the codec's 60-character cut falls inside it.
        header = request.headers.get("Authorization", "")
        return Reply(200, {"id": "short-invalid", "userName": "x", "active": [header]})
    return Reply(500, {"status": "500", "detail": echo})


def echo_token_endpoint(request: Request) -> Reply:
    """A token endpoint that refuses, describing the request it refused."""
    return Reply(401, {"error": _echo(request), "error_description": _echo(request)})


def route(request: Request) -> Reply:
    if request.path.startswith("/oauth2/"):
        return echo_token_endpoint(request)
    return echo_target(request)


def _texts(exc: BaseException) -> list[str]:
    """str, repr and attributes of ``exc`` and of every exception chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(vars(current))]
        pending += [current.__cause__, current.__context__]
    return texts


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text}" for r in caplog.records)


@pytest.fixture
def server() -> Generator[ScriptedServer, None, None]:
    with ScriptedServer(route) as running:
        yield running


class ApiKeyAuth(httpx.Auth):
    """An auth scimsync knows nothing about: HTTP Basic plus a key header."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Basic {_basic('admin', BASIC_PASSWORD)}"
        request.headers["X-Api-Key"] = TOKEN
        yield request


def _auth(name: str) -> httpx.Auth:
    auths: dict[str, httpx.Auth] = {
        "bearer": BearerToken(TOKEN),
        "bearer-callable": BearerToken(lambda: TOKEN),
        "any-httpx-auth": ApiKeyAuth(),
        "basic": httpx.BasicAuth("admin", BASIC_PASSWORD),
    }
    return auths[name]


PATHS = ["html", "detail", "notjson", "invalid", "short-invalid"]


@pytest.mark.parametrize("auth_name", ["bearer", "bearer-callable", "any-httpx-auth", "basic"])
@pytest.mark.parametrize("path", PATHS)
def test_an_echoing_target_never_shows_the_credentials(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, auth_name: str, path: str
) -> None:
    """Whatever the page repeats, the error holds no credential, whole or in part."""
    caplog.set_level(logging.DEBUG)
    auth = _auth(auth_name)
    with (
        ScimClient(f"{server.url}/v2", auth=auth, retry=RetryPolicy.never()) as client,
        pytest.raises(ScimSyncError) as caught,
    ):
        client.get(User, path)
    texts = _texts(caught.value)
    assert [] == _leaks("\n".join([*texts, _logged(caplog), repr(client), repr(auth)]))
    # The echo did arrive, masked: the error still says what the page said.
    assert True is ("**********" in "\n".join(texts))


async def test_an_echoing_target_never_shows_the_token_to_the_async_client(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The async twin masks the same texts."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with AsyncScimClient(
        f"{server.url}/v2", auth=BearerToken(TOKEN), retry=RetryPolicy.never()
    ) as client:
        for path in PATHS:
            with pytest.raises(ScimSyncError) as caught:
                await client.get(User, path)
            texts += _texts(caught.value)
    assert [] == _leaks("\n".join([*texts, _logged(caplog)]))
    assert True is ("**********" in "\n".join(texts))


def test_a_write_answered_5xx_with_an_echo_is_outcome_unknown_and_masked(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The 5xx's detail, kept as the OutcomeUnknownError's cause, is masked too."""
    caplog.set_level(logging.DEBUG)
    with (
        ScimClient(f"{server.url}/v2", auth=BearerToken(TOKEN)) as client,
        pytest.raises(OutcomeUnknownError) as caught,
    ):
        client.create(User(user_name="bjensen"))
    assert isinstance(caught.value.__cause__, ScimHTTPError)
    assert True is ("**********" in (caught.value.__cause__.detail or ""))
    assert [] == _leaks("\n".join([*_texts(caught.value), _logged(caplog)]))


@pytest.mark.parametrize("client_auth", ["basic", "post"])
def test_a_token_endpoint_echoing_the_request_shows_no_client_secret(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, client_auth: str
) -> None:
    """``error_description`` repeating the Basic header or the form is masked."""
    caplog.set_level(logging.DEBUG)
    auth = OAuth2ClientCredentials(
        f"{server.url}/oauth2/token", CLIENT_ID, CLIENT_SECRET, client_auth=client_auth
    )
    with (
        ScimClient(f"{server.url}/v2", auth=auth, retry=RetryPolicy.never()) as client,
        pytest.raises(UnauthorizedError) as caught,
    ):
        client.get(User, "u-1")
    texts = _texts(caught.value)
    assert [] == _leaks("\n".join([*texts, _logged(caplog), repr(auth)]))
    assert True is ("**********" in str(caught.value))


def test_an_echoing_target_never_shows_the_oauth_access_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The token an OAuth 2.0 auth fetched is masked from the target's echoes."""
    caplog.set_level(logging.DEBUG)

    def script(request: Request) -> Reply:
        if request.path.startswith("/oauth2/"):
            return Reply(200, {"access_token": TOKEN, "token_type": "Bearer"})
        return echo_target(request)

    with ScriptedServer(script) as running:
        auth = OAuth2ClientCredentials(f"{running.url}/oauth2/token", CLIENT_ID, CLIENT_SECRET)
        with ScimClient(f"{running.url}/v2", auth=auth, retry=RetryPolicy.never()) as client:
            texts: list[str] = []
            for path in PATHS:
                with pytest.raises(ScimSyncError) as caught:
                    client.get(User, path)
                texts += _texts(caught.value)
    assert [] == _leaks("\n".join([*texts, _logged(caplog), repr(auth)]))


def _mock_client(target: MockTarget, token: str) -> ScimClient:
    """A client of ``target`` with a bearer ``token``, never retrying."""
    return ScimClient(
        BASE,
        http=httpx.Client(transport=target.transport()),
        auth=BearerToken(token),
        retry=RetryPolicy.never(),
    )


def test_a_transport_error_repeating_a_header_is_masked() -> None:
    """An httpx error whose message quotes a credential is masked, cause included."""
    target = MockTarget()

    def broken(request: httpx.Request) -> httpx.Response:
        header = request.headers["Authorization"]
        raise httpx.RemoteProtocolError(f"illegal header line: {header}", request=request)

    target.on("GET", "/v2/Users/u-1", broken)
    client = _mock_client(target, TOKEN)
    with pytest.raises(TransportError) as caught:
        client.get(User, "u-1")
    assert [] == _leaks("\n".join(_texts(caught.value)))
    assert True is str(caught.value).endswith("illegal header line: Bearer **********")


def test_the_auth_scheme_is_not_a_secret() -> None:
    """Pieces of a token are masked, the word ``Bearer`` before it is not: an error
    saying "invalid Bearer token" keeps its words, whatever the token starts with."""
    target = MockTarget()
    token = "token-" + TOKEN
    detail = f"invalid Bearer token; Bearer expired; got Bearer {token[:20]}"
    target.on("GET", "/v2/Users/u-1", scim_error(401, None, detail))
    client = _mock_client(target, token)
    with pytest.raises(ScimHTTPError) as caught:
        client.get(User, "u-1")
    text = str(caught.value)
    assert "invalid Bearer token; Bearer expired; got Bearer **********" in text, text


# -- the pieces ---------------------------------------------------------------------------------


def test_the_auths_say_which_secrets_they_hold() -> None:
    """BearerToken and OAuth2ClientCredentials are SecretHolders; values come as Secrets."""
    bearer = BearerToken(TOKEN)
    oauth = OAuth2ClientCredentials("https://login.example.com/t", CLIENT_ID, CLIENT_SECRET)
    assert True is isinstance(bearer, SecretHolder)
    assert True is isinstance(oauth, SecretHolder)
    assert (Secret(TOKEN),) == bearer.secrets()
    expected = {
        Secret(CLIENT_SECRET),
        Secret(_basic(CLIENT_ID, CLIENT_SECRET)),
        Secret(_basic(quote_plus(CLIENT_ID), quote_plus(CLIENT_SECRET))),
    }
    assert expected == set(oauth.secrets())


def test_a_callable_bearer_token_holds_the_last_token_it_sent() -> None:
    """A rotating token is not asked for again just to be masked: the last one sent is."""
    tokens = iter(["first-token-value", "second-token-value"])
    auth = BearerToken(lambda: next(tokens))
    assert () == auth.secrets()
    target = MockTarget()
    target.on("GET", "/v2/Users/u-1", httpx.Response(404))
    client = ScimClient(BASE, http=httpx.Client(transport=target.transport()), auth=auth)
    with pytest.raises(ScimHTTPError):
        client.get(User, "u-1")
    assert (Secret("first-token-value"),) == auth.secrets()


def test_short_secrets_do_not_mask_common_words() -> None:
    """A value under MIN_REDACTED_LENGTH characters is left alone; longer ones are masked."""
    redact = Redactor(["admin", "s3cr3t-value"])
    assert 8 == MIN_REDACTED_LENGTH
    assert "admin said ********** twice" == redact("admin said s3cr3t-value twice")
    assert False is bool(Redactor(["short"]))


def test_a_redactor_masks_the_forms_a_server_echoes() -> None:
    """As sent, percent-encoded in either case, plus for space, HTML- and JSON-escaped."""
    value = "a b/c+d&e<f>"
    redact = Redactor([Secret(value)])
    echoed = [
        value,
        "a%20b%2Fc%2Bd%26e%3Cf%3E",
        "a%20b%2fc%2bd%26e%3cf%3e",
        "a+b%2Fc%2Bd%26e%3Cf%3E",
        "a b/c+d&amp;e&lt;f&gt;",
        "a b\\/c+d&e<f>",
        value.upper(),
    ]
    assert ["[**********]"] * len(echoed) == [redact(f"[{text}]") for text in echoed]


def test_a_secret_cut_by_an_excerpt_is_masked_in_part() -> None:
    """The start of a secret, cut off with "…", is masked as well (from 8 characters on)."""
    redact = Redactor(["0123456789abcdef"])
    assert "got '**********…" == redact("got '0123456789…")
    assert "got '0123456…" == redact("got '0123456…")


def test_a_redactor_never_shows_its_values() -> None:
    """Its repr counts forms; it cannot be pickled."""
    redact = Redactor([TOKEN])
    assert False is (TOKEN in repr(redact))
    with pytest.raises(TypeError):
        pickle.dumps(redact)


# -- pieces and encodings of a secret -----------------------------------------------------------

# As long as the reviewed target's token (38 characters), with a "/" that escaping changes.
SHORT_TOKEN = "tok-4f3e2d1c0b/a9f8e7d6c5b4a3f2e1d0c9b"
PASSWORD = "Init-Pa55word-2024-xy"  # 21 characters


def _runs(text: str) -> set[str]:
    """Every run of MIN_REDACTED_LENGTH characters of ``text``."""
    size = MIN_REDACTED_LENGTH
    return {text[start : start + size] for start in range(len(text) - size + 1)}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_redactor_masks_a_piece_of_a_secret_whole() -> None:
    """A run of 8 characters or more of a value, at its start, middle or end, becomes one
    mask; the words around it stay."""
    redact = Redactor([SHORT_TOKEN, PASSWORD])
    assert 38 == len(SHORT_TOKEN)
    cases = {
        f"token ...{SHORT_TOKEN[10:]} (prefix {SHORT_TOKEN[:12]})": (
            "token ...********** (prefix **********)"
        ),
        f"password {PASSWORD[:12]}...": "password **********...",
        f"middle <{SHORT_TOKEN[9:17]}> here": "middle <**********> here",
        f"end:{PASSWORD[-8:]}.": "end:**********.",
    }
    assert cases == {text: redact(text) for text in cases}


def test_a_redactor_leaves_pieces_shorter_than_the_minimum() -> None:
    """Seven characters of a value, or a value under eight, are not masked."""
    redact = Redactor([SHORT_TOKEN, "admin12"])
    text = f"the prefix {SHORT_TOKEN[:7]}, the end {SHORT_TOKEN[-7:]}, the user admin12"
    assert text == redact(text)
    assert False is bool(Redactor(["admin12"]))


def test_a_redactor_masks_a_piece_in_another_encoding() -> None:
    """A piece of the percent-encoded, JSON-escaped or HTML-escaped value is masked."""
    value = "cs 9f8e/7d6c+5b4a&3c2d<1e0f>"
    redact = Redactor([value])
    pieces = [
        quote(value, safe="")[6:30],
        quote(value, safe="")[6:30].lower(),
        quote_plus(value)[:14],
        json.dumps(value)[1:-1].replace("/", "\\/")[4:16],
        "9f8e/7d6c+5b4a&amp;3c2d&lt;",
    ]
    assert ["<**********>"] * len(pieces) == [redact(f"<{piece}>") for piece in pieces]


def test_a_redactor_masks_base64_forms() -> None:
    """base64 of the value alone (standard or URL-safe, padded or not), of a Bearer
    header, and of an HTTP Basic pair with any user name."""
    redact = Redactor([SHORT_TOKEN])
    alone = base64.b64encode(SHORT_TOKEN.encode()).decode()
    assert "[**********]" == redact(f"[{alone}]")
    assert "[**********]" == redact(f"[{alone.rstrip('=')}]")
    # Bytes whose standard encoding has "+" and "/", which URL-safe base64 changes.
    odd = "~~~>>>???~~~>>>??~"
    standard = base64.b64encode(odd.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(odd.encode()).decode()
    assert ("+" in standard, "-" in urlsafe) == (True, True)
    encodings = [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), quote(standard)]
    assert ["[**********]"] * 5 == [Redactor([odd])(f"[{text}]") for text in encodings]
    bearer = _b64(f"Bearer {SHORT_TOKEN}")
    # "Bearer " is 7 bytes: its encoding, and the one character it shares with the token.
    assert f"[{bearer[:10]}**********]" == redact(f"[{bearer}]")
    for user in ["a", "ab", "client id/1"]:
        basic = _b64(f"{user}:{SHORT_TOKEN}")
        assert set() == _runs(redact(basic)) & _runs(basic[len(_b64(user)) + 2 :])
    # A piece of the encoded value is masked too.
    assert "…**********…" == redact(f"…{alone[5:20]}…")


def test_a_redactor_masks_any_letter_case() -> None:
    """Upper, lower, mixed case; a case change that changes the length (ß, SS) too."""
    redact = Redactor([SHORT_TOKEN, "Straße-Passwort-1"])
    texts = [
        SHORT_TOKEN.upper(),
        SHORT_TOKEN.swapcase(),
        SHORT_TOKEN[:20].upper(),
        quote(SHORT_TOKEN, safe="").lower(),
        "STRASSE-PASSWORT-1",
        "strasse-passwort-1",
        "STRAẞE-PASSWORT",
    ]
    assert ["(**********)"] * len(texts) == [redact(f"({text})") for text in texts]


def test_a_redactor_merges_overlapping_secrets() -> None:
    """Two values sharing characters, and pieces of two values side by side: one mask."""
    first, second = "shared-0123456789-first", "0123456789-second-value"
    redact = Redactor([first, second])
    assert "a ********** b" == redact(f"a {first[:-3]}{second[10:]} b")
    assert "a ********** b" == redact(f"a {first[7:]}{second[:12]} b")
    assert "a **********, ********** b" == redact(f"a {first}, {second} b")


def test_an_error_echoing_pieces_and_base64_of_the_credentials_masks_them() -> None:
    """A 400 whose detail repeats pieces of the token, its upper case and base64 of the
    Authorization header: the error's text holds no 8 characters of any of them."""
    target = MockTarget()

    def echo(request: httpx.Request) -> httpx.Response:
        header = request.headers["Authorization"]
        detail = (
            f"bad token ...{SHORT_TOKEN[10:]} (prefix {SHORT_TOKEN[:12]}); "
            f"header {_b64(header)} / {_b64(SHORT_TOKEN)} / {SHORT_TOKEN.upper()}"
        )
        return httpx.Response(400, json={"status": "400", "detail": detail})

    target.on("GET", "/v2/Users/u-1", echo)
    client = _mock_client(target, SHORT_TOKEN)
    with pytest.raises(ScimHTTPError) as caught:
        client.get(User, "u-1")
    text = "\n".join(_texts(caught.value))
    header_b64 = _b64(f"Bearer {SHORT_TOKEN}")
    secret_runs = _runs(SHORT_TOKEN) | _runs(SHORT_TOKEN.upper()) | _runs(_b64(SHORT_TOKEN))
    secret_runs |= _runs(header_b64[10:])
    assert set() == _runs(text) & secret_runs
    # The words around stay (the client also masks the header's whole value,
    # "Bearer <token>": pieces of it take the space before the token along).
    assert True is ("bad token ...********** (prefix" in str(caught.value))
    assert True is str(caught.value).endswith("**********")
