"""What a SCIM target does beyond what it announces, learned from what it answers.

Targets announce PATCH and then refuse some of it: ``add`` on user attributes
answered 501 while ``replace`` works (or the other way round), PATCH refused for a
whole resource type. :class:`ScimTarget <scimsync.targets.ScimTarget>` sends what
targets accept most widely (``replace`` for singular and complex attributes,
``add`` for new values of multi-valued ones and for group members); when an
operation style is refused it tries the other style once, and when PATCH itself
is refused it falls back to a read-modify-write PUT. Some targets take PATCH and
refuse any path with a value filter (``emails[type eq "work"].value``,
``members[value eq "…"]``: 400 ``invalidPath``, ``noTarget`` or no ``scimType``),
which no other style gets past: changes that need such a path are then written with
the same PUT, and the rest still with PATCH. What worked is remembered per resource
type (:class:`TargetFacts`), so the refused request is sent once, not on every write.

The pieces here are pure: which errors are refusals of a style, how operations are
written in the other style, and which operations use a value filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ..errors import BadRequestError, InvalidPathError, ScimHTTPError, ServerError
from ..patch import parse_path

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..models import PatchOperation
    from ..schema import SchemaTable

__all__ = ["TargetFacts", "filtered", "in_style", "refuses_patch", "refuses_style"]

#: scimType values of a 400 that refuses how an operation is written, not its value.
_STYLE_REFUSALS = frozenset({"invalidsyntax", "invalidpath", "notarget"})


def refuses_style(exc: BaseException) -> bool:
    """True when ``exc`` answers a PATCH in a way that another style may get past:
    501 Not Implemented, or a 400 about the operation's form (no ``scimType``,
    ``invalidSyntax``, ``invalidPath``, ``noTarget``), never about a value."""
    if isinstance(exc, ServerError):
        return exc.status == 501
    if isinstance(exc, BadRequestError):
        return exc.scim_type is None or exc.scim_type.lower() in _STYLE_REFUSALS
    return False


def refuses_patch(exc: BaseException) -> bool:
    """True when ``exc`` says the target does not implement PATCH here (501)."""
    return isinstance(exc, ScimHTTPError) and exc.status in (405, 501)


def filtered(operations: Sequence[PatchOperation]) -> bool:
    """True when one of ``operations`` has a path with a value filter
    (``emails[type eq "work"].value``, ``members[value eq "u1"]``)."""
    for op in operations:
        if op.path is None or "[" not in op.path:
            continue
        try:
            path = parse_path(op.path)
        except InvalidPathError:
            continue
        if path.value_filter is not None:
            return True
    return False


def in_style(
    operations: Sequence[PatchOperation],
    style: str,
    resource_type: str,
    schema: SchemaTable,
) -> list[PatchOperation] | None:
    """``operations`` with those on singular attributes written as ``style`` (``"add"``
    or ``"replace"``); None when no operation changes.

    Additions of values to a multi-valued attribute stay ``add`` (a ``replace``
    would drop the values it does not list) and removals stay removals.
    """
    out = []
    changed = False
    for op in operations:
        if op.op in ("add", "replace") and op.op != style and _singular(op, resource_type, schema):
            out.append(attrs.evolve(op, op=style))
            changed = True
        else:
            out.append(op)
    return out if changed else None


def _singular(op: PatchOperation, resource_type: str, schema: SchemaTable) -> bool:
    """True when ``op`` sets a singular value (an attribute, a sub-attribute, a value
    selected by a filter), not values of a multi-valued attribute."""
    if op.path is None:
        return False
    try:
        path = parse_path(op.path)
    except InvalidPathError:
        return False
    if path.value_filter is not None or path.attribute.sub is not None:
        return path.value_filter is None or path.sub_attribute is not None
    attribute = path.attribute
    top = attribute.name if attribute.urn is None else f"{attribute.urn}:{attribute.name}"
    spec = schema.resolve(resource_type, top)
    if spec is None:
        # An attribute the schema does not know (an extension the target does not
        # publish): a list of values is values, which a replace would drop.
        return not isinstance(op.value, (list, tuple))
    return not spec.multi_valued


@attrs.define
class TargetFacts:
    """What a target was found to do, beyond what it announces: learned as it answers,
    kept between runs (the :class:`~scimsync.Provisioner` stores it with its state).

    - ``no_patch``: resource types whose PATCH the target refuses (a PUT is sent);
    - ``no_filtered_patch``: resource types whose PATCH the target refuses when a
      path has a value filter (such changes are sent with PUT, the others with PATCH);
    - ``singular``: resource type → the operation style it accepts for singular
      attributes (``"replace"``, the default, or ``"add"``);
    - ``unfilterable``: ``(resource type, attribute)`` pairs the target cannot filter
      on (lookups list and compare instead);
    - ``max_members``: the most group members one PATCH operation carried that the
      target took, after it answered 413 to more (None: no cap found);
    - ``deviations``: other departures from RFC 7644 seen, in words (a listing
      without ``totalResults``, discovery that could not be read).

    :meth:`to_dict` / :meth:`from_dict` give plain strings for a state store;
    :meth:`describe` the lines to say once.
    """

    no_patch: set[str] = attrs.field(factory=set)
    no_filtered_patch: set[str] = attrs.field(factory=set)
    singular: dict[str, str] = attrs.field(factory=dict)
    unfilterable: set[tuple[str, str]] = attrs.field(factory=set)
    max_members: int | None = None
    deviations: list[str] = attrs.field(factory=list)

    def note(self, deviation: str) -> bool:
        """Record a deviation; True when it is new."""
        if deviation in self.deviations:
            return False
        self.deviations.append(deviation)
        return True

    def forget(self) -> None:
        """Know nothing: the next writes find out again."""
        self.no_patch.clear()
        self.no_filtered_patch.clear()
        self.singular.clear()
        self.unfilterable.clear()
        self.max_members = None
        self.deviations.clear()

    def merge(self, other: TargetFacts) -> None:
        """Add what ``other`` knows (earlier runs) to this."""
        self.no_patch |= other.no_patch
        self.no_filtered_patch |= other.no_filtered_patch
        for resource_type, style in other.singular.items():
            self.singular.setdefault(resource_type, style)
        self.unfilterable |= other.unfilterable
        if other.max_members is not None:
            self.max_members = min(self.max_members or other.max_members, other.max_members)
        for deviation in other.deviations:
            self.note(deviation)

    def to_dict(self) -> dict[str, str]:
        """Plain strings: ``{"User.patch": "put", "User.patch.filtered": "put",
        "User.singular": "add", …}``."""
        out = {f"{rt}.patch": "put" for rt in sorted(self.no_patch)}
        out.update((f"{rt}.patch.filtered", "put") for rt in sorted(self.no_filtered_patch))
        out.update((f"{rt}.singular", style) for rt, style in sorted(self.singular.items()))
        out.update((f"{rt}.filter.{name}", "no") for rt, name in sorted(self.unfilterable))
        if self.max_members is not None:
            out["Group.members.max"] = str(self.max_members)
        out.update((f"note.{text}", "") for text in self.deviations)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> TargetFacts:
        """Read what :meth:`to_dict` wrote; unknown entries are left out."""
        facts = cls()
        for name, value in data.items():
            if name.startswith("note."):
                facts.note(name.removeprefix("note."))
                continue
            resource_type, _, what = name.partition(".")
            if resource_type not in ("User", "Group"):
                continue
            if what == "patch" and value == "put":
                facts.no_patch.add(resource_type)
            elif what == "patch.filtered" and value == "put":
                facts.no_filtered_patch.add(resource_type)
            elif what == "singular" and value in ("add", "replace"):
                facts.singular[resource_type] = value
            elif what.startswith("filter."):
                facts.unfilterable.add((resource_type, what.removeprefix("filter.")))
            elif (resource_type, what) == ("Group", "members.max") and value.isdigit():
                facts.max_members = int(value) or None
        return facts

    def describe(self) -> list[str]:
        """What is known, in words, one line each."""
        lines = [
            f"the target refuses PATCH on {rt}s: they are written with PUT"
            for rt in sorted(self.no_patch)
        ]
        lines.extend(
            f"the target refuses PATCH paths with a value filter on {rt}s: changes that "
            "need one are written with PUT"
            for rt in sorted(self.no_filtered_patch)
        )
        lines.extend(
            f"the target refuses '{'replace' if style == 'add' else 'add'}' for {rt} "
            f"attributes: '{style}' is sent instead"
            for rt, style in sorted(self.singular.items())
            if style != "replace"
        )
        lines.extend(
            f"the target cannot filter {rt}s on {name}: lookups list them and compare"
            for rt, name in sorted(self.unfilterable)
        )
        if self.max_members is not None:
            lines.append(
                f"the target takes at most {self.max_members} members per PATCH "
                "operation (413 to more): member changes are sent in chunks of that size"
            )
        lines.extend(self.deviations)
        return lines
