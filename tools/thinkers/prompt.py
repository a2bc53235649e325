"""Load prompt templates (package data or a user file) and fill their placeholders.

Two placeholder styles are read, so a user's file works unchanged:

- ours, ``${original_instruction}`` / ``${current_instruction}`` (``string.Template``; other ``$``
  signs stay as they are);
- EditThinker's training template style, ``{original_instruction}`` / ``{rewritten_prompt}``
  (Python braces), with ``<image>`` markers (LLaMA-Factory's) saying where the images go. Only
  those exact names are replaced, so literal braces elsewhere (a JSON example) stay intact;
  ``str.format`` would break on them.

Without ``<image>`` markers the images come first, then the text (the order EditThinker was trained on).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

from thinkedit.tools.errors import BadInputError

Protocol = Literal["editthinker", "expert"]
Style = Literal["dollar", "brace"]
T = TypeVar("T")

#: Placeholders every template must use, as ``${name}`` (or EditThinker's brace names below).
REQUIRED_PLACEHOLDERS = ("original_instruction", "current_instruction")
#: EditThinker's brace names for our two placeholders (``{current_instruction}`` is read too).
BRACE_ALIASES = {"original_instruction": ("original_instruction",),
                 "current_instruction": ("rewritten_prompt", "current_instruction")}
#: Where a template wants an image (LLaMA-Factory's marker, as in EditThinker's template).
IMAGE_MARKER = "<image>"
#: Chat-template control tokens as most chat models spell them (``<|im_end|>``, ``<|image_pad|>``, ``<|eot_id|>``).
#: A model behind an API parses them out of plain text too, so user text loses them even where the tokenizer
#: (and so its own list of special tokens) is not at hand.
CONTROL_TOKEN = re.compile(r"<\|[^<>|\s]{1,64}\|>")


def template_style(text: str) -> Style:
    """Say which placeholder style a template uses: ours (``${...}``) unless it only has brace names."""
    if any(f"${{{name}}}" in text for name in REQUIRED_PLACEHOLDERS):
        return "dollar"
    braces = [alias for aliases in BRACE_ALIASES.values() for alias in aliases]
    return "brace" if any(f"{{{alias}}}" in text for alias in braces) else "dollar"


def missing_placeholders(text: str) -> list[str]:
    """Return the placeholders a template lacks, written in its own style (empty when complete)."""
    if template_style(text) == "dollar":
        return [f"${{{name}}}" for name in REQUIRED_PLACEHOLDERS if f"${{{name}}}" not in text]
    return [
        "{" + aliases[0] + "}"
        for aliases in BRACE_ALIASES.values()
        if not any(f"{{{alias}}}" in text for alias in aliases)
    ]


def load_template(protocol: Protocol = "editthinker", path: str | Path | None = None) -> str:
    """Return the template text: the user's file when given (unchanged), else the packaged one."""
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise BadInputError(f"prompt template not found: {file}")
        text = file.read_text(encoding="utf-8")
    else:
        text = resources.files("thinkedit.tools.thinkers").joinpath(f"prompts/{protocol}.txt").read_text("utf-8")
    missing = missing_placeholders(text)
    if missing:
        raise BadInputError(f"prompt template {path or protocol!s} lacks placeholder(s): " + ", ".join(missing))
    return text


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace the named placeholders in the template's own style; everything else is left as written."""
    if template_style(template) == "dollar":
        return string.Template(template).safe_substitute(values)
    names = sorted(values, key=len, reverse=True)
    pattern = re.compile(r"\{(" + "|".join(re.escape(n) for n in names) + r")\}")
    return pattern.sub(lambda m: values[m.group(1)], template)  # one pass: filled text is never re-read


def render_prompt(
    template: str, *, original_instruction: str, current_instruction: str, specials: Sequence[str] = ()
) -> str:
    """Fill a template's two instructions; its image markers stay, and user text can add neither markers nor
    chat-template tokens (``scrub_user_text``; ``specials``: the model's own special tokens, when known)."""
    original = scrub_user_text(original_instruction, specials).strip()
    current = scrub_user_text(current_instruction, specials).strip()
    values = {"original_instruction": original, "current_instruction": current}
    if template_style(template) == "brace":
        values["rewritten_prompt"] = current
    return fill(template, values)


def with_references(prompt: str, count: int) -> str:
    """Say which images are references when there are any (image 1 the source, the last the edited one)."""
    if count <= 0:
        return prompt
    note = resources.files("thinkedit.tools.thinkers").joinpath("prompts/references.txt").read_text("utf-8")
    names = "image 2" if count == 1 else f"images 2 to {count + 1}"
    filled = string.Template(note).substitute(references=names, edited_index=count + 2)
    body = prompt.lstrip()
    leading = ""
    while body.startswith(IMAGE_MARKER):  # the note goes after markers that open the template
        leading += IMAGE_MARKER
        body = body[len(IMAGE_MARKER):]
    return f"{leading}{filled.strip()}\n\n{body}"


def remove_all(text: str, tokens: Iterable[str]) -> str:
    """Remove every ``tokens`` string from ``text``, again until none is left: ``<im<image>age>`` loses both."""
    ordered = sorted({token for token in tokens if token}, key=len, reverse=True)
    while True:
        before = text
        for token in ordered:
            text = text.replace(token, "")
        if text == before:
            return text


def scrub_user_text(text: str, specials: Iterable[str] = ()) -> str:
    """Remove image markers, chat-template control tokens (``CONTROL_TOKEN``) and ``specials`` from user text.

    All in one loop, again until none is left: removing one kind can join another's halves
    (``<|im_<image>end|>``, ``<ima<|im_end|>ge>``), so no kind is removed after the others.
    """
    tokens = [IMAGE_MARKER, *specials]
    while True:
        before = text
        text = CONTROL_TOKEN.sub("", remove_all(text, tokens))
        if text == before:
            return text


def interleave(prompt: str, images: Sequence[T]) -> list[str | T]:
    """Return the prompt's text pieces and the images in order, each ``<image>`` marker taking its image.

    ``images`` is in the thinker's order: source, references (if any), edited. No markers: the
    images first, then the text. Two markers with references: the first marker takes the source
    and the references, the second the edited image. Empty text pieces are dropped.
    """
    pieces = prompt.split(IMAGE_MARKER)
    markers = len(pieces) - 1
    if markers == 0:
        return [*images, prompt]
    if markers == len(images):
        groups = [[image] for image in images]
    elif markers == 2 and len(images) > 2:
        groups = [list(images[:-1]), [images[-1]]]
    else:
        raise BadInputError(
            f"the prompt template has {markers} {IMAGE_MARKER} marker(s) for {len(images)} image(s) "
            "(source, references, edited)"
        )
    out: list[str | T] = [pieces[0]] if pieces[0] else []
    for group, piece in zip(groups, pieces[1:], strict=True):
        out.extend(group)
        if piece:
            out.append(piece)
    return out
