"""``scimsync check --probe``: write a throwaway user and group, and see what the target keeps.

Only with ``--probe``, because it writes. In order:

1. it says what it will write, before anything: the names and the URL;
2. it creates a user carrying every attribute the mapping writes, values made up
   per attribute type (a unique ``userName`` ``scimsync-probe-<random>@example.invalid``,
   ``externalId`` ``scimsync-probe-<random>``; the mapping's constants and its
   filters' values as they are), and a group with that user as its member;
3. it reads both back and reports each attribute and sub-attribute the target
   dropped or changed — the comparison a sync makes of each of its writes
   (:func:`~scimsync.sync._verify.unkept_by_resource`);
4. unless the target announces no PATCH, it PATCHes one singular attribute of the
   user in ``replace`` style and in ``add`` style, sets the first value-filter path
   the mapping writes (``emails[type eq "work"].value``) again to the value it holds,
   and removes and adds back the group's member (a value filter too), reporting which
   the target accepts (a 501, or a 400 about the operation's form, is a refusal; a
   value filter refused with a 400 is written with PUT by syncs);
5. it deletes the group and the user, and reports what could not be deleted, with
   the ids.

Attributes whose values cannot come back (write-only, returned only on request),
references to other users and whole extension objects are not probed, and said so.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import from_scim
from ..errors import NotFoundError, OutcomeUnknownError, ScimHTTPError, ScimSyncError
from ..filter import attr
from ..models import Group, Member, PatchOperation, User
from ..sources import Record
from ..sync._verify import Observation, unkept_by_patch, unkept_by_resource
from ..targets._facts import refuses_style
from ._findings import Finding, Status
from ._sample import compared_entries, omitted

if TYPE_CHECKING:
    from collections.abc import Mapping as MappingABC

    from ..client import AsyncScimClient
    from ..mapping import Entry, Mapping
    from ..schema import AttributeSpec, SchemaTable

__all__ = ["ProbeNames", "ProbeReport", "probe_data", "run_probe"]

_PREFIX = "scimsync-probe"

#: Made-up strings a target may check the form of, by (attribute, sub-attribute).
_PLAUSIBLE = {
    ("phonenumbers", "value"): "+15555550100",
    ("locale", ""): "en-US",
    ("preferredlanguage", ""): "en-US",
    ("timezone", ""): "America/Los_Angeles",
    ("addresses", "country"): "US",
    ("addresses", "postalcode"): "94105",
}


@attrs.frozen
class ProbeNames:
    """The names of the throwaway resources: random, and recognisable as the probe's."""

    user_name: str
    external_id: str
    group_name: str

    @classmethod
    def new(cls, tag: str | None = None) -> ProbeNames:
        """Names with ``tag`` (default: 8 random hex digits) in them."""
        base = f"{_PREFIX}-{tag or secrets.token_hex(4)}"
        return cls(user_name=f"{base}@example.invalid", external_id=base, group_name=base)

    def announcement(self, url: str) -> str:
        """What the probe will write, said before it writes."""
        return (
            f"Probe: this check writes to {url}: it creates the user {self.user_name} "
            f"(externalId {self.external_id}) and the group {self.group_name}, changes them "
            "with PATCH, then deletes both."
        )


@attrs.frozen
class Step:
    """One request of the probe beyond the creates: a PATCH style, a member change."""

    resource_type: str
    op: str
    path: str
    outcome: str  # "accepted", "not kept", "refused", "failed" or "not probed"
    status: int | None = None
    detail: str = ""
    #: The request's path has a value filter (a filtered attribute, a member removal).
    filtered: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "resourceType": self.resource_type,
            "op": self.op,
            "path": self.path,
            "outcome": self.outcome,
            "status": self.status,
            "detail": self.detail,
        }


@attrs.frozen
class NotProbed:
    """A mapped attribute the probe leaves out, and why."""

    resource_type: str
    path: str
    reason: str


