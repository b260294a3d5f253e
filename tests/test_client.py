"""ScimClient against httpx.MockTransport: requests on the wire, answers, errors, retries.

The async twin is ``test_client_async.py``; real servers are in ``test_client_integration.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from _mock_target import BASE, MockTarget, json_response, scim_error
from scimsync import Group, Member, Meta, User
from scimsync.auth import BearerToken
from scimsync.client import RateLimiter, RequestDetails, ScimClient, ServiceCapabilities
from scimsync.errors import (
    BadRequestError,
    ConfigurationError,
    ConflictResponseError,
    FilterSyntaxError,
    ForbiddenError,
    IncompleteListingError,
    InvalidResponseError,
    NotFoundError,
    OutcomeUnknownError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ResourceValidationError,
    ScimHTTPError,
    ServerError,
    TooManyRequestsError,
    TransportError,
    UnauthorizedError,
)
from scimsync.filter import attr
from scimsync.models import BulkOperation, PatchOp, PatchOperation
from scimsync.retry import RetryDetails, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

USER_JSON = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "u-1",
    "userName": "bjensen",
    "active": True,
    "meta": {"resourceType": "User", "version": 'W/"1"'},
}


class Recorder:
    """An injected clock and sleep: time moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(target: MockTarget, recorder: Recorder | None = None, **options: Any) -> ScimClient:
    recorder = recorder or Recorder()
    options.setdefault("retry", RetryPolicy(jitter=0))
    return ScimClient(
        BASE,
        http=httpx.Client(transport=target.transport()),
        sleep=recorder.sleep,
        clock=recorder.clock,
        **options,
    )


@pytest.fixture
def target() -> MockTarget:
    return MockTarget()


# -- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://scim.example.com/v2",
        "ftp://scim.example.com/v2",
        "https://user:pass@scim.example.com/v2",
        "https://scim.example.com/v2?tenant=1",
        "not a url",
    ],
)
def test_unsafe_base_urls_are_refused_before_any_request(url: str) -> None:
    """Plain http off loopback, other schemes, credentials or a query in the URL: refused."""
    with pytest.raises(ConfigurationError):
        ScimClient(url)


def test_refusal_never_echoes_url_credentials() -> None:
    """The error for a URL with credentials does not repeat them."""
    with pytest.raises(ConfigurationError) as caught:
        ScimClient("https://admin:hunter2@scim.example.com/v2")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/v2", "http://localhost/v2", "http://[::1]/v2"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    """Loopback targets (tests, sidecars) may use plain http."""
    with ScimClient(url) as client:
        assert url.rstrip("/") == str(client.base_url).rstrip("/")


def test_plain_http_elsewhere_needs_the_explicit_opt_in() -> None:
    """``allow_insecure_http=True`` is the only way to plain http off loopback."""
    with ScimClient("http://scim.internal/v2", allow_insecure_http=True) as client:
        assert "http://scim.internal/v2" == str(client.base_url)


def test_base_url_is_taken_from_the_callers_http_client(target: MockTarget) -> None:
    """A caller's httpx.Client with a base_url is enough; it is not closed by the client."""
    http = httpx.Client(base_url=BASE, transport=target.transport())
    client = ScimClient(http=http)
    assert str(client.base_url).rstrip("/") == BASE
    client.close()
    assert False is http.is_closed


def test_a_client_without_base_url_is_a_configuration_error() -> None:
    """No base URL anywhere: refused at construction."""
    with pytest.raises(ConfigurationError):
        ScimClient()


@pytest.mark.parametrize(
    "settings",
    [{"retry": "often"}, {"max_members_per_operation": 0}, {"rate_limiter": None, "base_url": ""}],
)
def test_nonsense_settings_are_refused(settings: dict[str, Any]) -> None:
    """A retry that is not a RetryPolicy, a zero member limit or an empty URL: refused."""
    settings = {"base_url": BASE, **settings}
    with pytest.raises(ConfigurationError):
        ScimClient(**settings)


def test_repr_shows_no_secret() -> None:
    """The client's repr names the auth but never the token."""
    client = ScimClient(BASE, auth=BearerToken("s3cr3t-token"))
    assert "s3cr3t-token" not in repr(client)
    assert "BearerToken" in repr(client)


# -- resources ------------------------------------------------------------------------------------


def test_create_posts_the_request_form_and_reads_the_answer(target: MockTarget) -> None:
    """POST /Users carries the User without readOnly attributes; the answer is a User."""
    target.on("POST", "/v2/Users", json_response(201, USER_JSON))
    client = make_client(target)
    created = client.create(
        User(id="ignored", user_name="bjensen", active=True, meta=Meta(version='W/"9"'))
    )
    [request] = target.requests
    assert {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen",
        "active": True,
    } == json.loads(request.content)
    assert "application/scim+json" == request.headers["Content-Type"]
    assert "application/scim+json" in request.headers["Accept"]
    assert (
        User(
            id="u-1",
            user_name="bjensen",
            active=True,
            meta=Meta(resource_type="User", version='W/"1"'),
        )
        == created
    )


