"""Quirk profiles: the server behaves like real providers that depart from RFC 7644."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import pytest

from scimsync.errors import ConfigurationError
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def seeded(quirks: Quirks) -> ScimTestServer:
    """A server with the quirks, two users (Alice, bob) and a group holding both."""
    return ScimTestServer(
        quirks=quirks,
        users=[
            {"schemas": [USER], "id": "a", "userName": "Alice"},
            {"schemas": [USER], "id": "b", "userName": "bob"},
        ],
        groups=[
            {
                "schemas": [GROUP],
                "id": "g",
                "displayName": "Team",
                "members": [{"value": "a"}, {"value": "b"}],
            }
        ],
    )


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_quirks_default_to_the_rfc() -> None:
    """Quirks() is a provider without quirks, the server's default and the strict profile."""
    rfc = Quirks(
        patch_supported=True,
        omit_group_members=False,
        max_members_per_patch_operation=None,
        case_sensitive_user_name_filter=False,
        items_per_page_echoes_count=False,
        start_index_past_end_restarts=False,
        page_size_cap=None,
        etag_supported=True,
        location_header=True,
        duplicate_members_on_add=False,
        string_booleans=False,
        discovery_total_results=True,
        listing_total_results=True,
        dropped_attributes=(),
        patch_refused_for=(),
        patch_add_refused_for=(),
        patch_replace_refused_for=(),
        patch_replace_refused_status=501,
        unfilterable_attributes=(),
        unsupported_filter_answer="400",
        locked_writes_rate=0.0,
        locked_writes_seed=0,
    )
    assert (rfc, rfc) == (ScimTestServer().quirks, Quirks.profile("strict"))


@pytest.mark.parametrize("field", ["max_members_per_patch_operation", "page_size_cap"])
def test_caps_must_be_positive(field: str) -> None:
    """A cap below one cannot be honoured by any client."""
    options: dict[str, Any] = {field: 0}
    with pytest.raises(ValueError, match=f"{field} must be at least 1"):
        Quirks(**options)


def test_the_legacy_profile_combines_the_quirks_of_old_providers() -> None:
    """ "legacy" turns on every quirk but the missing PATCH and the member cap."""
    assert Quirks(
        omit_group_members=True,
        case_sensitive_user_name_filter=True,
        items_per_page_echoes_count=True,
        start_index_past_end_restarts=True,
        page_size_cap=20,
        etag_supported=False,
        location_header=False,
        duplicate_members_on_add=True,
        string_booleans=True,
    ) == Quirks.profile("legacy")


def test_the_lossy_profile_combines_the_quirks_of_a_target_that_drops_what_it_is_told() -> None:
    """ "lossy": discovery without totalResults, title and email types dropped, PATCH add
    on user attributes refused, no externalId filter (400), 2% of writes locked."""
    assert Quirks(
        discovery_total_results=False,
        dropped_attributes=("title", "emails.type"),
        patch_add_refused_for=("User",),
        unfilterable_attributes=("externalId", "Group:externalId"),
        unsupported_filter_answer="400",
        locked_writes_rate=0.02,
    ) == Quirks.profile("lossy")


def test_the_lossy_profile_behaves_so() -> None:
    """A server with the lossy profile shows each of its quirks in-process."""
    server = seeded(Quirks.profile("lossy"))
    with server.client() as http:
        schemas = http.get("/Schemas").json()
        created = http.post(
            "/Users",
            json={
                "schemas": [USER],
                "userName": "carol",
                "title": "Boss",
                "emails": [{"value": "c@example.com", "type": "work"}],
            },
        )
        add = http.patch("/Users/a", json=patch_body({"op": "add", "path": "title", "value": "X"}))
        replace = http.patch(
            "/Users/a", json=patch_body({"op": "replace", "path": "displayName", "value": "A"})
        )
        members = http.patch(
            "/Groups/g", json=patch_body({"op": "remove", "path": 'members[value eq "b"]'})
        )
        by_external_id = http.get("/Groups", params={"filter": 'externalId eq "x"'})
    assert (
        False,
        (201, False, [{"value": "c@example.com"}]),
        (501, 200, 200),
        (400, "invalidFilter"),
    ) == (
        "totalResults" in schemas,
        (created.status_code, "title" in created.json(), created.json()["emails"]),
        (add.status_code, replace.status_code, members.status_code),
        (by_external_id.status_code, by_external_id.json()["scimType"]),
    )


def test_an_unknown_profile_is_a_configuration_error() -> None:
    """A misspelt profile fails with the names that exist, rather than running without quirks."""
    with pytest.raises(
        ConfigurationError, match="no quirk profile 'Legacy'; known: legacy, lossy, strict"
    ):
        Quirks.profile("Legacy")
    assert ("legacy", "lossy", "strict") == Quirks.profile_names()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], Quirks()),
        (["--quirks", "legacy"], Quirks.profile("legacy")),
        (
            ["--quirks", "legacy", "--no-patch", "--max-members-per-patch", "5"],
            attrs.evolve(
                Quirks.profile("legacy"), patch_supported=False, max_members_per_patch_operation=5
            ),
        ),
        (["--case-sensitive-user-name-filter"], Quirks(case_sensitive_user_name_filter=True)),
        (["--quirks", "lossy"], Quirks.profile("lossy")),
    ],
    ids=["none", "profile", "profile-and-flags", "flag", "lossy"],
)
def test_the_command_reads_a_profile_and_adds_the_flags(argv: list[str], expected: Quirks) -> None:
    """``--quirks PROFILE`` picks a profile; the single-quirk flags add to it."""
    from scimsync.testing.__main__ import build_parser, quirks_from

    assert expected == quirks_from(build_parser().parse_args(argv))


