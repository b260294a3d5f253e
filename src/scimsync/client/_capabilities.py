"""What a target supports, read from its ServiceProviderConfig (RFC 7643 §5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ..models import ServiceProviderConfig

__all__ = ["Capabilities"]


@attrs.frozen(kw_only=True)
class Capabilities:
    """The features of a target that change how it should be written to.

    Built by :meth:`from_config` from what the target announces; a target that
    announces nothing supports nothing. ``max_members_per_operation`` is not part of
    SCIM discovery: set it from the target's documentation (None means no known
    limit).
    """

    patch: bool = False
    bulk: bool = False
    bulk_max_operations: int | None = None
    bulk_max_payload_size: int | None = None
    filter: bool = False
    filter_max_results: int | None = None
    sort: bool = False
    etag: bool = False
    change_password: bool = False
    max_members_per_operation: int | None = None

    @classmethod
    def from_config(
        cls, config: ServiceProviderConfig, *, max_members_per_operation: int | None = None
    ) -> Capabilities:
        """Read the capabilities a :class:`~scimsync.models.ServiceProviderConfig` announces."""
        return cls(
            patch=config.patch.supported,
            bulk=config.bulk.supported,
            bulk_max_operations=config.bulk.max_operations if config.bulk.supported else None,
            bulk_max_payload_size=config.bulk.max_payload_size if config.bulk.supported else None,
            filter=config.filter.supported,
            filter_max_results=config.filter.max_results if config.filter.supported else None,
            sort=config.sort.supported,
            etag=config.etag.supported,
            change_password=config.change_password.supported,
            max_members_per_operation=max_members_per_operation,
        )