def test_create_of_another_resource_type_uses_dicts_and_the_endpoint(target: MockTarget) -> None:
    """Resource types without a model travel as dicts to the endpoint given."""
    target.on("POST", "/v2/Devices", json_response(201, {"id": "d-1", "serial": "X"}))
    client = make_client(target)
    created = client.create({"id": "dropped", "serial": "X"}, endpoint="/Devices")
    assert {"id": "d-1", "serial": "X"} == created
    assert {"serial": "X"} == json.loads(target.requests[0].content)


@pytest.mark.parametrize(
    "endpoint", ["Devices", "https://evil.example/Devices", "/a/../b", "/D?x=1"]
)
def test_endpoints_must_be_paths_under_the_base_url(target: MockTarget, endpoint: str) -> None:
    """An endpoint is a path: absolute URLs, dot segments and queries are refused."""
    client = make_client(target)
    with pytest.raises(ConfigurationError):
        client.create({"serial": "X"}, endpoint=endpoint)
    assert [] == target.requests


def test_get_quotes_the_id_and_asks_for_attributes(target: MockTarget) -> None:
    """Ids are one path segment (``/`` escaped); attributes go in the query."""
    target.on("GET", "/v2/Users/a%2Fb", json_response(200, {**USER_JSON, "id": "a/b"}))
    client = make_client(target)
    user = client.get(User, "a/b", attributes=["userName", "active"])
    assert "a/b" == user.id
    assert "userName,active" == target.requests[0].url.params["attributes"]


def test_get_of_a_missing_resource_is_not_found(target: MockTarget) -> None:
    """404 is NotFoundError, with the SCIM detail, and is not retried."""
    target.on("GET", "/v2/Users/nope", scim_error(404, detail="Resource nope not found"))
    client = make_client(target)
    with pytest.raises(NotFoundError) as caught:
        client.get(User, "nope")
    assert (404, "Resource nope not found") == (caught.value.status, caught.value.detail)
    assert 1 == len(target.requests)


def test_patch_answered_204_returns_none(target: MockTarget) -> None:
    """A target answering PATCH with 204 and no body gives None, not an error."""
    target.on("PATCH", "/v2/Users/u-1", httpx.Response(204))
    client = make_client(target)
    result = client.patch(User, "u-1", [PatchOperation(op="replace", path="active", value=False)])
    assert None is result
    assert {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    } == json.loads(target.requests[0].content)


def test_patch_answered_200_returns_the_resource(target: MockTarget) -> None:
    """A PATCH answered with the resource returns it; model values are converted."""
    target.on("PATCH", "/v2/Groups/g-1", json_response(200, {"id": "g-1", "displayName": "ops"}))
    client = make_client(target)
    ops = PatchOp(
        operations=[PatchOperation(op="add", path="members", value=[Member(value="u-1")])]
    )
    group = client.patch(Group, "g-1", ops, attributes=["id"])
    assert Group(id="g-1", display_name="ops") == group
    assert [{"value": "u-1"}] == json.loads(target.requests[0].content)["Operations"][0]["value"]
    assert "id" == target.requests[0].url.params["attributes"]


def test_patch_without_operations_is_refused(target: MockTarget) -> None:
    """An empty PATCH is a caller error, caught before sending."""
    with pytest.raises(ConfigurationError):
        make_client(target).patch(User, "u-1", [])
    assert [] == target.requests


def test_delete_accepts_any_success(target: MockTarget) -> None:
    """DELETE answered 204 (or 200 with a body) is done."""
    target.on("DELETE", "/v2/Users/u-1", httpx.Response(204))
    target.on("DELETE", "/v2/Users/u-2", httpx.Response(200, content=b"<p>ok</p>"))
    client = make_client(target)
    client.delete(User, "u-1")
    client.delete(User, "u-2")
    assert 2 == len(target.requests)


def test_replace_without_id_is_refused(target: MockTarget) -> None:
    """PUT needs the id of the resource it replaces."""
    with pytest.raises(ResourceValidationError, match="id"):
        make_client(target, etags=False).replace(User(user_name="x"))
    assert [] == target.requests


# -- ETags ----------------------------------------------------------------------------------------

SPC_WITH_ETAG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": True, "maxOperations": 100, "maxPayloadSize": 1048576},
    "filter": {"supported": True, "maxResults": 200},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": True},
    "authenticationSchemes": [],
}


def test_replace_sends_if_match_when_the_target_supports_etags(target: MockTarget) -> None:
    """With ETag support discovered (once), PUT carries the resource's version."""
    target.on("GET", "/v2/ServiceProviderConfig", json_response(200, SPC_WITH_ETAG))
    target.on("PUT", "/v2/Users/u-1", json_response(200, USER_JSON))
    client = make_client(target)
    user = User(id="u-1", user_name="bjensen", meta=Meta(version='W/"1"'))
    client.replace(user)
    client.replace(user)
    puts = target.sent("PUT")
    assert ['W/"1"', 'W/"1"'] == [r.headers.get("If-Match") for r in puts]
    assert 1 == len(target.sent("GET"))


