"""Grammars that force a thinker's output into a parseable shape (xgrammar), within a token budget.

Constrained decoding is how the random-weight tiny thinker (and any base model) still returns
a verdict the parsers accept. A grammar alone is not enough: if generation stops at
``max_new_tokens`` half-way through, the text does not parse. So every free-text part has a
length cap, sized from the token budget on the worst case of one token per character, and free
text is limited to printable ASCII (no ``<`` or ``>`` in EditThinker text, no quote or backslash
in JSON strings), so one character is never more than one token. When a cap is reached the
grammar leaves only the closing tag, and the output always completes inside the budget.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.thinkers.parsing import EXPERT_JSON_SCHEMA

if TYPE_CHECKING:
    import xgrammar

Protocol = Literal["editthinker", "expert"]

#: Longest output the fixed parts of each format can take, in characters (= worst-case tokens).
_EDITTHINKER_SKELETON = '<think></think>\n<score>{"semantic": 10.0, "quality": 10.0}</score>\n<answer></answer>'
_EXPERT_SKELETON = json.dumps(
    {"is_satisfied": False, "reason": "", "semantic": 10.0, "quality": 10.0, "new_rewritten_prompt": ""}
)

#: Upper bounds on free text even when the budget is large (a real model's reasoning fits easily).
MAX_THINK_CHARS = 4000
MAX_ANSWER_CHARS = 1000

# Printable ASCII and newline, without the tag brackets; the answer must not start blank.
_TEXT_CHAR = r"[ -;=?-~\n]"
_FIRST_ANSWER_CHAR = r"[!-;=?-~]"
# Printable ASCII without the JSON string's quote and backslash (so nothing needs escaping).
_JSON_TEXT_CHARS = r"[ !#-\[\]-~]"


def free_text_budget(protocol: Protocol, max_new_tokens: int) -> tuple[int, int]:
    """Split what the format's fixed parts leave of ``max_new_tokens`` between its two free texts.

    Returns (reasoning chars, answer chars): reasoning gets two thirds, the answer the rest, each
    capped. One token is kept back for the end-of-turn token.
    """
    skeleton = _EDITTHINKER_SKELETON if protocol == "editthinker" else _EXPERT_SKELETON
    budget = max_new_tokens - len(skeleton) - 1
    if budget < 3:
        raise BadInputError(
            f"max_new_tokens={max_new_tokens} is too small for constrained {protocol} output; "
            f"use at least {len(skeleton) + 4}"
        )
    reasoning = budget * 2 // 3
    return min(reasoning, MAX_THINK_CHARS), min(budget - reasoning, MAX_ANSWER_CHARS)


def editthinker_ebnf(max_think_chars: int, max_answer_chars: int) -> str:
    """Return the EBNF of ``<think>…</think><score>{…}</score><answer>…</answer>`` with capped texts."""
    if max_think_chars < 0 or max_answer_chars < 1:
        raise BadInputError("need max_think_chars >= 0 and max_answer_chars >= 1")
    return "\n".join(
        [
            'root ::= "<think>" think "</think>" sep "<score>" scores "</score>" sep "<answer>" answer "</answer>"',
            f"think ::= {_TEXT_CHAR}{{0,{max_think_chars}}}",
            f"answer ::= {_FIRST_ANSWER_CHAR} {_TEXT_CHAR}{{0,{max_answer_chars - 1}}}",
            'sep ::= "\\n"?',
            'scores ::= "{\\"semantic\\":" " "? number "," " "? "\\"quality\\":" " "? number "}"',
            'number ::= "10" ".0"? | [0-9] ("." [0-9])?',
        ]
    )


def expert_ebnf(max_reason_chars: int, max_prompt_chars: int) -> str:
    """Return the EBNF of the expert JSON object, generated from ``EXPERT_JSON_SCHEMA``, strings capped.

    Keys come in the schema's order; numbers are 0-10 with at most one decimal; strings are
    printable ASCII without quote or backslash. (xgrammar 0.2.8 can compile the schema itself,
    but a ``pattern`` bounding a string beyond ~128 characters fails to compile when the grammar
    compiler's cache is on, and ``maxLength`` alone lets one character cost several tokens.)
    """
    caps = {"reason": max_reason_chars, "new_rewritten_prompt": max_prompt_chars}
    schema = EXPERT_JSON_SCHEMA
    parts: list[str] = []
    rules: list[str] = []
    for index, (key, spec) in enumerate(schema["properties"].items()):
        kind = spec["type"]
        if kind == "boolean":
            value = '("true" | "false")'
        elif kind == "number":
            value = "number"
        elif kind == "string":
            value = f"str_{index}"
            rules.append(f'str_{index} ::= "\\"" {_JSON_TEXT_CHARS}{{0,{caps.get(key, MAX_ANSWER_CHARS)}}} "\\""')
        else:  # pragma: no cover - the schema is ours
            raise BadInputError(f"no grammar for JSON type {kind!r}")
        parts.append(("" if index == 0 else 'comma ') + f'"\\"{key}\\"" colon {value}')
    root = 'root ::= "{" ' + " ".join(parts) + ' "}"'
    common = ['comma ::= "," " "?', 'colon ::= ":" " "?', 'number ::= "10" ".0"? | [0-9] ("." [0-9])?']
    return "\n".join([root, *rules, *common])


def build_grammar(protocol: Protocol, max_new_tokens: int) -> xgrammar.Grammar:
    """Return the grammar for ``protocol`` whose every output fits in ``max_new_tokens`` tokens."""
    import xgrammar as xgr

    reasoning, answer = free_text_budget(protocol, max_new_tokens)
    if protocol == "editthinker":
        return xgr.Grammar.from_ebnf(editthinker_ebnf(reasoning, answer))
    if protocol == "expert":
        return xgr.Grammar.from_ebnf(expert_ebnf(reasoning, answer))
    raise BadInputError(f"unknown thinker protocol {protocol!r}")
