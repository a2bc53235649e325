"""Work budgets of the editor server: per model, checked before queueing, weighed inside the queue (issue 13)."""

from __future__ import annotations

import asyncio

import pytest

from thinkedit.servers.editor.batching import MicroBatcher, QueueFullError
from thinkedit.servers.editor.budget import DEFAULT_AREA, TINY_AREA, model_area, request_cost, work_budget
from thinkedit.servers.editor.settings import EditorServerSettings
from thinkedit.servers.editor.metrics import EditorMetrics
from thinkedit.servers.editor.service import EditorService
from thinkedit.servers.httputil import APIError
from thinkedit.tools.editors.models import get_model


def budget_of(**settings: object):  # type: ignore[no-untyped-def]
    config = EditorServerSettings(**{"model": "tiny-kontext", **settings})
    return EditorService(config, EditorMetrics(config.model, "r")).budget


def test_the_budget_defaults_from_the_models_working_area() -> None:
    assert model_area(get_model("flux-kontext-dev"), None) == DEFAULT_AREA
    assert model_area(get_model("tiny-kontext"), None) == TINY_AREA
    assert model_area(get_model("flux-kontext-dev"), 256) == 256 * 256  # --max-side narrows it
    assert budget_of().max_input_pixels == 4 * TINY_AREA
    assert budget_of(model="flux-kontext-dev").max_output_pixels == 8 * 4 * DEFAULT_AREA
    assert budget_of(max_input_pixels=123, max_output_pixels=456).max_input_pixels == 123


def test_requests_past_the_budget_name_the_limit() -> None:
    budget = work_budget(DEFAULT_AREA, max_images=8)
    with pytest.raises(APIError, match="max_output_pixels") as info:
        request_cost(budget, (64, 64), (4096, 4096), 8)  # the 12 KB upload that asked for 71 MB
    assert info.value.status == 413 and info.value.param == "n"
    with pytest.raises(APIError, match="max_input_pixels"):
        request_cost(budget, (2100, 2100), (2100, 2100), 1)
    assert request_cost(budget, (4096, 4096), (512, 512), 1, max_side=1024) == 1.0  # shrunk first: fits
    assert request_cost(budget, (2048, 2048), (1024, 1024), 2) == 8.0  # two images at four working areas


def test_reference_images_are_held_to_the_budget_and_weigh_the_request() -> None:
    budget = work_budget(DEFAULT_AREA, max_images=8)
    with pytest.raises(APIError, match="reference image 4096x4096 is 16777216 pixels") as info:
        request_cost(budget, (64, 64), (64, 64), 1, references=[(512, 512), (4096, 4096)])
    assert info.value.status == 413 and info.value.param == "image"
    assert request_cost(budget, (1024, 1024), (1024, 1024), 1, references=[(1024, 1024)] * 2) == 3.0
    assert request_cost(budget, (1024, 1024), (1024, 1024), 1) == 1.0


async def test_heavy_requests_weigh_more_in_the_queue() -> None:
    release = asyncio.Event()

    async def run(batch: list[str]) -> list[str]:
        await release.wait()
        return batch

    batcher: MicroBatcher[str, str] = MicroBatcher(run, max_queue=4, max_batch=1, window_s=0)
    batcher.start()
    running = asyncio.ensure_future(batcher.submit("running", "k", 1))
    await asyncio.sleep(0.05)
    heavy = asyncio.ensure_future(batcher.submit("heavy", "k", 3))
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFullError):
        await batcher.submit("too much", "k", 2)  # 3 + 2 units > 4, though only 1 request waits
    light = asyncio.ensure_future(batcher.submit("light", "k", 1))
    await asyncio.sleep(0.01)
    assert batcher.queued_work == 4
    release.set()
    assert await asyncio.gather(running, heavy, light) == ["running", "heavy", "light"]
    lone = await batcher.submit("alone", "k", 50)  # one request always fits an empty queue
    assert lone == "alone"
    await batcher.close(5)