def test_no_if_match_when_the_target_has_no_etags(target: MockTarget) -> None:
    """A target without ETag support (or without a ServiceProviderConfig) gets no If-Match."""
    target.on("GET", "/v2/ServiceProviderConfig", scim_error(404))
    target.on("PATCH", "/v2/Users/u-1", httpx.Response(204))
    client = make_client(target)
    client.patch(User, "u-1", [PatchOperation(op="remove", path="title")], version='W/"3"')
    assert None is target.sent("PATCH")[0].headers.get("If-Match")


@pytest.mark.parametrize(("etags", "expected"), [(True, 'W/"3"'), (False, None)])
def test_etags_setting_overrides_discovery(
    target: MockTarget, etags: bool, expected: str | None
) -> None:
    """``etags=True`` always sends a known version, ``False`` never; no discovery either way."""
    target.on("DELETE", "/v2/Users/u-1", httpx.Response(204))
    make_client(target, etags=etags).delete(User, "u-1", version='W/"3"')
    assert [expected] == [r.headers.get("If-Match") for r in target.requests]


def test_a_stale_version_is_precondition_failed_and_not_retried(target: MockTarget) -> None:
    """412 is PreconditionFailedError after one attempt."""
    target.on("PUT", "/v2/Users/u-1", scim_error(412))
    client = make_client(target, etags=True)
    with pytest.raises(PreconditionFailedError):
        client.replace(User(id="u-1", user_name="x", meta=Meta(version='W/"1"')))
    assert 1 == len(target.requests)


# -- errors ---------------------------------------------------------------------------------------


def test_a_read_answered_500_or_cut_short_is_retried_a_write_is_not(target: MockTarget) -> None:
    """A GET answered 500, then with a body cut short, then with the user, succeeds
    after three attempts; a PATCH answered 500 is tried once (its outcome is unknown)."""
    target.on(
        "GET",
        "/v2/Users/u-1",
        scim_error(500),
        httpx.Response(200, text='{"id": "u-1", "userN'),
        httpx.Response(200, json={"id": "u-1", "userName": "x"}),
    )
    target.on("PATCH", "/v2/Users/u-1", scim_error(500))
    client = make_client(target)
    assert "x" == client.get(User, "u-1").user_name
    with pytest.raises(OutcomeUnknownError):
        client.patch(User, "u-1", [PatchOperation(op="replace", path="title", value="t")])
    assert ["GET", "GET", "GET", "PATCH"] == [r.method for r in target.requests]


@pytest.mark.parametrize(
    ("response", "error", "scim_type"),
    [
        (scim_error(400, "invalidFilter"), BadRequestError, "invalidFilter"),
        (scim_error(401), UnauthorizedError, None),
        (scim_error(403), ForbiddenError, None),
        (scim_error(409, "uniqueness"), ConflictResponseError, "uniqueness"),
        (scim_error(413), PayloadTooLargeError, None),
        (scim_error(501), ServerError, None),
        (httpx.Response(418, text="teapot"), ScimHTTPError, None),
        (httpx.Response(302, headers={"Location": "https://elsewhere/"}), ScimHTTPError, None),
    ],
)
def test_error_statuses_map_to_the_error_tree_without_retry(
    target: MockTarget, response: httpx.Response, error: type[Exception], scim_type: str | None
) -> None:
    """Each status raises its class once, keeping scimType; redirects are not followed."""
    target.on("GET", "/v2/Users/u-1", response)
    client = make_client(target)
    with pytest.raises(error) as caught:
        client.get(User, "u-1")
    assert isinstance(caught.value, ScimHTTPError)
    assert (response.status_code, scim_type) == (caught.value.status, caught.value.scim_type)
    assert 1 == len(target.requests)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (b"", "application/scim+json"),
        (b"[1, 2]", "application/scim+json"),
        (b'{"id": "u-1", "active": "maybe"}', "application/scim+json"),
    ],
)
def test_garbage_answers_are_invalid_response_errors(
    target: MockTarget, body: bytes, content_type: str
) -> None:
    """HTML, an empty body, a JSON array or an ill-typed resource is an error, never empty."""
    target.on(
        "GET",
        "/v2/Users/u-1",
        httpx.Response(200, content=body, headers={"Content-Type": content_type}),
    )
    with pytest.raises(InvalidResponseError):
        make_client(target).get(User, "u-1")


def test_html_answer_keeps_an_excerpt(target: MockTarget) -> None:
    """The error shows the start of the page, to tell a proxy's page from the target's."""
    page = b"<html>" + b"x" * 2000 + b"</html>"
    target.on("GET", "/v2/Users/u-1", httpx.Response(200, content=page))
    with pytest.raises(InvalidResponseError) as caught:
        make_client(target).get(User, "u-1")
    assert caught.value.body_excerpt.startswith("<html>xxx")
    assert True is (len(caught.value.body_excerpt) <= 501)


ERROR_IN_SUCCESS = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
    "status": "500",
    "scimType": "tooMany",
    "detail": "backend unavailable",
}


