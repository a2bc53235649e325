"""Both guarded HTTP protocols (httptools and h11) close a connection whose request headers dawdle, and serve a prompt one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.servers import free_port
from thinkedit.servers.timeouts import guarded_protocol


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


#: What each parser choice must give: the server extra installs httptools, so "auto" is uvicorn's C parser.
EXPECTED = {"auto": ("GuardedHttpToolsProtocol", HttpToolsProtocol), "h11": ("GuardedH11Protocol", H11Protocol)}


@pytest.fixture(params=["auto", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, list[str], type, str]]:
    slow: list[str] = []
    protocol = guarded_protocol(0.5, on_slow=lambda: slow.append("slow"), parser=request.param)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_config=None, lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    try:
        yield port, slow, protocol, request.param
    finally:
        srv.should_exit = True
        thread.join(10)


def test_dawdling_headers_are_cut_off_and_prompt_ones_served(server: tuple[int, list[str], type, str]) -> None:
    port, slow, protocol, parser = server
    name, base = EXPECTED[parser]
    assert protocol.__name__ == name and issubclass(protocol, base)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
        assert sock.recv(1024) == b""  # closed by the server, with no response, before the socket's own timeout
    assert slow == ["slow"]  # and it was the header deadline that closed it
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    time.sleep(1.0)  # past the deadline: a whole request, answered and hung up, counts as nothing
    assert slow == ["slow"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        assert sock.recv(1024) == b""  # kept alive, then idle past the deadline: the next headers never came
    assert slow == ["slow", "slow"]


def test_auto_takes_httptools() -> None:
    auto = guarded_protocol(1.0)
    assert auto.__name__ == "GuardedHttpToolsProtocol" and issubclass(auto, HttpToolsProtocol)
    h11 = guarded_protocol(1.0, parser="h11")
    assert h11.__name__ == "GuardedH11Protocol" and issubclass(h11, H11Protocol) and not issubclass(h11, HttpToolsProtocol)
