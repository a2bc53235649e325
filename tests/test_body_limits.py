"""Every server we run cuts off a request body at its limit as the bytes arrive, chunked or declared.

Each test starts the real server on 127.0.0.1 and streams a body from a generator that would go on
far past the limit. The server must answer 413 naming the limit after reading little more than the
limit (the generator counts what the client managed to hand over: the limit plus socket buffers),
close that connection, and go on answering other requests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.mcp_support import http_server, http_session
from tests.procs import server
from tests.servers import cli_env, editor_server, free_port, metric, thinker_server

MIB = 1024 * 1024
#: How far past its limit a test body would go if nothing stopped it.
BEYOND = 256 * MIB
#: What the client may hand over past the limit before the refusal reaches it (loopback socket buffers).
SLACK = 64 * MIB


class Endless:
    """A request body of ``head``, then zeros up to ``limit + BEYOND`` bytes, counting what was taken.

    ``midway`` is called once, from inside the upload, when half the limit has been handed over.
    """

    def __init__(self, head: bytes, limit: int, midway: Callable[[], object] | None = None) -> None:
        self.head = head
        self.total = limit + BEYOND
        self.sent = 0
        self.halfway = limit // 2
        self.midway = midway

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        self.sent = len(self.head)
        chunk = bytes(256 * 1024)
        while self.sent < self.total:
            piece = chunk[: self.total - self.sent]
            self.sent += len(piece)
            yield piece
            if self.midway is not None and self.sent >= self.halfway:
                self.midway, call = None, self.midway
                call()


def refuse(url: str, head: bytes, limit: int, content_type: str, *, declared: bool,
           headers: dict[str, str] | None = None, midway: Callable[[], object] | None = None) -> httpx.Response:
    """Stream an oversized body to ``url`` and check it was refused before the client sent it all."""
    body = Endless(head, limit, midway)
    sent_headers = {"Content-Type": content_type, **(headers or {})}
    if declared:
        sent_headers["Content-Length"] = str(body.total)  # honest, and too big; else httpx sends it chunked
    response = httpx.post(url, content=body, headers=sent_headers, timeout=120)
    assert response.status_code == 413, response.text
    assert response.headers["connection"] == "close"
    assert body.sent < limit + SLACK, f"the server read on: the client sent {body.sent} of {body.total} bytes"
    return response


def multipart_head(text_fields: dict[str, str]) -> bytes:
    """Open a multipart body: the text fields, then an ``image`` file part whose bytes follow."""
    parts = [f'--b0\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in text_fields.items()]
    parts.append('--b0\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
                 "Content-Type: image/png\r\n\r\n")
    return "".join(parts).encode()


MULTIPART = "multipart/form-data; boundary=b0"


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_the_gallery_cuts_an_upload_off_at_its_limit(tmp_path: Path, declared: bool) -> None:
    data_dir, port = tmp_path / "data", free_port()
    cmd = [sys.executable, "-m", "thinkedit.servers.cli", "ui", "--port", str(port), "--max-upload-mb", "2",
           "--data-dir", str(data_dir)]
    base = f"http://127.0.0.1:{port}"
    with server(cmd, f"{base}/health", env=cli_env(data_dir), log=tmp_path / "ui.log"):
        head = multipart_head({"instruction": "make the cat wear a red hat"})
        meanwhile: list[int] = []  # another client, served while the upload is in flight
        refused = refuse(f"{base}/api/runs", head, 2 * MIB, MULTIPART, declared=declared,
                         midway=lambda: meanwhile.append(httpx.get(f"{base}/api/runs", timeout=60).status_code))
        assert meanwhile == [200]
        assert "2 MiB" in refused.json()["error"]  # the gallery's own error shape, naming the limit
        assert httpx.get(f"{base}/api/runs").json() == {"runs": []}  # still answering, nothing recorded


def test_the_editor_server_cuts_an_edit_off_at_its_limit(server_data_dir: Path, server_logs: Path) -> None:
    with editor_server(server_data_dir, server_logs, "--max-upload-mb", "1") as editor:
        head = multipart_head({"prompt": "make it red", "model": "tiny-kontext"})
        for declared in (False, True):
            refused = refuse(f"{editor.url}/images/edits", head, MIB, MULTIPART, declared=declared)
            error = refused.json()["error"]
            assert error["code"] == "request_too_large" and "1 MiB (--max-upload-mb)" in error["message"]
        # Both are counted, the one refused on its Content-Length before the app saw it too.
        metrics = httpx.get(f"{editor.base}/metrics").text
        assert metric(metrics, "thinkedit_editor_errors_total", 'kind="too_large"') == 2
        assert metric(metrics, "thinkedit_editor_requests_total", 'status="413"') == 2
        assert openai.OpenAI(base_url=editor.url, api_key="none").models.list().data[0].id == "tiny-kontext"


def test_the_thinker_server_cuts_a_chat_off_at_its_limit(server_data_dir: Path, server_logs: Path) -> None:
    with thinker_server(server_data_dir, server_logs) as thinker:
        head = b'{"model": "tiny-qwen2.5-vl", "messages": [{"role": "user", "content": "'
        refused = refuse(f"{thinker.url}/chat/completions", head, 64 * MIB, "application/json", declared=False)
        assert "64 MiB" in refused.json()["error"]["message"]
        assert openai.OpenAI(base_url=thinker.url, api_key="none").models.list().data[0].id == "tiny-qwen2.5-vl"


async def test_the_mcp_server_cuts_a_message_off_at_its_limit(mcp_data_dir: Path, tmp_path: Path) -> None:
    # --max-image-mb 1 allows two base64 images and 1 MiB more: a little under 4 MiB.
    with http_server(mcp_data_dir, "--max-image-mb", "1", log=tmp_path / "mcp.log") as (base, _):
        head = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "'
        accept = {"Accept": "application/json, text/event-stream"}
        for declared in (False, True):
            refused = refuse(f"{base}/mcp", head, 4 * MIB, "application/json", declared=declared, headers=accept)
            assert "limit" in refused.json()["error"]["message"]
        async with http_session(base) as client:
            assert "think_while_edit" in {t.name for t in (await client.list_tools()).tools}


def test_the_gallery_closes_a_connection_whose_headers_never_end(tmp_path: Path) -> None:
    """As on every server of ours: half a request does not hold a connection (the header deadline)."""
    import socket

    from thinkedit.servers.timeouts import HEADER_TIMEOUT_S

    data_dir, port = tmp_path / "data", free_port()
    cmd = [sys.executable, "-m", "thinkedit.servers.cli", "ui", "--port", str(port), "--data-dir", str(data_dir)]
    with server(cmd, f"http://127.0.0.1:{port}/health", env=cli_env(data_dir), log=tmp_path / "ui.log"):
        with socket.create_connection(("127.0.0.1", port), timeout=3 * HEADER_TIMEOUT_S) as sock:
            sock.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
            assert sock.recv(1024) == b""  # closed by the server, before the socket's own timeout
        assert httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=60).json() == {"runs": []}
