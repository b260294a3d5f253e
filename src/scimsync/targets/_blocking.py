"""The sync path to an async target: the same operations, as plain blocking calls."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..errors import ConfigurationError
from ._protocol import GROUP_METHODS, read_target_state, supports_groups, target_schema

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence
    from types import TracebackType

    from ..models import Group, TargetState, User
    from ..schema import SchemaTable
    from ._protocol import (
        GroupTarget,
        GroupUpdate,
        TargetCapabilities,
        TargetListing,
        UserTarget,
        UserUpdate,
    )

__all__ = ["BlockingTarget"]

T = TypeVar("T")


class BlockingTarget:
    """Calls an async :class:`UserTarget` (or :class:`Target`) from plain synchronous code.

    ``BlockingTarget(target).create_user(user)`` runs the coroutine to completion on
    an event loop owned by this object, the same loop for every call, so connection
    pools of the target's HTTP client stay usable from one call to the next. Calls
    from several threads take turns. Inside a running event loop, await the target
    directly instead: calling this raises :class:`~scimsync.errors.ConfigurationError`.

    A users-only target works too: :meth:`read_state` gives it no groups, :meth:`schema`
    the core schemas when it has no ``schema()``, and a group method raises
    :class:`~scimsync.errors.ConfigurationError` naming what the target lacks.

    Close it (or use it as a context manager) to close its loop.
    """

    def __init__(self, target: UserTarget) -> None:
        self.target = target
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlockingTarget({self.target!r})"

    def __enter__(self) -> BlockingTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the event loop (a later call opens a new one)."""
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is not None and not loop.is_closed():
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine on this object's loop and return its result."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            awaitable.close()
            raise ConfigurationError(
                "BlockingTarget cannot be used inside a running event loop: await the target"
            )
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(awaitable)

    # -- the Target operations, blocking ------------------------------------------------

    def read_state(self) -> TargetState:
        """Users and groups as the engine takes them (see :func:`read_target_state`)."""
        return self.run(read_target_state(self.target))

    def capabilities(self) -> TargetCapabilities:
        """What the target supports."""
        return self.run(self.target.capabilities())

    def schema(self) -> SchemaTable:
        """The target's schema table (the core schemas when it has no ``schema()``)."""
        return self.run(target_schema(self.target))

    def list_users(self) -> TargetListing[User]:
        """Every user, and whether the listing is complete."""
        return self.run(self.target.list_users())

    def list_groups(self) -> TargetListing[Group]:
        """Every group, and whether the listing is complete."""
        return self.run(self._groups().list_groups())

    def get_user(self, user_id: str) -> User:
        """The user with id ``user_id``."""
        return self.run(self.target.get_user(user_id))

    def get_group(self, group_id: str) -> Group:
        """The group with id ``group_id``."""
        return self.run(self._groups().get_group(group_id))

    def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        """Users whose ``attribute`` equals ``value``."""
        return self.run(self.target.find_users(attribute, value))

    def find_groups(self, attribute: str, value: str) -> tuple[Group, ...]:
        """Groups whose ``attribute`` equals ``value``."""
        return self.run(self._groups().find_groups(attribute, value))

    def create_user(self, user: User) -> User:
        """Create ``user``; return it with its id."""
        return self.run(self.target.create_user(user))

    def create_group(self, group: Group) -> Group:
        """Create ``group``; return it with its id."""
        return self.run(self._groups().create_group(group))

    def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        """Apply PATCH operations, or set the attributes a user holds."""
        return self.run(self.target.update_user(user_id, change))

    def update_group(self, group_id: str, change: GroupUpdate) -> Group | None:
        """Apply PATCH operations, or set the attributes a group holds."""
        return self.run(self._groups().update_group(group_id, change))

    def deactivate_user(self, user_id: str) -> None:
        """Set ``active`` to false."""
        self.run(self.target.deactivate_user(user_id))

    def reactivate_user(self, user_id: str) -> None:
        """Set ``active`` to true."""
        self.run(self.target.reactivate_user(user_id))

    def delete_user(self, user_id: str) -> None:
        """Delete the user."""
        self.run(self.target.delete_user(user_id))

    def delete_group(self, group_id: str) -> None:
        """Delete the group."""
        self.run(self._groups().delete_group(group_id))

    def add_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Add members by id."""
        self.run(self._groups().add_members(group_id, member_ids))

    def remove_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Remove members by id."""
        self.run(self._groups().remove_members(group_id, member_ids))

    def _groups(self) -> GroupTarget:
        """The target as a :class:`GroupTarget`; a users-only one is refused by name."""
        if not supports_groups(self.target):
            missing = [n for n in GROUP_METHODS if not callable(getattr(self.target, n, None))]
            raise ConfigurationError(
                f"the target {type(self.target).__name__} keeps no groups: it lacks "
                f"{', '.join(missing)}"
            )
        return cast("GroupTarget", self.target)
