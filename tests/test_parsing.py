"""Check the thinker-output parsers on real-looking answers, near misses and garbage."""

from __future__ import annotations

import pytest

from thinkedit.tools.errors import ThinkerOutputError
from thinkedit.tools.thinkers.verdicts import EXPERT_JSON_SCHEMA, parse_editthinker, parse_expert

GOOD = (
    "<think>The cat now wears a hat, but it is blue instead of red, and the background is intact."
    "</think><score>{\"semantic\": 6, \"quality\": 8.5}</score>"
    "<answer>Make the cat's hat red, keep everything else unchanged.</answer>"
)


class TestEditThinker:
    """Parse the fine-tuned EditThinker format."""

    def test_well_formed(self) -> None:
        v = parse_editthinker(GOOD)
        assert (v.semantic, v.quality) == (6.0, 8.5)
        assert v.reasoning.startswith("The cat now wears a hat")
        assert v.refined_instruction == "Make the cat's hat red, keep everything else unchanged."
        assert v.raw == GOOD
        assert v.satisfied is None
        assert v.overall == pytest.approx((6 * 8.5) ** 0.5, abs=1e-4)

    def test_newlines_and_spaces_between_tags(self) -> None:
        text = "<think>\nok\n</think>\n\n<score>\n{\n  \"semantic\": 9,\n  \"quality\": 9\n}\n</score>\n<answer>\nAdd a hat.\n</answer>\n"
        v = parse_editthinker(text)
        assert (v.semantic, v.quality, v.refined_instruction, v.reasoning) == (9, 9, "Add a hat.", "ok")

    @pytest.mark.parametrize(
        ("score", "expected"),
        [
            ('{"semantic": "8", "quality": "7"}', (8, 7)),
            ('{"semantic": "8/10", "quality": "7.5/10"}', (8, 7.5)),
            ("{'semantic': 8, 'quality': 7}", (8, 7)),
            ('{"semantic": 8, "quality": 7,}', (8, 7)),
            ('{"Semantic": 3, "QUALITY": 4}', (3, 4)),
            ('{"semantic": 10, "quality": 0}', (10, 0)),
            ('{"semantic": 8, "quality": 7} (quality is fine)', (8, 7)),
            ("semantic: 8, quality: 7", (8, 7)),
            ("Semantic score: 8/10\nQuality score = 6/10", (8, 6)),
            ('{"semantic_score": 5, "quality_score": 6}', (5, 6)),
            ('{"semantic": ".5", "quality": 9}', (0.5, 9)),
            ('{"semantic": " 8 (the hat is there)", "quality": "7/10"}', (8, 7)),
            ("semantic = '7', quality = '6'", (7, 6)),
            ('{"semantic": 8/10, "quality": 7 / 10}', (8, 7)),
        ],
    )
    def test_score_spellings(self, score: str, expected: tuple[float, float]) -> None:
        v = parse_editthinker(f"<think>r</think><score>{score}</score><answer>Do it.</answer>")
        assert (v.semantic, v.quality) == expected

    def test_code_fences(self) -> None:
        text = "```xml\n<think>r</think><score>```json\n{\"semantic\": 7, \"quality\": 7}\n```</score><answer>Do it.</answer>\n```"
        v = parse_editthinker(text)
        assert (v.semantic, v.quality, v.refined_instruction) == (7, 7, "Do it.")

    def test_missing_closing_tags(self) -> None:
        v = parse_editthinker('<think>reasoning<score>{"semantic": 5, "quality": 6}<answer>Paint it blue.')
        assert (v.reasoning, v.semantic, v.quality, v.refined_instruction) == ("reasoning", 5, 6, "Paint it blue.")

    def test_missing_open_think_tag(self) -> None:
        # Thinking chat templates put "<think>" in the prompt, so the answer starts inside it.
        v = parse_editthinker('The hat is missing.</think><score>{"semantic": 2, "quality": 9}</score><answer>Add a hat.</answer>')
        assert v.reasoning == "The hat is missing."
        assert v.semantic == 2

    def test_tag_case_and_spaces(self) -> None:
        v = parse_editthinker('<THINK>r</THINK>< score >{"semantic": 1, "quality": 2}</ score ><Answer>x</Answer>')
        assert (v.semantic, v.quality, v.refined_instruction) == (1, 2, "x")

    def test_quoted_answer_is_unquoted(self) -> None:
        v = parse_editthinker('<score>{"semantic": 1, "quality": 2}</score><answer>"Add a hat."</answer>')
        assert v.refined_instruction == "Add a hat."
        assert v.reasoning == ""

    @pytest.mark.parametrize("answer", ['Change the text on the sign to "SALE"',
                                        '"Happy Birthday" written in gold on the cake', '"a" and "b"'])
    def test_quotes_inside_an_answer_are_kept(self, answer: str) -> None:
        v = parse_editthinker(f'<score>{{"semantic": 1, "quality": 2}}</score><answer> {answer} </answer>')
        assert v.refined_instruction == answer

    def test_empty_answer_is_allowed(self) -> None:
        v = parse_editthinker('<think>done</think><score>{"semantic": 9, "quality": 9}</score><answer></answer>')
        assert v.refined_instruction == ""

    def test_chatter_around_the_format(self) -> None:
        text = 'Sure! Here is my review.\n<think>r</think><score>{"semantic": 4, "quality": 5}</score><answer>Try again.</answer>\nHope this helps.'
        assert parse_editthinker(text).refined_instruction == "Try again."

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("", "empty"),
            ("   \n ", "empty"),
            ("I think the edit is good.", "no <score>"),
            ('<think>r</think><answer>x</answer>', "no <score>"),
            ("<score></score><answer>x</answer>", "no semantic or quality"),
            ('<score>{"semantic": 8}</score><answer>x</answer>', "no quality"),
            ('<score>{"semantic": 11, "quality": 5}</score><answer>x</answer>', "outside 0-10"),
            ('<score>{"semantic": -1, "quality": 5}</score><answer>x</answer>', "outside 0-10"),
            ('<score>{"semantic": 80, "quality": 50}</score><answer>x</answer>', "outside 0-10"),
            ('<score>{"semantic": "high", "quality": 5}</score><answer>x</answer>', "not a number"),
            ('<score>{"semantic": true, "quality": 5}</score><answer>x</answer>', "boolean"),
            ('<score>{"semantic": NaN, "quality": 5}</score><answer>x</answer>', "outside 0-10"),
            ('<score>{"semantic": 8, "quality": 5}</score>', "no <answer>"),
            ("\x00\x01garbage }{ ][ <<<>>>", "no <score>"),
            ("<score>semantic 9 quality: 4</score><answer>x</answer>", "no semantic score"),  # not quality's 4
            ("<score>semantic quality: 4</score><answer>x</answer>", "no semantic score"),
            ('<score>{"semantic": "1e1", "quality": 5}</score><answer>x</answer>', "not a number"),
            ('<score>{"semantic": "\u22123", "quality": 5}</score><answer>x</answer>', "not a number"),
            ('<score>{"semantic": "out of 10 I give 3", "quality": 5}</score><answer>x</answer>', "not a number"),
            ('<score>{"semantic": "N/A (see 5)", "quality": 5}</score><answer>x</answer>', "not a number"),
            ('<score>{"semantic": "v2", "quality": 5}</score><answer>x</answer>', "not a number"),
        ],
    )
    def test_garbage_raises(self, text: str, reason: str) -> None:
        with pytest.raises(ThinkerOutputError, match=reason) as info:
            parse_editthinker(text)
        assert info.value.raw == text


