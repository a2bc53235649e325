"""Turn what thinker models really emit into a ``Verdict`` (pure functions, no I/O).

Models drop closing tags, wrap answers in code fences, write scores as strings ("8", "8/10")
and add chatter after JSON. The parsers accept all of that and raise ``ThinkerOutputError``
with the reason when the text holds no usable verdict.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from thinkedit.tools.errors import ThinkerOutputError
from thinkedit.tools.types import Verdict

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


def _score(value: Any, name: str, raw: str) -> float:
    """Read a 0-10 score given as a number or a string such as "8", "8.5" or "8/10"."""
    if isinstance(value, bool):
        raise ThinkerOutputError(f"score {name!r} is a boolean, not a number", raw)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (match := _NUMBER.search(value)):
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
        # "semantic: 8", "Semantic score = '8/10'", "semantic_score": "8" ...
        match = re.search(rf"{name}[\w \t\"']*?[:=][ \t]*[\"']?({_NUMBER_PATTERN})", text, re.IGNORECASE)
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
        refined_instruction=answer.strip().strip('"').strip(),
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
