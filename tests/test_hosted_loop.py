"""The whole loop with hosted profiles, through the CLI and the MCP server, against recording doubles.

``thinkedit edit --profile openai`` (gpt-image-1 + GPT-4.1) and ``--profile replicate-kontext``
with a Claude thinker run end to end against ``tests.provider_doubles`` on 127.0.0.1, through the
providers' real clients; a budget stops a run; a missing key stops it before any request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_support import CHELSEA, ROOT, check_structured, error_text, server_env, stdio_session
from tests.provider_doubles import USAGE_IN, USAGE_OUT, ProviderDouble, provider_double
from tests.servers import cli_env

pytestmark = pytest.mark.slow

KEYS = {"OPENAI_API_KEY": "sk-test-openai", "ANTHROPIC_API_KEY": "sk-ant-test", "REPLICATE_API_TOKEN": "r8_test"}
#: One round of the openai profile at its list prices: gpt-image-1 tokens (400 in, 1056 out) + GPT-4.1's.
ROUND_USD = (400 * 10 + 1056 * 40 + USAGE_IN * 2 + USAGE_OUT * 8) / 1e6


def thinkedit(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def double() -> ProviderDouble:
    with provider_double() as d:
        yield d


def pointed_env(tmp_path: Path, double: ProviderDouble, editor: str, thinker: str, **keys: str) -> dict[str, str]:
    env = cli_env(tmp_path / "data", THINKEDIT_EDITOR_URL=editor, THINKEDIT_THINKER_URL=thinker, **keys)
    for name in KEYS:
        if name not in keys:
            env.pop(name, None)
    return env


def test_openai_profile_runs_the_loop_and_reports_each_rounds_cost(tmp_path: Path, double: ProviderDouble) -> None:
    env = pointed_env(tmp_path, double, f"{double.url}/v1", f"{double.url}/v1", OPENAI_API_KEY=KEYS["OPENAI_API_KEY"])
    out = tmp_path / "out"
    done = thinkedit("edit", str(CHELSEA), "put a red party hat on the cat", "--profile", "openai", "--out", str(out),
                     env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cost:" in done.stdout and "~$" in done.stdout
    data = json.loads((out / "trajectory.json").read_text())
    assert (data["stop_reason"], len(data["rounds"]), data["editor"]) == ("threshold_met", 3, "gpt-image-1")
    assert data["seed_policy"]["applied"] is False and "no seed" in data["seed_policy"]["note"]
    for r in data["rounds"]:
        assert r["seed"] is None and r["seed_note"]
        u = r["usage"]
        assert (u["images_edited"], u["critiques"], u["thinker_input_tokens"], u["thinker_output_tokens"]) == (
            1, 1, USAGE_IN, USAGE_OUT)
        assert (u["editor_input_tokens"], u["editor_output_tokens"]) == (400, 1056)
        assert u["cost_usd"] == pytest.approx(ROUND_USD) and u["edit_seconds"] > 0 and u["think_seconds"] > 0
    assert data["usage"]["cost_usd"] == pytest.approx(3 * ROUND_USD) and data["usage"]["images_edited"] == 3
    # The report carries the same figures to its renderer (which draws them: tests/test_report_browser.py).
    html = (out / "report.html").read_text()
    embedded = json.loads(html.split('id="thinkedit-run-data">')[1].split("</script>")[0])
    assert embedded["usage"]["cost_usd"] == pytest.approx(3 * ROUND_USD)
    assert [r["usage"]["images_edited"] for r in embedded["rounds"]] == [1, 1, 1]
    # What OpenAI would have received: three edits (no seed), three critiques, each with the key.
    edits, chats = double.calls("/v1/images/edits"), double.calls("/v1/chat/completions")
    assert len(edits) == len(chats) == 3
    assert all("seed" not in e.form() and "response_format" not in e.form() for e in edits)
    assert [e.form()["prompt"][0] for e in edits][1:] == [
        "put a red party hat on the cat's head", "make the party hat bright red"]
    assert all(c.headers["authorization"] == "Bearer sk-test-openai" and c.json()["model"] == "gpt-4.1" for c in chats)
    runs = thinkedit("runs", env=env, cwd=tmp_path)
    assert f"${3 * ROUND_USD:.4f}" in runs.stdout, runs.stdout


def test_a_budget_stops_the_run_with_the_best_round_so_far(tmp_path: Path, double: ProviderDouble) -> None:
    env = pointed_env(tmp_path, double, f"{double.url}/v1", f"{double.url}/v1", OPENAI_API_KEY=KEYS["OPENAI_API_KEY"])
    budget = f"${1.5 * ROUND_USD:.4f}"  # one round fits, a second would not
    done = thinkedit("edit", str(CHELSEA), "put a red party hat on the cat", "--profile", "openai", "--budget", budget,
                     "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "out" / "trajectory.json").read_text())
    assert (data["stop_reason"], len(data["rounds"]), data["best_round"]) == ("budget", 1, 1)
    assert data["budget"] == {"usd": pytest.approx(1.5 * ROUND_USD, abs=1e-4), "tokens": None}
    assert len(double.calls("/v1/images/edits")) == 1


def test_a_missing_key_is_exit_2_naming_it_before_any_request(tmp_path: Path, double: ProviderDouble) -> None:
    env = pointed_env(tmp_path, double, f"{double.url}/v1", f"{double.url}/v1")
    done = thinkedit("edit", str(CHELSEA), "x", "--profile", "openai", env=env, cwd=tmp_path)
    assert done.returncode == 2 and "$OPENAI_API_KEY" in done.stderr, done.stderr
    served = thinkedit("serve", "mcp", "--profile", "replicate-kontext", env=env, cwd=tmp_path)
    assert served.returncode == 2 and "$REPLICATE_API_TOKEN" in served.stderr, served.stderr
    listed = thinkedit("profiles", env=env, cwd=tmp_path)
    assert listed.returncode == 0
    line = next(x for x in listed.stdout.splitlines() if x.startswith("openai "))
    assert "missing $OPENAI_API_KEY" in line
    assert double.requests == [] and not (tmp_path / "data" / "runs").exists()


def test_hosted_kontext_with_a_claude_thinker(tmp_path: Path, double: ProviderDouble) -> None:
    env = cli_env(tmp_path / "data", REPLICATE_API_TOKEN=KEYS["REPLICATE_API_TOKEN"],
                  ANTHROPIC_API_KEY=KEYS["ANTHROPIC_API_KEY"])
    env.pop("OPENAI_API_KEY", None)  # the profile's own thinker is replaced: its key is not needed
    # Bare URLs (the CLI adds /v1; Replicate's and Anthropic's clients add their own version path).
    done = thinkedit("edit", str(CHELSEA), "put a red party hat on the cat", "--profile", "replicate-kontext",
                     "--editor", double.url, "--thinker", double.url,
                     "--thinker-model", "anthropic:claude-sonnet-5", "--budget", "5000 tokens",
                     "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "out" / "trajectory.json").read_text())
    # 1280 tokens a round: three rounds (3840) fit 5000, but round 3 meets the thresholds anyway.
    assert (data["stop_reason"], len(data["rounds"]), data["thinker"]) == (
        "threshold_met", 3, "anthropic:claude-sonnet-5")
    assert [r["seed"] for r in data["rounds"]] == [0, 0, 0] and data["seed_policy"]["applied"] is True
    assert data["usage"]["cost_usd"] is None and data["usage"]["unpriced"] == ["anthropic:claude-sonnet-5"]
    predictions = double.calls("/predictions$")
    assert [p.json()["input"]["seed"] for p in predictions] == [0, 0, 0]
    assert len(double.calls("/v1/messages")) == 3 and not double.calls("/v1/chat/completions")


def hosted_profile(path: Path, double: ProviderDouble) -> Path:
    """The packaged openai profile, with both clients pointed at the double (base_url in the TOML)."""
    text = (ROOT / "tools" / "profiles" / "openai.toml").read_text()
    text = text.replace("[editor]\n", f'[editor]\nbase_url = "{double.url}/v1"\n', 1)
    text = text.replace("[thinker]\n", f'[thinker]\nbase_url = "{double.url}/v1"\n', 1)
    path.write_text(text)
    return path


async def test_mcp_runs_a_hosted_profile_with_a_budget_and_names_a_missing_key(
    tmp_path: Path, double: ProviderDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["OPENAI_API_KEY"])
    profile = hosted_profile(tmp_path / "hosted.toml", double)
    async with stdio_session(tmp_path / "data", "--profile", str(profile), "--allow-root", str(ROOT)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "budget" in tools["think_while_edit"].input_schema["properties"]
        full = await client.call_tool("think_while_edit", {"image": str(CHELSEA), "instruction": "put a red hat on it",
                                                           "wait_seconds": 120})
        run = check_structured(full, tools["think_while_edit"].output_schema)
        assert (run["status"], run["stop_reason"], len(run["rounds"])) == ("done", "threshold_met", 3)
        assert run["usage"]["cost_usd"] == pytest.approx(3 * ROUND_USD) and run["usage"]["images_edited"] == 3
        assert all(r["seed"] is None and r["usage"]["thinker_input_tokens"] == USAGE_IN for r in run["rounds"])
        assert "Cost:" in run["message"]

        double.restart_verdicts()
        stopped = await client.call_tool("think_while_edit", {
            "image": str(CHELSEA), "instruction": "put a red hat on it", "budget": "2000 tokens", "wait_seconds": 120})
        run = check_structured(stopped, tools["think_while_edit"].output_schema)
        # A round counts 1280 thinker + 1456 editor tokens: the second would pass 2000.
        assert (run["stop_reason"], len(run["rounds"]), run["best_round"]) == ("budget", 1, 1)

        before = len(double.requests)
        missing = await client.call_tool("think_while_edit", {"image": str(CHELSEA), "instruction": "x",
                                                              "editor": "replicate-kontext"})
        assert "$REPLICATE_API_TOKEN" in error_text(missing)
        assert len(double.requests) == before