@attrs.define
class ProbeReport:
    """What the probe wrote, what came back, and what it cleaned up."""

    url: str
    names: ProbeNames
    user_id: str | None = None
    group_id: str | None = None
    sent: dict[str, list[str]] = attrs.field(factory=dict)
    unkept: list[Observation] = attrs.field(factory=list)
    not_probed: list[NotProbed] = attrs.field(factory=list)
    steps: list[Step] = attrs.field(factory=list)
    problems: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    #: (resource type, id, deleted, detail)
    cleanup: list[tuple[str, str, bool, str]] = attrs.field(factory=list)

    def findings(self) -> list[Finding]:
        """The probe's lines for ``scimsync check``."""
        found = [Finding("probe", "warning", problem) for problem in self.problems]
        for resource_type, paths in self.sent.items():
            unkept = [o for o in self.unkept if o.resource_type == resource_type]
            found.extend(
                Finding("probe", "warning", f"{o.resource_type} {o.path}: {_HOW[o.how]}")
                for o in unkept
            )
            status: Status = "ok" if not unkept else "note"
            kept = "all" if not unkept else f"{max(len(paths) - len(unkept), 0)} of"
            found.append(
                Finding(
                    "probe",
                    status,
                    f"{resource_type}: {kept} {len(paths)} attribute values sent came back as sent",
                )
            )
        found.extend(
            Finding("probe", "note", f"{n.resource_type} {n.path}: not probed ({n.reason})")
            for n in self.not_probed
        )
        found.extend(Finding("probe", "note", note) for note in self.notes)
        found.extend(self._step_finding(step) for step in self.steps)
        found.extend(self._cleanup_findings())
        return found

    def _step_finding(self, step: Step) -> Finding:
        what = f"PATCH '{step.op}' of {step.resource_type} {step.path}"
        text = f"{what}: {step.outcome}"
        if step.status is not None and step.outcome != "accepted":
            text += f" ({step.status})"
        if step.detail:
            text += f": {step.detail}"
        if step.outcome == "accepted":
            return Finding("probe", "ok", text)
        if step.outcome == "not probed":
            return Finding("probe", "note", text)
        if step.outcome == "refused" and step.filtered and step.status == 400:
            return Finding(
                "probe",
                "note",
                f"{text}: scimsync writes changes that need a value filter on "
                f"{step.resource_type}s with PUT to this target",
            )
        if step.outcome == "refused" and self._other_style_accepted(step):
            other = "add" if step.op == "replace" else "replace"
            return Finding("probe", "note", f"{text}: scimsync sends '{other}' to this target")
        return Finding("probe", "warning", text)

    def _other_style_accepted(self, step: Step) -> bool:
        return step.path != "members" and any(
            s.resource_type == step.resource_type
            and s.path == step.path
            and s.op != step.op
            and s.outcome == "accepted"
            for s in self.steps
        )

    def _cleanup_findings(self) -> list[Finding]:
        failed = [(rt, rid, detail) for rt, rid, deleted, detail in self.cleanup if not deleted]
        found = [
            Finding(
                "probe",
                "warning",
                f"cleanup: {rt} {rid} could not be deleted ({detail}); delete it by hand",
            )
            for rt, rid, detail in failed
        ]
        deleted = [f"{rt} {rid}" for rt, rid, ok, _ in self.cleanup if ok]
        if deleted:
            found.append(Finding("probe", "ok", f"cleanup: deleted {', '.join(deleted)}"))
        return found

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: everything the probe did and saw."""
        return {
            "url": self.url,
            "user": {
                "userName": self.names.user_name,
                "externalId": self.names.external_id,
                "id": self.user_id,
            },
            "group": {"displayName": self.names.group_name, "id": self.group_id},
            "sent": dict(self.sent),
            "unkept": [
                {"resourceType": o.resource_type, "path": o.path, "how": o.how} for o in self.unkept
            ],
            "notProbed": [
                {"resourceType": n.resource_type, "path": n.path, "reason": n.reason}
                for n in self.not_probed
            ],
            "patch": [step.to_dict() for step in self.steps],
            "problems": list(self.problems),
            "notes": list(self.notes),
            "cleanup": [
                {"resourceType": rt, "id": rid, "deleted": ok, "detail": detail}
                for rt, rid, ok, detail in self.cleanup
            ],
        }


_HOW = {
    "dropped": "dropped: accepted, then not returned (syncs leave it out once they see that)",
    "changed": "changed: returned with another value than the one sent",
    "not_cleared": "not cleared",
}

# -- what the probe sends (pure) ----------------------------------------------------------


def probe_data(
    mapping: Mapping, resource_type: str, schema: SchemaTable, names: ProbeNames
) -> tuple[dict[str, Any], list[NotProbed]]:
    """The SCIM JSON of the probe's ``resource_type``: every attribute the mapping
    writes, with made-up values; and the mapped attributes left out, with why."""
    data: dict[str, Any] = {}
    left_out: list[NotProbed] = []
    compared = {id(entry) for entry in compared_entries(mapping, resource_type, schema)}
    entries = (
        [*mapping.user_entries, *mapping.create_only_entries]
        if resource_type == "User"
        else list(mapping.group_entries)
    )
    for entry in entries:
        path = entry.path
        if omitted(entry):
            continue
        spec = schema.resolve(resource_type, path.schema_path) if path.attribute else None
        reason = None
        if entry.reference:
            reason = "another user's id"
        elif not path.attribute:
            reason = "a whole extension object"
        elif spec is None:
            reason = "not in the target's schema"
        elif spec.read_only:
            continue
        elif id(entry) not in compared:
            reason = "never returned" if spec.write_only else "returned only when asked for"
        if reason is not None or spec is None:
            left_out.append(NotProbed(resource_type, path.text, reason or "unknown"))
            continue
        entry.assign(data, _value(entry, spec, resource_type, names))
    if resource_type == "User":
        data["userName"] = names.user_name
    else:
        data["displayName"] = names.group_name
    return data, left_out


def _value(entry: Entry, spec: AttributeSpec, resource_type: str, names: ProbeNames) -> Any:
    path = entry.path
    top, sub = path.attribute.lower(), (path.sub or "").lower()
    if path.urn is None and not sub:
        if resource_type == "User" and top == "username":
            return names.user_name
        if resource_type == "Group" and top == "displayname":
            return names.group_name
    rule = entry.rule
    if not rule.reads and not rule.opaque:
        fixed = rule(Record(key=names.external_id))  # a constant, or the record's key
        if fixed is not None:
            return fixed
    if spec.complex and entry.multi_valued and path.sub is None:
        value_spec = spec.sub("value")
        value = _made_up(value_spec, top, "value", names) if value_spec is not None else None
    else:
        value = _made_up(spec, top, sub, names)
    if entry.multi_valued and not entry.complex and not isinstance(value, list):
        return [value]
    return value


def _made_up(spec: AttributeSpec, top: str, sub: str, names: ProbeNames) -> Any:
    """A value of ``spec``'s type that a target should take."""
    if spec.canonical_values:
        return spec.canonical_values[0]
    kind = spec.type.lower()
    if kind == "boolean":
        return True
    if kind == "integer":
        return 1
    if kind == "decimal":
        return 1.5
    if kind == "datetime":
        return "2001-02-03T04:05:06Z"
    if kind == "reference":
        return f"https://example.invalid/{names.external_id}"
    if kind == "binary":
        return "c2NpbXN5bmMtcHJvYmU="  # "scimsync-probe", base64
    if kind == "complex":
        return {
            inner.name: _made_up(inner, top, inner.name.lower(), names)
            for inner in spec.sub_attributes.values()
            if inner.writable and not inner.write_only and not inner.complex
            if not inner.name.startswith("$")
        }
    if top == "emails" and sub == "value":
        return names.user_name
    return _PLAUSIBLE.get((top, sub), f"{_PREFIX} {spec.name}")