@pytest.mark.parametrize(
    ("method", "path", "call", "expected"),
    [
        ("GET", "/v2/Users/u-1", lambda c: c.get(User, "u-1"), "a User"),
        ("GET", "/v2/Users", lambda c: c.list_all(User), "a ListResponse"),
        ("POST", "/v2/Users/.search", lambda c: c.search(User), "a ListResponse"),
        ("GET", "/v2/Devices/d-1", lambda c: c.get("/Devices", "d-1"), "a /Devices resource"),
        ("POST", "/v2/Users", lambda c: c.create(User(user_name="bjensen")), "a User"),
        (
            "PUT",
            "/v2/Users/u-1",
            lambda c: c.replace(User(id="u-1", user_name="bjensen")),
            "a User",
        ),
        (
            "PATCH",
            "/v2/Groups/g-1",
            lambda c: c.patch(Group, "g-1", [PatchOperation(op="add", path="members", value=[])]),
            "a Group",
        ),
        ("GET", "/v2/ServiceProviderConfig", lambda c: c.service_provider_config(), "a Service"),
        ("GET", "/v2/Schemas", lambda c: c.schemas(), "a ListResponse"),
    ],
)
def test_a_success_answering_a_scim_error_says_so(
    target: MockTarget, method: str, path: str, call: Any, expected: str
) -> None:
    """A 200 whose body is a SCIM Error is an InvalidResponseError saying the answer is
    an Error where something else was expected, with the target's status, scimType and
    detail; never a success (a write's outcome is unknown, a look-up tells)."""
    target.on(method, path, json_response(200, ERROR_IN_SUCCESS))
    with pytest.raises(InvalidResponseError) as caught:
        call(make_client(target, retry=RetryPolicy.never()))
    message = str(caught.value)
    assert (
        f"{method} {BASE}{path.removeprefix('/v2')} answered 200, a success, with a SCIM "
        f"Error (status 500, scimType tooMany) where {expected}"
    ) in message
    assert message.endswith(" was expected: backend unavailable")
    assert "is not among" not in message


def test_a_scim_error_in_a_success_is_found_in_any_case_and_without_a_detail(
    target: MockTarget,
) -> None:
    """Attribute names and the schema URN are case-insensitive; without a detail, the
    error keeps an excerpt of the body."""
    body = {"SCHEMAS": ["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:ERROR"], "Status": 503}
    target.on("GET", "/v2/Users/u-1", json_response(200, body))
    with pytest.raises(InvalidResponseError) as caught:
        make_client(target).get(User, "u-1")
    assert "with a SCIM Error (status 503) where a User was expected" in str(caught.value)
    assert '"Status": 503' in caught.value.body_excerpt


def test_a_scim_error_in_a_success_is_masked_like_any_error_text(target: MockTarget) -> None:
    """The target's detail and scimType are shown with the client's secrets masked."""
    token = "tok-0123456789abcdef-secret"
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "401",
        "scimType": f"echo {token}",
        "detail": f"refused Authorization: Bearer {token} (prefix {token[:12]})",
    }
    target.on("GET", "/v2/Users", json_response(200, body))
    client = ScimClient(
        BASE,
        http=httpx.Client(transport=target.transport()),
        auth=BearerToken(token),
        retry=RetryPolicy.never(),
    )
    with pytest.raises(InvalidResponseError) as caught:
        client.list_all(User)
    message = str(caught.value)
    assert "refused Authorization: Bearer" in message
    assert token not in message
    assert token[:12] not in message


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"null", "JSON null"),
        (b"[]", "a JSON array"),
        (b'"ok"', "a JSON string"),
        (b"42", "a JSON number"),
        (b"true", "JSON true"),
    ],
)
def test_json_that_is_not_an_object_says_what_came_back(
    target: MockTarget, body: bytes, said: str
) -> None:
    """JSON null (or an array, a string, ...) where a resource or a listing belongs:
    the error says what came back, and what was expected."""
    target.on("GET", "/v2/Users/u-1", httpx.Response(200, content=body))
    target.on("GET", "/v2/Users", httpx.Response(200, content=body))
    client = make_client(target, retry=RetryPolicy.never())
    with pytest.raises(InvalidResponseError, match=f"answered 200 with {said}, not a User"):
        client.get(User, "u-1")
    with pytest.raises(InvalidResponseError, match=f"answered 200 with {said}, not a ListResponse"):
        client.list_all(User)


# -- retries and outcome-unknown ------------------------------------------------------------------


def test_get_retries_503_then_succeeds(target: MockTarget) -> None:
    """An idempotent GET is retried on 503, with backoff waits, until it succeeds."""
    target.on(
        "GET", "/v2/Users/u-1", scim_error(503), scim_error(503), json_response(200, USER_JSON)
    )
    recorder = Recorder()
    user = make_client(target, recorder, retry=RetryPolicy(initial_wait=1, jitter=0)).get(
        User, "u-1"
    )
    assert "u-1" == user.id
    assert 3 == len(target.requests)
    assert [1.0, 2.0] == recorder.sleeps


