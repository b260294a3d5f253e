"""``mapping.check`` against the ``/Schemas`` real SCIM servers publish, over loopback HTTP:
the project's test server and scim2-server, an independent implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.mapping import Mapping, lower
from scimsync.schema import CORE_SCHEMAS
from scimsync.targets import MemoryTarget, ScimTarget
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scimsync.schema import SchemaTable

pytestmark = pytest.mark.integration

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BADGE = "urn:example:params:scim:schemas:extension:badge:2.0:User:number"
TOKEN = "schema-token"


@pytest.fixture(scope="module")
def test_server_url() -> Iterator[str]:
    with ScimTestServer(token=TOKEN) as server:
        yield server.url


async def table_of(url: str, token: str | None = None) -> SchemaTable:
    auth = BearerToken(token) if token else None
    async with AsyncScimClient(url, auth=auth) as client:
        return await ScimTarget(client).schema()


def people_mapping(**extra: Any) -> Mapping:
    return Mapping(
        users={
            "userName": lower("email"),
            "name.givenName": "first_name",
            "name.familyName": "last_name",
            'emails[type eq "work"].value': lower("email"),
            f"{ENTERPRISE}:department": "department",
            **extra,
        },
        member_of="groups",
    )


@pytest.mark.parametrize("server", ["test server", "scim2-server"])
async def test_a_sound_mapping_fits_both_servers(
    server: str, test_server_url: str, scim2_server_url: str
) -> None:
    """The people mapping has no problem against either server's published schemas."""
    table = await (
        table_of(test_server_url, TOKEN) if server == "test server" else table_of(scim2_server_url)
    )
    assert () == people_mapping().check(table).problems


@pytest.mark.parametrize("server", ["test server", "scim2-server"])
async def test_attributes_a_server_lacks_are_reported_not_dropped(
    server: str, test_server_url: str, scim2_server_url: str
) -> None:
    """A custom extension and an unknown attribute block, each naming its mapping line."""
    table = await (
        table_of(test_server_url, TOKEN) if server == "test server" else table_of(scim2_server_url)
    )
    check = people_mapping(**{BADGE: "badge", "costCentre": "cc"}).check(table)
    assert [(f"users[{BADGE!r}]", True), ("users['costCentre']", True)] == [
        (p.entry, p.blocking) for p in check.problems
    ]
    assert False is check.ok


async def test_the_read_only_attributes_a_server_publishes_are_respected(
    scim2_server_url: str,
) -> None:
    """What scim2-server marks readOnly (``groups``, ``meta``) is refused as a target."""
    table = await table_of(scim2_server_url)
    check = Mapping(users={"userName": "u", "groups": "g", "meta.created": "c"}).check(table)
    assert [("users['groups']", True), ("users['meta.created']", True)] == [
        (p.entry, p.blocking) for p in check.problems
    ]


async def test_memory_target_checks_against_its_table() -> None:
    """A MemoryTarget answers with the table it was given (the core one by default)."""
    assert CORE_SCHEMAS is await MemoryTarget().schema()


async def test_a_target_without_schemas_is_taken_as_core() -> None:
    """A target answering 404 on /Schemas is checked against the RFC 7643 core schemas."""
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"status": "404", "detail": "no such endpoint"})

    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="https://scim.example.com/v2"
    )
    async with http, AsyncScimClient(http=http) as client:
        assert CORE_SCHEMAS is await ScimTarget(client).schema()
