"""The editor server against careless and hostile clients: hang-ups, slow clients, foreign pages, big asks (issue 13)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.servers import ServerProcess, metric, png_bytes, sleepy_editor_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sleepy(server_data_dir: Path, server_logs: Path):  # type: ignore[no-untyped-def]
    """A scripted-speed editor with short header and body deadlines (1 s, 2 s)."""
    with sleepy_editor_server(server_data_dir, server_logs, "--header-timeout", "1", "--body-timeout", "2") as server:
        yield server


def errors(server: ServerProcess, kind: str) -> float:
    return metric(httpx.get(f"{server.base}/metrics").text, "thinkedit_editor_errors_total", f'kind="{kind}"')


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (or 20 s pass: the test then fails on the content)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<still open after 20 s>")
    return b"".join(chunks)


def multipart_head(server: ServerProcess, length: int, boundary: str = "b0undary") -> bytes:
    return (
        f"POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_an_abandoned_upload_is_counted_quietly(sleepy: ServerProcess) -> None:
    before = errors(sleepy, "disconnected")
    for _ in range(5):
        sock = connect(sleepy)
        part = b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + b"x" * 5000
        sock.sendall(multipart_head(sleepy, 100_000) + part)
        time.sleep(0.1)
        sock.close()
    for _ in range(50):
        if errors(sleepy, "disconnected") >= before + 5:
            break
        time.sleep(0.1)
    assert errors(sleepy, "disconnected") == before + 5
    log = sleepy.log_tail(200_000)
    assert "ClientDisconnect" not in log and "Traceback" not in log


def test_slow_headers_are_cut_off(sleepy: ServerProcess) -> None:
    sock = connect(sleepy)
    sock.sendall(b"POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and never the rest
    assert read_all(sock) == b""  # closed by the server, not by our 20 s give-up
    assert errors(sleepy, "slow_headers") >= 1


def test_a_stalled_body_gets_408(sleepy: ServerProcess) -> None:
    sock = connect(sleepy)
    sock.sendall(multipart_head(sleepy, 10_000) + b"--b0undary\r\n")
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"too slowly" in answer


def test_a_foreign_host_or_origin_is_refused(sleepy: ServerProcess) -> None:
    base = sleepy.base
    assert httpx.get(f"{base}/v1/models").status_code == 200
    assert httpx.get(f"{base}/v1/models", headers={"Origin": f"http://127.0.0.1:{sleepy.port}"}).status_code == 200
    rebound = httpx.get(f"{base}/v1/models", headers={"Host": f"evil.example:{sleepy.port}"})
    assert rebound.status_code == 421 and "not this loopback server" in rebound.json()["error"]["message"]
    page = httpx.post(
        f"{base}/v1/images/edits", headers={"Origin": "https://evil.example"},
        files={"image": ("a.png", png_bytes(Image.new("RGB", (8, 8))), "image/png")}, data={"prompt": "x"},
    )
    assert page.status_code == 403 and "evil.example" in page.json()["error"]["message"]
    assert httpx.get(f"{base}/health", headers={"Origin": "null"}).status_code == 403
    assert errors(sleepy, "forbidden_origin") >= 2 and errors(sleepy, "forbidden_host") >= 1


def test_long_field_values_are_not_echoed(sleepy: ServerProcess) -> None:
    long = "m" * 60_000
    for data in ({"prompt": "x", "model": long}, {"prompt": "x", "user": long}, {"prompt": "x", long[:3000]: "1"}):
        answer = httpx.post(
            f"{sleepy.base}/v1/images/edits",
            files={"image": ("a.png", png_bytes(Image.new("RGB", (8, 8))), "image/png")},
            data=data,
        )
        assert answer.status_code in (400, 404, 422)
        assert len(answer.content) < 2000, len(answer.content)


async def test_work_budgets_answer_413_naming_the_limit(sleepy: ServerProcess) -> None:
    client = openai.AsyncOpenAI(base_url=sleepy.url, api_key="unused", max_retries=0)
    small = ("a.png", png_bytes(Image.new("RGB", (64, 64), "red")), "image/png")
    with pytest.raises(openai.APIStatusError) as info:
        await client.images.edit(image=small, prompt="x", n=8, size="4096x4096")  # type: ignore[arg-type]
    assert info.value.status_code == 413 and "max_output_pixels" in info.value.message
    big = ("b.png", png_bytes(Image.new("RGB", (2100, 2100), "red")), "image/png")
    with pytest.raises(openai.APIStatusError) as info:
        await client.images.edit(image=big, prompt="x")
    assert info.value.status_code == 413 and "max_input_pixels" in info.value.message
    with pytest.raises(openai.APIStatusError) as info:  # a reference image is held to the same limit
        await client.images.edit(image=[small, big], prompt="x")  # type: ignore[arg-type]
    assert info.value.status_code == 413 and "reference image 2100x2100" in info.value.message
    ok = await client.images.edit(image=small, prompt="x", n=2, extra_body={"num_inference_steps": 1})
    assert len(ok.data) == 2


def test_the_thinker_server_has_the_same_deadlines_and_origin_check(server_data_dir: Path, server_logs: Path) -> None:
    from tests.servers import thinker_server

    with thinker_server(server_data_dir, server_logs) as thinker:
        sock = connect(thinker)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert read_all(sock) == b""  # closed by the server with no answer (read_all marks a socket left open)
        sock = connect(thinker)
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{thinker.port}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{".encode())
        sock.settimeout(45)  # the thinker keeps the default 30 s body deadline
        answer = read_all(sock)  # FastAPI's own 400 for the body it could not parse is replaced by the 408
        assert answer.startswith(b"HTTP/1.1 408") and b"came too slowly" in answer, answer[:200]
        assert b"still open" not in answer and b"connection: close" in answer.lower()
        page = httpx.post(f"{thinker.url}/chat/completions", headers={"Origin": "https://evil.example"}, json={})
        assert page.status_code == 403


def test_a_web_page_in_a_real_browser_cannot_make_the_editor_work(sleepy: ServerProcess, tmp_path: Path) -> None:
    """Chromium loads a page from http://evil.example (mapped to loopback) that POSTs an edit to the editor."""
    import http.server
    import shutil
    import subprocess
    import threading

    import base64

    picture = base64.b64encode(png_bytes(Image.new("RGB", (16, 16), "red"))).decode()
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed for this test"
    page = f"""<!doctype html><body><p id=r>pending</p><script>
    const form = new FormData();
    const png = Uint8Array.from(atob("{picture}"), c => c.charCodeAt(0));
    form.append("image", new Blob([png], {{type: "image/png"}}), "a.png");
    form.append("prompt", "add a hat");
    fetch("http://127.0.0.1:{sleepy.port}/v1/images/edits", {{method: "POST", body: form, mode: "no-cors"}})
      .then(() => document.getElementById("r").textContent = "sent", e => document.getElementById("r").textContent = "error " + e);
    </script></body>"""
    (tmp_path / "index.html").write_text(page)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    before_origin, before_ok = errors(sleepy, "forbidden_origin"), metric(
        httpx.get(f"{sleepy.base}/metrics").text, "thinkedit_editor_requests_total", 'status="200"')
    try:
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--host-resolver-rules=MAP evil.example 127.0.0.1", "--virtual-time-budget=10000", "--dump-dom",
             f"http://evil.example:{site.server_address[1]}/index.html"],
            capture_output=True, text=True, timeout=120,
        ).stdout
    finally:
        site.shutdown()
        site.server_close()
    assert "sent" in dom or "error" in dom, dom[-500:]  # the page ran and its request went out
    for _ in range(50):
        if errors(sleepy, "forbidden_origin") > before_origin:
            break
        time.sleep(0.1)
    after_ok = metric(httpx.get(f"{sleepy.base}/metrics").text, "thinkedit_editor_requests_total", 'status="200"')
    assert after_ok == before_ok  # no edit was made for the page
    assert errors(sleepy, "forbidden_origin") == before_origin + 1
