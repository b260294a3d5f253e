"""AsyncScimClient over real HTTP against scim2-server served by uvicorn (concurrent-safe).

The twin of ``test_client_integration.py`` for the async client, plus what only it
can do: many requests in flight at once.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from scimsync import Group, Member, User
from scimsync.client import AsyncScimClient, RequestDetails
from scimsync.errors import NotFoundError
from scimsync.models import PatchOperation

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"a{uuid.uuid4().hex[:10]}-"


async def test_user_and_group_lifecycle(scim2_asgi_url: str) -> None:
    """create, PATCH (204), PATCH members, list, delete: the async client end to end."""
    prefix = _prefix()
    async with AsyncScimClient(scim2_asgi_url) as client:
        user = await client.create(User(user_name=f"{prefix}carol"))
        assert user.id is not None
        assert None is await client.patch(
            User, user.id, [PatchOperation(op="replace", path="active", value=False)]
        )
        assert False is (await client.get(User, user.id)).active

        group = await client.create(Group(display_name=f"{prefix}g"))
        assert group.id is not None
        await client.patch(
            Group,
            group.id,
            [PatchOperation(op="add", path="members", value=[Member(value=user.id)])],
        )
        assert [user.id] == [m.value for m in (await client.get(Group, group.id)).members or ()]

        await client.delete(User, user.id)
        with pytest.raises(NotFoundError):
            await client.get(User, user.id)


async def test_concurrent_creates_then_a_whole_listing(scim2_asgi_url: str) -> None:
    """60 creates at concurrency 16 all land once; listing them is whole and duplicate-free."""
    prefix = _prefix()
    in_flight_peak = 0
    in_flight = 0
    started: list[RequestDetails] = []

    async with AsyncScimClient(
        scim2_asgi_url, max_concurrency=16, on_request=[started.append]
    ) as client:

        async def create(i: int) -> str | None:
            nonlocal in_flight, in_flight_peak
            in_flight += 1
            in_flight_peak = max(in_flight_peak, in_flight)
            try:
                return (await client.create(User(user_name=f"{prefix}{i:03d}"))).id
            finally:
                in_flight -= 1

        ids = await asyncio.gather(*(create(i) for i in range(60)))
        listing = await client.list_all(User, filter=f'userName sw "{prefix}"', page_size=25)

    assert 60 == len(set(ids))
    assert (True, 60, 3) == (listing.complete, len(listing), listing.pages)
    assert set(ids) == {u.id for u in listing}
    assert 60 == len([d for d in started if d.method == "POST" and d.status == 201])
    assert True is (in_flight_peak > 1)


async def test_discovery(scim2_asgi_url: str) -> None:
    """Capabilities come from the real ServiceProviderConfig."""
    async with AsyncScimClient(scim2_asgi_url) as client:
        capabilities = await client.capabilities()
        types = await client.resource_types()
    assert (True, True) == (capabilities.patch, capabilities.filter)
    assert {"User", "Group"} == {t.name for t in types}
