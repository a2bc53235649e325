"""Money under retries: every completion the provider bills is counted once, and the budget holds.

The openai profile runs best-of-4 against ``tests.provider_doubles`` on 127.0.0.1 through the real
langchain-openai / openai clients, with the thinker's own retries off so that LangGraph's node
retry is what retries a rate-limited critique (as when a candidate exhausts its attempts).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mcp_support import CHELSEA
from tests.provider_doubles import USAGE_IN, USAGE_OUT, ProviderDouble, provider_double
from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.graph import default_retry
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.view import run_view

CHAT, EDITS = "/v1/chat/completions", "/v1/images/edits"
#: What the double bills: an edit call (gpt-image-1 tokens, whatever n) and one GPT-4.1 critique.
EDIT_USD, CRITIQUE_USD = (400 * 10 + 1056 * 40) / 1e6, (USAGE_IN * 2 + USAGE_OUT * 8) / 1e6
K = 4
ROUND_USD = EDIT_USD + K * CRITIQUE_USD


def unsatisfied(n: int) -> list[dict[str, object]]:
    """Return ``n`` verdicts that never stop the loop (each proposes a new instruction)."""
    return [{"is_satisfied": False, "reason": f"not yet ({i})", "semantic": 5, "quality": 6,
             "new_rewritten_prompt": f"put a red party hat on the cat, take {i}"} for i in range(n)]


def billed_usd(double: ProviderDouble) -> float:
    return len(double.billed(EDITS)) * EDIT_USD + len(double.billed(CHAT)) * CRITIQUE_USD


async def run_openai(tmp_path: Path, double: ProviderDouble, **overrides: object) -> dict:
    settings = LoopSettings.from_profile("openai", data_dir=str(tmp_path), **overrides).with_servers(
        editor_url=f"{double.url}/v1", thinker_url=f"{double.url}/v1")
    settings = settings.model_copy(update={"thinker": settings.thinker.model_copy(update={"max_attempts": 1})})
    runner = Runner(tmp_path, memory_checkpointer(), retry=default_retry(max_attempts=6, initial_interval=0.01))
    record = runner.prepare(CHELSEA, "put a red party hat on the cat", settings)
    state = await runner.start(record)
    assert state is not None
    return run_view(state, state.settings).trajectory()


async def test_a_flaky_provider_bills_only_what_the_run_counts_and_the_budget_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    budget = 2.5 * ROUND_USD  # two rounds fit; a third would not
    with provider_double(unsatisfied(100)) as double:
        double.fail_every_other(CHAT)
        data = await run_openai(tmp_path, double, candidates=K, max_rounds=5, budget={"usd": budget})
    chats = double.billed(CHAT)
    assert len(double.calls(CHAT)) > len(chats)  # 429s came back, and the critique node was retried
    assert (data["stop_reason"], len(data["rounds"])) == ("budget", 2)
    usage = data["usage"]
    assert (usage["critiques"], usage["edit_calls"]) == (len(chats), len(double.billed(EDITS)))
    assert (usage["thinker_input_tokens"], usage["thinker_output_tokens"]) == (
        len(chats) * USAGE_IN, len(chats) * USAGE_OUT)
    assert usage["cost_usd"] == pytest.approx(billed_usd(double))
    assert billed_usd(double) <= budget
    # Each round judged its four candidates once: a retry asked only for the critiques that failed.
    assert [r["usage"]["critiques"] for r in data["rounds"]] == [K, K]


async def test_an_unusable_answer_that_was_billed_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    garbled = {"is_satisfied": False, "reason": "no scores at all"}  # valid JSON, no verdict: retried
    with provider_double([garbled, *unsatisfied(10)]) as double:
        data = await run_openai(tmp_path, double, max_rounds=2)
    chats = double.billed(CHAT)
    assert len(chats) == 3  # the unusable answer, then one per round
    assert [r["usage"]["critiques"] for r in data["rounds"]] == [2, 1]
    assert data["usage"]["thinker_input_tokens"] == len(chats) * USAGE_IN
    assert data["usage"]["cost_usd"] == pytest.approx(billed_usd(double))