def sent_paths(data: MappingABC[str, Any]) -> list[str]:
    """Each attribute and sub-attribute the SCIM JSON ``data`` sets, sorted."""
    out: set[str] = set()
    for name, value in data.items():
        if name.lower() == "schemas":
            continue
        if name.lower().startswith("urn:") and isinstance(value, dict):
            for inner, inner_value in value.items():
                out.update(_paths(f"{name}:{inner}", inner_value))
        else:
            out.update(_paths(name, value))
    return sorted(out)


def _paths(name: str, value: Any) -> set[str]:
    elements = value if isinstance(value, list) else [value]
    if any(isinstance(e, dict) for e in elements):
        return {f"{name}.{sub}" for e in elements if isinstance(e, dict) for sub in e}
    return {name}


def filtered_entry(mapping: Mapping, schema: SchemaTable) -> Entry | None:
    """The first value-filter path of users the mapping writes that the schema knows
    (``emails[type eq "work"].value``), if any."""
    for entry in compared_entries(mapping, "User", schema):
        path = entry.path
        if path.conditions is not None and schema.resolve("User", path.schema_path):
            return entry
    return None


def unkept_selector(entry: Entry, unkept: list[Observation]) -> str | None:
    """What the target did not keep of the value ``entry``'s filter selects or sets
    (``emails.type``): then the filter selects nothing there, whatever PATCH takes."""
    top = attrs.evolve(entry.path, sub=None).schema_path
    names = [name for name, _ in entry.path.conditions or ()]
    wanted = {top.lower(), *(f"{top}.{name}".lower() for name in [*names, entry.path.sub or ""])}
    lost = [o.path for o in unkept if o.resource_type == "User" and o.path.lower() in wanted]
    return lost[0] if lost else None


