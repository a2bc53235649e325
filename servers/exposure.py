"""Who may reach a server: loopback by default, a bearer token for any other address.

Shared by every server (editor, thinker, MCP, gallery) and light to import, so each CLI can
refuse an exposed address before loading anything.
"""

from __future__ import annotations

import ipaddress
import os

#: Environment variable holding the bearer token when ``--token`` is not given.
TOKEN_ENV = "THINKEDIT_TOKEN"


def is_loopback(host: str) -> bool:
    """Say whether binding ``host`` keeps a server reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """Write a bind address as a URL's host part (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def resolve_token(given: str | None, env: dict[str, str] | None = None) -> str | None:
    """Return ``--token``, else ``$THINKEDIT_TOKEN``, else None (empty counts as unset); mask it from now on."""
    from thinkedit.tools.secrets import register_secret

    env = dict(os.environ) if env is None else env
    token = given if given is not None else env.get(TOKEN_ENV)
    register_secret(token)
    return token or None


def check_exposure(host: str, token: str | None) -> str | None:
    """Return why serving on ``host`` is refused (no token off loopback), or None when it is fine."""
    if is_loopback(host) or token:
        return None
    return (
        f"refusing to listen on {host} without a token: anyone who can reach it could use the server. "
        f"Pass --token or set {TOKEN_ENV}, or bind 127.0.0.1"
    )
