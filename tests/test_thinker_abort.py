"""The local thinker server aborts the requests whose clients gave up, as vLLM does.

A real server process and the openai SDK: a client sends a long request (a large ``max_tokens``) and
gives up on it (its timeout fires, the SDK closes the connection). The server must stop that generation
rather than run it to its budget, and must never start a request whose client left while it waited.
What the server did is read from its log (at debug level it logs each generation it starts).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from PIL import Image

from tests.servers import ServerProcess, png_bytes, thinker_server

pytestmark = pytest.mark.slow
MODEL = "tiny-qwen2.5-vl"
#: The most a request may ask for: the tiny model takes far longer than any test to generate it all.
LONG = 32768
#: How long the test waits for the server to do something it should do at once (generous: a busy CI machine).
PATIENCE_S = 60.0
EVENT = re.compile(
    r"request chatcmpl-\w+ \(user '(?P<user>[\w-]+)'\)(?::)? (?P<what>generating up to|aborted after|dropped before)"
    r"(?: (?P<tokens>\d+) of up to (?P<budget>\d+))?"
)


@pytest.fixture(scope="module")
def server(server_data_dir: Path, server_logs: Path) -> Iterator[ServerProcess]:
    """A thinker server of its own (abandoned requests must not slow the shared one), logging at debug level."""
    with thinker_server(server_data_dir, server_logs, "-vv") as process:
        yield process


@pytest.fixture
def messages(photo: Image.Image) -> list[dict]:
    url = "data:image/png;base64," + base64.b64encode(png_bytes(photo.resize((32, 32)))).decode()
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": "Describe the image."}]}]


def client(server: ServerProcess, timeout: float) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=timeout)


def ask(server: ServerProcess, messages: list[dict], user: str, max_tokens: int, timeout: float) -> object:
    """Send one chat request; return the completion, or the exception that ended the wait."""
    with client(server, timeout) as sdk:
        try:
            return sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens, user=user)
        except openai.APIError as exc:
            return exc


def events(server: ServerProcess, since: int) -> list[tuple[str, str, int | None]]:
    """Return (user, what, tokens) for each request event the server logged after offset ``since``, in order."""
    text = server.log_path.read_text(errors="replace")[since:]
    return [(m["user"], m["what"].split()[0], int(m["tokens"]) if m["tokens"] else None) for m in EVENT.finditer(text)]


def wait_for(server: ServerProcess, since: int, event: tuple[str, str]) -> None:
    """Wait until the server logs ``(user, what)`` after ``since``."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if event in [(user, what) for user, what, _ in events(server, since)]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never logged {event}:\n{server.log_tail()}")


def log_size(server: ServerProcess) -> int:
    return len(server.log_path.read_text(errors="replace"))


def test_a_generation_whose_client_gave_up_stops_and_frees_the_model(server: ServerProcess, messages: list) -> None:
    since = log_size(server)
    gave_up = ask(server, messages, "impatient", LONG, timeout=1.0)
    assert isinstance(gave_up, openai.APITimeoutError)
    served = ask(server, messages, "next", 8, timeout=PATIENCE_S)
    assert not isinstance(served, Exception), served
    assert served.usage.completion_tokens == 8 and served.choices[0].finish_reason == "length"
    seen = events(server, since)
    # The abandoned generation stopped short of its budget, and before the next client's generation began.
    assert [(user, what) for user, what, _ in seen] == [
        ("impatient", "generating"), ("impatient", "aborted"), ("next", "generating")
    ], seen
    assert 0 < seen[1][2] < LONG
    assert "Traceback" not in server.log_path.read_text(errors="replace")[since:]


def test_a_request_whose_client_gave_up_while_it_waited_never_runs(server: ServerProcess, messages: list) -> None:
    since = log_size(server)
    results: dict[str, object] = {}
    first = threading.Thread(target=lambda: results.update(first=ask(server, messages, "first", LONG, timeout=5.0)))
    first.start()
    try:
        wait_for(server, since, ("first", "generating"))  # the model is busy: the next request has to wait
        results["queued"] = ask(server, messages, "queued", LONG, timeout=1.0)
        wait_for(server, since, ("queued", "dropped"))
    finally:
        first.join()
    assert isinstance(results["queued"], openai.APITimeoutError)
    assert isinstance(results["first"], openai.APITimeoutError)
    served = ask(server, messages, "after", 8, timeout=PATIENCE_S)
    assert not isinstance(served, Exception), served
    seen = [(user, what) for user, what, _ in events(server, since)]
    assert seen == [("first", "generating"), ("queued", "dropped"), ("first", "aborted"), ("after", "generating")], seen


def test_a_user_field_cannot_write_lines_into_the_servers_log(server: ServerProcess, messages: list) -> None:
    """The ``user`` a client sends is logged quoted, so a line break in it cannot forge a log line."""
    since = log_size(server)
    forged = "eve\n2099-01-01 00:00:00,000 WARNING thinkedit: forged"
    answer = ask(server, messages, forged, max_tokens=2, timeout=PATIENCE_S)
    assert not isinstance(answer, Exception), answer
    logged = server.log_path.read_text(errors="replace")[since:]
    assert "(user 'eve\\n2099-01-01" in logged, logged
    assert not any(line.startswith("2099-01-01") for line in logged.splitlines()), logged


def test_a_generation_cancelled_before_it_starts_never_runs_the_model(server_data_dir: Path, photo: Image.Image) -> None:
    """A cancel that lands while the request's grammar compiles or its inputs are built stops it before the prefill."""
    from thinkedit.tools.config import ThinkerConfig
    from thinkedit.tools.thinkers.vlm_runtime import VlmRuntime

    runtime = VlmRuntime(ThinkerConfig(backend="transformers", model=MODEL), data_dir=server_data_dir)
    cancel = threading.Event()
    cancel.set()
    generation = runtime.generate([photo.resize((32, 32))], "Describe the image.", max_new_tokens=8, cancel=cancel)
    assert (generation.finish_reason, generation.completion_tokens, generation.text) == ("abort", 0, "")
    assert generation.prompt_tokens > 0
    whole = runtime.generate([photo.resize((32, 32))], "Describe the image.", max_new_tokens=2)
    assert whole.completion_tokens > 0 and whole.finish_reason != "abort"
