"""ScimTestServer over real HTTP on 127.0.0.1: keep-alive, real connection faults, limits,
concurrency, clean shutdown, and the ``python -m scimsync.testing`` command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from http.client import HTTPConnection
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scimsync import User
from scimsync.testing import FaultKind, Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def new_user(name: str) -> dict[str, Any]:
    """A creation body."""
    return {"schemas": [USER], "userName": name}


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    """A server with a token and a recorded sleep, serving HTTP."""
    with ScimTestServer(token="s3cret", sleep=lambda _: None) as running:
        yield running


@pytest.fixture
def http(server: ScimTestServer) -> Iterator[httpx.Client]:
    """A keep-alive httpx client to ``server`` over loopback."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        yield client


def test_serves_on_a_free_loopback_port(server: ScimTestServer, http: httpx.Client) -> None:
    """server.url is http://127.0.0.1:<port>/scim/v2 and answers SCIM."""
    assert server.url.startswith("http://127.0.0.1:")
    assert server.url.endswith("/scim/v2")
    created = http.post("/Users", json=new_user("bjensen"))
    assert created.status_code == 201
    assert f"{server.url}/Users/{created.json()['id']}" == created.headers["Location"]
    assert [r["userName"] for r in http.get("/Users").json()["Resources"]] == ["bjensen"]


def test_two_servers_get_two_ports() -> None:
    """Servers started side by side do not clash."""
    with ScimTestServer() as first, ScimTestServer() as second:
        assert first.url != second.url


def test_connections_are_kept_alive(server: ScimTestServer) -> None:
    """HTTP/1.1 keep-alive: many requests and answers share one TCP connection."""
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    connection = HTTPConnection(host, int(port), timeout=10)
    try:
        connection.connect()
        first_socket = connection.sock
        for _ in range(3):
            connection.request("GET", "/scim/v2/Users", headers=server.headers)
            response = connection.getresponse()
            response.read()
            assert (
                response.status,
                response.will_close,
                f"HTTP/{response.version // 10}.{response.version % 10}",
            ) == (200, False, "HTTP/1.1")
        assert first_socket is connection.sock
    finally:
        connection.close()
    assert server.requests.count("GET", "/Users") == 3


def test_401_over_http_has_a_scim_body(server: ScimTestServer) -> None:
    """Without the token the answer is a SCIM 401 with WWW-Authenticate."""
    response = httpx.get(server.url + "/Users")
    assert (response.status_code, response.json()["status"]) == (401, "401")
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_delete_answers_204_without_a_body(server: ScimTestServer, http: httpx.Client) -> None:
    """204 carries no body and no Content-Length, and the connection stays usable."""
    user_id = http.post("/Users", json=new_user("bjensen")).json()["id"]
    response = http.delete(f"/Users/{user_id}")
    assert (
        response.status_code,
        response.content,
        response.headers.get("Content-Length"),
    ) == (204, b"", None)
    assert http.get("/Users").status_code == 200


