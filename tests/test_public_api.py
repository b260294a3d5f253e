"""The public API: every ``__all__`` is complete and importable, and the core stays light."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import scimsync


def _public_modules() -> list[str]:
    names = ["scimsync"]
    names.extend(
        info.name
        for info in pkgutil.walk_packages(scimsync.__path__, "scimsync.")
        if not any(part.startswith("_") for part in info.name.split("."))
    )
    return sorted(names)


PUBLIC_MODULES = _public_modules()

# The names DESIGN.md promises, as `module: names`; users' code imports exactly these.
CONTRACT = {
    "scimsync": [
        "User", "Group", "EnterpriseUser", "Name", "Email", "PhoneNumber", "Address",
        "Member", "Meta", "to_scim", "from_scim", "Provisioner", "SyncReport",
    ],
    "scimsync.errors": ["ScimSyncError"],
    "scimsync.filter": ["parse_filter", "attr"],
    "scimsync.patch": ["diff", "apply_patch"],
    "scimsync.engine": ["plan", "Policy", "Plan"],
    "scimsync.client": ["ScimClient", "AsyncScimClient"],
    "scimsync.auth": ["BearerToken", "OAuth2ClientCredentials"],
    "scimsync.retry": ["RetryPolicy"],
    "scimsync.mapping": [
        "Mapping", "MappingResult", "MappingCheck", "MappingProblem", "Preview", "Rule",
        "boolean", "coalesce", "const", "default", "field", "join", "key", "lower", "split",
        "strip", "template", "upper",
    ],
    "scimsync.sources": [
        "CsvSource", "JsonLinesSource", "MemorySource", "ScimSource", "AsyncScimSource",
        "Source", "AsyncSource", "Record", "RecordIssue", "IssueCode", "CombinedSource",
    ],
    "scimsync.sync": [
        "Provisioner", "SyncReport", "StateStore", "SqliteStateStore", "MemoryStateStore",
        "ApplyPolicy", "AuditEvent", "Alert", "Progress", "Health", "Explanation",
        "OperationResult", "PostgresStateStore",
    ],
    "scimsync.contrib.celery": ["register_tasks", "beat_schedule", "CeleryTasks"],
    "scimsync.targets": [
        "ScimTarget", "MemoryTarget", "Target", "BlockingTarget", "TargetCapabilities",
        "TargetListing", "UserUpdate", "GroupUpdate", "read_target_state",
    ],
    "scimsync.testing": ["ScimTestServer", "Faults", "Quirks"],
    "scimsync.metrics": ["instrument", "serve_metrics"],
    "scimsync.tracing": ["instrument_tracing"],
    "scimsync.logs": ["JsonFormatter"],
}  # fmt: skip


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_imports(module_name: str) -> None:
    """Each public module declares ``__all__``, sorted, and every name in it exists."""
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == []
    assert list(exported) == sorted(exported)


@pytest.mark.parametrize(("module_name", "names"), sorted(CONTRACT.items()))
def test_design_contract_names_import(module_name: str, names: list[str]) -> None:
    """The public names of the design document import from where it says."""
    module = importlib.import_module(module_name)
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


def test_public_names_are_documented() -> None:
    """Every public class and function exported by a public module has a docstring."""
    undocumented = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        assert module.__doc__, f"{module_name} has no module docstring"
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and not (getattr(value, "__doc__", None) or "").strip():
                undocumented.append(f"{module_name}.{name}")
    assert undocumented == []


def test_version_comes_from_package_metadata() -> None:
    """``scimsync.__version__`` is the installed distribution's version."""
    from importlib.metadata import version

    assert scimsync.__version__ == version("scimsync")


@pytest.mark.parametrize(
    "module_name",
    [
        "scimsync",
        "scimsync.models",
        "scimsync.codec",
        "scimsync.filter",
        "scimsync.patch",
        "scimsync.engine",
        "scimsync.mapping",
    ],
)
def test_core_imports_neither_httpx_nor_tenacity(module_name: str) -> None:
    """Importing the core loads no HTTP or retry machinery (checked in a fresh process)."""
    code = (
        f"import sys, {module_name}\n"
        "print(sorted(m for m in ('httpx', 'tenacity', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_import_scimsync_stays_light_and_the_runner_loads_on_first_use() -> None:
    """``import scimsync`` loads neither httpx nor tenacity; ``scimsync.Provisioner``
    and ``scimsync.SyncReport`` resolve lazily to the runner's classes."""
    code = (
        "import sys, scimsync\n"
        "print(sorted(m for m in ('httpx', 'tenacity') if m in sys.modules))\n"
        "from scimsync import Provisioner, SyncReport\n"
        "import scimsync.sync as s\n"
        "print(Provisioner is s.Provisioner and SyncReport is s.SyncReport)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert ["[]", "True"] == out


def test_the_optional_extras_load_only_when_used() -> None:
    """``scimsync.sync`` loads no PostgreSQL driver and ``scimsync.contrib.celery`` no
    Celery: each is imported by the code that uses it (a store opened, a task run)."""
    code = (
        "import sys, scimsync.sync, scimsync.contrib.celery\n"
        "print(sorted(m for m in ('psycopg', 'celery', 'kombu', 'redis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "[]" == out