# -- no PATCH -------------------------------------------------------------------------------------


def test_without_patch_support_patch_is_501_and_announced() -> None:
    """PATCH answers 501 and /ServiceProviderConfig says patch.supported false."""
    server = seeded(Quirks(patch_supported=False))
    with server.client() as http:
        config = http.get("/ServiceProviderConfig").json()
        response = http.patch(
            "/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "Boss"})
        )
    assert (
        config["patch"]["supported"],
        response.status_code,
        response.json()["status"],
    ) == (False, 501, "501")
    assert None is (server.user("a") or server.users()[0]).title


def test_without_patch_support_put_still_works() -> None:
    """The fallback a client needs, PUT, works."""
    server = seeded(Quirks(patch_supported=False))
    with server.client() as http:
        response = http.put("/Users/a", json={"schemas": [USER], "userName": "Alice", "title": "X"})
    assert (response.status_code, response.json()["title"]) == (200, "X")


# -- groups without members ----------------------------------------------------------------------


@pytest.fixture
def omitting() -> ScimTestServer:
    """A server whose group GETs leave members out."""
    return seeded(Quirks(omit_group_members=True))


def test_group_gets_omit_members(omitting: ScimTestServer) -> None:
    """GET by id, listings and searches answer groups without members."""
    with omitting.client() as http:
        by_id = http.get("/Groups/g").json()
        listed = http.get("/Groups").json()["Resources"][0]
        searched = http.post("/Groups/.search", json={"schemas": [SEARCH]}).json()["Resources"][0]
    assert ["members" in g for g in (by_id, listed, searched)] == [False, False, False]
    assert by_id["displayName"] == "Team"


def test_members_come_back_when_asked_for(omitting: ScimTestServer) -> None:
    """attributes=members returns them, as for a returned: request attribute."""
    with omitting.client() as http:
        body = http.get("/Groups/g", params={"attributes": "members"}).json()
    assert [m["value"] for m in body["members"]] == ["a", "b"]


def test_omitted_members_are_still_there(omitting: ScimTestServer) -> None:
    """Hiding is only in answers: memberships, User.groups and inspection are intact."""
    with omitting.client() as http:
        user = http.get("/Users/a").json()
        schema = http.get(f"/Schemas/{GROUP}").json()
    members_spec = next(a for a in schema["attributes"] if a["name"] == "members")
    assert (
        [g["value"] for g in user["groups"]],
        [m.value for m in omitting.groups()[0].members or ()],
        members_spec["returned"],
    ) == (["g"], ["a", "b"], "default")


# -- case-sensitive userName filters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirks", "expected"),
    [(Quirks(), ["Alice"]), (Quirks(case_sensitive_user_name_filter=True), [])],
    ids=["rfc", "quirk"],
)
def test_user_name_filter_case(quirks: Quirks, expected: list[str]) -> None:
    """With the quirk, ``userName eq "alice"`` misses Alice; by the RFC it finds her."""
    with seeded(quirks).client() as http:
        body = http.get("/Users", params={"filter": 'userName eq "alice"'}).json()
    assert expected == [r["userName"] for r in body["Resources"]]


def test_case_sensitive_filter_keeps_uniqueness_and_schemas(http_quirky: httpx.Client) -> None:
    """The quirk changes filtering only: exact matches work, userName stays unique
    case-insensitively, and /Schemas still says caseExact false (the provider does not tell)."""
    exact = http_quirky.get("/Users", params={"filter": 'userName eq "Alice"'}).json()
    duplicate = http_quirky.post("/Users", json={"schemas": [USER], "userName": "ALICE"})
    schema = http_quirky.get(f"/Schemas/{USER}").json()
    user_name = next(a for a in schema["attributes"] if a["name"] == "userName")
    assert (exact["totalResults"], duplicate.status_code, user_name["caseExact"]) == (1, 409, False)


@pytest.fixture
def http_quirky() -> Iterator[httpx.Client]:
    """A client to a server filtering userName case-sensitively."""
    with seeded(Quirks(case_sensitive_user_name_filter=True)).client() as client:
        yield client


def test_quirks_can_change_at_run_time() -> None:
    """Assigning server.quirks takes effect on the next request."""
    server = seeded(Quirks())
    with server.client() as http:
        before = http.get("/ServiceProviderConfig").json()["patch"]["supported"]
        server.quirks = Quirks(patch_supported=False)
        after = http.get("/ServiceProviderConfig").json()["patch"]["supported"]
    assert (before, after) == (True, False)
