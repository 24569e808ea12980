"""NegativeSamplingClassifier: corrections, boosters, calibration on an unsampled holdout."""

from __future__ import annotations

import numpy as np
import pytest

from fastsample.errors import InputError
from fastsample.models.classifier import NegativeSamplingClassifier
from fastsample.models.offset_logistic import OffsetLogisticRegression


def _population(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    p = 1.0 / (1.0 + np.exp(-(-5.0 + X[:, 0] - 0.5 * X[:, 1])))
    return X, (rng.random(n) < p).astype(np.int64), p


@pytest.fixture(scope="module")
def train_holdout():
    X, y, _ = _population(300_000, 1)
    Xh, yh, ph = _population(300_000, 2)
    return X, y, Xh, yh, ph


# Tolerance for a holdout's mean predicted probability against the true mean probability of
# the holdout (sum of p over its rows, known here): the fitted intercept's standard error is
# ~ 1/sqrt(kept positives) ~ 1/sqrt(3000) ~ 1.8% relative on the mean; the target is
# 2%, so use 2% for the offset fit and 4% (about 2 of those standard errors) for the noisier
# corrections.
@pytest.mark.parametrize(
    ("strategy", "correction", "tol"),
    [
        ("proportional", "offset", 0.02),
        ("uniform", "offset", 0.02),
        ("opt-a", "offset", 0.02),
        ("lcc", "offset", 0.02),
        ("opt-a", "weights", 0.04),
        ("uniform", "posthoc", 0.04),
        ("proportional", "posthoc", 0.04),
    ],
)
def test_population_scale_on_unsampled_holdout(train_holdout, strategy, correction, tol):
    X, y, Xh, _, ph = train_holdout
    clf = NegativeSamplingClassifier(
        estimator=OffsetLogisticRegression(C=np.inf),
        strategy=strategy,
        correction=correction,
        rate=0.05,
        seed=3,
    )
    clf.fit(X, y)
    assert clf.sample_indices_.size < 0.1 * len(y)
    mean_pred = clf.predict_proba(Xh)[:, 1].mean()
    assert abs(mean_pred / ph.mean() - 1.0) < tol
    if correction != "posthoc":
        # Coefficients of the population model (-5, 1, -0.5): standard errors ~0.04-0.06.
        est = clf.estimator_
        np.testing.assert_allclose(np.r_[est.intercept_, est.coef_[0]], [-5.0, 1.0, -0.5], atol=0.2)


def test_posthoc_uses_the_probabilities_of_the_rows_predicted(train_holdout):
    # The tutorial's bug reused the training rows' pi at prediction; here the offset of a new
    # row is recomputed from the pilot, so predicting a subset equals the subset of predictions.
    X, y, Xh, _, _ = train_holdout
    clf = NegativeSamplingClassifier(strategy="proportional", correction="posthoc", rate=0.05)
    clf.fit(X, y)
    full = clf.predict_proba(Xh)[:, 1]
    np.testing.assert_allclose(clf.predict_proba(Xh[::7])[:, 1], full[::7], rtol=1e-12)


def test_same_seed_same_sample_and_model(train_holdout):
    X, y, _, _, _ = train_holdout
    a = NegativeSamplingClassifier(rate=0.05, seed=11).fit(X, y)
    b = NegativeSamplingClassifier(rate=0.05, seed=11).fit(X, y)
    c = NegativeSamplingClassifier(rate=0.05, seed=12).fit(X, y)
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)
    np.testing.assert_array_equal(a.estimator_.coef_, b.estimator_.coef_)
    assert not np.array_equal(a.sample_indices_, c.sample_indices_)


def test_string_labels_positive_class_is_the_larger_label(train_holdout):
    X, y, _, _, _ = train_holdout
    labels = np.where(y == 1, "click", "ignore")  # "click" < "ignore": ignore is classes_[1]
    clf = NegativeSamplingClassifier(strategy="uniform", rate=0.5).fit(X[:20000], labels[:20000])
    assert list(clf.classes_) == ["click", "ignore"]
    assert set(clf.predict(X[:100])) <= {"click", "ignore"}


def test_lightgbm_init_score(train_holdout):
    lgb = pytest.importorskip("lightgbm")
    X, y, Xh, _, ph = train_holdout
    # Enough boosting rounds to converge from a zero start (the intercept, ~-5, is learned by
    # the trees when init_score replaces boost_from_average).
    est = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.1, num_leaves=7, verbose=-1)
    clf = NegativeSamplingClassifier(estimator=est, strategy="proportional", rate=0.05, seed=1)
    clf.fit(X, y)
    # Trees fitted on top of init_score = offset; served without it. A boosted model is
    # noisier than the GLM: 5% (about 3 intercept standard errors).
    assert abs(clf.predict_proba(Xh)[:, 1].mean() / ph.mean() - 1.0) < 0.05
    # Without the offset, the same trees would predict the sampled scale: far above.
    plain = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.1, num_leaves=7, verbose=-1)
    plain.fit(X[clf.sample_indices_], y[clf.sample_indices_])
    assert plain.predict_proba(Xh)[:, 1].mean() > 2 * ph.mean()


def test_xgboost_base_margin_served_with_zero_margin(train_holdout):
    xgb = pytest.importorskip("xgboost")
    X, y, Xh, _, ph = train_holdout
    est = xgb.XGBClassifier(n_estimators=60, learning_rate=0.1, max_depth=3, n_jobs=1)
    clf = NegativeSamplingClassifier(estimator=est, strategy="proportional", rate=0.05, seed=1)
    clf.fit(X, y)
    assert abs(clf.predict_proba(Xh)[:, 1].mean() / ph.mean() - 1.0) < 0.05
    # XGBoost's own predict (no base_margin) adds the base_score estimated from the sampled
    # labels: the zero margin is what makes the difference.
    naive = clf.estimator_.predict_proba(Xh)[:, 1].mean()
    assert abs(naive / ph.mean() - 1.0) > 0.05


def test_offset_needs_an_offset_aware_estimator(train_holdout):
    from sklearn.linear_model import LogisticRegression

    X, y, _, _, _ = train_holdout
    clf = NegativeSamplingClassifier(estimator=LogisticRegression(), correction="offset")
    with pytest.raises(InputError, match="correction='offset' needs an estimator"):
        clf.fit(X[:20000], y[:20000])
    ok = NegativeSamplingClassifier(estimator=LogisticRegression(), correction="weights")
    ok.fit(X[:20000], y[:20000])


def test_pilot_forms(train_holdout, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from fastsample.core.pilot import Pilot

    X, y, _, _, _ = train_holdout
    trained = NegativeSamplingClassifier(rate=0.05).fit(X, y)
    assert isinstance(trained.pilot_, Pilot)
    path = trained.pilot_.save(tmp_path / "pilot.joblib")
    from_file = NegativeSamplingClassifier(pilot=str(path), rate=0.05).fit(X, y)
    np.testing.assert_array_equal(from_file.sample_indices_, trained.sample_indices_)
    fitted = LogisticRegression().fit(X[:50000], y[:50000])
    NegativeSamplingClassifier(pilot=fitted, rate=0.05).fit(X, y)
    NegativeSamplingClassifier(pilot="sgd", rate=0.05).fit(X, y)
    with pytest.raises(InputError, match="neither a saved pilot file"):
        NegativeSamplingClassifier(pilot="nonsense", rate=0.05).fit(X, y)
