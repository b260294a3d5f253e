"""What a SCIM target does beyond what it announces: ``TargetFacts``, the pure pieces of
``scimsync.targets._facts``, and ScimTarget's fallbacks against ``httpx.MockTransport``.

A PATCH style refused is tried once in the other style and remembered; PATCH refused
for a resource type falls back to a read-modify-write PUT, remembered; a PATCH whose
value-filter path is refused in either style is sent as that PUT, remembered; a filter the
target cannot evaluate lists and compares, remembered; an answer that ignores its
filter is checked against it; unreadable discovery falls back to the core schemas.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from _mock_target import BASE, MockTarget, json_response, scim_error
from scimsync.client import AsyncScimClient
from scimsync.codec import from_scim
from scimsync.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ScimHTTPError,
    ServerError,
    UnauthorizedError,
)
from scimsync.models import PatchOperation, User
from scimsync.retry import RetryPolicy
from scimsync.schema import CORE_SCHEMAS, core_schema_documents
from scimsync.targets import ScimTarget, TargetFacts
from scimsync.targets._facts import filtered, in_style, refuses_patch, refuses_style

if TYPE_CHECKING:
    from collections.abc import Callable

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

SERVICE_PROVIDER_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": 200},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
    "authenticationSchemes": [],
}

ANN = {"schemas": [USER_URN], "id": "u1", "userName": "ann", "externalId": "E1"}
BOB = {"schemas": [USER_URN], "id": "u2", "userName": "bob", "externalId": "E2"}


# -- TargetFacts -----------------------------------------------------------------------------


def _facts() -> TargetFacts:
    return TargetFacts(
        no_patch={"Group"},
        no_filtered_patch={"User"},
        singular={"User": "add", "Group": "replace"},
        unfilterable={("User", "externalId"), ("Group", "externalId")},
        deviations=["a listing without totalResults"],
    )


def test_facts_round_trip_through_plain_strings() -> None:
    """``to_dict`` writes plain strings a settings row holds; ``from_dict`` reads them
    back into equal facts."""
    facts = _facts()
    data = facts.to_dict()
    assert {
        "Group.patch": "put",
        "User.patch.filtered": "put",
        "Group.singular": "replace",
        "User.singular": "add",
        "Group.filter.externalId": "no",
        "User.filter.externalId": "no",
        "note.a listing without totalResults": "",
    } == data
    assert facts == TargetFacts.from_dict(json.loads(json.dumps(data)))


def test_refused_value_filters_are_a_key_of_their_own() -> None:
    """``User.patch.filtered`` is read as value filters refused, not as PATCH refused nor
    as an attribute lookups cannot filter on; what earlier versions wrote (without it)
    reads as before, and those versions skip the new key (no ``patch`` nor ``filter.``)."""
    assert (
        TargetFacts(no_filtered_patch={"User", "Group"}),
        TargetFacts(no_patch={"Group"}),
    ) == (
        TargetFacts.from_dict({"User.patch.filtered": "put", "Group.patch.filtered": "put"}),
        TargetFacts.from_dict({"Group.patch": "put", "User.patch.filtered": "patch"}),
    )


def test_unknown_entries_are_left_out() -> None:
    """Entries of other resource types, other values or other names are ignored."""
    data = {
        "Device.patch": "put",
        "User.patch": "patch",
        "User.singular": "merge",
        "User.colour": "blue",
        "Group.singular": "add",
    }
    assert TargetFacts(singular={"Group": "add"}) == TargetFacts.from_dict(data)


def test_facts_describe_themselves_in_words() -> None:
    """One line per fact; the default ``replace`` style is not worth a line."""
    assert [
        "the target refuses PATCH on Groups: they are written with PUT",
        "the target refuses PATCH paths with a value filter on Users: changes that need "
        "one are written with PUT",
        "the target refuses 'replace' for User attributes: 'add' is sent instead",
        "the target cannot filter Groups on externalId: lookups list them and compare",
        "the target cannot filter Users on externalId: lookups list them and compare",
        "a listing without totalResults",
    ] == _facts().describe()


def test_merging_adds_what_earlier_runs_knew_without_overriding() -> None:
    """``merge`` adds another's facts; a style already known here stays; deviations are
    noted once."""
    here = TargetFacts(
        no_filtered_patch={"Group"},
        singular={"User": "replace"},
        deviations=["a listing without totalResults"],
    )
    here.merge(_facts())
    assert (
        {"Group"},
        {"Group", "User"},
        {"User": "replace", "Group": "replace"},
        ["a listing without totalResults"],
    ) == (here.no_patch, here.no_filtered_patch, here.singular, here.deviations)


def test_forgetting_knows_nothing_and_noting_says_what_is_new() -> None:
    """``forget`` empties every fact; ``note`` is True only the first time."""
    facts = _facts()
    facts.forget()
    assert TargetFacts() == facts
    assert (True, False, ["x"]) == (facts.note("x"), facts.note("x"), facts.deviations)


# -- what a refusal is, and the other style ------------------------------------------------


@pytest.mark.parametrize(
    ("error", "style", "patch"),
    [
        (ServerError(501), True, True),
        (ServerError(500), False, False),
        (ScimHTTPError(405), False, True),
        (BadRequestError(400), True, False),
        (BadRequestError(400, scim_type="invalidPath"), True, False),
        (BadRequestError(400, scim_type="INVALIDSYNTAX"), True, False),
        (BadRequestError(400, scim_type="noTarget"), True, False),
        (BadRequestError(400, scim_type="invalidValue"), False, False),
        (BadRequestError(400, scim_type="mutability"), False, False),
        (NotFoundError(404), False, False),
        (ValueError("not HTTP"), False, False),
    ],
)
def test_which_errors_refuse_a_style_and_which_refuse_patch(
    error: BaseException, style: bool, patch: bool
) -> None:
    """A 501, or a 400 about the operation's form, refuses a style; a 400 about a value
    does not; 501 and 405 refuse PATCH itself."""
    assert (style, patch) == (refuses_style(error), refuses_patch(error))


def _ops(*triples: tuple[str, str | None, Any]) -> list[PatchOperation]:
    return [PatchOperation(op=op, path=path, value=value) for op, path, value in triples]


def test_singular_attributes_change_style_and_values_of_lists_do_not() -> None:
    """As ``add``: attributes, sub-attributes, extension attributes and filtered
    values; additions to lists, additions without a path and removals stay as they are."""
    operations = _ops(
        ("replace", "title", "Lead"),
        ("replace", "name.givenName", "Ann"),
        ("replace", f"{ENTERPRISE}:department", "R&D"),
        ("replace", 'emails[type eq "work"].value', "a@x.org"),
        ("add", "emails", [{"value": "b@x.org"}]),
        ("add", None, {"title": "Lead"}),
        ("remove", "nickName", None),
    )
    restyled = in_style(operations, "add", "User", CORE_SCHEMAS)
    assert ["add", "add", "add", "add", "add", "add", "remove"] == [op.op for op in restyled or ()]


def test_replace_style_keeps_additions_of_values() -> None:
    """As ``replace``: ``add`` of a title becomes ``replace``; ``add`` of emails or of
    members stays ``add`` (a replace would drop the values it does not list)."""
    operations = _ops(("add", "title", "Lead"), ("add", "emails", [{"value": "b@x.org"}]))
    members = _ops(("add", "displayName", "Eng"), ("add", "members", [{"value": "u1"}]))
    assert (["replace", "add"], ["replace", "add"]) == (
        [op.op for op in in_style(operations, "replace", "User", CORE_SCHEMAS) or ()],
        [op.op for op in in_style(members, "replace", "Group", CORE_SCHEMAS) or ()],
    )


def test_values_added_to_an_attribute_the_schema_does_not_know_stay_added() -> None:
    """An ``add`` of a list to an attribute no schema describes (an extension the target
    does not publish) adds values: it stays ``add``, never a ``replace`` dropping the
    values held; one value on its own is an attribute set, and changes style."""
    operations = _ops(
        ("add", "urn:example:1.0:User:tags", ["x"]),
        ("add", "costCodes", [{"value": "c"}]),
        ("add", "costCode", "c"),
    )
    restyled = in_style(operations, "replace", "User", CORE_SCHEMAS)
    assert ["add", "add", "replace"] == [op.op for op in restyled or ()]


def test_which_operations_use_a_value_filter() -> None:
    """Filtered paths, bare or with a sub-attribute, URN-qualified or not, are value
    filters; attributes, sub-attributes, additions without a path and paths that do
    not parse are not."""
    assert [True, True, True, False, False, False] == [
        filtered(_ops(one))
        for one in (
            ("remove", 'members[value eq "u1"]', None),
            ("replace", 'emails[type eq "work" and value eq "a@x"].value', "b@x"),
            ("replace", f'{USER_URN}:emails[type eq "work"].value', "b@x"),
            ("replace", "name.givenName", "Ann"),
            ("add", None, {"title": "Lead"}),
            ("remove", "emails[type eq", None),
        )
    ]


def test_nothing_to_restyle_is_none() -> None:
    """Operations already in the style, or only removals and list additions, give None."""
    assert (None, None) == (
        in_style(_ops(("replace", "title", "x")), "replace", "User", CORE_SCHEMAS),
        in_style(
            _ops(("add", "members", [{"value": "u1"}]), ("remove", 'members[value eq "u2"]', None)),
            "replace",
            "Group",
            CORE_SCHEMAS,
        ),
    )


# -- ScimTarget against a scripted target -----------------------------------------------------


def _target(mock: MockTarget) -> ScimTarget:
    mock.on("GET", "/v2/ServiceProviderConfig", json_response(200, SERVICE_PROVIDER_CONFIG))
    client = AsyncScimClient(
        BASE,
        http=httpx.AsyncClient(transport=mock.async_transport()),
        retry=RetryPolicy.never(),
    )
    return ScimTarget(client)


async def test_one_member_refused_413_is_an_error() -> None:
    """Halving stops at one member: a single member answered 413 raises, after one
    request per halving; nothing is learned."""
    mock = MockTarget()
    mock.on("PATCH", "/v2/Groups/g1", scim_error(413, None, "too large"))
    target = _target(mock)
    async with target.client:
        with pytest.raises(PayloadTooLargeError):
            await target.add_members("g1", ["u1", "u2", "u3"])
    sizes = [len(body["Operations"][0]["value"]) for body in _bodies(mock, "PATCH")]
    assert ([3, 2, 1], None) == (sizes, target.facts.max_members)


def _bodies(mock: MockTarget, method: str) -> list[Any]:
    return [json.loads(r.content) for r in mock.sent(method)]


def _styles(mock: MockTarget) -> list[list[str]]:
    return [[op["op"] for op in body["Operations"]] for body in _bodies(mock, "PATCH")]


def _refusing(style: str, answer: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """A PATCH handler answering 501 (a bare body) to any operation in ``style``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if any(op["op"] == style for op in json.loads(request.content)["Operations"]):
            return json_response(501, {"detail": "", "status": 501})
        return json_response(200, answer)

    return handle


