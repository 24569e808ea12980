"""OffsetLogisticRegression and its kernels: thread-count independence, statsmodels agreement,
calibration (the kernels' NumPy twins are checked from the kernel registry in test_kernels.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fastsample.errors import InputError
from fastsample.models.offset_logistic import OffsetLogisticRegression


def _problem(n, d, dtype=np.float64, seed=0, intercept=-3.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    coef = rng.normal(scale=0.5, size=d)
    off = rng.normal(size=n)
    eta = intercept + X.astype(np.float64) @ coef + off
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    w = rng.uniform(0.2, 3.0, size=n)
    return X, y, w, off, coef


def test_kernels_do_not_depend_on_thread_count():
    code = textwrap.dedent(
        """
        import numpy as np
        from fastsample.core import glm_kernels as k
        rng = np.random.default_rng(3)
        n, d = k.BLOCK * (k.SERIAL_BLOCKS + 5) + 101, 4
        X = rng.normal(size=(n, d)); y = (rng.random(n) < 0.1) * 1.0
        w = rng.uniform(0.5, 2, n); off = rng.normal(size=n); c = rng.normal(size=d)
        g = np.empty(d + 1); h = np.empty((d + 1, d + 1)); s = np.empty((d + 1, d + 1))
        loss = k.offset_logistic_loss_grad_hess(X, y, w, off, c, -1.0, g, h)
        k.offset_logistic_score_outer(X, y, w, off, c, -1.0, s)
        print(np.concatenate([[loss], g, h.ravel(), s.ravel()]).tobytes().hex())
        """
    )
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        res = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.append(res.stdout.strip())
    assert outs[0] == outs[1]


# -- agreement with statsmodels --------------------------------------------------------------


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_agrees_with_statsmodels_glm_offset(solver, dtype):
    sm = pytest.importorskip("statsmodels.api")
    X, y, _, off, _ = _problem(20_000, 4, dtype=dtype, seed=1)
    tol = 1e-8 if solver == "newton" else 1e-10
    model = OffsetLogisticRegression(C=np.inf, solver=solver, tol=tol, max_iter=1000)
    model.fit(X, y, offset=off)
    Xd = sm.add_constant(X.astype(np.float64))
    glm = sm.GLM(y, Xd, family=sm.families.Binomial(), offset=off).fit(tol=1e-12)
    ours = np.r_[model.intercept_, model.coef_[0]]
    np.testing.assert_allclose(ours, glm.params, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.standard_errors_, glm.bse, rtol=1e-5)
    np.testing.assert_allclose(model.covariance_, glm.cov_params(), rtol=1e-5, atol=1e-12)


def test_weighted_fit_agrees_with_statsmodels_sandwich():
    sm = pytest.importorskip("statsmodels.api")
    X, y, w, off, _ = _problem(20_000, 3, seed=2)
    model = OffsetLogisticRegression(C=np.inf).fit(X, y, offset=off, sample_weight=w)
    glm = sm.GLM(
        y, sm.add_constant(X), family=sm.families.Binomial(), offset=off, var_weights=w
    ).fit(tol=1e-12, cov_type="HC0")
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_[0]], glm.params, atol=1e-6)
    # The sandwich H^-1 M H^-1 is statsmodels' HC0 with variance weights.
    np.testing.assert_allclose(model.covariance_, glm.cov_params(), rtol=1e-5, atol=1e-12)


def test_no_intercept_agrees_with_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    X, y, _, off, _ = _problem(5000, 3, seed=4, intercept=0.0)
    model = OffsetLogisticRegression(C=np.inf, fit_intercept=False).fit(X, y, offset=off)
    glm = sm.GLM(y, X, family=sm.families.Binomial(), offset=off).fit(tol=1e-12)
    assert model.intercept_[0] == 0.0
    np.testing.assert_allclose(model.coef_[0], glm.params, atol=1e-6)
    assert model.covariance_.shape == (3, 3)


def test_penalised_fit_matches_sklearn_objective():
    from sklearn.linear_model import LogisticRegression

    X, y, _, _, _ = _problem(3000, 4, seed=5)
    ours = OffsetLogisticRegression(C=0.05).fit(X, y)
    sk = LogisticRegression(C=0.05, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, atol=1e-6)


def test_constant_offset_only_moves_the_intercept():
    X, y, _, _, _ = _problem(4000, 3, seed=6)
    a = OffsetLogisticRegression(C=np.inf).fit(X, y)
    b = OffsetLogisticRegression(C=np.inf).fit(X, y, offset=np.full(len(y), 2.0))
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-8)
    np.testing.assert_allclose(b.intercept_, a.intercept_ - 2.0, atol=1e-8)


def test_prediction_serves_without_offset():
    X, y, _, off, _ = _problem(4000, 3, seed=7)
    m = OffsetLogisticRegression(C=np.inf).fit(X, y, offset=off)
    eta = X @ m.coef_[0] + m.intercept_[0]
    np.testing.assert_allclose(m.decision_function(X), eta, rtol=1e-12)
    np.testing.assert_allclose(m.decision_function(X, offset=off), eta + off, rtol=1e-12)
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-eta)), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(m.predict_log_proba(X)), proba, rtol=1e-12)
    # Log-probabilities stay finite where the probability underflows.
    far = np.full((1, 3), 1e4)
    assert np.all(np.isfinite(m.predict_log_proba(far)))


def test_string_labels_and_positive_class():
    X, y, _, off, _ = _problem(3000, 2, seed=8)
    labels = np.where(y == 1, "yes", "no")
    m = OffsetLogisticRegression(C=np.inf).fit(X, labels, offset=off)
    m01 = OffsetLogisticRegression(C=np.inf).fit(X, y, offset=off)
    assert list(m.classes_) == ["no", "yes"]
    np.testing.assert_allclose(m.coef_, m01.coef_)
    assert set(m.predict(X)) <= {"no", "yes"}


@pytest.mark.parametrize(
    ("offset", "match"),
    [
        (np.zeros(5), "offset has 5 values but X has 10 rows"),
        (np.r_[np.zeros(9), np.nan], "offset must be finite; found nan"),
        (np.r_[np.zeros(9), np.inf], "offset must be finite; found inf"),
    ],
)
def test_bad_offset_is_an_input_error(offset, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = np.r_[np.zeros(5), np.ones(5)]
    with pytest.raises(InputError, match=match):
        OffsetLogisticRegression().fit(X, y, offset=offset)


def test_one_class_and_multiclass_are_rejected():
    X = np.random.default_rng(0).normal(size=(9, 2))
    with pytest.raises(ValueError, match="2 classes"):
        OffsetLogisticRegression().fit(X, np.ones(9))
    with pytest.raises(ValueError, match="Only binary classification"):
        OffsetLogisticRegression().fit(X, np.arange(9) % 3)


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_iteration_limit_warns(solver):
    from sklearn.exceptions import ConvergenceWarning

    X, y, _, off, _ = _problem(3000, 3, seed=10)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        OffsetLogisticRegression(C=np.inf, solver=solver, max_iter=1).fit(X, y, offset=off)


# -- sign and calibration on an oracle-probability sample ------------------------------------


@pytest.fixture(scope="module")
def target_d():
    # N = 2e6, x ~ N(0, 1), logit p = -6 + x; negatives kept with
    # pi = min(1, 0.01 p / mean_neg(p)) using the oracle p.
    rng = np.random.default_rng(20211025)
    n = 2_000_000
    x = rng.normal(size=n)
    eta = -6.0 + x
    p = 1.0 / (1.0 + np.exp(-eta))
    y = rng.random(n) < p
    pi = np.minimum(1.0, 0.01 * p / p[~y].mean())
    keep = y | (rng.random(n) < pi)
    return x, y, pi, keep


def test_target_d_offset_fit_recovers_coefficients_and_event_rate(target_d):
    x, y, pi, keep = target_d
    X = x[keep, None]
    model = OffsetLogisticRegression(C=np.inf).fit(X, y[keep], offset=-np.log(pi[keep]))
    # Tolerance 0.05; the fitted standard errors are ~0.02 and ~0.012, so
    # this is about 2.5 and 4 standard errors.
    assert abs(model.intercept_[0] + 6.0) < 0.05
    assert abs(model.coef_[0, 0] - 1.0) < 0.05
    assert model.standard_errors_[0] < 0.025
    mean_pred = model.predict_proba(x[:, None])[:, 1].mean()
    # Within 2% of the empirical event rate: the rate's own relative standard error is
    # 1/sqrt(N1) ~ 1/sqrt(8000) ~ 1.1%, so 2% is ~1.8 of them.
    assert abs(mean_pred / y.mean() - 1.0) < 0.02


def test_target_d_posthoc_sign(target_d):
    x, y, pi, keep = target_d
    naive = OffsetLogisticRegression(C=np.inf).fit(x[keep, None], y[keep])
    # pi is a function of x, so the post-hoc correction can be applied to every row.
    s = naive.decision_function(x[:, None])
    right = 1.0 / (1.0 + np.exp(-(s + np.log(pi))))
    wrong = 1.0 / (1.0 + np.exp(-(s - np.log(pi))))
    # Same 2% as the offset fit (about 1.8 standard errors of the event rate).
    assert abs(right.mean() / y.mean() - 1.0) < 0.02
    # The tutorial's sign (subtracting log pi) predicts most rows positive (97.7% there).
    assert wrong.mean() > 0.9
    # A naive fit with pi proportional to p learns almost nothing about x (slope -0.003 there).
    assert abs(naive.coef_[0, 0]) < 0.05


def test_float32_and_float64_inputs_give_the_same_fit():
    X, y, _, off, _ = _problem(5000, 3, seed=9)
    X32 = X.astype(np.float32)
    a = OffsetLogisticRegression(C=np.inf).fit(X32.astype(np.float64), y, offset=off)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = OffsetLogisticRegression(C=np.inf).fit(X32, y, offset=off)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-8)