def test_429_waits_for_retry_after(target: MockTarget) -> None:
    """A 429 with Retry-After is retried after exactly that many seconds."""
    limited = json_response(429, {"detail": "slow down"}, {"Retry-After": "7"})
    target.on("GET", "/v2/Users/u-1", limited, json_response(200, USER_JSON))
    recorder = Recorder()
    make_client(target, recorder).get(User, "u-1")
    assert [7.0] == recorder.sleeps


def test_429_beyond_the_cap_fails_that_request(target: MockTarget) -> None:
    """A Retry-After over ``max_retry_after`` raises TooManyRequestsError with the wait."""
    target.on("GET", "/v2/Users/u-1", json_response(429, {}, {"Retry-After": "86400"}))
    recorder = Recorder()
    with pytest.raises(TooManyRequestsError) as caught:
        make_client(target, recorder).get(User, "u-1")
    assert 86400.0 == caught.value.retry_after
    assert [] == recorder.sleeps


def test_create_answered_5xx_is_outcome_unknown(target: MockTarget) -> None:
    """A POST answered 503 may have committed: OutcomeUnknownError, sent once, never retried."""
    target.on("POST", "/v2/Users", scim_error(503))
    with pytest.raises(OutcomeUnknownError) as caught:
        make_client(target).create(User(user_name="bjensen", password="pw-123"))
    assert 1 == len(target.requests)
    assert ("POST", f"{BASE}/Users") == (caught.value.method, caught.value.url)
    assert isinstance(caught.value.__cause__, ServerError)
    assert {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen",
        "password": "**********",
    } == caught.value.payload


def test_patch_answered_501_is_a_plain_server_error(target: MockTarget) -> None:
    """501 Not Implemented (no PATCH support) applied nothing: ServerError, not unknown."""
    target.on("PATCH", "/v2/Users/u-1", scim_error(501))
    with pytest.raises(ServerError) as caught:
        make_client(target).patch(User, "u-1", [PatchOperation(op="remove", path="title")])
    assert False is isinstance(caught.value, OutcomeUnknownError)
    assert 501 == caught.value.status


def test_outcome_unknown_payload_hides_passwords_at_any_depth(target: MockTarget) -> None:
    """Passwords in the kept payload are redacted: as attributes and as PATCH values."""
    target.on("PATCH", "/v2/Users/u-1", scim_error(500))
    ops = [
        PatchOperation(
            op="replace", path="urn:ietf:params:scim:schemas:core:2.0:User:password", value="pw-1"
        ),
        PatchOperation(op="replace", value={"password": "pw-2", "title": "x"}),
    ]
    with pytest.raises(OutcomeUnknownError) as caught:
        make_client(target).patch(User, "u-1", ops)
    expected = [
        {
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "value": "**********",
        },
        {"op": "replace", "value": {"password": "**********", "title": "x"}},
    ]
    payload = caught.value.payload
    assert isinstance(payload, dict)
    assert expected == payload["Operations"]


def test_create_with_lost_answer_is_outcome_unknown(target: MockTarget) -> None:
    """A POST whose connection dropped after sending is outcome-unknown, not retried."""
    target.on("POST", "/v2/Users", httpx.ReadTimeout, json_response(201, USER_JSON))
    with pytest.raises(OutcomeUnknownError):
        make_client(target).create(User(user_name="bjensen"))
    assert 1 == len(target.requests)


def test_create_retries_when_nothing_was_sent(target: MockTarget) -> None:
    """A POST that could not connect never reached the target: it is retried."""
    target.on("POST", "/v2/Users", httpx.ConnectError, json_response(201, USER_JSON))
    created = make_client(target).create(User(user_name="bjensen"))
    assert "u-1" == created.id
    assert 2 == len(target.requests)


def test_create_retries_429(target: MockTarget) -> None:
    """429 means "not processed": even a POST is retried."""
    target.on("POST", "/v2/Users", scim_error(429), json_response(201, USER_JSON))
    assert "u-1" == make_client(target).create(User(user_name="bjensen")).id
    assert 2 == len(target.requests)


def test_patch_with_lost_answer_is_outcome_unknown(target: MockTarget) -> None:
    """PATCH is not idempotent either: a dropped answer raises OutcomeUnknownError."""
    target.on("PATCH", "/v2/Groups/g-1", httpx.RemoteProtocolError)
    with pytest.raises(OutcomeUnknownError):
        make_client(target).patch(Group, "g-1", [PatchOperation(op="remove", path="members")])
    assert 1 == len(target.requests)


def test_get_read_timeouts_are_retried_then_raised(target: MockTarget) -> None:
    """An idempotent GET retries read timeouts, and raises TransportError when out of tries."""
    target.on("GET", "/v2/Users/u-1", httpx.ReadTimeout)
    with pytest.raises(TransportError) as caught:
        make_client(target, retry=RetryPolicy(max_attempts=3, jitter=0)).get(User, "u-1")
    assert 3 == len(target.requests)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert False is isinstance(caught.value, OutcomeUnknownError)


