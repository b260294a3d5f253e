"""Reading and writing one resource: GET, POST, PUT and DELETE (RFC 7644 §3.3–3.6).

Rules every write keeps (PATCH, in ``_patching``, ends in :meth:`Resources.save` too):

- **Validated whole, stored whole.** A body is read through the codec against the
  schema table (``_validation``); what is stored replaces the resource at once.
- **Unique names.** ``userName`` and group ``displayName`` are unique,
  case-insensitively: a clash is 409 ``uniqueness``.
- **Real members.** Every group member must exist and not be the group itself; its
  ``type`` is what it is; an empty member list is no ``members`` at all.
- **Versions.** Each change gets a new ``meta.version`` and ``lastModified``; a
  write that changes nothing keeps them. ``If-Match`` and ``If-None-Match`` are
  honoured when the quirks support ETags (412, 304).
- **writeOnly stays put.** A PUT leaving out a ``returned: never`` attribute keeps it.
- **Deleting takes a resource out of every group** it was a member of.
- Quirks that lose what they are sent (``dropped_attributes``) apply before storing.

Not thread-safe: the service calls it under its lock.
"""

from __future__ import annotations

import uuid
from datetime import timezone
from typing import TYPE_CHECKING, Any

from ._lossy import drop_attributes, dropped_refs
from ._store import GROUP, USER
from ._validation import KIND_BY_NAME, parse_json, read_resource
from ._wire import ScimRequestError, WireResponse

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ..schema import SchemaTable
    from ._quirks import Quirks
    from ._render import Renderer
    from ._routes import Context
    from ._store import Store
    from ._validation import Kind

__all__ = ["Resources"]

Resource = dict[str, Any]


