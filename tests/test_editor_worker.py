"""The editor server runs its pipeline in a worker process: it is there, it stops with the server, its death is reported."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.servers import ServerProcess, png_bytes, sleepy_editor_server
from tests.sleepy_editor import thread_naming_engine
from thinkedit.servers.editor.settings import EditorServerSettings
from thinkedit.servers.editor.metrics import EditorMetrics
from thinkedit.servers.editor.service import EditorService
from thinkedit.tools.types import EditRequest

pytestmark = pytest.mark.slow

WORKER_MODULE = "thinkedit.servers.editor.worker"


def workers_of(pid: int) -> list[int]:
    """Return the child processes of ``pid`` that run the pipeline worker."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if WORKER_MODULE in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return bool(stat) and stat.split(") ", 1)[1][0] != "Z"


async def edit(server: ServerProcess) -> openai.types.ImagesResponse:
    client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)
    return await client.images.edit(image=("a.png", png_bytes(Image.new("RGB", (32, 32), "red")), "image/png"),
                                    prompt="x", extra_body={"seed": 1, "num_inference_steps": 1})


async def test_edits_run_in_a_worker_process_that_stops_with_the_server(server_data_dir, server_logs) -> None:
    server = sleepy_editor_server(server_data_dir, server_logs).start()
    try:
        assert server.proc is not None
        (worker,) = workers_of(server.proc.pid)
        result = await edit(server)
        assert result.data and result.data[0].b64_json
    finally:
        code = server.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a graceful shutdown
    deadline = time.monotonic() + 15
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker), "the worker outlived its server"


async def test_a_dead_worker_fails_the_edit_and_health_says_so(server_data_dir, server_logs) -> None:
    with sleepy_editor_server(server_data_dir, server_logs) as server:
        assert server.proc is not None
        (worker,) = workers_of(server.proc.pid)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(openai.InternalServerError) as caught:
            await edit(server)
        assert "worker process died" in str(caught.value)
        health = httpx.get(f"{server.base}/health")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert server.proc.poll() is None  # the server itself lives on to say so


@pytest.mark.parametrize(("placement", "ran_on"), [("process", "main"), ("process-thread", "pipeline")])
async def test_the_pipeline_runs_on_the_thread_its_placement_names(placement: str, ran_on: str) -> None:
    settings = EditorServerSettings(model="tiny-kontext", placement=placement)
    service = EditorService(settings, EditorMetrics(settings.model, settings.replica_id), thread_naming_engine)
    await service.start()
    try:
        assert service.status == "ready", service.error
        assert service.worker is not None and service.worker.alive  # in a worker process either way
        result = await service.edit(EditRequest(image=Image.new("RGB", (8, 8)), instruction="x", seed=1))
        assert result.model.startswith(ran_on), result.model
    finally:
        await service.close(10)


def environ_of(pid: int) -> dict[str, str]:
    """Return the environment a process started with (Linux: /proc/<pid>/environ)."""
    items = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in items if b"=" in item)


@pytest.mark.parametrize("own", [None, ("GOMP_SPINCOUNT", "777"), ("OMP_WAIT_POLICY", "ACTIVE")],
                         ids=["default", "own-spincount", "own-wait-policy"])
def test_the_worker_spins_briefly_unless_openmps_wait_is_set_already(server_data_dir, server_logs, monkeypatch,
                                                                      own: tuple[str, str] | None) -> None:
    from thinkedit.servers.editor.worker import WORKER_SPINCOUNT

    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    if own is not None:
        monkeypatch.setenv(*own)
    with sleepy_editor_server(server_data_dir, server_logs) as server:
        assert server.proc is not None
        (worker,) = workers_of(server.proc.pid)
        env = environ_of(worker)
    if own is None:
        assert env.get("GOMP_SPINCOUNT") == WORKER_SPINCOUNT == "20000"
    else:
        assert env.get(own[0]) == own[1]  # the user's choice stands, and nothing is added beside it
        assert ("GOMP_SPINCOUNT" in env) == (own[0] == "GOMP_SPINCOUNT")
    assert env.get("THINKEDIT_DATA_DIR") == str(server_data_dir)  # the rest of the environment is the server's


async def test_shutdown_past_its_timeout_ends_the_running_batch_and_answers_its_caller() -> None:
    import asyncio

    from tests.sleepy_editor import sleepy_engine
    from thinkedit.servers.editor.batching import ShuttingDownError

    settings = EditorServerSettings(model="sleepy", backend="sleepy", placement="process")
    service = EditorService(settings, EditorMetrics(settings.model, settings.replica_id), sleepy_engine)
    await service.start()
    assert service.status == "ready", service.error
    long = EditRequest(image=Image.new("RGB", (8, 8)), instruction="x", seed=1, settings={"num_inference_steps": 600})
    edit = asyncio.ensure_future(service.edit(long))  # a batch of 60 s, running in the worker process
    await asyncio.sleep(1.0)
    worker = service.worker
    assert worker is not None and worker.alive
    await asyncio.wait_for(service.close(1.0), 30)  # bounded by the timeout, not by the batch
    assert not worker.alive  # ended, not left to finish its minute
    with pytest.raises(ShuttingDownError, match="shut down while this edit ran"):
        await asyncio.wait_for(edit, 5)  # its caller is answered


def test_shutdown_while_the_model_loads_ends_the_worker_within_the_timeout(server_data_dir, server_logs) -> None:
    server = sleepy_editor_server(server_data_dir, server_logs, "--load-seconds", "300", "--shutdown-timeout", "2")
    server.start(status=503)  # up, still loading
    workers: list[int] = []
    try:
        assert server.proc is not None
        deadline = time.monotonic() + 30
        while not workers and time.monotonic() < deadline:
            workers = workers_of(server.proc.pid)
            time.sleep(0.1)
        (worker,) = workers  # started, and loading for minutes
        assert httpx.get(f"{server.base}/health").json()["status"] == "loading"
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(30)  # the timeout bounds it, not the load
        assert code in (0, -signal.SIGTERM)
        assert not alive(worker), "the worker outlived its server"
        assert "Traceback" not in server.log_tail(20000)  # a load ended by shutdown is no failure
    finally:
        server.stop()
        for pid in workers:  # no orphan left loading when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
