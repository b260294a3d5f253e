"""The reconciliation engine: desired state + target state + policy → a :class:`Plan`.

Pure: no I/O, no clock, no randomness (the rules are stated at the top of
``scimsync/engine/_planner.py``). What the source wants, what the target holds, and
the policy go in; a plan comes out, to review and to hand to an executor::

    >>> from scimsync import User
    >>> from scimsync.engine import Policy, plan
    >>> from scimsync.models import DesiredState, DesiredUser, TargetState
    >>> ann = User(external_id="e1", user_name="ann@example.com", title="Lead")
    >>> desired = DesiredState(users=[DesiredUser(key="e1", user=ann)])
    >>> actual = TargetState(
    ...     users=[User(id="a1", external_id="e1", user_name="ann@example.com", title="Guide")]
    ... )
    >>> result = plan(desired, actual, Policy())
    >>> print(result.render(), end="")
    Plan: 1 to update.
    <BLANKLINE>
      ~ update User "e1" (id a1)  # title changed
          title : "Guide" → "Lead"
    >>> [(o.op, o.path, o.value) for o in result.operations[0].patch]
    [('replace', 'title', 'Lead')]

A source that says which attributes it manages has the values it no longer holds
removed (the title HR cleared), and may name other users by source key (a manager),
which the engine turns into their target ids::

    >>> desired = DesiredState(
    ...     users=[DesiredUser(key="e1", user=User(external_id="e1", user_name="ann@example.com"))],
    ...     managed_user_attributes=["userName", "externalId", "title"],
    ... )
    >>> print(plan(desired, actual, Policy()).render(), end="")
    Plan: 1 to update.
    <BLANKLINE>
      ~ update User "e1" (id a1)  # title cleared in source
          title : "Guide" → (removed)

In a running sync, pass what the last cycle left (``state``) and the time (``now``),
apply ``result.operations`` unless ``result.blocked``, then keep
``state.after(result, created_ids)`` for the next cycle. :func:`simulate` applies a
plan to a target state in memory.

``Change`` is the deprecated name of :class:`PlannedChange`, kept for one release
(using it warns).
"""

from typing import TYPE_CHECKING, Any

from .._deprecated import renamed
from ._plan import Plan
from ._planner import plan
from ._policy import GUARDS, Policy
from ._simulate import simulate, simulated_id
from ._state import CONFIRMATIONS, Ledger, SyncState, Unkept, UnkeptHow
from ._values import (
    OPERATION_KINDS,
    PLACEHOLDER_PREFIX,
    Conflict,
    GuardTrip,
    Link,
    Operation,
    Placeholder,
    PlannedChange,
    Protection,
    Skip,
    blocked_message,
)

__all__ = [
    "CONFIRMATIONS",
    "Conflict",
    "GUARDS",
    "GuardTrip",
    "Ledger",
    "Link",
    "OPERATION_KINDS",
    "Operation",
    "PLACEHOLDER_PREFIX",
    "Placeholder",
    "Plan",
    "PlannedChange",
    "Policy",
    "Protection",
    "Skip",
    "SyncState",
    "Unkept",
    "UnkeptHow",
    "blocked_message",
    "plan",
    "simulate",
    "simulated_id",
]

_RENAMED = {"Change": "PlannedChange"}

if TYPE_CHECKING:  # the deprecated name as type checkers see it
    Change = PlannedChange
else:  # at run time, each use of it warns

    def __getattr__(name: str) -> Any:
        return renamed(__name__, name, _RENAMED, globals())
