"""``mapping.check`` against the ``/Schemas`` real SCIM servers publish, over loopback HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scimsync.mapping import Mapping, lower
from scimsync.schema import SchemaTable
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def fetch_schema_table(base_url: str, headers: dict[str, str] | None = None) -> SchemaTable:
    """Read a server's ``/Schemas`` and ``/ResourceTypes`` into a schema table."""
    with httpx.Client(base_url=base_url, headers=headers or {}, timeout=10) as http:
        schemas = _resources(http.get("/Schemas"))
        resource_types = _resources(http.get("/ResourceTypes"))
    return SchemaTable.from_scim(schemas, resource_types)


def _resources(response: httpx.Response) -> list[Any]:
    response.raise_for_status()
    body = response.json()
    resources: list[Any] = body["Resources"] if isinstance(body, dict) else body
    return resources


@pytest.fixture(scope="module")
def test_server_table() -> Iterator[SchemaTable]:
    with ScimTestServer(token="t0k3n") as server:
        yield fetch_schema_table(server.url, server.headers)


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


def test_a_sound_mapping_fits_the_test_server(test_server_table: SchemaTable) -> None:
    """The people mapping has no problem against the test server's published schemas."""
    assert () == people_mapping().check(test_server_table).problems


def test_an_attribute_the_test_server_lacks_is_reported(test_server_table: SchemaTable) -> None:
    """A custom extension the server does not publish blocks, naming the mapping line."""
    badge = "urn:example:params:scim:schemas:extension:badge:2.0:User:number"
    check = people_mapping(**{badge: "badge", "costCentre": "cc"}).check(test_server_table)
    assert [
        (f"users[{badge!r}]", True),
        ("users['costCentre']", True),
    ] == [(p.entry, p.blocking) for p in check.problems]
    assert False is check.ok
