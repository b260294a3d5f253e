"""A users-only target: the nine :class:`~scimsync.targets.UserTarget` methods, no more."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimsync.targets import MemoryTarget, TargetCapabilities

if TYPE_CHECKING:
    from scimsync import User
    from scimsync.targets import TargetListing, UserUpdate


class UsersOnly:
    """The user methods of a :class:`MemoryTarget` (``inner``), and nothing else: no
    group methods, no ``schema()``. ``inner.calls`` records every request it stands for."""

    def __init__(self, inner: MemoryTarget | None = None) -> None:
        self.inner = inner if inner is not None else MemoryTarget()

    async def capabilities(self) -> TargetCapabilities:
        return await self.inner.capabilities()

    async def list_users(self) -> TargetListing[User]:
        return await self.inner.list_users()

    async def get_user(self, user_id: str) -> User:
        return await self.inner.get_user(user_id)

    async def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        return await self.inner.find_users(attribute, value)

    async def create_user(self, user: User) -> User:
        return await self.inner.create_user(user)

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        return await self.inner.update_user(user_id, change)

    async def deactivate_user(self, user_id: str) -> None:
        await self.inner.deactivate_user(user_id)

    async def reactivate_user(self, user_id: str) -> None:
        await self.inner.reactivate_user(user_id)

    async def delete_user(self, user_id: str) -> None:
        await self.inner.delete_user(user_id)
