"""How agencies may be reached: HTTPS with verified certificates, plain HTTP only on loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pipelines.common.errors import UsageError


class TransportError(UsageError, ValueError):
    """A source URL that would send data (and keys) in clear text to a non-loopback host."""


def check_transport(base_url: str) -> str:
    """Only the loopback replay server may be plain HTTP; everything else is HTTPS, verified."""
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return base_url
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return base_url
    raise TransportError(
        f"refusing {base_url}: agencies are reached over HTTPS; plain HTTP only to 127.0.0.1"
    )