def _ticking_body(recorder: Recorder, chunks: int) -> Iterator[bytes]:
    """A user body whose every chunk takes one second on ``recorder``'s clock."""
    yield b'{"id": "u-1", "userName": "bjensen", "title": "'
    for _ in range(chunks):
        recorder.now += 1.0
        yield b"x"
    yield b'"}'


def test_an_answer_slower_than_the_deadline_is_a_timeout(target: MockTarget) -> None:
    """A body still arriving past ``request_deadline`` ends the attempt: TransportError."""
    recorder = Recorder()
    target.on(
        "GET",
        "/v2/Users/u-1",
        lambda request: httpx.Response(200, content=_ticking_body(recorder, 10)),
    )
    client = make_client(target, recorder, retry=RetryPolicy.never(), request_deadline=2.5)
    with pytest.raises(TransportError) as caught:
        client.get(User, "u-1")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert True is ("within 2.5 s (request_deadline)" in str(caught.value))


def test_a_write_past_the_deadline_is_outcome_unknown(target: MockTarget) -> None:
    """A POST whose answer outlasts the deadline may have been applied: OutcomeUnknownError."""
    recorder = Recorder()
    target.on(
        "POST",
        "/v2/Users",
        lambda request: httpx.Response(201, content=_ticking_body(recorder, 10)),
    )
    client = make_client(target, recorder, request_deadline=2.5)
    with pytest.raises(OutcomeUnknownError):
        client.create(User(user_name="bjensen"))
    assert 1 == len(target.requests)


def test_the_deadline_defaults_to_the_read_timeout(target: MockTarget) -> None:
    """``timeout=5`` means five seconds per attempt in all, not five seconds per read."""
    recorder = Recorder()
    target.on(
        "GET",
        "/v2/Users/u-1",
        lambda request: httpx.Response(200, content=_ticking_body(recorder, 10)),
    )
    client = ScimClient(
        BASE,
        http=httpx.Client(transport=target.transport(), timeout=5),
        retry=RetryPolicy.never(),
        clock=recorder.clock,
    )
    with pytest.raises(TransportError) as caught:
        client.get(User, "u-1")
    assert True is ("within 5 s (request_deadline)" in str(caught.value))
    assert 5.0 == target.requests[0].extensions["timeout"]["read"]


def test_each_attempt_is_cut_to_what_is_left_of_max_total_seconds(target: MockTarget) -> None:
    """Retries wait 4 s each; the third attempt, 8 s in, gets the 2 s left of the budget.

    (The first two keep the HTTP client's own 5 s timeouts, shorter than what is left.)
    """
    target.on("GET", "/v2/Users/u-1", scim_error(503))
    recorder = Recorder()
    policy = RetryPolicy(
        max_attempts=10, max_total_seconds=10, initial_wait=4, multiplier=1, jitter=0
    )
    client = make_client(target, recorder, retry=policy, request_deadline=30)
    with pytest.raises(ServerError):
        client.get(User, "u-1")
    timeouts = [request.extensions["timeout"] for request in target.requests]
    assert [5.0, 5.0, 2.0] == [timeout["read"] for timeout in timeouts]
    assert [5.0, 5.0, 2.0] == [timeout["connect"] for timeout in timeouts]


def test_no_attempt_starts_once_max_total_seconds_is_spent(target: MockTarget) -> None:
    """A budget already spent when an attempt would start fails it unsent, without retry."""
    target.on("POST", "/v2/Users", json_response(429, {}, {"Retry-After": "10"}))
    recorder = Recorder()
    policy = RetryPolicy(max_attempts=5, max_total_seconds=10, jitter=0)
    client = make_client(target, recorder, retry=policy)
    with pytest.raises(TransportError) as caught:
        client.create(User(user_name="bjensen"))
    assert 1 == len(target.requests)
    assert False is isinstance(caught.value, OutcomeUnknownError)
    assert True is ("max_total_seconds (10 s) is spent" in str(caught.value))


@pytest.mark.parametrize("deadline", [0, -1, float("inf"), float("nan"), True, "5"])
def test_a_deadline_that_cannot_work_is_refused(deadline: object) -> None:
    """``request_deadline`` is a positive, finite number of seconds."""
    with pytest.raises(ConfigurationError):
        ScimClient(BASE, request_deadline=deadline)  # type: ignore[arg-type]


def test_put_and_delete_retry_like_get(target: MockTarget) -> None:
    """PUT and DELETE are idempotent: a lost answer is retried."""
    target.on("DELETE", "/v2/Users/u-1", httpx.ReadTimeout, httpx.Response(204))
    make_client(target).delete(User, "u-1")
    assert 2 == len(target.requests)


# -- hooks, rate limit ----------------------------------------------------------------------------


