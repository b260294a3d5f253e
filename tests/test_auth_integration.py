"""OAuth2 client credentials against a real token endpoint on loopback, and scim2-server
accepting only the bearer tokens that endpoint hands out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from _servers import Reply, Request, ScriptedServer, TokenEndpoint
from conftest import SCIM2_SERVER_TOKENS
from scimsync import User
from scimsync.auth import OAuth2ClientCredentials
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.errors import UnauthorizedError

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration

CLIENT_ID = "scimsync-tests"
CLIENT_SECRET = "loopback-client-secret"


class Clock:
    """A settable clock for the token cache."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _routes(endpoint: TokenEndpoint) -> Callable[[Request], Reply]:
    def route(request: Request) -> Reply:
        if request.path == "/oauth2/token":
            answer = endpoint(request)
            assert isinstance(answer, Reply)
            return answer
        return Reply(404, {"error": "not_found"})

    return route


def _auth(
    server: ScriptedServer, clock: Clock, secret: str = CLIENT_SECRET
) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        f"{server.url}/oauth2/token", CLIENT_ID, secret, scope="scim", clock=clock
    )


def test_token_is_refreshed_before_expiry(scim2_server_with_tokens_url: str) -> None:
    """With 120 s tokens and a 60 s margin, the second token is fetched at 61 s, unprompted."""
    endpoint = TokenEndpoint(CLIENT_ID, CLIENT_SECRET, SCIM2_SERVER_TOKENS, expires_in=120)
    clock = Clock()
    with (
        ScriptedServer(_routes(endpoint)) as idp,
        ScimClient(scim2_server_with_tokens_url, auth=_auth(idp, clock)) as client,
    ):
        client.resource_types()
        clock.now = 59
        client.schemas()
        assert 1 == endpoint.issued
        clock.now = 61
        client.service_provider_config()
    assert 2 == endpoint.issued
    assert ["scim", "scim"] == endpoint.scopes


def test_a_refused_token_is_replaced_once(scim2_server_with_tokens_url: str) -> None:
    """The target answers 401 to a revoked token; one new token is fetched and works."""
    endpoint = TokenEndpoint(CLIENT_ID, CLIENT_SECRET, ["tok-revoked", SCIM2_SERVER_TOKENS[0]])
    with (
        ScriptedServer(_routes(endpoint)) as idp,
        ScimClient(scim2_server_with_tokens_url, auth=_auth(idp, Clock())) as client,
    ):
        created = client.create(User(user_name="oauth-refresh-user"))
        assert created.id is not None
        assert created.id == client.get(User, created.id).id
    assert 2 == endpoint.issued


def test_a_second_refusal_is_unauthorized(scim2_server_with_tokens_url: str) -> None:
    """Two refused tokens in a row: UnauthorizedError, and no third token request."""
    endpoint = TokenEndpoint(CLIENT_ID, CLIENT_SECRET, ["tok-bad-1", "tok-bad-2"])
    with (
        ScriptedServer(_routes(endpoint)) as idp,
        ScimClient(scim2_server_with_tokens_url, auth=_auth(idp, Clock())) as client,
        pytest.raises(UnauthorizedError),
    ):
        client.schemas()
    assert 2 == endpoint.issued


def test_wrong_client_secret_stops_before_the_target(scim2_server_with_tokens_url: str) -> None:
    """The token endpoint refuses the client: UnauthorizedError naming invalid_client."""
    endpoint = TokenEndpoint(CLIENT_ID, CLIENT_SECRET, SCIM2_SERVER_TOKENS)
    with (
        ScriptedServer(_routes(endpoint)) as idp,
        ScimClient(
            scim2_server_with_tokens_url, auth=_auth(idp, Clock(), secret="wrong-secret")
        ) as client,
        pytest.raises(UnauthorizedError) as caught,
    ):
        client.schemas()
    assert "invalid_client" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)
    assert 0 == endpoint.issued


async def test_async_refused_token_is_replaced_once(scim2_server_with_tokens_url: str) -> None:
    """The async client refreshes once on 401 against the real endpoints too."""
    endpoint = TokenEndpoint(CLIENT_ID, CLIENT_SECRET, ["tok-revoked", SCIM2_SERVER_TOKENS[1]])
    with ScriptedServer(_routes(endpoint)) as idp:
        async with AsyncScimClient(
            scim2_server_with_tokens_url, auth=_auth(idp, Clock())
        ) as client:
            capabilities = await client.capabilities()
            await client.resource_types()
    assert True is capabilities.patch
    assert 2 == endpoint.issued
