"""How soon ``thinkedit edit`` says something after Enter: time to its first stderr line, with spread.

    PYTHONPATH=. .venv/bin/python bench/first_line.py [--samples 9]

Starts the real CLI on ``examples/chelsea.png`` with the tiny profile, times the first line it writes
on stderr (the run line, printed after the cheap input checks and before torch and LangGraph are
imported), then kills it. Alternates with two references measured the same way: a bare
``python -c pass`` (the interpreter's own start) and the first progress line (``round 1 · editing``,
what a person waited for before). Prints medians with min–max and the ratios; the target is a first
line within 0.5 s on an idle machine (absolute times move with the machine's load).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.5


def time_to_line(args: list[str], prefix: str, env: dict[str, str]) -> float:
    """Start ``args``; return seconds until a stderr line starting with ``prefix`` (or exit, for ``pass``)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        if not prefix:
            proc.wait(60)
            return time.perf_counter() - started
        for line in proc.stderr:
            if line.startswith(prefix):
                return time.perf_counter() - started
        raise RuntimeError(f"{args} ended without a line starting with {prefix!r}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(60)


def spread(samples: list[float]) -> str:
    """Format the median with min–max, in milliseconds."""
    return f"{statistics.median(samples) * 1000:.0f} ms ({min(samples) * 1000:.0f}–{max(samples) * 1000:.0f})"


def main() -> None:
    """Measure alternately and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=9)
    samples = parser.parse_args().samples
    data = Path(tempfile.mkdtemp(prefix="first-line-"))
    env = {**os.environ, "THINKEDIT_DATA_DIR": str(data / "data"), "PYTHONPATH": str(ROOT)}
    edit = [sys.executable, "-m", "thinkedit.servers.cli", "edit", str(ROOT / "examples" / "chelsea.png"),
            "put a red party hat on the cat", "--profile", "tiny", "--out", str(data / "out")]
    time_to_line(edit, "round 1 · editing", env)  # builds the tiny models once, outside the samples
    first, bare, progress = [], [], []
    for _ in range(samples):
        bare.append(time_to_line([sys.executable, "-c", "pass"], "", env))
        first.append(time_to_line(edit, "run ", env))
        progress.append(time_to_line(edit, "round 1 · editing", env))
    ratios = [f / b for f, b in zip(first, bare, strict=True)]
    met = sum(f <= TARGET_S for f in first)
    print(f"first line (run …):          {spread(first)}; within {TARGET_S} s in {met}/{samples}")
    print(f"python -c pass:              {spread(bare)}")
    print(f"first progress line (round 1 · editing): {spread(progress)}")
    print(f"first line ÷ bare interpreter = {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")
    print(f"first line ÷ first progress line = {statistics.median(first) / statistics.median(progress):.2f}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
