"""The gallery (``thinkedit ui``) as a real process under hostile input: bad run ids and Host headers,
the security headers of every answer, the token's way into the cookie, the cap on live streams."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.cli import cli_env
from tests.procs import free_port, server
from tests.test_ui_api import stored_run
from tests.fakes import verdicts
from thinkedit.servers.ui.app import GalleryConfig

LONG_ID = "a" * 255


@contextmanager
def gallery(tmp_path: Path, data_dir: Path, token: str | None = None) -> Iterator[str]:
    """Run ``thinkedit ui`` on a free port (with ``--token`` when given); yield its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "thinkedit.servers.cli", "ui", "--port", str(port), "--data-dir", str(data_dir),
           *(["--token", token] if token else [])]
    ready = urllib.request.Request(f"http://127.0.0.1:{port}/health",
                                   headers={"Authorization": f"Bearer {token}"} if token else {})
    with server(cmd, ready, env=cli_env(data_dir), log=tmp_path / "ui.log"):  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}"


def no_traceback(log: Path, *answers: httpx.Response) -> None:
    for answer in answers:
        assert "Traceback" not in answer.text and answer.headers["content-type"].startswith("application/json")
    assert "Traceback" not in log.read_text()


def test_bad_run_ids_and_host_headers_are_refused_without_a_traceback(tmp_path: Path, data_dir: Path) -> None:
    with gallery(tmp_path, data_dir) as base:
        page, events = httpx.get(f"{base}/runs/{LONG_ID}"), httpx.get(f"{base}/api/runs/{LONG_ID}/events")
        api = httpx.get(f"{base}/api/runs/{LONG_ID}")
        for answer in (page, events, api):
            assert answer.status_code == 400 and "invalid run id" in answer.json()["error"], answer.text
            assert "255 characters" in answer.json()["error"]
        host = httpx.get(f"{base}/api/runs", headers={"Host": "[::1"})
        assert host.status_code == 403 and "Host" in host.json()["error"]
        origin = httpx.post(f"{base}/api/runs/x/cancel", headers={"Origin": "http://[::1"})
        assert origin.status_code == 403 and "cross-origin" in origin.json()["error"]
        assert httpx.get(f"{base}/api/runs", headers={"Host": "[::1]:80"}).status_code == 200
        no_traceback(tmp_path / "ui.log", page, events, api, host, origin)


async def test_every_answer_refuses_framing_and_pages_carry_a_policy(tmp_path: Path, data_dir: Path, photo) -> None:
    state = await stored_run(data_dir, photo, verdicts((9, 9, "x")), max_rounds=1)
    with gallery(tmp_path, data_dir) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            answers = {
                path: await http.get(path)
                for path in ("/", f"/runs/{state.run_id}", "/api/runs", f"/api/runs/{state.run_id}",
                             f"/api/runs/{state.run_id}/images/source.png", "/api/runs/nosuchrun")
            }
    for path, answer in answers.items():
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        if answer.headers["content-type"].startswith("text/html"):
            assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
            assert "default-src 'none'" in policy, path
        else:
            assert policy.startswith("default-src 'none'"), path


def test_the_token_moves_to_a_cookie_of_this_gallery(tmp_path: Path, data_dir: Path) -> None:
    with gallery(tmp_path, data_dir, token="s3cret") as base:
        port = base.rsplit(":", 1)[1]
        moved = httpx.get(f"{base}/runs/abc?x=1&token=s3cret")
        assert moved.status_code == 303 and moved.headers["location"] == "/runs/abc?x=1"
        cookie = moved.headers["set-cookie"]
        assert cookie.startswith(f"thinkedit_gallery_{port}=s3cret;")
        assert all(part in cookie.lower() for part in ("httponly", "samesite=strict", "path=/"))
        assert httpx.get(f"{base}/?token=s3cret").headers["location"] == "/"
        assert httpx.get(f"{base}//evil.example/x?token=s3cret").headers["location"] == "/evil.example/x"
        assert httpx.get(f"{base}/?token=nope").status_code == 401
        with httpx.Client(base_url=base) as browser:
            assert browser.get("/?token=s3cret", follow_redirects=True).status_code == 200
            assert browser.get("/api/runs").status_code == 200  # the cookie carries the token now
        old = httpx.get(f"{base}/api/runs", cookies={"thinkedit_ui_token": "s3cret"})
        assert old.status_code == 401  # a cookie under any other name is not this gallery's


async def test_live_streams_per_client_are_capped(tmp_path: Path, data_dir: Path, photo) -> None:
    state = await stored_run(data_dir, photo, verdicts((3, 3, "y"), (9, 9, "x")), max_rounds=3, review=True)
    cap = GalleryConfig.max_streams_per_client
    url = f"/api/runs/{state.run_id}/events"
    with gallery(tmp_path, data_dir) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            async def open_stream() -> tuple[httpx.Response, str]:
                answer = await http.send(http.build_request("GET", url), stream=True)
                if answer.status_code != 200:
                    return answer, (await answer.aread()).decode()
                answer.chunks = answer.aiter_text()  # kept: a dropped iterator closes its response
                return answer, await anext(answer.chunks)

            held = await asyncio.gather(*(open_stream() for _ in range(cap)))
            assert all(a.status_code == 200 and first.startswith("retry:") for a, first in held)
            refused, body = await open_stream()
            assert refused.status_code == 429 and "too many live streams" in body
            assert (await http.get("/api/runs")).status_code == 200  # the rest of the gallery still answers
            await held[0][0].aclose()
            for _ in range(50):  # the server notices the closed stream at its next look
                again, first = await open_stream()
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert again.status_code == 200 and first.startswith("retry:")
            for answer, _ in [*held[1:], (again, "")]:
                await answer.aclose()
