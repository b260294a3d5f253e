"""Parse and dump realistic SCIM users with scimsync and with scim2-models, same run.

Each user has a name, two emails, a phone number and the enterprise extension with a
manager. Prints wall times, ratios and peak memory of the parsed objects.

    python benchmarks/bench_models.py [--users 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _common import machine, peak_memory, print_rows, timed

from scimsync import User, from_scim, to_scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def make_payloads(count: int) -> list[dict[str, Any]]:
    """Build ``count`` distinct user payloads shaped like a real provider's."""
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": f"2819c223-7f76-453a-919d-{i:012d}",
            "externalId": f"emp-{i}",
            "userName": f"user{i}@example.com",
            "name": {
                "formatted": f"Ms. Barbara J Jensen {i}",
                "familyName": f"Jensen{i}",
                "givenName": "Barbara",
            },
            "displayName": f"Babs Jensen {i}",
            "title": "Tour Guide",
            "active": True,
            "emails": [
                {"value": f"user{i}@example.com", "type": "work", "primary": True},
                {"value": f"babs{i}@jensen.org", "type": "home"},
            ],
            "phoneNumbers": [{"value": f"+1 555 555 {i % 10000:04d}", "type": "work"}],
            ENTERPRISE: {
                "employeeNumber": str(i),
                "costCenter": "4130",
                "department": "Tour Operations",
                "manager": {
                    "value": f"26118915-6090-4610-87e4-{i % 97:012d}",
                    "displayName": "John Smith",
                },
            },
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": f'W/"{i:x}"',
                "location": f"https://example.com/v2/Users/{i}",
            },
        }
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()

    from scim2_models import Context
    from scim2_models import EnterpriseUser as PeerEnterpriseUser
    from scim2_models import User as PeerUser

    peer_cls = PeerUser[PeerEnterpriseUser]
    payloads = make_payloads(args.users)
    # Both sides get their own deep copy, so neither benefits from the other's caches.
    ours_in = json.loads(json.dumps(payloads))
    peer_in = json.loads(json.dumps(payloads))
    ctx = Context.RESOURCE_QUERY_RESPONSE

    def parse_ours() -> list[User]:
        return [from_scim(p, User) for p in ours_in]

    def parse_peer() -> list[Any]:
        return [peer_cls.model_validate(p, scim_ctx=ctx) for p in peer_in]

    t_parse_ours, users = timed(parse_ours)
    t_parse_peer, peer_users = timed(parse_peer)
    assert to_scim(users[0])["userName"] == payloads[0]["userName"]

    t_dump_ours, _ = timed(lambda: [to_scim(u) for u in users])
    t_dump_peer, _ = timed(lambda: [u.model_dump(scim_ctx=ctx) for u in peer_users])

    mem_ours = peak_memory(parse_ours)
    mem_peer = peak_memory(parse_peer)

    n = args.users
    us = 1e6 / n
    print(f"# bench_models: {n} users; {machine()}")
    print_rows(
        "SCIM models: parse and dump",
        [
            (
                f"parse {n} users (s)",
                f"{t_parse_ours:.3f}",
                f"{t_parse_peer:.3f}",
                f"{t_parse_peer / t_parse_ours:.1f}x faster",
            ),
            ("parse per user (µs)", f"{t_parse_ours * us:.1f}", f"{t_parse_peer * us:.1f}", ""),
            (
                f"dump {n} users (s)",
                f"{t_dump_ours:.3f}",
                f"{t_dump_peer:.3f}",
                f"{t_dump_peer / t_dump_ours:.1f}x faster",
            ),
            ("dump per user (µs)", f"{t_dump_ours * us:.1f}", f"{t_dump_peer * us:.1f}", ""),
            (
                "peak memory of parsed users (MB)",
                f"{mem_ours / 1e6:.0f}",
                f"{mem_peer / 1e6:.0f}",
                f"{mem_ours / mem_peer:.2f} of the peer's",
            ),
        ],
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
