"""No secret ever shows: a full exchange at DEBUG, every hook on, all output searched.

The exchange goes over real loopback HTTP: a token fetch, a refused token and its
replacement, a retried 503, a create with a password, a lost PATCH answer, a 404.
Then every log record, everything printed, every repr and every exception message
(with its causes) is searched for the token, the client secret and the password.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import TYPE_CHECKING

import pytest

from _servers import Drop, Reply, Request, ScriptedServer, TokenEndpoint
from scimsync import User
from scimsync.auth import OAuth2ClientCredentials
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.errors import NotFoundError, OutcomeUnknownError
from scimsync.models import PatchOperation
from scimsync.retry import no_waits

if TYPE_CHECKING:
    from scimsync.client import RequestDetails
    from scimsync.retry import RetryDetails

pytestmark = pytest.mark.integration

CLIENT_ID = "client-visible-id"
CLIENT_SECRET = "cs-9f8e7d6c5b4a-secret"
REFUSED_TOKEN = "tok-refused-4b1c2d3e"
TOKEN = "tok-good-7a6b5c4d3e"
PASSWORD = "pw-Tr0ub4dor-and-3"
SECRETS = [
    CLIENT_SECRET,
    REFUSED_TOKEN,
    TOKEN,
    PASSWORD,
    base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode(),
]


class Target:
    """A token endpoint plus a SCIM target that refuses one token and fails once with 503."""

    def __init__(self) -> None:
        self.tokens = TokenEndpoint(CLIENT_ID, CLIENT_SECRET, [REFUSED_TOKEN, TOKEN])
        self.failed_once = False

    def __call__(self, request: Request) -> Reply | Drop:
        if request.path == "/oauth2/token":
            return self.tokens(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"status": "401", "detail": "token refused"})
        if request.method == "POST" and not self.failed_once:
            self.failed_once = True
            return Reply(429, {"status": "429"}, {"Retry-After": "1"})
        if request.method == "POST":
            return Reply(201, {**request.json(), "id": uuid.uuid4().hex})
        if request.method == "PATCH":
            return Drop()
        return Reply(404, {"status": "404", "detail": "no such user"})


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _chain(exc: BaseException) -> str:
    texts = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current), repr(getattr(current, "payload", None))]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def test_a_full_exchange_shows_no_secret(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs, prints from hooks, reprs and exceptions hold no token, secret or password."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def on_request(details: RequestDetails) -> None:
        print(details)
        seen.append(repr(details))

    def on_retry(details: RetryDetails) -> None:
        print(details)
        seen.append(repr(details))

    errors: list[str] = []
    target = Target()
    with ScriptedServer(target) as server, no_waits():
        auth = OAuth2ClientCredentials(f"{server.url}/oauth2/token", CLIENT_ID, CLIENT_SECRET)
        with ScimClient(
            f"{server.url}/v2", auth=auth, on_request=[on_request], on_retry=[on_retry]
        ) as client:
            created = client.create(User(user_name="bjensen", password=PASSWORD))
            seen += [repr(client), repr(auth), repr(created), str(created)]
            with pytest.raises(OutcomeUnknownError) as lost:
                client.patch(
                    User, "u-1", [PatchOperation(op="replace", path="password", value=PASSWORD)]
                )
            errors.append(_chain(lost.value))
            with pytest.raises(NotFoundError) as missing:
                client.get(User, "u-1")
            errors.append(_chain(missing.value))

    captured = capsys.readouterr()
    logged = "\n".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    everything = "\n".join([logged, captured.out, captured.err, *seen, *errors])
    assert [] == _leaks(everything)
    # The exchange did happen: a refused token was replaced, a retry was logged.
    assert 2 == target.tokens.issued
    assert True is ("retrying POST" in logged)
    assert True is ("status=429" in captured.out)


async def test_an_async_exchange_shows_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    """The async client keeps the same silence."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with ScriptedServer(Target()) as server, no_waits():
        auth = OAuth2ClientCredentials(f"{server.url}/oauth2/token", CLIENT_ID, CLIENT_SECRET)
        async with AsyncScimClient(
            f"{server.url}/v2", auth=auth, on_request=[lambda d: seen.append(repr(d))]
        ) as client:
            await client.create(User(user_name="bjensen", password=PASSWORD))
            with pytest.raises(OutcomeUnknownError) as lost:
                await client.patch(User, "u-1", [PatchOperation(op="remove", path="title")])
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert [] == _leaks("\n".join([logged, *seen, _chain(lost.value), repr(auth)]))