def test_hooks_see_every_attempt_and_every_retry(target: MockTarget) -> None:
    """on_request gets each attempt (status or error), on_retry each wait; no headers anywhere."""
    target.on(
        "GET", "/v2/Users/u-1", httpx.ConnectError, scim_error(503), json_response(200, USER_JSON)
    )
    requests: list[RequestDetails] = []
    retries: list[RetryDetails] = []
    client = make_client(
        target,
        retry=RetryPolicy(initial_wait=1, jitter=0),
        on_request=[requests.append],
        on_retry=[retries.append],
    )
    client.get(User, "u-1", attributes=["userName"])
    url = f"{BASE}/Users/u-1"
    assert [
        ("GET", url, 1, None, "ConnectError"),
        ("GET", url, 2, 503, None),
        ("GET", url, 3, 200, None),
    ] == [(d.method, d.url, d.attempt, d.status, d.error) for d in requests]
    assert [
        (1, 1.0, "ConnectError"),
        (2, 2.0, "HTTP 503"),
    ] == [(d.attempt, d.wait_seconds, d.cause) for d in retries]


def test_rate_limiter_spaces_requests(target: MockTarget) -> None:
    """At 1 request/s with no burst, the 2nd and 3rd requests each wait one second."""
    target.on("GET", "/v2/Users/u-1", json_response(200, USER_JSON))
    recorder = Recorder()
    client = make_client(target, recorder, rate_limiter=RateLimiter(1.0))
    for _ in range(3):
        client.get(User, "u-1")
    assert [1.0, 1.0] == recorder.sleeps


def test_rate_limiter_queues_reservations() -> None:
    """Reservations made at one instant wait behind each other; a burst passes at once."""
    limiter = RateLimiter(10.0, burst=2)
    assert [0.0, 0.0, 0.1, 0.2] == [round(limiter.reserve(0.0), 6) for _ in range(4)]
    assert 0.0 == limiter.reserve(10.0)


@pytest.mark.parametrize("settings", [{"rate": 0.0}, {"rate": 1.0, "burst": 0}])
def test_rate_limiter_refuses_nonsense(settings: dict[str, Any]) -> None:
    """A rate limiter that could never send is a configuration error."""
    with pytest.raises(ConfigurationError):
        RateLimiter(**settings)


# -- redirects ------------------------------------------------------------------------------------