def test_reset_drops_the_connection_with_a_real_rst(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """A reset fault closes the socket so httpx reads ECONNRESET; the server keeps serving."""
    server.faults = Faults(kinds=["reset"], limit=1)
    with pytest.raises(httpx.ReadError):
        http.post("/Users", json=new_user("bjensen"))
    assert server.users() == []
    assert http.get("/Users").status_code == 200


def test_commit_then_reset_over_http_stores_the_user(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """The write happened although the client saw its connection dropped."""
    server.faults = Faults(kinds=["commit_then_fail"], after_commit="reset", limit=1)
    with pytest.raises(httpx.TransportError):
        http.post("/Users", json=new_user("bjensen"))
    assert [u.user_name for u in server.users()] == ["bjensen"]


def test_timeout_holds_the_answer_until_the_client_gives_up(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """A timeout fault never answers; the client's own timeout fires."""
    server.faults = Faults(kinds=["timeout"], limit=1)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/Users", timeout=0.1)
    assert http.get("/Users").status_code == 200


def test_latency_uses_the_injected_sleep() -> None:
    """Over HTTP too, latency goes through the server's sleep function."""
    waited: list[float] = []
    with ScimTestServer(sleep=waited.append, faults=Faults(kinds=["latency"], latency=4)) as server:
        assert httpx.get(server.url + "/Users").status_code == 200
    assert waited == [4]


def test_bodies_over_the_limit_are_413_and_close_the_connection() -> None:
    """A Content-Length past the limit answers 413 without reading it all, then hangs up."""
    with ScimTestServer(max_body_bytes=1000) as server:
        response = httpx.post(server.url + "/Users", content=b"x" * 50_000)
        assert (response.status_code, response.headers["Connection"]) == (413, "close")
        assert server.requests.entries("POST")[0].status == 413


def test_chunked_bodies_are_read() -> None:
    """A chunked request body (an iterator in httpx) is read whole."""
    body = json.dumps(new_user("bjensen")).encode()
    with ScimTestServer(max_body_bytes=1000) as server:
        response = httpx.post(
            server.url + "/Users", content=iter([body[:10], body[10:]]), timeout=10
        )
        too_big = httpx.post(server.url + "/Users", content=iter([b"x" * 600] * 3), timeout=10)
    assert (response.status_code, too_big.status_code) == (201, 413)


@pytest.mark.parametrize(
    "head",
    [
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["bad-length", "bad-chunk"],
)
def test_broken_framing_is_400(server: ScimTestServer, head: bytes) -> None:
    """A request whose body cannot be framed answers 400 and closes the connection."""
    status, body = raw_exchange(server, head)
    assert (400, ERROR) == (status, body["schemas"])


def raw_exchange(server: ScimTestServer, head: bytes) -> tuple[int, Any]:
    """Send ``head`` as is; the status and the JSON body of the answer (until hang-up)."""
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(head)
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body)


ERROR = ["urn:ietf:params:scim:api:messages:2.0:Error"]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"FROB /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
    ids=["unknown-method", "bad-request-line", "long-request-line"],
)
def test_what_the_http_layer_refuses_is_a_scim_error_too(
    server: ScimTestServer, head: bytes, status: int
) -> None:
    """Errors raised before the service sees a request are SCIM JSON, not HTML pages."""
    answered, body = raw_exchange(server, head)
    assert (status, ERROR) == (answered, body["schemas"])


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
def test_other_methods_get_the_services_405_over_http_as_in_process(
    server: ScimTestServer, http: httpx.Client, method: str
) -> None:
    """What the in-process transport answers, HTTP answers: 405 in SCIM JSON."""
    response = http.request(method, "/Users")
    assert (405, ERROR) == (response.status_code, response.json()["schemas"])


def test_head_answers_the_headers_without_a_body(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """HEAD gets a SCIM 405 without a body: the length says what a body would be."""
    response = http.request("HEAD", "/Users")
    assert (405, b"") == (response.status_code, response.content)
    assert 0 < int(response.headers["Content-Length"])
    assert 200 == http.get("/Users").status_code  # the connection still frames correctly


def test_concurrent_threads_each_get_their_answers(server: ScimTestServer) -> None:
    """Eight threads with their own keep-alive clients create 200 users, none lost."""
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
                for i in range(25):
                    response = client.post("/Users", json=new_user(f"w{worker}-{i}"))
                    assert response.status_code == 201
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (errors, len(server.users())) == ([], 200)


async def test_concurrent_async_requests_over_http(server: ScimTestServer) -> None:
    """An async client with many requests in flight gets each answered."""
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/Users", json=new_user(f"a{i}")) for i in range(60))
        )
    assert [r.status_code for r in responses] == [201] * 60


def test_stop_closes_idle_and_hanging_connections() -> None:
    """stop() returns with keep-alive and held (timeout) connections open, and frees the port."""
    server = ScimTestServer().start()
    url = server.url
    idle = httpx.Client(base_url=url, timeout=30)
    idle.get("/Users")
    server.faults = Faults(kinds=["timeout"])
    outcome: list[BaseException] = []

    def hanging() -> None:
        try:
            httpx.get(url + "/Users", timeout=30)
        except httpx.TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=hanging)
    thread.start()
    while server.requests.count() < 2:
        threading.Event().wait(0.01)  # wait for the held request to arrive
    server.stop()
    thread.join(timeout=10)
    idle.close()
    assert (len(outcome), thread.is_alive()) == (1, False)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/Users", timeout=5)


def test_a_stopped_server_keeps_its_data_and_can_start_again() -> None:
    """stop() ends serving, not the store."""
    server = ScimTestServer(users=[User(user_name="alice")])
    with server:
        first = server.url
    with server:
        listed = httpx.get(server.url + "/Users").json()
    assert [r["userName"] for r in listed["Resources"]] == ["alice"]
    assert first.startswith("http://127.0.0.1:")


# -- the command ----------------------------------------------------------------------------------


def run_command(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m scimsync.testing`` and return it with the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "scimsync.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Serving SCIM 2.0 at http://127.0.0.1:"), line
    return process, line.rsplit(" ", 1)[1].strip()


def stop_command(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Send SIGTERM to the command and return its exit status and stderr."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def test_command_serves_seed_data_with_a_token(tmp_path: Path) -> None:
    """The command loads a seed file, requires the token, and summarises on SIGTERM."""
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "Users": [{"schemas": [USER], "id": "u1", "userName": "alice"}],
                "Groups": [
                    {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Team",
                        "members": [{"value": "u1"}],
                    }
                ],
            }
        )
    )
    process, url = run_command(tmp_path, "--seed", str(seed), "--token", "cli-token")
    try:
        refused = httpx.get(url + "/Users", timeout=10)
        listed = httpx.get(
            url + "/Users/u1", headers={"Authorization": "Bearer cli-token"}, timeout=10
        )
    finally:
        status, err = stop_command(process)
    assert (
        refused.status_code,
        listed.status_code,
        [g["display"] for g in listed.json()["groups"]],
    ) == (401, 200, ["Team"])
    assert status == 0
    assert "Answered 2 requests" in err


