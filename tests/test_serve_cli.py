"""``thinkedit serve`` as a command: the vLLM launcher and the checks made before any server starts."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

import pytest

from tests.servers import ROOT, cli_env
from thinkedit.servers.cli import build_parser
from thinkedit.servers.editor.metrics import EditorMetrics
from thinkedit.servers.editor.service import EditorService, build_engine
from thinkedit.servers.editor.settings import EditorServerSettings
from thinkedit.tools.errors import BadInputError


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", *args], cwd=ROOT, env=cli_env(ROOT / ".unused"),
                          capture_output=True, text=True, timeout=60)


def test_vllm_command_has_the_thinker_flags() -> None:
    done = run_cli("serve", "thinker", "--dry-run", "--port", "8001", "--max-model-len", "8192", "--", "--seed", "1")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("vllm serve appletea2333/EditThinker-8B --host 127.0.0.1 --port 8001")
    assert "--served-model-name appletea2333/EditThinker-8B" in line and "--max-model-len 8192" in line
    # A critique shows the source, up to two references and the edited image: vLLM must take them all.
    assert """--limit-mm-per-prompt '{"image": 4, "video": 0}'""" in line and line.endswith("--seed 1")
    assert "guided" not in line


def test_local_server_options_without_local_are_refused_not_dropped() -> None:
    """vLLM would load the hub's model on its own device: --path, --device and --max-tokens need --local."""
    done = run_cli("serve", "thinker", "--dry-run", "--path", "/models/mine", "--max-tokens", "64")
    assert done.returncode == 2 and not done.stdout, done.stdout
    assert "--path, --max-tokens apply to the local server: add --local" in done.stderr


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


@pytest.mark.parametrize("backend", ["openai-images", "openai-gpt-image", "replicate"])
def test_the_editor_server_refuses_a_hosted_backend(backend: str) -> None:
    done = run_cli("serve", "editor", "--model", "gpt-image-1", "--backend", backend)
    assert done.returncode == 2 and "--backend" in done.stderr and backend in done.stderr, done.stderr
    assert "diffusers" in done.stderr
    with pytest.raises(BadInputError, match=rf"not the '{backend}' backend.*--profile openai"):
        build_engine(EditorServerSettings(model="gpt-image-1", backend=backend))


async def test_an_editor_app_with_a_hosted_backend_says_why_on_health() -> None:
    settings = EditorServerSettings(model="gpt-image-1", backend="openai-gpt-image", placement="thread")
    service = EditorService(settings, EditorMetrics(settings.model, settings.replica_id))  # the app's default engine
    await service.start()
    try:
        assert service.status == "failed"  # what /health answers, with a 503
        assert service.error is not None and "not the 'openai-gpt-image' backend" in service.error
    finally:
        await service.close(5)


def commands_with(option: str, parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Return every (sub)command of the real parser that takes ``option``, by the words that name it."""
    found = {path: parser} if option in parser._option_string_actions else {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(commands_with(option, sub, (*path, name)))
    return found


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "eighty"])
def test_every_port_option_refuses_what_is_not_a_port(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    commands = commands_with("--port", build_parser())
    assert {("serve", "editor"), ("serve", "thinker"), ("serve", "mcp"), ("ui",)} <= set(commands)
    for words, sub in commands.items():
        required = [a.option_strings[0] for a in sub._actions if a.required and a.option_strings]
        argv = [*words, *(x for option in required for x in (option, "tiny-kontext")), "--port", port]
        with pytest.raises(SystemExit) as exited:
            build_parser(argv).parse_args(argv)
        error = capsys.readouterr().err
        assert exited.value.code == 2 and "--port" in error and port in error, (words, error)


@pytest.mark.parametrize(("given", "waited"), [(0.0, 0), (0.5, 1), (60.0, 60)])
def test_the_shutdown_timeout_reaches_uvicorn_as_a_bound(given: float, waited: int) -> None:
    from thinkedit.servers.editor.app import create_app
    from thinkedit.servers.editor.cli import uvicorn_config

    settings = EditorServerSettings(model="tiny-kontext", shutdown_timeout_s=given)
    config = uvicorn_config(create_app(settings), settings, "127.0.0.1", 8100)
    assert config.timeout_graceful_shutdown == waited  # never None, which uvicorn reads as "wait for ever"
