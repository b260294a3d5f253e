"""The top-level names type as the real classes (the README imports them from there),
though the runtime loads them lazily: mypy (strict, in CI) checks this file."""

from __future__ import annotations

from typing_extensions import assert_type

import scimsync
from scimsync import Provisioner, SyncReport
from scimsync.sync import Provisioner as SyncProvisioner
from scimsync.sync import SyncReport as SyncSyncReport


def _typed(provisioner: Provisioner) -> SyncSyncReport:
    # Were the top-level names Any, run_once() would be Any and mypy would refuse this.
    return assert_type(provisioner.run_once(), SyncSyncReport)


def test_top_level_names_are_the_runner_classes() -> None:
    """``scimsync.Provisioner`` and ``scimsync.SyncReport`` are ``scimsync.sync``'s, and
    both are in ``scimsync.__all__``."""
    assert (SyncProvisioner, SyncSyncReport) == (Provisioner, SyncReport)
    assert {"Provisioner", "SyncReport"} <= set(scimsync.__all__)
    assert callable(_typed)
