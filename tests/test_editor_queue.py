"""Queue bounds, hang-ups and shutdown of the editor server, around an engine of known speed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.servers import ServerProcess, metric, png_bytes, sleepy_editor_server

#: The scripted engine sleeps num_inference_steps / 10 seconds.
THREE_SECONDS = 30


@pytest.fixture(scope="module")
def sleepy(server_data_dir: Path, server_logs: Path):  # type: ignore[no-untyped-def]
    """A one-slot queue in front of a one-request-at-a-time engine."""
    with sleepy_editor_server(server_data_dir, server_logs, "--max-queue", "1", "--max-batch", "1") as server:
        yield server


async def edit(server: ServerProcess, steps: int = 1, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=timeout)
    return await client.images.edit(
        image=("a.png", png_bytes(Image.new("RGB", (32, 32), "red")), "image/png"),
        prompt="x",
        extra_body={"seed": 1, "num_inference_steps": steps},
    )


async def wait_for(server: ServerProcess, name: str, value: float, labels: str = "") -> None:
    """Poll /metrics until ``name`` reaches ``value`` (the server says when work is running or queued)."""
    async with httpx.AsyncClient(base_url=server.base) as http:
        for _ in range(100):
            if metric((await http.get("/metrics")).text, name, labels) >= value:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached {value}")


async def test_full_queue_answers_503_with_retry_after(sleepy: ServerProcess) -> None:
    running = asyncio.ensure_future(edit(sleepy, THREE_SECONDS))
    await wait_for(sleepy, "thinkedit_editor_running_requests", 1)
    queued = asyncio.ensure_future(edit(sleepy))
    await wait_for(sleepy, "thinkedit_editor_queue_depth", 1)
    with pytest.raises(openai.APIStatusError) as caught:
        await edit(sleepy)
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "queue_full"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert (await running).data and (await queued).data


async def test_a_client_that_hangs_up_takes_its_queued_request_with_it(sleepy: ServerProcess) -> None:
    before = httpx.get(f"{sleepy.base}/metrics").text
    running = asyncio.ensure_future(edit(sleepy, THREE_SECONDS))
    await wait_for(sleepy, "thinkedit_editor_running_requests", 1)
    with pytest.raises(openai.APITimeoutError):
        await edit(sleepy, timeout=0.5)  # queued behind the running edit, then gone
    await wait_for(sleepy, "thinkedit_editor_errors_total", 1 + metric(before, "thinkedit_editor_errors_total",
                                                                      'kind="cancelled"'), 'kind="cancelled"')
    assert metric(httpx.get(f"{sleepy.base}/metrics").text, "thinkedit_editor_queue_depth") == 0
    assert (await running).data
    after = httpx.get(f"{sleepy.base}/metrics").text
    ran = metric(after, "thinkedit_editor_batch_size_count") - metric(before, "thinkedit_editor_batch_size_count")
    assert ran == 1, "the abandoned request must never reach the engine"


async def test_shutdown_finishes_running_and_queued_edits(server_data_dir: Path, server_logs: Path) -> None:
    server = sleepy_editor_server(server_data_dir, server_logs, "--max-batch", "1").start()
    try:
        first = asyncio.ensure_future(edit(server, 15))
        await wait_for(server, "thinkedit_editor_running_requests", 1)
        second = asyncio.ensure_future(edit(server, 5))
        await wait_for(server, "thinkedit_editor_queue_depth", 1)
        code = await asyncio.to_thread(server.stop)  # SIGTERM while one runs and one waits
        assert (await first).data and (await second).data
        # uvicorn re-raises the SIGTERM it caught once shutdown is complete.
        assert code in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log_tail()
    finally:
        server.stop()


async def test_shutdown_past_its_timeout_answers_503_and_says_draining_meanwhile(
    server_data_dir: Path, server_logs: Path
) -> None:
    timeout = 3
    server = sleepy_editor_server(server_data_dir, server_logs, "--max-batch", "1",
                                  "--shutdown-timeout", str(timeout)).start()
    try:
        assert server.proc is not None
        running = asyncio.ensure_future(edit(server, 500))  # far past the timeout
        await wait_for(server, "thinkedit_editor_running_requests", 1)
        queued = asyncio.ensure_future(edit(server, 1))
        await wait_for(server, "thinkedit_editor_queue_depth", 1)
        server.proc.send_signal(signal.SIGTERM)
        health = None
        async with httpx.AsyncClient(base_url=server.base) as http:
            for _ in range(100):  # the signal is seen within uvicorn's next tick
                try:
                    answer = await http.get("/health")
                except httpx.TransportError:
                    break  # not listening any more: shutdown began without a draining phase
                if answer.status_code != 200:
                    health = answer
                    break
                await asyncio.sleep(0.05)
        assert health is not None and health.status_code == 503 and health.json()["status"] == "draining"
        for call in (running, queued):  # past the timeout: the documented 503, not uvicorn's bare 500
            with pytest.raises(openai.APIStatusError) as caught:
                await call
            assert caught.value.status_code == 503 and caught.value.body["code"] == "not_ready"
        code = await asyncio.to_thread(server.proc.wait, 30)  # bounded by the timeout, not by the batch
        assert code in (0, -signal.SIGTERM)
        assert "timeout graceful shutdown exceeded" not in server.log_tail(20000)
    finally:
        server.stop()
