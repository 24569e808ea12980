"""Performance / drift monitor: exact window metrics, the degradation rule, efficiency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastsample.errors import InputError
from fastsample.evaluation import evaluate
from fastsample.monitor import PerformanceMonitor, auc_standard_error, kish_ess


def _stream(rng, n, *, intercept=-3.0, slope=1.5, model_slope=None, model_intercept=None):
    """Rows with true probability sigmoid(intercept + slope x) and a model's score."""
    x = rng.normal(size=n)
    p_true = 1.0 / (1.0 + np.exp(-(intercept + slope * x)))
    y = (rng.random(n) < p_true).astype(np.int64)
    ms = slope if model_slope is None else model_slope
    mi = intercept if model_intercept is None else model_intercept
    score = 1.0 / (1.0 + np.exp(-(mi + ms * x)))
    return y, score


def test_kish_ess_closed_forms():
    assert kish_ess(np.ones(37)) == pytest.approx(37.0)
    assert kish_ess([1.0, 3.0]) == pytest.approx(16.0 / 10.0)
    assert kish_ess([0.0, 0.0]) == 0.0


def test_hanley_mcneil_closed_form():
    # A = 0.5: Q1 = 1/3, Q2 = 1/3, var = (0.25 + (n1-1)/12 + (n0-1)/12) / (n1 n0)
    n1, n0 = 10, 40
    expected = math.sqrt((0.25 + (n1 - 1) / 12 + (n0 - 1) / 12) / (n1 * n0))
    assert auc_standard_error(0.5, n1, n0) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(auc_standard_error(0.7, 0, 10))


def test_windows_are_exact_and_memory_is_bounded():
    rng = np.random.default_rng(0)
    y, p = _stream(rng, 10_500)
    w = rng.uniform(1.0, 4.0, size=len(y))
    seen = []
    mon = PerformanceMonitor(window_size=1000, on_record=seen.append)
    # uneven batches: windows straddle batch boundaries
    cuts = np.cumsum(rng.integers(1, 700, size=100))
    cuts = cuts[cuts < len(y)]
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(y)], strict=True):
        mon.update(y[a:b], p[a:b], w[a:b])
        assert mon._buffered < mon.window_size
    assert len(mon.records) == 10 and seen == mon.records
    assert [r.window for r in mon.records] == list(range(10))
    for rec in mon.records:
        sl = slice(rec.first_row, rec.first_row + rec.rows)
        ref = evaluate(y[sl], p[sl], w[sl])
        assert rec.roc_auc == pytest.approx(ref.roc_auc, abs=1e-12)
        assert rec.ece == pytest.approx(ref.ece, abs=1e-12)
        assert rec.event_rate == pytest.approx(ref.event_rate, rel=1e-12)
        assert rec.ess == pytest.approx(kish_ess(w[sl]), rel=1e-12)
    tail = mon.flush()
    assert len(tail) == 1 and tail[0].rows == 500


def test_stable_stream_raises_no_flag():
    rng = np.random.default_rng(1)
    mon = PerformanceMonitor(window_size=5000)
    for _ in range(20):
        mon.update(*_stream(rng, 5000))
    assert not any(r.degraded for r in mon.records), [r.reasons for r in mon.records]
    assert mon.baseline is not None


def test_auc_drop_is_flagged_where_the_tutorial_rule_is_silent():
    """After 5 good windows the features lose most of their signal (true slope 1.5 -> 0.5,
    the model still uses 1.5). The monitor flags the first degraded window; the tutorial's rule
    (mean AUC of the last 10 calls < 0.9 x the mean over all calls, checked only after 1000
    calls) stays silent."""
    rng = np.random.default_rng(2)
    mon = PerformanceMonitor(window_size=5000, baseline_windows=3)
    for _ in range(5):
        mon.update(*_stream(rng, 5000))
    first_bad = mon.update(*_stream(rng, 5000, slope=0.5, model_slope=1.5, intercept=-3.0))[0]
    assert first_bad.degraded and any(r.startswith("auc") for r in first_bad.reasons)
    aucs = [r.roc_auc for r in mon.records]
    tutorial_flags = len(aucs) >= 1000 and np.mean(aucs[-10:]) < 0.9 * np.mean(aucs)
    assert not tutorial_flags
    # and the drop really is large: about 0.2 of AUC
    assert mon.baseline["auc"] - first_bad.roc_auc > 0.1


