"""A pytest fixture that yields a running :class:`~scimsync.testing.ScimTestServer`.

Enable it with ``pytest -p scimsync.testing.pytest_plugin`` (or
``addopts = ["-p", "scimsync.testing.pytest_plugin"]`` in your pytest settings)::

    def test_my_connector_creates_users(scim_server):
        connector = MyConnector(scim_server.url, token=scim_server.token)
        connector.sync()
        assert [u.user_name for u in scim_server.users()] == ["bjensen"]

Pass server options with a marker::

    @pytest.mark.scim_server(quirks=Quirks(patch_supported=False))
    def test_falls_back_to_put(scim_server): ...

    @pytest.mark.scim_server(quirks=Quirks.profile("legacy"))
    def test_survives_an_old_provider(scim_server): ...

It is not registered as an automatic plugin: loading scimsync costs every pytest
run a noticeable fraction of a second, which projects that do not use the fixture
should not pay.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import pytest

from ._server import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["pytest_configure", "scim_server"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``scim_server`` marker."""
    config.addinivalue_line(
        "markers",
        "scim_server(**options): keyword arguments for the ScimTestServer of the "
        "scim_server fixture",
    )


@pytest.fixture
def scim_server(request: pytest.FixtureRequest) -> Iterator[ScimTestServer]:
    """A ScimTestServer serving HTTP on a free loopback port, empty, with a random token.

    Its URL is ``scim_server.url``, its token ``scim_server.token``; options come from
    a ``@pytest.mark.scim_server(...)`` marker. It stops when the test ends.
    """
    marker = request.node.get_closest_marker("scim_server")
    options = dict(marker.kwargs) if marker is not None else {}
    options.setdefault("token", secrets.token_urlsafe(16))
    with ScimTestServer(**options) as server:
        yield server
