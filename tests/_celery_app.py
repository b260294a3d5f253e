"""The Celery app the Celery tests' worker processes run (``celery -A _celery_app worker``).

Configured by the test through the environment: the Redis broker, the PostgreSQL
state, the targets (name → SCIM base URL of a test server in the test process) and
how many users each target's source holds. ``SCIMSYNC_TEST_DIE_AFTER=N`` makes this
worker kill itself (SIGKILL) right after its Nth create went through, mid-apply.

The mapping leaves ``externalId`` out, so only the state in PostgreSQL (links and the
write-ahead journal) tells which accounts scimsync made: a duplicate would show.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from celery import Celery

from scimsync import Provisioner
from scimsync.client import AsyncScimClient
from scimsync.contrib.celery import register_tasks
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, PostgresStateStore
from scimsync.targets import ScimTarget

BROKER = os.environ.get("SCIMSYNC_TEST_BROKER", "memory://")
TARGETS: dict[str, str] = json.loads(os.environ.get("SCIMSYNC_TEST_TARGETS", "{}"))
USERS = int(os.environ.get("SCIMSYNC_TEST_CELERY_USERS", "400"))
MAPPING = Mapping(users={"userName": "email", "title": "title", "externalId": None})

app = Celery(
    "scimsync-tests", broker=BROKER, backend=BROKER.replace("memory://", "cache+memory://")
)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,  # a worker takes one target at a time
    broker_connection_retry_on_startup=True,
)


def records(target: str) -> list[dict[str, Any]]:
    """The source of ``target``: USERS people, the same in the test and the workers."""
    return [
        {"id": f"e{i}", "email": f"user{i}@{target}.example.com", "title": f"T{i % 3}"}
        for i in range(USERS)
    ]


class DiesMidway:
    """Passes every call to the target; kills this worker after the Nth create."""

    def __init__(self, inner: ScimTarget, after: int) -> None:
        self.inner = inner
        self.after = after
        self.creates = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name != "create_user":
            return attribute

        async def create(*args: Any) -> Any:
            result = await attribute(*args)
            self.creates += 1
            if self.creates >= self.after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return create


def make_provisioner(target: str) -> Provisioner:
    """What each task runs: this target's source, mapping, SCIM target and state."""
    scim: Any = ScimTarget(AsyncScimClient(TARGETS[target]))
    die_after = os.environ.get("SCIMSYNC_TEST_DIE_AFTER")
    if die_after:
        scim = DiesMidway(scim, int(die_after))
    return Provisioner(
        MemorySource(users=records(target)),
        MAPPING,
        scim,
        state=PostgresStateStore(
            os.environ["SCIMSYNC_TEST_PG"], target=target, schema=os.environ["SCIMSYNC_TEST_SCHEMA"]
        ),
        apply_policy=ApplyPolicy(concurrency=4),
    )


tasks = register_tasks(app, make_provisioner)
