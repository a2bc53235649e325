"""Say how much a benchmark's figures spread, and how busy the machine was while they were taken.

Every ratio is the median of per-pair ratios (each pair: the two sides measured back to back),
printed with its interquartile range; every benchmark also reports the CPU pressure
(``/proc/pressure/cpu``: the share of time some runnable task waited for a core) over its run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PSI = Path("/proc/pressure/cpu")


#: The confidence the median's interval aims for (``Spread.low``/``high``).
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """A median with its interquartile range, a confidence interval for the median, and the sample count.

    The IQR says how far single samples scatter; the interval (``low``–``high``, covering the true
    median with probability ``coverage``) says how well the median itself is known, which is what
    a verdict against a target needs. It is distribution-free: order statistics of the sorted
    samples, from the binomial law of how many fall below the median.
    """

    median: float
    q1: float
    q3: float
    n: int
    low: float = float("nan")
    high: float = float("nan")
    coverage: float = 0.0

    def text(self, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
        """Format as ``1.05 (IQR 1.01–1.09, n=5)``."""
        f = f"{{:.{digits}f}}"
        m, a, b = (f.format(x * scale) for x in (self.median, self.q1, self.q3))
        return f"{m}{unit} (IQR {a}–{b}, n={self.n})"

    def interval(self, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
        """Format the median's confidence interval as ``0.96–1.10 (98%)``."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.low * scale)}–{f.format(self.high * scale)}{unit} ({100 * self.coverage:.0f}%)"


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Return (low, high, coverage): the narrowest order-statistic interval covering the median at ``confidence``.

    With the samples sorted, [x(j), x(n+1-j)] misses the median only when fewer than j samples fall
    on one side of it: probability 2 * P(Binomial(n, 1/2) < j). Too few samples for ``confidence``
    give the full range and its (lower) coverage: 94% for 5 samples, 75% for 3.
    """
    values = sorted(values)
    n = len(values)

    def coverage(j: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n

    j = 1
    while j + 1 <= (n + 1) // 2 and coverage(j + 1) >= confidence:
        j += 1
    return values[j - 1], values[n - j], max(0.0, coverage(j))


def spread(values: Sequence[float]) -> Spread:
    """Return the median, quartiles and median interval of ``values`` (all the value itself for one value)."""
    values = sorted(values)
    if not values:
        raise ValueError("no samples")
    low, high, coverage = median_interval(values)
    if len(values) == 1:
        return Spread(values[0], values[0], values[0], 1, low, high, coverage)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(statistics.median(values), q1, q3, len(values), low, high, coverage)


def pair_ratios(ours: Sequence[float], theirs: Sequence[float]) -> Spread:
    """Return the spread of ``ours[i] / theirs[i]`` over the pairs."""
    if len(ours) != len(theirs):
        raise ValueError("both sides need the same number of samples")
    return spread([a / b for a, b in zip(ours, theirs, strict=True)])


def _psi_total() -> int | None:
    """Return the cumulative microseconds some task waited for a CPU, or None without PSI."""
    try:
        for line in PSI.read_text().splitlines():
            if line.startswith("some"):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Pressure:
    """Measure CPU pressure over a block: ``with Pressure() as p: ...; p.percent``."""

    def __enter__(self) -> Pressure:
        self._start, self._t0 = _psi_total(), time.monotonic()
        self.percent: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        end, elapsed = _psi_total(), time.monotonic() - self._t0
        if self._start is not None and end is not None and elapsed > 0:
            self.percent = 100.0 * (end - self._start) / 1e6 / elapsed

    def text(self) -> str:
        """Format as ``CPU pressure 42% (some, over the run)``."""
        if self.percent is None:
            return "CPU pressure n/a (no /proc/pressure/cpu)"
        return f"CPU pressure {self.percent:.0f}% (PSI some, over the run)"


def verdict(value: Spread, target: float, at_most: bool = True) -> str:
    """Say whether the median meets the target, and whether its confidence interval settles it."""
    def meets(x: float) -> bool:
        return x <= target if at_most else x >= target

    worst, best = (value.high, value.low) if at_most else (value.low, value.high)
    if meets(value.median):
        return "met" if meets(worst) else "met by the median (its interval reaches past the target)"
    return "**not met**" if not meets(best) else "**not met** by the median (its interval reaches the target)"
