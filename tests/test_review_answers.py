"""Review answers: one vocabulary (``decision``) on every surface, the graph still reading the old ``action``."""

from __future__ import annotations

import re

import pytest

from thinkedit.agent.review import parse_review, review_answer
from thinkedit.tools.errors import BadInputError


@pytest.mark.parametrize(
    ("answer", "read"),
    [
        ({"decision": "approve"}, ("approve", None)),
        ({"decision": "STOP"}, ("stop", None)),
        ({"decision": "edit", "instruction": " a blue hat "}, ("edit", "a blue hat")),
        ({"action": "edit", "instruction": "a blue hat"}, ("edit", "a blue hat")),  # LangGraph Studio's old answers
        ({"action": "approve"}, ("approve", None)),
        ("approve", ("approve", None)),
        ("a blue hat", ("edit", "a blue hat")),
    ],
)
def test_the_graph_reads_every_public_answer(answer, read) -> None:
    assert parse_review(answer) == read


@pytest.mark.parametrize("answer", [{"decision": "edit"}, {"decision": "maybe"}, "  ", 3, {"choice": "approve"}])
def test_an_answer_it_cannot_read_names_the_vocabulary(answer) -> None:
    with pytest.raises(BadInputError, match=re.escape("{'decision': 'approve' | 'edit' | 'stop', 'instruction': ...}")):
        parse_review(answer)


def test_every_surface_builds_the_same_answer() -> None:
    assert review_answer("approve") == {"decision": "approve"}
    assert review_answer("edit", "  a blue hat ") == {"decision": "edit", "instruction": "a blue hat"}
    assert parse_review(review_answer("stop")) == ("stop", None)
    with pytest.raises(BadInputError, match="decision 'edit' needs an instruction"):
        review_answer("edit", " ")


@pytest.mark.parametrize("answer", ["edit", " Edit ", "EDIT"])
def test_the_listed_choice_edit_alone_is_not_taken_as_the_instruction(answer: str) -> None:
    with pytest.raises(BadInputError, match="decision 'edit' needs an instruction"):
        parse_review(answer)
    assert parse_review("edit the hat to be blue") == ("edit", "edit the hat to be blue")  # an instruction still is


@pytest.mark.parametrize("decision", ["approve", "stop"])
def test_an_instruction_beside_approve_or_stop_is_refused_not_dropped(decision: str) -> None:
    with pytest.raises(BadInputError, match=f"decision '{decision}' takes no instruction .*decide 'edit'"):
        review_answer(decision, "make the hat blue")  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match=f"decision '{decision}' takes no instruction"):
        parse_review({"decision": decision, "instruction": "make the hat blue"})
    with pytest.raises(BadInputError, match=f"decision '{decision}' takes no instruction"):
        parse_review({"action": decision, "instruction": "make the hat blue"})  # the older vocabulary too
    assert review_answer(decision, "  ") == {"decision": decision}  # an empty field, as forms send it, is no instruction
    assert parse_review({"decision": decision, "instruction": ""}) == (decision, None)


def test_an_instruction_that_is_not_text_is_refused() -> None:
    with pytest.raises(BadInputError, match="instruction must be text, not list"):
        parse_review({"decision": "edit", "instruction": ["a blue hat"]})