def test_calibration_and_event_rate_shift_are_flagged():
    rng = np.random.default_rng(3)
    mon = PerformanceMonitor(window_size=5000)
    for _ in range(3):
        mon.update(*_stream(rng, 5000))
    # the event rate roughly doubles (intercept +0.8) but the model is unchanged
    rec = mon.update(*_stream(rng, 5000, intercept=-2.2, model_intercept=-3.0))[0]
    kinds = {r.split(":")[0] for r in rec.reasons}
    assert {"calibration", "event rate"} <= kinds
    assert rec.degraded and rec.event_rate_shift
    assert rec.calibration_ratio > 1.5


def test_predicted_event_rate_shift_is_drift_not_degradation():
    """The event rate doubles and the model knows it (its intercept moved too): the record
    notes the shift but the model is not marked degraded."""
    rng = np.random.default_rng(6)
    mon = PerformanceMonitor(window_size=5000)
    for _ in range(3):
        mon.update(*_stream(rng, 5000))
    rec = mon.update(*_stream(rng, 5000, intercept=-2.2))[0]
    assert rec.event_rate_shift and not rec.degraded


def test_kept_fraction_is_horvitz_thompson_not_mean_of_kept_probs():
    """Kept fraction n / sum(1/a) estimates (rows kept) / (rows seen). The tutorial's
    `mean(sampling_probs)` over kept rows is biased upward because kept rows are those with
    large a. Tolerance: the relative SE of the HT row total is sqrt(sum (1-a)/a) / N; 4 SE."""
    rng = np.random.default_rng(4)
    n = 50_000
    y, p = _stream(rng, n)
    a = np.where(y == 1, 1.0, np.clip(0.02 * np.exp(1.2 * rng.normal(size=n)), 0.001, 1.0))
    keep = rng.random(n) < a
    mon = PerformanceMonitor(window_size=int(keep.sum()))
    rec = mon.update(y[keep], p[keep], sampling_prob=a[keep])[0]
    true_fraction = keep.sum() / n
    rel_se = math.sqrt(np.sum((1 - a) / a)) / n
    assert abs(rec.kept_fraction / true_fraction - 1) < 4 * rel_se
    assert np.mean(a[keep]) > 3 * true_fraction  # the tutorial's "efficiency"
    # with the real count of rows seen, the fraction is exact
    mon2 = PerformanceMonitor(window_size=int(keep.sum()))
    rec2 = mon2.update(y[keep], p[keep], sampling_prob=a[keep], rows_seen=n)[0]
    assert rec2.kept_fraction == pytest.approx(true_fraction, rel=1e-12)


def test_set_baseline_and_output(tmp_path):
    rng = np.random.default_rng(5)
    mon = PerformanceMonitor(window_size=2000, baseline_windows=100)
    mon.set_baseline(*_stream(rng, 20_000))
    for _ in range(3):
        mon.update(*_stream(rng, 2000))
    mon.update(*_stream(rng, 2000, slope=0.3, model_slope=1.5))
    assert mon.degraded and not any(r.degraded for r in mon.records[:3])
    df = mon.to_frame()
    assert df.height == 4 and {"roc_auc", "kept_fraction", "ess", "reasons"} <= set(df.columns)
    out = mon.plot(tmp_path / "monitor.png")
    with open(out, "rb") as fh:
        assert fh.read(4) == b"\x89PNG"


def test_bad_input():
    with pytest.raises(InputError, match="window_size"):
        PerformanceMonitor(window_size=1)
    mon = PerformanceMonitor(window_size=10)
    with pytest.raises(InputError, match="sampling_prob"):
        mon.update([0, 1], [0.1, 0.2], sampling_prob=[0.0, 1.0])
    with pytest.raises(InputError, match="no complete window"):
        mon.plot("unused.png")
