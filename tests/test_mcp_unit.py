"""Fast tests of the MCP layer's pure parts: input policy, progress, result size, schemas, config."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.runs import Runner
from thinkedit.servers.mcp.client_config import client_config
from thinkedit.servers.mcp.lifespan import ServerConfig, base_settings
from thinkedit.servers.mcp.image_args import ImageResolver, default_roots
from thinkedit.servers.mcp.live_runs import ProgressReporter, progress_of
from thinkedit.servers.mcp.results import MAX_RESULT_BYTES, tool_result
from thinkedit.servers.mcp.schemas import GetRunInput, ThinkWhileEditInput
from tests.mcp_support import CHELSEA, ROOT
from thinkedit.tools.errors import BadInputError


@pytest.fixture
def resolver(tmp_path: Path) -> ImageResolver:
    runner = Runner(tmp_path / "data", memory_checkpointer())
    root = tmp_path / "root"
    root.mkdir()
    return ImageResolver(runner, [root, tmp_path / "data"], max_bytes=200_000)


def png_bytes(size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


async def test_paths_under_a_root_load(resolver: ImageResolver, tmp_path: Path) -> None:
    (tmp_path / "root" / "a.png").write_bytes(png_bytes())
    image = await resolver.load(str(tmp_path / "root" / "a.png"))
    assert image.size == (32, 24)
    assert (await resolver.load((tmp_path / "root" / "a.png").as_uri())).size == (32, 24)


async def test_paths_outside_the_roots_are_refused(resolver: ImageResolver, tmp_path: Path) -> None:
    (tmp_path / "outside.png").write_bytes(png_bytes())
    with pytest.raises(BadInputError, match="outside the allowed roots"):
        await resolver.load(str(tmp_path / "outside.png"))
    with pytest.raises(BadInputError, match="outside the allowed roots"):
        await resolver.load(str(tmp_path / "root" / ".." / "outside.png"))


async def test_symlink_escape_is_refused(resolver: ImageResolver, tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(png_bytes())
    (tmp_path / "root" / "link.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(BadInputError, match="symlink.*outside the allowed roots"):
        await resolver.load(str(tmp_path / "root" / "link.png"))


async def test_not_an_image_names_the_problem(resolver: ImageResolver, tmp_path: Path) -> None:
    (tmp_path / "root" / "notes.png").write_text("hello")
    with pytest.raises(BadInputError, match="not an image"):
        await resolver.load(str(tmp_path / "root" / "notes.png"))


async def test_data_uris(resolver: ImageResolver) -> None:
    good = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    assert (await resolver.load(good)).size == (32, 24)
    big = "data:image/png;base64," + base64.b64encode(b"\0" * 300_000).decode()
    with pytest.raises(BadInputError, match="too large"):
        await resolver.load(big)
    with pytest.raises(BadInputError, match="base64"):
        await resolver.load("data:image/png,rawdata")
    with pytest.raises(BadInputError, match="not valid base64"):
        await resolver.load("data:image/png;base64,@@@@")


async def test_urls_are_off_by_default(resolver: ImageResolver) -> None:
    with pytest.raises(BadInputError, match="fetching URLs is off"):
        await resolver.load("https://example.com/cat.png")
    with pytest.raises(BadInputError, match="unknown run id"):
        await resolver.load("thinkedit://runs/nope/final.png")
    with pytest.raises(BadInputError, match="not a thinkedit image URI"):
        await resolver.load("thinkedit://elsewhere/x.png")


def test_default_roots_never_include_a_filesystem_root(tmp_path: Path) -> None:
    assert default_roots(tmp_path / "data", cwd=Path("/")) == [tmp_path / "data"]
    assert default_roots(tmp_path / "data", cwd=tmp_path) == [tmp_path.resolve(), tmp_path / "data"]


def test_progress_counts_phases_and_names_round_and_scores() -> None:
    assert progress_of({"event": "round_started", "round": 2, "instruction": "x", "seed": 0}, 3)[:2] == (4.0, 10.0)
    verdict = {
        "event": "verdict",
        "round": 1,
        "semantic": 3.0,
        "quality": 7.5,
        "overall": 4.74,
        "think_seconds": 0.1,
        "refined_instruction": "y",
        "stop_reason": None,
    }
    progress, total, message = progress_of(verdict, 3)
    assert (progress, total) == (3.0, 10.0)
    assert "round 1/3" in message and "semantic 3" in message and "quality 7.5" in message
    assert progress_of({"event": "run_finished", "best_round": 1, "stop_reason": "max_rounds"}, 3)[0] == 10.0
    assert progress_of({"event": "something_else"}, 3) is None


async def test_progress_increases_with_every_notification() -> None:
    sent: list[float] = []

    async def report(progress: float, total: float | None, message: str | None) -> None:
        sent.append(progress)

    reporter = ProgressReporter(report, 2)
    for name in ["round_started", "image_ready"]:
        await reporter({"event": name, "round": 2, "instruction": "x", "seed": 0, "edit_seconds": 0.1})
    await reporter({"event": "round_started", "round": 1, "instruction": "x", "seed": 0})  # late: nothing sent
    await reporter({"event": "image_ready", "round": 2, "edit_seconds": 0.1})  # a retried phase: nothing sent
    verdict = {"event": "verdict", "round": 2, "semantic": 9.0, "quality": 9.0, "overall": 9.0, "think_seconds": 0.1,
               "refined_instruction": "", "stop_reason": "max_rounds"}
    await reporter(verdict)  # the last allowed round scored: 6 of 7
    await reporter({"event": "run_finished", "best_round": 2, "stop_reason": "max_rounds"})
    assert sent == [4.0, 5.0, 6.0, 7.0] and reporter.sent == 4


def test_results_stay_under_1mb_with_a_large_image() -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), dtype=np.uint8))
    model = GetRunInput(run_id="abc")
    result = tool_result(model, "summary", image=noise)
    size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    assert size < MAX_RESULT_BYTES
    images = [b for b in result.content if b.type == "image"]
    assert len(images) == 1 and len(base64.b64decode(images[0].data)) > 100_000


def test_a_stored_png_that_fits_is_sent_as_it_is_and_one_that_does_not_is_shrunk() -> None:
    small = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(small, format="PNG", compress_level=1)
    result = tool_result(GetRunInput(run_id="abc"), "summary", image=small.getvalue())
    (image,) = [b for b in result.content if b.type == "image"]
    assert base64.b64decode(image.data) == small.getvalue()  # the very bytes: nothing re-encoded
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), dtype=np.uint8)).save(big, format="PNG")
    result = tool_result(GetRunInput(run_id="abc"), "summary", image=big.getvalue())
    assert len(result.model_dump_json(by_alias=True, exclude_none=True).encode()) < MAX_RESULT_BYTES
    (image,) = [b for b in result.content if b.type == "image"]
    assert Image.open(io.BytesIO(base64.b64decode(image.data))).width < 1400


def test_input_schemas_forbid_unknown_fields_and_describe_every_field() -> None:
    schema = ThinkWhileEditInput.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for p in schema["properties"].values())
    with pytest.raises(ValidationError, match="max_rounds"):
        ThinkWhileEditInput(image="a.png", instruction="x", max_rounds=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        ThinkWhileEditInput.model_validate({"image": "a.png", "instruction": "x", "max_round": 2})


def test_mcp_config_points_at_this_install(tmp_path: Path) -> None:
    doc = client_config("tiny", [tmp_path], tmp_path / "data")
    entry = doc["mcpServers"]["thinkedit"]
    assert Path(entry["command"]).is_absolute()
    assert entry["args"][-5:] == ["mcp", "--profile", "tiny", "--allow-root", str(tmp_path)]
    assert entry["env"]["THINKEDIT_DATA_DIR"] == str(tmp_path / "data")
    assert "servers" in client_config(client="vscode")
    out = subprocess.run(
        [sys.executable, "-m", "thinkedit.servers.cli", "mcp-config", "--profile", "kontext"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(out.stdout)["mcpServers"]["thinkedit"]["args"][-3:] == ["kontext", "--allow-root", str(ROOT)]


def test_core_and_cli_import_without_the_mcp_sdk() -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "import thinkedit.agent.graph, thinkedit.agent.runs, thinkedit.servers.cli, thinkedit.servers.mcp.cli, thinkedit.servers.mcp.client_config\n"
        "parser = thinkedit.servers.cli.build_parser()\n"
        "args = parser.parse_args(['serve', 'mcp'])\n"
        "sys.exit(args.handler(args))\n"
    )
    env = {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 2, out.stderr
    assert "needs the mcp extra" in out.stderr


def test_example_config_matches_the_generated_shape() -> None:
    doc = json.loads((ROOT / "examples" / "claude_desktop_config.json").read_text())
    entry = doc["mcpServers"]["thinkedit"]
    assert entry["args"][:4] == ["serve", "mcp", "--profile", "tiny"]
    assert CHELSEA.is_file()


def test_editor_and_thinker_urls_map_to_the_http_backends(tmp_path: Path) -> None:
    config = ServerConfig(
        data_dir=tmp_path,
        editor_url="http://127.0.0.1:9000/v1",
        thinker_url="http://127.0.0.1:9001/v1",
        thinker_model="appletea2333/EditThinker-8B",
    )
    settings = base_settings(config)
    assert (settings.editor.backend, settings.editor.base_url, settings.editor.model) == (
        "openai-images",
        "http://127.0.0.1:9000/v1",
        "tiny-kontext",
    )
    assert settings.editor.max_side == 256  # the profile's editor settings are kept
    assert (settings.thinker.backend, settings.thinker.base_url, settings.thinker.model) == (
        "chat-model",
        "http://127.0.0.1:9001/v1",
        "appletea2333/EditThinker-8B",
    )
    assert settings.thinker.protocol == "editthinker"
    plain = base_settings(ServerConfig(data_dir=tmp_path))
    assert (plain.editor.backend, plain.thinker.backend) == ("diffusers", "transformers")


@pytest.mark.parametrize(("sent", "kept"), [("Infinity", 600.0), (1e9, 600.0), (-5, 0.0), ("NaN", 0.0), (30.5, 30.5)])
def test_a_retrys_wait_budget_is_held_to_what_a_call_may_ask(sent: object, kept: float) -> None:
    import json
    from types import SimpleNamespace

    from thinkedit.servers.mcp.review import continuation

    state = json.dumps({"run_id": "abc", "round": 2, "budget": sent, "notes": []}).replace('"Infinity"', "Infinity")
    state = state.replace('"NaN"', "NaN")
    retry = continuation(SimpleNamespace(request_state=state, input_responses={}))  # type: ignore[arg-type]
    assert retry is not None and retry.budget == kept and retry.round == 2
