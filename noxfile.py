"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``docs``, ``bench``.

``tests`` runs on every Python 3.10-3.13 found on this machine and skips the others.
The long property tests of the engine's pure logic (marker ``properties``, about two
thirds of the suite's time) run on the Python that runs nox, not again on each other
one: they exercise no interpreter-specific code, and CI must fit 2 CPUs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.error_on_missing_interpreters = False
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def _runs(version: str) -> bool:
    """True when ``python<version>`` exists and starts (a pyenv shim may exist but fail)."""
    exe = shutil.which(f"python{version}")
    if exe is None:
        return False
    try:
        subprocess.run([exe, "-c", "pass"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


PYTHONS = [v for v in SUPPORTED if _runs(v)] or None


#: The Python that runs nox (the machine's default): the one the long properties run on.
DEFAULT = f"{sys.version_info.major}.{sys.version_info.minor}"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (unit, property, integration against loopback SCIM servers),
    spread over the machine's CPUs (pytest-xdist); arguments given replace that. On a
    Python other than nox's own (or the only one found), the ``properties`` tests are
    left to that one."""
    session.install("-e", ".[test]")
    arguments = ["-n", "auto"]
    if session.python not in (None, DEFAULT) and DEFAULT in (PYTHONS or ()):
        arguments += ["-m", "not properties"]
    session.run("pytest", *(session.posargs or arguments))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library and the tests."""
    session.install("-e", ".[test]", "mypy>=1.11")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation strictly: any warning fails the build."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, each figure next to its peer's from the same run."""
    session.install("-e", ".[bench,test]")
    session.run("python", "benchmarks/run.py", *session.posargs)
