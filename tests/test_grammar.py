"""Check the constrained-decoding grammars: what they accept, what they refuse, and that they end in budget."""

from __future__ import annotations

import json
import random

import pytest

import xgrammar as xgr

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.thinkers.verdicts import (
    EXPERT_JSON_SCHEMA,
    build_grammar,
    editthinker_ebnf,
    expert_ebnf,
    free_text_budget,
    parse_editthinker,
    parse_expert,
)


def accepts(grammar: xgr.Grammar | str, text: str) -> bool:
    """Return whether ``grammar`` matches all of ``text`` and is then complete."""
    compiled = xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False).compile_grammar(grammar)
    matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
    return matcher.accept_string(text) and matcher.is_terminated()


def et(think: str = "ok", score: str = '{"semantic": 7, "quality": 8.5}', answer: str = "Add a hat.") -> str:
    return f"<think>{think}</think><score>{score}</score><answer>{answer}</answer>"


EDITTHINKER = editthinker_ebnf(40, 20)


@pytest.mark.parametrize(
    "text",
    [
        et(),
        et(think=""),
        et(think="one\ntwo: (a) & b; 9% {ok} \"q\" 'x' ~"),
        et(score='{"semantic":10,"quality":0}'),
        et(score='{"semantic": 10.0, "quality": 0.5}'),
        et(score='{"semantic":9.9, "quality":1}'),
        et(answer="x"),
        '<think>a</think>\n<score>{"semantic": 1, "quality": 2}</score>\n<answer>b</answer>',
        et(think="t" * 40, answer="a" * 20),
    ],
)
def test_editthinker_accepts(text: str) -> None:
    assert accepts(EDITTHINKER, text)
    parse_editthinker(text)  # and whatever it accepts parses


@pytest.mark.parametrize(
    "text",
    [
        et(score='{"semantic": 11, "quality": 5}'),
        et(score='{"semantic": 10.5, "quality": 5}'),
        et(score='{"semantic": 8.25, "quality": 5}'),
        et(score='{"semantic": -1, "quality": 5}'),
        et(score='{"semantic": "8", "quality": 5}'),
        et(score='{"quality": 5, "semantic": 8}'),
        et(score='{"semantic": 8}'),
        et(score='{"semantic":  8, "quality": 5}'),
        et(think="a < b"),
        et(think="a > b"),
        et(think="naïve"),
        et(think="t" * 41),
        et(answer=""),
        et(answer=" leading blank"),
        et(answer="a" * 21),
        et() + " trailing",
        et().replace("</answer>", ""),
        et().replace("<think>ok</think>", ""),
        "<think>ok</think><score>{}</score><answer>x</answer>",
        "",
    ],
)
def test_editthinker_refuses(text: str) -> None:
    assert not accepts(EDITTHINKER, text)


def expert(**fields: object) -> str:
    base: dict[str, object] = {
        "is_satisfied": False,
        "reason": "The cup is still white.",
        "semantic": 4,
        "quality": 9.5,
        "new_rewritten_prompt": "Paint the cup blue.",
    }
    base.update(fields)
    return json.dumps(base)


EXPERT = expert_ebnf(40, 30)


@pytest.mark.parametrize(
    "text",
    [
        expert(),
        expert(is_satisfied=True, new_rewritten_prompt=""),
        expert(reason="", semantic=10, quality=0),
        expert(semantic=10.0),
        json.dumps(json.loads(expert()), separators=(",", ":")),
        expert(reason="r" * 40, new_rewritten_prompt="p" * 30),
    ],
)
def test_expert_accepts_what_the_schema_and_parser_accept(text: str) -> None:
    assert accepts(EXPERT, text)
    assert accepts(xgr.Grammar.from_json_schema(EXPERT_JSON_SCHEMA), text)
    parse_expert(text)


