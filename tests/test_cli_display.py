"""What a person sees while a run goes: a live status line on a terminal, plain lines in a pipe, no library noise."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from thinkedit.servers.cli.display import LiveProgress, PlainProgress, RunView, progress_display
from tests.cli import ROOT, cli_env
from tests.conftest import EXAMPLES
from thinkedit.tools.profiles import DEMO_NOTE

EVENTS = [
    {"event": "round_started", "run_id": "r", "round": 1, "instruction": "add a hat", "seed": 0},
    {"event": "image_ready", "run_id": "r", "round": 1, "edit_seconds": 1.5},
    {"event": "verdict", "run_id": "r", "round": 1, "semantic": 6, "quality": 7, "overall": 6.48, "think_seconds": 0.5,
     "stop_reason": None, "refined_instruction": "add a red hat"},
    {"event": "round_started", "run_id": "r", "round": 2, "instruction": "add a red hat", "seed": 0},
]


def test_the_status_line_follows_the_events() -> None:
    view = RunView(max_rounds=3)
    assert view.status(now=view.started) == "round –/3 · starting · 0:00 · scores –"
    statuses = []
    for event in EVENTS:
        view.update(event)
        statuses.append(view.status(now=view.started + 75))
    assert statuses == [
        "round 1/3 · editing · 1:15 · scores –",
        "round 1/3 · critiquing · 1:15 · scores –",
        "round 1/3 · refining · 1:15 · scores 6.48",
        "round 2/3 · editing · 1:15 · scores 6.48",
    ]
    view.update({"event": "verdict", "round": 2, "semantic": 9, "quality": 9, "overall": 9.0, "think_seconds": 1,
                 "stop_reason": "threshold_met"})
    assert view.status(now=view.started) == "round 2/3 · stopping (threshold_met) · 0:00 · scores 6.48 9.00"


def test_a_resumed_run_starts_from_its_finished_rounds() -> None:
    view = RunView(max_rounds=3, scores=[6.48, 7.1])
    assert view.status(now=view.started) == "round 2/3 · starting · 0:00 · scores 6.48 7.10"


def test_the_live_form_prints_the_phase_lines_above_a_redrawn_status_line() -> None:
    out = io.StringIO()
    with LiveProgress(Console(file=out, force_terminal=True, width=120), max_rounds=3) as display:
        for event in EVENTS:
            display(event)
    text = out.getvalue()
    assert "round 1/3 · editing (seed 0): 'add a hat'" in text
    assert "round 1/3 · semantic 6 · quality 7 · overall 6.48 (thought 0.50 s) → refine: 'add a red hat'" in text
    assert re.search(r"round 2/3 · editing · 0:0\d · scores 6\.48", text)
    assert "\x1b[2K" in text  # the status line is erased and redrawn, not appended


def test_plain_lines_off_a_terminal_or_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    display = progress_display(3, out)
    assert isinstance(display, PlainProgress)
    with display:
        for event in EVENTS:
            display(event)
    assert out.getvalue().splitlines()[0] == "round 1 · editing (seed 0): 'add a hat'"
    assert "\x1b" not in out.getvalue()

    master, replica = pty.openpty()
    with os.fdopen(replica, "w") as terminal:
        assert isinstance(progress_display(3, terminal), LiveProgress)
        monkeypatch.setitem(sys.modules, "rich.console", None)  # a core install: no rich
        assert isinstance(progress_display(3, terminal), PlainProgress)
    os.close(master)


QUIET_PROBE = textwrap.dedent("""
    import sys, warnings
    from thinkedit.servers.cli.verbosity import configure_logging, log_level
    configure_logging(log_level(int(sys.argv[1])))
    import transformers
    transformers.CLIPImageProcessor  # without torchvision: transformers' "falling back" notice
    warnings.warn("a library's deprecation notice", DeprecationWarning, stacklevel=1)
    import logging
    logging.getLogger("thinkedit.probe").warning("our own warning")
    logging.getLogger("some.library").error("a library's error")
""")


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [0, 1])
def test_other_libraries_warnings_only_with_v(verbose: int, tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env(tmp_path).items() if not k.startswith(("TRANSFORMERS_", "TQDM_", "DIFFUSERS_"))}
    result = subprocess.run([sys.executable, "-W", "always", "-c", QUIET_PROBE, str(verbose)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)
    assert "our own warning" in result.stderr and "a library's error" in result.stderr
    library_warnings = ["requires torchvision", "a library's deprecation notice"]
    if verbose:
        assert all(w in result.stderr for w in library_warnings), result.stderr
    else:
        assert not any(w in result.stderr for w in library_warnings), result.stderr
        assert len(result.stderr.strip().splitlines()) == 2, result.stderr


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str, str]:
    """Run the CLI with stderr (and stdin) on a pseudo-terminal; return the exit code, the terminal's bytes, stdout."""
    master, replica = pty.openpty()
    fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "thinkedit.servers.cli", *args], cwd=ROOT,
                            env={**env, "TERM": "xterm-256color"}, stdin=replica, stderr=replica, stdout=subprocess.PIPE)
    os.close(replica)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout), b"".join(chunks).decode(errors="replace"), stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("display") / "data"


@pytest.mark.slow
def test_a_run_on_a_terminal_shows_round_phase_time_and_scores(data_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env(data_dir).items() if k not in {"NO_COLOR", "TQDM_DISABLE"}}
    code, screen, stdout = run_in_terminal(["edit", str(EXAMPLES / "chelsea.png"), "put a red party hat on the cat",
                                            "--max-rounds", "2", "--out", str(tmp_path / "out")], env)
    assert code == 0, screen
    assert screen.startswith("run ") and "· profile tiny ·" in screen.splitlines()[0]
    assert "\x1b[2K" in screen  # redrawn in place
    assert re.search(r"round –/2 · starting · \d+:\d\d · scores –", screen)
    assert re.search(r"round 1/2 · editing · \d+:\d\d · scores –", screen)
    assert re.search(r"round 1/2 · critiquing · \d+:\d\d · scores –", screen)
    first = re.search(r"round 1/2 · semantic \S+ · quality \S+ · overall (\d+\.\d\d)", screen)
    assert first, screen
    assert re.search(rf"round [12]/2 · [a-z_ ()]+ · \d+:\d\d · scores {re.escape(first.group(1))}", screen)
    assert "done · chose round" in screen and "[transformers]" not in screen
    assert f"report:     {tmp_path / 'out' / 'report.html'}" in stdout  # the paths stay on stdout


@pytest.mark.slow
def test_a_run_through_a_pipe_prints_plain_lines(data_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", "edit", str(EXAMPLES / "chelsea.png"),
                             "put a red party hat on the cat", "--max-rounds", "2", "--out", str(tmp_path / "out")],
                            cwd=ROOT, env=cli_env(data_dir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert re.fullmatch(r"run [0-9a-f]{12} · profile tiny · data in .+", lines[0])
    assert lines[1] == DEMO_NOTE  # the tiny profile's models make noise, and the run says so first
    assert lines[2] == "round 1 · editing (seed 0): 'put a red party hat on the cat'"
    assert all(line.startswith(("round 1 · ", "round 2 · ", "done · chose round ")) for line in lines[2:]), lines
    assert lines[-1].startswith("done · chose round")
