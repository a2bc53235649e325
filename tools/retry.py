"""Retry one provider call on 429/5xx, waiting as long as the server's ``Retry-After`` asks (bounded).

The SDKs' own retries are turned off where we call them, so every provider behaves the same:
at most ``attempts`` calls, each wait the server's ``Retry-After`` (seconds, HTTP date or
``retry-after-ms``) or else an exponential backoff, and a wait longer than ``max_wait_s`` fails
at once instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from thinkedit.tools.errors import TransientBackendError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses worth another try: timeout, conflict, rate limit, server faults.
RETRYABLE_STATUS = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    """Say whether an HTTP status is worth retrying (408, 409, 429 and every 5xx)."""
    return status in RETRYABLE_STATUS or status >= 500


def retry_after_seconds(headers: Mapping[str, str] | Any | None) -> float | None:
    """Read the wait a response asks for: ``retry-after-ms``, ``Retry-After`` seconds or an HTTP date."""
    if not headers:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis:
            return max(0.0, float(millis) / 1000)
        value = (headers.get("retry-after") or "").strip()
    except (AttributeError, ValueError):
        return None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bound the retries of one call: how many calls in all, the first backoff, the longest wait."""

    attempts: int = 3
    backoff_s: float = 1.0
    max_wait_s: float = 60.0


async def call_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, what: str) -> T:
    """Await ``call()``; on ``TransientBackendError`` wait (Retry-After or backoff) and call again."""
    attempt = 1
    while True:
        try:
            return await call()
        except TransientBackendError as exc:
            if attempt >= policy.attempts:
                raise
            wait = exc.retry_after if exc.retry_after is not None else policy.backoff_s * 2 ** (attempt - 1)
            if wait > policy.max_wait_s:
                raise TransientBackendError(
                    f"{exc} (the server asks to wait {wait:.0f} s, more than the {policy.max_wait_s:.0f} s allowed)",
                    retry_after=exc.retry_after,
                ) from exc
            log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", what, exc, wait, attempt + 1, policy.attempts)
            await asyncio.sleep(wait)
            attempt += 1
