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

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._scim import ScimTarget

__all__ = [
    "BlockingTarget",
    "GroupChange",
    "Listing",
    "MemoryCall",
    "MemoryTarget",
    "ScimTarget",
    "Target",
    "TargetCapabilities",
    "UserChange",
    "overlay",
    "read_target_state",
]

# ScimTarget needs the HTTP client: loaded on first use, so MemoryTarget stays light.
_LAZY = {"ScimTarget": "._scim"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
