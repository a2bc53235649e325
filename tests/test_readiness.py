"""Readiness tells the truth: a local GPU profile is "not ready" without a GPU, and says what is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thinkedit.tools import readiness
from thinkedit.tools.profiles import DEMO_NOTE, available_profiles, load_profile
from tests.cli import cli_env
from tests.conftest import EXAMPLES

#: Packaged profiles whose in-process models need a GPU (their TOML says so in [needs]).
GPU_PROFILES = sorted(n for n in available_profiles()
                      if any(side.gpu_gib for side in load_profile(n, env={}).needs.values()))


def no_gpu(*args: str, tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess:
    """Run the CLI with CUDA hidden (as on a machine without a GPU), no hub token, and ``extra_env``."""
    env = cli_env(tmp_path / "data") | {"CUDA_VISIBLE_DEVICES": "", "HF_HOME": str(tmp_path / "hf"), **extra_env}
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HF_TOKEN_PATH"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_every_local_gpu_profile_is_not_ready_without_a_gpu(tmp_path: Path) -> None:
    assert {"kontext", "qwen-image-edit", "longcat", "paper", "expert", "instruct-pix2pix"} <= set(GPU_PROFILES)
    done = no_gpu("profiles", "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    for name in GPU_PROFILES:
        assert rows[name]["ready"] is False
        assert any("no CUDA device" in piece for piece in rows[name]["not_ready"]), rows[name]
    assert any("FLUX.1-Kontext-dev is gated" in piece for piece in rows["kontext"]["not_ready"])
    assert rows["tiny"]["ready"] and rows["tiny"]["demo"]
    table = no_gpu("profiles", tmp_path=tmp_path).stdout
    kontext = next(line for line in table.splitlines() if line.startswith("kontext "))
    assert "not ready: no CUDA device (needs 49 GiB of GPU memory" in kontext


def test_edit_with_a_profile_this_machine_cannot_run_stops_before_any_download(tmp_path: Path) -> None:
    done = no_gpu("edit", str(EXAMPLES / "chelsea.png"), "put a hat on the cat", "--profile", "kontext",
                  tmp_path=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "profile kontext cannot run on this machine: no CUDA device" in done.stderr
    assert "FLUX.1-Kontext-dev is gated" in done.stderr
    assert not (tmp_path / "hf").exists() and not (tmp_path / "data" / "runs").exists()


@pytest.fixture
def token_and_cache(tmp_path: Path) -> dict[str, str]:
    return {"HF_TOKEN": "hf_x", "HF_HUB_CACHE": str(tmp_path / "hub")}


def test_a_gpu_with_room_makes_kontext_ready(monkeypatch: pytest.MonkeyPatch, token_and_cache: dict[str, str]) -> None:
    kontext = load_profile("kontext", env={})
    monkeypatch.setattr(readiness, "_free_disk_gib", lambda folder: 500.0)
    monkeypatch.setattr(readiness, "gpu_free_gib", lambda: [80.0])
    assert kontext.missing_here(env=token_and_cache) == []
    monkeypatch.setattr(readiness, "gpu_free_gib", lambda: [40.0, 20.0])  # editor on one, thinker on the other
    assert kontext.missing_here(env=token_and_cache) == []
    monkeypatch.setattr(readiness, "gpu_free_gib", lambda: [40.0])
    assert kontext.missing_here(env=token_and_cache) == [
        "needs 49 GiB of free GPU memory, the roomiest device has 40.0 GiB"]


def test_disk_and_token_are_named_and_a_download_already_there_needs_no_disk(
    monkeypatch: pytest.MonkeyPatch, token_and_cache: dict[str, str]
) -> None:
    kontext = load_profile("kontext", env={})
    monkeypatch.setattr(readiness, "gpu_free_gib", lambda: [80.0])
    monkeypatch.setattr(readiness, "_free_disk_gib", lambda folder: 10.0)
    missing = kontext.missing_here(env={"HF_HUB_CACHE": token_and_cache["HF_HUB_CACHE"]})
    assert missing == [
        f"needs 49 GiB of free disk in {token_and_cache['HF_HUB_CACHE']} for the weights, has 10.0 GiB",
        "black-forest-labs/FLUX.1-Kontext-dev is gated: accept its licence on huggingface.co and set $HF_TOKEN",
    ]
    hub = Path(token_and_cache["HF_HUB_CACHE"])
    (hub / "models--black-forest-labs--FLUX.1-Kontext-dev").mkdir(parents=True)
    (hub / "models--appletea2333--EditThinker-8B").mkdir()
    assert kontext.missing_here(env=token_and_cache) == []


def test_a_server_url_drops_that_sides_needs(monkeypatch: pytest.MonkeyPatch, token_and_cache: dict[str, str]) -> None:
    kontext = load_profile("kontext", env={})
    monkeypatch.setattr(readiness, "_free_disk_gib", lambda folder: 500.0)
    monkeypatch.setattr(readiness, "gpu_free_gib", lambda: [20.0])
    served = kontext.editor.model_copy(update={"backend": "openai-images", "base_url": "http://127.0.0.1:9/v1"})
    assert kontext.missing_here(editor=served, env=token_and_cache) == []  # the 17 GiB thinker fits


def test_without_torch_a_local_profile_needs_the_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as on a core install
    for name in ("kontext", "tiny"):
        profile = load_profile(name, env={})
        assert profile.missing_here(env={}) == ["needs the local extra (pip install 'thinkedit[local]')"]
    assert load_profile("openai", env={}).missing_here(env={}) == []


def test_mcp_config_names_a_profile_this_machine_can_run(tmp_path: Path) -> None:
    unset = {"OPENAI_API_KEY": "", "REPLICATE_API_TOKEN": ""}
    demo = no_gpu("mcp-config", tmp_path=tmp_path, **unset)
    args = json.loads(demo.stdout)["mcpServers"]["thinkedit"]["args"]
    assert args[args.index("--profile") + 1] == "tiny"
    assert DEMO_NOTE in demo.stderr  # the person pasting the config learns it edits nothing real
    keyed = no_gpu("mcp-config", tmp_path=tmp_path, **unset | {"OPENAI_API_KEY": "sk-test"})
    args = json.loads(keyed.stdout)["mcpServers"]["thinkedit"]["args"]
    assert args[args.index("--profile") + 1] == "openai" and DEMO_NOTE not in keyed.stderr
