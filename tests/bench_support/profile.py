"""Write the benchmarks' profile: the tiny one with thresholds no random thinker reaches, so every run uses every round."""

from __future__ import annotations

from pathlib import Path


def every_round_profile(path: Path) -> Path:
    """Write the tiny profile with thresholds no random thinker reaches (every run uses every round)."""
    from importlib.resources import files

    text = files("thinkedit.tools.profiles").joinpath("tiny.toml").read_text("utf-8")
    assert text.rstrip().rsplit("\n[", 1)[-1].startswith("loop]"), "the tiny profile must end with its [loop] table"
    path.write_text(f"{text.rstrip()}\nsemantic_threshold = 10\nquality_threshold = 10\n", "utf-8")
    return path
