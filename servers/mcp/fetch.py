"""Fetch an image URL (``--allow-urls``) from public addresses only, checked at every connection.

The check runs where the socket is opened (a network backend under httpx), so a redirect to
``http://127.0.0.1/`` or a host name that resolves to a private address is refused on every
hop, and a name that changes its answer between a check and the connection cannot slip past.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import anyio
import httpcore
import httpx

from thinkedit.tools.errors import BadInputError, ImageTooLargeError

#: Say why an address may not be fetched from, or None when it may.
AddressPolicy = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], str | None]
MAX_REDIRECTS = 5


def public_only(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Refuse loopback, private, link-local, multicast, reserved and unspecified addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


class BlockedAddressError(httpx.TransportError):
    """Refuse a connection to an address the policy forbids."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve each host, refuse it if any of its addresses is forbidden, connect to a checked one."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        for address in addresses:
            if (reason := self._policy(address)) is not None:
                raise BlockedAddressError(f"{host} resolves to {reason}; only public addresses are fetched")
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        return await self._inner.connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(policy: AddressPolicy = public_only, timeout: float = 30) -> httpx.AsyncClient:
    """Return an httpx client whose every connection (redirects included) passes ``policy``; no proxies."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public hook for the network backend; tests/test_hardening.py checks this still works.
    transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(), network_backend=_GuardedBackend(policy)
    )
    return httpx.AsyncClient(
        transport=transport, follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout, trust_env=False
    )


async def fetch_image_bytes(url: str, max_bytes: int, policy: AddressPolicy = public_only) -> bytes:
    """Download ``url`` from public addresses only, stopping at ``max_bytes``; errors say why."""
    data = bytearray()
    try:
        async with guarded_client(policy) as client:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise BadInputError(f"fetching {url} failed: HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise ImageTooLargeError(f"{url} is larger than the limit of {max_bytes} bytes")
    except BlockedAddressError as exc:
        raise BadInputError(f"refused to fetch {url}: {exc}") from None
    except httpx.TooManyRedirects:
        raise BadInputError(f"fetching {url} failed: more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        raise BadInputError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from None
    return bytes(data)
