"""A key the provider echoes back, and a database password in any URL form, are never stored, logged or shown.

The run goes through the real CLI and the real openai SDK to a provider double on 127.0.0.1 that
answers 401 quoting the bearer key it was sent; the checkpoint URLs point at 127.0.0.1 on a closed
port, and the one libpq would read differently is refused before anything connects.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thinkedit.agent.checkpoint import parse_checkpoint_url
from thinkedit.tools.errors import BadInputError
from tests.mcp_support import CHELSEA
from tests.procs import free_port
from tests.provider_doubles import provider_double
from tests.servers import cli_env

SECRET = "sk-test-SECRET123"


def thinkedit(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_a_key_the_provider_echoes_is_masked_in_stderr_record_checkpoint_and_gallery(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from thinkedit.agent.settings import LoopSettings
    from thinkedit.servers.ui.app import GalleryConfig, build_app

    data = tmp_path / "data"
    with provider_double() as double:
        double.fail_next(r"/v1/images/edits", 401)
        env = cli_env(data, THINKEDIT_EDITOR_URL=f"{double.url}/v1", THINKEDIT_THINKER_URL=f"{double.url}/v1",
                      OPENAI_API_KEY=SECRET)
        done = thinkedit("-vv", "edit", str(CHELSEA), "put a red party hat on the cat", "--profile", "openai",
                         "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
        sent = double.calls(r"/v1/images/edits")
    assert sent and sent[0].headers["authorization"] == f"Bearer {SECRET}"  # the SDK sent it; the double echoed it
    assert done.returncode == 1 and "answered 401" in done.stderr and "Incorrect API key provided" in done.stderr
    assert SECRET not in done.stderr + done.stdout, done.stderr
    assert "Traceback" in done.stderr  # -vv logs the failure with its traceback: masked too

    (record_file,) = (data / "runs").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "error" and "answered 401" in record["error"] and "Bearer ***" in record["error"]
    stored = b"".join(path.read_bytes() for path in data.glob("checkpoints.sqlite*"))
    assert b"answered 401" in stored  # the node's error is checkpointed...
    assert SECRET.encode() not in stored  # ...without the key

    config = GalleryConfig(data_dir=data, settings=LoopSettings.from_profile("tiny", data_dir=str(data)))
    with TestClient(build_app(config), base_url="http://127.0.0.1:8770") as http:
        view = http.get(f"/api/runs/{record['run_id']}")
        page = http.get(f"/runs/{record['run_id']}")
    assert view.status_code == 200 and "answered 401" in view.text and SECRET not in view.text
    assert page.status_code == 200 and SECRET not in page.text


def test_a_url_libpq_would_read_differently_is_refused_before_connecting() -> None:
    # libpq splits at the first '@' (password "SEC", host "RET@127.0.0.1", looked up through DNS);
    # Python at the last. Refused here, it never reaches libpq.
    with pytest.raises(BadInputError, match="percent-encoded") as refused:
        parse_checkpoint_url("postgresql://u:SEC@RET@127.0.0.1:5/db")
    assert "SEC" not in str(refused.value) and "RET" not in str(refused.value)
    with pytest.raises(BadInputError, match="percent-encoded"):
        parse_checkpoint_url("postgresql://u:p?w@127.0.0.1:5/db")  # urlsplit ends the host at '?', libpq does not
    assert parse_checkpoint_url("postgresql://u:SEC%40RET@127.0.0.1:5/db")[0] == "postgres"  # encoded: fine


@pytest.mark.parametrize("form", [
    "postgresql://u@127.0.0.1:{port}/db?password=QSECRET",
    "postgresql:///db?host=127.0.0.1&port={port}&user=u&password=QSECRET&sslpassword=QSECRET2",
    "postgresql://u:QSECRET@127.0.0.1:{port}/db",
])
def test_a_database_password_is_masked_in_every_url_form(form: str, tmp_path: Path) -> None:
    url = form.format(port=free_port())  # nothing listens there: the connection is refused
    closed = f"http://127.0.0.1:{free_port()}/v1"  # the run stops at the database, before any provider call
    env = cli_env(tmp_path / "data", THINKEDIT_EDITOR_URL=closed, THINKEDIT_THINKER_URL=closed,
                  OPENAI_API_KEY="sk-test-unused")
    done = thinkedit("edit", str(CHELSEA), "add a hat", "--profile", "openai", "--checkpoints", url,
                     env=env, cwd=tmp_path)
    assert done.returncode == 2 and "cannot reach PostgreSQL at postgresql://" in done.stderr, done.stderr
    assert "127.0.0.1" in done.stderr and "***" in done.stderr
    assert "QSECRET" not in done.stderr + done.stdout, done.stderr


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY",
                                  "REPLICATE_API_TOKEN", "HF_TOKEN", "THINKEDIT_MCP_TOKEN", "ACME_KEY"])
def test_every_configured_key_is_masked_in_our_errors_and_log_lines(name: str, monkeypatch, caplog) -> None:
    import logging

    from thinkedit.tools.errors import BackendError
    from thinkedit.tools.secrets import SecretFilter

    monkeypatch.setenv(name, "value-of-the-key-42")
    error = BackendError("thinker answered 401: Incorrect API key provided: value-of-the-key-42")
    assert str(error) == "thinker answered 401: Incorrect API key provided: ***"
    log = logging.getLogger("thinkedit.test_secrets")
    log.addFilter(SecretFilter())
    try:
        raise RuntimeError("echoed value-of-the-key-42")
    except RuntimeError:
        log.error("call with %s failed", "value-of-the-key-42", exc_info=True)
    (record,) = [r for r in caplog.records if r.name == "thinkedit.test_secrets"]
    assert record.getMessage() == "call with *** failed"
    assert "echoed ***" in record.exc_text and "value-of-the-key-42" not in caplog.text


def test_a_token_given_on_the_command_line_is_masked_too() -> None:
    from thinkedit.servers.exposure import resolve_token

    assert resolve_token("tok-given-on-the-command-line", env={}) == "tok-given-on-the-command-line"
    assert "tok-given" not in str(BadInputError("refused tok-given-on-the-command-line"))


def test_a_key_in_a_variable_of_any_name_is_masked_once_a_backend_reads_it(monkeypatch) -> None:
    from thinkedit.tools.config import required_key
    from thinkedit.tools.errors import BackendError

    monkeypatch.setenv("ACME_CREDS_FOR_EDITS", "acme-key-of-another-name")  # a profile's api_key_env
    assert required_key("ACME_CREDS_FOR_EDITS", "the editor acme") == "acme-key-of-another-name"
    assert str(BackendError("401: bad key acme-key-of-another-name")) == "401: bad key ***"


async def test_an_mcp_tool_error_from_a_foreign_exception_masks_the_key(monkeypatch) -> None:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from thinkedit.servers.mcp.server import build_tool
    from tests.test_mcp_sdk import SPEC

    async def leaky(args, ctx):  # a library error that quotes the key, not one of ours
        raise RuntimeError(f"401 Incorrect API key provided: Bearer {SECRET}")

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = MCPServer("t", tools=[build_tool(SPEC, leaky)])
    with pytest.raises(ToolError) as failed:
        await server.call_tool("echo", {"word": "hi"})
    assert "Incorrect API key provided: Bearer ***" in str(failed.value) and SECRET not in str(failed.value)
