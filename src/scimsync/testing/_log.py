"""The request log: every request the server received, and what it answered.

Tests assert on it: ``server.requests.count("PATCH", "/Users") == 1``. Request
headers are not kept, so the log never holds a token.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs

from ._faults import FaultKind, path_matches

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LoggedRequest", "RequestLog"]


@attrs.frozen(kw_only=True)
class LoggedRequest:
    """One request and its outcome.

    ``path`` is relative to the server's base path (``/Users/2819c223``) and
    ``route`` names the endpoint with ids replaced (``/Users/{id}``). ``status`` is
    None when no answer was sent (a dropped connection, a timeout). ``fault`` is the
    fault injected into this request, if any.
    """

    method: str
    path: str
    route: str
    query: str = ""
    status: int | None = None
    fault: FaultKind | None = None
    body: bytes = attrs.field(default=b"", repr=False)

    def json(self) -> Any:
        """The request body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.body)


class RequestLog:
    """Every request the server received, oldest first. Safe to read from any thread."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def append(self, entry: LoggedRequest) -> None:
        """Record ``entry`` (the server does this)."""
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        """Forget every request logged so far."""
        with self._lock:
            self._entries.clear()

    def entries(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """The requests with ``method`` (any case) to ``path`` or under it; None matches all.

        ``path`` is relative to the base path and may be a route: ``"/Users"`` matches
        ``/Users``, ``/Users/{id}`` and ``/Users/.search``; ``"/Users/{id}"`` matches
        requests to any one user.
        """
        with self._lock:
            entries = list(self._entries)
        wanted = method.upper() if method is not None else None
        return [
            e
            for e in entries
            if (wanted is None or e.method == wanted)
            and (path is None or path_matches(e.path, path) or path_matches(e.route, path))
        ]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests :meth:`entries` would return."""
        return len(self.entries(method, path))

    def counts(self) -> Counter[tuple[str, str]]:
        """Requests counted by ``(method, route)``: ``{("PATCH", "/Users/{id}"): 1, ...}``."""
        with self._lock:
            return Counter((e.method, e.route) for e in self._entries)

    def by_method(self) -> Counter[str]:
        """Requests counted by method."""
        with self._lock:
            return Counter(e.method for e in self._entries)

    @property
    def last(self) -> LoggedRequest | None:
        """The most recent request, or None."""
        with self._lock:
            return self._entries[-1] if self._entries else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        with self._lock:
            return iter(list(self._entries))

    def __repr__(self) -> str:
        return f"<RequestLog of {len(self)} requests>"
