"""Targets: the applications being provisioned.

The runner drives a :class:`UserTarget`, one method per kind of plan operation on
users: list them (saying whether the listing is complete), get, find, create, update
(PATCH operations, or a resource whose attributes are set), deactivate, reactivate,
delete, and the target's capabilities. The :class:`GroupTarget` methods (the same for
groups, plus adding and removing members, chunked to the target's limit) are an
optional capability, detected when the provisioner is made: a users-only target is
never asked about groups. :class:`Target` is both. ``schema()`` is optional too
(:func:`target_schema`). It is async-first; :class:`BlockingTarget` gives the same
operations to synchronous code.

Built-ins: :class:`ScimTarget` (a SCIM 2.0 service, through
:class:`~scimsync.client.AsyncScimClient`) and :class:`MemoryTarget` (pure Python,
same semantics, for tests and previews).

Deprecated names, kept for one release (using them warns): ``Listing``, now
:class:`TargetListing`; ``UserChange`` and ``GroupChange``, now :data:`UserUpdate`
and :data:`GroupUpdate`.
"""

from typing import TYPE_CHECKING, Any

from .._deprecated import renamed
from ._blocking import BlockingTarget
from ._facts import TargetFacts
from ._memory import MemoryCall, MemoryTarget
from ._overlay import overlay
from ._protocol import (
    GROUP_METHODS,
    USER_METHODS,
    GroupTarget,
    GroupUpdate,
    Target,
    TargetCapabilities,
    TargetListing,
    UserTarget,
    UserUpdate,
    missing_methods,
    read_target_state,
    supports_groups,
    target_schema,
)

if TYPE_CHECKING:
    from ._scim import ScimTarget

    # the deprecated names as type checkers see them (at run time, each use warns)
    GroupChange = GroupUpdate
    Listing = TargetListing
    UserChange = UserUpdate

__all__ = [
    "BlockingTarget",
    "GROUP_METHODS",
    "GroupTarget",
    "GroupUpdate",
    "MemoryCall",
    "MemoryTarget",
    "ScimTarget",
    "Target",
    "TargetCapabilities",
    "TargetFacts",
    "TargetListing",
    "USER_METHODS",
    "UserTarget",
    "UserUpdate",
    "missing_methods",
    "overlay",
    "read_target_state",
    "supports_groups",
    "target_schema",
]

# ScimTarget needs the HTTP client: loaded on first use, so MemoryTarget stays light.
_LAZY = {"ScimTarget": "._scim"}

_RENAMED = {"GroupChange": "GroupUpdate", "Listing": "TargetListing", "UserChange": "UserUpdate"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        return renamed(__name__, name, _RENAMED, globals())
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
