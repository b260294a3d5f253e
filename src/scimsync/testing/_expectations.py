"""The expectations of the conformance kit: what every target does, one function each.

Each takes a :class:`Context` (the target under check, what its schema keeps, what was
created, the faults) and raises :class:`UnmetError` with why when the target does not
meet it, :class:`NotApplicableError` when it does not apply. :data:`EXPECTATIONS`
lists them in the order they run; :mod:`._conformance` runs them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ..codec import from_scim, to_scim
from ..errors import (
    ConflictResponseError,
    InvalidResponseError,
    NotFoundError,
    OutcomeUnknownError,
    ScimSyncError,
)
from ..models import GROUP_SCHEMA, USER_SCHEMA, Group, Member, PatchOperation, User
from ..schema import SchemaTable
from ..targets._protocol import GROUP_METHODS, TargetCapabilities, TargetListing, missing_methods
from ._target_faults import TargetFaults

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "EXPECTATIONS",
    "TARGET_EXPECTATIONS",
    "Context",
    "Expectation",
    "NotApplicableError",
    "RaisedError",
    "UnmetError",
    "describe",
    "short",
]

#: Simple text attributes the kit may write and clear, the first one the schema keeps.
_TEXT_ATTRIBUTES = (
    "title",
    "displayName",
    "nickName",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "profileUrl",
)


class UnmetError(Exception):
    """An expectation not met, and why."""


class NotApplicableError(Exception):
    """An expectation that does not apply to this target, and why."""


class RaisedError(Exception):
    """A target method raised where it should not have."""

    def __init__(self, method: str, error: BaseException) -> None:
        self.method = method
        self.error = error
        super().__init__(f"{method} raised {describe(error)}")


def describe(error: BaseException) -> str:
    """``"KeyError: 'x'"``, ``"httpx.ReadTimeout: ..."``: the class (qualified outside
    scimsync and the builtins) and message of ``error``."""
    kind = type(error)
    name = kind.__name__ if kind.__module__.startswith("scimsync") else kind.__qualname__
    if not kind.__module__.startswith(("scimsync", "builtins")):
        name = f"{kind.__module__}.{name}"
    text = str(error)
    return f"{name}: {text}" if text else name


@attrs.define
class Context:
    """One expectation's run: the target, what it keeps, what was created."""

    target: Any
    schema: SchemaTable
    faults: TargetFaults | None
    many: int
    token: str = attrs.Factory(lambda: uuid.uuid4().hex[:8])
    users: list[str] = attrs.Factory(list)
    groups: list[str] = attrs.Factory(list)
    counter: int = 0

    # -- what the target keeps -----------------------------------------------------------

    @property
    def text(self) -> str:
        """The simple text attribute the kit writes (title, when the target keeps it)."""
        for name in _TEXT_ATTRIBUTES:
            spec = self.schema.resolve("User", name)
            if (
                spec is not None
                and spec.type == "string"
                and spec.writable
                and not spec.multi_valued
            ):
                return spec.name
        raise NotApplicableError(
            f"the target's schema keeps none of {', '.join(_TEXT_ATTRIBUTES)} to write and clear"
        )

    @property
    def keeps_active(self) -> bool:
        """True when the target's schema keeps ``active``."""
        return self.schema.resolve("User", "active") is not None

    # -- names and resources -------------------------------------------------------------

    def name(self, what: str) -> str:
        """A name no other run uses: ``scimsync-check-<token>-<what>-<n>``."""
        self.counter += 1
        return f"scimsync-check-{self.token}-{what}-{self.counter}"

    def new_user(self, user_name: str | None = None) -> User:
        """A user with a userName, an externalId, the text attribute and ``active``."""
        data: dict[str, Any] = {
            "schemas": [USER_SCHEMA],
            "userName": user_name or self.name("user"),
            "externalId": self.name("ext"),
        }
        with contextlib.suppress(NotApplicableError):
            data[self.text] = self.name("value")
        if self.keeps_active:
            data["active"] = True
        return from_scim(data, User)

    def new_group(self, members: Sequence[str] = ()) -> Group:
        """A group with a displayName, an externalId and ``members`` (ids)."""
        return Group(
            display_name=self.name("group"),
            external_id=self.name("group-ext"),
            members=[Member(value=m) for m in members] if members else None,
        )

    # -- calling the target --------------------------------------------------------------

    async def call(self, method: str, *args: Any) -> Any:
        """``target.method(*args)``; any error raised is a :class:`RaisedError`."""
        function = getattr(self.target, method, None)
        if not callable(function):
            raise UnmetError(f"the target has no {method}")
        try:
            return await function(*args)
        except Exception as error:
            raise RaisedError(method, error) from error

    async def expect_error(self, kind: type[Exception], method: str, *args: Any) -> Exception:
        """The error ``target.method(*args)`` raises, which must be a ``kind``."""
        try:
            answer = await self.call(method, *args)
        except RaisedError as raised:
            if isinstance(raised.error, kind):
                return raised.error
            raise UnmetError(
                f"{method}{_args(args)} raised {describe(raised.error)}, not the "
                f"{kind.__name__} a SCIM service answers"
            ) from raised.error
        self._note_created(method, answer)
        raise UnmetError(
            f"{method}{_args(args)} returned {short(answer)}: expected {kind.__name__}"
        )

    def _note_created(self, method: str, answer: Any) -> None:
        if method in ("create_user", "create_group") and getattr(answer, "id", None):
            (self.users if method == "create_user" else self.groups).append(answer.id)

    async def create_user(self, user: User) -> User:
        """Create ``user``: the answer, which must carry a new id."""
        created = await self.call("create_user", user)
        if not isinstance(created, User) or not created.id:
            raise UnmetError(
                f"create_user returned {short(created)}: expected the user, with its id"
            )
        self.users.append(created.id)
        return created

    async def create_group(self, group: Group) -> Group:
        """Create ``group``: the answer, which must carry a new id."""
        created = await self.call("create_group", group)
        if not isinstance(created, Group) or not created.id:
            raise UnmetError(
                f"create_group returned {short(created)}: expected the group, with its id"
            )
        self.groups.append(created.id)
        return created

    async def get_user(self, user_id: str) -> User:
        """The user read back, which must be the one asked for."""
        user = await self.call("get_user", user_id)
        if not isinstance(user, User) or user.id != user_id:
            raise UnmetError(f"get_user({user_id!r}) returned {short(user)}")
        return user

    async def get_group(self, group_id: str) -> Group:
        """The group read back, which must be the one asked for."""
        group = await self.call("get_group", group_id)
        if not isinstance(group, Group) or group.id != group_id:
            raise UnmetError(f"get_group({group_id!r}) returned {short(group)}")
        return group

    async def listing(self, method: str) -> TargetListing[Any]:
        """A listing, which must be a :class:`TargetListing`."""
        listing = await self.call(method)
        if not isinstance(listing, TargetListing):
            raise UnmetError(f"{method} returned {short(listing)}: expected a TargetListing")
        return listing

    async def through_faults(self) -> TargetFaults:
        """The faults, once a listing shows the target's requests go through them."""
        faults = self.faults
        assert faults is not None
        before = faults.requests
        await self.listing("list_users")
        if faults.requests == before:
            raise UnmetError(
                "list_users sent no request through faults.transport(): build the target's "
                "httpx client on it in the factory, or leave faults= out"
            )
        return faults

    async def clean_up(self) -> None:
        """Delete what the run created (groups first), ignoring every error."""
        for method, ids in (("delete_group", self.groups), ("delete_user", self.users)):
            function = getattr(self.target, method, None)
            if not callable(function):
                continue
            for resource_id in reversed(ids):
                with contextlib.suppress(Exception):
                    await function(resource_id)


