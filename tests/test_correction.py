"""Offsets, weights and post-hoc correction; the tutorial's sign error."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from fastsample.core.correction import correct_log_odds, correct_proba, log_odds_offset
from fastsample.core.strategies import inclusion_probabilities
from fastsample.engines.memory import sample_frame
from fastsample.errors import InputError
from fastsample.testing.reference import tutorial_correct_probabilities


def test_offset_identities() -> None:
    pi = np.array([1.0, 0.5, 1e-6, 2.0**-53])
    np.testing.assert_array_equal(log_odds_offset(pi), -np.log(pi))
    np.testing.assert_allclose(log_odds_offset(pi, np.full(4, 0.25)), np.log(0.25) - np.log(pi))
    with pytest.raises(InputError):
        log_odds_offset([0.0])


def test_correct_proba_is_he_et_al_for_a_uniform_rate() -> None:
    p = np.linspace(0, 1, 101)
    w = 0.02
    expected = p / (p + (1 - p) / w)
    np.testing.assert_allclose(correct_proba(p, -np.log(w)), expected, rtol=1e-12, atol=1e-300)


def test_correct_proba_is_safe_at_the_ends() -> None:
    p = np.array([0.0, 1e-300, 0.5, 1 - 1e-16, 1.0])
    for o in (-800.0, -30.0, 0.0, 30.0, 800.0):
        q = correct_proba(p, o)
        assert np.isfinite(q).all() and ((q >= 0) & (q <= 1)).all()
        assert q[0] == 0.0 and q[-1] == 1.0
    # float32 input works and stays monotone in p
    q32 = correct_proba(np.linspace(0, 1, 11, dtype=np.float32), np.float32(3.0))
    assert (np.diff(q32) >= 0).all()


def test_correct_log_odds_inverts_the_sampled_world_shift() -> None:
    logit = np.array([-9.0, -2.0, 3.0])
    o = np.array([4.0, 0.0, 1.5])
    np.testing.assert_array_equal(correct_log_odds(logit + o, o), logit)
    np.testing.assert_allclose(correct_log_odds([0.0], -np.log(0.01)), [np.log(0.01)])


def test_tutorial_sign_is_wrong_and_ours_is_calibrated() -> None:
    """Sign and calibration at a test-sized N: a naive fit on the sample, corrected.

    N = 400k, logit p = -6 + x gives ~1600 positives. The event-rate estimate from the
    corrected model has relative SE about 1/sqrt(N1) ~ 2.5%, so 10% is a 4-SE tolerance.
    """
    rng = np.random.default_rng(2024)
    n = 400_000
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(6 - x))).astype(np.int64)
    df = pl.DataFrame({"x": x, "y": y, "id": np.arange(n)})
    oracle_logit = -6 + x
    from fastsample.core.pilot import Pilot

    oracle = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    oracle.coef_[:] = 1.0
    oracle.intercept_[:] = -6.0
    out, info = sample_frame(
        df, label="y", pilot=Pilot(oracle, ["x"]), rate=0.01, key="id", return_info=True
    )
    naive = LogisticRegression(C=1e6).fit(out.select("x").to_numpy(), out["y"].to_numpy())
    s = naive.decision_function(x[:, None])
    # serving needs pi(x) for every population row: same pilot, same kappa
    pi_all, _ = inclusion_probabilities("proportional", oracle_logit, kappa=info["plan"].kappa)
    ours = correct_proba(1 / (1 + np.exp(-s)), -np.log(pi_all))
    tutorial = tutorial_correct_probabilities(1 / (1 + np.exp(-s)), pi_all)
    rate = y.mean()
    assert abs(ours.mean() / rate - 1) < 0.10
    assert tutorial.mean() > 0.5  # the tutorial's sign turns a ~0.4% event rate into a majority


@pytest.mark.parametrize("n", [10, 100_000])  # the serial and the parallel kernel
@pytest.mark.parametrize(
    ("bad_p", "bad_o", "message"),
    [
        (-1e-12, 0.0, r"probabilities must lie in \[0, 1\]"),
        (1.5, 0.0, r"probabilities must lie in \[0, 1\]"),
        (np.nan, 0.0, r"probabilities must lie in \[0, 1\]"),
        (0.5, np.nan, "offset contains NaN"),
    ],
)
def test_correct_proba_rejects_bad_input_found_inside_the_kernel(n, bad_p, bad_o, message):
    p = np.full(n, 0.3)
    o = np.full(n, 2.0)
    p[n - 3], o[n - 3] = bad_p, bad_o  # in the last block, after good rows
    with pytest.raises(InputError, match=message):
        correct_proba(p, o)
    # the good rows alone pass and match the closed form q = p / (p + (1 - p) e^o)
    q = correct_proba(np.delete(p, n - 3), np.delete(o, n - 3))
    np.testing.assert_allclose(q, 0.3 / (0.3 + 0.7 * np.exp(2.0)), rtol=1e-14)
