"""The runner: provisioning cycles people can trust in production.

:class:`Provisioner` ties a source, a mapping, a target, the engine and a state
store together::

    from scimsync import Provisioner
    from scimsync.sync import SqliteStateStore

    provisioner = Provisioner(source, mapping, target, policy, state=SqliteStateStore("sync.db"))
    report = provisioner.run_once()          # or: await provisioner.arun_once()
    print(report)                            # a SyncReport; report.to_json() for machines

What it promises:

- **Exactly the plan.** :meth:`Provisioner.apply` sends the plan's operations and
  nothing else, each re-planned against the target as it is by then.
- **No duplicates.** A create whose answer was lost, or that met a uniqueness
  conflict, is resolved by a lookup before anything is sent again; the creates a
  cycle is about to send are journaled first, so a killed process leaves what the
  next cycle needs to link what it made.
- **Failures are loud, never silent.** Each operation ends applied, failed (with the
  error) or skipped (with why); 401/403 stop every write; too many failures
  quarantine the cycle; failed operations are retried by the next one. Audit events,
  alerts and the report say so, and never carry a secret.
- **Cycles never overlap**, in a process, across processes sharing a state file, or
  across workers on many hosts sharing a :class:`PostgresStateStore` (an advisory
  lock per target; :mod:`scimsync.contrib.celery` runs cycles as Celery tasks);
  :meth:`Provisioner.run_forever` schedules them, :meth:`Provisioner.trigger` and
  :meth:`Provisioner.stop` steer it, :meth:`Provisioner.health` tells how it goes.
- **Many targets, one read.** :class:`FanOut` runs several provisioners that share
  a source: the source is read once a cycle, each target plans and applies on its
  own, concurrently, and a :class:`FanOutReport` sums them up.
- **Observable.** :func:`observe` hands cycles, phases, reports and the target's
  requests to an :class:`Observer`: metrics (:mod:`scimsync.metrics`) and traces
  (:mod:`scimsync.tracing`) are two; nobody observes by default, at no cost.

The decisions (what an error means, when to quarantine, how to re-plan one
operation) are pure functions in ``scimsync.sync._decisions``; the executor only
sends.
"""

from ._audit import AUDIT_LOGGER, AuditEvent, AuditSink
from ._executor import ApplyPolicy, Execution, Executor
from ._explain import Explanation, Step
from ._fanout import FanOut
from ._fanout_report import FanOutReport
from ._health import Health
from ._observer import CycleKind, Observer, Phase, observe
from ._postgres import POSTGRES_SCHEMA_VERSION, PostgresStateStore
from ._provisioner import Provisioner
from ._report import (
    Alert,
    AlertKind,
    OperationResult,
    Outcome,
    Progress,
    RequestStats,
    SyncReport,
)
from ._state import (
    SCHEMA_VERSION,
    CycleRecord,
    JournalEntry,
    JournalEvent,
    MemoryStateStore,
    PendingFailure,
    SnapshotStore,
    SourceSnapshot,
    SqliteStateStore,
    StateStore,
    StoredState,
)

__all__ = [
    "AUDIT_LOGGER",
    "Alert",
    "AlertKind",
    "ApplyPolicy",
    "AuditEvent",
    "AuditSink",
    "CycleKind",
    "CycleRecord",
    "Execution",
    "Executor",
    "Explanation",
    "FanOut",
    "FanOutReport",
    "Health",
    "JournalEntry",
    "JournalEvent",
    "MemoryStateStore",
    "Observer",
    "OperationResult",
    "Outcome",
    "POSTGRES_SCHEMA_VERSION",
    "PendingFailure",
    "Phase",
    "PostgresStateStore",
    "Progress",
    "Provisioner",
    "RequestStats",
    "SCHEMA_VERSION",
    "SnapshotStore",
    "SourceSnapshot",
    "SqliteStateStore",
    "StateStore",
    "Step",
    "StoredState",
    "SyncReport",
    "observe",
]
