"""The pytest plugin: ``-p scimsync.testing.pytest_plugin`` gives a running server fixture."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The outer run has imported the plugin already, so the inner one cannot rewrite it.
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""

USER_TEST = """
import httpx
import pytest

from scimsync.testing import Quirks


def test_fixture_serves_http(scim_server):
    response = httpx.post(
        scim_server.url + "/Users",
        headers={"Authorization": f"Bearer {scim_server.token}"},
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"},
    )
    assert response.status_code == 201
    assert [u.user_name for u in scim_server.users()] == ["bjensen"]
    assert httpx.get(scim_server.url + "/Users").status_code == 401


def test_each_test_gets_an_empty_server(scim_server):
    assert scim_server.users() == []


@pytest.mark.scim_server(quirks=Quirks(patch_supported=False), token=None)
def test_marker_passes_options(scim_server):
    config = httpx.get(scim_server.url + "/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is False
"""


@pytest.mark.integration
def test_plugin_fixture_and_marker(pytester: pytest.Pytester) -> None:
    """A user's test suite gets a running, empty server per test, configurable by marker."""
    pytester.makeini(INI)
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_inprocess(
        "-p", "scimsync.testing.pytest_plugin", "--strict-markers", "-q"
    )
    assert {k: v for k, v in result.parseoutcomes().items() if k != "seconds"} == {"passed": 3}


def test_without_the_plugin_there_is_no_fixture(pytester: pytest.Pytester) -> None:
    """The plugin is opt-in: without -p, the fixture does not exist."""
    pytester.makeini(INI)
    pytester.makepyfile("def test_x(scim_server):\n    pass\n")
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    assert result.parseoutcomes().get("errors") == 1
