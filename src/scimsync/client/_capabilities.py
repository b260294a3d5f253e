"""What a target supports, read from its ServiceProviderConfig (RFC 7643 §5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ..models import ServiceProviderConfig

__all__ = ["ServiceCapabilities"]


@attrs.frozen(kw_only=True)
class ServiceCapabilities:
    """The features a SCIM service provider announces in its ServiceProviderConfig.

    What the client knows of a service, read by :meth:`from_config`; a service that
    announces nothing supports nothing. (:class:`~scimsync.targets.ScimTarget` turns
    it into the :class:`~scimsync.targets.TargetCapabilities` that every target,
    SCIM or not, declares to the runner.) ``max_members_per_operation`` is not part of
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
    ) -> ServiceCapabilities:
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
