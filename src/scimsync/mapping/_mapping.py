"""The declarative mapping from source records to desired SCIM resources."""

from __future__ import annotations

import collections.abc as cabc
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import from_scim, to_scim
from ..errors import ConfigurationError, ResourceValidationError
from ..models import DesiredGroup, DesiredState, DesiredUser, Group, User
from ..schema import CORE_SCHEMAS
from ..sources._records import IssueCode, Record, RecordIssue
from ._paths import TargetPath, multi_valued, parse_target
from ._rules import (
    CONTROL_CHARACTER,
    CONTROL_CHARACTER_BUT_LINE_BREAKS,
    InvalidRecordValueError,
    Rule,
    RuleLike,
    _Key,
    allows_line_breaks,
    nested_reference,
    reference_of,
    to_rule,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..schema import SchemaTable
    from ..sources._protocol import AsyncSource, Source, SourceItem
    from ..sources._records import RecordKind
    from ._check import MappingCheck

__all__ = ["Mapping", "MappingResult", "Preview", "PreviewItem"]

#: How many keys an issue message lists before it says "and N more".
_LISTED = 10


def _multi_line_subs(entry: Entry) -> frozenset[str]:
    """The sub-attributes holding multi-line text in what the entry writes, as values of
    whole elements (``addresses`` written from a list of objects)."""
    path = entry.path
    if path.urn is None and path.attribute == "addresses" and path.sub is None:
        return frozenset({"formatted"})
    return frozenset()


def _control_search(entry: Entry) -> Callable[[str], re.Match[str] | None]:
    """What finds a control character the entry's text may not hold: line breaks are
    allowed in ``addresses.formatted`` and in :func:`multi_line` rules."""
    path = entry.path
    if allows_line_breaks(entry.rule) or (
        path.urn is None and path.attribute == "addresses" and path.sub == "formatted"
    ):
        return CONTROL_CHARACTER_BUT_LINE_BREAKS.search
    return CONTROL_CHARACTER.search


@attrs.frozen(kw_only=True)
class Entry:
    """One line of a mapping: where a value goes, and the rule that computes it."""

    label: str
    section: str
    path: TargetPath
    rule: Rule
    multi_valued: bool
    complex: bool
    #: True when the rule gives another user's source key (:func:`ref`), not a value.
    #: Worked out once: every record reads it.
    reference: bool = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: reference_of(self.rule) is not None, takes_self=True),
    )
    #: Finds a control character in a text value (a compiled pattern's ``search``);
    #: worked out once, as every value of every record goes through it.
    control: Callable[[str], re.Match[str] | None] = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(_control_search, takes_self=True)
    )
    #: Sub-attributes of whole elements that may hold line breaks (``formatted``).
    multi_line_subs: frozenset[str] = attrs.field(
        init=False, repr=False, default=attrs.Factory(_multi_line_subs, takes_self=True)
    )

    def control_in(self, value: Any) -> str | None:
        """The first control character ``value`` may not hold (text, or text inside
        lists and objects), or None."""
        if isinstance(value, str):
            found = None if value.isprintable() else self.control(value)
            return found.group() if found is not None else None
        if isinstance(value, list):
            for item in value:
                character = self.control_in(item)
                if character is not None:
                    return character
        elif isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, str) and str(name).lower() in self.multi_line_subs:
                    found = CONTROL_CHARACTER_BUT_LINE_BREAKS.search(item)
                    if found is not None:
                        return found.group()
                    continue
                character = self.control_in(item)
                if character is not None:
                    return character
        return None

    @property
    def manages(self) -> bool:
        """True when an empty value clears what the target holds (see :class:`Mapping`)."""
        return self.rule.clears and bool(self.path.attribute)

    def assign(self, data: dict[str, Any], value: Any) -> None:
        """Write ``value`` into the SCIM JSON ``data`` being built for one record."""
        path = self.path
        container = data if path.urn is None else data.setdefault(path.urn, {})
        if not path.attribute:
            container.update(value)  # a whole extension object
            return
        name = path.attribute
        if path.conditions is not None:
            element = _element(container.setdefault(name, []), path.conditions)
            if path.sub is None:
                element.update(value)
            else:
                element[path.sub] = value
        elif path.sub is None:
            if self.multi_valued and self.complex:
                container[name] = _elements(value, "value")
            else:
                container[name] = value
        elif self.multi_valued:
            container[name] = _elements(value, path.sub)
        else:
            container.setdefault(name, {})[path.sub] = value


def _elements(value: Any, sub: str) -> Any:
    """Values for a multi-valued complex attribute: plain values become ``{sub: value}``."""
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, dict) else {sub: item} for item in items]


def _element(elements: list[dict[str, Any]], conditions: tuple[tuple[str, Any], ...]) -> Any:
    for element in elements:
        if all(element.get(name) == value for name, value in conditions):
            return element
    element = dict(conditions)
    elements.append(element)
    return element