async def test_a_refused_replace_is_sent_as_add_once_and_from_then_on() -> None:
    """``replace`` answered 501 is retried once as ``add``, which works; the next update
    goes as ``add`` straight away: three PATCHes for two updates."""
    mock = MockTarget()
    mock.on("PATCH", "/v2/Users/u1", _refusing("replace", {**ANN, "title": "Lead"}))
    target = _target(mock)
    async with target.client:
        first = await target.update_user("u1", _ops(("replace", "title", "Lead")))
        await target.update_user("u1", _ops(("replace", "title", "Boss")))
    assert first is not None
    assert ("Lead", [["replace"], ["add"], ["add"]], {"User": "add"}) == (
        first.title,
        _styles(mock),
        target.facts.singular,
    )


async def test_a_refused_add_is_sent_as_replace_and_remembered() -> None:
    """The mirror: with ``add`` remembered and then refused, ``replace`` is tried and
    remembered instead."""
    mock = MockTarget()
    mock.on("PATCH", "/v2/Users/u1", _refusing("add", ANN))
    target = _target(mock)
    target.facts.singular["User"] = "add"
    async with target.client:
        await target.update_user("u1", _ops(("replace", "title", "Lead")))
    assert ([["add"], ["replace"]], {"User": "replace"}) == (
        _styles(mock),
        target.facts.singular,
    )