def patch_attribute(mapping: Mapping, schema: SchemaTable, unkept: list[Observation]) -> str:
    """The singular attribute the PATCH styles are tried on: the first simple string
    the mapping writes and the target kept (not userName nor externalId), else
    displayName."""
    lost = {o.path.lower() for o in unkept if o.resource_type == "User"}
    for entry in compared_entries(mapping, "User", schema):
        path = entry.path
        name = path.attribute
        if path.urn or path.sub or path.conditions is not None or name.lower() in lost:
            continue
        if name.lower() in ("username", "externalid"):
            continue
        spec = schema.resolve("User", name)
        if (
            spec is not None
            and spec.type == "string"
            and not (spec.multi_valued or spec.canonical_values or spec.read_only)
        ):
            return spec.name
    return "displayName"


# -- the probe (I/O) ----------------------------------------------------------------------


async def run_probe(
    client: AsyncScimClient,
    schema: SchemaTable,
    mapping: Mapping,
    names: ProbeNames,
    *,
    patch: bool,
) -> ProbeReport:
    """Create, read back, PATCH (with ``patch``) and delete the probe's user and group."""
    report = ProbeReport(url=str(client.base_url), names=names)
    try:
        user = await _probe_user(client, schema, mapping, report)
        if user is not None:
            await _probe_group(client, schema, mapping, report)
            if patch:
                await _probe_patch(client, schema, mapping, report)
            else:
                report.notes.append(
                    "PATCH styles not probed: the target announces no PATCH, or [target] "
                    "use_patch = false (updates are PUT)"
                )
    finally:
        await _clean_up(client, report)
    return report


async def _probe_user(
    client: AsyncScimClient, schema: SchemaTable, mapping: Mapping, report: ProbeReport
) -> str | None:
    names = report.names
    data, left_out = probe_data(mapping, "User", schema, names)
    report.not_probed.extend(left_out)
    try:
        user = from_scim(data, User)
    except ScimSyncError as exc:
        report.problems.append(f"the probe user could not be made: {_short(exc)}")
        return None
    try:
        created = await client.create(user)
    except OutcomeUnknownError:
        report.user_id = await _look_up(client, User, "userName", names.user_name)
        report.problems.append("POST /Users: the answer was lost; not probed further")
        return None
    except ScimSyncError as exc:
        report.problems.append(f"POST /Users refused the probe user: {_short(exc)}")
        return None
    report.user_id = created.id
    if created.id is None:
        report.problems.append("POST /Users answered a user without an id")
        return None
    report.sent["User"] = sent_paths(data)
    try:
        stored = await client.get(User, created.id)
    except ScimSyncError as exc:
        report.problems.append(f"GET /Users/{created.id}: {_short(exc)}")
        return None
    report.unkept.extend(unkept_by_resource("User", user, stored, schema))
    return created.id


async def _probe_group(
    client: AsyncScimClient, schema: SchemaTable, mapping: Mapping, report: ProbeReport
) -> None:
    names, user_id = report.names, report.user_id
    assert user_id is not None
    data, left_out = probe_data(mapping, "Group", schema, names)
    report.not_probed.extend(left_out)
    try:
        group = attrs.evolve(from_scim(data, Group), members=[Member(value=user_id)])
        created = await client.create(group)
    except OutcomeUnknownError:
        report.group_id = await _look_up(client, Group, "displayName", names.group_name)
        report.problems.append("POST /Groups: the answer was lost; not probed further")
        return
    except ScimSyncError as exc:
        report.problems.append(f"POST /Groups refused the probe group: {_short(exc)}")
        return
    report.group_id = created.id
    if created.id is None:
        report.problems.append("POST /Groups answered a group without an id")
        return
    report.sent["Group"] = [*sent_paths(data), "members.value"]
    try:
        stored = await client.get(Group, created.id)
        report.unkept.extend(unkept_by_resource("Group", group, stored, schema))
        if user_id not in _member_ids(stored):
            asked = await client.get(Group, created.id, attributes=["members"])
            if user_id in _member_ids(asked):
                report.notes.append(
                    "group members are returned only when asked for: set "
                    "request_group_members = true in [target]"
                )
            else:
                report.unkept.append(Observation("Group", "members", "dropped"))
    except ScimSyncError as exc:
        report.problems.append(f"GET /Groups/{created.id}: {_short(exc)}")