class Resources:
    """The resources of ``store``, read and written by the rules above."""

    def __init__(
        self,
        store: Store,
        table: SchemaTable,
        renderer: Renderer,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.table = table
        self.renderer = renderer
        self.clock = clock

    # -- the endpoints ------------------------------------------------------------------

    def get(self, kind: Kind, resource_id: str, context: Context) -> WireResponse:
        """GET one resource (304 when ``If-None-Match`` names its version)."""
        resource = self.existing(kind, resource_id)
        version = resource["meta"]["version"]
        if_none_match = context.request.headers.get("if-none-match")
        if (
            if_none_match
            and context.quirks.etag_supported
            and _entity_tag(version) in _entity_tags(if_none_match)
        ):
            return WireResponse(status=304, headers=(("ETag", version),))
        return self.renderer.resource_response(200, kind, resource, context)

    def post(self, kind: Kind, context: Context) -> WireResponse:
        """POST a new resource: 201 with its ``Location``."""
        resource = self.create(kind.name, parse_json(context.request.body), quirks=context.quirks)
        return self.renderer.resource_response(201, kind, resource, context, location=True)

    def put(self, kind: Kind, resource_id: str, context: Context) -> WireResponse:
        """PUT: replace a resource with the one sent."""
        current = self.existing(kind, resource_id)
        self.check_version(current, context.request.headers.get("if-match"), context.quirks)
        data = parse_json(context.request.body)
        resource = read_resource(data, kind, self.table)
        for name in self.renderer.never_returned[kind.name]:
            # A client cannot read a writeOnly value back, so a PUT that leaves it out
            # keeps it rather than wiping it (RFC 7644 §3.5.1 allows either).
            if name not in resource and name in current:
                resource[name] = current[name]
        stored = self.save(kind, current, resource, context.quirks)
        return self.renderer.resource_response(200, kind, stored, context)

    def delete(self, kind: Kind, resource_id: str, context: Context) -> WireResponse:
        """DELETE a resource: 204."""
        current = self.existing(kind, resource_id)
        self.check_version(current, context.request.headers.get("if-match"), context.quirks)
        self.remove(kind, resource_id)
        return WireResponse(status=204)

    # -- the rules ----------------------------------------------------------------------

    def existing(self, kind: Kind, resource_id: str) -> Resource:
        """The stored resource, or 404."""
        resource = self.store.get(kind.name, resource_id)
        if resource is None:
            raise ScimRequestError(404, f"{kind.name} {resource_id!r} not found")
        return resource

    def create(
        self, kind_name: str, data: Any, resource_id: str | None = None, *, quirks: Quirks
    ) -> Resource:
        """Validate and store a new resource."""
        kind = KIND_BY_NAME[kind_name]
        resource = self._kept(kind, read_resource(data, kind, self.table), quirks)
        if resource_id is not None and self.store.type_of(resource_id) is not None:
            raise ScimRequestError(409, f"id {resource_id!r} is already taken", "uniqueness")
        self._admit(kind, resource, resource_id, quirks)
        stored = self.stored(kind, resource, resource_id or str(uuid.uuid4()))
        self.store.put(kind.name, stored)
        return stored

    def save(self, kind: Kind, current: Resource, resource: Resource, quirks: Quirks) -> Resource:
        """Store ``resource`` as the new state of ``current``; unchanged keeps its version."""
        resource = self._kept(kind, resource, quirks)
        resource_id = current["id"]
        self._admit(kind, resource, resource_id, quirks)
        unchanged = {k: v for k, v in current.items() if k not in ("id", "meta")}
        if {"schemas": resource.get("schemas", current["schemas"]), **resource} == unchanged:
            return current
        stored = self.stored(kind, resource, resource_id, created=current["meta"]["created"])
        self.store.put(kind.name, stored)
        return stored

    def remove(self, kind: Kind, resource_id: str) -> None:
        """Delete a resource and take it out of every group it was a member of."""
        for group_id in self.store.groups_of(resource_id):
            group = self.store.get(GROUP, group_id)
            if group is None:
                continue
            kept = [m for m in group.get("members", ()) if m.get("value") != resource_id]
            changed = {k: v for k, v in group.items() if k not in ("id", "meta", "members")}
            if kept:
                changed["members"] = kept
            stored = self.stored(
                KIND_BY_NAME[GROUP], changed, group_id, created=group["meta"]["created"]
            )
            self.store.put(GROUP, stored)
        self.store.delete(kind.name, resource_id)

    def stored(
        self, kind: Kind, resource: Resource, resource_id: str, created: str | None = None
    ) -> Resource:
        """``resource`` as kept: with its id and a new ``meta`` (version, times)."""
        now = _now_text(self.clock())
        schemas = resource.pop("schemas", [kind.schema])
        meta = {
            "resourceType": kind.name,
            "created": created or now,
            "lastModified": now,
            "version": self.store.next_version(),
        }
        return {"schemas": schemas, "id": resource_id, **resource, "meta": meta}

    def check_version(self, resource: Resource, if_match: str | None, quirks: Quirks) -> None:
        """412 unless ``If-Match`` names the resource's version (or ``*``)."""
        if if_match is None or not quirks.etag_supported:
            return
        tags = _entity_tags(if_match)
        version = resource["meta"]["version"]
        if "*" in tags or _entity_tag(version) in tags:
            return
        raise ScimRequestError(
            412, f"If-Match {if_match} does not match the current version {version}"
        )

    def _kept(self, kind: Kind, resource: Resource, quirks: Quirks) -> Resource:
        """What the target keeps of a resource it is sent (``dropped_attributes``)."""
        refs = dropped_refs(quirks.dropped_attributes).get(kind.name)
        return drop_attributes(resource, refs) if refs else resource

    def _admit(self, kind: Kind, resource: Resource, own_id: str | None, quirks: Quirks) -> None:
        self._check_unique(kind, resource, own_id)
        if kind.name == GROUP:
            self._check_members(resource, own_id, quirks)

    def _check_unique(self, kind: Kind, resource: Resource, own_id: str | None) -> None:
        attribute = "userName" if kind.name == USER else "displayName"
        value = resource.get(attribute)
        if not isinstance(value, str):
            return
        owner = self.store.owner_of_name(kind.name, value)
        if owner is not None and owner != own_id:
            raise ScimRequestError(
                409, f"{attribute} {value!r} is already taken by {kind.name} {owner}", "uniqueness"
            )

    def _check_members(self, resource: Resource, group_id: str | None, quirks: Quirks) -> None:
        members = resource.get("members")
        if members is None:
            return
        checked: list[dict[str, Any]] = []
        seen: set[str] = set()
        for member in members:
            value = member.get("value")
            if not value:
                raise ScimRequestError(
                    400, "every member needs a 'value' (the member's id)", "invalidValue"
                )
            actual = self.store.type_of(value)
            if actual is None:
                raise ScimRequestError(400, f"member {value!r} does not exist", "invalidValue")
            if value == group_id:
                raise ScimRequestError(400, "a group cannot be a member of itself", "invalidValue")
            declared = member.get("type")
            if isinstance(declared, str) and declared.lower() != actual.lower():
                raise ScimRequestError(
                    400, f"member {value!r} is a {actual}, not a {declared}", "invalidValue"
                )
            if value not in seen or quirks.duplicate_members_on_add:
                seen.add(value)
                entry = {k: v for k, v in member.items() if k != "$ref"}
                entry["type"] = actual
                checked.append(entry)
        if checked:
            resource["members"] = checked
        else:
            del resource["members"]  # RFC 7643 §2.5: an empty list is the same as unassigned


def _entity_tags(header: str) -> list[str]:
    """The entity tags an ``If-Match`` / ``If-None-Match`` header names, weak or not."""
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def _entity_tag(version: str) -> str:
    return version.removeprefix("W/")


def _now_text(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"
