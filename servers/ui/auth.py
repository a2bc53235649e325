"""Who may use the gallery: pages from loopback Host names only, or anyone holding the token.

A browser cannot add a bearer header to a page load, so the token also comes as ``?token=`` once
(it is then kept in a same-site, HTTP-only cookie) or as that cookie.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

COOKIE = "thinkedit_ui_token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _host(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


def token_guard(token: str | None) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Return middleware that checks the token (when set) or, without one, that the page is a loopback one."""

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.query_params.get("token")
        if token:
            header = request.headers.get("authorization", "")
            sent = header[7:] if header.lower().startswith("bearer ") else given or request.cookies.get(COOKIE) or ""
            if not hmac.compare_digest(sent.encode(), token.encode()):
                return JSONResponse({"error": "this gallery needs its token: open it with ?token=..."}, status_code=401)
        elif _host(request.headers.get("host", "")) not in LOCAL_HOSTS:
            # No token means loopback only: refuse pages served under another name (DNS rebinding).
            return JSONResponse({"error": "unexpected Host header; open the gallery at 127.0.0.1"}, status_code=403)
        origin = request.headers.get("origin")
        same = urlsplit(origin or "").netloc.lower() == request.headers.get("host", "").lower()
        if request.method not in ("GET", "HEAD") and origin and not same:
            return JSONResponse({"error": f"cross-origin request from {origin} refused"}, status_code=403)
        response = await call_next(request)
        if token and given:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    return guard
