"""Check prompt templates: the packaged ones, a user's own file, and the placeholder checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.thinkers.prompt import REQUIRED_PLACEHOLDERS, load_template, render_prompt


@pytest.mark.parametrize("protocol", ["editthinker", "expert"])
def test_packaged_templates_have_every_placeholder(protocol: str) -> None:
    text = load_template(protocol)  # type: ignore[arg-type]
    for name in REQUIRED_PLACEHOLDERS:
        assert f"${{{name}}}" in text


def test_packaged_templates_describe_their_output_format() -> None:
    assert "<think>" in load_template("editthinker") and "<answer>" in load_template("editthinker")
    assert "new_rewritten_prompt" in load_template("expert")


def test_render_fills_both_instructions_in_order() -> None:
    text = render_prompt(
        load_template("editthinker"),
        original_instruction="  Put a hat on the cat ",
        current_instruction="Put a red hat on the cat\n",
    )
    assert "${" not in text
    first, second = text.index("Put a hat on the cat"), text.index("Put a red hat on the cat")
    assert first < second


def test_render_leaves_other_dollar_signs_and_user_dollars_alone() -> None:
    template = "cost $5 ${original_instruction} / ${current_instruction} ${unknown}"
    text = render_prompt(template, original_instruction="make it $${x}", current_instruction="b")
    assert text == "cost $5 make it $${x} / b ${unknown}"


def test_user_template_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("Was: ${original_instruction}\nNow: ${current_instruction}\n", encoding="utf-8")
    text = load_template("editthinker", path)
    assert render_prompt(text, original_instruction="a", current_instruction="b") == "Was: a\nNow: b\n"
    assert load_template("expert", str(path)) == text


def test_user_template_missing_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("Only ${original_instruction} here; $current_instruction is not braced.", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"\$\{current_instruction\}"):
        load_template("editthinker", path)


def test_user_template_not_found(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        load_template("editthinker", tmp_path / "nope.txt")


def test_user_template_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        load_template("editthinker", tmp_path)
