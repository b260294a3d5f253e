"""Targets: the applications being provisioned.

:class:`Target` is the protocol the runner drives, one method per kind of plan
operation: list users and groups (saying whether the listing is complete), create,
update (PATCH operations, or a read-modify-write PUT that keeps what the mapping
does not manage), deactivate, reactivate, delete, add and remove group members
(chunked to the target's limit), and the target's capabilities. It is async-first;
:class:`BlockingTarget` gives the same operations to synchronous code.

Built-ins: :class:`ScimTarget` (a SCIM 2.0 service, through
:class:`~scimsync.client.AsyncScimClient`) and :class:`MemoryTarget` (pure Python,
same semantics, for tests and previews).
"""

from ._blocking import BlockingTarget
from ._memory import MemoryCall, MemoryTarget
from ._overlay import overlay
from ._protocol import (
    GroupChange,
    Listing,
    Target,
    TargetCapabilities,
    UserChange,
    read_target_state,
)

__all__ = [
    "BlockingTarget",
    "GroupChange",
    "Listing",
    "MemoryCall",
    "MemoryTarget",
    "Target",
    "TargetCapabilities",
    "UserChange",
    "overlay",
    "read_target_state",
]
