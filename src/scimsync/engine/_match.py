"""Matching: which target account is the one a source record means, or none, or a conflict.

The rules, in order, for each source record:

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

Speed: a sync of 100,000 users spends most of its matching time on records linked in
the state whose keys all agree. Those are found column by column, with ``map`` over
C-level callables, and skip the record-by-record rules above (which they would pass).
So, on a first cycle, do records the state does not link whose keys all find one
account that no other rule could concern (no duplicate, no value two accounts hold,
no state link to the account); their ownership and links are recorded column by
column too. ``plan(..., fast=False)`` (private) matches them one by one instead: the
properties check that the plans are the same.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, itemgetter, ne, not_
from typing import TYPE_CHECKING, Any

import attrs

from ..models import ENTERPRISE_USER_SCHEMA, Resource, scim_name
from ..schema import split_urn
from ._state import Ledger
from ._values import Conflict, Link, Placeholder, Skip
from ._values import new_link as _link

if TYPE_CHECKING:
    from ._policy import Policy


_KEY = attrgetter("key")
_EXTERNAL_ID = attrgetter("external_id")
_ID = attrgetter("id")
_EXTRA = attrgetter("extra")

Matched = tuple[str, Any, Resource, str, bool]
"""A source key, its record, the account it is applied to, the key that matched it
(``"link"`` for a state link) and whether this plan adopts the account. Plain tuples:
there is one per user, and they are the hot path."""


@attrs.define
class Matching:
    """The outcome of matching one resource type."""

    ledger: Ledger
    # Records linked in the state to a listed account their keys agree with, and those
    # accounts: most records, kept as two plain lists (see the module docstring).
    linked_records: list[Any] = attrs.Factory(list)
    linked_accounts: list[Any] = attrs.Factory(list)
    linked_keys: list[str] = attrs.Factory(list)  # their keys and account ids
    linked_ids: list[str] = attrs.Factory(list)
    matched: list[Matched] = attrs.Factory(list)  # every other matched record
    creates: list[Any] = attrs.Factory(list)  # DesiredUser / DesiredGroup records
    gone_links: dict[str, str] = attrs.Factory(dict)  # key -> linked id no longer listed
    conflicts: list[Conflict] = attrs.Factory(list)
    skipped: list[Skip] = attrs.Factory(list)
    links: list[Link] = attrs.Factory(list)
    ids: dict[str, str] = attrs.Factory(dict)  # the same for the others, and creates
    # Source keys in a conflict or unknowable: every other source key resolves (id_of).
    unresolved: set[str] = attrs.Factory(set)
    protected: set[str] = attrs.Factory(set)  # account ids never to take anything from
    linked_claimed: set[str] = attrs.Factory(set)  # the accounts of linked_records
    claimed: set[str] = attrs.Factory(set)  # other accounts some record stands for
    listed: Mapping[str, Resource] = attrs.Factory(dict)  # account id -> account
    newly_owned: set[str] = attrs.Factory(set)  # owned by policy or this plan, not the state
    _linked_key: dict[str, str] | None = None
    _source_keys: Collection[str] = ()  # of the records matched, for linked_key
    _created_key: dict[str, str] | None = None
    _resolved: dict[str, str] | None = None
    _linked: dict[str, str] | None = None  # linked_keys -> linked_ids
    _unlinked: frozenset[str] | None = None  # owned ids not in linked_claimed

    def id_of(self, key: str) -> str | None:
        """The account id (or placeholder) source key ``key`` resolves to, if any."""
        found = self.ids.get(key)
        if found is None and key not in self.unresolved:
            # Only a linked record's own account: a stale link (a key that left the
            # source) resolves to nothing, even to an account a record still holds.
            return self._linked_by_key().get(key)
        return found

    def _linked_by_key(self) -> dict[str, str]:
        if self._linked is None:
            self._linked = dict(zip(self.linked_keys, self.linked_ids, strict=True))
        return self._linked

    def resolved(self) -> dict[str, str]:
        """:meth:`id_of` of every source key that resolves, as one dict (built on first
        use: call it once matching and its refusals are done)."""
        if self._resolved is None:
            found = self._linked_by_key().copy()
            for key in self.unresolved:
                found.pop(key, None)
            found.update(self.ids)
            self._resolved = found
        return self._resolved

    def all_matched(self) -> list[Matched]:
        """Every matched record as a :data:`Matched` tuple, linked ones first."""
        linked = [
            (record.key, record, account, "link", False)
            for record, account in zip(self.linked_records, self.linked_accounts, strict=True)
        ]
        return [*linked, *self.matched]

    def owns(self, account_id: str) -> bool:
        """True when scimsync owns the listed account ``account_id``."""
        return account_id in self.ledger.owned or account_id in self.newly_owned

    def owned_count(self) -> int:
        """How many listed accounts scimsync owns (for the percentage guard)."""
        # Every linked id is owned, and linked_claimed ids are listed: only the other
        # owned ids (usually few) are looked up, not every one.
        owned = self.ledger.owned
        listed = self.listed
        others = self._owned_unlinked()
        return (
            len(self.linked_claimed)
            + sum(1 for i in others if i in listed)
            + sum(1 for i in self.newly_owned if i not in owned or i not in listed)
        )

    def _owned_unlinked(self) -> frozenset[str]:
        if self._unlinked is None:
            self._unlinked = self.ledger.owned - self.linked_claimed
        return self._unlinked

    def unclaimed_owned(self) -> list[str]:
        """Owned, listed accounts no source record stands for: deprovisioning candidates."""
        candidates = set(self._owned_unlinked())
        candidates |= self.newly_owned - self.linked_claimed
        claimed, listed = self.claimed, self.listed
        return sorted(i for i in candidates if i in listed and i not in claimed)

    def linked_key(self, account_id: str) -> str | None:
        """The source key the state links ``account_id`` to, if any.

        A state linking several keys to one account (never written by scimsync, but a
        state may be edited or merged) names a key still in the source, the greatest
        of them, else the greatest key: the same one whatever the order of the links.
        """
        if self._linked_key is None:
            links = self.ledger.links
            inverse = dict(zip(links.values(), links.keys(), strict=True))
            if len(inverse) != len(links):
                present = set(self._source_keys)
                inverse = {}
                for key in sorted(links, key=lambda k: (k in present, k)):
                    inverse[links[key]] = key  # the last one wins
            self._linked_key = inverse
        return self._linked_key.get(account_id)

    def label(self, account_id: str) -> str:
        """The source key people know ``account_id`` (or a placeholder) by, else the id."""
        if self._created_key is None:
            self._created_key = dict(zip(self.ids.values(), self.ids.keys(), strict=True))
        return self._created_key.get(account_id) or self.linked_key(account_id) or account_id


def key_values(
    resource_type: str, path: str, policy: Policy, resources: Sequence[Resource]
) -> list[str | None]:
    """The normalised value of ``path`` on each resource (None where it has none).

    Case-insensitive attributes (per the schema's ``caseExact``) are case-folded, so
    values that match are equal strings. One pass per key over all resources: this is
    the hot loop of matching, written with ``map`` over C-level callables.
    """
    spec = policy.schema.resolve(resource_type, path)
    fold = spec is not None and not spec.case_exact
    urn, rest = split_urn(path, policy.schema.extension_urns(resource_type))
    head, _, sub = rest.partition(".")
    field = _field_for(head) if _is_core(urn) and not sub else None
    raw: list[Any] = list(map(attrgetter(field), resources)) if field is not None else []
    if field is None or (None in raw and any(map(_EXTRA, resources))):
        # Nested, extension or undeclared attributes: read one by one.
        read = _raw_reader(urn, rest)
        raw = [read(resource) for resource in resources]
    kinds = set(map(type, raw))
    if kinds <= {str}:
        return list(map(str.casefold, raw)) if fold else raw
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

    def __init__(self, ids: Sequence[str], values: list[str | None]) -> None:
        first: dict[str, str] = dict(zip(values, ids, strict=True))  # type: ignore[arg-type]
        first.pop(None, None)  # type: ignore[call-overload]
        duplicates: dict[str, list[str]] = {}
        if len(first) != len(values) - values.count(None):  # some value is held twice
            first = {}
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
    accounts: Mapping[str, Resource],
    ledger: Ledger,
    policy: Policy,
    *,
    listing_complete: bool,
    bulk: bool = True,
) -> Matching:
    """Match source records (``DesiredUser``/``DesiredGroup``) to ``accounts`` (by id).

    ``bulk=False`` matches every record not linked in the state one by one, as if no
    key agreed (for the property that checks the bulk path changes no plan)."""
    out = Matching(ledger=ledger, listed=accounts)
    by_id = out.listed
    paths = policy.match_keys if resource_type == "User" else policy.group_match_keys
    attr = "user" if resource_type == "User" else "group"
    account_ids = list(by_id)
    listed = list(by_id.values())
    indexes = [
        _Index(account_ids, key_values(resource_type, path, policy, listed)) for path in paths
    ]
    links = ledger.links

    # In the order given: every outcome is sorted where the plan is built, so nothing
    # here depends on the order of the source.
    records = list(desired)
    keys: list[str] = list(map(_KEY, records))
    out._source_keys = keys
    resources = list(map(attrgetter(attr), records))
    columns = [key_values(resource_type, path, policy, resources) for path in paths]

    def lookups(position: int) -> list[tuple[str, list[str]]]:
        return [
            (path, index.find(value))
            for path, index, column in zip(paths, indexes, columns, strict=True)
            if (value := column[position]) is not None
        ]

    def candidates(position: int) -> set[str]:
        ids = {i for _, found in lookups(position) for i in found}
        linked = links.get(keys[position])
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
            # An account the state links to a key outside this conflict is that key's:
            # its identity is certain, so it is not held back (as with "taken").
            out.protected.update(
                i for i in ids if (owner := out.linked_key(i)) is None or owner in keys
            )

    refused = _duplicates(
        records, keys, paths=paths, columns=columns, refuse=refuse, candidates=candidates
    )

    # The common case first: linked to a listed account that no key value contradicts.
    linked_ids: list[str | None] = list(map(links.get, keys))
    linked_accounts: list[Resource | None] = list(map(by_id.get, linked_ids))  # type: ignore[arg-type]
    consistent = _linked_and_consistent(linked_ids, linked_accounts, columns, indexes)
    for position in refused:
        consistent[position] = False
    fast_ids: list[str] = list(compress(linked_ids, consistent))  # type: ignore[arg-type]
    fast_set = set(fast_ids)
    if len(fast_set) != len(fast_ids):  # a state linking two keys to one id
        consistent = [False] * len(records)
        fast_set = set()

    # Then the rest. Unlinked records every key of which finds one account, alone (what
    # a first cycle matches), are claimed in bulk when no other rule could apply to
    # them: nothing refused them, and the state links their account to no source key.
    # The others go record by record.
    claimed_by: dict[str, str] = {}  # account id -> the source key claiming it
    claims: dict[str, list[str]] = {}  # account id -> its claimants, when more than one
    agreed_at, agreed_ids, agreed_hits = (
        _agreeing(columns, indexes, linked_ids, consistent) if bulk else ([], [], [])
    )
    linked_key = out.linked_key
    if agreed_at and (refused or links or not fast_set.isdisjoint(agreed_ids)):
        plain = [
            position not in refused
            and account_id not in fast_set
            and linked_key(account_id) is None
            for position, account_id in zip(agreed_at, agreed_ids, strict=True)
        ]
        agreed_at = list(compress(agreed_at, plain))
        agreed_ids = list(compress(agreed_ids, plain))
        agreed_hits = list(compress(agreed_hits, plain))
    tentative_records: list[Any] = list(map(records.__getitem__, agreed_at))
    tentative_ids: list[str] = agreed_ids
    tentative_hows: list[str] = list(map(paths.__getitem__, agreed_hits))

    def register(key: str, account_id: str) -> None:
        first = claimed_by.setdefault(account_id, key)
        if first != key or account_id in claims:
            claims.setdefault(account_id, [first]).append(key)

    if len(set(agreed_ids)) == len(agreed_ids):
        claimed_by.update(zip(agreed_ids, map(keys.__getitem__, agreed_at), strict=True))
    else:  # two records whose keys find one account: a shared account, refused below
        for position, found_id in zip(agreed_at, agreed_ids, strict=True):
            register(keys[position], found_id)

    def claim(record: Any, key: str, account_id: str, how: str) -> None:
        register(key, account_id)
        tentative_records.append(record)
        tentative_ids.append(account_id)
        tentative_hows.append(how)

    pending = list(map(not_, consistent))
    for position in chain(refused, agreed_at):
        pending[position] = False
    for position in compress(range(len(records)), pending):
        record, key, linked = records[position], keys[position], linked_ids[position]
        account_id: str | None = None
        how = ""
        if linked is not None:
            if linked in by_id:
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
        found = lookups(position)
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
        owner = linked_key(account_id)
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
        if account_id in fast_set:  # never expected: links are one to one
            fast_set.discard(account_id)
            other = linked_ids.index(account_id)
            consistent[other] = False
            claim(records[other], keys[other], account_id, "link")
        claim(record, key, account_id, how)

    shared = claims.keys()
    for account_id in sorted(shared):
        refuse(
            "shared_account",
            claims[account_id],
            {account_id},
            f"{len(claims[account_id])} source records match the same account",
        )

    # Ownership and adoption. Linked accounts are owned; the rest may be adopted.
    out.linked_records = list(compress(records, consistent))
    out.linked_accounts = list(compress(linked_accounts, consistent))
    out.linked_keys = list(compress(keys, consistent))
    out.linked_ids = list(compress(linked_ids, consistent))  # type: ignore[arg-type]
    out.linked_claimed = fast_set
    prefix = policy.external_id_prefix
    if prefix is not None:
        out.newly_owned.update(
            account_id
            for account_id, account in by_id.items()
            if account.external_id is not None and account.external_id.startswith(prefix)
        )
    _own(
        out,
        policy,
        attr,
        resource_type=resource_type,
        records=tentative_records,
        ids=tentative_ids,
        hows=tentative_hows,
        shared=shared,
        refuse=refuse,
    )
    creates = out.creates
    if creates:
        create_keys = list(map(_KEY, creates))
        placeholders = [str(Placeholder(resource_type=resource_type, key=k)) for k in create_keys]
        out.ids.update(zip(create_keys, placeholders, strict=True))
        out.links.extend(
            map(
                _link,
                repeat(resource_type),
                create_keys,
                placeholders,
                repeat("create"),
                repeat(False),  # adopted
            )
        )
    out.claimed.update(out.protected)
    return out


def _own(
    out: Matching,
    policy: Policy,
    attr: str,
    *,
    resource_type: str,
    records: list[Any],
    ids: list[str],
    hows: list[str],
    shared: Collection[str],
    refuse: Callable[..., None],
) -> None:
    """Record the matches of ``records`` (to the accounts ``ids``, found by ``hows``) in
    ``out``, adopting per the policy the accounts scimsync does not own yet.

    Column by column: on a first cycle there is one match per record. An account is
    adopted when scimsync does not own it and the record's ``externalId`` is not the
    account's (one it manages); adoptions refused by the policy are looked at one by one.
    """
    if shared:  # accounts two records match: refused, so matched by neither
        keep = list(map(not_, map(shared.__contains__, ids)))
        records, ids, hows = (list(compress(column, keep)) for column in (records, ids, hows))
    keys = list(map(_KEY, records))
    accounts = list(map(out.listed.__getitem__, ids))
    owned, newly_owned = out.ledger.owned, out.newly_owned
    # Not owned yet, and matched by a key (a linked account is owned already).
    fresh = [
        how != "link" and account_id not in owned and account_id not in newly_owned
        for how, account_id in zip(hows, ids, strict=True)
    ]
    adopted = fresh
    if any(fresh):
        wanted = map(_EXTERNAL_ID, map(attrgetter(attr), records))
        adopted = [
            is_fresh and (new is None or new != old)
            for is_fresh, new, old in zip(fresh, wanted, map(_EXTERNAL_ID, accounts), strict=True)
        ]
    if policy.adopt != "adopt" and any(adopted):
        for key, account_id, how in compress(zip(keys, ids, hows, strict=True), adopted):
            if policy.adopt == "ignore":
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
            else:
                refuse(
                    "unowned_match",
                    [key],
                    {account_id},
                    f"matched by {how} an account scimsync does not own; "
                    "set policy.adopt to 'adopt' to take it over or 'ignore' to leave it",
                )
        keep = list(map(not_, adopted))
        columns = (records, keys, ids, hows, accounts, fresh, adopted)
        records, keys, ids, hows, accounts, fresh, adopted = (
            list(compress(column, keep)) for column in columns
        )
    newly_owned.update(compress(ids, fresh))
    out.claimed.update(ids)
    out.ids.update(zip(keys, ids, strict=True))
    out.matched.extend(zip(keys, records, accounts, hows, adopted, strict=True))
    # A link the state does not hold yet.
    new = list(map(ne, map(out.ledger.links.get, keys), ids))
    out.links.extend(
        map(
            _link,
            repeat(resource_type),
            compress(keys, new),
            compress(ids, new),
            compress(hows, new),
            compress(adopted, new),
        )
    )


_DISAGREE = object()


def _agreeing(
    columns: Sequence[list[str | None]],
    indexes: Sequence[_Index],
    linked_ids: list[str | None],
    consistent: list[bool],
) -> tuple[list[int], list[str], list[int]]:
    """The records not linked in the state whose keys find one account: some key finds
    an account, every key that finds one finds that one, and none has a value two
    accounts hold. Their positions, those accounts, and the number of the first key
    that found each. Records left out are looked at one by one.

    What a first cycle (no state) matches, column by column with C-level ``map``.
    """
    if not columns:
        return [], [], []
    positions = [
        position
        for position in compress(range(len(linked_ids)), map(not_, consistent))
        if linked_ids[position] is None
    ]
    if not positions:
        return [], [], []
    at = itemgetter(*positions) if len(positions) > 1 else lambda column: (column[positions[0]],)
    hits: list[tuple[str | None, ...]] = [
        tuple(map(index.first.get, at(column)))
        for column, index in zip(columns, indexes, strict=True)
    ]
    agreed: list[Any] = list(hits[0])
    how = [0] * len(agreed)
    spots = range(len(positions))
    for number, more in enumerate(hits[1:], start=1):
        for spot in compress(spots, map(ne, agreed, more)):
            other = more[spot]
            if other is None:
                continue
            if agreed[spot] is None:
                agreed[spot], how[spot] = other, number
            else:
                agreed[spot] = _DISAGREE
    for column, index in zip(columns, indexes, strict=True):
        if index.duplicates:  # a value two accounts hold: that record is looked at alone
            for spot in compress(spots, map(index.duplicates.__contains__, at(column))):
                agreed[spot] = _DISAGREE
    found = list(map(isinstance, agreed, repeat(str)))  # neither None nor _DISAGREE
    return (
        list(compress(positions, found)),
        list(compress(agreed, found)),
        list(compress(how, found)),
    )


def _linked_and_consistent(
    linked_ids: list[str | None],
    linked_accounts: list[Resource | None],
    columns: Sequence[list[str | None]],
    indexes: Sequence[_Index],
) -> list[bool]:
    """For each record: linked to a listed account that no key value contradicts.

    A key agrees when its value finds the linked account or finds none, and no two
    accounts hold it. Column by column, with C-level ``map``: only the records whose
    value finds something else are looked at one by one.
    """
    ok = list(map(is_not, linked_accounts, repeat(None)))
    positions = range(len(linked_ids))
    for column, index in zip(columns, indexes, strict=True):
        hits: list[str | None] = list(map(index.first.get, column))  # type: ignore[arg-type]
        for position in compress(positions, map(ne, hits, linked_ids)):
            if hits[position] is not None:
                ok[position] = False
        if index.duplicates:
            for position in compress(positions, map(index.duplicates.__contains__, column)):
                ok[position] = False
    return ok


def _duplicates(
    records: list[Any],
    keys: list[str],
    *,
    paths: Sequence[str],
    columns: Sequence[list[str | None]],
    refuse: Callable[[str, Sequence[str], set[str], str], None],
    candidates: Callable[[int], set[str]],
) -> set[int]:
    """Positions of records refused because their source key or a key value is shared."""
    bad: set[int] = set()
    if len(set(keys)) != len(keys):
        key_counts = Counter(keys)
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
        distinct = set(column)
        distinct.discard(None)
        if len(distinct) == len(column) - column.count(None):
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
