"""Turn an image argument into pixels: a confined file path, a data: URI, a thinkedit:// URI.

Paths are resolved (symlinks included) before they are checked against the allowed roots, so a
link inside a root that points outside it is refused, and the file is then opened by descriptor
along the checked path (``open_beneath``), so swapping a folder for a symlink between the
check and the read leaks nothing. URLs are fetched only when the server was started with
``--allow-urls``, and only from public addresses, checked where each socket is opened (a network
backend under httpx): a redirect to ``http://127.0.0.1/`` or a host name that resolves to a private
address is refused on every hop, and a name that changes its answer between a check and the
connection cannot slip past. Decoding runs off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import anyio
import httpcore
import httpx
from PIL.Image import Image

from thinkedit.agent.runs import Runner
from thinkedit.servers.mcp import DEFAULT_MAX_IMAGE_BYTES
from thinkedit.servers.mcp.results import SCHEME, resolve_uri
from thinkedit.tools.errors import BadInputError, ImageTooLargeError
from thinkedit.tools.images import MAX_FILE_BYTES, SERVER_MAX_PIXELS, load_image, read_fd

log = logging.getLogger(__name__)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def default_roots(data_dir: Path, cwd: Path | None = None) -> list[Path]:
    """Return the working directory and the data directory (never a filesystem root)."""
    roots = [Path(data_dir).expanduser()]
    here = (cwd or Path.cwd()).resolve()
    if here == Path(here.anchor):
        log.warning("working directory %s is a filesystem root; not allowing it (use --allow-root)", here)
    else:
        roots.insert(0, here)
    return roots


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
    # httpx has no public hook for the network backend; tests/test_hardening_inputs.py checks this still works.
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


@dataclass
class ImageResolver:
    """Resolve image arguments under a fixed policy: roots, size limit, URL fetching on/off."""

    runner: Runner
    roots: list[Path]
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    allow_urls: bool = False
    max_pixels: int = SERVER_MAX_PIXELS
    url_policy: AddressPolicy = public_only
    _resolved_roots: list[Path] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._resolved_roots = [Path(r).expanduser().resolve() for r in self.roots]

    @property
    def allowed_roots(self) -> list[Path]:
        """Return the roots, resolved."""
        return list(self._resolved_roots)

    async def load(self, text: str) -> Image:
        """Return the image ``text`` names, or raise ``BadInputError`` saying what is wrong."""
        text = text.strip()
        if not text:
            raise BadInputError("image is empty")
        if "\0" in text:
            raise BadInputError("image argument contains a NUL byte; pass a plain path, a data: URI or a thinkedit:// URI")
        if text.startswith("data:"):
            data = self._decode_data_uri(text)
            return await asyncio.to_thread(load_image, data, max_pixels=self.max_pixels)
        if text.startswith(SCHEME):
            ref = await resolve_uri(self.runner, text)
            return await asyncio.to_thread(self.runner.store.get, ref)
        scheme = urlparse(text).scheme.lower()
        if scheme in {"http", "https"}:
            data = await self._fetch(text)
            return await asyncio.to_thread(load_image, data, max_pixels=self.max_pixels)
        if scheme == "file":
            text = unquote(urlparse(text).path)
            if "\0" in text:
                raise BadInputError("image path contains a NUL byte")
        elif len(scheme) > 1:
            raise BadInputError(
                f"unsupported image URI scheme {scheme!r}: use a path, a data: URI or a thinkedit:// URI"
            )
        return await asyncio.to_thread(self._load_confined, text)

    def _load_confined(self, text: str) -> Image:
        """Check ``text`` against the roots, open it by descriptor along the checked path, decode it."""
        real = self.confine(text)
        root = next(r for r in self._resolved_roots if real.is_relative_to(r))
        fd = open_beneath(real, root, text)
        return load_image(read_fd(fd, text, MAX_FILE_BYTES), max_pixels=self.max_pixels, label=text)

    def confine(self, text: str) -> Path:
        """Return the real path of ``text`` if it lies under an allowed root, else raise."""
        given = Path(text).expanduser()
        absolute = given if given.is_absolute() else Path.cwd() / given
        try:
            real = absolute.resolve()
        except OSError as exc:  # a link on the path vanished while it was being followed
            raise BadInputError(f"{text} changed while it was being checked ({exc.strerror}); refused") from None
        if any(real.is_relative_to(root) for root in self._resolved_roots):
            return real
        roots = ", ".join(str(r) for r in self._resolved_roots)
        lexical = Path(os.path.normpath(absolute))
        if any(lexical.is_relative_to(root) for root in self._resolved_roots):
            raise BadInputError(
                f"{text} resolves through a symlink to {real}, which is outside the allowed roots ({roots})"
            )
        raise BadInputError(
            f"{text} is outside the allowed roots ({roots}); start the server with --allow-root DIR to allow a folder"
        )

    def _decode_data_uri(self, uri: str) -> bytes:
        """Decode a base64 image data: URI, refusing oversize ones before decoding them."""
        header, sep, payload = uri.partition(",")
        if not sep:
            raise BadInputError("data URI has no ',' before its data")
        media = header[len("data:") :].split(";")
        if "base64" not in media[1:]:
            raise BadInputError("data URI must be base64-encoded (data:image/png;base64,...)")
        if media[0] and not media[0].startswith("image/"):
            raise BadInputError(f"data URI has media type {media[0]!r}, not an image type")
        approx = len(payload) * 3 // 4
        if approx > self.max_bytes:
            raise BadInputError(
                f"data URI is too large: about {approx} bytes decoded, the limit is {self.max_bytes} bytes; "
                "pass a file path instead"
            )
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadInputError(f"data URI is not valid base64: {exc}") from exc

    async def _fetch(self, url: str) -> bytes:
        """Download an image when URLs are allowed: public addresses only, stopping at the size limit."""
        if not self.allow_urls:
            raise BadInputError(
                "fetching URLs is off on this server; pass a file path, a data: URI or a thinkedit:// URI "
                "(or start the server with --allow-urls)"
            )
        return await fetch_image_bytes(url, self.max_bytes, self.url_policy)


def open_beneath(real: Path, root: Path, label: str) -> int:
    """Return a read-only descriptor of ``real`` (inside ``root``), opened without following any symlink.

    The resolved path has no symlinks, so meeting one on the walk from the root means someone swapped
    it in since the check; the bytes are then read from this descriptor, never by opening the name again.
    """
    parts = real.relative_to(root).parts
    if not parts:
        raise BadInputError(f"not a file: {label}")
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC | (_NONBLOCK if last else _DIRECTORY)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise BadInputError(
                        f"{label} changed while it was being opened (a symlink appeared on its path); refused"
                    ) from None
                if exc.errno == errno.ENOENT:
                    raise BadInputError(f"image not found: {label}") from None
                raise BadInputError(f"cannot read {label}: {exc.strerror or exc}") from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise
