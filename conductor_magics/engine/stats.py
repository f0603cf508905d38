"""Statistics for timing samples: per-arm summaries and a bootstrap interval for a speed-up.

The benchmark harness (``bench.py``) collects, per arm, a list of per-execution times in
seconds. :func:`summarize` describes one arm; :func:`ratio_interval` compares an arm with
the baseline as the ratio of medians ``median(baseline) / median(arm)`` (the arm's
speed-up: above 1 the arm is faster) with a percentile-bootstrap confidence interval.

Why this method. Timings are skewed with a heavy right tail (a scheduler hiccup makes one
sample ten times slower), so the median is the location estimate, and no parametric
interval fits it. The percentile bootstrap resamples each arm independently (the arms are
independent samples), takes the median of each resample and the quantiles of the log
ratio of those medians (log: the ratio is scale-free, and percentile intervals do not
change under a monotone transform, so this is the same interval as for the ratio itself).

Its coverage was measured before choosing it (identical arms, 400 seeded repetitions,
n = 10, 20, 30, 50; lognormal σ = 0.1 and 0.5, and a 1 ms base with exponential jitter
plus 10 % of large outliers): the interval contained 1 in 95.0–97.2 % of repetitions,
slightly conservative because the bootstrap distribution of a median is discrete. BCa
(bias-corrected and accelerated, jackknife acceleration) gave 93.5–96.5 %, i.e. no
better, and a smoothed bootstrap (Gaussian kernel noise) gave 96.8–98.8 % with wider
intervals, i.e. less power. So the plain percentile bootstrap stays.

Systematic differences. The bootstrap sees only sampling noise. Real arms also differ
in ways that no amount of sampling removes: in the benchmark harness, two SQLite arms
with the *same plan* (one of them runs a DROP INDEX that is rolled back before the
query) differed by 0.5–2.7 % (median ratio per process), always the arm without DDL
slower, and only for queries that scan many rows (a point query or an index search
showed none). So real identical arms got "no change" in only 81 % of runs with wall-
clock samples (8 processes × 20 runs) and 15 % with CPU-time samples (150 runs, whose
intervals are much narrower). The cause was not found (plain ``sqlite3`` loops show
differences of either sign from process to process; priming twice, pausing the garbage
collector or rolling back through the driver did not remove it). ``systematic`` (a
relative standard deviation, e.g. 0.02 for 2 %) adds that uncertainty to the interval
in quadrature on the log scale: each half-width becomes ``sqrt(bootstrap_half_width² +
(z · log(1 + systematic))²)``. Coverage with 0 / 1 % / 1.5 % / 2 %: 81 / 92 / 96 /
97.5 % (wall clock), and 96 % with 2 % on the CPU-time runs. The harness uses 2 % on
SQLite and on PostgreSQL (``bench.SYSTEMATIC``; PostgreSQL showed no offset on a full
scan, 1.6–1.7 % on a ~0.5 ms index search);
``ratio_interval`` defaults to 0 (pure sampling error) for synthetic samples.

Paired blocks (``paired=True``). The harness runs every arm once per block, in a shuffled
order, so sample *i* of each arm comes from the same block. On a busy machine the load
changes from block to block (measured on 2 shared cores with a load of 6–9: PostgreSQL
per-execution times of one run spread over 40 µs–800 µs, and the bootstrap, which takes
the arms as independent samples, gave identical arms a verdict in 11 of 240 runs, 4.6 %).
Within a block the arms' order is random, so for identical arms each block's log ratio is
as likely above as below 0 whatever the load did: the sign test's interval for the median
of those per-block ratios (order statistics of a Binomial(n, ½)) holds its coverage
exactly, with no assumption about the noise. With ``paired`` the interval is the union
of that one (widened by ``systematic`` alike) and the bootstrap's, so a verdict needs
both to agree; the same 240 runs then gave 5 verdicts (2.1 %). The price is power on a
busy machine: there a 1.5× slowdown was caught in 13–17 % of runs instead of 13–32 %
(both poor: samples of one run differed 10×); on a quiet one both intervals are narrow.
Below 6 blocks the sign test cannot reach 95 %: the bootstrap's interval alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from ..errors import ConductorError

FASTER, SLOWER, NO_CHANGE = "faster", "slower", "no change"

#: calibration never runs more executions than this per sample (a query that takes
#: nanoseconds would otherwise loop for ever if the timer returned 0)
MAX_LOOPS = 1_000_000


@dataclass(frozen=True)
class Summary:
    """Distribution of one arm's samples (seconds). Quartiles and p95 use numpy's
    default (linear) interpolation, like ``numpy.percentile``."""

    n: int
    min: float
    median: float
    q1: float
    q3: float
    iqr: float
    p95: float
    mean: float

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class RatioInterval:
    """``ratio = median(baseline) / median(arm)`` with its confidence interval.

    ``verdict`` is "faster" when the whole interval lies above 1, "slower" when it lies
    below 1, else "no change"."""

    ratio: float
    low: float
    high: float
    confidence: float
    verdict: str

    def to_json(self) -> dict[str, float | str]:
        return asdict(self)


def _as_samples(samples: Sequence[float] | np.ndarray, what: str = "samples") -> np.ndarray:
    values = np.asarray(samples, dtype=float).ravel()
    if values.size == 0:
        raise ConductorError(f"no {what} to summarise", hint="run at least one timed sample")
    if not np.all(np.isfinite(values)):
        raise ConductorError(f"{what} contain NaN or infinite values",
                             hint="timings must be finite numbers of seconds")
    return values


def summarize(samples: Sequence[float] | np.ndarray) -> Summary:
    """n, min, median, quartiles, IQR, p95 and mean of ``samples``.

    One sample gives a summary where every statistic is that value and the IQR is 0;
    no samples raise ConductorError."""
    values = _as_samples(samples)
    q1, median, q3, p95 = np.percentile(values, [25, 50, 75, 95])
    return Summary(n=int(values.size), min=float(values.min()), median=float(median),
                   q1=float(q1), q3=float(q3), iqr=float(q3 - q1), p95=float(p95),
                   mean=float(values.mean()))


def verdict_of(low: float, high: float) -> str:
    """"faster" when the interval is above 1, "slower" when below 1, else "no change"."""
    if low > 1:
        return FASTER
    if high < 1:
        return SLOWER
    return NO_CHANGE


def sign_test_interval(log_ratios: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Distribution-free interval for the median of ``log_ratios`` (order statistics
    whose coverage a Binomial(n, ½) gives exactly, at least ``confidence``); None when
    there are too few values to reach it."""
    values = np.sort(log_ratios)
    n = values.size
    alpha = (1 - confidence) / 2
    # the largest k with P(Binomial(n, 1/2) <= k - 1) <= alpha: [x_(k), x_(n+1-k)]
    k, below = 0, 0.0
    while k < n // 2:
        below_next = below + math.comb(n, k) / 2 ** n
        if below_next > alpha:
            break
        below, k = below_next, k + 1
    if k == 0:
        return None
    return float(values[k - 1]), float(values[n - k])


