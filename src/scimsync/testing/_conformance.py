"""The conformance kit: what every target does, checked on yours.

:func:`check_target` runs fresh targets from a factory through the expectations the
runner relies on, the ones :class:`~scimsync.targets.MemoryTarget` meets, each named
(:data:`TARGET_EXPECTATIONS`), and says which were not met and why. It writes only
users and groups named ``scimsync-check-<token>-…`` and deletes them afterwards (best
effort), so a sandbox of the real application will do as well as a fake one; it never
reads the wall clock and never sleeps.

Faults need the target's cooperation: hand :meth:`TargetFaults.transport` to the
target's httpx client, pass the :class:`TargetFaults` as ``faults=``, and the kit makes
the application answer 500, time out, lose the answer to a write it applied, or fail
in the middle of a listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ..errors import ConfigurationError, ConformanceError
from ..schema import SchemaTable
from ..targets._protocol import supports_groups, target_schema
from ._expectations import (
    EXPECTATIONS,
    TARGET_EXPECTATIONS,
    Context,
    Expectation,
    NotApplicableError,
    RaisedError,
    UnmetError,
    describe,
    short,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from ..targets._protocol import UserTarget
    from ._target_faults import TargetFaults

__all__ = [
    "TARGET_EXPECTATIONS",
    "ExpectationResult",
    "TargetCheck",
    "acheck_target",
    "check_target",
]

Outcome = Literal["passed", "failed", "skipped"]


# -- results -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExpectationResult:
    """How a target fared on one expectation: ``passed``, ``failed`` (``detail`` says
    why) or ``skipped`` (``detail`` says why it does not apply)."""

    name: str
    outcome: Outcome
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.outcome} {self.name}" + (f": {self.detail}" if self.detail else "")


@attrs.frozen(kw_only=True)
class TargetCheck:
    """Everything :func:`check_target` found, one result per expectation, in order."""

    results: tuple[ExpectationResult, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no expectation failed."""
        return not self.failures

    @property
    def failures(self) -> tuple[ExpectationResult, ...]:
        """The expectations the target did not meet."""
        return tuple(r for r in self.results if r.outcome == "failed")

    @property
    def skipped(self) -> tuple[ExpectationResult, ...]:
        """The expectations that did not apply (no groups, no ``faults=``...)."""
        return tuple(r for r in self.results if r.outcome == "skipped")

    def raise_for_failures(self) -> None:
        """Raise :class:`~scimsync.errors.ConformanceError` naming every failed
        expectation and why.

        Under pytest, a check whose every expectation was skipped is reported as a
        skipped test (``pytest.skip`` with the reasons), not as a pass.
        """
        if self.failures:
            listed = "\n".join(f"  {r.name}: {r.detail}" for r in self.failures)
            count = len(self.failures)
            raise ConformanceError(
                f"the target does not meet {count} expectation{'s' if count > 1 else ''}:\n"
                f"{listed}",
                failures=[(r.name, r.detail) for r in self.failures],
            )
        pytest = sys.modules.get("pytest")
        if self.results and len(self.skipped) == len(self.results) and pytest is not None:
            pytest.skip("; ".join(f"{r.name}: {r.detail}" for r in self.skipped))

    def __str__(self) -> str:
        return "\n".join(map(str, self.results)) if self.results else "no expectation checked"


async def _run_one(
    expectation: Expectation,
    factory: Callable[[], Any],
    faults: TargetFaults | None,
    many: int,
) -> ExpectationResult:
    def result(outcome: Outcome, detail: str = "") -> ExpectationResult:
        return ExpectationResult(name=expectation.name, outcome=outcome, detail=detail)

    if expectation.needs == "faults" and faults is None:
        return result("skipped", "no faults= given (see TargetFaults)")
    try:
        target = factory()
        if inspect.isawaitable(target):
            target = await target
    except Exception as error:
        return result("failed", f"the factory raised {describe(error)}")
    ctx: Context | None = None
    try:
        if expectation.needs == "groups" and not supports_groups(target):
            return result("skipped", "the target keeps no groups (no GroupTarget methods)")
        try:
            schema: object = await target_schema(target)
        except Exception as error:
            return result("failed", f"schema() raised {describe(error)}")
        if not isinstance(schema, SchemaTable):
            return result("failed", f"schema() returned {short(schema)}: expected a SchemaTable")
        ctx = Context(target=target, schema=schema, faults=faults, many=many)
        await expectation.run(ctx)
    except NotApplicableError as skip:
        return result("skipped", str(skip))
    except (UnmetError, RaisedError) as unmet:
        return result("failed", str(unmet))
    except Exception as error:
        return result("failed", f"the check itself raised {describe(error)}")
    finally:
        if ctx is not None:
            await ctx.clean_up()
        closer = getattr(target, "aclose", None)
        if callable(closer):
            with contextlib.suppress(Exception):
                await closer()
    return result("passed")


