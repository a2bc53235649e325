"""The stdio transport's front: own stdin and stdout from the start, answer the handshake from the cache.

``StdioFront`` claims the process's stdin and stdout before the ``mcp`` SDK is imported (fd 0 then
reads the null device and fd 1 writes to stderr, so stray output of libraries misses the wire, as
the SDK's own ``stdio_server`` arranges). A reader thread takes each line from the client as it
comes; when the session's ``initialize`` (and then ``tools/list``) has an answer in the
``HandshakeCache``, the thread sends that answer at once with the request's own id.

Every line still goes to the SDK, in order, once it is loaded: the SDK sees the ``initialize``
(and records the client's capabilities), and its answers to the requests already answered are
compared with the cached ones and dropped (a differing answer is logged and replaces the cached
one; the client kept the first). An answer the SDK gives to a cacheable request is stored for the
next start. Standard library only, up to ``serve`` (anyio, once the SDK is being loaded anyway).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

from thinkedit.servers.mcp.handshake import CACHED_METHODS, HandshakeCache

log = logging.getLogger(__name__)

#: JSON-RPC's "internal error": what a server that could not start answers (``StdioFront.refuse``).
INTERNAL_ERROR = -32603
#: Lines longer than this are passed on unread (a handshake request is small; tool calls carry images).
WATCH_LIMIT = 64 * 1024
#: SDK messages longer than this are never a cacheable answer (a tool list is tens of kB; results carry images).
ANSWER_LIMIT = 1024 * 1024


@dataclass
class _Pending:
    """A cacheable request the SDK has yet to answer: where its answer goes, or what the client already got."""

    key: str
    method: str
    cached: Any | None


class StdioFront:
    """Carry the stdio session between the client and the SDK, answering cached requests before the SDK loads."""

    def __init__(self, cache: HandshakeCache | None) -> None:
        self.cache = cache
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pending: dict[Any, _Pending] = {}
        self._lock = threading.Lock()  # guards _pending and the writes to stdout
        self._initialize: Any = None  # the session's initialize params, once seen
        self._warm = False  # initialize was answered from the cache
        self._watching = cache is not None
        self._seen: set[str] = set()
        self._first = threading.Event()  # the first line was read and looked at (or stdin ended)
        self._in, self._out, self._restore = _claim_stdio()
        self._reader = threading.Thread(target=self._read, name="mcp-stdio-reader", daemon=True)

    def start(self, wait_first: float = 0.0) -> None:
        """Start reading stdin; wait up to ``wait_first`` seconds for the first line to be answered or passed on.

        Waiting lets a cached answer go out before the SDK's import takes the CPU.
        """
        self._reader.start()
        self._first.wait(wait_first)

    def close(self) -> None:
        """End the SDK's reads, and point fd 0 and 1 back at the client's pipes (stray output stays off them).

        The reader thread is a daemon: it ends with stdin or the process.
        """
        self._lines.put(None)  # a worker thread still waiting for a line (a cancelled read) returns
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        self._restore()

    # -- the client's side (the reader thread) --------------------------------------------------------

    def _read(self) -> None:
        """Pass every line on to the SDK in order, answering the cached ones first."""
        try:
            for raw in iter(self._in.readline, b""):
                line = raw.decode("utf-8", errors="replace")
                if self._watching and len(raw) <= WATCH_LIMIT:
                    try:
                        self._look(line)
                    except Exception:  # noqa: BLE001 - the cache is an optimisation: never lose the line
                        log.exception("handshake cache: could not look at a request; passing it on")
                self._lines.put(line)
                self._first.set()
        except (OSError, ValueError) as exc:
            log.debug("stdin closed: %s", exc)
        finally:
            self._lines.put(None)
            self._first.set()

    def _look(self, line: str) -> None:
        """Answer ``line`` from the cache when it is a cacheable request with a stored answer; else note it."""
        try:
            message = json.loads(line)
        except ValueError:
            return  # the SDK reports it
        if not _is_request(message):
            if self._initialize is None:
                self._watching = False  # not a handshake session (a notification, a newer protocol era)
            return
        method, params = message["method"], message.get("params")
        if method == "initialize" and self._initialize is None:
            self._initialize = params
        elif self._initialize is None or method not in CACHED_METHODS or method in self._seen:
            self._watching = self._initialize is not None and len(self._seen) < len(CACHED_METHODS)
            return
        assert self.cache is not None
        self._seen.add(method)
        key = self.cache.key(method, params, self._initialize)
        cached = self.cache.load(key, method) if method == "initialize" or self._warm else None
        with self._lock:
            self._pending[message["id"]] = _Pending(key, method, cached)
        if cached is not None:
            self._warm = self._warm or method == "initialize"
            log.debug(
                "handshake cache: answering %s from the cache (mcp SDK imported: %s, pydantic imported: %s)",
                method, "mcp" in sys.modules, "pydantic" in sys.modules,
            )
            self._write({"jsonrpc": "2.0", "id": message["id"], "result": cached})
        self._watching = len(self._seen) < len(CACHED_METHODS)

    # -- a server that could not start -----------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        """Answer the client's requests with an error saying ``reason``, until stdin ends, once it has started a session.

        A warm start has already answered ``initialize`` (and maybe ``tools/list``) from the cache
        when building the server fails (a missing API key): exiting then reads as a crash, while
        answering each later request (a tool call) with the reason shows it in the client. A cold
        start's ``initialize``, still unanswered, gets the same error. With no request seen yet
        (nothing is talking MCP to us) this returns at once.
        """
        started = self._initialize is not None
        while True:
            try:
                line = self.next_line(block=started)
            except queue.Empty:
                return
            if line is None:
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not _is_request(message):
                continue  # a notification or a response: nothing to answer
            started = True
            with self._lock:
                pending = self._pending.pop(message["id"], None)
            if pending is not None and pending.cached is not None:
                continue  # the client has its answer from the cache
            self._write({"jsonrpc": "2.0", "id": message["id"], "error": {"code": INTERNAL_ERROR, "message": reason}})

    # -- the SDK's side -------------------------------------------------------------------------------

    def next_line(self, block: bool) -> str | None:
        """Return the client's next line for the SDK (None at the end of stdin); raise queue.Empty if not blocking."""
        line = self._lines.get(block=block)
        if line is None:
            self._lines.put(None)  # every later read sees the end too
        return line

    def send(self, text: str) -> None:
        """Write one of the SDK's messages to the client, unless it answers a request the cache answered."""
        pending, message = self._match(text) if self._pending and len(text) <= ANSWER_LIMIT else (None, None)
        if pending is not None and pending.cached is not None:
            self._check(pending, message)
            return
        if pending is not None and "result" in message:
            # Stored before it is sent: a client may end the server as soon as it has its answer.
            assert self.cache is not None
            self.cache.store(pending.key, pending.method, message["result"])
        with self._lock:
            self._out.write(text.encode("utf-8") if text.endswith("\n") else (text + "\n").encode("utf-8"))
            self._out.flush()

    def _match(self, text: str) -> tuple[_Pending | None, Any]:
        """Return (and forget) the pending request this SDK message answers, if any, and the message."""
        try:
            message = json.loads(text)
        except ValueError:
            return None, None
        if not isinstance(message, dict) or "method" in message or not ({"result", "error"} & message.keys()):
            return None, message
        with self._lock:
            try:
                return self._pending.pop(message.get("id"), None), message
            except TypeError:  # an id that cannot be a key was never ours
                return None, message

    def _check(self, pending: _Pending, message: dict[str, Any]) -> None:
        """Compare the SDK's answer with the one the client got from the cache; keep the SDK's if they differ."""
        assert self.cache is not None
        if "result" not in message:
            log.warning("handshake cache: the SDK refused the %s the cache answered (%s); dropping that answer",
                        pending.method, message.get("error"))
            self.cache.remove(pending.key)
        elif message["result"] != pending.cached:
            log.warning("handshake cache: the SDK's answer to %s differs from the cached one the client got; "
                        "caching the SDK's for the next start", pending.method)
            self.cache.store(pending.key, pending.method, message["result"])
        else:
            log.debug("handshake cache: the SDK's answer to %s matches the cached one", pending.method)

    def _write(self, message: dict[str, Any]) -> None:
        """Write one of our own messages (a cached answer) to the client."""
        with self._lock:
            self._out.write((json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8"))
            self._out.flush()


class LinesIn:
    """The client's lines as the async text stream the SDK's ``stdio_server`` reads."""

    def __init__(self, front: StdioFront) -> None:
        self.front = front

    def __aiter__(self) -> LinesIn:
        return self

    async def __anext__(self) -> str:
        import anyio

        try:
            line = self.front.next_line(block=False)
        except queue.Empty:
            line = await anyio.to_thread.run_sync(self.front.next_line, True, abandon_on_cancel=True)
        if line is None:
            raise StopAsyncIteration
        return line


class LinesOut:
    """The async text stream the SDK's ``stdio_server`` writes its messages to."""

    def __init__(self, front: StdioFront) -> None:
        self.front = front

    async def write(self, text: str) -> None:
        import anyio

        await anyio.to_thread.run_sync(self.front.send, text)

    async def flush(self) -> None:
        """Nothing to do: ``StdioFront.send`` flushes each message."""


async def serve(server: Any, front: StdioFront) -> None:
    """Run the SDK's server over the front's streams until stdin ends."""
    from thinkedit.servers.mcp.sdk import run_stdio_streams

    await run_stdio_streams(server, LinesIn(front), LinesOut(front))


def _is_request(message: Any) -> bool:
    """Say whether a parsed JSON-RPC message is a request (a method and an id: it wants an answer)."""
    return (isinstance(message, dict) and isinstance(message.get("id"), (str, int))
            and isinstance(message.get("method"), str))


def _claim_stdio() -> tuple[BinaryIO, BinaryIO, Any]:
    """Take private copies of fd 0 and 1 for the protocol; point fd 0 at the null device and fd 1 at stderr."""
    saved: list[tuple[int, int]] = []
    streams = []
    for fd, mode, divert in ((0, "rb", lambda: os.open(os.devnull, os.O_RDONLY)), (1, "wb", lambda: os.dup(2))):
        try:
            private = os.dup(fd)
        except OSError:
            streams.append((sys.stdin if fd == 0 else sys.stdout).buffer)
            continue
        try:
            diversion = divert()
            os.dup2(diversion, fd)
            os.close(diversion)
            saved.append((fd, private))
        except OSError:
            pass  # served from the private copy all the same; stray output may reach the wire
        streams.append(os.fdopen(private, mode, closefd=False))

    def restore() -> None:
        for fd, private in saved:
            try:
                os.dup2(private, fd)
            except OSError:
                log.debug("could not restore fd %d", fd)
        saved.clear()

    return streams[0], streams[1], restore
