"""The benchmarks' spread and CPU-pressure helpers (pure arithmetic and one /proc read)."""

from __future__ import annotations

import pytest

from bench.spread import Pressure, pair_ratios, spread


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
