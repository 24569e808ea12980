"""Performance / drift monitor: exact window metrics, the degradation rule, efficiency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastsample.errors import InputError
from fastsample.toolkit.evaluation import evaluate
from fastsample.toolkit.monitor import (
    PerformanceMonitor,
    auc_standard_error,
    calibration_sd,
    kish_ess,
)


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


def test_monitor_parquet_equals_in_memory(tmp_path):
    import polars as pl

    from fastsample.errors import InputError as IE
    from fastsample.toolkit.monitor import monitor_parquet

    rng = np.random.default_rng(7)
    y, p = _stream(rng, 12_000)
    w = rng.uniform(1, 3, len(y))
    path = tmp_path / "scores.parquet"
    pl.DataFrame({"y": y, "p": p, "w": w}).write_parquet(path, row_group_size=1700)
    disk = monitor_parquet(
        path, label="y", score="p", weight="w", window_size=2500, batch_rows=900, flush=True
    )
    mem = PerformanceMonitor(window_size=2500)
    mem.update(y, p, w)
    mem.flush()
    assert len(disk.records) == len(mem.records) == 5
    for a, b in zip(disk.records, mem.records, strict=True):
        for key, value in a.as_dict().items():
            other = b.as_dict()[key]
            if isinstance(value, float):
                assert value == pytest.approx(other, rel=1e-12, nan_ok=True), key
            else:
                assert value == other, key
    with pytest.raises(IE, match="score column 'q'"):
        monitor_parquet(path, label="y", score="q")


def test_calibration_sd_matches_monte_carlo_under_sampling():
    """T = sum_kept w (y - p) for a calibrated model on a negative sample (w = 1/a). Over
    R = 400 replicates the empirical variance of T has relative SE sqrt(2/(R-1)) = 7%; the
    mean estimated variance must agree within 4 of those (28%). The naive
    sum w^2 p (1 - p) (labels only, sampling weights squared) is far too large."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=5000)
    p = 1 / (1 + np.exp(-(-4.0 + x)))
    a0 = np.clip(0.1 * np.exp(x) / np.exp(0.5), 0.01, 1.0)
    ts, est, naive = [], [], []
    for _ in range(400):
        y = (rng.random(5000) < p).astype(float)
        a = np.where(y == 1, 1.0, a0)
        keep = rng.random(5000) < a
        w = 1 / a[keep]
        ts.append(np.sum(w * (y[keep] - p[keep])))
        est.append(calibration_sd(y[keep], p[keep], w) ** 2)
        naive.append(np.sum(w**2 * p[keep] * (1 - p[keep])))
    emp = np.var(ts, ddof=1)
    assert abs(np.mean(est) / emp - 1) < 4 * math.sqrt(2 / 399)
    assert np.mean(naive) > 2 * emp


def test_miscalibration_is_flagged_on_sampled_rows():
    """Only sampled rows are logged (weights 1/a). A stable model raises no flag; a model whose
    probabilities are 2.5x too high is flagged for calibration in every window."""
    rng = np.random.default_rng(9)

    def sampled(n, shift):
        x = rng.normal(size=n)
        p = 1 / (1 + np.exp(-(-4.0 + x)))
        y = (rng.random(n) < p).astype(int)
        a = np.where(y == 1, 1.0, np.clip(0.1 * np.exp(x) / np.exp(0.5), 0.01, 1.0))
        keep = rng.random(n) < a
        served = 1 / (1 + np.exp(-(-4.0 + shift + x)))
        return y[keep], served[keep], a[keep]

    good = PerformanceMonitor(window_size=2000, baseline_windows=2)
    bad = PerformanceMonitor(window_size=2000, baseline_windows=2)
    for _ in range(8):
        y, p, a = sampled(20_000, 0.0)
        good.update(y, p, sampling_prob=a)
        y, p, a = sampled(20_000, math.log(2.5))
        bad.update(y, p, sampling_prob=a)
    assert not any(r.degraded for r in good.records)
    assert all(any(s.startswith("calibration") for s in r.reasons) for r in bad.records)
