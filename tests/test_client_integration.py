"""ScimClient over real HTTP against scim2-server, an independent SCIM implementation.

The server runs as a subprocess on 127.0.0.1 for the whole session; every test works
on users and groups with names of its own, so tests do not see each other's data.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from scimsync import Group, Member, User
from scimsync.client import ScimClient
from scimsync.errors import ConflictResponseError, NotFoundError, PreconditionFailedError
from scimsync.models import BulkOperation, PatchOperation

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


@pytest.fixture
def client(scim2_server_url: str) -> Iterator[ScimClient]:
    with ScimClient(scim2_server_url) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    """A userName prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}-"


def test_user_lifecycle(client: ScimClient, prefix: str) -> None:
    """create, get, PATCH (204 and with attributes), PUT, delete, then 404."""
    created = client.create(User(user_name=f"{prefix}bjensen", external_id=f"{prefix}e1"))
    assert created.id is not None
    fetched = client.get(User, created.id)
    assert (f"{prefix}bjensen", f"{prefix}e1") == (fetched.user_name, fetched.external_id)

    op = PatchOperation(op="replace", path="displayName", value="Babs")
    assert None is client.patch(User, created.id, [op])
    patched = client.patch(
        User,
        created.id,
        [PatchOperation(op="replace", path="title", value="Guide")],
        attributes=["title", "displayName"],
    )
    assert patched is not None
    assert ("Babs", "Guide") == (patched.display_name, patched.title)

    current = client.get(User, created.id)
    replaced = client.replace(
        User(id=current.id, user_name=f"{prefix}bjensen", nick_name="B", meta=current.meta)
    )
    assert ("B", None) == (replaced.nick_name, replaced.display_name)

    client.delete(User, created.id)
    with pytest.raises(NotFoundError):
        client.get(User, created.id)


def test_stale_version_is_refused_by_the_real_target(client: ScimClient, prefix: str) -> None:
    """The target announces ETags, so PUT sends If-Match and a stale version gets 412."""
    created = client.create(User(user_name=f"{prefix}etag"))
    assert created.id is not None
    client.patch(User, created.id, [PatchOperation(op="replace", path="title", value="x")])
    with pytest.raises(PreconditionFailedError):
        client.replace(created)  # still carries the version from before the PATCH


def test_duplicate_user_name_is_a_uniqueness_conflict(client: ScimClient, prefix: str) -> None:
    """A second user with the same userName is refused with scimType uniqueness."""
    client.create(User(user_name=f"{prefix}dup"))
    with pytest.raises(ConflictResponseError) as caught:
        client.create(User(user_name=f"{prefix}dup"))
    assert "uniqueness" == caught.value.scim_type


def test_paging_filters_and_search(client: ScimClient, prefix: str) -> None:
    """25 users listed 7 at a time by GET and by POST /.search: whole, in 4 pages each."""
    names = {f"{prefix}{i:02d}" for i in range(25)}
    for name in names:
        client.create(User(user_name=name, external_id=f"x-{name}"))
    listed = client.list_all(User, filter=f'userName sw "{prefix}"', page_size=7)
    searched = client.search(User, filter=f'userName sw "{prefix}"', page_size=7)
    for listing in (listed, searched):
        assert (True, 25, 4) == (listing.complete, listing.total_results, listing.pages)
        assert names == {u.user_name for u in listing}
    streamed = {
        u.user_name for u in client.iter_all(User, filter=f'userName sw "{prefix}"', page_size=10)
    }
    assert names == streamed

    one = client.find_by(User, "externalId", f"x-{prefix}07")
    assert [f"{prefix}07"] == [u.user_name for u in one]


def test_lookup_values_with_quotes_reach_the_target_intact(client: ScimClient, prefix: str) -> None:
    """A userName holding quotes and filter words is found by exactly that value."""
    tricky = f'{prefix}o"brien or userName pr'
    client.create(User(user_name=tricky))
    client.create(User(user_name=f"{prefix}other"))
    assert [tricky] == [u.user_name for u in client.find_by(User, "userName", tricky)]


def test_group_membership_patches(client: ScimClient, prefix: str) -> None:
    """Members are added and removed one by one with PATCH paths, as the engine will."""
    alice = client.create(User(user_name=f"{prefix}alice"))
    bob = client.create(User(user_name=f"{prefix}bob"))
    assert alice.id is not None
    assert bob.id is not None
    group = client.create(Group(display_name=f"{prefix}ops", members=[Member(value=alice.id)]))
    assert group.id is not None

    client.patch(
        Group, group.id, [PatchOperation(op="add", path="members", value=[Member(value=bob.id)])]
    )
    assert {alice.id, bob.id} == {m.value for m in client.get(Group, group.id).members or ()}

    remove_alice = PatchOperation(op="remove", path=f'members[value eq "{alice.id}"]')
    client.patch(Group, group.id, [remove_alice])
    assert {bob.id} == {m.value for m in client.get(Group, group.id).members or ()}


def test_other_resource_types_travel_as_dicts(client: ScimClient, prefix: str) -> None:
    """An endpoint string instead of a model class gives plain dicts, on the same target."""
    created = client.create(
        {"schemas": [User.schema_urn], "userName": f"{prefix}raw"}, endpoint="/Users"
    )
    assert isinstance(created, dict)
    assert f"{prefix}raw" == client.get("/Users", created["id"])["userName"]


def test_bulk_creates(client: ScimClient, prefix: str) -> None:
    """A bulk POST creates a user; each operation's status comes back."""
    response = client.bulk(
        [
            BulkOperation(
                method="POST", path="/Users", bulk_id="b1", data=User(user_name=f"{prefix}bulk")
            )
        ]
    )
    assert [201] == [op.status for op in response.operations]
    assert 1 == len(client.find(User, f'userName eq "{prefix}bulk"'))


def test_discovery(client: ScimClient) -> None:
    """The target's capabilities, schemas and resource types are read and cached."""
    capabilities = client.capabilities()
    assert (True, True, True) == (capabilities.patch, capabilities.bulk, capabilities.etag)
    assert {"/Users", "/Groups"} == {t.endpoint for t in client.resource_types()}
    assert User.schema_urn in {s.id for s in client.schemas()}