def _args(args: Sequence[Any]) -> str:
    return "(" + ", ".join(short(a) for a in args) + ")"


def short(value: Any, limit: int = 120) -> str:
    """The repr of ``value``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(resource: User | Group, attribute: str) -> Any:
    """The value of a top-level attribute, by its SCIM name in any case; None if unset."""
    folded = attribute.lower()
    return next((v for k, v in to_scim(resource).items() if k.lower() == folded), None)


def _member_ids(group: Group) -> list[str]:
    return sorted(m.value or "" for m in group.members or ())


def _holds(where: str, resource: User | Group, wanted: dict[str, Any]) -> None:
    """``resource`` (read back) holds each of ``wanted``; userName and displayName are
    compared without case, as their schema says."""
    for attribute, value in wanted.items():
        held = _value(resource, attribute)
        same = (
            isinstance(held, str) and isinstance(value, str) and held.lower() == value.lower()
            if attribute in ("userName", "displayName")
            else held == value
        )
        if not same:
            raise UnmetError(f"{where}: {attribute} is {held!r}, expected {value!r}")


def _agrees(method: str, answer: Any, resource_id: str, wanted: dict[str, Any]) -> None:
    """The answer of an update is None, or the resource as it is now: what it holds
    of ``wanted`` is what was set (it may hold less)."""
    if answer is None:
        return
    if not isinstance(answer, (User, Group)):
        raise UnmetError(f"{method} returned {short(answer)}: expected the resource or None")
    if answer.id not in (None, resource_id):
        raise UnmetError(f"{method} answered with another resource ({answer.id!r})")
    for attribute, value in wanted.items():
        held = _value(answer, attribute)
        if held is not None and held != value:
            raise UnmetError(
                f"{method} answered with {attribute} {held!r} after setting it to {value!r}: "
                "return the resource as the application holds it after the update, or None "
                "(never one read before it, or built from the request)"
            )


# -- the expectations ------------------------------------------------------------------------


async def _protocol(ctx: Context) -> None:
    missing = missing_methods(ctx.target)
    if missing:
        raise UnmetError(f"no {', '.join(missing)}: every target implements the UserTarget methods")
    lacking = [n for n in GROUP_METHODS if not callable(getattr(ctx.target, n, None))]
    if 0 < len(lacking) < len(GROUP_METHODS):
        raise UnmetError(
            f"some group methods, but no {', '.join(lacking)}: a target keeps groups with "
            "every GroupTarget method, or none (users-only)"
        )
    capabilities = await ctx.call("capabilities")
    if not isinstance(capabilities, TargetCapabilities):
        raise UnmetError(
            f"capabilities() returned {short(capabilities)}: expected TargetCapabilities"
        )
    if ctx.schema.resource_type("User") is None:
        raise UnmetError("schema() has no User resource type")


async def _create_and_get(ctx: Context) -> None:
    sent = ctx.new_user()
    wanted = {k: v for k, v in to_scim(sent).items() if k != "schemas"}
    created = await ctx.create_user(sent)
    for attribute, value in wanted.items():
        held = _value(created, attribute)
        if held is not None and (
            held.lower() != value.lower() if attribute == "userName" else held != value
        ):
            raise UnmetError(f"create_user answered with {attribute} {held!r}, sent {value!r}")
    assert created.id is not None
    _holds("get_user after create_user", await ctx.get_user(created.id), wanted)
    other = await ctx.create_user(ctx.new_user())
    if other.id == created.id:
        raise UnmetError(f"two users created were both given the id {created.id!r}")


async def _find_per_case_exact(ctx: Context) -> None:
    sent = ctx.new_user()
    created = await ctx.create_user(sent)
    user_name, external_id = sent.user_name or "", sent.external_id or ""
    for attribute, value, expected, why in (
        ("userName", user_name.upper(), [created.id], "userName is not caseExact"),
        ("externalId", external_id, [created.id], "it holds that externalId"),
        ("externalId", external_id.upper(), [], "externalId is caseExact"),
        ("userName", ctx.name("nobody"), [], "nobody holds it"),
    ):
        found = await ctx.call("find_users", attribute, value)
        ids = [u.id for u in found] if isinstance(found, (tuple, list)) else found
        if ids != expected:
            raise UnmetError(
                f"find_users({attribute!r}, {value!r}) found {ids!r}, expected {expected!r} ({why})"
            )


async def _taken_user_name(ctx: Context) -> None:
    sent = ctx.new_user()
    created = await ctx.create_user(sent)
    user_name = sent.user_name or ""
    for clash in (user_name, user_name.upper()):
        error = await ctx.expect_error(
            ConflictResponseError, "create_user", ctx.new_user(user_name=clash)
        )
        if getattr(error, "scim_type", None) != "uniqueness":
            raise UnmetError(
                f"create_user of the taken userName {clash!r} raised ConflictResponseError "
                f"with scim_type {getattr(error, 'scim_type', None)!r}, not 'uniqueness'"
            )
    found = await ctx.call("find_users", "userName", user_name)
    if [u.id for u in found] != [created.id]:
        raise UnmetError(f"after the refused creates, userName {user_name!r} is held by {found!r}")


async def _update_by_patch(ctx: Context) -> None:
    text = ctx.text
    sent = ctx.new_user()
    created = await ctx.create_user(sent)
    assert created.id is not None
    new = ctx.name("patched")
    patch = [PatchOperation(op="replace", path=text, value=new)]
    _agrees(
        "update_user", await ctx.call("update_user", created.id, patch), created.id, {text: new}
    )
    kept = {"userName": sent.user_name, "externalId": sent.external_id, text: new}
    _holds("get_user after a PATCH replace", await ctx.get_user(created.id), kept)


async def _update_by_resource(ctx: Context) -> None:
    text = ctx.text
    sent = ctx.new_user()
    created = await ctx.create_user(sent)
    assert created.id is not None
    new = ctx.name("set")
    change = from_scim({"schemas": [USER_SCHEMA], text: new}, User)
    _agrees(
        "update_user", await ctx.call("update_user", created.id, change), created.id, {text: new}
    )
    kept: dict[str, Any] = {"userName": sent.user_name, "externalId": sent.external_id, text: new}
    if ctx.keeps_active:
        kept["active"] = True
    _holds(
        "get_user after an update with a user holding only " + text,
        await ctx.get_user(created.id),
        kept,
    )


async def _clear_attribute(ctx: Context) -> None:
    text = ctx.text
    created = await ctx.create_user(ctx.new_user())
    assert created.id is not None
    before = _value(await ctx.get_user(created.id), text)
    if before is None:
        raise UnmetError(f"{text} was not kept on create, so its removal cannot be checked")
    answer = await ctx.call("update_user", created.id, [PatchOperation(op="remove", path=text)])
    after = _value(await ctx.get_user(created.id), text)
    if after is not None:
        raise UnmetError(
            f"{text} is still {after!r} after a PATCH remove: a removal must clear it in the "
            "application (send its way of clearing a field: a null, an empty value), or a "
            "value cleared in the source stays"
        )
    if answer is not None and _value(answer, text) is not None:
        raise UnmetError(
            f"update_user answered a PATCH remove of {text} with {text} "
            f"{_value(answer, text)!r}, which get_user no longer holds: return the user as "
            "the application holds it after the update, or None"
        )


async def _deactivate_reactivate(ctx: Context) -> None:
    if not ctx.keeps_active:
        raise NotApplicableError("the target's schema does not keep active")
    created = await ctx.create_user(ctx.new_user())
    assert created.id is not None
    for method, value in (("deactivate_user", False), ("reactivate_user", True)):
        await ctx.call(method, created.id)
        _holds(f"get_user after {method}", await ctx.get_user(created.id), {"active": value})


async def _delete(ctx: Context) -> None:
    sent = ctx.new_user()
    created = await ctx.create_user(sent)
    assert created.id is not None
    await ctx.call("delete_user", created.id)
    await ctx.expect_error(NotFoundError, "get_user", created.id)
    found = await ctx.call("find_users", "userName", sent.user_name)
    if found:
        raise UnmetError(f"find_users still finds the deleted user: {short(found)}")
    listed = await ctx.listing("list_users")
    if any(u.id == created.id for u in listed.resources):
        raise UnmetError("list_users still lists the deleted user")


async def _unknown_id(ctx: Context) -> None:
    missing = ctx.name("missing-id")
    rename = [PatchOperation(op="replace", path="userName", value=ctx.name("user"))]
    for method, args in (
        ("get_user", (missing,)),
        ("update_user", (missing, rename)),
        ("deactivate_user", (missing,)),
        ("reactivate_user", (missing,)),
        ("delete_user", (missing,)),
    ):
        await ctx.expect_error(NotFoundError, method, *args)


async def _listing_complete(ctx: Context) -> None:
    created = [(await ctx.create_user(ctx.new_user())).id for _ in range(ctx.many)]
    listing = await ctx.listing("list_users")
    if not listing.complete:
        raise UnmetError(
            f"list_users said its listing is incomplete ({listing.problem}) with nothing "
            "going wrong: incomplete listings hold every deprovisioning back"
        )
    seen = Counter(u.id for u in listing.resources)
    absent = [i for i in created if not seen[i]]
    twice = [i for i in created if seen[i] > 1]
    if absent:
        raise UnmetError(
            f"list_users lists {ctx.many - len(absent)} of the {ctx.many} users created "
            f"(not {absent[0]!r}...) and says it is complete: those missing would read as gone"
        )
    if twice:
        raise UnmetError(f"list_users lists {twice[0]!r} (and {len(twice) - 1} more) twice")


async def _group_create_and_get(ctx: Context) -> None:
    member = await ctx.create_user(ctx.new_user())
    assert member.id is not None
    sent = ctx.new_group([member.id])
    created = await ctx.create_group(sent)
    assert created.id is not None
    got = await ctx.get_group(created.id)
    _holds(
        "get_group after create_group",
        got,
        {"displayName": sent.display_name, "externalId": sent.external_id},
    )
    if _member_ids(got) != [member.id]:
        raise UnmetError(
            f"get_group shows members {_member_ids(got)!r}, created with [{member.id!r}]"
        )
    name = (sent.display_name or "").upper()
    found = await ctx.call("find_groups", "displayName", name)
    if [g.id for g in found] != [created.id]:
        raise UnmetError(
            f"find_groups('displayName', {name!r}) found {[g.id for g in found]!r}, expected "
            f"[{created.id!r}] (displayName is not caseExact)"
        )


async def _group_update(ctx: Context) -> None:
    member = await ctx.create_user(ctx.new_user())
    assert member.id is not None
    sent = ctx.new_group([member.id])
    created = await ctx.create_group(sent)
    assert created.id is not None
    renamed = ctx.name("renamed")
    patch = [PatchOperation(op="replace", path="displayName", value=renamed)]
    _agrees(
        "update_group",
        await ctx.call("update_group", created.id, patch),
        created.id,
        {"displayName": renamed},
    )
    kept = {"displayName": renamed, "externalId": sent.external_id}
    got = await ctx.get_group(created.id)
    _holds("get_group after a PATCH replace", got, kept)
    again = ctx.name("set")
    change = from_scim({"schemas": [GROUP_SCHEMA], "displayName": again}, Group)
    _agrees(
        "update_group",
        await ctx.call("update_group", created.id, change),
        created.id,
        {"displayName": again},
    )
    got = await ctx.get_group(created.id)
    _holds("get_group after an update with a group", got, {**kept, "displayName": again})
    if _member_ids(got) != [member.id]:
        raise UnmetError(
            f"updating displayName changed the members: {_member_ids(got)!r}, "
            f"expected [{member.id!r}]"
        )


async def _membership(ctx: Context) -> None:
    first = await ctx.create_user(ctx.new_user())
    second = await ctx.create_user(ctx.new_user())
    assert first.id is not None
    assert second.id is not None
    created = await ctx.create_group(ctx.new_group())
    assert created.id is not None
    listed = next(
        (g for g in (await ctx.listing("list_groups")).resources if g.id == created.id), None
    )
    if listed is None:
        raise UnmetError("list_groups does not list the group just created")
    if listed.members is None:
        raise UnmetError(
            "list_groups shows a group without its members (None): a listing shows them, "
            "() for none, or memberships are never compared"
        )
    steps: list[tuple[str, list[str], list[str]]] = [
        ("add_members", [first.id, second.id], sorted([first.id, second.id])),
        ("add_members", [first.id], sorted([first.id, second.id])),
        ("remove_members", [first.id], [second.id]),
    ]
    for method, ids, expected in steps:
        await ctx.call(method, created.id, ids)
        got = await ctx.get_group(created.id)
        if _member_ids(got) != expected:
            raise UnmetError(
                f"after {method}({created.id!r}, {ids!r}) get_group shows members "
                f"{_member_ids(got)!r}, expected {expected!r}"
            )
    listed = next(g for g in (await ctx.listing("list_groups")).resources if g.id == created.id)
    if _member_ids(listed) != [second.id]:
        raise UnmetError(
            f"list_groups shows members {_member_ids(listed)!r}, expected [{second.id!r}]"
        )


async def _group_delete(ctx: Context) -> None:
    created = await ctx.create_group(ctx.new_group())
    assert created.id is not None
    await ctx.call("delete_group", created.id)
    await ctx.expect_error(NotFoundError, "get_group", created.id)
    listed = await ctx.listing("list_groups")
    if any(g.id == created.id for g in listed.resources):
        raise UnmetError("list_groups still lists the deleted group")


_FAULTS = {"server_error": "answers 500", "timeout": "does not answer (a timeout)"}


async def _errors_are_scim_errors(ctx: Context) -> None:
    faults = await ctx.through_faults()
    created = await ctx.create_user(ctx.new_user())
    assert created.id is not None
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("list_users", ()),
        ("get_user", (created.id,)),
        ("find_users", ("userName", created.user_name)),
        ("create_user", (ctx.new_user(),)),
        ("update_user", (created.id, [PatchOperation(op="replace", path="userName", value="x")])),
        ("deactivate_user", (created.id,)),
        ("delete_user", (created.id,)),
    ]
    for mode, what in _FAULTS.items():
        for method, args in calls:
            with faults.injecting(mode):  # type: ignore[arg-type]
                try:
                    answer = await ctx.call(method, *args)
                except RaisedError as raised:
                    if isinstance(raised.error, ScimSyncError):
                        continue
                    raise UnmetError(
                        f"when the application {what}, {method} raised "
                        f"{describe(raised.error)}: raise the errors of scimsync.errors "
                        "(ServerError, TransportError...), which the runner reports and "
                        "retries; anything else stops the cycle as a bug"
                    ) from raised.error
            ctx._note_created(method, answer)
            if method == "list_users" and isinstance(answer, TargetListing) and not answer.complete:
                continue
            raise UnmetError(f"when the application {what}, {method} returned {short(answer)}")


async def _lost_answer(ctx: Context) -> None:
    faults = await ctx.through_faults()
    sent = ctx.new_user()
    try:
        with faults.injecting("lost_answer"):
            answer = await ctx.call("create_user", sent)
    except RaisedError as raised:
        error = raised.error
        if not isinstance(error, (OutcomeUnknownError, InvalidResponseError)):
            raise UnmetError(
                f"create_user raised {describe(error)} when the application created the "
                "user and its answer was lost: raise OutcomeUnknownError, so the runner "
                "looks the user up before sending it again"
            ) from error
    else:
        ctx._note_created("create_user", answer)
        raise UnmetError(f"create_user returned {short(answer)} although its answer was lost")
    finally:
        with contextlib.suppress(Exception):
            found = await ctx.call("find_users", "userName", sent.user_name)
            ctx.users.extend(u.id for u in found if u.id)


async def _listing_cut_short(ctx: Context) -> None:
    faults = await ctx.through_faults()
    created = {(await ctx.create_user(ctx.new_user())).id for _ in range(ctx.many)}
    start = faults.requests
    await ctx.listing("list_users")
    used = faults.requests - start
    for passed in range(used):
        for mode in _FAULTS:
            with faults.injecting(mode, after=passed):  # type: ignore[arg-type]
                try:
                    listing = await ctx.listing("list_users")
                except RaisedError as raised:
                    if isinstance(raised.error, ScimSyncError):
                        continue
                    raise UnmetError(
                        f"list_users raised {describe(raised.error)} when request "
                        f"{passed + 1} of its {used} failed: raise the errors of scimsync.errors"
                    ) from raised.error
            listed = {u.id for u in listing.resources}
            if listing.complete and not created <= listed:
                raise UnmetError(
                    f"when request {passed + 1} of its {used} failed, list_users returned "
                    f"{len(created & listed)} of the {ctx.many} users and said it was complete: "
                    "a short listing says complete=False (or raises), or the users missing "
                    "read as gone"
                )


@attrs.frozen
class Expectation:
    name: str
    needs: Literal["groups", "faults"] | None
    run: Callable[[Context], Awaitable[None]]


EXPECTATIONS = (
    Expectation("protocol", None, _protocol),
    Expectation("create_and_get", None, _create_and_get),
    Expectation("find_per_case_exact", None, _find_per_case_exact),
    Expectation("taken_user_name", None, _taken_user_name),
    Expectation("update_by_patch", None, _update_by_patch),
    Expectation("update_by_resource", None, _update_by_resource),
    Expectation("clear_attribute", None, _clear_attribute),
    Expectation("deactivate_reactivate", None, _deactivate_reactivate),
    Expectation("delete", None, _delete),
    Expectation("unknown_id", None, _unknown_id),
    Expectation("listing_complete", None, _listing_complete),
    Expectation("group_create_and_get", "groups", _group_create_and_get),
    Expectation("group_update", "groups", _group_update),
    Expectation("membership", "groups", _membership),
    Expectation("group_delete", "groups", _group_delete),
    Expectation("errors_are_scim_errors", "faults", _errors_are_scim_errors),
    Expectation("lost_answer", "faults", _lost_answer),
    Expectation("listing_cut_short", "faults", _listing_cut_short),
)

#: The names of the expectations :func:`check_target` checks, in the order it does.
TARGET_EXPECTATIONS: tuple[str, ...] = tuple(e.name for e in EXPECTATIONS)