@pytest.mark.parametrize(
    "text",
    [
        expert(is_satisfied="false"),
        expert(semantic=10.5),
        expert(quality=-1),
        expert(semantic="4"),
        expert(reason='say "hi"'),
        expert(reason="back\\slash"),
        expert(reason="café"),
        expert(reason="r" * 41),
        expert(new_rewritten_prompt="p" * 31),
        expert(extra=1),
        json.dumps({k: v for k, v in json.loads(expert()).items() if k != "reason"}),
        expert() + "\n",
        expert()[:-1],
        "```json\n" + expert() + "\n```",
    ],
)
def test_expert_refuses(text: str) -> None:
    assert not accepts(EXPERT, text)


@pytest.mark.parametrize(("protocol", "tokens"), [("editthinker", 96), ("editthinker", 1024), ("expert", 160)])
def test_budget_leaves_room_for_the_longest_output(protocol: str, tokens: int) -> None:
    think, answer = free_text_budget(protocol, tokens)  # type: ignore[arg-type]
    if protocol == "editthinker":
        longest = (
            f"<think>{'t' * think}</think>\n<score>{{\"semantic\": 10.0, \"quality\": 10.0}}</score>\n"
            f"<answer>{'a' * answer}</answer>"
        )
    else:
        longest = expert(reason="r" * think, semantic=10.0, quality=10.0, new_rewritten_prompt="p" * answer)
    assert accepts(build_grammar(protocol, tokens), longest)  # type: ignore[arg-type]
    assert len(longest) <= tokens - 1  # one character per token at worst, plus the stop token


def test_budget_too_small_is_a_clear_error() -> None:
    with pytest.raises(BadInputError, match="too small"):
        free_text_budget("editthinker", 40)
    with pytest.raises(BadInputError, match="too small"):
        build_grammar("expert", 100)


def test_budget_is_capped_for_large_budgets() -> None:
    think, answer = free_text_budget("editthinker", 1_000_000)
    assert (think, answer) == (4000, 1000)


# A toy vocabulary: every ASCII byte on its own (the worst case, one character per token), a few
# longer tokens, a non-ASCII token, and a stop token.
_VOCAB = [chr(i) for i in range(128)] + ["</think>", "<answer>", '{"', "the", "é", "<|eos|>"]
_STOP = len(_VOCAB) - 1


def _random_walk(compiled: xgr.CompiledGrammar, rng: random.Random, limit: int) -> tuple[str, bool]:
    """Sample uniformly among allowed tokens until the stop token or ``limit`` tokens."""
    import torch

    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, len(_VOCAB))
    out: list[str] = []
    for _ in range(limit):
        matcher.fill_next_token_bitmask(bitmask)
        bits = (bitmask[0].unsqueeze(1) >> torch.arange(32, dtype=torch.int32)) & 1
        allowed = bits.flatten()[: len(_VOCAB)].nonzero().flatten().tolist()
        # Lean towards the stop token's opposite: prefer text so the caps, not luck, end the output.
        text_tokens = [i for i in allowed if len(_VOCAB[i]) == 1] or allowed
        token = rng.choice(text_tokens if rng.random() < 0.97 else allowed)
        assert matcher.accept_token(token)
        if token == _STOP:
            return "".join(out), True
        out.append(_VOCAB[token])
    return "".join(out), False


@pytest.mark.parametrize(("protocol", "tokens"), [("editthinker", 96), ("editthinker", 200), ("expert", 140)])
def test_random_walks_always_finish_within_budget(protocol: str, tokens: int) -> None:
    info = xgr.TokenizerInfo(_VOCAB, stop_token_ids=[_STOP])
    compiled = xgr.GrammarCompiler(info).compile_grammar(build_grammar(protocol, tokens))  # type: ignore[arg-type]
    parse = parse_editthinker if protocol == "editthinker" else parse_expert
    rng = random.Random(0)
    for _ in range(30):
        text, stopped = _random_walk(compiled, rng, tokens)
        assert stopped, f"no stop token within {tokens} tokens: {text!r}"
        parse(text)
