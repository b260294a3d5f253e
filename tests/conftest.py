"""Shared fixtures: real SCIM servers on 127.0.0.1 (see ``tests/_servers.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from _servers import scim2_server_asgi, scim2_server_process

if TYPE_CHECKING:
    from collections.abc import Iterator

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
