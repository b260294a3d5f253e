"""Shared fixtures: real SCIM servers on 127.0.0.1 (see ``tests/_servers.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpcore
import pytest
from hypothesis import HealthCheck, settings

from _postgres import Postgres, running_postgres
from _servers import scim2_server_asgi, scim2_server_process

if TYPE_CHECKING:
    from collections.abc import Iterator

# The suite runs on every CPU at once (pytest-xdist), on shared machines: how fast a
# strategy draws or an example runs says nothing about the code under test, so neither
# fails a run (tests never assert on wall-clock time; speed lives in benchmarks/).
settings.register_profile("scimsync", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("scimsync")

# httpx imports httpcore on its first transport. Were that inside a pytester in-process
# run, pytester would drop it from sys.modules afterwards and later clients would see
# two httpcore modules, whose errors httpx no longer maps (a reset escapes as
# httpcore.ReadError instead of being retried): import it once, up front.
del httpcore

#: Bearer tokens the token-protected scim2-server accepts.
SCIM2_SERVER_TOKENS = ("tok-accepted-1", "tok-accepted-2")


@pytest.fixture(scope="session")
def scim2_server_url() -> Iterator[str]:
    """Base URL of a ``scim2-server`` subprocess shared by the session (no auth)."""
    pytest.importorskip("scim2_server")
    with scim2_server_process() as url:
        yield url


@pytest.fixture(scope="session")
def scim2_server_with_tokens_url() -> Iterator[str]:
    """Base URL of a ``scim2-server`` subprocess that accepts only SCIM2_SERVER_TOKENS."""
    pytest.importorskip("scim2_server")
    with scim2_server_process(bearer_tokens=SCIM2_SERVER_TOKENS) as url:
        yield url


@pytest.fixture(scope="session")
def scim2_asgi_url() -> Iterator[str]:
    """Base URL of scim2-server's ASGI app under uvicorn (for concurrent clients)."""
    pytest.importorskip("scim2_server")
    with scim2_server_asgi() as url:
        yield url


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL on 127.0.0.1 shared by the session (see ``tests/_postgres.py``);
    skips, saying why, where psycopg or the server binaries are missing."""
    pytest.importorskip("psycopg", reason="psycopg (the test extra) is not installed")
    try:
        with running_postgres() as server:
            yield server
    except LookupError as exc:
        pytest.skip(str(exc))
