"""Matching: which target account is the one a source record means, or none, or a conflict.

The rules, in order, for each source record (sorted by source key):

1. A link remembered in the state wins, when its account is still listed.
2. Otherwise the policy's match keys are tried in order; values compare per the
   schema's ``caseExact`` (``userName`` case-insensitively). The first key that finds
   an account decides.
3. Whatever found the account, every other key must agree: a record whose keys point
   at different accounts is a conflict, never a guess. So is a key value shared by
   two source records or by two target accounts, an account claimed by two records,
   and an account the state links to another source key.
4. A matched account that scimsync does not own (no link, no owned id, no managed
   ``externalId``) is adopted, ignored or reported per :attr:`Policy.adopt`.
5. No account: the record is to be created.

Accounts whose identity a conflict leaves uncertain are *protected*: never
deprovisioned, never removed from a group. (An account ``taken`` by another source key
is not uncertain: it is that key's.)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import attrs

from ..models import ENTERPRISE_USER_SCHEMA, Resource, scim_name
from ..schema import split_urn
from ._values import Conflict, Link, Placeholder, Skip

if TYPE_CHECKING:
    from ._policy import Policy
    from ._state import Ledger


@attrs.define
class Matched:
    """A source record and the target account it is (to be) applied to."""

    key: str
    desired: Any  # DesiredUser or DesiredGroup
    account: Resource
    matched_by: str
    adopted: bool


@attrs.define
class Matching:
    """The outcome of matching one resource type."""

    matched: list[Matched] = attrs.Factory(list)
    creates: list[Any] = attrs.Factory(list)  # DesiredUser / DesiredGroup, sorted by key
    gone_links: dict[str, str] = attrs.Factory(dict)  # key -> linked id no longer listed
    conflicts: list[Conflict] = attrs.Factory(list)
    skipped: list[Skip] = attrs.Factory(list)
    links: list[Link] = attrs.Factory(list)
    ids: dict[str, str] = attrs.Factory(dict)  # source key -> account id or placeholder
    known_keys: set[str] = attrs.Factory(set)  # every source key of this resource type
    unresolved: set[str] = attrs.Factory(set)  # source keys in a conflict or unknowable
    protected: set[str] = attrs.Factory(set)  # account ids never to take anything from
    claimed: set[str] = attrs.Factory(set)  # account ids some record stands for
    owned: set[str] = attrs.Factory(set)  # listed account ids scimsync owns
    linked_key: dict[str, str] = attrs.Factory(dict)  # account id -> linked source key


def key_values(
    resource_type: str, path: str, policy: Policy, resources: Sequence[Resource]
) -> list[str | None]:
    """The normalised value of ``path`` on each resource (None where it has none).

    Case-insensitive attributes (per the schema's ``caseExact``) are case-folded, so
    values that match are equal strings. One pass per key over all resources: this is
    the hot loop of matching.
    """
    spec = policy.schema.resolve(resource_type, path)
    fold = spec is not None and not spec.case_exact
    urn, rest = split_urn(path, policy.schema.extension_urns(resource_type))
    head, _, sub = rest.partition(".")
    field = _field_for(head) if _is_core(urn) and not sub else None
    if field is not None and resources and not any(r.extra for r in resources):
        raw: list[Any] = list(map(attrgetter(field), resources))
    else:
        read = _raw_reader(urn, rest)
        raw = [read(resource) for resource in resources]
    if fold:
        return [v.casefold() if type(v) is str else None for v in raw]
    return [v if type(v) is str else None for v in raw]


def _is_core(urn: str | None) -> bool:
    return urn is None or urn.lower() in (
        "urn:ietf:params:scim:schemas:core:2.0:user",
        "urn:ietf:params:scim:schemas:core:2.0:group",
    )


def _raw_reader(urn: str | None, rest: str) -> Callable[[Resource], Any]:
    head, _, sub = rest.partition(".")
    if _is_core(urn):
        field = _field_for(head)

        def read_core(resource: Resource) -> Any:
            value = getattr(resource, field, None) if field else None
            if value is None:
                value = _folded_get(resource.extra, head)
            if sub and value is not None:
                value = _sub_value(value, sub)
            return value

        return read_core

    assert urn is not None
    is_enterprise = urn.lower() == ENTERPRISE_USER_SCHEMA.lower()

    def read_extension(resource: Resource) -> Any:
        container: Any = getattr(resource, "enterprise", None) if is_enterprise else None
        if container is None:
            container = resource.extension(urn)
        value = _sub_value(container, head) if container is not None else None
        if sub and value is not None:
            value = _sub_value(value, sub)
        return value

    return read_extension


def _field_for(scim_attribute: str) -> str | None:
    # The model field whose SCIM name is this attribute: "userName" -> "user_name".
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in scim_attribute)
    return snake if scim_name(snake) == scim_attribute else None


def _sub_value(container: Any, name: str) -> Any:
    if isinstance(container, Mapping):
        return _folded_get(container, name)
    field = _field_for(name)
    value = getattr(container, field, None) if field else None
    if value is None and attrs.has(type(container)):
        value = _folded_get(getattr(container, "extra", {}), name)
    return value


def _folded_get(data: Mapping[str, Any], name: str) -> Any:
    if not data:
        return None
    if name in data:
        return data[name]
    folded = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == folded:
            return value
    return None


class _Index:
    """Normalised key value -> account id, with values held by several accounts apart."""

    __slots__ = ("duplicates", "first")

    def __init__(self, ids: Sequence[str], values: Sequence[str | None]) -> None:
        first: dict[str, str] = {}
        duplicates: dict[str, list[str]] = {}
        for account_id, value in zip(ids, values, strict=True):
            if value is None:
                continue
            seen = first.setdefault(value, account_id)
            if seen != account_id:
                duplicates.setdefault(value, [seen]).append(account_id)
        self.first = first
        self.duplicates = duplicates

    def find(self, value: str) -> list[str]:
        found = self.first.get(value)
        if found is None:
            return []
        if self.duplicates:
            many = self.duplicates.get(value)
            if many is not None:
                return many
        return [found]


def match(
    resource_type: str,
    desired: Sequence[Any],
    accounts: Sequence[Resource],
    ledger: Ledger,
    policy: Policy,
    *,
    listing_complete: bool,
) -> Matching:
    """Match source records (``DesiredUser``/``DesiredGroup``) to listed ``accounts``."""
    out = Matching()
    paths = policy.match_keys if resource_type == "User" else policy.group_match_keys
    attr = "user" if resource_type == "User" else "group"
    account_ids: list[str] = [account.id for account in accounts]  # type: ignore[misc]
    indexes = [
        _Index(account_ids, key_values(resource_type, path, policy, accounts)) for path in paths
    ]
    by_id = dict(zip(account_ids, accounts, strict=True))
    links = ledger.links
    out.linked_key = {target: key for key, target in links.items()}

    records = sorted(desired, key=_record_key)
    out.known_keys = {record.key for record in records}
    resources = [getattr(record, attr) for record in records]
    columns = [key_values(resource_type, path, policy, resources) for path in paths]
    rows: list[tuple[str | None, ...]] = list(zip(*columns, strict=True)) if columns else []

    def lookups(row: tuple[str | None, ...]) -> list[tuple[str, list[str]]]:
        return [
            (path, index.find(value))
            for path, index, value in zip(paths, indexes, row, strict=True)
            if value is not None
        ]

    def candidates(position: int) -> set[str]:
        ids = {i for _, found in lookups(rows[position]) for i in found}
        linked = links.get(records[position].key)
        if linked is not None and linked in by_id:
            ids.add(linked)
        return ids

    def refuse(
        kind: str, keys: Sequence[str], ids: set[str], detail: str, *, protect: bool = True
    ) -> None:
        out.conflicts.append(
            Conflict(
                kind=kind,
                resource_type=resource_type,
                source_keys=sorted(keys),
                target_ids=sorted(ids),
                detail=detail,
            )
        )
        out.unresolved.update(keys)
        if protect:
            out.protected.update(ids)

    refused = _duplicates(records, paths, columns, refuse, candidates)

    # Pass 1: which account each record points at.
    tentative: list[tuple[Any, str, str]] = []
    claims: defaultdict[str, list[str]] = defaultdict(list)
    firsts = [index.first for index in indexes]
    shared_values = [index.duplicates for index in indexes]
    for position, record in enumerate(records):
        if position in refused:
            continue
        key = record.key
        row = rows[position]
        account_id: str | None = None
        how = ""
        linked = links.get(key)
        if linked is not None:
            if linked in by_id:
                # The common case, kept fast: linked, and no key points elsewhere.
                if all(
                    value is None
                    or (
                        first.get(value, linked) == linked
                        and not (duplicates and value in duplicates)
                    )
                    for value, first, duplicates in zip(row, firsts, shared_values, strict=True)
                ):
                    claims[linked].append(key)
                    tentative.append((record, linked, "link"))
                    continue
                account_id, how = linked, "link"
            elif not listing_complete:
                out.skipped.append(
                    Skip(
                        resource_type=resource_type,
                        source_key=key,
                        target_id=linked,
                        reason="linked account is not in the incomplete target listing",
                    )
                )
                out.unresolved.add(key)
                out.protected.add(linked)
                continue
            else:
                out.gone_links[key] = linked
        found = lookups(row)
        if account_id is None:
            ambiguous = False
            for path, ids in found:
                if len(ids) > 1:
                    refuse(
                        "ambiguous_match",
                        [key],
                        set(ids),
                        f"{path} matches {len(ids)} {resource_type.lower()} accounts",
                    )
                    ambiguous = True
                    break
                if ids:
                    account_id, how = ids[0], path
                    break
            if ambiguous:
                continue
        if account_id is None:
            out.creates.append(record)
            continue
        others = {i for _, ids in found for i in ids if i != account_id}
        if others:
            disagreeing = [path for path, ids in found if any(i != account_id for i in ids)]
            refuse(
                "ambiguous_match",
                [key],
                {account_id, *others},
                f"matched by {how}, but {' and '.join(disagreeing)} point at another account",
            )
            continue
        owner = out.linked_key.get(account_id)
        if how != "link" and owner is not None and owner != key:
            # The account's identity is certain (the owner's): it is not protected, and
            # is deprovisioned if its owner left the source.
            refuse(
                "taken",
                [key],
                {account_id},
                f"matched by {how} the account of source key {owner!r}",
                protect=False,
            )
            continue
        claims[account_id].append(key)
        tentative.append((record, account_id, how))

    shared = {account_id for account_id, keys in claims.items() if len(keys) > 1}
    for account_id in sorted(shared):
        refuse(
            "shared_account",
            claims[account_id],
            {account_id},
            f"{len(claims[account_id])} source records match the same account",
        )

    # Pass 2: ownership and adoption.
    prefix = policy.external_id_prefix
    owned = out.owned
    owned.update(i for i in ledger.owned if i in by_id)
    if prefix is not None:
        owned.update(
            account.id  # type: ignore[misc]
            for account in accounts
            if account.external_id is not None and account.external_id.startswith(prefix)
        )
    for record, account_id, how in tentative:
        if account_id in shared:
            continue
        key = record.key
        account = by_id[account_id]
        if how == "link" or account_id in owned:
            adopted = False
        else:
            resource = getattr(record, attr)
            managed = resource.external_id is not None and (
                resource.external_id == account.external_id
            )
            adopted = not managed
            if adopted and policy.adopt == "ignore":
                out.skipped.append(
                    Skip(
                        resource_type=resource_type,
                        source_key=key,
                        target_id=account_id,
                        reason=f"matched by {how} an account scimsync does not own; "
                        "policy.adopt is 'ignore'",
                    )
                )
                out.claimed.add(account_id)
                out.ids[key] = account_id
                continue
            if adopted and policy.adopt == "fail":
                refuse(
                    "unowned_match",
                    [key],
                    {account_id},
                    f"matched by {how} an account scimsync does not own; "
                    "set policy.adopt to 'adopt' to take it over or 'ignore' to leave it",
                )
                continue
        owned.add(account_id)
        out.claimed.add(account_id)
        out.ids[key] = account_id
        out.matched.append(
            Matched(key=key, desired=record, account=account, matched_by=how, adopted=adopted)
        )
        if links.get(key) != account_id:
            out.links.append(
                Link(
                    resource_type=resource_type,
                    source_key=key,
                    target_id=account_id,
                    matched_by=how,
                    adopted=adopted,
                )
            )
    for record in out.creates:
        placeholder = str(Placeholder(resource_type=resource_type, key=record.key))
        out.ids[record.key] = placeholder
        out.links.append(
            Link(
                resource_type=resource_type,
                source_key=record.key,
                target_id=placeholder,
                matched_by="create",
            )
        )
    out.claimed.update(out.protected)
    return out


def _record_key(record: Any) -> str:
    key: str = record.key
    return key


def _duplicates(
    records: list[Any],
    paths: Sequence[str],
    columns: Sequence[list[str | None]],
    refuse: Callable[[str, Sequence[str], set[str], str], None],
    candidates: Callable[[int], set[str]],
) -> set[int]:
    """Positions of records refused because their source key or a key value is shared."""
    bad: set[int] = set()
    key_counts = Counter(record.key for record in records)
    if len(key_counts) != len(records):
        by_key: defaultdict[str, list[int]] = defaultdict(list)
        for position, record in enumerate(records):
            if key_counts[record.key] > 1:
                by_key[record.key].append(position)
        for key, positions in sorted(by_key.items()):
            refuse(
                "duplicate_source_key",
                [key],
                set().union(*(candidates(p) for p in positions)),
                f"the source holds {len(positions)} records with this key",
            )
            bad.update(positions)
    for path, column in zip(paths, columns, strict=True):
        present = [v for position, v in enumerate(column) if v is not None and position not in bad]
        if len(set(present)) == len(present):
            continue  # the common case: every value is its record's own
        seen: dict[str, int] = {}
        clashes: defaultdict[str, list[int]] = defaultdict(list)
        for position, value in enumerate(column):
            if value is None or position in bad:
                continue
            first = seen.setdefault(value, position)
            if first != position:
                if not clashes[value]:
                    clashes[value].append(first)
                clashes[value].append(position)
        for positions in sorted(clashes.values()):
            keys = [records[p].key for p in positions]
            refuse(
                "duplicate_key_value",
                keys,
                set().union(*(candidates(p) for p in positions)),
                f"{len(keys)} source records share one {path}",
            )
            bad.update(positions)
    return bad
