"""Read a thinker's verdict from what models really emit, and force that shape when decoding is constrained.

Parsing (pure functions, no I/O): models drop closing tags, wrap answers in code fences, write scores as strings ("8", "8/10")
and add chatter after JSON. The parsers accept all of that and raise ``ThinkerOutputError``
with the reason when the text holds no usable verdict.

Grammars (xgrammar), within a token budget: constrained decoding is how the random-weight tiny
thinker (and any base model) still returns a verdict the parsers accept. A grammar alone is not
enough: if generation stops at ``max_new_tokens`` half-way through, the text does not parse. So
every free-text part has a length cap, sized from the token budget on the worst case of one token
per character, and free text is limited to printable ASCII (no ``<`` or ``>`` in EditThinker text,
no quote or backslash in JSON strings), so one character is never more than one token. When a cap
is reached the grammar leaves only the closing tag, and the output always completes inside the budget.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Literal

from thinkedit.tools.errors import BadInputError, ThinkerOutputError
from thinkedit.tools.types import Verdict

if TYPE_CHECKING:
    import xgrammar

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*|```")
_NUMBER_PATTERN = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)"
_NUMBER = re.compile(_NUMBER_PATTERN)
_TAG_ORDER = ("think", "score", "answer")


def _strip_fences(text: str) -> str:
    return _FENCE.sub("", text)


def _tag_content(text: str, tag: str) -> str | None:
    """Return the text inside ``<tag>``; a missing close tag ends at the next known tag or the end."""
    open_match = re.search(rf"<\s*{tag}\s*>", text, re.IGNORECASE)
    if open_match is None:
        return None
    rest = text[open_match.end() :]
    close = re.search(rf"<\s*/\s*{tag}\s*>", rest, re.IGNORECASE)
    if close is not None:
        return rest[: close.start()].strip()
    later = [t for t in _TAG_ORDER if t != tag]
    ends = [m.start() for t in later if (m := re.search(rf"<\s*/?\s*{t}\s*>", rest, re.IGNORECASE))]
    return rest[: min(ends)].strip() if ends else rest.strip()


def _first_json_object(text: str) -> dict[str, Any] | None:
    """Decode the first JSON object in ``text``, ignoring anything after it."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        candidate = text[match.start() :]
        for attempt in (candidate, _loosen_json(candidate), _loosen_json(candidate, swap_quotes=True)):
            try:
                value, _ = decoder.raw_decode(attempt)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _loosen_json(text: str, *, swap_quotes: bool = False) -> str:
    """Repair the common near-JSON forms: trailing commas, Python booleans and, if asked, single quotes.

    Quotes are swapped only on request, so an apostrophe inside a double-quoted string survives
    the first repair.
    """
    end = text.find("}")
    head, tail = (text[: end + 1], text[end + 1 :]) if end >= 0 else (text, "")
    if swap_quotes:
        head = head.replace("'", '"')
    head = re.sub(r",\s*}", "}", head)
    head = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", head))
    return head + tail


def _misread(text: str, match: re.Match[str]) -> bool:
    """Say whether the number found in ``text`` is only part of one: after a minus sign, or before an exponent."""
    return text[: match.start()].rstrip().endswith(("\u2212", "\u2013")) or bool(
        re.match(r"[eE][-+]?\d", text[match.end():]))


def _score(value: Any, name: str, raw: str) -> float:
    """Read a 0-10 score given as a number or a string that starts with one, such as "8", "8.5" or "8/10".

    A string must open with its number: "N/A (see 5)" or "out of 10 I give 3" is no score of 5 or 10.
    """
    if isinstance(value, bool):
        raise ThinkerOutputError(f"score {name!r} is a boolean, not a number", raw)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (match := _NUMBER.match(text := value.strip())) and not _misread(text, match):
        number = float(match.group())
    else:
        raise ThinkerOutputError(f"score {name!r} is not a number: {value!r}", raw)
    if not 0.0 <= number <= 10.0:
        raise ThinkerOutputError(f"score {name!r} is outside 0-10: {number}", raw)
    return number


