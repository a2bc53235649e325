"""Reach the PostgreSQL database of checkpoints and run locks: the URL checked as libpq will read it, connections that give up.

Only runs whose checkpointer URL names PostgreSQL import this module; it imports nothing of the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import SplitResult, parse_qs

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.secrets import mask_url, register_secret, url_secrets

#: How long a PostgreSQL checkpoint save waits for a connection (libpq's connect, the pool's wait) before it fails.
DB_WAIT_S = 5.0
#: libpq's TCP keepalives on a run lock's connection, so a peer gone silent is noticed: the first probe after
#: ``keepalives_idle`` idle seconds, then one every ``keepalives_interval`` seconds, up to ``keepalives_count``.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
#: What a PostgreSQL URL answers when the postgres extra is not installed.
NO_EXTRA = "PostgreSQL checkpoints need the postgres extra: pip install 'thinkedit[postgres]'"


def check_postgres_url(url: str, parts: SplitResult) -> None:
    """Register the URL's password as a secret; refuse, before any connect, a URL libpq would read otherwise."""
    register_secret(*url_secrets(url))
    shown = mask_url(url)
    if _libpq_userinfo(url) != _our_userinfo(parts.netloc):
        raise BadInputError(
            f"checkpointer URL {shown!r}: the user name or password holds a character that must be "
            "percent-encoded ('@' as %40, '/' as %2F, '?' as %3F, '#' as %23)"
        )
    has_host = parts.hostname or "host" in parse_qs(parts.query) or "hostaddr" in parse_qs(parts.query)
    if not has_host or not parts.path.strip("/"):
        raise BadInputError(f"checkpointer URL {shown!r}: expected postgresql://user:password@host:port/database")


def _libpq_userinfo(url: str) -> str | None:
    """Return the user[:password] part as libpq reads it: up to the first ``@`` ahead of any ``/``."""
    rest = url.partition("://")[2]
    end = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    return rest[:end] if end >= 0 and rest[end] == "@" else None


def _our_userinfo(netloc: str) -> str | None:
    """Return the user[:password] part as Python's ``urlsplit`` (and so this module) reads it."""
    return netloc.rpartition("@")[0] if "@" in netloc else None


@asynccontextmanager
async def open_pool(dsn: str) -> AsyncIterator[Any]:
    """Open a pool of connections to ``dsn`` for the block, failing at once (naming why) when it cannot connect."""
    try:
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool
    except ModuleNotFoundError as exc:
        raise BadInputError(NO_EXTRA) from exc
    import psycopg

    try:  # one plain connection first: a wrong address or password fails now, with libpq's reason
        probe = await psycopg.AsyncConnection.connect(dsn, autocommit=True, **connect_timeout(dsn))
        await probe.close()
    except psycopg.OperationalError as exc:
        raise BadInputError(f"cannot reach PostgreSQL at {mask_url(dsn)}: {exc}") from exc
    # A pool, so concurrent runs (the MCP server) do not serialise on one connection. When the
    # database goes away, a save waits for a new connection only DB_WAIT_S, then fails and stops its run.
    pool = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=8,
        open=False,
        timeout=DB_WAIT_S,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, **connect_timeout(dsn)},
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise BadInputError(f"cannot reach PostgreSQL at {mask_url(dsn)}: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()


def connect_timeout(dsn: str) -> dict[str, int]:
    """Return libpq's ``connect_timeout`` (DB_WAIT_S) unless the URL sets its own: a silent host fails in seconds."""
    from psycopg.conninfo import conninfo_to_dict

    return {} if "connect_timeout" in conninfo_to_dict(dsn) else {"connect_timeout": int(DB_WAIT_S)}


def keepalives(dsn: str) -> dict[str, int]:
    """Return libpq's TCP keepalive settings (``KEEPALIVES``) that the URL does not set itself."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(dsn)
    return {key: value for key, value in KEEPALIVES.items() if key not in given}
