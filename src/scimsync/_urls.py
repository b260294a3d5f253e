"""URL checks shared by the clients and the auth flows: no secrets over plain HTTP."""

from __future__ import annotations

import ipaddress

import httpx

from .errors import ConfigurationError

__all__ = ["is_loopback", "require_safe_url"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_safe_url(url: str | httpx.URL, *, what: str, allow_insecure_http: bool) -> httpx.URL:
    """Return ``url`` parsed, or raise :class:`ConfigurationError` if it is unsafe to use.

    Refused: anything but ``http``/``https``; credentials inside the URL (they would
    end up in logs); plain ``http`` to a host other than loopback, unless
    ``allow_insecure_http`` is given.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigurationError(f"{what} is not a valid URL") from None
    if parsed.userinfo:
        raise ConfigurationError(f"{what} must not carry credentials; pass them as auth instead")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"{what} must be an absolute http(s) URL, got {str(parsed)!r}")
    if parsed.scheme == "http" and not allow_insecure_http and not is_loopback(parsed.host):
        raise ConfigurationError(
            f"{what} {str(parsed)!r} uses plain http to a host that is not loopback; "
            "use https, or pass allow_insecure_http=True if you really mean it"
        )
    return parsed
