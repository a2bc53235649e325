"""Who may use the gallery: pages from loopback Host names only, or anyone holding the token.

A browser cannot add a bearer header to a page load, so the token also comes as ``?token=`` once:
the gallery answers with a redirect to the same address without it (so it leaves the address bar
and the history) and keeps it in an HTTP-only, same-site cookie named after the gallery's port.
Every answer carries headers that refuse framing and anything the page did not ask for.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from thinkedit.servers.exposure import is_loopback

#: For answers that are not pages (JSON, images, events): nothing may load, run or frame them.
DEFAULT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def cookie_name(request: Request) -> str:
    """Return this gallery's cookie name: cookies ignore ports, so the port keeps two galleries apart."""
    server = request.scope.get("server")
    return f"thinkedit_gallery_{server[1] if server else 'default'}"


def _netloc(url: str) -> tuple[str, str]:
    """Return (host, host:port) of a URL or Host value; empty strings for one that does not parse."""
    try:
        parts = urlsplit(url if "//" in url else f"//{url}")
        return (parts.hostname or "").lower(), parts.netloc.lower()
    except ValueError:  # e.g. "[::1" (an unclosed IPv6 literal)
        return "", ""


def _without_token(request: Request) -> str:
    """Return the request's own path and query less the token (one leading slash: never another host's URL)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return "/" + quote(request.url.path.lstrip("/")) + (f"?{urlencode(query)}" if query else "")


def token_guard(token: str | None) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Return middleware that checks the token (when set) or, without one, that the page is a loopback one."""

    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.query_params.get("token")
        host, netloc = _netloc(request.headers.get("host", ""))
        if token:
            header = request.headers.get("authorization", "")
            cookie = request.cookies.get(cookie_name(request))
            sent = header[7:] if header.lower().startswith("bearer ") else given or cookie or ""
            if not hmac.compare_digest(sent.encode(), token.encode()):
                return JSONResponse({"error": "this gallery needs its token: open it with ?token=..."}, status_code=401)
        elif not is_loopback(host):
            # No token means loopback only: refuse pages served under another name (DNS rebinding).
            return JSONResponse({"error": "unexpected Host header; open the gallery at 127.0.0.1"}, status_code=403)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and (not netloc or _netloc(origin)[1] != netloc):
            return JSONResponse({"error": f"cross-origin request from {origin[:200]} refused"}, status_code=403)
        if token and given and request.method in ("GET", "HEAD"):
            # The token leaves the address bar (and the history): the cookie carries it from now on.
            moved = RedirectResponse(_without_token(request), status_code=303)
            moved.set_cookie(cookie_name(request), token, httponly=True, samesite="strict", path="/")
            return moved
        return await call_next(request)

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await check(request, call_next)
        response.headers.setdefault("Content-Security-Policy", DEFAULT_POLICY)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return guard
