"""Statistics of the benchmark harness on synthetic samples: summaries, the bootstrap
interval of a ratio of medians (known ratios, identical arms, coverage), calibration."""

from __future__ import annotations

import numpy as np
import pytest

from conductor_magics.engine.stats import (
    FASTER,
    NO_CHANGE,
    SLOWER,
    RatioInterval,
    calibrate_loops,
    ratio_interval,
    summarize,
    verdict_of,
)
from conductor_magics.errors import ConductorError


def lognormal(rng: np.random.Generator, median: float, n: int, sigma: float = 0.1) -> np.ndarray:
    return rng.lognormal(np.log(median), sigma, n)


def with_outliers(rng: np.random.Generator, median: float, n: int) -> np.ndarray:
    """Timing-like samples: small jitter plus 10 % of samples hit by a large delay."""
    return median * (1 + rng.exponential(0.05, n) + (rng.random(n) < 0.1) * rng.exponential(1.0, n))


# --------------------------------------------------------------------------- summaries


def test_summary_matches_numpy_percentiles():
    samples = lognormal(np.random.default_rng(7), 2e-3, 41, sigma=0.4)
    summary = summarize(list(samples))
    q1, median, q3, p95 = np.percentile(samples, [25, 50, 75, 95])
    assert summary.n == 41
    assert summary.min == pytest.approx(samples.min())
    assert summary.median == pytest.approx(median)
    assert (summary.q1, summary.q3) == (pytest.approx(q1), pytest.approx(q3))
    assert summary.iqr == pytest.approx(q3 - q1)
    assert summary.p95 == pytest.approx(p95)
    assert summary.mean == pytest.approx(samples.mean())
    assert summary.min <= summary.q1 <= summary.median <= summary.q3 <= summary.p95
    assert set(summary.to_json()) == {"n", "min", "median", "q1", "q3", "iqr", "p95", "mean"}


def test_summary_of_one_sample_and_of_constant_samples():
    one = summarize([0.004])
    assert (one.n, one.min, one.median, one.p95, one.iqr) == (1, 0.004, 0.004, 0.004, 0.0)
    constant = summarize([0.002] * 9)
    assert constant.iqr == 0.0 and constant.median == 0.002 and constant.p95 == 0.002


@pytest.mark.parametrize("bad", [[], [0.001, float("nan")], [float("inf")]])
def test_summary_refuses_empty_or_non_finite_samples(bad):
    with pytest.raises(ConductorError):
        summarize(bad)


# --------------------------------------------------------------------------- ratio interval


def test_a_two_times_faster_arm_is_detected_with_an_interval_around_two():
    rng = np.random.default_rng(1)
    baseline, arm = lognormal(rng, 2e-3, 30), lognormal(rng, 1e-3, 30)
    result = ratio_interval(baseline, arm)
    assert isinstance(result, RatioInterval)
    assert result.verdict == FASTER
    assert result.ratio == pytest.approx(np.median(baseline) / np.median(arm))
    assert result.low <= result.ratio <= result.high
    assert 1.7 < result.low < 2.0 < result.high < 2.3
    assert result.confidence == 0.95


def test_a_one_and_a_half_times_slower_arm_is_slower():
    rng = np.random.default_rng(2)
    baseline, arm = with_outliers(rng, 1e-3, 30), with_outliers(rng, 1.5e-3, 30)
    result = ratio_interval(baseline, arm)
    assert result.verdict == SLOWER
    assert result.high < 1
    assert result.ratio == pytest.approx(1 / 1.5, rel=0.1)


@pytest.mark.parametrize("make", [lognormal, with_outliers], ids=["lognormal", "outliers"])
def test_identical_arms_show_no_change_in_at_least_93_percent_of_repetitions(make):
    rng = np.random.default_rng(3)
    repetitions = 200
    verdicts = [ratio_interval(make(rng, 1e-3, 30), make(rng, 1e-3, 30), seed=i).verdict
                for i in range(repetitions)]
    coverage = verdicts.count(NO_CHANGE) / repetitions
    assert coverage >= 0.93, f"identical arms: the interval contained 1 in {coverage:.1%}"


def test_a_one_and_a_half_times_slowdown_is_detected_almost_always():
    rng = np.random.default_rng(4)
    detected = [ratio_interval(with_outliers(rng, 1e-3, 20), with_outliers(rng, 1.5e-3, 20),
                               seed=i).verdict == SLOWER for i in range(100)]
    assert sum(detected) >= 95


def test_the_interval_is_reproducible_with_its_seed():
    rng = np.random.default_rng(5)
    baseline, arm = lognormal(rng, 1e-3, 25, 0.3), lognormal(rng, 1e-3, 25, 0.3)
    assert ratio_interval(baseline, arm, seed=9) == ratio_interval(baseline, arm, seed=9)
    assert ratio_interval(baseline, arm, seed=9) != ratio_interval(baseline, arm, seed=10)


