"""A SCIM 2.0 service provider in memory, with the faults and quirks of real ones.

:class:`ScimTestServer` is somewhere safe to try a sync before production, and what
scimsync's own tests run against. It runs in-process (an httpx transport, sync and
async) or over real HTTP on 127.0.0.1, keeps a log of every request, and injects
:class:`Faults` (429, 5xx, dropped connections, timeouts, commit-then-fail, malformed
JSON, short pages, page drift) and :class:`Quirks` (no PATCH, no ETags, no
``Location``, groups without members, duplicated members, capped member changes,
case-sensitive userName filters, string booleans, pages that misreport, start over
or hold 20 at most, listings without ``totalResults``, attributes accepted and never
stored, PATCH ``add`` or ``replace`` refused, filters refused or ignored, writes
finding the database locked; or a named bundle, ``Quirks.profile("legacy")``,
``Quirks.profile("lossy")``) on demand::

    from scimsync.testing import Faults, ScimTestServer

    with ScimTestServer(token="t0k3n") as server:
        server.add_user({"schemas": [...], "userName": "bjensen"})
        server.faults = Faults(kinds=["429"], limit=1)
        ...  # point the code under test at server.url
        assert server.requests.count("POST", "/Users") == 1

Run one standalone with ``python -m scimsync.testing``; in pytest, enable the fixture
with ``pytest -p scimsync.testing.pytest_plugin``.

For a target of your own (a connector to an application without SCIM), the
conformance kit :func:`check_target` runs it through what the runner expects of every
target, the expectations :class:`~scimsync.targets.MemoryTarget` meets, each by name
(:data:`TARGET_EXPECTATIONS`), with faults injected through :class:`TargetFaults`::

    from scimsync.testing import check_target

    check_target(MyTarget).raise_for_failures()
"""

from ._conformance import (
    TARGET_EXPECTATIONS,
    ExpectationResult,
    TargetCheck,
    acheck_target,
    check_target,
)
from ._faults import FaultKind, Faults
from ._log import LoggedRequest, RequestLog
from ._quirks import Quirks
from ._server import ScimTestServer
from ._target_faults import FaultyTransport, TargetFaults

__all__ = [
    "ExpectationResult",
    "FaultKind",
    "Faults",
    "FaultyTransport",
    "LoggedRequest",
    "Quirks",
    "RequestLog",
    "ScimTestServer",
    "TARGET_EXPECTATIONS",
    "TargetCheck",
    "TargetFaults",
    "acheck_target",
    "check_target",
]
