"""Results a LangChain agent can pass on to OpenAI or Anthropic, while MCP-native clients keep their links.

The real adapters (``langchain-mcp-adapters`` on mcp 1.x, in a throwaway environment as a user
would have it, and ``langchain.mcp`` in ours) call a real server over streamable HTTP; the real
langchain-openai / langchain-anthropic converters turn each ToolMessage into the request they
would send (``tests/langchain_relay.py``). Every image in those requests must be a ``data:`` or
``https:`` URL. With ``--resource-links always`` the same relay carries ``thinkedit://`` URLs,
which is what the APIs reject (so the check can fail).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_scripted_server import write_profile
from tests.mcp_support import CHELSEA, ROOT, http_server

pytestmark = pytest.mark.slow

RELAY = ROOT / "tests" / "langchain_relay.py"
ADAPTER_PACKAGES = ["langchain-mcp-adapters", "mcp<2", "langchain-openai", "langchain-anthropic"]


@pytest.fixture(scope="module")
def adapters_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh environment with langchain-mcp-adapters (mcp 1.x) and both provider packages."""
    env = tmp_path_factory.mktemp("lc") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    python = str(env / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *ADAPTER_PACKAGES],
        check=True, capture_output=True, timeout=900,
    )
    return python


def relay(python: str, adapter: str, url: str) -> dict[str, dict[str, list[str]]]:
    out = subprocess.run(
        [python, str(RELAY), adapter, url, str(CHELSEA)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("adapter", ["adapters", "langchain.mcp"])
def test_every_image_an_agent_relays_is_a_data_or_https_url(
    adapter: str, adapters_python: str, tmp_path: Path
) -> None:
    python = adapters_python if adapter == "adapters" else sys.executable
    profile = write_profile(tmp_path / "quick.toml", delay=0.05, max_rounds=2)
    args = ["--profile", str(profile), "--allow-root", str(ROOT)]
    module = "tests.mcp_scripted_server"
    with http_server(tmp_path / "data", *args, log=tmp_path / "auto.log", module=module) as (base, _):
        shaped = relay(python, adapter, f"{base}/mcp")
    with http_server(tmp_path / "data", *args, "--resource-links", "always", module=module) as (base, _):
        linked = relay(python, adapter, f"{base}/mcp")

    tools, providers = ("think_while_edit", "edit_image"), ("openai", "anthropic")
    assert set(shaped) == {f"{tool}/{p}" for tool in tools for p in providers}
    for request, found in shaped.items():
        assert found["images"], f"{request}: the preview image must reach the model"
        assert all(url.startswith(("data:image/", "https://")) for url in found["images"]), (request, found["images"])
        # The model can still name the full-size image to chain edits.
        assert any("thinkedit://" in text for text in found["texts"]), request
    # The link-carrying shape (what MCP-native clients get) is what those APIs would reject.
    assert any(url.startswith("thinkedit://") for found in linked.values() for url in found["images"]), linked
