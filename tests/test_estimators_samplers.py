"""imbalanced-learn samplers: the community checks, containers, keys, pipelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

pytest.importorskip("imblearn")

from imblearn.utils.estimator_checks import parametrize_with_checks

from fastsample.models.samplers import KeyedRandomUnderSampler, NegativeSampler


# No expected failures: both samplers declare _sampling_type="bypass" (Bernoulli draws give
# expected, not exact, counts), which imbalanced-learn's checks accept.
@parametrize_with_checks(
    [
        NegativeSampler(rate=0.5),
        NegativeSampler(strategy="uniform", rate=0.5),
        KeyedRandomUnderSampler(),
    ]
)
def test_imblearn_compatible(estimator, check):
    check(estimator)


def _rare_data(n=60_000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    p = 1.0 / (1.0 + np.exp(-(-4.5 + X[:, 0] - 0.5 * X[:, 1])))
    y = (rng.random(n) < p).astype(np.int64)
    return X, y


@pytest.mark.parametrize("strategy", ["uniform", "proportional", "opt-a", "lcc"])
def test_negative_sampler_attributes_match_the_engine(strategy):
    X, y = _rare_data()
    s = NegativeSampler(strategy=strategy, rate=0.2, seed=5)
    Xr, yr = s.fit_resample(X, y)
    idx = s.sample_indices_
    np.testing.assert_array_equal(Xr, X[idx])
    np.testing.assert_array_equal(yr, y[idx])
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_allclose(s.sample_weight_, 1.0 / s.sampling_prob_)
    assert np.all((s.sampling_prob_ > 0) & (s.sampling_prob_ <= 1))
    if strategy != "lcc":
        # Every positive kept; the offset of a kept row is -log a_0(x), positives included.
        assert (yr == 1).sum() == (y == 1).sum()
        neg = yr == 0
        np.testing.assert_allclose(s.log_odds_offset_[neg], -np.log(s.sampling_prob_[neg]))
    # Expected kept negatives equal rate * N0 (water-filling); the realised count is a sum of
    # independent Bernoullis, so allow 4 binomial standard deviations (sd <= sqrt(rate * N0)).
    n0 = (y == 0).sum()
    assert abs((yr == 0).sum() - 0.2 * n0) < 4 * np.sqrt(0.2 * n0)


def test_negative_sampler_same_rows_for_numpy_pandas_polars():
    X, y = _rare_data(20_000)
    names = ["a", "b", "c"]
    Xn, yn = NegativeSampler(rate=0.3, seed=2).fit_resample(X, y)
    pdf = pd.DataFrame(X, columns=names, index=np.arange(100, 100 + len(y)))
    ys = pd.Series(y, name="label", index=pdf.index)
    sp = NegativeSampler(rate=0.3, seed=2)
    Xp, yp = sp.fit_resample(pdf, ys)
    Xq, yq = NegativeSampler(rate=0.3, seed=2).fit_resample(pl.DataFrame(X, schema=names), y)
    assert isinstance(Xp, pd.DataFrame) and isinstance(yp, pd.Series)
    assert isinstance(Xq, pl.DataFrame) and isinstance(yq, np.ndarray)
    assert list(Xp.columns) == names and yp.name == "label"
    # The pandas index of the kept rows comes back unchanged.
    np.testing.assert_array_equal(Xp.index.to_numpy(), 100 + sp.sample_indices_)
    np.testing.assert_array_equal(Xp.to_numpy(), Xn)
    np.testing.assert_array_equal(Xq.to_numpy(), Xn)
    np.testing.assert_array_equal(yq, yn)
    ql = pl.Series("label", y)
    _, yqs = NegativeSampler(rate=0.3, seed=2).fit_resample(pl.DataFrame(X, schema=names), ql)
    assert isinstance(yqs, pl.Series) and yqs.name == "label"


def test_key_column_makes_the_draw_independent_of_row_order():
    X, y = _rare_data(20_000)
    ids = np.arange(len(y)) * 7919 + 13
    df = pl.DataFrame(X, schema=["a", "b", "c"]).with_columns(id=pl.Series(ids))
    s1 = KeyedRandomUnderSampler(sampling_strategy=0.5, seed=3, key="id")
    X1, _ = s1.fit_resample(df, y)
    perm = np.random.default_rng(0).permutation(len(y))
    s2 = KeyedRandomUnderSampler(sampling_strategy=0.5, seed=3, key="id")
    X2, _ = s2.fit_resample(df[perm], y[perm])
    assert set(X1["id"].to_list()) == set(X2["id"].to_list())
    assert X1.columns == ["a", "b", "c", "id"]
    # Without a key the row index decides, so a permutation changes the rows.
    X3, _ = KeyedRandomUnderSampler(sampling_strategy=0.5, seed=3).fit_resample(X[perm], y[perm])
    assert set(map(tuple, X3)) != set(map(tuple, X1.select(["a", "b", "c"]).to_numpy()))


def test_keyed_under_sampler_rates_follow_sampling_strategy():
    X, y = _rare_data(40_000)
    n1, n0 = (y == 1).sum(), (y == 0).sum()
    s = KeyedRandomUnderSampler(sampling_strategy=0.25, seed=1)
    _, yr = s.fit_resample(X, y)
    # imblearn's float: majority count after resampling = N_minority / 0.25, in expectation.
    assert s.class_rates_[0] == pytest.approx(4 * n1 / n0)
    assert s.class_rates_[1] == 1.0
    sd = np.sqrt(4 * n1)
    assert abs((yr == 0).sum() - 4 * n1) < 4 * sd
    np.testing.assert_allclose(s.log_odds_offset_, np.log(1.0) - np.log(4 * n1 / n0))


def test_samplers_work_inside_an_imblearn_pipeline():
    from imblearn.pipeline import Pipeline
    from sklearn.linear_model import LogisticRegression

    X, y = _rare_data(20_000)
    pipe = Pipeline(
        [
            ("sample", NegativeSampler(strategy="uniform", rate=0.3, seed=1)),
            ("model", LogisticRegression()),
        ]
    )
    pipe.fit(X, y)
    sampler = pipe.named_steps["sample"]
    assert sampler.sample_indices_.size < len(y)
    # Samplers act only during fit: predict sees every row.
    assert pipe.predict_proba(X).shape == (len(y), 2)
    # A plain learner in a pipeline gets no offset: its raw mean prediction is inflated by the
    # sampling, and the sampler's constant offset (-log 0.3 for uniform) undoes it.
    raw = pipe.predict_proba(X)[:, 1]
    from fastsample.core.correction import correct_proba

    fixed = correct_proba(raw, sampler.log_odds_offset_[0])
    assert raw.mean() > 1.5 * y.mean()
    assert abs(fixed.mean() / y.mean() - 1) < 0.1
