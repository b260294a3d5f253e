"""The policy: every choice the engine makes that a person may want to make differently."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

import attrs

from ..errors import ConfigurationError
from ..schema import CORE_SCHEMAS, SchemaTable, split_urn

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "AdoptMode",
    "DeprovisionMode",
    "GUARDS",
    "GroupDeprovisionMode",
    "Policy",
    "UpdateMethod",
]

AdoptMode = Literal["adopt", "ignore", "fail"]
"""What to do with an existing account the engine does not own that matches a source record."""

DeprovisionMode = Literal["deactivate", "delete", "none"]
"""What happens to an owned account whose identity left the source."""

GroupDeprovisionMode = Literal["delete", "none"]
"""What happens to an owned group that left the source."""

UpdateMethod = Literal["patch", "put"]
"""How existing resources are changed: minimal PATCH, or a full PUT for targets without PATCH."""

#: Attributes no target may ignore: what identifies a resource, and memberships.
_NEVER_IGNORED = frozenset({"id", "meta", "schemas", "members", "groups"})

#: The guards, by the name :attr:`Policy.force` and :class:`GuardTrip` use.
GUARDS: tuple[str, ...] = ("incomplete_listing", "source_shrink", "max_deprovisions")


def _frozen_names(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):  # force="source_shrink" means one guard, not its letters
        return frozenset((values,))
    return frozenset(values)


def _tuple_of_str(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    return tuple(values)


@attrs.frozen(kw_only=True)
class Policy:
    """How :func:`~scimsync.engine.plan` matches, owns, deprovisions and guards.

    The defaults are the safe ones: match by ``externalId`` then ``userName``; never
    take over an account scimsync does not own (``adopt="fail"`` reports it as a
    conflict); deactivate people who left rather than delete them (groups that left
    are deleted: they have no ``active``); hold deprovisions when more than 50
    accounts or 10 % of the owned ones would go, when the source shrank by more than
    10 % since the last cycle, or when either listing was incomplete.

    - ``match_keys`` / ``group_match_keys``: singular attributes compared in order to
      find the target account of a source record (URN-qualified paths work for
      extensions). Values compare per the schema's ``caseExact``.
    - ``adopt``: an existing account that matches but is not owned is taken over
      (``"adopt"``), left alone (``"ignore"``), or reported as a conflict (``"fail"``).
    - ``deprovision``: ``"deactivate"`` (``active=false``), ``"delete"`` (with
      ``delete_after_days``: deactivate first, delete once the account has been
      deactivated that long), or ``"none"``.
    - ``group_deprovision``: an owned group that left the source is deleted
      (``"delete"``, the default: a group has no ``active`` to switch off), or left
      alone (``"none"``).
    - ``max_deprovisions`` / ``max_deprovisions_percent``: the most deactivations and
      deletions one plan may hold per resource type, as a count and as a percentage
      of the owned accounts of that type. ``None`` switches a limit off.
    - ``max_source_shrink``: the largest drop of the source's size against the last
      cycle, in percent. An empty source never deprovisions, whatever this says.
    - ``max_members_per_operation``: group member changes per request (targets cap it).
    - ``update_method``: ``"patch"`` sends minimal PATCH operations; ``"put"`` sends
      the whole resource, keeping the attributes the mapping does not manage.
    - ``force``: guard names (see :data:`GUARDS`) to go past; the plan records it.
    - ``external_id_prefix``: target accounts whose ``externalId`` starts with it are
      owned even without a record in the state (a lost state store, a first cycle).
    - ``sensitive_paths``: attribute paths whose values :meth:`Plan.render` masks, on
      top of the writeOnly and ``returned: never`` ones of the schema.
    - ``ignore_paths`` / ``group_ignore_paths``: attribute paths never compared nor
      written on this target (``"title"``, ``"emails.type"``, URN-qualified extension
      paths): what it does not keep, or manages itself. The runner adds the paths it
      learns the target does not keep (:attr:`Ledger.unkept`). Required attributes
      (``userName``), ``members`` and the ``value`` of a multi-valued attribute
      (``emails.value``: ignore ``emails``) cannot be ignored.
    - ``schema``: the target's schema table (``caseExact``, mutability).
    """

    match_keys: tuple[str, ...] = attrs.field(
        default=("externalId", "userName"), converter=_tuple_of_str
    )
    group_match_keys: tuple[str, ...] = attrs.field(
        default=("externalId", "displayName"), converter=_tuple_of_str
    )
    adopt: AdoptMode = "fail"
    deprovision: DeprovisionMode = "deactivate"
    delete_after_days: int | None = None
    group_deprovision: GroupDeprovisionMode = "delete"
    max_deprovisions: int | None = 50
    max_deprovisions_percent: float | None = 10.0
    max_source_shrink: float | None = 10.0
    max_members_per_operation: int = 100
    update_method: UpdateMethod = "patch"
    force: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_names)
    external_id_prefix: str | None = None
    sensitive_paths: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    ignore_paths: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    group_ignore_paths: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    schema: SchemaTable = attrs.field(default=CORE_SCHEMAS, repr=False)

    def __attrs_post_init__(self) -> None:
        problems = [
            *self._choice_problems(),
            *self._number_problems(),
            *self._key_problems(),
            *self._ignore_problems(),
        ]
        unknown = sorted(self.force - set(GUARDS))
        if unknown:
            problems.append(f"force: unknown guards {unknown}; known: {list(GUARDS)}")
        if problems:
            raise ConfigurationError("invalid policy: " + "; ".join(problems))

    def _choice_problems(self) -> list[str]:
        problems = []
        for name, allowed in (
            ("adopt", AdoptMode),
            ("deprovision", DeprovisionMode),
            ("group_deprovision", GroupDeprovisionMode),
            ("update_method", UpdateMethod),
        ):
            value = getattr(self, name)
            if value not in get_args(allowed):
                problems.append(f"{name}: {value!r} is not one of {list(get_args(allowed))}")
        return problems

    def _number_problems(self) -> list[str]:
        problems = []
        for name in ("delete_after_days", "max_deprovisions"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                problems.append(f"{name}: expected a non-negative integer, got {value!r}")
        for name in ("max_deprovisions_percent", "max_source_shrink"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if value is not None and not (ok and 0 <= value <= 100):
                problems.append(f"{name}: expected a percentage from 0 to 100, got {value!r}")
        members = self.max_members_per_operation
        if type(members) is not int or members < 1:
            problems.append(f"max_members_per_operation: expected at least 1, got {members!r}")
        if self.delete_after_days is not None and self.deprovision != "delete":
            problems.append("delete_after_days: only meaningful with deprovision='delete'")
        return problems

    def _ignore_problems(self) -> list[str]:
        from ..errors import InvalidPathError
        from ._ignore import parse_ignored

        problems = []
        for name, resource_type, paths in (
            ("ignore_paths", "User", self.ignore_paths),
            ("group_ignore_paths", "Group", self.group_ignore_paths),
        ):
            for text in paths:
                try:
                    path = parse_ignored(text, resource_type, self.schema)
                except InvalidPathError as exc:
                    problems.append(f"{name}: {exc}")
                    continue
                if path.value_filter is not None:
                    problems.append(f"{name}: {text!r}: an ignored path names no value filter")
                    continue
                spec = self.schema.resolve(resource_type, path.text)
                if path.attribute.lower() in _NEVER_IGNORED or (spec is not None and spec.required):
                    problems.append(f"{name}: {text!r} cannot be ignored")
                elif path.sub is not None and path.sub.lower() == "value":
                    top = self.schema.resolve(resource_type, path._replace(sub=None).text)
                    if top is not None and top.multi_valued:
                        # Left out, values would be created and added without one.
                        problems.append(
                            f"{name}: {text!r} cannot be ignored, it is what each value "
                            f"is: ignore {path.attribute!r}"
                        )
        return problems

    def _key_problems(self) -> list[str]:
        problems = []
        for name, resource_type, keys in (
            ("match_keys", "User", self.match_keys),
            ("group_match_keys", "Group", self.group_match_keys),
        ):
            if not keys:
                problems.append(f"{name}: at least one key is needed")
            for key in keys:
                spec = self.schema.resolve(resource_type, key)
                if spec is None:
                    problems.append(f"{name}: {resource_type} has no attribute {key!r}")
                elif spec.multi_valued or spec.complex or spec.type not in ("string", "reference"):
                    problems.append(f"{name}: {key!r} is not a singular string attribute")
                elif spec.read_only:
                    problems.append(f"{name}: {key!r} is readOnly, the source cannot set it")
                elif (within := self._multi_valued_parent(resource_type, key)) is not None:
                    problems.append(
                        f"{name}: {key!r} is in the multi-valued {within!r}: a resource "
                        "holds several of it, not one value to match by"
                    )
        return problems

    def _multi_valued_parent(self, resource_type: str, key: str) -> str | None:
        """The multi-valued attribute a sub-attribute path such as ``emails.value`` is in."""
        urn, rest = split_urn(key, self.schema.extension_urns(resource_type))
        head, dot, _ = rest.partition(".")
        if not dot:
            return None
        parent = self.schema.resolve(resource_type, f"{urn}:{head}" if urn else head)
        return head if parent is not None and parent.multi_valued else None
