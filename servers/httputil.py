"""Pieces every FastAPI server of ours shares: bearer-token checks, Host/Origin checks, OpenAI-style errors."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from thinkedit.servers.exposure import is_loopback
from thinkedit.tools.errors import BadInputError, ImageTooLargeError
from thinkedit.tools.images import load_image

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class APIError(Exception):
    """Carry an HTTP error the handlers raise, rendered in the OpenAI error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers or {}


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """Return a message naming every bad field of a pydantic error list, and the first field's name."""
    parts: list[str] = []
    first: str | None = None
    for error in errors:
        loc = [str(p) for p in error.get("loc", ())]
        if loc and loc[0] == "body":  # FastAPI prefixes body fields
            loc = loc[1:]
        name = clip(".".join(loc) or "body", 64)
        first = first or name
        if error.get("type") == "extra_forbidden":
            parts.append(f"unknown field {name!r}")
        elif error.get("type") == "missing":
            parts.append(f"missing field {name!r}")
        else:
            parts.append(f"field {name!r}: {clip(str(error.get('msg', 'invalid')), 200)}")
    return "; ".join(parts) or "invalid request", first


#: The error code of an uploaded image that cannot be read (``decode_upload``).
INVALID_IMAGE = "invalid_image"


def decode_upload(data: bytes, max_pixels: int, param: str = "image") -> Image.Image:
    """Decode an uploaded image: too many pixels is 413, anything unreadable 400, each with the reason."""
    try:
        return load_image(data, max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        raise APIError(413, str(exc), param=param, code="image_too_large") from None
    except BadInputError as exc:
        raise APIError(400, str(exc), param=param, code=INVALID_IMAGE) from None


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """Return ``{"error": {...}}`` as OpenAI servers do, so the ``openai`` SDK reads the message."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(exc: APIError) -> JSONResponse:
    """Render an ``APIError``."""
    return JSONResponse(
        error_body(exc.message, exc.type, exc.param, exc.code), status_code=exc.status, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render our errors, request validation errors and routing errors in the OpenAI error shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, APIError)
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = describe_errors(exc.errors())
        return JSONResponse(error_body(message, "invalid_request_error", param), status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        body = error_body(str(exc.detail), "invalid_request_error")
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]],
                     more_body: bool = False) -> None:
    """Answer from middleware, before any app code runs (``more_body``: the caller ends the response)."""
    payload = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload, "more_body": more_body})


class BearerAuth:
    """Reject every HTTP request lacking ``Authorization: Bearer <token>`` (pure ASGI, so it runs anywhere)."""

    def __init__(self, app: ASGIApp, token: str | None, on_reject: Callable[[], None] | None = None) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else None
        self._on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._expected is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        if self._on_reject is not None:
            self._on_reject()
        body = error_body("missing or wrong bearer token", "authentication_error", code="invalid_api_key")
        await send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])


class ResponseHeaders:
    """Add fixed headers (such as the replica's name) to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message = {**message, "headers": headers + [h for h in self._headers if h[0] not in present]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def clip(text: str, limit: int = 80) -> str:
    """Shorten a client-sent value before echoing it in an error or a log line."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _host_of(value: str) -> str:
    """Return the host part of a ``Host`` header or an origin's netloc (without the port)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _port_of(netloc: str, scheme: str = "http") -> str:
    """Return the port of a ``Host`` header or an origin's netloc (the scheme's default when none is written)."""
    value = netloc.strip().lower()
    tail = value[value.find("]") + 1 :] if value.startswith("[") else value
    if tail.count(":") == 1:
        return tail.rsplit(":", 1)[1]
    return "443" if scheme.lower() == "https" else "80"


class HostOriginGuard:
    """Refuse requests a web page could send: a foreign ``Host`` on loopback (DNS rebinding), a foreign ``Origin``.

    A browser page on any site may POST a form to ``http://127.0.0.1:PORT``; it cannot choose the
    ``Origin`` header its browser sends, nor make a rebound name's ``Host`` read ``127.0.0.1``. So a
    loopback server accepts only a ``Host`` that names this machine (``localhost`` or a loopback IP,
    as ``is_loopback`` says of a bind address: an IP cannot be rebound), and any server refuses an
    ``Origin`` that is not itself (on loopback, any name of this machine with the server's own port: a
    page from another local port is another site). Clients that are not browsers (the openai SDK, curl) send no
    ``Origin``. ``render`` shapes the JSON body of a refusal (default: an OpenAI error).
    """

    def __init__(self, app: ASGIApp, loopback: bool, on_reject: Callable[[str], None] | None = None,
                 render: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.app = app
        self.loopback = loopback
        self._on_reject = on_reject
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin")
        if self.loopback and not is_loopback(_host_of(host)):
            await self._reject(send, 421, "host", f"Host {clip(host)!r} is not this loopback server")
            return
        if origin is not None:
            text = origin.decode("latin-1")
            scheme, sep, netloc = text.partition("://")
            same_port = _port_of(netloc, scheme) == _port_of(host)  # another port is another site's page
            allowed = (self.loopback and is_loopback(_host_of(netloc)) and same_port) or (
                sep and netloc.lower() == host.lower())
            if not sep or not allowed:
                await self._reject(send, 403, "origin", f"requests from the web page at {clip(text)!r} are refused")
                return
        await self.app(scope, receive, send)

    async def _reject(self, send: Send, status: int, what: str, message: str) -> None:
        if self._on_reject is not None:
            self._on_reject(what)
        body = self._render(message) if self._render else error_body(message, "invalid_request_error", code=f"bad_{what}")
        await send_json(send, status, body, [])


async def until_disconnect(request: Request) -> None:
    """Return when the client disconnects (call it once the body is read: the next message is the hang-up)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
