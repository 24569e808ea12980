"""Pilot bundles: case-control correction, linear fast path, scoring, save/load."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from helpers import FEATURES, make_events
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastsample.core.pilot import Pilot, as_pilot
from fastsample.core.pilot_fit import fit_pilot
from fastsample.errors import InputError


@pytest.fixture(scope="module")
def big() -> pl.DataFrame:
    return make_events(300_000, seed=8)


def test_case_control_pilot_recovers_the_population_intercept(big) -> None:
    """Fitted on ~N1 positives + ~N1 negatives; the shifted intercept estimates -4.

    Intercept SE of a case-control logistic fit is about sqrt(1/N1 + 1/N0_sample) ~ 0.03 here
    (N1 ~ 7k); 0.15 is a 5-SE tolerance. Slopes (1.0 .. 0.2) get the same tolerance.
    """
    y = big["y"].to_numpy()
    p = fit_pilot(big, y, features=FEATURES, seed=4)
    coef, intercept = p.linear
    assert intercept == pytest.approx(-4.0, abs=0.15)
    np.testing.assert_allclose(coef, np.linspace(1.0, 0.2, 4), atol=0.15)
    assert p.meta["q1"] == 1.0 and p.meta["q0"] == pytest.approx(y.sum() / (y.size - y.sum()))
    # population-scale: mean predicted probability matches the event rate (rel. SE ~ 1.2%)
    prob = 1 / (1 + np.exp(-p.logits(big)))
    assert prob.mean() == pytest.approx(y.mean(), rel=0.06)
    assert p.reference_X is not None and p.reference_weight.sum() == pytest.approx(
        y.size - y.sum(), rel=0.05
    )


def test_non_linear_pilot_gets_the_same_shift(big) -> None:
    data = big.head(150_000)
    y = data["y"].to_numpy()
    p = fit_pilot(
        data, y, features=FEATURES, model=HistGradientBoostingClassifier(max_iter=15), seed=4
    )
    assert p.linear is None
    # exact identity: population logit = model logit + log(q0 / q1)
    assert p.logit_shift == pytest.approx(np.log(p.meta["q0"] / p.meta["q1"]), rel=1e-12)
    X = data.select(FEATURES).to_numpy()
    proba = p.model.predict_proba(X[:1000])[:, 1]
    np.testing.assert_allclose(
        p.logits(data.head(1000)), np.log(proba) - np.log1p(-proba) + p.logit_shift, rtol=1e-9
    )


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(),
        make_pipeline(StandardScaler(), LogisticRegression()),
        SGDClassifier(loss="log_loss", random_state=0),
    ],
    ids=["logistic", "scaler+logistic", "sgd"],
)
def test_linear_fast_path_equals_the_model(model) -> None:
    df = make_events(5000, seed=2)
    X, y = df.select(FEATURES).to_numpy().astype(np.float64), df["y"].to_numpy()
    model.fit(X * 3 + 1, y)
    p = Pilot(model, FEATURES)
    assert p.linear is not None
    fast = p.logits(X * 3 + 1)
    slow = model.decision_function(X * 3 + 1)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)


def test_save_load_round_trip(tmp_path, big) -> None:
    p = fit_pilot(
        big.head(50_000), big["y"].to_numpy()[:50_000], features=FEATURES, seed=1, label="y"
    )
    path = p.save(tmp_path / "pilot.joblib")
    q = Pilot.load(path)
    assert q.features == p.features and q.label == "y" and q.fingerprint == p.fingerprint
    np.testing.assert_array_equal(q.logits(big.head(100)), p.logits(big.head(100)))
    assert as_pilot(str(path)).fingerprint == p.fingerprint
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_bad_pilots(tmp_path) -> None:
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a fastsample pilot"):
        Pilot.load(junk)
    import joblib

    joblib.dump({"x": 1}, tmp_path / "dict.joblib")
    with pytest.raises(InputError, match="not a fastsample pilot"):
        Pilot.load(tmp_path / "dict.joblib")
    with pytest.raises(InputError, match="does not exist"):
        as_pilot(tmp_path / "missing.joblib")
    with pytest.raises(InputError, match="features"):
        as_pilot(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    with pytest.raises(InputError, match="binary"):
        as_pilot(LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 1, 2]), ["a"])
    with pytest.raises(InputError, match="not fitted"):
        as_pilot(LogisticRegression(), ["a"])
    with pytest.raises(InputError, match="no positive"):
        fit_pilot(np.zeros((10, 1)), np.zeros(10))
