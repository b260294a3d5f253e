"""A token bucket that several clients (sync and async alike) can share."""

from __future__ import annotations

import math
import threading

from ..errors import ConfigurationError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Allow ``rate`` requests per second on average, with bursts of up to ``burst``.

    Pure bookkeeping: :meth:`reserve` says how long the caller must wait before
    sending; the client does the waiting (``time.sleep`` or ``asyncio.sleep``). Safe
    to share between threads and between clients.
    """

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigurationError("RateLimiter rate must be a positive number per second")
        if not (isinstance(burst, int) and burst >= 1):
            raise ConfigurationError("RateLimiter burst must be an integer, 1 or more")
        self.rate = float(rate)
        self.burst = burst
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Take one request slot at time ``now``; return the seconds to wait before using it.

        Reservations queue up: each caller waits behind those who reserved first.
        """
        with self._lock:
            if self._stamp is not None:
                elapsed = max(0.0, now - self._stamp)
                self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r}, burst={self.burst!r})"
