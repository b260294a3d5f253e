"""How a stored resource is shown: computed attributes added, projected, located.

Rules of rendering (RFC 7643 §2.4, §4.1.2, §7; RFC 7644 §3.4.2.5):

- ``returned: never`` attributes (``password``) are never shown.
- ``User.groups`` is computed from the groups holding the user, directly or through
  other groups (``"direct"``/``"indirect"``), never stored.
- Members and groups carry their ``$ref``; ``meta.location`` is the resource's URL
  as the client addressed the server (its ``origin``).
- ``attributes`` / ``excludedAttributes`` project the answer (not both at once).
- Quirks that hide what is stored (no ETags, groups without ``members`` unless asked
  for) apply to what clients see, and only then: rendering without quirks shows the
  resource as it is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._listing import Selection, parse_selection, project
from ._store import GROUP, USER
from ._validation import KIND_BY_NAME, KINDS
from ._wire import ScimRequestError, WireResponse, json_response

if TYPE_CHECKING:
    from ..schema import SchemaTable
    from ._quirks import Quirks
    from ._routes import Context
    from ._store import Store
    from ._validation import Kind

__all__ = ["Renderer"]

Resource = dict[str, Any]


class Renderer:
    """Shows the resources of ``store`` under ``base_path`` (call under the service lock)."""

    def __init__(self, store: Store, table: SchemaTable, base_path: str) -> None:
        self.store = store
        self.table = table
        self.base_path = base_path
        #: The attributes of each resource type never returned (RFC 7643 §7 "never").
        self.never_returned = {
            kind.name: tuple(
                spec.name
                for urn, spec in table.attributes(kind.name)
                if urn is None and spec.returned == "never"
            )
            for kind in KINDS.values()
        }

    def location(self, origin: str, kind_name: str, resource_id: str) -> str:
        """The absolute URL of a resource."""
        return f"{origin}{self.base_path}{KIND_BY_NAME[kind_name].endpoint}/{resource_id}"

    def render(
        self,
        kind_name: str,
        resource: Resource,
        origin: str,
        include: Selection | None = None,
        exclude: Selection | None = None,
        *,
        quirks: Quirks | None,
    ) -> Resource:
        """The representation of a stored resource: computed attributes added, projected.

        ``quirks=None`` shows the resource as it is, whatever a quirk hides from clients.
        """
        out = dict(resource)
        for name in self.never_returned[kind_name]:
            out.pop(name, None)
        resource_id = resource["id"]
        omit_members = kind_name == GROUP and quirks is not None and quirks.omit_group_members
        if kind_name == USER:
            groups = self.memberships(resource_id)
            if groups:
                out["groups"] = [self.membership(origin, *group) for group in groups]
        elif "members" in out and not (
            omit_members and not (include is not None and "members" in include)
        ):
            out["members"] = [
                {**m, "$ref": self.location(origin, m.get("type", USER), m["value"])}
                for m in out["members"]
            ]
        meta = {**out.pop("meta"), "location": self.location(origin, kind_name, resource_id)}
        if quirks is not None and not quirks.etag_supported:
            del meta["version"]
        out["meta"] = meta
        return project(
            out,
            include=include,
            exclude=exclude,
            on_request_only=("members",) if omit_members else (),
        )

    def with_groups(self, user: Resource) -> Resource:
        """The user with its computed ``groups``, for a filter that names them."""
        groups = self.memberships(user["id"])
        if not groups:
            return user
        return {**user, "groups": [self.membership("", *group) for group in groups]}

    def memberships(self, user_id: str) -> list[tuple[str, str]]:
        """``(group id, "direct" or "indirect")`` of every group the user is in: its own
        groups, then the groups holding those, and so on (RFC 7643 §4.1.2), each once."""
        direct = self.store.groups_of(user_id)
        out = [(group_id, "direct") for group_id in direct]
        seen = set(direct)
        for group_id, _ in out:  # breadth first: `out` grows as parents are found
            for parent in self.store.groups_of(group_id):
                if parent not in seen:
                    seen.add(parent)
                    out.append((parent, "indirect"))
        return out

    def membership(self, origin: str, group_id: str, kind: str) -> dict[str, Any]:
        """One entry of ``User.groups``."""
        group = self.store.get(GROUP, group_id)
        entry = {
            "value": group_id,
            "$ref": self.location(origin, GROUP, group_id),
            "type": kind,
        }
        if group is not None and "displayName" in group:
            entry["display"] = group["displayName"]
        return entry

    def selections(
        self, kind_name: str, context: Context, attributes: Any = None, excluded: Any = None
    ) -> tuple[Selection | None, Selection | None]:
        """What ``attributes`` / ``excludedAttributes`` (given, else the query's) select."""
        attributes = attributes if attributes is not None else context.params.get("attributes")
        excluded = excluded if excluded is not None else context.params.get("excludedattributes")
        if attributes and excluded:
            raise ScimRequestError(
                400, "attributes and excludedAttributes cannot be used together", "invalidValue"
            )
        include = (
            parse_selection(_split_paths(attributes), kind_name, self.table) if attributes else None
        )
        exclude = (
            parse_selection(_split_paths(excluded), kind_name, self.table) if excluded else None
        )
        return include, exclude

    def resource_response(
        self,
        status: int,
        kind: Kind,
        resource: Resource,
        context: Context,
        *,
        location: bool = False,
    ) -> WireResponse:
        """The answer holding one resource, projected as the query asks, with its ETag
        (when the quirks allow) and, for a create, its ``Location``."""
        include, exclude = self.selections(kind.name, context)
        origin = context.request.origin
        body = self.render(kind.name, resource, origin, include, exclude, quirks=context.quirks)
        headers: list[tuple[str, str]] = []
        if context.quirks.etag_supported:
            headers.append(("ETag", resource["meta"]["version"]))
        if location:
            headers.append(("Location", self.location(origin, kind.name, resource["id"])))
        return json_response(status, body, tuple(headers))


def _split_paths(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [p for p in (part.strip() for part in value.split(",")) if p]
    return [str(v) for v in value]