def ratio_interval(baseline: Sequence[float] | np.ndarray, arm: Sequence[float] | np.ndarray,
                   *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
                   systematic: float = 0.0, paired: bool = False) -> RatioInterval:
    """Speed-up of ``arm`` over ``baseline`` (ratio of medians) with a percentile
    bootstrap interval at ``confidence`` (see the module docstring for why this method),
    widened by a ``systematic`` relative uncertainty between arms (0: none). ``paired``:
    sample *i* of both arms comes from block *i*; the interval is then the union with the
    sign-test interval of the per-block ratios (module docstring: "Paired blocks").

    Each arm needs at least two positive samples; ``seed`` makes the interval
    reproducible."""
    if not 0 < confidence < 1:
        raise ConductorError(f"confidence must be between 0 and 1, not {confidence}")
    if not 0 <= systematic < 1:
        raise ConductorError(f"systematic must be a fraction between 0 and 1, not {systematic}")
    if resamples < 100:
        raise ConductorError(f"{resamples} bootstrap resamples are too few",
                             hint="use at least 100 (the default is 2000)")
    base = _as_samples(baseline, "baseline samples")
    other = _as_samples(arm, "arm samples")
    for values, what in ((base, "baseline"), (other, "arm")):
        if values.size < 2:
            raise ConductorError(f"the {what} has {values.size} sample: an interval needs at least 2",
                                 hint="repeat the measurement (10 or more samples per arm)")
        if np.any(values <= 0):
            raise ConductorError(f"the {what} has a sample <= 0 s: timings must be positive")
    rng = np.random.default_rng(seed)
    log_base, log_arm = np.log(base), np.log(other)
    # One (resamples × n) index matrix per arm: every resample's median in one numpy call.
    boot_base = np.median(log_base[rng.integers(0, base.size, (resamples, base.size))], axis=1)
    boot_arm = np.median(log_arm[rng.integers(0, other.size, (resamples, other.size))], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.exp(np.quantile(boot_base - boot_arm, [alpha, 1 - alpha]))
    ratio = float(np.median(base) / np.median(other))
    # The interval always holds the point estimate (it can fall just outside when the
    # bootstrap distribution is very discrete, e.g. with tied samples).
    low, high = min(float(low), ratio), max(float(high), ratio)
    pad = NormalDist().inv_cdf(1 - alpha) * math.log1p(systematic)
    if systematic:
        low = ratio * math.exp(-math.hypot(math.log(ratio / low), pad))
        high = ratio * math.exp(math.hypot(math.log(high / ratio), pad))
    if paired:
        if base.size != other.size:
            raise ConductorError(f"paired samples need one per block in each arm, got "
                                 f"{base.size} and {other.size}")
        blockwise = sign_test_interval(log_base - log_arm, confidence)
        if blockwise is not None:
            # widened by the systematic term like the bootstrap's (in quadrature about the
            # per-block median), then the union of both intervals
            centre = float(np.median(log_base - log_arm))
            block_low = centre - math.hypot(centre - blockwise[0], pad)
            block_high = centre + math.hypot(blockwise[1] - centre, pad)
            low, high = min(low, math.exp(block_low)), max(high, math.exp(block_high))
    return RatioInterval(ratio=ratio, low=low, high=high, confidence=confidence,
                         verdict=verdict_of(low, high))


def calibrate_loops(time_one: Callable[[int], float], min_seconds: float = 0.001,
                    max_loops: int = MAX_LOOPS) -> int:
    """How many executions one sample needs to last at least ``min_seconds``.

    ``time_one(loops)`` runs the work ``loops`` times and returns the seconds it took.
    Starts at one loop and grows from the measured time per loop (with 20 % margin, at
    most ×100 per step so one fast outlier does not overshoot), until a run lasts
    ``min_seconds`` twice in a row (one run slowed down by something else does not
    count); like ``timeit.Timer.autorange`` but aiming at the target directly."""
    if min_seconds <= 0:
        return 1
    loops = 1
    while True:
        elapsed = time_one(loops)
        if elapsed >= min_seconds:
            elapsed = min(elapsed, time_one(loops))
            if elapsed >= min_seconds:
                return loops
        if loops >= max_loops:
            return loops
        per_loop = elapsed / loops
        wanted = int(np.ceil(min_seconds / per_loop * 1.2)) if per_loop > 0 else loops * 100
        loops = int(min(max(wanted, loops + 1), loops * 100, max_loops))
