"""The benchmarks' spread and CPU-pressure helpers (pure arithmetic and one /proc read)."""

from __future__ import annotations

import pytest

from tests.bench_support.spread import Pressure, median_interval, pair_ratios, spread, verdict


def test_spread_is_the_median_and_quartiles() -> None:
    s = spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median, s.q1, s.q3, s.n) == (3.0, 2.0, 4.0, 5)
    assert s.text() == "3.00 (IQR 2.00–4.00, n=5)"
    assert spread([0.0125]).text(0, 1000, " ms") == "12 ms (IQR 12–12, n=1)"
    with pytest.raises(ValueError):
        spread([])


def test_pair_ratios_divide_pair_by_pair() -> None:
    # Medians of each side would say 2.0 / 2.0 = 1.0; the pairs say the first side is slower each time.
    ratios = pair_ratios([1.1, 2.2, 3.3], [1.0, 2.0, 3.0])
    assert ratios.median == pytest.approx(1.1) and ratios.q1 == pytest.approx(1.1)
    with pytest.raises(ValueError):
        pair_ratios([1.0], [1.0, 2.0])


def test_pressure_reads_the_kernels_cpu_stall_share() -> None:
    with Pressure() as pressure:
        sum(i * i for i in range(200_000))
    assert pressure.percent is not None and 0.0 <= pressure.percent <= 200.0
    assert pressure.text().startswith("CPU pressure ")


@pytest.mark.parametrize(
    ("n", "expected"),
    # [x(j), x(n+1-j)] with the largest j whose coverage 1 - 2 P(Binomial(n, 1/2) < j) is still >= 95%.
    [(1, (1, 1, 0.0)), (3, (1, 3, 0.75)), (5, (1, 5, 0.9375)), (9, (2, 8, 1 - 2 * 10 / 512)),
     (11, (2, 10, 1 - 2 * 12 / 2048)), (21, (6, 16, 1 - 2 * 27896 / 2**21))],
)
def test_the_medians_interval_comes_from_order_statistics(n: int, expected: tuple[float, float, float]) -> None:
    low, high, coverage = median_interval(list(range(n, 0, -1)))  # any order
    assert (low, high) == expected[:2] and coverage == pytest.approx(expected[2])
    assert spread(list(range(1, n + 1))).interval(0) == f"{expected[0]}–{expected[1]} ({100 * expected[2]:.0f}%)"


def test_a_verdict_says_when_the_interval_does_not_settle_it() -> None:
    assert verdict(spread([0.97, 0.98, 0.99, 1.00, 1.01]), 1.02) == "met"
    assert verdict(spread([0.97, 0.99, 1.00, 1.01, 1.05]), 1.02).startswith("met by the median")
    assert verdict(spread([1.00, 1.03, 1.04, 1.05, 1.06]), 1.02).startswith("**not met** by the median")
    assert verdict(spread([1.03, 1.04, 1.05, 1.06, 1.07]), 1.02) == "**not met**"
    assert verdict(spread([1.7, 1.85, 1.9, 1.95, 2.0]), 1.8, at_most=False).startswith("met by the median")