async def test_a_refused_value_is_not_retried_in_another_style() -> None:
    """A 400 ``invalidValue`` is about the value: raised after one PATCH, nothing learned."""
    mock = MockTarget()
    mock.on("PATCH", "/v2/Users/u1", scim_error(400, "invalidValue", "title too long"))
    target = _target(mock)
    async with target.client:
        with pytest.raises(BadRequestError) as caught:
            await target.update_user("u1", _ops(("replace", "title", "x" * 300)))
    assert ("invalidValue", 1, TargetFacts()) == (
        caught.value.scim_type,
        len(mock.sent("PATCH")),
        target.facts,
    )


async def test_both_styles_refused_by_a_400_raise_the_first_refusal() -> None:
    """A 400 without ``scimType`` to both styles raises the first answer; no style and
    no PUT fallback is learned (a 400 is not PATCH refused)."""
    mock = MockTarget()
    mock.on(
        "PATCH",
        "/v2/Users/u1",
        scim_error(400, detail="first"),
        scim_error(400, detail="second"),
    )
    target = _target(mock)
    async with target.client:
        with pytest.raises(BadRequestError, match="first"):
            await target.update_user("u1", _ops(("replace", "title", "Lead")))
    assert ([["replace"], ["add"]], TargetFacts()) == (_styles(mock), target.facts)


