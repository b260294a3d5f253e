"""scimsync: plan/apply provisioning for SCIM 2.0 (RFC 7643 / RFC 7644).

The models and the codec are imported eagerly (they need only attrs and cattrs); the
runner and everything that talks HTTP load on first use, so ``import scimsync`` stays
light.

The library logs to loggers under ``scimsync`` (``scimsync.sync``, ``scimsync.client``,
``scimsync.audit``, ...) and never prints: where the records go is the application's
choice. Until it configures logging, they go nowhere (not even warnings to stderr).
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .codec import from_json, from_scim, to_json, to_scim
from .errors import ScimSyncError
from .models import (
    Address,
    Email,
    EnterpriseUser,
    Entitlement,
    Group,
    GroupMembership,
    Im,
    ListResponse,
    Manager,
    Member,
    Meta,
    Name,
    PatchOp,
    PatchOperation,
    PhoneNumber,
    Photo,
    Role,
    User,
    X509Certificate,
)

# The standard library's advice for libraries: without it, warnings would reach stderr
# through logging's last-resort handler in applications that configured no logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:  # type checkers see the real classes; the runtime loads them on use
    from .sync import FanOut, FanOutReport, Provisioner, SyncReport

try:
    __version__ = version("scimsync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Address",
    "Email",
    "EnterpriseUser",
    "Entitlement",
    "FanOut",
    "FanOutReport",
    "Group",
    "GroupMembership",
    "Im",
    "ListResponse",
    "Manager",
    "Member",
    "Meta",
    "Name",
    "PatchOp",
    "PatchOperation",
    "PhoneNumber",
    "Photo",
    "Provisioner",
    "Role",
    "ScimSyncError",
    "SyncReport",
    "User",
    "X509Certificate",
    "__version__",
    "from_json",
    "from_scim",
    "to_json",
    "to_scim",
]

# Names that pull in the runner (and with it httpx): loaded on first access.
_LAZY: dict[str, str] = {
    "FanOut": "scimsync.sync",
    "FanOutReport": "scimsync.sync",
    "Provisioner": "scimsync.sync",
    "SyncReport": "scimsync.sync",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scimsync' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