class TestExpert:
    """Parse the expert JSON protocol."""

    def test_well_formed(self) -> None:
        text = (
            '{"is_satisfied": false, "reason": "The cup is still white.", "semantic": 4, "quality": 9, '
            '"new_rewritten_prompt": "Paint the coffee cup blue."}'
        )
        v = parse_expert(text)
        assert (v.satisfied, v.semantic, v.quality) == (False, 4, 9)
        assert v.reasoning == "The cup is still white."
        assert v.refined_instruction == "Paint the coffee cup blue."
        assert v.raw == text

    def test_fenced_with_chatter(self) -> None:
        text = 'Here is my verdict:\n```json\n{"is_satisfied": true, "reason": "ok", "semantic": 9, "quality": 9.5, "new_rewritten_prompt": ""}\n```\nDone.'
        v = parse_expert(text)
        assert (v.satisfied, v.semantic, v.quality, v.refined_instruction) == (True, 9, 9.5, "")

    def test_trailing_text_and_second_object(self) -> None:
        text = '{"is_satisfied": false, "reason": "r", "semantic": 3, "quality": 4, "new_rewritten_prompt": "p"} {"other": 1}'
        assert parse_expert(text).refined_instruction == "p"

    def test_leading_brace_that_is_not_json(self) -> None:
        text = 'Scores {in JSON}: {"is_satisfied": false, "semantic": 3, "quality": 4, "new_rewritten_prompt": "p"}'
        assert parse_expert(text).semantic == 3

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("true", True), ("False", False), (" yes ", True), ("no", False), (1, True), (0, False)],
    )
    def test_booleans_as_strings_or_ints(self, value: object, expected: bool) -> None:
        import json

        text = json.dumps({"is_satisfied": value, "reason": "r", "semantic": 5, "quality": 5, "new_rewritten_prompt": "p"})
        assert parse_expert(text).satisfied is expected

    def test_python_dict_with_single_quotes(self) -> None:
        text = "{'is_satisfied': True, 'reason': 'fine', 'semantic': '8', 'quality': '7/10', 'new_rewritten_prompt': 'x',}"
        v = parse_expert(text)
        assert (v.satisfied, v.semantic, v.quality, v.refined_instruction) == (True, 8, 7, "x")

    def test_apostrophe_inside_near_json(self) -> None:
        text = '{"is_satisfied": false, "reason": "the cat\'s hat is blue", "semantic": 3, "quality": 8, "new_rewritten_prompt": "Make the cat\'s hat red.",}'
        v = parse_expert(text)
        assert v.reasoning == "the cat's hat is blue"
        assert v.refined_instruction == "Make the cat's hat red."

    def test_optional_keys_may_be_missing(self) -> None:
        v = parse_expert('{"is_satisfied": true, "semantic": 9, "quality": 9}')
        assert (v.reasoning, v.refined_instruction) == ("", "")

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("", "empty"),
            ("The edit looks fine to me.", "no JSON object"),
            ('{"is_satisfied": false, "reason": "cut off mid-str', "no JSON object"),
            ("[1, 2, 3]", "no JSON object"),
            ('{"is_satisfied": false, "reason": "r"}', "lacks key"),
            ('{"reason": "r", "semantic": 5, "quality": 5}', "is_satisfied"),
            ('{"is_satisfied": "maybe", "semantic": 5, "quality": 5}', "not a boolean"),
            ('{"is_satisfied": false, "semantic": 12, "quality": 5}', "outside 0-10"),
            ('{"is_satisfied": false, "semantic": 5, "quality": 5, "new_rewritten_prompt": ["a"]}', "not a string"),
        ],
    )
    def test_garbage_raises(self, text: str, reason: str) -> None:
        with pytest.raises(ThinkerOutputError, match=reason):
            parse_expert(text)


def test_expert_schema_requires_every_key() -> None:
    assert set(EXPERT_JSON_SCHEMA["required"]) == set(EXPERT_JSON_SCHEMA["properties"])
    assert EXPERT_JSON_SCHEMA["additionalProperties"] is False
