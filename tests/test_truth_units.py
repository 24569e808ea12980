"""Units of issue 11's truth work: the key sketch, the expected-count tally, the reference sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastsample.core.keysketch import SAMPLE_ABOVE, KeySketch
from fastsample.core.reference import reference_rate, reference_take, relative_error
from fastsample.core.strategies import expected_count, solve_kappa
from fastsample.core.tally import ExpectedTally, rate_warning, tolerance, z_score


def _feed(sketch, words, batch=1 << 18):
    for i in range(0, words.size, batch):
        sketch.add(words[i : i + batch])
    return sketch


@pytest.mark.parametrize("n", [10, 5_000, 300_000, 1_000_000])
def test_unique_keys_are_unique(n):
    words = np.random.default_rng(n).permutation(n).astype(np.uint64) * np.uint64(7919)
    s = _feed(KeySketch(n), words)
    assert s.unique() and s.repeats_in_batches == 0 and s.warning(["id"]) is None
    # HyperLogLog with 4096 registers: 1.6% standard error (5 SE here)
    assert s.distinct() == pytest.approx(n, rel=0.08)


def test_repeats_within_and_across_batches():
    # a column that looks like an id: 153 distinct values in 145,751 rows (issue 11)
    words = np.random.default_rng(0).integers(0, 153, 145_751).astype(np.uint64)
    s = _feed(KeySketch(words.size), words, batch=50_000)
    assert not s.unique()
    assert s.distinct() == pytest.approx(153, rel=0.05)
    assert s.repeats_in_batches > 145_000
    msg = s.warning(["user_id"])
    assert msg is not None and "'user_id' is not unique" in msg and "\n" not in msg
    # every key twice, the copies in different batches: only the sketch can see it
    words = np.concatenate([np.arange(200_000), np.arange(200_000)]).astype(np.uint64)
    s = _feed(KeySketch(words.size), words, batch=200_000)
    assert s.repeats_in_batches == 0 and not s.unique()
    assert s.distinct() == pytest.approx(200_000, rel=0.08)


def test_large_inputs_are_sketched_on_a_hash_sample():
    n = SAMPLE_ABOVE
    words = np.arange(n, dtype=np.uint64) // np.uint64(4)  # every key 4 times, side by side
    s = _feed(KeySketch(n), words)
    assert s.sample_bits > 0 and not s.unique()
    assert s.distinct() == pytest.approx(n // 4, rel=0.08)
    # 3 repeats of each key within its batch: all seen in the 1/16 hash sample, scaled up
    assert s.repeats_in_batches == pytest.approx(3 * n // 4, rel=0.05)


def test_tally_matches_numpy_and_the_z_score():
    rng = np.random.default_rng(3)
    n = 10_000
    h0 = rng.lognormal(size=n)
    h1 = np.where(rng.random(n) < 0.5, -1.0, rng.random(n))
    y = (rng.random(n) < 0.1).astype(np.int8)
    t = ExpectedTally()
    t.add(h0[:4000], h1[:4000], y[:4000], 0.3, 1e-3)
    t.add(h0[4000:], h1[4000:], y[4000:], 0.3, 1e-3)
    a0 = np.clip(0.3 * h0[y == 0], 1e-3, 1.0)
    a1 = np.where(h1[y == 1] < 0, 1.0, np.clip(0.3 * h1[y == 1], 1e-3, 1.0))
    assert t.negatives == pytest.approx(a0.sum(), rel=1e-12)
    assert t.negatives_var == pytest.approx(np.sum(a0 * (1 - a0)), rel=1e-12)
    assert t.positives == pytest.approx(a1.sum(), rel=1e-12)
    assert t.positives_var == pytest.approx(np.sum(a1 * (1 - a1)), rel=1e-12)
    assert z_score(110.0, 100.0, 25.0) == 2.0
    assert z_score(5.0, 5.0, 0.0) == 0.0


def test_rate_warning_names_exact():
    # 10,000 target, SE 60: tolerance max(300, 240) = 300
    assert tolerance(10_000, 3600) == 300
    assert rate_warning(10_000, 10_010, 10_200, 3600, "pilot-sample") is None
    msg = rate_warning(10_000, 12_300, 12_350, 3600, "pilot-sample")
    assert msg is not None and "--exact" in msg and "+23" in msg and "\n" not in msg
    # realised within tolerance but the expected count itself off: still said
    assert rate_warning(10_000, 10_400, 10_150, 3600, "pilot-sample") is not None
    # expected on target, realised far off: chance cannot explain it (not under group sampling)
    msg = rate_warning(10_000, 10_000, 11_000, 3600, "exact")
    assert msg is not None and "key unique" in msg and "z = +16.7" in msg
    assert rate_warning(10_000, 10_000, 11_000, 3600, "exact", grouped=True) is None


def test_reference_sample_is_independent_and_weighted():
    n = 400_000
    y = (np.random.default_rng(0).random(n) < 0.01).astype(np.int8)
    words = np.arange(n, dtype=np.uint64)
    q = reference_rate(int((y == 0).sum()), n_features=12)
    assert q == pytest.approx(200_000 / (y == 0).sum())
    pilot_take = np.zeros(n, dtype=bool)
    pilot_take[::100] = True
    take = reference_take(y, words, 5, q, pilot_take)
    assert not (take & pilot_take).any() and not take[y == 1].any()
    assert take.sum() == pytest.approx(q * 0.99 * (y == 0).sum(), rel=0.01)
    # a different seed: an independent draw (overlap about q^2)
    other = reference_take(y, words, 6, q, pilot_take)
    assert (take & other).sum() / take.sum() == pytest.approx(q * 0.99, abs=0.02)
    # reference byte cap: many features -> fewer rows
    assert reference_rate(10**9, n_features=1000) * 10**9 == pytest.approx((32 << 20) / 8000, 1)


def test_relative_error_tracks_the_spread():
    rng = np.random.default_rng(1)
    N, q = 1_000_000, 0.05
    h = rng.lognormal(sigma=1.5, size=N)
    errs = []
    for _ in range(20):
        m = rng.random(N) < q
        w = np.full(m.sum(), N / m.sum())
        k = solve_kappa(h[m], 0.05 * N, weights=w)
        errs.append(expected_count(h, k) / (0.05 * N) - 1.0)
        est = relative_error(h[m], np.full(m.sum(), 1 / q), k, 2.0**-53)
    sd = float(np.std(errs))
    assert est == pytest.approx(sd, rel=0.5)  # 20 replicates: the SD itself is +-16%
    assert relative_error(np.ones(10), np.ones(10), 0.5, 0.0) == 0.0
    assert math.isinf(relative_error(np.zeros(0), np.zeros(0), 1.0, 0.0))
