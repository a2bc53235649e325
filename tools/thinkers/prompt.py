"""Load prompt templates (package data or a user file) and fill their placeholders."""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path
from typing import Literal

from thinkedit.tools.errors import BadInputError

Protocol = Literal["editthinker", "expert"]

#: Placeholders every template must use, as ``${name}``.
REQUIRED_PLACEHOLDERS = ("original_instruction", "current_instruction")


def load_template(protocol: Protocol = "editthinker", path: str | Path | None = None) -> str:
    """Return the template text: the user's file when given, else the packaged one."""
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise BadInputError(f"prompt template not found: {file}")
        text = file.read_text(encoding="utf-8")
    else:
        text = resources.files("thinkedit.tools.thinkers").joinpath(f"prompts/{protocol}.txt").read_text("utf-8")
    missing = [name for name in REQUIRED_PLACEHOLDERS if f"${{{name}}}" not in text]
    if missing:
        raise BadInputError(
            f"prompt template {path or protocol!s} lacks placeholder(s): "
            + ", ".join(f"${{{name}}}" for name in missing)
        )
    return text


def render_prompt(template: str, *, original_instruction: str, current_instruction: str) -> str:
    """Fill a template's placeholders; other ``$`` signs in the template are left alone."""
    return string.Template(template).safe_substitute(
        original_instruction=original_instruction.strip(),
        current_instruction=current_instruction.strip(),
    )
