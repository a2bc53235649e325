"""EditThinker's template format ({original_instruction}, {rewritten_prompt}, <image> markers) used unchanged."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.recording_openai import RecordingChatServer
from thinkedit.apps.dataset.formats import prompt_text
from thinkedit.apps.evaluation.judge import judge_prompt_text
from thinkedit.servers.thinker.local_app import split_messages
from thinkedit.servers.thinker.schemas import ChatMessage
from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.thinkers.chat_model import ChatModelThinker
from thinkedit.tools.thinkers.prompt import interleave, load_template, render_prompt, template_style
from thinkedit.tools.thinkers.vlm_runtime import user_message
from thinkedit.tools.types import JudgeRequest

# Our own text, written in the format of EditThinker's training template: markers first, brace
# placeholders, and a JSON example whose braces must survive.
LEADING = """<image><image>You check an image edit. The first picture is the input, the second the output.
What the user asked for: {original_instruction}
What the editor was told: {rewritten_prompt}
Think it over inside <think></think>, give scores as <score>{"semantic": 0-10, "quality": 0-10}</score>
and the better editor prompt in <answer></answer>. For example: {"semantic": 7, "quality": 9}.
"""
# The same format with the markers inside the text, to see each image land at its own marker.
INLINE = """Input picture: <image>
Output picture: <image>
Asked: {original_instruction} | Used: {rewritten_prompt} | JSON stays: {"a": {"b": 1}} and {unknown}
"""
REPLY = '<think>ok</think><score>{"semantic": 9, "quality": 9}</score><answer>same</answer>'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompt_template.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_brace_template_is_accepted_unchanged_and_filled_only_where_named(tmp_path: Path) -> None:
    text = load_template("editthinker", write(tmp_path, INLINE))
    assert text == INLINE and template_style(text) == "brace"
    filled = render_prompt(text, original_instruction="a {rewritten_prompt} hat <image>", current_instruction="b")
    assert "Asked: a {rewritten_prompt} hat | Used: b |" in filled  # filled text is not read again, no marker added
    assert '{"a": {"b": 1}} and {unknown}' in filled and filled.count("<image>") == 2
    with pytest.raises((KeyError, ValueError)):
        INLINE.format(original_instruction="a", rewritten_prompt="b")  # why naive str.format is not enough


def test_our_dollar_style_still_works(tmp_path: Path) -> None:
    text = load_template("editthinker", write(tmp_path, "${original_instruction} {x} ${current_instruction} $5"))
    assert render_prompt(text, original_instruction="a", current_instruction="b") == "a {x} b $5"


def test_brace_template_missing_a_placeholder_names_it(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"\{rewritten_prompt\}"):
        load_template("editthinker", write(tmp_path, "<image><image>only {original_instruction}"))


def test_interleave_places_images_at_markers() -> None:
    assert interleave("A<image>B<image>C", ["s", "e"]) == ["A", "s", "B", "e", "C"]
    assert interleave("<image><image>T", ["s", "e"]) == ["s", "e", "T"]
    assert interleave("T", ["s", "e"]) == ["s", "e", "T"]
    assert interleave("<image><image>T", ["s", "r1", "r2", "e"]) == ["s", "r1", "r2", "e", "T"]
    with pytest.raises(BadInputError, match="3 <image> marker"):
        interleave("<image><image><image>", ["s", "e"])


def image_at(part: dict) -> tuple[int, int]:
    url = part["image_url"]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size


@pytest.mark.parametrize("template", [LEADING, INLINE], ids=["leading-markers", "inline-markers"])
async def test_chat_model_thinker_sends_images_at_the_markers(template: str, tmp_path: Path) -> None:
    source, edited = Image.new("RGB", (64, 32), "red"), Image.new("RGB", (32, 64), "blue")
    with RecordingChatServer(REPLY) as server:
        config = ThinkerConfig(backend="chat-model", model="appletea2333/EditThinker-8B", base_url=server.url,
                               prompt_file=str(write(tmp_path, template)))
        thinker = ChatModelThinker(config)
        verdict = await thinker.judge(JudgeRequest(source=source, edited=edited, original_instruction="put a hat on it",
                                                   current_instruction="Add a red woollen hat."))
    assert verdict.semantic == 9
    (call,) = server.requests
    assert call["path"] == "/v1/chat/completions"
    (message,) = call["body"]["messages"]
    parts = message["content"]
    kinds = [p["type"] for p in parts]
    texts = "".join(p["text"] for p in parts if p["type"] == "text")
    assert "<image>" not in texts
    assert "put a hat on it" in texts and "Add a red woollen hat." in texts
    assert "{original_instruction}" not in texts and "{rewritten_prompt}" not in texts
    if template is LEADING:
        assert kinds == ["image_url", "image_url", "text"]
        assert '<score>{"semantic": 0-10, "quality": 0-10}</score>' in texts and '{"semantic": 7, "quality": 9}' in texts
    else:
        assert kinds == ["text", "image_url", "text", "image_url", "text"]
        assert parts[0]["text"] == "Input picture: " and parts[2]["text"] == "\nOutput picture: "
        assert '{"a": {"b": 1}} and {unknown}' in texts
    first, second = [image_at(p) for p in parts if p["type"] == "image_url"]
    assert first == (64, 32) and second == (32, 64)  # source at the first marker, edited at the second


def test_transformers_thinker_chat_puts_image_slots_at_the_markers() -> None:
    filled = render_prompt(INLINE, original_instruction="a", current_instruction="b")
    (turn,) = user_message(filled, image_count=2)
    assert [p["type"] for p in turn["content"]] == ["text", "image", "text", "image", "text"]
    (turn,) = user_message("no markers", image_count=2)
    assert [p["type"] for p in turn["content"]] == ["image", "image", "text"]


def test_local_thinker_server_keeps_interleaved_images_in_place() -> None:
    def url(colour: str) -> str:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), colour).save(buf, "PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    message = ChatMessage.model_validate({"role": "user", "content": [
        {"type": "text", "text": "In: "}, {"type": "image_url", "image_url": {"url": url("red")}},
        {"type": "text", "text": " Out: <image>"}, {"type": "image_url", "image_url": {"url": url("blue")}},
    ]})
    images, text = split_messages([message], max_pixels=10_000)
    assert len(images) == 2 and text == "In: <image> Out: <image>"


def test_data_build_keeps_the_markers_where_the_template_has_them() -> None:
    sample = {"original_instruction": "hat", "previous_instruction": "red hat"}
    assert prompt_text(sample, INLINE).startswith("Input picture: <image>\nOutput picture: <image>\nAsked: hat")
    assert prompt_text(sample, LEADING).count("<image>") == 2 and prompt_text(sample, LEADING).startswith("<image><image>You")
    assert prompt_text(sample, "${original_instruction}/${current_instruction}") == "<image><image>hat/red hat"


def test_judge_prompt_in_the_brace_format(tmp_path: Path) -> None:
    path = write(tmp_path, "<image><image>{bench_name}: {semantic_criteria}; {quality_criteria}\n"
                           "{original_instruction} / {rewritten_prompt} -> {\"semantic\": S}")
    text = judge_prompt_text("gedit", "editthinker", path)
    assert "GEdit" in text and "{original_instruction} / {rewritten_prompt}" in text and '{"semantic": S}' in text
    assert load_template("editthinker", write(tmp_path, text)) == text


async def test_references_reach_the_thinker_between_source_and_edited(tmp_path: Path) -> None:
    source, ref, edited = (Image.new("RGB", size, "red") for size in [(64, 32), (40, 40), (32, 64)])
    with RecordingChatServer(REPLY) as server:
        for template in (LEADING, "${original_instruction} / ${current_instruction}"):
            config = ThinkerConfig(backend="chat-model", model="m", base_url=server.url,
                                   prompt_file=str(write(tmp_path, template)))
            await ChatModelThinker(config).judge(JudgeRequest(source=source, edited=edited, original_instruction="a",
                                                              current_instruction="b", references=[ref]))
    for call in server.requests:
        parts = call["body"]["messages"][0]["content"]
        assert [image_at(p) for p in parts if p["type"] == "image_url"] == [(64, 32), (40, 40), (32, 64)]
        assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
        assert "in between, image 2: reference images" in parts[-1]["text"] and "image 3" in parts[-1]["text"]