def test_a_wider_confidence_gives_a_wider_interval():
    rng = np.random.default_rng(6)
    baseline, arm = lognormal(rng, 1e-3, 25, 0.3), lognormal(rng, 1e-3, 25, 0.3)
    narrow = ratio_interval(baseline, arm, confidence=0.8)
    wide = ratio_interval(baseline, arm, confidence=0.99)
    assert wide.low < narrow.low and narrow.high < wide.high


def test_zero_variance_arms_give_a_point_interval():
    same = ratio_interval([1e-3] * 10, [1e-3] * 10)
    assert (same.ratio, same.low, same.high, same.verdict) == (1.0, 1.0, 1.0, NO_CHANGE)
    halved = ratio_interval([1e-3] * 10, [5e-4] * 10)
    assert (halved.ratio, halved.low, halved.high, halved.verdict) == (2.0, 2.0, 2.0, FASTER)


@pytest.mark.parametrize("baseline, arm", [
    ([1e-3], [1e-3, 2e-3]),              # one sample: no interval
    ([1e-3, 2e-3], []),                  # no samples
    ([1e-3, 0.0], [1e-3, 2e-3]),         # a zero time
    ([1e-3, -1e-3], [1e-3, 2e-3]),       # a negative time
    ([1e-3, float("nan")], [1e-3, 2e-3]),
])
def test_degenerate_inputs_raise_a_clear_error(baseline, arm):
    with pytest.raises(ConductorError) as caught:
        ratio_interval(baseline, arm)
    assert "sample" in str(caught.value)


@pytest.mark.parametrize("kwargs", [{"confidence": 1.0}, {"confidence": 0}, {"resamples": 10}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ConductorError):
        ratio_interval([1e-3, 2e-3], [1e-3, 2e-3], **kwargs)


def test_verdict_boundaries():
    assert verdict_of(1.01, 2.0) == FASTER
    assert verdict_of(1.0, 2.0) == NO_CHANGE  # the interval touches 1
    assert verdict_of(0.5, 0.99) == SLOWER
    assert verdict_of(0.5, 1.0) == NO_CHANGE


# --------------------------------------------------------------------------- calibration


def test_calibration_reaches_the_minimum_sample_time_without_overshooting():
    calls = []

    def time_one(loops: int) -> float:  # 10 µs per execution
        calls.append(loops)
        return loops * 1e-5

    loops = calibrate_loops(time_one, min_seconds=0.001)
    assert loops * 1e-5 >= 0.001
    assert loops <= 150  # aims at the target with a 20 % margin, not at a power of ten
    assert calls[0] == 1 and calls[-2:] == [loops, loops] and len(calls) <= 5


def test_calibration_keeps_one_loop_for_a_slow_query():
    calls = []
    assert calibrate_loops(lambda n: calls.append(n) or 0.005 * n, min_seconds=0.001) == 1
    assert calls == [1, 1]  # confirmed once


def test_one_slow_run_does_not_end_the_calibration():
    times = iter([0.002, 0.0004])  # a hiccup, then the real 0.4 ms per execution

    def time_one(loops: int) -> float:
        return next(times, 0.0004 * loops)

    assert calibrate_loops(time_one, min_seconds=0.001) == 3


def test_calibration_stops_at_the_loop_limit_when_time_does_not_grow():
    assert calibrate_loops(lambda n: 0.0, min_seconds=0.001, max_loops=5000) == 5000


def test_calibration_with_no_minimum_is_one_loop():
    assert calibrate_loops(lambda n: pytest.fail("must not be called"), min_seconds=0) == 1


def test_a_systematic_uncertainty_widens_the_interval_in_quadrature():
    rng = np.random.default_rng(8)
    baseline, arm = lognormal(rng, 1e-3, 30, 0.05), lognormal(rng, 1e-3, 30, 0.05)
    plain = ratio_interval(baseline, arm)
    padded = ratio_interval(baseline, arm, systematic=0.01)
    assert padded.ratio == plain.ratio
    assert padded.low < plain.low and plain.high < padded.high
    pad = 1.959964 * np.log1p(0.01)
    assert np.log(padded.ratio / padded.low) == pytest.approx(
        np.hypot(np.log(plain.ratio / plain.low), pad), rel=1e-6)
    # zero-variance arms: the interval is the systematic part alone, ±1.96 % around 1
    point = ratio_interval([1e-3] * 5, [1e-3] * 5, systematic=0.01)
    assert point.low == pytest.approx(np.exp(-pad)) and point.high == pytest.approx(np.exp(pad))
    assert point.verdict == NO_CHANGE
    # a steady 1.5 % difference between otherwise identical arms is no longer "slower"
    shifted = ratio_interval([1e-3] * 10, [1.015e-3] * 10, systematic=0.01)
    assert ratio_interval([1e-3] * 10, [1.015e-3] * 10).verdict == SLOWER
    assert shifted.verdict == NO_CHANGE
    with pytest.raises(ConductorError):
        ratio_interval(baseline, arm, systematic=-0.1)
