"""Usage, prices, budgets and Retry-After: pure functions, tested with tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from thinkedit.agent.routing import over_budget
from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.retry import retry_after_seconds
from thinkedit.tools.types import Budget, ModelPrice, Usage, parse_budget, total_usage


@pytest.mark.parametrize(
    ("text", "budget"),
    [("0.50", Budget(usd=0.5)), ("$2", Budget(usd=2)), ("0.5usd", Budget(usd=0.5)), ("1.25 dollars", Budget(usd=1.25)),
     ("20000 tokens", Budget(tokens=20000)), ("20k tok", Budget(tokens=20000)), ("1m t", Budget(tokens=1_000_000))],
)
def test_budgets_parse_in_dollars_or_tokens(text: str, budget: Budget) -> None:
    assert parse_budget(text) == budget


@pytest.mark.parametrize("text", ["", "cheap", "$20 tokens", "0", "-1", "5 euros"])
def test_bad_budgets_say_what_is_accepted(text: str) -> None:
    with pytest.raises(BadInputError):
        parse_budget(text)


PRICING = {"gpt-image-1": ModelPrice(input_per_mtok=10, output_per_mtok=40), "gpt-4.1": ModelPrice(
    input_per_mtok=2, output_per_mtok=8), "kontext": ModelPrice(per_image=0.04)}


def test_a_round_is_priced_from_the_table_and_unknown_models_are_named() -> None:
    usage = Usage(edit_calls=1, images_edited=1, critiques=1, editor_input_tokens=400, editor_output_tokens=1000,
                  thinker_input_tokens=1000, thinker_output_tokens=100)
    priced = usage.priced(PRICING, editor="gpt-image-1", thinker="openai:gpt-4.1")
    assert priced.cost_usd == pytest.approx((400 * 10 + 1000 * 40 + 1000 * 2 + 100 * 8) / 1e6)
    assert usage.priced(PRICING, editor="kontext", thinker="gpt-4.1").cost_usd == pytest.approx(0.04 + 0.0028)
    unknown = usage.priced(PRICING, editor="kontext", thinker="anthropic:claude-x")
    assert unknown.cost_usd is None and unknown.unpriced == ["anthropic:claude-x"]
    total = total_usage([priced, priced])
    assert total.cost_usd == pytest.approx(2 * priced.cost_usd) and total.tokens == 2 * usage.tokens
    assert total_usage([priced, unknown]).cost_usd is None


def _spent(cost: float | None, tokens: int) -> Usage:
    return Usage(cost_usd=cost, thinker_input_tokens=tokens)


@pytest.mark.parametrize(
    ("spent", "last", "budget", "stop"),
    [
        (_spent(0.10, 0), _spent(0.05, 0), None, False),                    # no budget
        (_spent(0.10, 0), _spent(0.05, 0), Budget(usd=0.20), False),        # 0.15 fits
        (_spent(0.10, 0), _spent(0.05, 0), Budget(usd=0.15), False),        # exactly at the limit fits
        (_spent(0.10, 0), _spent(0.06, 0), Budget(usd=0.15), True),         # the next would exceed
        (_spent(0.30, 0), _spent(0.30, 0), Budget(usd=0.20), True),         # already over
        (_spent(None, 0), _spent(None, 0), Budget(usd=0.01), False),        # unpriced: dollars not judged
        (_spent(None, 900), _spent(None, 300), Budget(tokens=1000), True),  # tokens always counted
        (_spent(None, 600), _spent(None, 300), Budget(tokens=1000), False),
        (_spent(0.01, 600), _spent(0.01, 500), Budget(usd=1, tokens=1000), True),  # either limit stops
    ],
)
def test_over_budget_table(spent: Usage, last: Usage, budget: Budget | None, stop: bool) -> None:
    assert over_budget(spent, last, budget) is stop


def test_a_dollar_budget_needs_prices_for_both_models() -> None:
    settings = LoopSettings.from_profile("openai", budget={"usd": 1.0})
    assert settings.budget == Budget(usd=1.0)
    with pytest.raises(ValidationError, match="needs a price for anthropic:claude-x"):
        LoopSettings.model_validate(
            settings.with_servers(thinker_model="anthropic:claude-x").model_dump() | {"budget": {"usd": 1.0}}
        )
    LoopSettings.from_profile("tiny", budget={"tokens": 5000})  # tokens need no prices


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "3"}, 3.0), ({"Retry-After": "0"}, 0.0), ({"retry-after-ms": "1500"}, 1.5),
     ({"retry-after": "soon"}, None), ({}, None), (None, None)],
)
def test_retry_after_is_read_in_seconds_or_milliseconds(headers: dict[str, str] | None, seconds: float | None) -> None:
    import httpx

    assert retry_after_seconds(httpx.Headers(headers) if headers is not None else None) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds({"retry-after": when}) or 0) <= 31