def _group_target(
    mock: MockTarget, patch_answer: httpx.Response | Callable[[httpx.Request], httpx.Response]
) -> ScimTarget:
    members = [{"value": "u1"}, {"value": "u9"}]
    group = {"schemas": [GROUP_URN], "id": "g1", "displayName": "Eng", "members": members}
    mock.on("GET", "/v2/Groups/g1", json_response(200, group))
    mock.on("PATCH", "/v2/Groups/g1", patch_answer)
    mock.on("PUT", "/v2/Groups/g1", lambda request: json_response(200, json.loads(request.content)))
    return _target(mock)


@pytest.mark.parametrize("status", [501, 405])
async def test_patch_refused_for_groups_falls_back_to_put_keeping_members(status: int) -> None:
    """PATCH answered 501 (or 405 Method Not Allowed) on a group is sent as GET + PUT
    holding the members it had and the new one; from then on groups go straight to
    PUT: one PATCH in all."""
    mock = MockTarget()
    target = _group_target(mock, scim_error(status, detail="PATCH not implemented"))
    async with target.client:
        await target.add_members("g1", ["u2"])
        await target.add_members("g1", ["u3"])
    puts = _bodies(mock, "PUT")
    assert (1, [["u1", "u9", "u2"], ["u1", "u9", "u3"]], {"Group"}) == (
        len(mock.sent("PATCH")),
        [[m["value"] for m in body["members"]] for body in puts],
        target.facts.no_patch,
    )


async def test_the_last_members_removed_by_put_are_sent_as_an_empty_list() -> None:
    """Removing every member with PATCH refused sends ``"members": []``: a PUT that left
    ``members`` out would let the target keep them (RFC 7644 §3.5.1)."""
    mock = MockTarget()
    target = _group_target(mock, scim_error(501))
    async with target.client:
        await target.remove_members("g1", ["u1", "u9"])
    assert [[]] == [body["members"] for body in _bodies(mock, "PUT")]


async def test_patch_refused_for_groups_leaves_users_on_patch() -> None:
    """PUT is remembered for the resource type that refused PATCH only."""
    mock = MockTarget()
    target = _group_target(mock, scim_error(501))
    mock.on("PATCH", "/v2/Users/u1", json_response(200, ANN))
    async with target.client:
        await target.remove_members("g1", ["u1"])
        await target.update_user("u1", _ops(("replace", "title", "Lead")))
    assert ([[{"value": "u9"}]], ["/v2/Groups/g1", "/v2/Users/u1"]) == (
        [body["members"] for body in _bodies(mock, "PUT")],
        [r.url.path for r in mock.sent("PATCH")],
    )


CAT = {
    "schemas": [USER_URN],
    "id": "u3",
    "userName": "cat",
    "title": "Dev",
    "nickName": "kit",
    "emails": [
        {"type": "work", "value": "cat@x.org", "primary": True},
        {"type": "home", "value": "cat@home.org"},
    ],
}
WORK = 'emails[type eq "work" and value eq "cat@x.org"].value'


def _refusing_filters(
    refusal: httpx.Response, answer: dict[str, Any]
) -> Callable[[httpx.Request], httpx.Response]:
    """A PATCH handler answering ``refusal`` to any operation whose path has a value
    filter, whatever its style, as several real targets do."""

    def handle(request: httpx.Request) -> httpx.Response:
        if any("[" in (op.get("path") or "") for op in json.loads(request.content)["Operations"]):
            return refusal
        return json_response(200, answer)

    return handle


def _user_target(mock: MockTarget, patch: Callable[[httpx.Request], httpx.Response]) -> ScimTarget:
    mock.on("GET", "/v2/Users/u3", json_response(200, CAT))
    mock.on("PATCH", "/v2/Users/u3", patch)
    mock.on("PUT", "/v2/Users/u3", lambda request: json_response(200, json.loads(request.content)))
    return _target(mock)


