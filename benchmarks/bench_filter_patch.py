"""Filters and PATCH with scimsync and with scim2-models, same run.

- parse a 3-clause filter, then evaluate it over every user (models, and SCIM dicts);
- ``diff`` over user pairs (what the target holds, what the source wants), 1% changed;
- ``apply_patch`` of a 3-operation PATCH.

The peer does the same with ``ScimFilter``, ``PatchOp.build_from`` and ``PatchOp.patch``
on its own models, built from the same payloads. Prints per-item microseconds and
ratios (peer time / scimsync time). scimsync's figures are the best of ``--repeat`` runs;
the peer's, tens of times slower, come from one run to keep the script short.

    python benchmarks/bench_filter_patch.py [--users 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _common import machine, print_rows, timed
from bench_models import make_payloads

from scimsync import User, from_scim, to_scim
from scimsync.filter import parse_filter
from scimsync.patch import apply_patch, diff

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FILTER = (
    'userName sw "user1" and active eq true and emails[type eq "work" and value co "@example.com"]'
)
PATCH = [
    {"op": "replace", "path": "title", "value": "Senior Tour Guide"},
    {"op": "replace", "path": 'emails[type eq "work"].display', "value": "Work"},
    {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Tours"},
]


def desired_payloads(payloads: list[dict[str, Any]], changed_every: int) -> list[dict[str, Any]]:
    """What a source wants for each user: managed attributes only; every Nth one differs."""
    out = []
    for index, payload in enumerate(payloads):
        desired = {
            "schemas": payload["schemas"],
            "externalId": payload["externalId"],
            "userName": payload["userName"],
            "name": {k: payload["name"][k] for k in ("familyName", "givenName")},
            "displayName": payload["displayName"],
            "title": payload["title"],
            "active": payload["active"],
            "emails": payload["emails"],
            ENTERPRISE: {
                "department": payload[ENTERPRISE]["department"],
                "manager": {"value": payload[ENTERPRISE]["manager"]["value"]},
            },
        }
        if index % changed_every == 0:
            desired["title"] = "Senior Tour Guide"
        out.append(desired)
    return out


def _ratio(ours: float, peer: float | None) -> str:
    return f"{peer / ours:.1f}x faster" if peer is not None else ""


def _us(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    n, repeat = args.users, args.repeat

    from scim2_models import Context, PatchOp, ScimFilter
    from scim2_models import EnterpriseUser as PeerEnterpriseUser
    from scim2_models import User as PeerUser

    peer_cls = PeerUser[PeerEnterpriseUser]
    ctx = Context.RESOURCE_QUERY_RESPONSE
    payloads = make_payloads(n)
    targets = [from_scim(p, User) for p in payloads]
    target_dicts = [to_scim(u) for u in targets]
    peer_targets = [peer_cls.model_validate(p, scim_ctx=ctx) for p in payloads]
    desired = desired_payloads(payloads, changed_every=100)
    wanted = [from_scim(d, User) for d in desired]
    peer_wanted = [peer_cls.model_validate(json.loads(json.dumps(d))) for d in desired]

    # -- filters -------------------------------------------------------------------------------
    # Both sides keep parsed filters in a cache of 1024; distinct texts miss it.
    parses = 10_000
    texts = [FILTER.replace("user1", f"user{i}") for i in range(parses)]
    t_parse_new, _ = timed(lambda: [parse_filter(t) for t in texts], 1)
    t_parse_new_peer, _ = timed(lambda: [ScimFilter(t) for t in texts], 1)
    t_parse, _ = timed(lambda: [parse_filter(FILTER) for _ in range(parses)], repeat)
    t_parse_peer, _ = timed(lambda: [ScimFilter(FILTER) for _ in range(parses)], 1)
    f = parse_filter(FILTER)
    peer_f = ScimFilter[peer_cls](FILTER)

    def evaluate_models() -> int:
        # matches() infers the resource type, looks up the compiled predicate and runs it.
        return sum(f.matches(u) for u in targets)

    predicate = f.compile(resource_type="User")
    t_eval, hits = timed(evaluate_models, repeat)
    t_eval_compiled, _ = timed(lambda: sum(predicate(u) for u in targets), repeat)
    t_eval_dicts, dict_hits = timed(lambda: sum(predicate(d) for d in target_dicts), repeat)
    t_eval_peer, peer_hits = timed(lambda: sum(peer_f.match(u) for u in peer_targets), 1)
    assert hits == dict_hits == peer_hits, (hits, dict_hits, peer_hits)

    # -- diff ----------------------------------------------------------------------------------
    pairs = list(zip(targets, wanted, strict=True))
    peer_pairs = list(zip(peer_targets, peer_wanted, strict=True))
    t_diff, operations = timed(lambda: [diff(old, new) for old, new in pairs], repeat)
    t_diff_peer, peer_patches = timed(
        lambda: [PatchOp.build_from(old, new) for old, new in peer_pairs], 1
    )
    changed = sum(1 for ops in operations if ops)
    assert changed == sum(1 for p in peer_patches if p is not None) == len(range(0, n, 100))
    unchanged = [(o, w) for (o, w), ops in zip(pairs, operations, strict=True) if not ops]
    t_unchanged, _ = timed(lambda: [diff(o, w) for o, w in unchanged], repeat)
    changed_pairs = [(o, w) for (o, w), ops in zip(pairs, operations, strict=True) if ops]
    t_changed, _ = timed(lambda: [diff(o, w) for o, w in changed_pairs], repeat)
    # A desired state that leaves email "primary" unset: element-by-element comparison.
    loose = [
        (
            o,
            from_scim(
                {**d, "emails": [{"value": e["value"], "type": e["type"]} for e in d["emails"]]},
                User,
            ),
        )
        for o, d in zip(targets[: n // 10], desired, strict=False)
    ]
    t_loose, loose_ops = timed(lambda: [diff(o, w) for o, w in loose], repeat)
    assert sum(1 for ops in loose_ops if ops) == len(range(0, len(loose), 100))

    # -- apply_patch ---------------------------------------------------------------------------
    patched_count = min(n, 10_000)
    t_apply, patched = timed(
        lambda: [apply_patch(u, PATCH) for u in targets[:patched_count]], repeat
    )
    assert patched[0].title == "Senior Tour Guide"
    peer_patch = PatchOp[peer_cls].model_validate(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": PATCH},
        scim_ctx=Context.RESOURCE_PATCH_REQUEST,
    )
    t_apply_peer, _ = timed(lambda: [peer_patch.patch(u) for u in peer_targets[:patched_count]], 1)

    print(f"# bench_filter_patch: {n} users, best of {repeat} (peer: one run); {machine()}")
    print(f"# filter: {FILTER}  ({hits} of {n} users match)")
    print_rows(
        "Filters: parse and evaluate",
        [
            ("parse a new filter (µs)", _us(t_parse_new, parses), _us(t_parse_new_peer, parses),
             _ratio(t_parse_new, t_parse_new_peer)),
            ("parse a cached filter (µs)", _us(t_parse, parses), _us(t_parse_peer, parses),
             _ratio(t_parse, t_parse_peer)),
            (f"evaluate over {n} users (s)", f"{t_eval:.3f}", f"{t_eval_peer:.3f}",
             _ratio(t_eval, t_eval_peer)),
            ("evaluate, per user: matches() (µs)", _us(t_eval, n), _us(t_eval_peer, n),
             _ratio(t_eval, t_eval_peer)),
            ("evaluate, per user: compiled predicate (µs)", _us(t_eval_compiled, n),
             _us(t_eval_peer, n), _ratio(t_eval_compiled, t_eval_peer)),
            ("evaluate, per SCIM dict (µs)", _us(t_eval_dicts, n), "no equivalent", ""),
        ],
    )  # fmt: skip
    print_rows(
        f"diff: {n} user pairs, {changed} changed (1%)",
        [
            (f"diff {n} pairs (s)", f"{t_diff:.3f}", f"{t_diff_peer:.3f}",
             _ratio(t_diff, t_diff_peer)),
            ("diff per pair (µs)", _us(t_diff, n), _us(t_diff_peer, n),
             _ratio(t_diff, t_diff_peer)),
            ("diff per unchanged pair (µs)", _us(t_unchanged, len(unchanged)), "", ""),
            ("diff per changed pair (µs)", _us(t_changed, len(changed_pairs)), "", ""),
            ("diff per pair, primary left unset (µs)", _us(t_loose, len(loose)), "", ""),
        ],
    )  # fmt: skip
    print_rows(
        f"apply_patch: 3 operations on {patched_count} users",
        [
            ("apply per user (µs)", _us(t_apply, patched_count),
             _us(t_apply_peer, patched_count), _ratio(t_apply, t_apply_peer)),
        ],
    )  # fmt: skip
    print(
        "\nPeer: scim2-models ScimFilter (parse unbound; evaluate bound to User[EnterpriseUser]),"
        "\nPatchOp.build_from (diff; also applies its patch to a copy to check it) and"
        "\nPatchOp.patch (in place). It evaluates models only, so dicts have no peer figure."
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
