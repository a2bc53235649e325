"""The CLI rejects bad usage and bad input with exit code 2 and one line naming the problem, never a traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ROOT, cli_env, thinkedit
from tests.conftest import EXAMPLES


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    data = (EXAMPLES / "chelsea.png").read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 3])
    return {"text": text, "truncated": truncated}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["edit", "no/such/photo.png", "make it red"], "image not found: no/such/photo.png"),
        (["edit", "{text}", "make it red"], "is not an image"),
        (["edit", "{truncated}", "make it red"], "damaged or truncated"),
        (["edit", "examples/chelsea.png", "   "], "instruction is empty"),
        (["edit", "examples/chelsea.png", "make it red", "--out", "{text}"], "is a file; the files go into a folder"),
        (["edit", "examples/chelsea.png", "make it red", "--out", "{text}/run"], "/notes.png, which is a file, not a"),
        (["eval", "--bench", "imgedit", "--data", "{text}", "--out", "{text}/eval"], "/notes.png, which is a file"),
        (["data", "synthetic-bench", "--out", "{text}/bench"], "/notes.png, which is a file, not a folder"),
        (["edit", "examples/chelsea.png", "make it red", "--max-rounds", "0"], "--max-rounds: must be at least 1"),
        (["edit", "examples/chelsea.png", "make it red", "--max-rounds", "two"], "is not a whole number"),
        (["edit", "examples/chelsea.png", "make it red", "--profile", "nope"],
         "unknown profile 'nope'; choose from ['expert', "),
        (["edit", "examples/chelsea.png", "make it red", "--profile", "no/such.toml"], "profile file not found"),
        (["edit", "examples/chelsea.png", "make it red", "--select", "worst"], "invalid choice: 'worst'"),
        (["resume", "doesnotexist"], "unknown run id 'doesnotexist'"),
        (["edit", "examples/chelsea.png", "make it red", "--editor-model", "nosuch"],
         "unknown diffusers editor model 'nosuch'; choose from ['flux-kontext-dev', "),
        (["frobnicate"], "invalid choice"),
        (["edit", "examples/chelsea.png"], "the following arguments are required: instruction"),
        (["runs", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_input_exits_2_with_message(tmp_path: Path, bad_files: dict[str, Path], args: list[str], message: str) -> None:
    args = [a.format(**bad_files) for a in args]
    result = thinkedit(*args, data_dir=tmp_path / "data", timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_profile_variable_is_the_default_profile(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", "edit", "examples/chelsea.png", "make it red"],
                            env={**cli_env(tmp_path / "data"), "THINKEDIT_PROFILE": "nope"}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown profile 'nope'" in result.stderr, result.stderr


def test_a_password_in_a_server_url_option_is_masked(tmp_path: Path) -> None:
    """``--thinker URL`` with a password (a proxy's) is masked where it is shown: stderr, the run's error.

    (Nothing listens there. The run's settings keep the URL itself: resuming the run needs it.)
    """
    result = thinkedit("edit", "examples/chelsea.png", "make it red", "--max-rounds", "1", "--out", str(tmp_path / "out"),
                       "--thinker", "http://user:s3cretpw@127.0.0.1:9/v1", data_dir=tmp_path / "data", timeout=300)
    assert result.returncode == 1 and "user:***@127.0.0.1:9" in result.stderr, result.stderr
    assert "s3cretpw" not in result.stderr + result.stdout
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "data" / "runs").glob("*.json")]
    assert "user:***@127.0.0.1:9" in record["error"] and "s3cretpw" not in record["error"]


def test_runs_lists_nothing_on_a_fresh_data_dir(tmp_path: Path) -> None:
    result = thinkedit("runs", data_dir=tmp_path / "data", timeout=60)
    assert result.returncode == 0
    assert "no runs" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"THINKEDIT_EDITOR_MODEL": "nosuch"}, "unknown diffusers editor model 'nosuch'; choose from ['flux-kontext-dev', "),
        ({"THINKEDIT_THINKER_MODEL": "tiny-nosuch"}, "unknown tiny thinker 'tiny-nosuch'; choose from ['tiny-qwen2.5-vl']"),
        ({"THINKEDIT_EDITOR_BACKEND": "nosuch"}, "unknown editor backend 'nosuch'; choose from ['diffusers', "),
        ({"THINKEDIT_LOG_LEVEL": "loud"}, "$THINKEDIT_LOG_LEVEL='loud' is not a log level; use one of debug, "),
        ({"REF": "examples/chelsea.png"}, "editor 'tiny-kontext' takes 1 input image(s) per edit; got the source and 1 "),
    ],
)
def test_unknown_models_and_settings_exit_2_before_the_run(tmp_path: Path, env: dict[str, str], message: str) -> None:
    """A mistake is one line and no run (docs/getting-started.md): no record is left behind."""
    ref = ["--ref", env.pop("REF")] if "REF" in env else []
    result = subprocess.run([sys.executable, "-m", "thinkedit.servers.cli", "edit", "examples/chelsea.png", "make it red",
                             *ref], env={**cli_env(tmp_path / "data"), **env}, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"thinkedit: error: {message}"), line
    assert not (tmp_path / "data" / "runs").exists() or not list((tmp_path / "data" / "runs").iterdir())


@pytest.mark.parametrize("args", [["--version", "runs"], ["runs", "--version"], ["serve", "editor", "--version"]])
def test_version_before_or_after_the_command(tmp_path: Path, args: list[str]) -> None:
    result = thinkedit(*args, data_dir=tmp_path / "data", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("thinkedit 0.")


@pytest.mark.parametrize(("args", "level"), [
    (["runs"], 30), (["-v", "runs"], 20), (["runs", "-v"], 20), (["runs", "-vv"], 10), (["-v", "runs", "-v"], 10),
    (["serve", "editor", "--model", "tiny-kontext", "-v"], 20),
])
def test_verbose_counts_before_and_after_the_command(args: list[str], level: int) -> None:
    from thinkedit.servers.cli import build_parser
    from thinkedit.servers.cli.verbosity import log_level

    parsed = build_parser().parse_args(args)
    assert log_level(parsed.verbose + getattr(parsed, "verbose_after", 0), env={}) == level


@pytest.mark.parametrize("args", [["-v", "runs"], ["runs", "-v"]])
def test_verbose_after_the_command_runs_it(tmp_path: Path, args: list[str]) -> None:
    result = thinkedit(*args, data_dir=tmp_path / "data", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no runs" in result.stdout


def test_the_log_level_comes_from_the_environment_without_v() -> None:
    from thinkedit.servers.cli.verbosity import log_level

    assert log_level(0, env={"THINKEDIT_LOG_LEVEL": "info"}) == 20
    assert log_level(0, env={"THINKEDIT_LOG_LEVEL": "DEBUG"}) == 10
    assert log_level(1, env={"THINKEDIT_LOG_LEVEL": "error"}) == 20  # -v wins


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_in_one_line(tmp_path: Path) -> None:
    # As a terminal's shell starts it: a suite run in the background (`cmd &` in a script) inherits SIGINT ignored.
    as_in_a_terminal = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen([sys.executable, "-m", "thinkedit.servers.cli", "edit", "examples/chelsea.png", "make it red",
                             "--max-rounds", "2", "--out", str(tmp_path / "out")], cwd=ROOT, env=cli_env(tmp_path / "data"),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, preexec_fn=as_in_a_terminal)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    for line in proc.stderr:
        if line.startswith("round 1 · editing"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read().strip().splitlines()
    assert proc.wait(120) == 130, rest
    run_id = first.split()[1]
    assert rest[-1] == f"thinkedit: error: interrupted; finished rounds are kept, continue with: thinkedit resume {run_id}"
    assert all(line.startswith("round 1 · ") for line in rest[:-1]), rest  # no traceback


def test_run_data_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """An instruction (any gallery or MCP client's) or a thinker's words reach the terminal with their control
    characters written out: they cannot clear the screen, move the cursor or retitle the window."""
    import asyncio

    from thinkedit.agent.runs import Runner
    from thinkedit.agent.settings import resolve_settings
    from thinkedit.servers.cli.display import PlainProgress, printable

    sneaky = "make it red\x1b]0;PWNED\x07\x1b[2J\x9b31m"
    assert printable(sneaky) == "make it red\\x1b]0;PWNED\\x07\\x1b[2J\\x9b31m" and printable("a\tb\nc") == "a\tb\nc"

    async def prepare() -> None:
        async with Runner.open(tmp_path / "data") as runner:
            runner.prepare(EXAMPLES / "chelsea.png", sneaky, resolve_settings("tiny", data_dir=str(tmp_path / "data")))

    asyncio.run(prepare())
    listed = thinkedit("runs", data_dir=tmp_path / "data", timeout=60)
    assert listed.returncode == 0 and "make it red\\x1b]0;PWNED\\x07\\x1b[2J" in listed.stdout, listed.stdout
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout

    shown = tmp_path / "progress.txt"
    with shown.open("w") as stream:
        PlainProgress(stream)({"event": "round_started", "run_id": "r", "round": 1, "seed": 0, "instruction": sneaky})
        PlainProgress(stream)({"event": "verdict", "run_id": "r", "round": 1, "semantic": 1, "quality": 2,
                               "overall": 1.4, "think_seconds": 0.1, "refined_instruction": sneaky})
    assert "\x1b" not in shown.read_text() and shown.read_text().count("\\x1b") == 4


def test_a_review_at_the_terminal_shows_the_thinkers_words_inert(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from thinkedit.servers.cli.run_commands import _ask_review

    monkeypatch.setattr("sys.stdin", io.StringIO("a\n"))
    _ask_review({"round": 1, "semantic": 3, "quality": 4, "reasoning": "fine\x1b[2J", "proposed_instruction": "x\x07"})
    err = capsys.readouterr().err
    assert "fine\\x1b[2J" in err and "x\\x07" in err and "\x1b" not in err and "\x07" not in err