@attrs.frozen(kw_only=True)
class MappingResult:
    """What a mapping made of a source read: the desired state, and every issue.

    ``desired.complete`` is False when the read stopped early or when a record in
    scope that nobody can name did not make it into the desired state; a keyed record
    with an issue is protected instead (``desired.protected_user_keys`` /
    ``protected_group_keys``, see :class:`Mapping`). ``issues`` says which and why.
    ``unread_fields`` lists the source fields that records carry and no declarative
    rule reads, so a column nobody maps is never dropped without a word;
    ``callables_read`` says callables may read some of them (what a callable reads
    cannot be known).
    """

    desired: DesiredState
    issues: tuple[RecordIssue, ...] = ()
    records: int = 0
    out_of_scope: int = 0
    unread_fields: tuple[str, ...] = ()
    callables_read: bool = False

    @property
    def complete(self) -> bool:
        """True when the desired state holds every identity of the source in scope."""
        return self.desired.complete

    def __str__(self) -> str:
        desired = self.desired
        protected = len(desired.protected_user_keys) + len(desired.protected_group_keys)
        lines = [
            f"{self.records} records: {len(desired.users)} users, {len(desired.groups)} groups,"
            f" {self.out_of_scope} out of scope, {len(self.issues)} issues;"
            f" {'complete' if desired.complete else 'INCOMPLETE'}"
            + (f", {protected} protected" if protected else "")
        ]
        lines.extend(f"  {issue}" for issue in self.issues)
        if self.unread_fields:
            maybe = " (callables may read them)" if self.callables_read else ""
            lines.append(f"  source fields no rule reads: {', '.join(self.unread_fields)}{maybe}")
        return "\n".join(lines)


@attrs.frozen(kw_only=True)
class PreviewItem:
    """What one record becomes: the desired resource, or why it becomes nothing."""

    record: Record | None
    in_scope: bool
    desired: DesiredUser | DesiredGroup | None
    issues: tuple[RecordIssue, ...] = ()
    unread_fields: tuple[str, ...] = ()

    def scim(self) -> dict[str, Any] | None:
        """The desired resource as SCIM JSON (create-only attributes included, masked)."""
        if self.desired is None:
            return None
        if isinstance(self.desired, DesiredGroup):
            data = to_scim(self.desired.group, request=True)
            if self.desired.member_keys:
                data["members (source keys)"] = list(self.desired.member_keys)
            return data
        data = to_scim(self.desired.user, request=True)
        if self.desired.references:
            data["references (source keys)"] = dict(self.desired.references)
        if self.desired.create_only is not None:
            create_only = to_scim(self.desired.create_only, request=True)
            create_only.pop("schemas", None)
            data["on create only"] = create_only
        masked: dict[str, Any] = _masked(data)
        return masked

    def __str__(self) -> str:
        where = self.record.where() if self.record is not None else "record"
        if not self.in_scope:
            return f"{where}: out of scope"
        lines = [f"{where}:"]
        lines.extend(f"  ! {issue.code.value}: {issue.reason}" for issue in self.issues)
        scim = self.scim()
        if scim is not None:
            lines.extend("  " + line for line in json.dumps(scim, indent=2).splitlines())
        if self.unread_fields:
            lines.append(f"  unread fields: {', '.join(self.unread_fields)}")
        return "\n".join(lines)


def _masked(data: Any) -> Any:
    # A preview is for people and logs: write-only values (passwords) never show.
    if isinstance(data, dict):
        return {k: "********" if k.lower() == "password" else _masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v) for v in data]
    return data


@attrs.frozen(kw_only=True)
class Preview:
    """What a few records become: one :class:`PreviewItem` each, and the whole result."""

    items: tuple[PreviewItem, ...]
    result: MappingResult

    def __str__(self) -> str:
        return "\n".join([*map(str, self.items), str(self.result)])


