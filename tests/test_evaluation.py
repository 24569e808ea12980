"""Weighted metrics: against scikit-learn, closed forms, row repetition and streaming."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve as sk_calibration_curve

from fastsample.errors import InputError
from fastsample.toolkit.evaluation import _HIST_BINS, _LOGIT_RANGE, evaluate, evaluate_parquet
from fastsample.toolkit.metrics import (
    average_precision,
    brier_score,
    calibration_curve,
    expected_calibration_error,
    log_loss,
    normalized_entropy,
    roc_auc,
)
from fastsample.toolkit.plots import plot_evaluation


def _data(n: int = 5000, seed: int = 0, intercept: float = -3.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(intercept + 1.5 * x)))
    y = (rng.random(n) < p).astype(np.int64)
    w = rng.uniform(0.2, 5.0, size=n)
    return y, p, w


def _brute_auc(y, s, w):
    """Weighted Mann–Whitney statistic by explicit pair counting (ties count one half)."""
    pos, neg = y == 1, y == 0
    sp, wp = s[pos][:, None], w[pos][:, None]
    sn, wn = s[neg][None, :], w[neg][None, :]
    num = np.sum(wp * wn * ((sp > sn) + 0.5 * (sp == sn)))
    return num / (w[pos].sum() * w[neg].sum())


# ------------------------------------------------------------------ in-memory metrics


@pytest.mark.parametrize("weighted", [False, True])
def test_metrics_match_sklearn(weighted):
    y, p, w = _data()
    sw = w if weighted else None
    assert roc_auc(y, p, sw) == pytest.approx(skm.roc_auc_score(y, p, sample_weight=sw), abs=1e-12)
    assert average_precision(y, p, sw) == pytest.approx(
        skm.average_precision_score(y, p, sample_weight=sw), abs=1e-12
    )
    assert log_loss(y, p, sw) == pytest.approx(skm.log_loss(y, p, sample_weight=sw), rel=1e-12)
    assert brier_score(y, p, sw) == pytest.approx(
        skm.brier_score_loss(y, p, sample_weight=sw), rel=1e-12
    )


def test_auc_equals_pair_counting_with_ties_and_weights():
    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.2).astype(int)
    s = rng.integers(0, 8, size=n) / 8.0  # many ties
    w = rng.uniform(0.1, 3.0, size=n)
    assert roc_auc(y, s, w) == pytest.approx(_brute_auc(y, s, w), abs=1e-12)


def test_closed_forms_constant_prediction():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])  # base rate 0.2
    r = 0.2
    c = np.full(10, r)
    h = -(r * math.log(r) + (1 - r) * math.log(1 - r))
    assert log_loss(y, c) == pytest.approx(h, rel=1e-12)
    # predicting the base rate everywhere is exactly NE = 1
    assert normalized_entropy(y, c) == pytest.approx(1.0, rel=1e-12)
    assert brier_score(y, c) == pytest.approx(r * (1 - r), rel=1e-12)
    assert roc_auc(y, c) == pytest.approx(0.5)
    # one bin holding everything, perfectly calibrated
    assert expected_calibration_error(y, c) == pytest.approx(0.0, abs=1e-15)


def test_ece_closed_form():
    # two bins (uniform, 2 bins): [0, 0.5] and (0.5, 1]
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.3, 0.2, 0.9, 0.7, 0.8])
    w = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 2.0])
    # bin 0: weight 4, mean p (0.1+0.3+0.4)/4 = 0.2, rate 2/4 = 0.5 -> gap 0.3
    # bin 1: weight 4, mean p (0.9+0.7+1.6)/4 = 0.8, rate 2/4 = 0.5 -> gap 0.3
    cal = calibration_curve(y, p, n_bins=2, sample_weight=w)
    np.testing.assert_allclose(cal.prob_pred, [0.2, 0.8])
    np.testing.assert_allclose(cal.prob_true, [0.5, 0.5])
    np.testing.assert_allclose(cal.weight, [4.0, 4.0])
    assert expected_calibration_error(y, p, n_bins=2, sample_weight=w) == pytest.approx(0.3)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_curve_matches_sklearn_unweighted(strategy):
    y, p, _ = _data(3000, seed=4, intercept=-1.0)
    ours = calibration_curve(y, p, n_bins=8, strategy=strategy)
    true, pred = sk_calibration_curve(y, p, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(ours.prob_true, true, rtol=1e-12)
    np.testing.assert_allclose(ours.prob_pred, pred, rtol=1e-12)


def test_integer_weights_equal_row_repetition():
    """An exact identity: weight k is the same as repeating the row k times."""
    y, p, _ = _data(2000, seed=5, intercept=-2.0)
    k = np.random.default_rng(6).integers(1, 4, size=len(y))
    a = evaluate(y, p, k.astype(float), n_bins=10)
    b = evaluate(np.repeat(y, k), np.repeat(p, k), n_bins=10)
    for name in ("roc_auc", "average_precision", "log_loss", "normalized_entropy", "brier", "ece"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-10), name


def test_pr_auc_is_step_average_precision_not_trapezoid():
    """The tutorial's PR-AUC (`auc(recall, precision)`) interpolates linearly between PR points,
    which PR space does not allow (precision is not linear in recall between thresholds);
    average precision is the step-wise sum sum_k (R_k - R_{k-1}) P_k."""
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1])
    # positives at ranks 1, 5, 10 -> AP = (1/3)(1/1 + 2/5 + 3/10)
    expected = (1.0 + 2.0 / 5.0 + 3.0 / 10.0) / 3.0
    assert average_precision(y, s) == pytest.approx(expected, abs=1e-12)
    prec, rec, _ = skm.precision_recall_curve(y, s)
    trapezoid = skm.auc(rec, prec)
    assert abs(trapezoid - expected) > 0.02


def test_weighted_sample_estimates_population_metrics():
    """Evaluated with inverse-probability weights, metrics on a negative sample estimate the
    population metrics; without weights they do not (log loss and event rate are far off).

    Tolerance: the weighted metrics are ratio (Hajek) estimators sum_kept w l / sum_kept w. With
    Poisson sampling their variance is about (1/N^2) sum_i (1 - a_i)/a_i (l_i - L)^2 (Taylor
    linearisation); we allow 4 standard errors.
    """
    rng = np.random.default_rng(11)
    n = 400_000
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(-4.5 + x)))
    y = (rng.random(n) < p).astype(np.int64)
    a = np.where(y == 1, 1.0, np.clip(0.05 * np.exp(0.5 * x), 0.01, 1.0))
    keep = rng.random(n) < a
    w = 1.0 / a[keep]
    eps = np.finfo(float).eps
    pc = np.clip(p, eps, 1 - eps)
    ll_rows = -(y * np.log(pc) + (1 - y) * np.log1p(-pc))
    full_ll = ll_rows.mean()
    se = math.sqrt(np.sum((1 - a) / a * (ll_rows - full_ll) ** 2)) / n
    est = log_loss(y[keep], p[keep], w)
    assert abs(est - full_ll) < 4 * se
    rate_se = math.sqrt(np.sum((1 - a) / a * (y - y.mean()) ** 2)) / n
    res = evaluate(y[keep], p[keep], w)
    assert abs(res.event_rate - y.mean()) < 4 * rate_se
    # the unweighted sample metric is hopelessly biased (more than 50 standard errors)
    assert abs(log_loss(y[keep], p[keep]) - full_ll) > 50 * se


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("y", "p", "w", "needle"),
    [
        ([0, 2], [0.1, 0.2], None, "label"),
        ([0, 1], [0.1, 1.2], None, "1.2"),
        ([0, 1], [0.1, float("nan")], None, "score"),
        ([0, 1], [0.1, 0.2], [1.0, -1.0], "-1.0"),
        ([0, 1, 1], [0.1, 0.2], None, "rows"),
        ([], [], None, "no rows"),
    ],
)
def test_bad_input_raises_one_line(y, p, w, needle):
    with pytest.raises(InputError) as info:
        evaluate(y, p, w)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_bad_strategy():
    y, p, _ = _data(100)
    with pytest.raises(InputError, match="strategy"):
        evaluate(y, p, strategy="nope")


# ------------------------------------------------------------------ streaming


@pytest.fixture
def scores_file(tmp_path):
    y, p, w = _data(20_000, seed=8, intercept=-3.5)
    path = tmp_path / "scores.parquet"
    pl.DataFrame({"y": y, "p": p, "w": w}).write_parquet(path, row_group_size=3000)
    return path, y, p, w


def test_streaming_exact_equals_in_memory(scores_file):
    path, y, p, w = scores_file
    a = evaluate_parquet(path, label="y", score="p", weight="w", method="exact")
    b = evaluate(y, p, w)
    assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize("weighted", [False, True])
def test_histogram_mode_bounds_and_sums(scores_file, weighted):
    path, y, p, w = scores_file
    sw = w if weighted else None
    h = evaluate_parquet(
        path, label="y", score="p", weight="w" if weighted else None, method="histogram"
    )
    e = evaluate(y, p, sw)
    assert h.method == "histogram" and h.n_rows == len(y)
    # AUC: exact for the binned score; the tie bound covers the difference to the exact AUC
    assert abs(h.roc_auc - e.roc_auc) <= h.auc_tie_bound + 1e-12
    assert h.auc_tie_bound < 1e-3
    for name in ("log_loss", "brier", "event_rate", "mean_score", "normalized_entropy", "ece"):
        assert getattr(h, name) == pytest.approx(getattr(e, name), rel=1e-9), name
    np.testing.assert_allclose(h.calibration.prob_true, e.calibration.prob_true, rtol=1e-9)


def test_histogram_is_exact_for_scores_on_the_grid(tmp_path):
    """When every score sits at a bin centre, binning loses nothing: AUC and AP are exact."""
    rng = np.random.default_rng(9)
    n = 5000
    width = 2 * _LOGIT_RANGE / _HIST_BINS
    centres = -_LOGIT_RANGE + width * (
        rng.integers(_HIST_BINS // 2 - 400, _HIST_BINS // 2 + 400, n) + 0.5
    )
    p = 1.0 / (1.0 + np.exp(-centres))
    y = (rng.random(n) < 0.3).astype(int)
    w = rng.uniform(0.5, 2.0, n)
    path = tmp_path / "grid.parquet"
    pl.DataFrame({"y": y, "p": p, "w": w}).write_parquet(path)
    h = evaluate_parquet(path, label="y", score="p", weight="w", method="histogram")
    assert h.roc_auc == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w), abs=1e-12)
    assert h.average_precision == pytest.approx(
        skm.average_precision_score(y, p, sample_weight=w), abs=1e-12
    )


def test_streaming_reads_directories_and_lists(tmp_path):
    y, p, _ = _data(3000, seed=12)
    (tmp_path / "d").mkdir()
    for i in range(3):
        sl = slice(i * 1000, (i + 1) * 1000)
        pl.DataFrame({"y": y[sl], "p": p[sl]}).write_parquet(tmp_path / "d" / f"part{i}.parquet")
    a = evaluate_parquet(tmp_path / "d", label="y", score="p", method="exact")
    b = evaluate_parquet(str(tmp_path / "d" / "*.parquet"), label="y", score="p")
    assert a.roc_auc == pytest.approx(roc_auc(y, p), abs=1e-12)
    assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize("method", ["exact", "histogram"])
def test_streaming_errors_name_file_and_column(tmp_path, method):
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"y": [0, 1, 2], "p": [0.1, 0.5, 0.2]}).write_parquet(path)
    with pytest.raises(InputError, match=r"bad\.parquet.*'y'|bad\.parquet.*label"):
        evaluate_parquet(path, label="y", score="p", method=method)
    with pytest.raises(InputError, match=r"score column 'score' not found in .*bad\.parquet"):
        evaluate_parquet(path, label="y", score="score", method=method)
    with pytest.raises(InputError, match=r"missing\.parquet.*does not exist"):
        evaluate_parquet(tmp_path / "missing.parquet", label="y", score="p", method=method)
    pl.DataFrame({"y": [0, 1], "p": [0.1, 1.5]}).write_parquet(path)
    with pytest.raises(InputError, match=r"1\.5"):
        evaluate_parquet(path, label="y", score="p", method=method)


# ------------------------------------------------------------------ plots


def test_plot_writes_png_atomically(tmp_path, scores_file):
    path, y, p, w = scores_file
    for res in (
        evaluate(y, p, w),
        evaluate_parquet(path, label="y", score="p", method="histogram"),
    ):
        out = tmp_path / f"eval-{res.method}.png"
        assert plot_evaluation(res, out) == str(out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".fastsample-")]


def test_plot_without_matplotlib_gives_install_hint(monkeypatch, tmp_path):
    y, p, w = _data(200)
    res = evaluate(y, p, w)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"fastsample\[plot\]"):
        plot_evaluation(res, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_refuses_existing_file_without_overwrite(tmp_path):
    y, p, w = _data(300)
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    with pytest.raises(InputError, match="already exists"):
        plot_evaluation(evaluate(y, p, w), out, overwrite=False)
    assert out.read_bytes() == b"precious"
    plot_evaluation(evaluate(y, p, w), out)  # the Python default replaces it
    assert out.read_bytes()[:4] == b"\x89PNG"
