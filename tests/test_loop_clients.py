"""Hosted backends used by one ``asyncio.run`` after another: each event loop gets a client of its own.

httpx (under openai, replicate and LangChain's chat models) keeps its connections on the loop that
opened them; a client used again from a later loop fails with "Event loop is closed". A script that
runs the graph once per image with ``asyncio.run``, and the editor server's worker (one
``asyncio.run`` per request for engines without batches), reuse one cached engine across loops, so
each asks ``tools.per_loop.PerLoop`` for the running loop's client. The backends talk to the provider
double over real HTTP with keep-alive, through their own client libraries.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from tests.provider_doubles import ProviderDouble, provider_double
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.per_loop import PerLoop
from thinkedit.tools.registry import BackendCache
from thinkedit.tools.types import EditRequest, JudgeRequest

#: Loops one after another, each freed before the next starts.
LOOPS = 5


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderDouble]:
    for name, value in {"OPENAI_API_KEY": "sk-test-openai", "REPLICATE_API_TOKEN": "r8_test"}.items():
        monkeypatch.setenv(name, value)
    with provider_double() as d:
        yield d


def picture() -> Image.Image:
    return Image.new("RGB", (64, 48), (0, 200, 0))


def gpt_image(url: str) -> Callable[[], Any]:
    editor = BackendCache().editor(EditorConfig(backend="openai-gpt-image", model="gpt-image-1", base_url=f"{url}/v1"))
    return lambda: editor.edit(EditRequest(image=picture(), instruction="add a hat"))


def openai_images(url: str) -> Callable[[], Any]:
    editor = BackendCache().editor(EditorConfig(backend="openai-images", model="tiny-kontext", base_url=f"{url}/v1"))
    return lambda: editor.edit(EditRequest(image=picture(), instruction="add a hat", seed=1))


def replicate(url: str) -> Callable[[], Any]:
    editor = BackendCache().editor(EditorConfig(backend="replicate", model="black-forest-labs/flux-kontext-pro",
                                                base_url=url))
    return lambda: editor.edit(EditRequest(image=picture(), instruction="add a hat", seed=1))


def chat_model(url: str) -> Callable[[], Any]:
    thinker = BackendCache().thinker(ThinkerConfig(backend="chat-model", model="openai:gpt-4.1", protocol="expert",
                                                   base_url=f"{url}/v1", api_key_env="OPENAI_API_KEY"))
    request = JudgeRequest(source=picture(), edited=picture(), original_instruction="add a hat",
                           current_instruction="add a hat", seed=1)
    return lambda: thinker.judge(request)


@pytest.mark.parametrize("backend", [gpt_image, openai_images, replicate, chat_model])
def test_a_cached_backend_works_from_one_event_loop_after_another(double: ProviderDouble, backend: Any) -> None:
    call = backend(double.url)
    done = []
    for _ in range(LOOPS):
        done.append(asyncio.run(call()))  # fails with "Event loop is closed" on an ended loop's client
        gc.collect()  # the ended loop is freed, as it is sooner or later in a long-lived process
    assert len(done) == LOOPS and all(result is not None for result in done)


def test_per_loop_builds_one_client_per_loop_and_keeps_no_loop_alive() -> None:
    built: list[object] = []

    def make() -> object:
        built.append(object())
        return built[-1]

    clients = PerLoop(make)

    async def twice() -> tuple[object, object, weakref.ref[asyncio.AbstractEventLoop]]:
        return clients.get(), clients.get(), weakref.ref(asyncio.get_running_loop())

    seen = []
    for _ in range(LOOPS):
        seen.append(asyncio.run(twice()))
        gc.collect()
    assert all(first is second for first, second, _ in seen)  # one client for all of a loop's calls
    assert len(built) == LOOPS and len({id(first) for first, _, _ in seen}) == LOOPS  # a new one in each loop
    assert all(loop() is None for _, _, loop in seen)  # an ended loop is freed, not held by its client
