"""The reconciliation engine: desired state + target state + policy → a :class:`Plan`.

Pure: no I/O, no clock, no randomness (the rules are at the top of
``scimsync/engine/_planner.py``). Use it as::

    from scimsync.engine import Policy, plan

    result = plan(desired, actual, Policy(adopt="adopt"), state=previous, now=now)
    print(result.render())
    if not result.blocked:
        ...  # hand result.operations to an executor

:func:`simulate` applies a plan to a target state in memory, and
:meth:`SyncState.after` computes the state the next cycle starts from.
"""

from ._plan import Plan
from ._planner import plan
from ._policy import GUARDS, Policy
from ._simulate import simulate, simulated_id
from ._state import Ledger, SyncState
from ._values import (
    OPERATION_KINDS,
    PLACEHOLDER_PREFIX,
    Change,
    Conflict,
    GuardTrip,
    Link,
    Operation,
    Placeholder,
    Skip,
)

__all__ = [
    "Change",
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
    "Policy",
    "Skip",
    "SyncState",
    "plan",
    "simulate",
    "simulated_id",
]
