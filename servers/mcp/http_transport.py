"""Serve MCP over streamable HTTP: loopback by default, a bearer token for anything else, a body limit."""

from __future__ import annotations

import hmac

from mcp.server.mcpserver import MCPServer
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from thinkedit.servers.bodylimit import BodyLimit
from thinkedit.servers.exposure import is_loopback
from thinkedit.servers.mcp.events import BoundedEventStore, SessionScope

#: Paths answered without a token (they reveal nothing but liveness).
PUBLIC_PATHS = frozenset({"/health"})
#: How long a client waits before reconnecting a dropped SSE stream (the ``retry`` field), in ms.
RETRY_MS = 1000


class BearerTokenMiddleware:
    """Answer 401 to every request that lacks ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token before the request reaches MCP (lifespan events pass through)."""
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            response = JSONResponse(
                {"error": "unauthorized", "error_description": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="thinkedit"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _jsonrpc_error(message: str) -> dict[str, object]:
    """Shape a refusal as JSON-RPC, as the SDK answers a bad request."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}


def http_app(
    server: MCPServer, *, host: str, token: str | None, max_body_bytes: int, events: BoundedEventStore | None = None
) -> ASGIApp:
    """Return the streamable-HTTP ASGI app at ``/mcp``, guarded by the token when one is given.

    SSE events carry ids from ``events`` (a fresh bounded store by default), so a client that
    reconnects with ``Last-Event-ID`` gets what it missed.
    """
    if token is None and not is_loopback(host):
        raise ValueError(f"binding {host} needs a bearer token (--token or THINKEDIT_MCP_TOKEN)")

    @server.custom_route("/health", methods=["GET"])
    async def health(_request: object) -> JSONResponse:
        """Answer readiness probes without a token."""
        return JSONResponse({"status": "ok"})

    app: ASGIApp = SessionScope(
        server.streamable_http_app(
            host=host,
            max_request_body_size=max_body_bytes,
            event_store=events if events is not None else BoundedEventStore(),
            retry_interval=RETRY_MS,
        )
    )
    # The SDK's own limit answers 413 but keeps the connection, so the rest is still read; this one closes it.
    app = BodyLimit(app, max_body_bytes, setting="set by --max-image-mb", render=_jsonrpc_error)
    return BearerTokenMiddleware(app, token) if token else app


async def serve_http(server: MCPServer, *, host: str, port: int, token: str | None, max_body_bytes: int) -> None:
    """Run the HTTP app under uvicorn until interrupted (the lifespan then stops live runs)."""
    import uvicorn

    app = http_app(server, host=host, token=token, max_body_bytes=max_body_bytes)
    from thinkedit.servers.timeouts import HEADER_TIMEOUT_S, guarded_protocol

    # Headers get a deadline, as on the editor server; bodies are small and capped (max_body_bytes).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            http=guarded_protocol(HEADER_TIMEOUT_S), timeout_keep_alive=5)
    await uvicorn.Server(config).serve()
