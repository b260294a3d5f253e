"""The values a plan is made of: operations, their changes, conflicts, skips, guards, links.

All are frozen. Values that end up on the wire (PATCH values, change values) are kept
JSON-ready (``dict``, ``list``, ``str``, numbers, ``bool``, ``None``), which is what
makes :meth:`Plan.to_json` and :meth:`Plan.from_json` round-trip exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Literal

import attrs

from ..codec import to_scim
from ..models import Group, PatchOperation, User
from ..models._base import to_tuple_or_empty

__all__ = [
    "Conflict",
    "ConflictKind",
    "GuardTrip",
    "Link",
    "OPERATION_KINDS",
    "Operation",
    "OperationKind",
    "PLACEHOLDER_PREFIX",
    "Placeholder",
    "PlannedChange",
    "Protection",
    "Skip",
    "blocked_message",
    "jsonable",
]

OperationKind = Literal[
    "create", "update", "reactivate", "add_members", "remove_members", "deactivate", "delete"
]
"""What an :class:`Operation` does. Group membership changes have kinds of their own."""

#: Every operation kind, in the order summaries and reviews count them.
OPERATION_KINDS: tuple[str, ...] = (
    "create",
    "update",
    "reactivate",
    "add_members",
    "remove_members",
    "deactivate",
    "delete",
)

#: Kinds that take something away: a tripped guard holds them.
DESTRUCTIVE_KINDS = frozenset({"remove_members", "deactivate", "delete"})

#: Kinds that deprovision, counted by the ``max_deprovisions`` guard.
DEPROVISION_KINDS = frozenset({"deactivate", "delete"})

ConflictKind = Literal[
    "duplicate_source_key",
    "duplicate_key_value",
    "ambiguous_match",
    "shared_account",
    "taken",
    "unowned_match",
]
"""Why identities could not be matched without guessing (see :class:`Conflict`)."""

#: How a placeholder for a resource the same plan creates is written inside the plan.
PLACEHOLDER_PREFIX = "urn:scimsync:placeholder:"


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data: models as SCIM dicts, tuples as lists."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if attrs.has(type(value)):
        return to_scim(value)
    raise TypeError(f"cannot put a {type(value).__name__} in a plan")


def _datetime_text(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@attrs.frozen(kw_only=True, order=True)
class Placeholder:
    """The id of a resource that the same plan creates, known only once it is applied.

    Inside a plan it is written as a string, ``str(placeholder)``:
    ``"urn:scimsync:placeholder:<resource type>:<source key>"``, wherever the id will go
    (an operation's ``target_id``, member ids, PATCH values, bodies). The executor
    substitutes the real id with :meth:`Operation.resolve` or :meth:`Plan.resolve`.
    """

    resource_type: str
    key: str

    def __str__(self) -> str:
        return f"{PLACEHOLDER_PREFIX}{self.resource_type}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> Placeholder | None:
        """Return the placeholder written as ``text``, or None when it is a real id."""
        if not text.startswith(PLACEHOLDER_PREFIX):
            return None
        resource_type, sep, key = text[len(PLACEHOLDER_PREFIX) :].partition(":")
        return cls(resource_type=resource_type, key=key) if sep else None


def is_placeholder(text: str) -> bool:
    """True when ``text`` is the string form of a :class:`Placeholder`."""
    return text.startswith(PLACEHOLDER_PREFIX)


@attrs.frozen(kw_only=True)
class PlannedChange:
    """One attribute-level change of a planned operation, for people to read: ``path``
    goes from ``old`` to ``new``.

    What a plan, a report and an audit event carry, unlike
    :class:`~scimsync.patch.AttributeChange`, the raw difference
    :func:`~scimsync.patch.changed_attributes` finds between two resources: this one
    is safe to show and to keep, and names referenced users by source key.

    ``old`` and ``new`` are JSON values. When the attribute is sensitive (writeOnly,
    ``returned: never``, or named in :attr:`Policy.sensitive_paths`) both are ``None``
    and ``sensitive`` is True: a plan never carries a secret into what it renders.

    ``old_key`` and ``new_key``, for a reference to another user (a manager): the
    source keys of the users whose account ids ``old`` and ``new`` are, when the plan
    knows them, so that a review reads ``"8f3c…" (E1) → "a86d…" (E2)``.
    """

    path: str
    old: Any = attrs.field(default=None, converter=jsonable)
    new: Any = attrs.field(default=None, converter=jsonable)
    sensitive: bool = False
    old_key: str | None = None
    new_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form plans and audit events use (keys only when known)."""
        out = {"path": self.path, "old": self.old, "new": self.new, "sensitive": self.sensitive}
        if self.old_key is not None:
            out["oldKey"] = self.old_key
        if self.new_key is not None:
            out["newKey"] = self.new_key
        return out


def _patch_tuple(values: Any) -> tuple[PatchOperation, ...]:
    return tuple(
        op
        if _is_plain(op.value)
        else PatchOperation(op=op.op, path=op.path, value=jsonable(op.value))
        for op in values
    )


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if type(value) is list:
        return all(_is_plain(item) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


@attrs.frozen(kw_only=True)
class Operation:
    """One write the plan asks for, with everything needed to send it and to explain it.

    - ``kind``: see :data:`OPERATION_KINDS`; ``resource_type``: ``"User"`` or ``"Group"``.
    - ``target_id``: the target's id, or the string form of a :class:`Placeholder` for
      a resource this plan creates (a create's own ``target_id`` is its placeholder).
    - ``source_key``: the source record it serves (for a deprovision, the key the
      account was linked to, when known).
    - ``patch``: the PATCH operations to send (RFC 7644 §3.5.2), when ``method`` is
      PATCH. ``body``: the whole resource for a create (POST) or a PUT; send it with
      ``to_scim(body, request=True)``.
    - ``members``: for ``add_members`` / ``remove_members``, the member ids (or
      placeholders) explicitly, for connectors to APIs that are not SCIM; ``patch``
      holds the same change in SCIM form.
    - ``changes``: attribute-level ``old → new`` for review; ``reason``: why, in words.
    """

    kind: str
    resource_type: str
    target_id: str
    source_key: str | None = None
    reason: str = ""
    patch: tuple[PatchOperation, ...] = attrs.field(default=(), converter=_patch_tuple)
    body: User | Group | None = None
    members: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    changes: tuple[PlannedChange, ...] = attrs.field(default=(), converter=to_tuple_or_empty)

    @property
    def method(self) -> str:
        """The HTTP method a SCIM target gets: POST, PUT, PATCH or DELETE."""
        if self.kind == "create":
            return "POST"
        if self.kind == "delete":
            return "DELETE"
        return "PUT" if self.body is not None else "PATCH"

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Placeholders this operation needs resolved before it can be sent, sorted.

        A create's own placeholder is not among them: it is what the create produces.
        """
        found: set[str] = set()
        if self.kind != "create" and is_placeholder(self.target_id):
            found.add(self.target_id)
        found.update(m for m in self.members if is_placeholder(m))
        for op in self.patch:
            _collect_placeholders(op.value, found)
        if self.body is not None:
            _collect_placeholders(self.body, found)
        return tuple(sorted(found))

    def body_patch(self) -> tuple[PatchOperation, ...]:
        """This whole-body update (a PUT) as the PATCH operations it amounts to.

        Each attribute it changes is replaced with the body's value (a multi-valued
        one whole: ``emails``, ``members``), or removed where the body no longer holds
        it (a managed attribute cleared in the source). A body can only *set*
        attributes on a target that keeps what it does not hold; these operations also
        clear, and a target without PATCH applies them to what it holds and PUTs the
        result. Empty for an operation without a body, and for a create.
        """
        from ._changes import body_patch

        return body_patch(self)

    def resolve(self, ids: Mapping[str, str]) -> Operation:
        """Return this operation with placeholders replaced by the ids in ``ids``.

        ``ids`` maps placeholder strings (``str(placeholder)``) to real ids; placeholders
        it does not hold stay as they are.
        """
        if not ids:
            return self
        body = _substitute(self.body, ids) if self.body is not None else None
        return attrs.evolve(
            self,
            target_id=ids.get(self.target_id, self.target_id),
            members=tuple(ids.get(m, m) for m in self.members),
            patch=tuple(
                PatchOperation(op=op.op, path=op.path, value=_substitute(op.value, ids))
                for op in self.patch
            ),
            body=body,
        )


def _collect_placeholders(value: Any, found: set[str]) -> None:
    """Every placeholder in a JSON value or a model (a member id, a manager's id)."""
    if type(value) is str:
        if value.startswith(PLACEHOLDER_PREFIX):
            found.add(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_placeholders(item, found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_placeholders(item, found)
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            if item is not None:
                _collect_placeholders(item, found)


def _substitute(value: Any, ids: Mapping[str, str]) -> Any:
    """``value`` with the placeholders ``ids`` holds replaced; the same object when none is."""
    if type(value) is str:
        return ids.get(value, value)
    if isinstance(value, (list, tuple)):
        items = [_substitute(item, ids) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Mapping):
        changed = {key: _substitute(item, ids) for key, item in value.items()}
        if all(changed[key] is item for key, item in value.items()):
            return value
        return changed
    if attrs.has(type(value)):
        changes = {}
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            if item is not None:
                new = _substitute(item, ids)
                if new is not item:
                    changes[field.name] = new
        return attrs.evolve(value, **changes) if changes else value
    return value


@attrs.frozen(kw_only=True)
class Conflict:
    """Identities the engine would have to guess about; none of them gets an operation.

    ``kind`` (see :data:`ConflictKind`):

    - ``duplicate_source_key``: the source holds the same key more than once;
    - ``duplicate_key_value``: source records share a match key value (two records
      with the userName ``bob`` and ``Bob``, which the target holds as one);
    - ``ambiguous_match``: one record matches several target accounts;
    - ``shared_account``: several records match the same account;
    - ``taken``: the account that matches belongs to another source key (the state
      links it to that key): a reused userName, typically;
    - ``unowned_match``: the record matches an account scimsync does not own and
      :attr:`Policy.adopt` is ``"fail"``.

    Accounts whose identity a conflict leaves uncertain are never deprovisioned or
    stripped of groups; an account ``taken`` by another key is that key's, and is
    deprovisioned when that key leaves the source.
    """

    kind: str
    resource_type: str
    source_keys: tuple[str, ...] = attrs.field(converter=to_tuple_or_empty)
    target_ids: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form plans and reports use."""
        return {
            "kind": self.kind,
            "resourceType": self.resource_type,
            "sourceKeys": list(self.source_keys),
            "targetIds": list(self.target_ids),
            "detail": self.detail,
        }


@attrs.frozen(kw_only=True)
class Skip:
    """A resource the plan deliberately leaves alone, and why (``adopt="ignore"``, ...)."""

    resource_type: str
    reason: str
    source_key: str | None = None
    target_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form plans and reports use."""
        return {
            "resourceType": self.resource_type,
            "sourceKey": self.source_key,
            "targetId": self.target_id,
            "reason": self.reason,
        }


@attrs.frozen(kw_only=True)
class Protection:
    """A source identity the plan takes nothing from: its record has an issue.

    The source holds the record ``source_key`` but could not describe it (an invalid
    value, a rule that failed on it, a key held by two records: see
    :attr:`~scimsync.models.DesiredState.protected_user_keys`), so its absence from
    the desired state is no departure. ``target_ids`` are the accounts protected for
    it, sorted: the one the state links the key to, and any account whose
    ``externalId`` is the key (unless the state links that account to another key).
    None of them is deactivated, deleted or removed from a group. Empty when no
    listed account is known to be the identity's; the plan then holds what it would
    take from accounts the state links to no key, which may be it (see
    :func:`~scimsync.engine.plan`). ``reason`` says what is wrong with the record.
    """

    resource_type: str
    source_key: str
    reason: str
    target_ids: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form plans and reports use."""
        return {
            "resourceType": self.resource_type,
            "sourceKey": self.source_key,
            "targetIds": list(self.target_ids),
            "reason": self.reason,
        }


@attrs.frozen(kw_only=True)
class GuardTrip:
    """A guard whose condition held. Unless ``forced``, it held ``held`` operations.

    ``name`` is one of :data:`GUARDS`; ``reason`` says what was seen, with numbers.
    """

    name: str
    reason: str
    forced: bool = False
    held: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form plans and reports use."""
        return {"name": self.name, "reason": self.reason, "forced": self.forced, "held": self.held}


def blocked_message(
    guards: Iterable[GuardTrip], held: int, *, again: str = "plan again", then: str = ""
) -> str | None:
    """What to tell people when guards held operations, or None when none did: how
    many, by which guards, and how to go past them once reviewed.

    ``again`` says what to do with the guard names (``"plan again"``, ``"run again"``),
    ``then`` what follows (``", then apply the new plan"``). The command's ``plan`` and
    ``apply`` and :class:`~scimsync.SyncReport` all say it with these words::

        >>> print(blocked_message([GuardTrip(name="max_deprovisions", reason="...")], 3))
        Blocked: 3 operations held by max_deprovisions. Review them; if they are meant, \
plan again with --force max_deprovisions (force=['max_deprovisions'] in Python).
    """
    names = [trip.name for trip in guards if not trip.forced]
    if not names:
        return None
    flags = " ".join(f"--force {name}" for name in names)
    listed = ", ".join(names)
    return (
        f"Blocked: {held} operation{'' if held == 1 else 's'} held by {listed}. Review them; "
        f"if they are meant, {again} with {flags} (force={names!r} in Python){then}."
    )


@attrs.frozen(kw_only=True)
class Link:
    """A source key newly tied to a target resource: what the next state remembers.

    ``target_id`` is a placeholder for resources the plan creates. ``matched_by`` is
    the match key that found the account (``"create"`` for new resources);
    ``adopted`` is True when the account was not owned before this plan.
    """

    resource_type: str
    source_key: str
    target_id: str
    matched_by: str
    adopted: bool = False


_LINK_FIELDS = ("resource_type", "source_key", "target_id", "matched_by", "adopted")


def _plain_slots(cls: type, names: tuple[str, ...]) -> bool:
    """True when ``cls``'s ``__init__`` only stores ``names``: no validator, converter,
    init hook or cached hash, nothing else in its slots. Then setting the slots is
    building it."""
    fields = attrs.fields(cls)
    return (
        tuple(field.name for field in fields) == names
        and all(field.validator is None and field.converter is None for field in fields)
        and not hasattr(cls, "__attrs_pre_init__")
        and not hasattr(cls, "__attrs_post_init__")
        and set(getattr(cls, "__slots__", ("__dict__",))) <= {*names, "__weakref__"}
    )


# Checked at import, so a change to Link fails loudly instead of being bypassed.
if not _plain_slots(Link, _LINK_FIELDS):  # pragma: no cover - a guard for developers
    raise TypeError("Link is no longer plain slots: review new_link() before changing it")
_LINK_SETTERS = tuple(getattr(Link, name).__set__ for name in _LINK_FIELDS)


def new_link(
    resource_type: str, source_key: str, target_id: str, matched_by: str, adopted: bool
) -> Link:
    """``Link(resource_type=..., ...)`` at half the cost of its keyword ``__init__``
    (the slots are set directly): a first cycle makes one per account."""
    link: Link = object.__new__(Link)
    set_type, set_key, set_id, set_how, set_adopted = _LINK_SETTERS
    set_type(link, resource_type)
    set_key(link, source_key)
    set_id(link, target_id)
    set_how(link, matched_by)
    set_adopted(link, adopted)
    return link
