"""Sliding-window online learner: bounded memory, warm-started updates, corrected output."""

from __future__ import annotations

import math

import numpy as np
import pytest

# Imported before any test patches fastsample.core.pilot_fit.fit_pilot: sampling binds the name at import,
# and a first import inside the patch would keep the stub for every later test in the process.
import fastsample.engines.batch  # noqa: F401
from fastsample.errors import InputError
from fastsample.models.offset_logistic import OffsetLogisticRegression
from fastsample.models.online import SlidingWindowLearner

BETA = np.array([1.0, -0.5, 0.25])


def _batch(rng, n, intercept=-5.0):
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(intercept + X @ BETA)))).astype(np.int64)
    return X, y


def _feed(learner, rng, batches, n=20_000, intercept=-5.0):
    for _ in range(batches):
        learner.partial_fit(*_batch(rng, n, intercept))
    return learner


def test_window_is_bounded_and_updates_are_warm_started(monkeypatch):
    """Memory stays within the window, and no call retrains from scratch: the pilot trainer and
    a fresh estimator are never used, and after warm-up each update needs at most 3 Newton
    iterations (a cold start on the same window needs more)."""
    import fastsample.core.pilot_fit as pilot_mod

    def forbidden(*a, **k):
        raise AssertionError("retrained from scratch")

    monkeypatch.setattr(pilot_mod, "fit_pilot", forbidden)
    monkeypatch.setattr(OffsetLogisticRegression, "fit", forbidden)
    rng = np.random.default_rng(0)
    learner = SlidingWindowLearner(window=20_000, rate=0.05, C=np.inf)
    for _ in range(12):
        learner.partial_fit(*_batch(rng, 20_000))
        assert learner.window_rows_ <= 20_000
    assert learner.n_seen_ == 240_000 and learner.n_updates_ == 12
    assert all(h["iterations"] <= 3 for h in learner.history_[4:])
    first = learner.history_[0]["iterations"]
    assert first > max(h["iterations"] for h in learner.history_[4:])


def test_update_reaches_the_window_optimum():
    """The warm-started update minimises exactly the window's offset likelihood: a cold
    OffsetLogisticRegression fit on the same rows and offsets gives the same coefficients."""
    rng = np.random.default_rng(1)
    learner = _feed(SlidingWindowLearner(window=15_000, rate=0.05, C=np.inf, max_iter=10), rng, 8)
    Xw, yw, ow = learner._window()
    ref = OffsetLogisticRegression(C=np.inf).fit(Xw, yw, offset=ow)
    np.testing.assert_allclose(learner.coef_[0], ref.coef_[0], atol=1e-6)
    np.testing.assert_allclose(learner.intercept_, ref.intercept_, atol=1e-6)


def test_predictions_are_on_the_population_scale():
    """Stationary stream with ~1.3% positives. The learner's coefficients match the truth
    within 4 standard errors (SE from the window fit's inverse information), and its mean
    predicted probability matches the event rate. The tutorial's correction
    (logit - log(pi), i.e. adding the offset to a model fitted without it) overshoots."""
    rng = np.random.default_rng(2)
    learner = _feed(SlidingWindowLearner(window=40_000, rate=0.05, C=np.inf), rng, 15)
    Xw, yw, ow = learner._window()
    se = OffsetLogisticRegression(C=np.inf).fit(Xw, yw, offset=ow).standard_errors_
    est = np.r_[learner.intercept_, learner.coef_[0]]
    assert np.all(np.abs(est - np.r_[-5.0, BETA]) < 4 * se), (est, se)
    X, y = _batch(rng, 400_000)
    p = learner.predict_proba(X)[:, 1]
    # intercept SE se[0] moves the mean probability by about se[0] in relative terms
    assert abs(p.mean() / y.mean() - 1) < 4 * se[0] + 4 / math.sqrt(y.sum())
    # tutorial: fit without offset on the sampled rows, then *add* -log(pi)
    from sklearn.linear_model import LogisticRegression

    naive = LogisticRegression(C=np.inf, max_iter=1000).fit(Xw, yw)
    tutorial = 1 / (1 + np.exp(-(naive.decision_function(Xw) + ow)))
    assert tutorial.mean() > 0.5 > 20 * y.mean()


def test_window_forgets_old_data_after_drift():
    """The event rate rises (intercept -5 -> -4). Once the window holds only new rows, the
    intercept follows: within 4 SE of -4."""
    rng = np.random.default_rng(3)
    learner = SlidingWindowLearner(window=20_000, rate=0.05, C=np.inf)
    _feed(learner, rng, 10, intercept=-5.0)
    before = float(learner.intercept_[0])
    _feed(learner, rng, 25, intercept=-4.0)
    Xw, yw, ow = learner._window()
    se = OffsetLogisticRegression(C=np.inf).fit(Xw, yw, offset=ow).standard_errors_[0]
    assert abs(before + 5.0) < 0.3
    assert abs(learner.intercept_[0] + 4.0) < 4 * se


def test_reproducible_and_keyed():
    def run(seed, keys_offset=0):
        rng = np.random.default_rng(4)
        learner = SlidingWindowLearner(window=10_000, rate=0.1, seed=seed)
        for b in range(4):
            X, y = _batch(rng, 5000)
            keys = np.arange(b * 5000, (b + 1) * 5000) + keys_offset
            learner.partial_fit(X, y, keys=keys)
        return learner

    a, b = run(7), run(7)
    last = a.last_batch_
    assert len(last["index"]) == a.history_[-1]["kept"]
    assert np.all((last["sampling_prob"] > 0) & (last["sampling_prob"] <= 1))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert [h["kept"] for h in a.history_] == [h["kept"] for h in b.history_]
    c = run(8)
    assert [h["kept"] for h in a.history_] != [h["kept"] for h in c.history_]


def test_bad_input():
    with pytest.raises(InputError, match="window"):
        SlidingWindowLearner(window=1)
    learner = SlidingWindowLearner()
    with pytest.raises(InputError, match="no model yet"):
        learner.predict_proba(np.zeros((1, 3)))
    with pytest.raises(InputError, match="must be 0 or 1"):
        learner.partial_fit(np.zeros((2, 3)), [0, 2])
    learner.partial_fit(*_batch(np.random.default_rng(0), 1000))
    with pytest.raises(InputError, match="3"):
        learner.partial_fit(np.zeros((2, 4)), [0, 1])
