"""Pure helpers of the servers and the CLI: loopback checks, tokens, server URLs, backend switching."""

from __future__ import annotations

import argparse

import pytest

from thinkedit.agent.settings import LoopSettings
from thinkedit.servers.options import server_url
from thinkedit.servers.exposure import check_exposure, is_loopback, resolve_token
from thinkedit.servers.httputil import describe_errors
from thinkedit.servers.thinker.vllm import VllmOptions, describe, vllm_command


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.org", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert (check_exposure(host, None) is None) is loopback
    assert check_exposure(host, "tok") is None


def test_token_from_flag_then_env() -> None:
    assert resolve_token("flag", {"THINKEDIT_TOKEN": "env"}) == "flag"
    assert resolve_token(None, {"THINKEDIT_TOKEN": "env"}) == "env"
    assert resolve_token(None, {"THINKEDIT_TOKEN": ""}) is None


def test_validation_errors_name_the_fields() -> None:
    message, param = describe_errors([
        {"loc": ("body", "guidance_scal"), "type": "extra_forbidden", "msg": "Extra inputs are not permitted"},
        {"loc": ("body", "prompt"), "type": "missing", "msg": "Field required"},
    ])
    assert message == "unknown field 'guidance_scal'; missing field 'prompt'" and param == "guidance_scal"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("http://127.0.0.1:8100", "http://127.0.0.1:8100/v1"), ("http://h:1/", "http://h:1/v1"),
     ("https://api.example.com/v1", "https://api.example.com/v1"), ("http://h:1/openai/v1", "http://h:1/openai/v1")],
)
def test_server_urls(given: str, expected: str) -> None:
    assert server_url(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:8100", "ftp://h/v1", "http://"])
def test_bad_server_urls(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        server_url(bad)


def test_urls_switch_backends_and_keep_the_profiles_model(data_dir: object) -> None:
    settings = LoopSettings.from_profile("tiny")
    remote = settings.with_servers("http://127.0.0.1:1/v1", None, "http://127.0.0.1:2/v1", "other-thinker")
    assert remote.editor.backend == "openai-images" and remote.editor.base_url == "http://127.0.0.1:1/v1"
    assert remote.editor.model == "tiny-kontext" and remote.editor.max_side == settings.editor.max_side
    assert remote.thinker.backend == "chat-model" and remote.thinker.model == "other-thinker"
    assert remote.thinker.constrained and remote.thinker.protocol == "editthinker"
    assert settings.with_servers() == settings


def test_vllm_command_shape() -> None:
    command = vllm_command(VllmOptions(model="m", served_model_name="thinker", dtype="bfloat16",
                                       tensor_parallel_size=2, extra=["--seed", "3"]))
    assert command[:3] == ["vllm", "serve", "m"]
    assert command[command.index("--served-model-name") + 1] == "thinker"
    assert command[command.index("--tensor-parallel-size") + 1] == "2" and command[-2:] == ["--seed", "3"]
    assert describe(command, with_token=True).startswith("VLLM_API_KEY='<token>' vllm serve m")
