"""Pieces every HTTP server of ours shares: loopback checks, bearer tokens, OpenAI-style errors."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

#: Environment variable holding the bearer token when ``--token`` is not given.
TOKEN_ENV = "THINKEDIT_TOKEN"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Say whether binding ``host`` keeps a server reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(given: str | None, env: dict[str, str] | None = None) -> str | None:
    """Return the ``--token`` value, else ``$THINKEDIT_TOKEN``, else None (empty counts as unset)."""
    env = dict(os.environ) if env is None else env
    token = given if given is not None else env.get(TOKEN_ENV)
    return token or None


def check_exposure(host: str, token: str | None) -> str | None:
    """Return why serving on ``host`` is refused (no token off loopback), or None when it is fine."""
    if is_loopback(host) or token:
        return None
    return (
        f"refusing to listen on {host} without a token: anyone who can reach it could use the server. "
        f"Pass --token or set {TOKEN_ENV}, or bind 127.0.0.1"
    )


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
        name = ".".join(loc) or "body"
        first = first or name
        if error.get("type") == "extra_forbidden":
            parts.append(f"unknown field {name!r}")
        elif error.get("type") == "missing":
            parts.append(f"missing field {name!r}")
        else:
            parts.append(f"field {name!r}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request", first


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


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    """Answer from middleware, before any app code runs."""
    payload = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


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
        await _send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])


class ResponseHeaders:
    """Add fixed headers (such as the replica's name) to every HTTP response."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self._headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """Signal that a request body passed the server's limit while it was being read."""


class BodyLimit:
    """Stop reading a request body past ``limit`` bytes on the given paths (Content-Length or not)."""

    def __init__(self, app: ASGIApp, limit: int, paths: tuple[str, ...]) -> None:
        self.app = app
        self.limit = limit
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            message = f"request body of {int(declared)} bytes exceeds the limit of {self.limit} bytes"
            await _send_json(send, 413, error_body(message, "invalid_request_error", code="request_too_large"), [])
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(f"request body exceeds the limit of {self.limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
