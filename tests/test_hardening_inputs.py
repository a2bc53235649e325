"""Hostile image arguments to the MCP server: root races, NUL bytes, URL fetching, loop blocking (issue 13)."""

from __future__ import annotations

import asyncio
import http.server
import io
import ipaddress
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.runs import Runner
from thinkedit.servers.mcp.image_args import ImageResolver, public_only
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import SERVER_MAX_PIXELS, load_image
from tests.races import swapping_for_symlink


def png(size: tuple[int, int], colour: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def resolver(tmp_path: Path) -> ImageResolver:
    root = tmp_path / "root"
    root.mkdir()
    return ImageResolver(Runner(tmp_path / "data", memory_checkpointer()), [root])


async def test_swapping_a_folder_for_a_symlink_leaks_nothing(resolver: ImageResolver, tmp_path: Path) -> None:
    """A thread keeps swapping root/d between a real folder and a symlink to a folder outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.png").write_bytes(png((48, 48)))  # the secret: 48 px wide
    real = tmp_path / "root" / "d"
    real.mkdir()
    (real / "a.png").write_bytes(png((16, 16)))
    sizes: dict[int, int] = {}
    with swapping_for_symlink(real, outside):
        for _ in range(400):
            try:
                image = await resolver.load(str(real / "a.png"))
            except BadInputError:
                continue
            sizes[image.width] = sizes.get(image.width, 0) + 1
    assert 48 not in sizes, f"{sizes.get(48)} of 400 loads read the file outside the roots"
    assert sizes.get(16, 0) > 0  # the loads that won the race still work


async def test_a_nul_byte_is_named(resolver: ImageResolver, tmp_path: Path) -> None:
    for text in (f"{tmp_path}/root/a\0.png", "file:///tmp/a%00.png"):
        with pytest.raises(BadInputError, match="NUL byte"):
            await resolver.load(text)


def test_load_image_checks_the_size_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.write(png((8, 8)))
        f.truncate(200_000)  # sparse: large on paper, nothing to read
    with pytest.raises(BadInputError, match="too large: 200000 bytes, the limit is 100000"):
        load_image(big, max_bytes=100_000)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="not a file"):
        load_image(fifo)  # refused at once instead of waiting for a writer


async def test_the_pixel_limit_is_the_editor_servers(resolver: ImageResolver) -> None:
    from thinkedit.servers.editor.settings import EditorServerSettings

    from thinkedit.servers.thinker.local_app import ThinkerServerSettings

    assert EditorServerSettings(model="tiny-kontext").max_pixels == SERVER_MAX_PIXELS == resolver.max_pixels
    assert ThinkerServerSettings(model="tiny-qwen2.5-vl").max_pixels == SERVER_MAX_PIXELS
    import base64

    uri = "data:image/png;base64," + base64.b64encode(png((4200, 4200))).decode()
    with pytest.raises(BadInputError, match=f"exceeds {SERVER_MAX_PIXELS} pixels"):
        await resolver.load(uri)


# --- the event loop stays free --------------------------------------------------------------------


async def finishes_after_a_neighbour(work: asyncio.Future | asyncio.Task) -> bool:
    """Say whether a coroutine started after ``work`` got to run before ``work`` finished."""
    order: list[str] = []

    async def neighbour() -> None:
        await asyncio.sleep(0)
        order.append("neighbour")

    async def tracked() -> None:
        await work
        order.append("work")

    await asyncio.gather(tracked(), neighbour())
    return order[0] == "neighbour"


async def test_decoding_runs_off_the_event_loop(resolver: ImageResolver, tmp_path: Path) -> None:
    import base64

    data = png((2048, 2048), (10, 200, 30))
    (tmp_path / "root" / "big.png").write_bytes(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    for text in (uri, str(tmp_path / "root" / "big.png")):
        assert await finishes_after_a_neighbour(asyncio.ensure_future(resolver.load(text))), text


async def test_result_images_are_encoded_off_the_event_loop() -> None:
    from thinkedit.servers.mcp.results import tool_result_async
    from thinkedit.servers.mcp.schemas import ListModelsInput

    image = Image.new("RGB", (2048, 2048), (10, 200, 30))
    work = asyncio.ensure_future(tool_result_async(ListModelsInput(), "x", image=image))
    assert await finishes_after_a_neighbour(work)
    assert any(block.type == "image" for block in work.result().content)


async def test_one_edit_stores_its_images_off_the_event_loop(tmp_path: Path) -> None:
    from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker
    from thinkedit.agent.oneshot import edit_once
    from thinkedit.tools.config import EditorConfig
    from thinkedit.tools.store import ArtifactStore

    store = ArtifactStore(tmp_path / "artifacts")
    image = Image.new("RGB", (1024, 1024), (10, 200, 30))
    work = asyncio.ensure_future(
        edit_once(FakeBackends(ScriptedEditor(), ScriptedThinker([])), EditorConfig(backend="fake", model="fake"), store, image, "make it red")
    )
    assert await finishes_after_a_neighbour(work)


# --- URLs: public addresses only, on every hop -------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("10.1.2.3", "private"),
        ("192.168.0.9", "private"), ("172.16.0.1", "private"), ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"), ("100.64.0.1", "not a public"),
        ("224.0.0.1", "multicast"), ("fd00::1", "private"),
    ],
)
def test_the_url_policy_refuses_non_public_addresses(address: str, kind: str) -> None:
    reason = public_only(ipaddress.ip_address(address))
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:85e5", "8.8.8.8"])
def test_the_url_policy_lets_public_addresses_through(address: str) -> None:
    assert public_only(ipaddress.ip_address(address)) is None


class _Handler(http.server.BaseHTTPRequestHandler):
    redirect_to: str | None = None
    body = png((20, 20))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(host: str, redirect_to: str | None = None) -> Iterator[str]:
    handler = type("H", (_Handler,), {"redirect_to": redirect_to})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secret_server() -> Iterator[str]:
    yield from _serve("127.0.0.1")


async def test_urls_on_loopback_are_refused(tmp_path: Path, secret_server: str) -> None:
    resolver = ImageResolver(Runner(tmp_path / "d", memory_checkpointer()), [tmp_path], allow_urls=True)
    with pytest.raises(BadInputError, match="refused to fetch .*127.0.0.1 is a loopback address"):
        await resolver.load(f"{secret_server}/a.png")


async def test_a_redirect_to_loopback_is_refused(tmp_path: Path, secret_server: str) -> None:
    """The first hop is on 127.0.0.2, which this test's policy treats as public; the redirect is not."""

    def policy(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        return None if str(address) == "127.0.0.2" else public_only(address)

    gen = _serve("127.0.0.2", redirect_to=f"{secret_server}/secret.png")
    redirector = next(gen)
    try:
        allowed = ImageResolver(Runner(tmp_path / "d", memory_checkpointer()), [tmp_path], allow_urls=True,
                                url_policy=lambda a: None)
        assert (await allowed.load(f"{redirector}/a.png")).size == (20, 20)  # the redirect works when allowed
        resolver = ImageResolver(Runner(tmp_path / "d2", memory_checkpointer()), [tmp_path], allow_urls=True,
                                 url_policy=policy)
        with pytest.raises(BadInputError, match="127.0.0.1 is a loopback address"):
            await resolver.load(f"{redirector}/a.png")
    finally:
        gen.close()


# --- tool errors say why; finished runs are forgotten ----------------------------------------------


async def test_a_tool_error_always_says_why(data_dir: Path) -> None:
    from mcp import Client

    from tests.mcp_support import error_text
    from tests.test_mcp_runs import make_server

    server, _ = make_server(data_dir)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("edit_image", {"image": "/tmp/a\0b.png", "instruction": "x"})
        assert "NUL byte" in error_text(result)


async def test_finished_runs_leave_the_task_map(data_dir: Path) -> None:
    from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
    from tests.mcp_support import CHELSEA
    from tests.test_graph import make_settings
    from thinkedit.servers.mcp.live_runs import RunJobs

    runner = Runner(data_dir, memory_checkpointer(),
                    backends=FakeBackends(ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "same")))))
    jobs = RunJobs(runner, data_dir / "outputs")
    for _ in range(5):
        record = runner.prepare(CHELSEA, "add a hat", make_settings(data_dir, max_rounds=1))
        await jobs.start(record)
        assert jobs.live_count == 1
        assert await jobs.follow(record.run_id, 30)
        await asyncio.sleep(0)  # the done callback runs
        assert runner.registry.load(record.run_id).status == "done"
    assert jobs.live_count == 0 and not jobs._followers  # noqa: SLF001
