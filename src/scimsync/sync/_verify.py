"""What a target kept of a write: the answer (or a read-back) against what was sent.

A target that answers 2xx to a write has not necessarily kept it: real ones drop
attributes they publish (``title``), sub-attributes (emails come back without
``type``), change values (a normalised phone number) or ignore a removal. Planned
again against such a target, the same update would go out on every cycle, forever.
So every write is checked here, and what the target did not keep becomes an
:class:`Observation` the runner counts into the state (see
:attr:`scimsync.engine.Ledger.unkept`).

Rules:

- **Only what was sent is checked**, value by value: each attribute and
  sub-attribute a create (or PUT) body sets, each PATCH operation. What the target
  adds on its own (``meta``, a ``primary`` flag, a formatted name) is no concern.
- **Never what cannot come back**: readOnly attributes, writeOnly or ``returned:
  never`` ones (a password), ``returned: request`` ones, ``id``, ``meta``,
  ``schemas``, group ``members`` and ``User.groups``.
- **Compared as the schema says**: strings of ``caseExact: false`` attributes
  ignore case; an empty value sent (``""``, ``[]``) needs nothing back; a
  ``primary`` of false may come back absent (its default).
- **Values of multi-valued attributes are found by identity** (``value``, else
  ``type``): a value whose ``type`` came back empty is the same value with
  ``emails.type`` dropped, not a new one. A filtered PATCH path whose filter reads
  a sub-attribute the target does not keep (``emails[type eq "work"].value``) is
  reported as that sub-attribute, dropped.
- Paths are reported in the schema's spelling (``title``, ``name.givenName``,
  ``emails.type``, ``urn:…:User:department``): what the engine can leave out.
- **A value the mapping selects by a filter is reported as that value**: one the
  mapping writes with ``emails[type eq "home"].value`` (one its element scopes
  select, or a PATCH path's filter) that the target drops or changes is
  ``emails[type eq "home"]``, not ``emails``, so the other values (the work email)
  stay compared. A multi-valued attribute written whole is reported whole, as is a
  sub-attribute of every value (``emails.type``).

Pure: no I/O. The executor calls it with what it sent and what it got back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import to_scim
from ..engine._ignore import IgnoredPath
from ..engine._state import UnkeptHow
from ..errors import FilterSyntaxError, InvalidPathError
from ..filter import AttrPath
from ..filter._eval import lookup
from ..filter._nodes import compile_value_filter
from ..models import Group, User
from ..patch import parse_path
from ..patch._managed import element_scopes
from ..patch._scope import scope_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..filter import Filter
    from ..models import PatchOperation, Resource
    from ..patch._scope import ElementScope
    from ..schema import AttributeSpec, SchemaTable

__all__ = ["Observation", "scopes_of", "unkept_by_patch", "unkept_by_resource"]

#: Attributes never checked: set by the service provider, or memberships.
_NOT_CHECKED = frozenset({"schemas", "id", "meta", "members", "groups"})


@attrs.frozen
class Observation:
    """One path of one write the target did not keep, and how."""

    resource_type: str
    path: str
    how: UnkeptHow


def _empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


class _Checker:
    """Compares sent values with a resource's SCIM JSON, collecting observations."""

    def __init__(
        self,
        resource_type: str,
        answered: Resource,
        schema: SchemaTable,
        scopes: Sequence[ElementScope] = (),
    ) -> None:
        self.resource_type = resource_type
        self.data = to_scim(answered)
        self.schema = schema
        self.urns = schema.extension_urns(resource_type)
        self.found: dict[str, UnkeptHow] = {}
        self.scopes = {scope.key: scope for scope in scopes}
        self._predicates: dict[tuple[str, str, str], Callable[[Any], bool]] = {}

    # -- naming and characteristics ----------------------------------------------------

    def _urn(self, urn: str | None) -> str | None:
        if urn is None or urn.lower() == _core_urn(self.resource_type).lower():
            return None
        return next((u for u in self.urns if u.lower() == urn.lower()), urn)

    def spec(self, urn: str | None, attribute: str) -> AttributeSpec | None:
        top = attribute if urn is None else f"{urn}:{attribute}"
        return self.schema.resolve(self.resource_type, top)

    def note(
        self,
        urn: str | None,
        attribute: str,
        sub: str | None,
        how: UnkeptHow,
        value_filter: Filter | None = None,
    ) -> None:
        """Note ``urn:attribute.sub`` not kept; of the values ``value_filter`` selects
        only, when it is given and the path is the values themselves."""
        spec = self.spec(urn, attribute)
        name = spec.name if spec is not None else attribute
        if spec is not None and sub is not None:
            sub_spec = spec.sub(sub)
            sub = sub_spec.name if sub_spec is not None else sub
        if sub is not None and sub.lower() == "value" and (spec is None or spec.multi_valued):
            # A value of a multi-valued attribute is its ``value``: the engine, told to
            # leave ``emails.value`` out, would write emails without one.
            sub = None
        if sub is not None or (spec is not None and not spec.multi_valued):
            value_filter = None  # a sub-attribute of every value, or a singular one
        try:
            path = IgnoredPath(urn, name, sub, value_filter).text
        except FilterSyntaxError:
            return  # a name no SCIM path can spell ("cost code"): nothing to leave out
        # "dropped" says more than "changed" about the same path.
        if self.found.get(path) != "dropped":
            self.found[path] = how

    def container(self, urn: str | None) -> Mapping[str, Any] | None:
        if urn is None:
            return self.data
        found = lookup(self.data, urn, urn.lower())
        return found if isinstance(found, Mapping) else None

    def held(self, urn: str | None, attribute: str) -> Any:
        container = self.container(urn)
        return None if container is None else lookup(container, attribute, attribute.lower())

    @staticmethod
    def _checked(spec: AttributeSpec | None) -> bool:
        return spec is None or not (spec.read_only or spec.write_only or spec.returned == "request")

    # -- whole bodies -------------------------------------------------------------------

    def body(self, sent: Mapping[str, Any]) -> None:
        """Each attribute a body sets (extensions attribute by attribute)."""
        for name, value in sent.items():
            if name.lower() in _NOT_CHECKED:
                continue
            if name.lower().startswith("urn:") and isinstance(value, Mapping):
                urn = self._urn(name)
                for inner, inner_value in value.items():
                    if inner.lower() != "schemas":
                        self.attribute(urn, inner, inner_value)
            else:
                self.attribute(None, name, value)

    def attribute(self, urn: str | None, name: str, sent: Any) -> None:
        """One attribute: a simple value, a complex one, or a list of either."""
        spec = self.spec(urn, name)
        if name.lower() in _NOT_CHECKED or not self._checked(spec) or _empty(sent):
            return
        held = self.held(urn, name)
        if isinstance(sent, Mapping) and _empty(held):
            held = {}  # what was sent is its sub-attributes: each of them is dropped
        if _empty(held) and not isinstance(sent, Mapping):
            self.note(urn, name, None, "dropped")
        elif isinstance(sent, list):
            self.values(urn, name, spec, sent, held if isinstance(held, list) else [held])
        elif isinstance(sent, Mapping):
            if not isinstance(held, Mapping):
                self.note(urn, name, None, "changed")
                return
            for sub, value in sent.items():
                self.sub(urn=urn, name=name, spec=spec, sub=sub, sent=value, held=held)
        elif not self.same(spec, sent, held):
            self.note(urn, name, None, "changed")

    def sub(
        self,
        *,
        urn: str | None,
        name: str,
        spec: AttributeSpec | None,
        sub: str,
        sent: Any,
        held: Mapping[str, Any],
        value_filter: Filter | None = None,
    ) -> None:
        sub_spec = spec.sub(sub) if spec is not None else None
        if not self._checked(sub_spec) or _empty(sent):
            return
        value = lookup(held, sub, sub.lower())
        if _empty(value):
            if sent is False and sub.lower() == "primary":
                return  # false is primary's default: leaving it out keeps it
            self.note(urn, name, sub, "dropped", value_filter)
        elif not self.same(sub_spec, sent, value):
            self.note(urn, name, sub, "changed", value_filter)

    def values(
        self,
        urn: str | None,
        name: str,
        spec: AttributeSpec | None,
        sent: list[Any],
        held: list[Any],
    ) -> None:
        """The values of a multi-valued attribute, each found by its identity."""
        for element in sent:
            if not isinstance(element, Mapping):
                if not any(self.same(spec, element, h) for h in held):
                    self.note(urn, name, None, "changed")
                continue
            chosen = self.scoped(urn, name, spec, element)
            match = self.find(spec, element, held)
            if match is None and chosen is not None:
                # A value the mapping selects by a filter: that value is not kept, not
                # the attribute (another value the filter selects: it was changed).
                value_filter, selects = chosen
                kept = any(isinstance(h, Mapping) and selects(h) for h in held)
                self.note(urn, name, None, "changed" if kept else "dropped", value_filter)
                continue
            if match is None:
                self.note(urn, name, "value" if "value" in _folded(element) else None, "changed")
                continue
            for sub, value in element.items():
                self.sub(
                    urn=urn,
                    name=name,
                    spec=spec,
                    sub=sub,
                    sent=value,
                    held=match,
                    value_filter=None if chosen is None else chosen[0],
                )

    def scoped(
        self, urn: str | None, name: str, spec: AttributeSpec | None, element: Mapping[str, Any]
    ) -> tuple[Filter, Callable[[Any], bool]] | None:
        """The first filter of the attribute's element scope selecting ``element``, if
        one does, with its predicate."""
        scope = self.scopes.get(scope_key(urn, spec.name if spec is not None else name))
        if scope is None:
            return None
        for value_filter in scope.filters:
            selects = self.predicate(urn, name, value_filter)
            if selects(element):
                return value_filter, selects
        return None

    def predicate(self, urn: str | None, name: str, value_filter: Filter) -> Callable[[Any], bool]:
        key = ((urn or "").lower(), name.lower(), str(value_filter))
        found = self._predicates.get(key)
        if found is None:
            found = self._predicates[key] = compile_value_filter(
                value_filter, AttrPath(name, urn=urn), self.resource_type, self.schema
            )
        return found

    def find(
        self, spec: AttributeSpec | None, element: Mapping[str, Any], held: list[Any]
    ) -> Mapping[str, Any] | None:
        candidates = [h for h in held if isinstance(h, Mapping)]
        for identity in ("value", "type"):
            wanted = lookup(element, identity, identity)
            if _empty(wanted):
                continue
            sub_spec = spec.sub(identity) if spec is not None else None
            found = [
                c for c in candidates if self.same(sub_spec, wanted, lookup(c, identity, identity))
            ]
            if not found and identity == "type":
                # A value without ``value`` (an address) whose type came back empty: the
                # same value with its type dropped, when it is the only one without.
                found = [c for c in candidates if _empty(lookup(c, "type", "type"))]
                found = found if len(found) == 1 else []
            # One email address listed twice (work and home) is two values: the type
            # tells which is which.
            kind = lookup(element, "type", "type")
            type_spec = spec.sub("type") if spec is not None else None
            return next(
                (c for c in found if self.same(type_spec, kind, lookup(c, "type", "type"))),
                found[0] if found else None,
            )
        return candidates[0] if len(candidates) == 1 else None

    @staticmethod
    def same(spec: AttributeSpec | None, sent: Any, held: Any) -> bool:
        if isinstance(sent, str) and isinstance(held, str):
            if spec is not None and spec.case_exact:
                return sent == held
            return sent.casefold() == held.casefold()
        if isinstance(sent, list) and isinstance(held, list):
            return all(any(_Checker.same(spec, s, h) for h in held) for s in sent)
        if isinstance(sent, Mapping) and isinstance(held, Mapping):
            return all(
                _empty(v) or _Checker.same(None, v, lookup(held, k, k.lower()))
                for k, v in sent.items()
            )
        return bool(sent == held)

    # -- PATCH operations ---------------------------------------------------------------

    def operation(self, op: PatchOperation) -> None:
        value = to_scim(op).get("value")
        if op.path is None:
            if op.op != "remove" and isinstance(value, Mapping):
                self.body(value)
            return
        try:
            path = parse_path(op.path)
        except InvalidPathError:
            return
        attribute = path.attribute
        urn = self._urn(attribute.urn)
        name = attribute.name
        if name.lower() in _NOT_CHECKED or not self._checked(self.spec(urn, name)):
            return
        if path.value_filter is None:
            if op.op == "remove":
                held = self.held(urn, name)
                if attribute.sub is not None and isinstance(held, Mapping):
                    held = lookup(held, attribute.sub, attribute.sub.lower())
                elif attribute.sub is not None and isinstance(held, list):
                    # The sub-attribute of every value (``emails.type``), not the values.
                    sub = attribute.sub
                    held = [e for e in held if isinstance(e, Mapping)]
                    held = [v for e in held if not _empty(v := lookup(e, sub, sub.lower()))]
                if not _empty(held):
                    self.note(urn, name, attribute.sub, "not_cleared")
            elif attribute.sub is not None:
                self.attribute(urn, name, {attribute.sub: value})
            else:
                self.attribute(urn, name, value)
            return
        self.filtered(urn, name, path.value_filter, sub=path.sub_attribute, op=op.op, value=value)

    def filtered(
        self, urn: str | None, name: str, value_filter: Any, *, sub: str | None, op: str, value: Any
    ) -> None:
        """An operation on the values a filter selects (``emails[type eq "work"].value``)."""
        spec = self.spec(urn, name)
        held = self.held(urn, name)
        elements = [e for e in held if isinstance(e, Mapping)] if isinstance(held, list) else []
        selects = self.predicate(urn, name, value_filter)
        chosen = [e for e in elements if selects(e)]
        if op == "remove":
            if any(sub is None or not _empty(lookup(e, sub, sub.lower())) for e in chosen):
                self.note(urn, name, sub, "not_cleared", value_filter)
            return
        wanted: Mapping[str, Any] = (
            {sub: value} if sub is not None else value if isinstance(value, Mapping) else {}
        )
        if chosen:
            for element in chosen:
                for key, expected in wanted.items():
                    self.sub(
                        urn=urn,
                        name=name,
                        spec=spec,
                        sub=key,
                        sent=expected,
                        held=element,
                        value_filter=value_filter,
                    )
            return
        if not elements:
            self.note(urn, name, None, "dropped", value_filter)
            return
        # Nothing matches the filter: a value holding what was sent, without what the
        # filter reads, is the same value with those sub-attributes dropped.
        match = self.find(spec, wanted, elements) if wanted else None
        if match is None:
            # No value the filter selects, none holding what was sent: that value is
            # what the target did not keep.
            whole = sub is None or sub.lower() == "value"
            self.note(urn, name, sub, "dropped" if whole else "changed", value_filter)
            return
        for read in value_filter.attribute_paths():
            if _empty(lookup(match, read.name, read.name.lower())):
                self.note(urn, name, read.name, "dropped")
        for key, expected in wanted.items():
            self.sub(urn=urn, name=name, spec=spec, sub=key, sent=expected, held=match)

    def observations(self) -> list[Observation]:
        return [
            Observation(self.resource_type, path, how) for path, how in sorted(self.found.items())
        ]


