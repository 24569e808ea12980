"""The README's recipes for serving boosted trees fitted on a fastsample sample.

Each recipe fits on a keyed negative sample with the log-odds offset, serves on held-out rows
of the same population, and must predict the observed event rate on average. The tolerance is
four standard errors of the ratio mean prediction / observed rate, from the binomial counts:
``sqrt(1/N1_holdout + 1/N1_sample + 1/N0_sample)`` relative (held-out noise plus the fitted
intercept's). The naive XGBoost recipe ("fit with base_margin, serve without it") is shown to
be biased: XGBoost >= 2 sets ``base_score`` from the *sample's* event rate and adds it at
prediction time although it never trained with it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FEATURES, make_events

import fastsample
from fastsample.core.pilot_fit import fit_pilot

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

TREES = {"n_estimators": 100, "max_depth": 2, "learning_rate": 0.1, "n_jobs": 1}
# One thread: small fits, and the machine's cores are shared with the rest of the suite.
NATIVE = {"max_depth": 2, "nthread": 1}


@pytest.fixture(scope="module")
def population():
    train = make_events(200_000, intercept=-4.5, seed=31)
    hold = make_events(200_000, intercept=-4.5, seed=32)
    return train, hold, fit_pilot(train, train["y"].to_numpy(), features=FEATURES, seed=1)


@pytest.fixture(scope="module", params=["uniform", "proportional"])
def split(request, population):
    train, hold, pilot = population
    s = fastsample.sample_frame(
        train, label="y", pilot=pilot, strategy=request.param, rate=0.2, seed=3
    )
    ys = s["y"].to_numpy()
    n1, n0 = int(ys.sum()), int(ys.size - ys.sum())
    yh = hold["y"].to_numpy()
    tol = 4 * math.sqrt(1 / yh.sum() + 1 / n1 + 1 / n0)
    return {
        "X": s.select(FEATURES).to_numpy(),
        "y": ys,
        "offset": s["log_odds_offset"].to_numpy(),
        "X_hold": hold.select(FEATURES).to_numpy(),
        "rate": float(yh.mean()),
        "tol": tol,
    }


def _ratio(p: np.ndarray, split) -> float:
    return float(np.mean(p)) / split["rate"]


def test_xgboost_served_with_a_zero_margin(split) -> None:
    model = xgb.XGBClassifier(**TREES)
    model.fit(split["X"], split["y"], base_margin=split["offset"])
    zeros = np.zeros(split["X_hold"].shape[0])
    served = model.predict_proba(split["X_hold"], base_margin=zeros)[:, 1]
    assert _ratio(served, split) == pytest.approx(1.0, abs=split["tol"])
    # the naive recipe adds the base_score estimated from the sample's labels
    naive = model.predict_proba(split["X_hold"])[:, 1]
    assert _ratio(naive, split) < 1.0 - 5 * split["tol"]


def test_xgboost_with_base_score_fixed_at_fit(split) -> None:
    """base_score=0.5 is a zero margin, so serving without base_margin adds nothing."""
    model = xgb.XGBClassifier(**TREES, base_score=0.5)
    model.fit(split["X"], split["y"], base_margin=split["offset"])
    served = model.predict_proba(split["X_hold"])[:, 1]
    assert _ratio(served, split) == pytest.approx(1.0, abs=split["tol"])


def test_xgboost_native_api_with_a_zero_margin(split) -> None:
    train = xgb.DMatrix(split["X"], label=split["y"], base_margin=split["offset"])
    params = {"objective": "binary:logistic", "eta": 0.1, **NATIVE}
    booster = xgb.train(params, train, num_boost_round=TREES["n_estimators"])
    hold = xgb.DMatrix(split["X_hold"], base_margin=np.zeros(split["X_hold"].shape[0]))
    assert _ratio(booster.predict(hold), split) == pytest.approx(1.0, abs=split["tol"])
    naive = booster.predict(xgb.DMatrix(split["X_hold"]))
    assert _ratio(naive, split) < 1.0 - 5 * split["tol"]


@pytest.mark.parametrize("boost_from_average", [None, True, False])
def test_lightgbm_fit_with_init_score_served_without(split, boost_from_average) -> None:
    """LightGBM does not add an average to an init_score fit, whatever boost_from_average says,
    and predict_proba leaves the init_score out: fit with it, serve without it."""
    extra = {} if boost_from_average is None else {"boost_from_average": boost_from_average}
    model = lgb.LGBMClassifier(**TREES, verbose=-1, **extra)
    model.fit(split["X"], split["y"], init_score=split["offset"])
    served = model.predict_proba(split["X_hold"])[:, 1]
    assert _ratio(served, split) == pytest.approx(1.0, abs=split["tol"])


def test_lightgbm_native_api(split) -> None:
    train = lgb.Dataset(split["X"], label=split["y"], init_score=split["offset"])
    params = {"objective": "binary", "learning_rate": 0.1, "verbose": -1, **NATIVE}
    booster = lgb.train(params, train, num_boost_round=TREES["n_estimators"])
    assert _ratio(booster.predict(split["X_hold"]), split) == pytest.approx(1.0, abs=split["tol"])


def test_a_fit_without_the_offset_is_far_off(split) -> None:
    """What the offset is for: the same trees fitted on the sample without it overpredict."""
    model = lgb.LGBMClassifier(**TREES, verbose=-1).fit(split["X"], split["y"])
    assert _ratio(model.predict_proba(split["X_hold"])[:, 1], split) > 1.0 + 5 * split["tol"]
