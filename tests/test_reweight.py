"""Class reweighting and random undersampling, and the corrections the tutorial left out."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from fastsample.core.correction import correct_log_odds
from fastsample.engines.sinks import read_metadata
from fastsample.errors import InputError
from fastsample.toolkit.reweight import (
    add_class_weight_column,
    balanced_class_weights,
    class_weight_offset,
    correct_class_weighted_proba,
    reweight_parquet,
    undersample,
    undersampling_rate,
)


def _frame(n=40_000, intercept=-4.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    eta = intercept + X @ np.array([1.0, -0.5, 0.25])
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return pl.DataFrame({"id": np.arange(n), "a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})


def test_balanced_weights_match_sklearn_and_balance_the_classes():
    y = _frame()["y"].to_numpy()
    w = balanced_class_weights(y)
    ref = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    assert w == {0: pytest.approx(ref[0], rel=1e-15), 1: pytest.approx(ref[1], rel=1e-15)}
    n, n1 = len(y), y.sum()
    assert w[1] == pytest.approx(n / (2 * n1), rel=1e-15)
    # after weighting both classes carry n / 2
    assert w[1] * n1 == pytest.approx(n / 2) and w[0] * (n - n1) == pytest.approx(n / 2)
    assert class_weight_offset(w) == pytest.approx(math.log((n - n1) / n1), rel=1e-12)


def test_intercept_only_model_is_corrected_exactly():
    """Closed form: an intercept-only logistic model fitted with class weights has
    logit q = log(w1 N1 / (w0 N0)); subtracting log(w1 / w0) gives logit(N1 / N) exactly. The
    tutorial serves q itself: 0.5 for balanced weights whatever the true event rate."""
    df = _frame()
    y = df["y"].to_numpy()
    w = balanced_class_weights(y)
    X0 = np.zeros((len(y), 1))
    model = LogisticRegression(C=np.inf, class_weight=w, tol=1e-10, max_iter=1000).fit(X0, y)
    raw = model.predict_proba(X0[:1])[0, 1]
    assert raw == pytest.approx(0.5, abs=1e-6)  # what the tutorial would report
    fixed = correct_class_weighted_proba([raw], w)[0]
    assert fixed == pytest.approx(y.mean(), rel=1e-5)


def test_weighted_logistic_regression_example_is_calibrated_after_correction():
    """Weighted LogisticRegression (the tutorial's model): raw probabilities average ~0.5;
    corrected ones average the event rate. With a well-specified model the corrected mean
    matches the population rate up to the estimation noise of the intercept, which is about
    1/sqrt(N1) in log-odds (N1 ~ 900 here, so ~3.3%); we allow 4 SE (13%) relative error."""
    df = _frame(seed=1)
    X, y = df.select("a", "b", "c").to_numpy(), df["y"].to_numpy()
    w = balanced_class_weights(y)
    model = LogisticRegression(C=np.inf, class_weight=w, max_iter=1000).fit(X, y)
    raw = model.predict_proba(X)[:, 1]
    fixed = correct_class_weighted_proba(raw, w)
    assert raw.mean() > 10 * y.mean()
    assert abs(fixed.mean() / y.mean() - 1) < 4 / math.sqrt(y.sum())
    np.testing.assert_allclose(model.coef_[0], [1.0, -0.5, 0.25], atol=0.25)


def test_class_weight_column_in_memory_and_parquet(tmp_path):
    df = _frame(5000)
    out = add_class_weight_column(df, label="y")
    w = balanced_class_weights(df["y"].to_numpy())
    expected = np.where(df["y"].to_numpy() == 1, w[1], w[0])
    np.testing.assert_array_equal(out["class_weight"].to_numpy(), expected)
    assert (
        add_class_weight_column(df.to_pandas(), label="y", class_weight={0: 1, 1: 7})[
            "class_weight"
        ].tolist()
        == np.where(df["y"].to_numpy() == 1, 7.0, 1.0).tolist()
    )
    for i in range(2):
        df[i * 2500 : (i + 1) * 2500].write_parquet(tmp_path / f"part{i}.parquet")
    target = tmp_path / "out" / "weighted.parquet"
    target.parent.mkdir()
    info = reweight_parquet(tmp_path / "part*.parquet", target, label="y", batch_rows=700)
    disk = pl.read_parquet(target)
    assert disk.drop("class_weight").equals(df)
    np.testing.assert_allclose(disk["class_weight"].to_numpy(), expected, rtol=1e-15)
    meta = read_metadata(target)
    assert meta["log_odds_shift"] == pytest.approx(class_weight_offset(w))
    assert info["rows"] == 5000
    with pytest.raises(InputError, match="already exists"):
        reweight_parquet(tmp_path / "part*.parquet", target, label="y")
    with pytest.raises(InputError, match="class 1 is absent"):
        balanced_class_weights(np.zeros(10))


def test_undersampling_counts_reproducibility_and_keys():
    df = _frame(60_000, seed=2)
    y = df["y"].to_numpy()
    n1, n0 = y.sum(), len(y) - y.sum()
    out, info = undersample(
        df, label="y", negatives_per_positive=2.0, seed=7, key="id", return_info=True
    )
    rate = undersampling_rate(n1, n0, 2.0)
    assert rate == pytest.approx(2.0 * n1 / n0)
    assert info["positives_out"] == n1  # every positive kept
    # kept negatives ~ Binomial(N0, rate): 4 standard errors
    assert abs(info["negatives_out"] - rate * n0) < 4 * math.sqrt(n0 * rate * (1 - rate))
    np.testing.assert_allclose(out["log_odds_offset"].to_numpy(), -math.log(rate))
    # reproducible, and keyed: shuffling the rows keeps the same ids
    again = undersample(df, label="y", negatives_per_positive=2.0, seed=7, key="id")
    assert again.equals(out)
    shuffled = undersample(
        df.sample(fraction=1.0, shuffle=True, seed=3),
        label="y",
        negatives_per_positive=2.0,
        seed=7,
        key="id",
    )
    assert sorted(shuffled["id"].to_list()) == sorted(out["id"].to_list())
    other = undersample(df, label="y", negatives_per_positive=2.0, seed=8, key="id")
    assert sorted(other["id"].to_list()) != sorted(out["id"].to_list())


def test_undersampled_model_needs_the_offset():
    """The tutorial fits on RandomUnderSampler output and serves raw probabilities; the
    post-hoc correction (exact here: uniform rate, logistic model) restores the event rate.
    Tolerance as above: 4 / sqrt(N1) relative."""
    df = _frame(80_000, seed=3)
    sample = undersample(df, label="y", negatives_per_positive=1.0, seed=1, key="id")
    Xs, ys = sample.select("a", "b", "c").to_numpy(), sample["y"].to_numpy()
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(Xs, ys)
    X, y = df.select("a", "b", "c").to_numpy(), df["y"].to_numpy()
    raw = model.predict_proba(X)[:, 1]
    fixed = 1 / (
        1 + np.exp(-correct_log_odds(model.decision_function(X), sample["log_odds_offset"][0]))
    )
    assert raw.mean() > 10 * y.mean()
    assert abs(fixed.mean() / y.mean() - 1) < 4 / math.sqrt(y.sum())


def test_bad_ratio():
    with pytest.raises(InputError, match="negatives_per_positive"):
        undersampling_rate(10, 100, 0)
    with pytest.raises(InputError, match="no positive"):
        undersampling_rate(0, 100, 1)


def test_undersample_parquet_matches_in_memory(tmp_path):
    """Streaming engine and in-memory draw keep exactly the same keys (same seed and rate)."""
    from fastsample.toolkit.reweight import undersample_parquet

    df = _frame(30_000, seed=4)
    src = tmp_path / "log.parquet"
    df.write_parquet(src, row_group_size=4000)
    out = tmp_path / "under.parquet"
    undersample_parquet(
        src, out, label="y", negatives_per_positive=3.0, seed=5, key="id", progress=False
    )
    disk = pl.read_parquet(out)
    mem = undersample(df, label="y", negatives_per_positive=3.0, seed=5, key="id")
    assert sorted(disk["id"].to_list()) == sorted(mem["id"].to_list())
    assert disk["y"].sum() == df["y"].sum()
    np.testing.assert_allclose(
        np.sort(disk["sampling_prob"].to_numpy()),
        np.sort(mem["sampling_prob"].to_numpy()),
        rtol=1e-12,
    )