async def _probe_patch(
    client: AsyncScimClient, schema: SchemaTable, mapping: Mapping, report: ProbeReport
) -> None:
    user_id, group_id = report.user_id, report.group_id
    assert user_id is not None
    name = patch_attribute(mapping, schema, report.unkept)
    for style in ("replace", "add"):
        operation = PatchOperation(op=style, path=name, value=f"{_PREFIX} {style}")
        step = await _patch(client, User, user_id, [operation])
        if step.outcome == "accepted":
            stored = await _read(client, User, user_id, None)
            if stored is not None and unkept_by_patch("User", [operation], stored, schema):
                step = attrs.evolve(step, outcome="not kept")
        report.steps.append(attrs.evolve(step, op=style, path=name))
    # The value-filter path in the style syncs would send: the one accepted above.
    outcomes = {s.op: s.outcome for s in report.steps if s.resource_type == "User"}
    sent_as = (
        "add"
        if (outcomes.get("replace"), outcomes.get("add")) == ("refused", "accepted")
        else "replace"
    )
    entry = filtered_entry(mapping, schema)
    spec = schema.resolve("User", entry.path.schema_path) if entry is not None else None
    if entry is not None and spec is not None:
        lost = unkept_selector(entry, report.unkept)
        if lost is not None:
            step = Step("User", "", "", "not probed", detail=f"the target does not keep {lost}")
        else:
            value = _value(entry, spec, "User", report.names)
            operation = PatchOperation(op=sent_as, path=entry.path.path, value=value)
            step = await _patch(client, User, user_id, [operation])
            if step.outcome == "accepted":
                stored = await _read(client, User, user_id, None)
                if stored is not None and unkept_by_patch("User", [operation], stored, schema):
                    step = attrs.evolve(step, outcome="not kept")
        report.steps.append(attrs.evolve(step, op=sent_as, path=entry.path.path, filtered=True))
    if group_id is None:
        return
    member = str(attr("members").where(attr("value").eq(user_id)))
    for op, operation, wanted in (
        ("remove", PatchOperation(op="remove", path=member), False),
        ("add", PatchOperation(op="add", path="members", value=[{"value": user_id}]), True),
    ):
        step = await _patch(client, Group, group_id, [operation])
        if step.outcome == "accepted":
            stored = await _read(client, Group, group_id, ["members"])
            if stored is not None and (user_id in _member_ids(stored)) != wanted:
                step = attrs.evolve(
                    step,
                    outcome="not kept",
                    detail="the member is still there" if not wanted else "the member is missing",
                )
        report.steps.append(attrs.evolve(step, op=op, path="members", filtered=op == "remove"))


async def _patch(
    client: AsyncScimClient,
    kind: type[User] | type[Group],
    resource_id: str,
    operations: list[PatchOperation],
) -> Step:
    resource_type = kind.resource_type_name
    try:
        await client.patch(kind, resource_id, operations)
    except ScimSyncError as exc:
        if refuses_style(exc) and isinstance(exc, ScimHTTPError):
            return Step(resource_type, "", "", "refused", exc.status, exc.scim_type or "")
        status = exc.status if isinstance(exc, ScimHTTPError) else None
        return Step(resource_type, "", "", "failed", status, _short(exc))
    return Step(resource_type, "", "", "accepted")


async def _read(
    client: AsyncScimClient,
    kind: type[User] | type[Group],
    resource_id: str,
    attributes: list[str] | None,
) -> User | Group | None:
    try:
        return await client.get(kind, resource_id, attributes=attributes)
    except ScimSyncError:
        return None


async def _look_up(
    client: AsyncScimClient, kind: type[User] | type[Group], attribute: str, value: str
) -> str | None:
    """The id of what a create whose answer was lost made, if it made anything."""
    try:
        found = await client.find_by(kind, attribute, value)
    except ScimSyncError:
        return None
    return found[0].id if len(found) == 1 else None


async def _clean_up(client: AsyncScimClient, report: ProbeReport) -> None:
    for kind, resource_id in ((Group, report.group_id), (User, report.user_id)):
        if resource_id is None:
            continue
        resource_type = kind.resource_type_name
        try:
            await client.delete(kind, resource_id)
        except NotFoundError:
            report.cleanup.append((resource_type, resource_id, True, "already gone"))
        except ScimSyncError as exc:
            report.cleanup.append((resource_type, resource_id, False, _short(exc)))
        else:
            report.cleanup.append((resource_type, resource_id, True, ""))


def _member_ids(group: Group | User) -> set[str]:
    members = getattr(group, "members", None) or ()
    return {m.value for m in members if m.value}


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
