"""Extreme-imbalance classifier: path chosen by the measured ratio, corrected probabilities."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from fastsample.errors import InputError
from fastsample.models.ensemble import ExtremeImbalanceClassifier, imbalance_ratio

BETA = np.array([1.0, -0.5, 0.25])


@pytest.fixture(scope="module")
def rare():
    """~1:2500 events (about 120 positives in 300k rows)."""
    rng = np.random.default_rng(0)
    n = 300_000
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-8.3 + X @ BETA)))).astype(np.int64)
    return X, y


def test_imbalance_ratio():
    assert imbalance_ratio([0, 0, 0, 1]) == 3.0
    assert math.isinf(imbalance_ratio([0, 0]))
    with pytest.raises(InputError, match="0 or 1"):
        imbalance_ratio([0, 3])


def test_path_follows_the_measured_ratio(rare):
    X, y = rare
    ratio = imbalance_ratio(y)
    assert ratio > 1000
    small = {"n_estimators": 3, "C": np.inf}
    assert ExtremeImbalanceClassifier(**small).fit(X, y).path_ == "bagging"
    single = ExtremeImbalanceClassifier(threshold=ratio * 1.01, **small).fit(X, y)
    assert single.path_ == "single" and len(single.estimators_) == 1
    assert single.imbalance_ratio_ == pytest.approx(ratio)


def test_bagging_members_differ_and_ensemble_is_calibrated(rare):
    """Members use derived seeds, so they are fitted on different negatives; the whole is
    reproducible. Each member is an offset fit (population scale), so the mean predicted
    probability matches the event rate up to the intercept's noise, ~1/sqrt(N1) in relative
    terms; we allow 4 of those."""
    X, y = rare
    a = ExtremeImbalanceClassifier(n_estimators=4, C=np.inf, seed=3).fit(X, y)
    b = ExtremeImbalanceClassifier(n_estimators=4, C=np.inf, seed=3).fit(X, y)
    intercepts = [float(m.intercept_[0]) for m in a.estimators_]
    assert len(set(intercepts)) == 4
    assert intercepts == [float(m.intercept_[0]) for m in b.estimators_]
    p = a.predict_proba(X)[:, 1]
    assert abs(p.mean() / y.mean() - 1) < 4 / math.sqrt(y.sum())
    np.testing.assert_allclose(a.estimators_[0].coef_[0], BETA, atol=4 * 0.12)


def test_brf_probabilities_are_corrected(rare):
    """The tutorial's BalancedRandomForestClassifier probabilities live on the 1:1 training
    scale (mean near 0.4 for a 1:2500 event). Shifting the log-odds by log(N0/N1) brings the
    mean back to the event rate's order. For trees the shift is not an exact likelihood
    correction, so this checks a factor of 2, against a raw error of more than 100x."""
    pytest.importorskip("imblearn")
    X, y = rare
    model = ExtremeImbalanceClassifier(
        ensemble="brf", n_estimators=10, seed=1, brf_params={"max_depth": 4}
    ).fit(X, y)
    assert model.path_ == "brf"
    forest = model.estimators_[0]
    raw = forest.predict_proba(X)[:, 1]
    fixed = model.predict_proba(X)[:, 1]
    assert raw.mean() > 100 * y.mean()
    assert 0.5 < fixed.mean() / y.mean() < 2.0
    # the correction is monotone: it keeps the forest's ranking
    order = np.argsort(raw[:2000], kind="stable")
    assert np.all(np.diff(fixed[:2000][order]) >= 0)


def test_brf_without_imblearn_gives_install_hint(rare, monkeypatch):
    X, y = rare
    monkeypatch.setitem(sys.modules, "imblearn.ensemble", None)
    with pytest.raises(ImportError, match=r"fastsample\[imblearn\]"):
        ExtremeImbalanceClassifier(ensemble="brf").fit(X, y)


def test_bad_input():
    with pytest.raises(InputError, match="ensemble"):
        ExtremeImbalanceClassifier(ensemble="nope").fit(np.zeros((4, 1)), [0, 0, 0, 1])
    with pytest.raises(InputError, match="class 1 is absent"):
        ExtremeImbalanceClassifier().fit(np.zeros((4, 1)), [0, 0, 0, 0])
    with pytest.raises(InputError, match="not fitted"):
        ExtremeImbalanceClassifier().predict_proba(np.zeros((1, 1)))