@pytest.mark.parametrize("scim_type", ["invalidPath", None])
async def test_a_refused_value_filter_is_written_with_put_once_and_from_then_on(
    scim_type: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """A PATCH with a filtered path answered 400 (``invalidPath``, no ``scimType``) in
    both styles is sent as one PUT carrying every change, the other
    attributes and emails kept; it is learned and said once. The next change with a
    filtered path goes straight to PUT; a change without one is still a PATCH."""
    mock = MockTarget()
    target = _user_target(mock, _refusing_filters(scim_error(400, scim_type), CAT))
    with caplog.at_level(logging.WARNING, logger="scimsync.targets"):
        async with target.client:
            first = await target.update_user(
                "u3", _ops(("replace", "title", "Lead"), ("replace", WORK, "cat@y.org"))
            )
            await target.update_user("u3", _ops(("replace", WORK, "cat@z.org")))
            await target.update_user("u3", _ops(("replace", "title", "Boss")))
    puts = _bodies(mock, "PUT")
    assert first is not None
    assert (
        [["replace", "replace"], ["add", "add"], ["replace"]],
        [("Lead", "kit"), ("Dev", "kit")],
        [["cat@y.org", "cat@home.org"], ["cat@z.org", "cat@home.org"]],
        "Lead",
        {"User"},
        set(),
        {},
    ) == (
        _styles(mock),
        [(body["title"], body["nickName"]) for body in puts],
        [[e["value"] for e in body["emails"]] for body in puts],
        first.title,
        target.facts.no_filtered_patch,
        target.facts.no_patch,
        target.facts.singular,
    )
    warnings = [r.getMessage() for r in caplog.records if "value filter" in r.getMessage()]
    assert 1 == len(warnings), warnings
    assert (f"400 {scim_type}" if scim_type else "(400)") in warnings[0]


async def test_a_value_filter_answered_no_target_is_written_with_put_never_learned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``noTarget`` may only say that the filter selected nothing (a value removed
    meanwhile): the change goes as a PUT that time, and nothing is learned or said, so
    the next filtered change is a PATCH again."""
    mock = MockTarget()
    target = _user_target(mock, _refusing_filters(scim_error(400, "noTarget"), CAT))
    with caplog.at_level(logging.WARNING, logger="scimsync.targets"):
        async with target.client:
            await target.update_user("u3", _ops(("replace", WORK, "cat@y.org")))
            await target.update_user("u3", _ops(("replace", WORK, "cat@z.org")))
    assert (
        [["replace"], ["add"], ["replace"], ["add"]],
        [["cat@y.org", "cat@home.org"], ["cat@z.org", "cat@home.org"]],
        set(),
        [],
    ) == (
        _styles(mock),
        [[e["value"] for e in body["emails"]] for body in _bodies(mock, "PUT")],
        target.facts.no_filtered_patch,
        [r.getMessage() for r in caplog.records if "value filter" in r.getMessage()],
    )


async def test_a_refused_value_filter_in_a_users_diff_is_written_with_put() -> None:
    """A user given whole: the diff's filtered removal of the old work email is refused,
    so the user is overlaid on what the target holds and PUT, unmanaged values kept."""
    mock = MockTarget()
    target = _user_target(mock, _refusing_filters(scim_error(400, "invalidPath"), CAT))
    wanted = from_scim(
        {
            "schemas": [USER_URN],
            "userName": "cat",
            "title": "Lead",
            "emails": [{"type": "work", "value": "cat@y.org", "primary": True}],
        },
        User,
    )
    async with target.client:
        await target.update_user("u3", wanted)
    (put,) = _bodies(mock, "PUT")
    assert (True, ("Lead", "kit", ["cat@y.org"]), {"User"}) == (
        any("[" in (op.get("path") or "") for op in _bodies(mock, "PATCH")[0]["Operations"]),
        (put["title"], put["nickName"], [e["value"] for e in put["emails"]]),
        target.facts.no_filtered_patch,
    )


async def test_a_refused_member_removal_is_written_with_put_keeping_the_others() -> None:
    """``remove members[value eq "u1"]`` answered 400 ``invalidPath`` (no other style
    to try) is sent as GET + PUT without that member, the others and the name kept;
    the next removal goes straight to PUT, while additions stay PATCHes."""
    mock = MockTarget()
    refusing = _refusing_filters(
        scim_error(400, "invalidPath"), {"schemas": [GROUP_URN], "id": "g1"}
    )
    target = _group_target(mock, refusing)
    async with target.client:
        await target.remove_members("g1", ["u1"])
        await target.remove_members("g1", ["u9"])
        await target.add_members("g1", ["u2"])
    puts = _bodies(mock, "PUT")
    assert (
        [["remove"], ["add"]],
        [("Eng", [{"value": "u9"}]), ("Eng", [{"value": "u1"}])],
        ({"Group"}, set()),
    ) == (
        _styles(mock),
        [(body["displayName"], body["members"]) for body in puts],
        (target.facts.no_filtered_patch, target.facts.no_patch),
    )


async def test_a_refused_value_in_a_filtered_patch_is_raised_and_nothing_learned() -> None:
    """A 400 ``invalidValue`` (or ``uniqueness``) to a PATCH with a filtered path is
    about the value: raised after one PATCH, no PUT, nothing learned."""
    for scim_type in ("invalidValue", "uniqueness", "mutability"):
        mock = MockTarget()
        target = _user_target(mock, _refusing_filters(scim_error(400, scim_type), CAT))
        async with target.client:
            with pytest.raises(BadRequestError) as caught:
                await target.update_user("u3", _ops(("replace", WORK, "taken@x.org")))
        assert (scim_type, 1, 0, TargetFacts()) == (
            caught.value.scim_type,
            len(mock.sent("PATCH")),
            len(mock.sent("PUT")),
            target.facts,
        )


async def test_refused_value_filters_learned_earlier_send_no_patch_with_one() -> None:
    """Facts read back from a state store (``to_dict`` / ``from_dict``) send a filtered
    change straight to PUT: the refused PATCH is not sent again by a later process."""
    learned = TargetFacts.from_dict(TargetFacts(no_filtered_patch={"User"}).to_dict())
    mock = MockTarget()
    target = _user_target(mock, _refusing_filters(scim_error(400, "invalidPath"), CAT))
    target.facts.merge(learned)
    async with target.client:
        await target.update_user("u3", _ops(("replace", WORK, "cat@y.org")))
    assert (0, 1) == (len(mock.sent("PATCH")), len(mock.sent("PUT")))


def _listing(*resources: dict[str, Any]) -> httpx.Response:
    return json_response(
        200,
        {
            "schemas": [LIST_URN],
            "totalResults": len(resources),
            "startIndex": 1,
            "itemsPerPage": len(resources),
            "Resources": list(resources),
        },
    )


def _filtered(
    filtered: httpx.Response, listed: httpx.Response
) -> Callable[[httpx.Request], httpx.Response]:
    """GET /Users answering ``filtered`` to a lookup and ``listed`` to a listing."""

    def handle(request: httpx.Request) -> httpx.Response:
        return filtered if "filter" in request.url.params else listed

    return handle


def _lookups(mock: MockTarget) -> list[bool]:
    """For each GET /Users sent: True for a filtered lookup, False for a listing."""
    return ["filter" in r.url.params for r in mock.sent("GET") if r.url.path == "/v2/Users"]


async def test_a_filter_the_target_cannot_evaluate_lists_and_compares() -> None:
    """A lookup answered 400 ``invalidFilter`` lists the users once and compares them
    here; the next lookup on that attribute lists straight away."""
    mock = MockTarget()
    refused = scim_error(400, "invalidFilter", "cannot filter on externalId")
    mock.on("GET", "/v2/Users", _filtered(refused, _listing(ANN, BOB)))
    target = _target(mock)
    async with target.client:
        first = await target.find_users("externalId", "E1")
        second = await target.find_users("externalId", "E2")
    # Each listing is whole: its one page reaching totalResults asks for the next.
    listing = [False, False]
    assert (["u1"], ["u2"], [True, *listing, *listing], {("User", "externalId")}) == (
        [u.id for u in first],
        [u.id for u in second],
        _lookups(mock),
        target.facts.unfilterable,
    )


async def test_another_bad_request_to_a_lookup_is_raised() -> None:
    """A 400 of another kind to a lookup is an error, not a reason to list everything."""
    mock = MockTarget()
    mock.on("GET", "/v2/Users", scim_error(400, "invalidValue"))
    target = _target(mock)
    async with target.client:
        with pytest.raises(BadRequestError):
            await target.find_users("externalId", "E1")
    assert ([True], set()) == (_lookups(mock), target.facts.unfilterable)


async def test_an_answer_that_ignores_its_filter_is_checked_against_it() -> None:
    """A lookup answered with every user keeps only those its filter selects (userName
    compared as the schema says: without case), and says so once."""
    mock = MockTarget()
    mock.on("GET", "/v2/Users", _listing(ANN, BOB))
    target = _target(mock)
    async with target.client:
        found = await target.find_users("userName", "ANN")
        again = await target.find_users("externalId", "E2")
    notes = [n for n in target.facts.deviations if "do not match it" in n]
    assert (["u1"], ["u2"], 2) == ([u.id for u in found], [u.id for u in again], len(notes))


async def test_an_answer_that_keeps_its_filter_says_nothing() -> None:
    """A lookup answered with just the matching user is taken as it is, no deviation."""
    mock = MockTarget()
    mock.on("GET", "/v2/Users", _listing(ANN))
    target = _target(mock)
    async with target.client:
        found = await target.find_users("externalId", "E1")
    assert (["u1"], []) == ([u.id for u in found], target.facts.deviations)


# -- discovery -------------------------------------------------------------------------------


def _discovery(schemas: httpx.Response, resource_types: httpx.Response | None = None) -> ScimTarget:
    mock = MockTarget()
    mock.on("GET", "/v2/Schemas", schemas)
    if resource_types is not None:
        mock.on("GET", "/v2/ResourceTypes", resource_types)
    return _target(mock)


async def test_unreadable_schemas_fall_back_to_the_core_schemas() -> None:
    """GET /Schemas answered 500 gives the RFC 7643 core schemas, noted once."""
    target = _discovery(scim_error(500, detail="boom"))
    async with target.client:
        table = await target.schema()
    assert (CORE_SCHEMAS, 1) == (
        table,
        len([n for n in target.facts.deviations if "GET /Schemas could not be read" in n]),
    )


async def test_unreadable_schemas_are_one_fact_however_often_they_fail() -> None:
    """Two runs whose GET /Schemas fail with different details (a request id) keep one
    fact between them: what is stored, and said, does not grow with every run."""
    facts = []
    for request_id in ("req-1", "req-2"):
        target = _discovery(scim_error(500, detail=f"internal error, request {request_id}"))
        async with target.client:
            await target.schema()
        facts.append(target.facts)
    later = TargetFacts.from_dict(facts[0].to_dict())
    later.merge(facts[1])
    assert ["GET /Schemas could not be read (HTTP 500): the RFC 7643 core schemas are assumed"] == (
        later.deviations
    )


async def test_no_schemas_at_all_is_the_core_schemas_without_a_word() -> None:
    """GET /Schemas answered 404 is a target that follows the core schemas: no deviation."""
    target = _discovery(scim_error(404))
    async with target.client:
        table = await target.schema()
    assert (CORE_SCHEMAS, []) == (table, target.facts.deviations)


async def test_refused_credentials_are_not_a_fallback() -> None:
    """GET /Schemas answered 401 raises: the credentials are wrong, not the target."""
    target = _discovery(scim_error(401))
    async with target.client:
        with pytest.raises(UnauthorizedError):
            await target.schema()
    assert [] == target.facts.deviations


async def test_unreadable_resource_types_are_inferred_from_the_schemas() -> None:
    """GET /ResourceTypes answered 500 infers User and Group from /Schemas, noted."""
    schemas = json_response(200, {"schemas": [LIST_URN], "Resources": core_schema_documents()})
    target = _discovery(schemas, scim_error(500))
    async with target.client:
        table = await target.schema()
    user_type = table.resource_type("User")
    assert ((ENTERPRISE,), True) == (
        user_type.extensions if user_type is not None else None,
        any("GET /ResourceTypes could not be read" in n for n in target.facts.deviations),
    )


async def test_the_clients_findings_are_facts_too() -> None:
    """A listing without ``totalResults`` noted by the client shows in ``facts``."""
    mock = MockTarget()
    mock.on(
        "GET",
        "/v2/Users",
        json_response(200, {"schemas": [LIST_URN], "Resources": [ANN]}),
        json_response(200, {"schemas": [LIST_URN], "Resources": []}),
    )
    target = _target(mock)
    async with target.client:
        listing = await target.list_users()
    assert (["u1"], True) == (
        [u.id for u in listing.resources],
        any("totalResults" in n for n in target.facts.deviations),
    )