def test_followed_redirects_never_carry_authorization_to_another_host() -> None:
    """With redirects on, a hop to another host arrives without the Authorization header."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "scim.example.com":
            return httpx.Response(307, headers={"Location": "https://other.example/v2/Users/u-1"})
        return json_response(200, USER_JSON)

    client = ScimClient(
        BASE,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        auth=BearerToken("tok-redirect"),
        follow_redirects=True,
    )
    client.get(User, "u-1")
    assert [
        ("scim.example.com", "Bearer tok-redirect"),
        ("other.example", None),
    ] == [(r.url.host, r.headers.get("Authorization")) for r in seen]


# -- listing and search ---------------------------------------------------------------------------


def _page(resources: list[dict[str, Any]], total: int) -> httpx.Response:
    return json_response(
        200,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": total,
            "itemsPerPage": len(resources),
            "startIndex": 1,
            "Resources": resources,
        },
    )


def test_find_sends_the_filter_and_pages(target: MockTarget) -> None:
    """``find`` GETs with the filter text and startIndex/count; the listing is complete."""
    target.on("GET", "/v2/Users", _page([USER_JSON], 1))
    listing = make_client(target).find(User, 'userName eq "bjensen"')
    assert True is listing.complete
    assert ["u-1"] == [u.id for u in listing]
    params = target.requests[0].url.params
    assert ('userName eq "bjensen"', "1", "100") == (
        params["filter"],
        params["startIndex"],
        params["count"],
    )


def test_find_by_builds_an_escaped_equality_filter(target: MockTarget) -> None:
    """A lookup value with quotes stays one JSON string literal in the filter."""
    target.on("GET", "/v2/Users", _page([USER_JSON], 1))
    found = make_client(target).find_by(User, "externalId", 'e"1 or userName pr')
    assert ["u-1"] == [u.id for u in found]
    assert r'externalId eq "e\"1 or userName pr"' == target.requests[0].url.params["filter"]


def test_find_by_refuses_to_answer_from_a_partial_listing(target: MockTarget) -> None:
    """A lookup whose listing came out short raises instead of saying "not there"."""
    target.on("GET", "/v2/Users", _page([USER_JSON], 2))
    with pytest.raises(IncompleteListingError):
        make_client(target).find_by(User, "userName", "bjensen")


def test_a_page_that_cannot_be_read_ends_the_listing_incomplete(target: MockTarget) -> None:
    """Page 2 answered 500 on every attempt: the listing keeps page 1 and says it is
    short, and why; a first page that cannot be read raises."""
    other = {**USER_JSON, "id": "u-2", "userName": "other"}
    target.on("GET", "/v2/Users", _page([USER_JSON], 3), scim_error(500))
    listing = make_client(target).list_all(User, page_size=1)
    assert (["u-1"], False) == ([u.id for u in listing], listing.complete)
    assert listing.problem is not None
    assert "the page at startIndex 2 could not be read after 1 resources" in listing.problem
    assert 1 + 5 == len(target.requests)  # page 2: every attempt of the retry policy
    target.on("GET", "/v2/Users", scim_error(500), _page([USER_JSON, other], 2))
    assert ["u-1", "u-2"] == [u.id for u in make_client(target).list_all(User)]
    target.on("GET", "/v2/Users", scim_error(401))
    with pytest.raises(UnauthorizedError):
        make_client(target).list_all(User)


def test_filters_are_checked_before_sending(target: MockTarget) -> None:
    """Filter text that does not parse fails at once; Filter values are sent as their text."""
    target.on("GET", "/v2/Users", _page([], 0))
    client = make_client(target)
    with pytest.raises(FilterSyntaxError):
        client.find(User, 'userName eq "unterminated')
    assert [] == target.requests
    client.list_all(User, filter=attr("emails").where(attr("type").eq("work")))
    assert 'emails[type eq "work"]' == target.requests[0].url.params["filter"]


def test_search_posts_a_search_request(target: MockTarget) -> None:
    """``search`` POSTs a SearchRequest to /Users/.search and pages through the body."""
    target.on("POST", "/v2/Users/.search", _page([USER_JSON], 1))
    listing = make_client(target).search(
        User, filter='userName sw "b"', attributes=["userName"], sort_by="userName", page_size=50
    )
    assert 1 == len(listing)
    assert {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "b"',
        "attributes": ["userName"],
        "sortBy": "userName",
        "startIndex": 1,
        "count": 50,
    } == json.loads(target.requests[0].content)


def test_bulk_sends_models_in_request_form(target: MockTarget) -> None:
    """Bulk operations carry resources without readOnly attributes; the answer is parsed."""
    target.on(
        "POST",
        "/v2/Bulk",
        json_response(
            200,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
                "Operations": [
                    {"method": "POST", "bulkId": "b1", "status": "201", "location": "x"}
                ],
            },
        ),
    )
    response = make_client(target).bulk(
        [
            BulkOperation(
                method="POST", path="/Users", bulk_id="b1", data=User(id="no", user_name="a")
            )
        ],
        fail_on_errors=1,
    )
    assert [201] == [op.status for op in response.operations]
    body = json.loads(target.requests[0].content)
    assert {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "b1",
                "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "a",
                },
            }
        ],
        "failOnErrors": 1,
    } == body


def test_bulk_with_lost_answer_is_outcome_unknown(target: MockTarget) -> None:
    """Bulk is a POST: a lost answer is outcome-unknown."""
    target.on("POST", "/v2/Bulk", httpx.ReadTimeout)
    with pytest.raises(OutcomeUnknownError):
        make_client(target).bulk([BulkOperation(method="DELETE", path="/Users/u-1")])


# -- discovery ------------------------------------------------------------------------------------


def test_capabilities_come_from_the_service_provider_config_once(target: MockTarget) -> None:
    """PATCH, bulk limits, filter limit, sort and ETag support are read from discovery, cached."""
    target.on("GET", "/v2/ServiceProviderConfig", json_response(200, SPC_WITH_ETAG))
    client = make_client(target, max_members_per_operation=25)
    expected = ServiceCapabilities(
        patch=True,
        bulk=True,
        bulk_max_operations=100,
        bulk_max_payload_size=1048576,
        filter=True,
        filter_max_results=200,
        sort=False,
        etag=True,
        change_password=False,
        max_members_per_operation=25,
    )
    assert expected == client.capabilities()
    assert expected == client.capabilities()
    assert 1 == len(target.requests)


def test_given_capabilities_skip_discovery(target: MockTarget) -> None:
    """Capabilities passed to the constructor are used as they are."""
    given = ServiceCapabilities(patch=True)
    assert given == make_client(target, capabilities=given).capabilities()
    assert [] == target.requests


@pytest.mark.parametrize("wrapped", [True, False])
def test_schemas_and_resource_types_read_lists_in_both_shapes(
    target: MockTarget, wrapped: bool
) -> None:
    """Discovery lists come as a ListResponse or (some targets) a bare JSON array."""
    types = [{"id": "User", "name": "User", "endpoint": "/Users", "schema": "urn:x:User"}]
    schemas = [{"id": "urn:x:User", "name": "User", "attributes": []}]

    def shaped(items: list[dict[str, Any]]) -> Any:
        return {"totalResults": len(items), "Resources": items} if wrapped else items

    target.on("GET", "/v2/ResourceTypes", json_response(200, shaped(types)))
    target.on("GET", "/v2/Schemas", json_response(200, shaped(schemas)))
    client = make_client(target)
    assert ["/Users"] == [t.endpoint for t in client.resource_types()]
    assert ["urn:x:User"] == [s.id for s in client.schemas()]
    client.schemas()
    assert 2 == len(target.requests)


def test_service_provider_config_that_is_not_an_object_is_invalid(target: MockTarget) -> None:
    """A discovery answer of the wrong shape is InvalidResponseError."""
    target.on("GET", "/v2/ServiceProviderConfig", json_response(200, ["nope"]))
    with pytest.raises(InvalidResponseError):
        make_client(target).service_provider_config()