def _core_urn(resource_type: str) -> str:
    from ..models import Group, User

    return User.schema_urn if resource_type == "User" else Group.schema_urn


def _folded(element: Mapping[str, Any]) -> set[str]:
    return {key.lower() for key in element}


def scopes_of(
    resource_type: str, paths: Sequence[str], schema: SchemaTable
) -> tuple[ElementScope, ...]:
    """The element scopes the mapping's ``paths`` of ``resource_type`` give (what the
    checks name a value by); none for paths that do not parse (the planner says so)."""
    cls: type[User] | type[Group] = User if resource_type == "User" else Group
    try:
        return element_scopes(cls, tuple(sorted(set(paths))), schema)
    except InvalidPathError:
        return ()


def unkept_by_resource(
    resource_type: str,
    sent: Resource,
    answered: Resource,
    schema: SchemaTable,
    scopes: Sequence[ElementScope] = (),
) -> list[Observation]:
    """What ``answered`` (the target's answer to a create or PUT of ``sent``, or a
    read-back) does not hold of what ``sent`` set. ``scopes``: the element scopes of
    what the mapping writes (a value they select is reported as that value)."""
    checker = _Checker(resource_type, answered, schema, scopes)
    checker.body(to_scim(sent, request=True))
    return checker.observations()


def unkept_by_patch(
    resource_type: str,
    operations: Sequence[PatchOperation],
    answered: Resource,
    schema: SchemaTable,
    scopes: Sequence[ElementScope] = (),
) -> list[Observation]:
    """What ``answered`` (the answer to PATCH ``operations``, or a read-back) does not
    hold of what they set or removed (``scopes``: see :func:`unkept_by_resource`)."""
    checker = _Checker(resource_type, answered, schema, scopes)
    for op in operations:
        checker.operation(op)
    return checker.observations()
