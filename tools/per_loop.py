"""One client per running event loop, for SDKs whose HTTP connections belong to the loop that opened them."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Hold the client ``make`` built for the running event loop; a call from another loop builds a new one.

    httpx, under the openai and replicate SDKs and LangChain's chat models, keeps its connections on
    the loop that opened them: used from a later loop they fail with "Event loop is closed". A cached
    engine outlives loops (a script calling ``asyncio.run`` once per image, the editor server's worker
    running each request of an engine without batches in its own ``asyncio.run``), so it asks here for its
    client at every call.

    Only the latest loop's client is kept: an ended loop's client cannot be used again. The loop is
    matched by identity through a weak reference, never by ``id()``, which a new loop can inherit from
    one that ended; and the client does not keep its loop alive.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._current: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None

    def get(self) -> T:
        """Return the running loop's client, building it at the loop's first call."""
        loop = asyncio.get_running_loop()
        current = self._current
        if current is None or current[0]() is not loop:
            current = self._current = (weakref.ref(loop), self._make())
        return current[1]
