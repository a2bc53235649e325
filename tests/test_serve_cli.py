"""``thinkedit serve`` as a command: the vLLM launcher and the checks made before any server starts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.servers import ROOT, cli_env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", *args], cwd=ROOT, env=cli_env(ROOT / ".unused"),
                          capture_output=True, text=True, timeout=60)


def test_vllm_command_has_the_thinker_flags() -> None:
    done = run_cli("serve", "thinker", "--dry-run", "--port", "8001", "--max-model-len", "8192", "--", "--seed", "1")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("vllm serve appletea2333/EditThinker-8B --host 127.0.0.1 --port 8001")
    assert "--served-model-name appletea2333/EditThinker-8B" in line and "--max-model-len 8192" in line
    assert """--limit-mm-per-prompt '{"image": 2, "video": 0}'""" in line and line.endswith("--seed 1")
    assert "guided" not in line


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_the_launcher_says_so() -> None:
    done = run_cli("serve", "thinker")
    assert done.returncode == 1 and "vLLM is not installed" in done.stderr and "--local" in done.stderr


def test_public_addresses_need_a_token() -> None:
    for server in ("editor --model tiny-kontext", "thinker --local"):
        done = run_cli("serve", *server.split(), "--host", "0.0.0.0")
        assert done.returncode == 2 and "token" in done.stderr


def test_a_misspelt_editor_model_fails_at_once() -> None:
    done = run_cli("serve", "editor", "--model", "tiny-kontxt")
    assert done.returncode == 2 and "tiny-kontext" in done.stderr