class Mapping:
    """Turns source records into desired SCIM users and groups, declaratively.

    Each entry maps a target path to a rule::

        from scimsync.mapping import Mapping, boolean, lower, split, template

        mapping = Mapping(
            users={
                "userName": lower("email"),
                "name.givenName": "first_name",            # a string copies that field
                "name.familyName": "last_name",
                "displayName": template("{first_name} {last_name}"),
                'emails[type eq "work"].value': lower("email"),
                'emails[type eq "work"].primary': True,   # other values are constants
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "dept",
                "active": boolean("status", true={"active"}, false={"left", "leave"}),
            },
            create_only={"password": lambda record: make_initial_password()},
            member_of=split("groups", ";"),
            scope=lambda record: record["type"] != "contractor",
        )
        result = mapping.map(source)   # MappingResult(desired, issues, ...)

    Target paths: plain, dotted, URN-qualified (enterprise or custom extensions) and
    filtered (``emails[type eq "work"].value``: the element is created with
    ``type: "work"`` when the record has a value for it). Values: see
    :func:`~scimsync.mapping.to_rule`. ``externalId`` is the record's key unless the
    mapping says otherwise (map ``"externalId": None`` to leave it out).

    - ``users`` / ``groups``: rules for user records and for group records.
    - ``create_only``: user attributes sent when the user is created and never
      compared afterwards (an initial password).
    - ``member_of``: a rule giving, for a user record, the keys of the groups it
      belongs to; groups named this way and not read as group records are created
      with the key as ``displayName``. Group records' own members are added.
    - ``scope``: a predicate on records; records for which it is false are left out
      on purpose (they are not issues, and not members of any group).

    **Managed attributes are cleared.** Every mapped attribute is managed: when a
    record has no value for it (HR removed someone's title or phone), the sync
    removes the target's value, rather than leave a stale one forever
    (:attr:`~scimsync.models.DesiredState.managed_user_attributes`). Wrap a rule in
    :func:`~scimsync.mapping.keep_when_empty` for attributes the target fills in
    itself; ``None`` as a rule leaves the attribute out altogether; create-only
    attributes are never cleared, nor is ``active`` (deactivation is the sync's own
    business), nor a whole extension object written by one rule.

    **References.** :func:`~scimsync.mapping.ref` maps an attribute holding another
    user's target id from that user's *source key* (the enterprise
    ``manager.value`` from an employee key). A key that is no user of the source is
    an ``UNKNOWN_REFERENCE`` issue (it does not make the desired state incomplete).

    Problems are values, never exceptions that stop the rest: a record that cannot be
    mapped becomes a :class:`~scimsync.sources.RecordIssue` with its key or line and
    the reason.

    **A bad record protects its own identity, not everyone's.** Such a record's
    identity is missing from the desired state, yet still in the source, so the
    engine must not read its absence as a departure:

    - when its key is known (an invalid value, a rule that failed on it, a key held
      by two records), the key is *protected*, with the reason
      (:attr:`~scimsync.models.DesiredState.protected_user_keys` /
      ``protected_group_keys``): its account is neither deactivated nor deleted nor
      removed from any group, and every other deprovision of the cycle goes ahead.
      A group that only user records with an issue name (``member_of``) is
      protected the same way;
    - when nobody can name it for certain (a record without a key; a record the
      source could not read, ``MALFORMED``, whose key may be another column's value; a
      read that stopped; a ``member_of`` rule that failed, since any group may be one
      it names), the desired state is incomplete and the engine deprovisions no one.
      A key such a record did give is protected too, should the guard be forced.

    ``UNKNOWN_MEMBER`` and ``UNKNOWN_REFERENCE`` lose no identity: they do neither.

    **Duplicate keys.** When two records in scope share a key, neither is used: each
    gets a ``DUPLICATE_KEY`` issue naming the lines of the others, and the key is
    protected. Picking one (first or last wins) would let one record silently
    overwrite another; dropping both without protecting the key would remove a
    person who is still there.
    """

    def __init__(
        self,
        users: cabc.Mapping[str, RuleLike] | None = None,
        *,
        groups: cabc.Mapping[str, RuleLike] | None = None,
        create_only: cabc.Mapping[str, RuleLike] | None = None,
        member_of: RuleLike = None,
        scope: Callable[[Record], object] | None = None,
    ) -> None:
        self.users: dict[str, RuleLike] = dict(users or {})
        self.groups: dict[str, RuleLike] | None = dict(groups) if groups is not None else None
        self.create_only: dict[str, RuleLike] = dict(create_only or {})
        self.member_of: Rule | None = to_rule(member_of) if member_of is not None else None
        self.scope = scope
        self.user_entries = _compile("users", self.users, User, default_external_id=True)
        self.create_only_entries = _compile(
            "create_only", self.create_only, User, default_external_id=False
        )
        self.group_entries = _compile("groups", self.groups or {}, Group, default_external_id=True)
        _check_disjoint(self.user_entries, self.create_only_entries)
        _check_references(self.user_entries, self.create_only_entries, self.group_entries)
        self._user_required = _required_attributes("User")
        self._group_required = _required_attributes("Group")
        self._reads = frozenset().union(
            *(e.rule.reads for e in (*self.user_entries, *self.create_only_entries)),
            *(e.rule.reads for e in self.group_entries),
            self.member_of.reads if self.member_of is not None else (),
        )

    def __repr__(self) -> str:
        parts = [f"users={self.users!r}"]
        if self.groups is not None:
            parts.append(f"groups={self.groups!r}")
        if self.create_only:
            parts.append(f"create_only=<{len(self.create_only)} entries>")
        if self.member_of is not None:
            parts.append(f"member_of={self.member_of!r}")
        if self.scope is not None:
            parts.append(f"scope={self.scope!r}")
        return f"Mapping({', '.join(parts)})"

    @property
    def uses_groups(self) -> bool:
        """True when the mapping makes groups (``groups=`` rules or a ``member_of=``
        rule): its target must keep groups (the :class:`~scimsync.targets.GroupTarget`
        methods)."""
        return self.groups is not None or self.member_of is not None

    @property
    def managed_user_attributes(self) -> tuple[str, ...]:
        """The user attribute paths this mapping manages: what it leaves empty is cleared."""
        return tuple(sorted({e.path.path for e in self.user_entries if e.manages}))

    @property
    def managed_group_attributes(self) -> tuple[str, ...]:
        """The group attribute paths this mapping manages."""
        return tuple(sorted({e.path.path for e in self.group_entries if e.manages}))

    @property
    def kept_user_attributes(self) -> tuple[str, ...]:
        """The user attribute paths this mapping writes but never clears
        (:func:`~scimsync.mapping.keep_when_empty`)."""
        return tuple(sorted({e.path.path for e in self.user_entries if not e.manages}))

    @property
    def kept_group_attributes(self) -> tuple[str, ...]:
        """The group attribute paths this mapping writes but never clears."""
        return tuple(sorted({e.path.path for e in self.group_entries if not e.manages}))

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every line of the mapping, compiled, in the order written."""
        return (*self.user_entries, *self.create_only_entries, *self.group_entries)

    @property
    def reads(self) -> frozenset[str]:
        """The source fields the declarative rules read (callables' reads are unknown)."""
        return self._reads

    @property
    def opaque(self) -> bool:
        """True when a callable (a rule or the scope) may read fields no one can list."""
        rules = [entry.rule for entry in self.entries]
        if self.member_of is not None:
            rules.append(self.member_of)
        return self.scope is not None or any(rule.opaque for rule in rules)

    # -- running ----------------------------------------------------------------------

    def map(self, source: Source | Iterable[SourceItem]) -> MappingResult:
        """Read ``source`` and return the desired state with every issue.

        ``source`` is a :class:`~scimsync.sources.Source` or any iterable of records
        and issues. The read streams; what is kept is the desired state itself.
        """
        return self._map_items(_items(source), _source_fields(source))

    async def amap(self, source: AsyncSource | Source | Iterable[SourceItem]) -> MappingResult:
        """Like :meth:`map`, for async sources too; a sync source is read in a thread."""
        items: Any = _items(source)
        if not hasattr(items, "__anext__"):
            import asyncio

            return await asyncio.to_thread(self._map_items, items, _source_fields(source))
        builder = _Builder(self, _source_fields(source))
        async for item in items:
            builder.add(item)
        return builder.finish()

    def _map_items(self, items: Iterable[SourceItem], used: frozenset[str]) -> MappingResult:
        builder = _Builder(self, used)
        for item in items:
            builder.add(item)
        return builder.finish()

    def preview(
        self, records: Source | Iterable[SourceItem | cabc.Mapping[str, Any]], limit: int = 10
    ) -> Preview:
        """Show what the first ``limit`` records become, to test a mapping before it runs.

        ``records`` may be a source, records, or plain dicts (read as user records,
        keyed by their ``"id"``). Each item says whether the record is in scope, the
        desired resource as SCIM JSON (passwords masked), the record's issues, and its
        fields that no rule reads.
        """
        items: Iterable[Any] = _items(records)
        # Plain dicts are keyed by their "id", which is then no unread field.
        source_fields = _source_fields(records) | {"id"}
        builder = _Builder(self, source_fields)
        taken: list[Any] = []
        for index, raw in enumerate(items, 1):
            if len(taken) >= limit:
                break
            item = (
                raw if isinstance(raw, (Record, RecordIssue)) else _record_from_mapping(raw, index)
            )
            taken.append(item)
            builder.add(item)
        result = builder.finish()
        previews = tuple(self._preview_item(item, result, source_fields) for item in taken)
        return Preview(items=previews, result=result)

    def _preview_item(
        self, item: Record | RecordIssue, result: MappingResult, source_fields: frozenset[str]
    ) -> PreviewItem:
        if isinstance(item, RecordIssue):
            return PreviewItem(record=None, in_scope=True, desired=None, issues=(item,))
        issues = tuple(
            issue
            for issue in result.issues
            if (issue.line, issue.origin, issue.kind) == (item.line, item.origin, item.kind)
            or (issue.key is not None and issue.key == item.key and issue.kind == item.kind)
        )
        unread = tuple(sorted(set(item.attributes) - self._reads - source_fields))
        try:
            in_scope = self.scope is None or bool(self.scope(item))
        except Exception:
            in_scope = True  # the issue says why
        if not in_scope:
            return PreviewItem(record=item, in_scope=False, desired=None)
        desired: DesiredUser | DesiredGroup | None = None
        if item.key is not None and item.kind == "user":
            desired = next((u for u in result.desired.users if u.key == item.key), None)
        elif item.key is not None:
            desired = next((g for g in result.desired.groups if g.key == item.key), None)
        return PreviewItem(
            record=item, in_scope=True, desired=desired, issues=issues, unread_fields=unread
        )

    def check(
        self,
        schema: SchemaTable = CORE_SCHEMAS,
        *,
        source: object | None = None,
        fields: Iterable[str] | None = None,
    ) -> MappingCheck:
        """Check the mapping against a target's schema table (and the source's fields).

        Every mapped attribute must exist on the target (an attribute the target lacks
        would be lost), have a compatible type, and be writable (readOnly never;
        immutable only under ``create_only``); every required attribute must be
        mapped. Given the ``source`` (one with a ``fields()`` method, such as
        :class:`~scimsync.sources.CsvSource`) or its field names (``fields``), every
        field a rule reads must exist, and the fields no rule reads are listed.

        Returns every problem with the mapping line it comes from; a blocking one
        means the mapping must not be used to write.
        """
        from ._check import check_mapping

        return check_mapping(self, schema, source, fields)

    # -- one record ---------------------------------------------------------------------

    def map_user(self, record: Record) -> DesiredUser | RecordIssue:
        """Map one user record (scope and duplicates aside): a desired user or an issue."""
        if record.key is None:
            return _issue(record, IssueCode.NO_KEY, "the record has no key")
        references: dict[str, str] = {}
        built = _build(self.user_entries, record, references)
        if isinstance(built, RecordIssue):
            return built
        missing = [name for name in self._user_required if built.get(name) in (None, "", [])]
        user = _structure(built, User, record)
        if isinstance(user, RecordIssue):
            return user
        create_only: User | None = None
        if self.create_only_entries:
            built_create = _build(self.create_only_entries, record)
            if isinstance(built_create, RecordIssue):
                return built_create
            missing = [name for name in missing if built_create.get(name) in (None, "", [])]
            if built_create:
                structured = _structure(built_create, User, record)
                if isinstance(structured, RecordIssue):
                    return structured
                create_only = structured
        if missing:
            return _issue(record, IssueCode.INVALID_VALUE, _required_reason(missing))
        return DesiredUser(
            key=record.key, user=user, create_only=create_only, references=references
        )

    def map_group(self, record: Record, member_keys: tuple[str, ...]) -> DesiredGroup | RecordIssue:
        """Map one group record: a desired group (with ``member_keys``) or an issue."""
        if record.key is None:
            return _issue(record, IssueCode.NO_KEY, "the record has no key")
        if self.groups is None:
            return _issue(
                record,
                IssueCode.MAPPING_FAILED,
                "the source has group records and the mapping has no groups= rules",
            )
        built = _build(self.group_entries, record)
        if isinstance(built, RecordIssue):
            return built
        missing = [name for name in self._group_required if built.get(name) in (None, "", [])]
        if missing:
            return _issue(record, IssueCode.INVALID_VALUE, _required_reason(missing))
        group = _structure(built, Group, record)
        if isinstance(group, RecordIssue):
            return group
        return DesiredGroup(key=record.key, group=group, member_keys=member_keys)


def _items(source: Any) -> Any:
    """The items of a source's fresh read, or the iterable itself."""
    read = getattr(source, "read", None)
    return read() if callable(read) else source


def _source_fields(source: object) -> frozenset[str]:
    """Fields a source itself consumes (its key and members fields): never "unread"."""
    found: set[str] = set()
    for name in ("key", "group_key", "members"):
        value = getattr(source, name, None)
        if isinstance(value, str):
            found.add(value)
    for inner in getattr(source, "sources", ()) or ():
        found |= _source_fields(inner)
    return frozenset(found)


def _record_from_mapping(item: Any, position: int) -> Record | RecordIssue:
    if not isinstance(item, cabc.Mapping):
        return RecordIssue(
            code=IssueCode.MALFORMED,
            reason=f"expected a record or a mapping of fields, got {type(item).__name__}",
            line=position,
        )
    raw = item.get("id")
    return Record(
        key=str(raw) if raw not in (None, "") else None, attributes=dict(item), line=position
    )


def _issue(record: Record, code: IssueCode, reason: str) -> RecordIssue:
    return RecordIssue(
        code=code,
        reason=reason,
        key=record.key,
        line=record.line,
        kind=record.kind,
        origin=record.origin,
    )


def _control_issue(record: Record, label: str, character: str | None) -> RecordIssue:
    """INVALID_VALUE for a value holding a control character (the value is not shown:
    it may be a secret)."""
    code = f"U+{ord(character):04X}" if character else "a control character"
    reason = f"{label}: the value holds a control character ({code}), which is never sent"
    if character is not None and character in "\t\n\r":
        reason += "; line breaks and tabs only go in addresses.formatted and multi_line() rules"
    return _issue(record, IssueCode.INVALID_VALUE, reason)


def _required_reason(missing: list[str]) -> str:
    return f"required attribute{'s' if len(missing) > 1 else ''} {', '.join(missing)} empty"


def _build(
    entries: tuple[Entry, ...], record: Record, references: dict[str, str] | None = None
) -> dict[str, Any] | RecordIssue:
    """The SCIM JSON the entries make of ``record``; references (source keys) go into
    ``references`` by path, not into the JSON."""
    data: dict[str, Any] = {}
    pruned: set[str] | None = None
    for entry in entries:
        try:
            value = entry.rule(record)
        except InvalidRecordValueError as exc:
            return _issue(record, IssueCode.INVALID_VALUE, f"{entry.label}: {exc}")
        except Exception as exc:
            reason = f"{entry.label}: {entry.rule!r} raised {type(exc).__name__}: {exc}"
            return _issue(record, IssueCode.MAPPING_FAILED, reason)
        if value is None:
            continue
        # The mapping is a hot path: str.isprintable() passes most text at once (no
        # control character passes it), a precompiled search decides for the rest.
        if value.__class__ is str:
            if not value.isprintable() and entry.control(value) is not None:
                return _control_issue(record, entry.label, entry.control_in(value))
        elif isinstance(value, (list, dict)):
            character = entry.control_in(value)
            if character is not None:
                return _control_issue(record, entry.label, character)
        if references is not None and entry.reference:
            references[entry.path.path] = value
            continue
        try:
            entry.assign(data, value)
        except (TypeError, ValueError, AttributeError) as exc:
            reason = f"{entry.label}: cannot place {value!r} there ({exc})"
            return _issue(record, IssueCode.INVALID_VALUE, reason)
        if entry.path.conditions is not None:
            if pruned is None:
                pruned = set()
            pruned.add(entry.path.whole)
    if pruned:
        _prune_empty_elements(entries, data, pruned)
    return data


def _prune_empty_elements(
    entries: tuple[Entry, ...], data: dict[str, Any], wholes: set[str]
) -> None:
    # An element made by filtered paths holding only its conditions (and maybe
    # "primary") carries nothing: a work email flagged primary but with no address.
    for entry in entries:
        path = entry.path
        if path.conditions is None or path.whole not in wholes:
            continue
        wholes.discard(path.whole)
        container = data if path.urn is None else data.get(path.urn, {})
        elements = container.get(path.attribute)
        if not isinstance(elements, list):
            continue
        scaffolding = {"primary"} | {
            name
            for other in entries
            if other.path.whole == path.whole and other.path.conditions is not None
            for name, _ in other.path.conditions
        }
        kept = [e for e in elements if not isinstance(e, dict) or set(e) - scaffolding]
        if kept:
            container[path.attribute] = kept
        else:
            del container[path.attribute]


def _structure(data: dict[str, Any], cls: type[Any], record: Record) -> Any:
    try:
        return from_scim(data, cls)
    except ResourceValidationError as exc:
        reason = "; ".join(exc.errors) or str(exc)
        return _issue(record, IssueCode.INVALID_VALUE, reason)


# -- compiling a mapping ----------------------------------------------------------------------


def _compile(
    section: str,
    rules: cabc.Mapping[str, RuleLike],
    cls: type[User] | type[Group],
    *,
    default_external_id: bool,
) -> tuple[Entry, ...]:
    resource_type = cls.resource_type_name
    entries: list[Entry] = []
    for text, value in rules.items():
        path = parse_target(text, resource_type, cls.schema_urn)
        label = f"{section}[{text!r}]"
        if cls is Group and path.urn is None and path.attribute.lower() == "members":
            raise ConfigurationError(
                f"{label}: group members come from the records' members and member_of=, "
                "not from an attribute rule"
            )
        multi, complex_ = multi_valued(resource_type, path)
        entries.append(
            Entry(
                label=label,
                section=section,
                path=path,
                rule=to_rule(value),
                multi_valued=multi,
                complex=complex_,
            )
        )
    _check_overlaps(entries)
    if default_external_id and not any(
        e.path.urn is None and e.path.attribute.lower() == "externalid" for e in entries
    ):
        path = parse_target("externalId", resource_type, cls.schema_urn)
        entries.append(
            Entry(
                label=f"{section}['externalId'] (the record key, by default)",
                section=section,
                path=path,
                rule=_Key(),
                multi_valued=False,
                complex=False,
            )
        )
    return tuple(entries)


def _check_overlaps(entries: list[Entry]) -> None:
    """Refuse two entries writing the same place, or one inside the other."""
    for index, entry in enumerate(entries):
        for earlier in entries[:index]:
            if _clash(earlier, entry):
                raise ConfigurationError(
                    f"{entry.label} and {earlier.label} write the same attribute: keep one"
                )


def _clash(a: Entry, b: Entry) -> bool:
    pa, pb = a.path, b.path
    if (pa.urn or "").lower() != (pb.urn or "").lower():
        return False
    if not pa.attribute or not pb.attribute:
        return True  # a whole extension object and anything inside it
    if pa.attribute.lower() != pb.attribute.lower():
        return False
    if _writes_whole(pa) or _writes_whole(pb):
        return True
    if pa.conditions is None or pb.conditions is None:
        # An unfiltered sub-attribute of a multi-valued attribute builds the whole list.
        return a.multi_valued
    if _normalised(pa.conditions) != _normalised(pb.conditions):
        return False
    return pa.sub is None or pb.sub is None or pa.sub.lower() == pb.sub.lower()


def _writes_whole(path: TargetPath) -> bool:
    return path.sub is None and path.conditions is None


def _normalised(conditions: tuple[tuple[str, Any], ...]) -> list[tuple[str, str]]:
    return sorted((name.lower(), json.dumps(value)) for name, value in conditions)


def _check_disjoint(users: tuple[Entry, ...], create_only: tuple[Entry, ...]) -> None:
    for entry in create_only:
        for managed in users:
            if _clash(managed, entry) or managed.path.whole == entry.path.whole:
                raise ConfigurationError(
                    f"{entry.label} and {managed.label}: an attribute is either managed "
                    "or create-only, not both"
                )


def _check_references(
    users: tuple[Entry, ...], create_only: tuple[Entry, ...], groups: tuple[Entry, ...]
) -> None:
    """ref() names one user, in a user attribute holding one value, as a whole rule."""
    for entry in (*users, *create_only, *groups):
        if nested_reference(entry.rule):
            raise ConfigurationError(
                f"{entry.label}: ref() gives a source key, to be the whole rule "
                "(or inside keep_when_empty), not part of another"
            )
        if not entry.reference:
            continue
        if entry.section != "users":
            raise ConfigurationError(
                f"{entry.label}: ref() is for user attributes managed on every cycle"
            )
        if entry.path.conditions is not None or entry.multi_valued or not entry.path.attribute:
            raise ConfigurationError(
                f"{entry.label}: ref() fills an attribute holding one id "
                "(such as the enterprise manager.value), not a list or a filtered value"
            )


def _required_attributes(resource_type: str) -> tuple[str, ...]:
    """The writable top-level attributes the core schema requires (``userName``...).

    A record leaving one of them empty is an issue: it could not be created. A mapping
    that writes one of them nowhere is :meth:`Mapping.check`'s business.
    """
    return tuple(
        spec.name
        for urn, spec in CORE_SCHEMAS.attributes(resource_type)
        if urn is None and spec.required and spec.writable
    )


class _Builder:
    """Collects one read: desired users and groups, issues, duplicate keys."""

    def __init__(self, mapping: Mapping, source_fields: frozenset[str]) -> None:
        self.mapping = mapping
        self.source_fields = source_fields
        self.users: dict[str, DesiredUser] = {}
        self.group_records: dict[str, tuple[Record, DesiredGroup | None]] = {}
        # key -> (line, origin) of every keyed record in scope, to report duplicates.
        # Where each keyed record in scope came from, per kind; every place of a
        # duplicated key, to report each occurrence with the others.
        self.seen: dict[RecordKind, dict[str, tuple[int | None, str | None]]] = {
            "user": {},
            "group": {},
        }
        self.duplicate_places: dict[tuple[RecordKind, str], list[tuple[int | None, str | None]]]
        self.duplicate_places = {}
        self.memberships: dict[str, list[str]] = {}
        self.issues: list[RecordIssue] = []
        # Keys of user records with an issue: the identity is known, its data is not.
        self.troubled_users: set[str] = set()
        # Users the source holds but nobody can name (no key, or the read stopped).
        self.unnamed_users = False
        # Groups the source may hold but nobody can name (a member_of rule failed).
        self.unnamed_groups = False
        # Group key -> keys of the user records with an issue that name it (member_of).
        self.named_by_troubled: dict[str, set[str]] = {}
        self.out_of_scope_users: set[str] = set()
        self.fields_seen: set[str] = set()
        self.records = 0
        self.out_of_scope = 0
        self.read_complete = True

    def add(self, item: SourceItem) -> None:
        if isinstance(item, RecordIssue):
            self.issues.append(item)
            if item.code is IssueCode.READ_INCOMPLETE:
                self.read_complete = False
            if item.kind == "user" and item.code.loses_identity:
                self._troubled(item.key)
                if not _names_identity(item):
                    self.unnamed_users = True  # its key, if any, may be the wrong one
            return
        mapping = self.mapping
        self.records += 1
        self.fields_seen.update(item.attributes)
        if mapping.scope is not None:
            try:
                in_scope = bool(mapping.scope(item))
            except Exception as exc:
                self._problem(
                    item,
                    IssueCode.MAPPING_FAILED,
                    f"scope raised {type(exc).__name__}: {exc}",
                )
                self._groups_of_troubled(item)
                return
            if not in_scope:
                self.out_of_scope += 1
                if item.key is not None and item.kind == "user":
                    self.out_of_scope_users.add(item.key)
                return
        key = item.key
        if key is None:
            self._problem(item, IssueCode.NO_KEY, "the record has no key")
            return
        seen = self.seen[item.kind]
        first = seen.get(key)
        if first is not None:
            places = self.duplicate_places.setdefault((item.kind, key), [first])
            places.append((item.line, item.origin))
            if item.kind == "user":
                self._troubled(key)
                self._groups_of_troubled(item)
            return
        seen[key] = (item.line, item.origin)
        if item.kind == "group":
            self.group_records[key] = (item, None)
            return
        if mapping.member_of is not None and not self._add_memberships(
            item, key, mapping.member_of
        ):
            return
        desired = mapping.map_user(item)
        if isinstance(desired, RecordIssue):
            self.issues.append(desired)
            self.troubled_users.add(key)
        else:
            self.users[key] = desired

    def _add_memberships(self, record: Record, key: str, rule: Rule) -> bool:
        """Note the groups the user record belongs to; False when the record is not
        to be used (a group key holds a control character: it would name a group)."""
        try:
            value = rule(record)
        except Exception as exc:
            self._problem(
                record,
                IssueCode.MAPPING_FAILED,
                f"member_of: {rule!r} raised {type(exc).__name__}: {exc}",
            )
            # The groups this record names are unknown: any group may be one of them.
            self.unnamed_groups = True
            return True
        group_keys = []
        for text in _group_keys(value):
            found = None if text.isprintable() else CONTROL_CHARACTER.search(text)
            if found is not None:
                self.issues.append(_control_issue(record, "member_of", found.group()))
                self.troubled_users.add(key)
                self._groups_of_troubled(record)
                return False
            group_keys.append(text)
        for text in group_keys:
            self.memberships.setdefault(text, []).append(key)
        return True

    def _groups_of_troubled(self, record: Record) -> None:
        """Remember the groups a keyed user record with an issue names (``member_of``):
        a group no other record names is protected, not deleted for want of a name."""
        rule = self.mapping.member_of
        if rule is None or record.kind != "user" or record.key is None:
            return
        try:
            value = rule(record)
        except Exception:  # the record has its issue already
            self.unnamed_groups = True
            return
        for group_key in _group_keys(value):
            self.named_by_troubled.setdefault(group_key, set()).add(record.key)

    def _problem(self, record: Record, code: IssueCode, reason: str) -> None:
        self.issues.append(_issue(record, code, reason))
        if record.kind == "user":
            self._troubled(record.key)

    def _troubled(self, key: str | None) -> None:
        if key is None:
            self.unnamed_users = True
        else:
            self.troubled_users.add(key)

    def finish(self) -> MappingResult:
        for kind, key in sorted(self.duplicate_places):
            places = self.duplicate_places[(kind, key)]
            for index, (line, origin) in enumerate(places):
                others = [_place(*p) for i, p in enumerate(places) if i != index]
                self.issues.append(
                    RecordIssue(
                        code=IssueCode.DUPLICATE_KEY,
                        reason=(
                            f"{len(places)} records have this key (also {', '.join(others)});"
                            " none of them is used"
                        ),
                        key=key,
                        line=line,
                        kind=kind,
                        origin=origin,
                    )
                )
            if kind == "user":
                self.users.pop(key, None)
        users = tuple(self.users.values())
        self._check_references(users)
        groups = self._groups()
        # Complete unless an identity may be missing that nobody can name; one that
        # can be named is protected instead (see Mapping).
        complete = (
            self.read_complete
            and not self.unnamed_groups
            and not any(i.code.loses_identity and not _names_identity(i) for i in self.issues)
        )
        protected_users, protected_groups = self._protected({g.key for g in groups})
        unread = sorted(self.fields_seen - self.mapping.reads - self.source_fields)
        mapping = self.mapping
        return MappingResult(
            desired=DesiredState(
                users=users,
                groups=groups,
                complete=complete,
                protected_user_keys=protected_users,
                protected_group_keys=protected_groups,
                managed_user_attributes=mapping.managed_user_attributes,
                managed_group_attributes=mapping.managed_group_attributes,
                kept_user_attributes=mapping.kept_user_attributes,
                kept_group_attributes=mapping.kept_group_attributes,
            ),
            issues=tuple(self.issues),
            records=self.records,
            out_of_scope=self.out_of_scope,
            unread_fields=tuple(unread),
            callables_read=self.mapping.opaque,
        )

    def _protected(self, desired_groups: set[str]) -> tuple[dict[str, str], dict[str, str]]:
        """Source key -> why, for users and for groups whose records have an issue.

        Reasons are sorted, so that the order of the records changes nothing.
        """
        why: dict[RecordKind, dict[str, set[str]]] = {"user": {}, "group": {}}
        for issue in self.issues:
            if issue.code.loses_identity and issue.key is not None:
                # A key read from a row the source could not read may be another
                # column's value: protected all the same (protecting it costs nothing,
                # and the read is incomplete anyway), in case the guard is forced.
                found = why[issue.kind].setdefault(issue.key, set())
                found.add(f"source record has an issue: {issue.code.value}: {issue.reason}")
        for group_key, user_keys in self.named_by_troubled.items():
            if group_key not in desired_groups:
                named = ", ".join(map(repr, sorted(user_keys)[:_LISTED]))
                more = f" and {len(user_keys) - _LISTED} more" if len(user_keys) > _LISTED else ""
                why["group"].setdefault(group_key, set()).add(
                    f"named by member_of only in user records with an issue: {named}{more}"
                )
        return (
            {key: "; ".join(sorted(reasons)) for key, reasons in why["user"].items()},
            {key: "; ".join(sorted(reasons)) for key, reasons in why["group"].items()},
        )

    def _check_references(self, users: tuple[DesiredUser, ...]) -> None:
        """An issue for each reference to a key no user record has (left as it is).

        A key that may be one of the users nobody could name (a row without key, a
        read that stopped) or that is out of scope is no issue: the engine leaves the
        attribute as it is, and says so in the plan.
        """
        if self.unnamed_users or not self.read_complete:
            return
        known = self.users.keys() | self.troubled_users | self.out_of_scope_users
        for desired in users:
            for path, key in desired.references:
                if key in known:
                    continue
                line, origin = self.seen["user"].get(desired.key, (None, None))
                self.issues.append(
                    RecordIssue(
                        code=IssueCode.UNKNOWN_REFERENCE,
                        reason=f"{path}: {key!r} is not a user of the source; "
                        "left as it is on the target",
                        key=desired.key,
                        line=line,
                        kind="user",
                        origin=origin,
                    )
                )

    def _groups(self) -> tuple[DesiredGroup, ...]:
        mapping = self.mapping
        groups: list[DesiredGroup] = []
        for key, (record, _) in self.group_records.items():
            if ("group", key) in self.duplicate_places:
                continue
            members = self._members(key, (*record.members, *self.memberships.pop(key, ())))
            desired = mapping.map_group(record, members)
            if isinstance(desired, RecordIssue):
                self.issues.append(desired)
            else:
                groups.append(desired)
        for key in sorted(self.memberships):
            if ("group", key) in self.duplicate_places:
                continue
            members = self._members(key, self.memberships[key])
            group = Group(display_name=key, external_id=key)
            groups.append(DesiredGroup(key=key, group=group, member_keys=members))
        return tuple(groups)

    def _members(self, group_key: str, keys: Iterable[str]) -> tuple[str, ...]:
        # An unknown member may be one of the users nobody could name (a row without
        # key, records after a failed read): then it is kept, so that no membership is
        # removed on a guess; otherwise it is left out. Reported either way.
        keep_unknown = self.unnamed_users or not self.read_complete
        kept: dict[str, None] = {}
        unknown: list[str] = []
        for key in keys:
            if key in kept:
                continue
            if key in self.users or key in self.troubled_users:
                kept[key] = None
            elif key in self.out_of_scope_users:
                continue  # left out on purpose
            else:
                unknown.append(key)
                if keep_unknown:
                    kept[key] = None
        if unknown:
            listed = ", ".join(map(repr, unknown[:_LISTED]))
            more = f" and {len(unknown) - _LISTED} more" if len(unknown) > _LISTED else ""
            what = (
                "kept, as some users of the source could not be identified"
                if keep_unknown
                else "left out"
            )
            self.issues.append(
                RecordIssue(
                    code=IssueCode.UNKNOWN_MEMBER,
                    reason=f"members {listed}{more} are not users of the source: {what}",
                    key=group_key,
                    kind="group",
                )
            )
        return tuple(kept)


def _group_keys(value: Any) -> Iterable[str]:
    """The group keys a ``member_of`` rule gave: one or a list, blanks left out."""
    for group_key in value if isinstance(value, list) else (value,):
        if group_key is None:
            continue
        text = str(group_key).strip()
        if text:
            yield text


#: Issues saying that a record, or the rest of the read, could not be read at all: a
#: key the source made out of a malformed row may be another column's value.
_UNREADABLE = frozenset({IssueCode.READ_INCOMPLETE, IssueCode.MALFORMED, IssueCode.NO_KEY})


def _names_identity(issue: RecordIssue) -> bool:
    """True when ``issue``'s key names the identity it concerns, for certain.

    A record with such an issue protects that key (see :class:`Mapping`); any other
    issue that loses an identity makes the desired state incomplete.
    """
    return issue.key is not None and issue.code not in _UNREADABLE


def _place(line: int | None, origin: str | None) -> str:
    if line is None:
        return origin or "another record"
    return f"line {line}" if origin is None else f"{origin} line {line}"
