"""Faults as data: what can go wrong between a client and a SCIM service, and how often.

:class:`Faults` is a frozen value; the server keeps the random state that draws from
it (:class:`FaultInjector`), so the same seed and the same sequence of requests give
the same faults. Assigning ``server.faults`` starts a fresh draw.
"""

from __future__ import annotations

import enum
import random
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FaultKind", "Faults"]


class FaultKind(str, enum.Enum):
    """One kind of fault. The values are what :class:`Faults` accepts as strings too."""

    #: 429 Too Many Requests with a ``Retry-After`` header; nothing is processed.
    TOO_MANY_REQUESTS = "429"
    #: 500 Internal Server Error with a SCIM error body; nothing is processed.
    INTERNAL_ERROR = "500"
    #: 502 Bad Gateway with an HTML body, as a proxy answers; nothing is processed.
    BAD_GATEWAY = "502"
    #: 503 Service Unavailable with ``Retry-After``; nothing is processed.
    SERVICE_UNAVAILABLE = "503"
    #: The connection is dropped without an answer; nothing is processed.
    CONNECTION_RESET = "reset"
    #: The request is processed normally after ``Faults.latency`` seconds.
    LATENCY = "latency"
    #: No answer ever comes: the client times out; nothing is processed.
    TIMEOUT = "timeout"
    #: A write is applied, then the client gets ``Faults.after_commit`` instead of the answer.
    COMMIT_THEN_FAIL = "commit_then_fail"
    #: The request is processed, and the JSON answer is cut short.
    MALFORMED_JSON = "malformed_json"
    #: A listing page holds fewer resources than asked for although more remain.
    SHORT_PAGE = "short_page"
    #: Before a page after the first, a resource is inserted at or removed from the front.
    PAGE_DRIFT = "page_drift"


# Kinds that only make sense for some requests.
_LISTING_ONLY = frozenset({FaultKind.SHORT_PAGE, FaultKind.PAGE_DRIFT})
_WRITES_ONLY = frozenset({FaultKind.COMMIT_THEN_FAIL})
_BODY_ONLY = frozenset({FaultKind.MALFORMED_JSON})

AfterCommit = Literal["reset", "timeout", "500", "502", "503", "504"]
_AFTER_COMMIT = ("reset", "timeout", "500", "502", "503", "504")


def _to_kinds(kinds: Iterable[FaultKind | str]) -> frozenset[FaultKind]:
    if isinstance(kinds, (str, FaultKind)):
        kinds = [kinds]
    return frozenset(FaultKind(k) for k in kinds)


def _to_methods(methods: Iterable[str]) -> frozenset[str]:
    if isinstance(methods, str):
        methods = [methods]
    return frozenset(m.upper() for m in methods)


def _to_paths(paths: Iterable[str]) -> tuple[str, ...]:
    if isinstance(paths, str):
        paths = [paths]
    return tuple("/" + p.strip("/") for p in paths)


def _check_rate(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, got {value!r}")


def _check_after_commit(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in _AFTER_COMMIT:
        raise ValueError(f"after_commit must be one of {', '.join(_AFTER_COMMIT)}; got {value!r}")


def path_matches(path: str, prefix: str) -> bool:
    """True when ``path`` is ``prefix`` or lies under it (``/Users/42`` is under ``/Users``)."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


@attrs.frozen(kw_only=True)
class Faults:
    """Which faults to inject, into which requests, how often.

    Each request that matches ``methods`` and ``paths`` (empty: all) draws a fault
    with probability ``rate``; the kind is drawn among ``kinds`` that apply to that
    request (short pages only to listings, commit-then-fail only to writes). With
    the same ``seed`` and the same requests in the same order, the same faults come.
    After ``limit`` faults, no more are injected::

        server.faults = Faults(kinds=["429"], limit=1)          # the next request only
        server.faults = Faults(rate=0.2, seed=7, methods=["POST", "PATCH"])
        server.faults = None                                    # all faults off

    ``paths`` are relative to the server's base path (``"/Users"`` covers
    ``/Users/{id}`` too). ``retry_after`` is what 429 and 503 answers ask for, in
    seconds, or as an HTTP-date when ``retry_after_http_date`` is set. ``latency``
    is the delay of a latency fault, in seconds. ``after_commit`` is what a client
    sees after a commit-then-fail write: a dropped connection, a timeout, or a 5xx.
    """

    rate: float = attrs.field(default=1.0, validator=_check_rate)
    seed: int = 0
    kinds: frozenset[FaultKind] = attrs.field(default=frozenset(FaultKind), converter=_to_kinds)
    methods: frozenset[str] = attrs.field(default=frozenset(), converter=_to_methods)
    paths: tuple[str, ...] = attrs.field(default=(), converter=_to_paths)
    limit: int | None = None
    retry_after: float = 1.0
    retry_after_http_date: bool = False
    latency: float = 1.0
    after_commit: AfterCommit = attrs.field(default="reset", validator=_check_after_commit)

    def targets(self, method: str, path: str) -> bool:
        """True when a ``method`` request to ``path`` may draw a fault."""
        if self.methods and method.upper() not in self.methods:
            return False
        return not self.paths or any(path_matches(path, p) for p in self.paths)


class FaultInjector:
    """The random state behind one :class:`Faults` value (not thread-safe: call under a lock)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)  # noqa: S311 - reproducible, not secret
        self._ordered = [k for k in FaultKind if k in faults.kinds]
        self.injected = 0

    def draw(self, method: str, path: str, *, listing: bool, write: bool) -> FaultKind | None:
        """Return the fault for this request, or None.

        The caller adds to :attr:`injected` when the fault took effect (a short page
        cannot be shorter on the last page), which is what ``limit`` counts.
        """
        faults = self.faults
        if faults.limit is not None and self.injected >= faults.limit:
            return None
        if not faults.targets(method, path):
            return None
        if self._random.random() >= faults.rate:
            return None
        applicable = [
            kind
            for kind in self._ordered
            if (listing or kind not in _LISTING_ONLY)
            and (write or kind not in _WRITES_ONLY)
            and (method.upper() != "DELETE" or kind not in _BODY_ONLY)
        ]
        if not applicable:
            return None
        return self._random.choice(applicable)

    def pick(self, population: int) -> int:
        """A deterministic index in ``range(population)`` (which record drifts, say)."""
        return self._random.randrange(population)