async def acheck_target(
    factory: Callable[[], UserTarget | Awaitable[UserTarget]],
    *,
    only: Iterable[str] | None = None,
    faults: TargetFaults | None = None,
    many: int = 120,
) -> TargetCheck:
    """Check a target against the expectations the runner relies on (async twin of
    :func:`check_target`)."""
    if isinstance(only, str):
        raise ConfigurationError(f"only= takes a list of expectation names, not {only!r}")
    wanted = set(TARGET_EXPECTATIONS if only is None else only)
    unknown = sorted(wanted - set(TARGET_EXPECTATIONS))
    if unknown:
        raise ConfigurationError(
            f"no expectation named {', '.join(unknown)}; there are {', '.join(TARGET_EXPECTATIONS)}"
        )
    if many < 1:
        raise ConfigurationError(f"many= must be at least 1, got {many}")
    results = [
        await _run_one(expectation, factory, faults, many)
        for expectation in EXPECTATIONS
        if expectation.name in wanted
    ]
    return TargetCheck(results=tuple(results))


def check_target(
    factory: Callable[[], UserTarget | Awaitable[UserTarget]],
    *,
    only: Iterable[str] | None = None,
    faults: TargetFaults | None = None,
    many: int = 120,
) -> TargetCheck:
    """Check a target against the expectations the runner relies on; say what failed.

    ``factory`` makes a fresh target (it may be async, a class will do): one per
    expectation, closed afterwards (its ``aclose()``, if any). Each expectation is run
    on it and reported by name (:data:`TARGET_EXPECTATIONS`), passed, failed with why,
    or skipped with why; ``only`` picks some by name. Call
    :meth:`TargetCheck.raise_for_failures` to fail a test::

        check_target(MyTarget).raise_for_failures()

    The expectations, as :class:`~scimsync.targets.MemoryTarget` meets them:

    - ``protocol``: every :class:`~scimsync.targets.UserTarget` method; the group
      methods all or none; ``capabilities()`` gives a ``TargetCapabilities``.
    - ``create_and_get``: ``create_user`` answers with a new id and nothing other than
      what was sent; ``get_user`` reads back userName, externalId, the text attribute
      and ``active``.
    - ``find_per_case_exact``: ``find_users`` compares userName without case and
      externalId with it, and finds nothing for a value nobody holds.
    - ``taken_user_name``: creating a taken userName (in any case) raises
      ``ConflictResponseError`` with ``scim_type="uniqueness"`` and creates nothing.
    - ``update_by_patch`` / ``update_by_resource``: an update by PATCH ``replace`` and
      one by a user holding only the attribute set it and keep the rest; the answer is
      None or the user as it is now, never a stale one.
    - ``clear_attribute``: a PATCH ``remove`` really clears the attribute.
    - ``deactivate_reactivate``: ``active`` false, then true, read back.
    - ``delete``: then ``get_user`` raises ``NotFoundError``; neither found nor listed.
    - ``unknown_id``: get, update, deactivate, reactivate and delete of an id nobody
      has raise ``NotFoundError``.
    - ``listing_complete``: ``many`` users created are all listed, once each, and the
      listing says it is complete.
    - ``group_create_and_get``, ``group_update``, ``membership``, ``group_delete``
      (targets with groups): the same for groups; members added once, removed, and
      shown by ``list_groups`` (``()`` for none).
    - ``errors_are_scim_errors``, ``lost_answer``, ``listing_cut_short`` (with
      ``faults=``): when the application answers 500 or does not answer, every method
      raises an error of :mod:`scimsync.errors`; a create applied whose answer was lost
      raises ``OutcomeUnknownError``; a listing failing at any of its requests raises
      or says it is incomplete, never short and complete.

    The text attribute is the first of title, displayName, nickName... that the
    target's schema keeps (:func:`~scimsync.targets.target_schema`). Raises
    :class:`~scimsync.errors.ConfigurationError` for an unknown name in ``only``, or
    inside a running event loop (await :func:`acheck_target` there).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(acheck_target(factory, only=only, faults=faults, many=many))
    raise ConfigurationError("check_target cannot run inside an event loop: await acheck_target")