def _scores_from(text: str, raw: str) -> tuple[float, float]:
    """Find semantic and quality scores in a JSON object, or as ``key: number`` pairs."""
    obj = _first_json_object(text) or {}
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    found: dict[str, float] = {}
    for name in ("semantic", "quality"):
        if name in lowered:
            found[name] = _score(lowered[name], name, raw)
            continue
        # "semantic: 8", "Semantic score = '8/10'", "semantic_score": "8" ... (words between, never a number
        # nor the other score's name: "semantic 9 quality: 4" gives no semantic score, not quality's 4)
        other = "quality" if name == "semantic" else "semantic"
        gap = rf"(?:(?!{other})[A-Za-z_ \t\"'])*?"
        match = re.search(rf"{name}{gap}[:=][ \t]*[\"']?({_NUMBER_PATTERN})", text, re.IGNORECASE)
        if match:
            found[name] = _score(match.group(1), name, raw)
    missing = [n for n in ("semantic", "quality") if n not in found]
    if missing:
        raise ThinkerOutputError(f"no {' or '.join(missing)} score in thinker output", raw)
    return found["semantic"], found["quality"]


def parse_editthinker(text: str) -> Verdict:
    """Parse ``<think>…</think><score>{…}</score><answer>…</answer>`` into a ``Verdict``."""
    if not text or not text.strip():
        raise ThinkerOutputError("thinker output is empty", text or "")
    clean = _strip_fences(text)
    score_text = _tag_content(clean, "score")
    if score_text is None:
        raise ThinkerOutputError("thinker output has no <score> tag", text)
    semantic, quality = _scores_from(score_text, text)
    reasoning = _tag_content(clean, "think")
    if reasoning is None and (close := re.search(r"<\s*/\s*think\s*>", clean, re.IGNORECASE)):
        # Thinking chat templates open <think> in the prompt; the answer starts inside it.
        reasoning = clean[: close.start()].strip()
    answer = _tag_content(clean, "answer")
    if answer is None:
        raise ThinkerOutputError("thinker output has no <answer> tag", text)
    return Verdict(
        semantic=semantic,
        quality=quality,
        reasoning=reasoning or "",
        refined_instruction=_unquoted(answer.strip()),
        raw=text,
    )


def _as_bool(value: Any, raw: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "0"}:
        return False
    raise ThinkerOutputError(f"'is_satisfied' is not a boolean: {value!r}", raw)


def parse_expert(text: str) -> Verdict:
    """Parse the expert protocol's JSON answer into a ``Verdict``.

    Expected keys: ``is_satisfied``, ``reason``, ``new_rewritten_prompt`` (the paper's) plus
    ``semantic`` and ``quality`` (ours: every round is scored so the best can be returned).
    """
    if not text or not text.strip():
        raise ThinkerOutputError("thinker output is empty", text or "")
    obj = _first_json_object(_strip_fences(text))
    if obj is None:
        raise ThinkerOutputError("thinker output holds no JSON object", text)
    missing = [k for k in ("is_satisfied", "semantic", "quality") if k not in obj]
    if missing:
        raise ThinkerOutputError(f"thinker JSON lacks key(s): {', '.join(missing)}", text)
    rewritten = obj.get("new_rewritten_prompt") or ""
    if not isinstance(rewritten, str):
        raise ThinkerOutputError("'new_rewritten_prompt' is not a string", text)
    return Verdict(
        semantic=_score(obj["semantic"], "semantic", text),
        quality=_score(obj["quality"], "quality", text),
        reasoning=str(obj.get("reason") or ""),
        refined_instruction=rewritten.strip(),
        satisfied=_as_bool(obj["is_satisfied"], text),
        raw=text,
    )


def parse_verdict(protocol: str, raw: str, *, latency_s: float, thinker: str) -> Verdict:
    """Parse ``raw`` in the thinker's ``protocol`` and stamp its latency; log unparseable output."""
    parse = parse_editthinker if protocol == "editthinker" else parse_expert
    try:
        verdict = parse(raw)
    except ThinkerOutputError:
        log.warning("thinker %s gave unparseable output after %.2fs: %.200r", thinker, latency_s, raw)
        raise
    return verdict.model_copy(update={"latency_s": latency_s})


#: JSON schema of the expert answer, for structured-output requests (vLLM ``response_format``).
EXPERT_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "is_satisfied": {"type": "boolean"},
        "reason": {"type": "string"},
        "semantic": {"type": "number", "minimum": 0, "maximum": 10},
        "quality": {"type": "number", "minimum": 0, "maximum": 10},
        "new_rewritten_prompt": {"type": "string"},
    },
    "required": ["is_satisfied", "reason", "semantic", "quality", "new_rewritten_prompt"],
    "additionalProperties": False,
}


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


def _unquoted(answer: str) -> str:
    """Drop one pair of quotes wrapping the whole answer; quotes inside it (``to "SALE"``) are the instruction's."""
    if len(answer) >= 2 and answer[0] == answer[-1] == '"' and '"' not in answer[1:-1]:
        return answer[1:-1].strip()
    return answer