def test_command_draws_a_token_and_takes_faults_and_quirks(tmp_path: Path) -> None:
    """Without --token a random token is printed; fault and quirk flags apply."""
    process, url = run_command(
        tmp_path, "--faults-rate", "1", "--faults-kinds", "503", "--faults-methods", "POST",
        "--no-patch",
    )  # fmt: skip
    try:
        assert process.stdout is not None
        token = process.stdout.readline().removeprefix("Bearer token:").strip()
        headers = {"Authorization": f"Bearer {token}"}
        config = httpx.get(url + "/ServiceProviderConfig", headers=headers, timeout=10)
        post = httpx.post(url + "/Users", json=new_user("x"), headers=headers, timeout=10)
    finally:
        stop_command(process)
    assert (
        config.status_code,
        config.json()["patch"]["supported"],
        post.status_code,
    ) == (200, False, 503)
    assert len(token) > 20


def test_command_without_auth(tmp_path: Path) -> None:
    """--no-auth serves without a token."""
    process, url = run_command(tmp_path, "--no-auth")
    try:
        status = httpx.get(url + "/Users", timeout=10).status_code
    finally:
        stop_command(process)
    assert status == 200


def test_command_starts_with_the_lossy_profile(tmp_path: Path) -> None:
    """--quirks lossy serves discovery without totalResults and refuses externalId filters."""
    process, url = run_command(tmp_path, "--no-auth", "--quirks", "lossy")
    try:
        schemas = httpx.get(url + "/Schemas", timeout=10).json()
        filtered = httpx.get(url + "/Users", params={"filter": 'externalId eq "x"'}, timeout=10)
    finally:
        stop_command(process)
    assert (False, 400, "invalidFilter") == (
        "totalResults" in schemas,
        filtered.status_code,
        filtered.json()["scimType"],
    )


def test_command_refuses_bad_seed_data(tmp_path: Path) -> None:
    """Seed data the server would refuse stops the command with a usage error."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"Users": [{"schemas": [USER]}]}))
    result = subprocess.run(
        [sys.executable, "-m", "scimsync.testing", "--port", "0", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "userName" in result.stderr


def test_fault_kinds_listed_by_the_command_are_all_kinds() -> None:
    """The --faults-kinds help names every kind, so none is hidden from command users."""
    from scimsync.testing.__main__ import build_parser

    help_text = build_parser().format_help()
    assert [k.value for k in FaultKind if k.value not in help_text] == []
