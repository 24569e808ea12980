"""The rate you asked for, by default, on a field-like log (issue 11, finding 1).

Few positives, heavy-tailed unscaled features and an imperfect pilot (linear on raw features,
or a tree model): the default one-pass mode must keep within max(3%, 4 SE) of ``rate * N0``
negatives, SE the Bernoulli standard deviation ``sqrt(sum a (1 - a))`` at the kappa used, and
the report must state the true expected count ``sum a_0`` over the input.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from fastsample.core.strategies import STRATEGIES, effective_floor, inclusion_scores
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.training import train_pilot
from fastsample.harness.fieldlike import field_like_table, write_field_like

ROWS = 150_000
RATE = 0.05


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("fieldlike") / "log.parquet"
    write_field_like(path, ROWS, positives=1_000, features=12, seed=0)
    return path


@pytest.fixture(scope="module")
def table(log):
    return pq.read_table(log)


def _features(table):
    return [c for c in table.column_names if c not in ("id", "user_id", "y")]


@pytest.fixture(scope="module")
def pilots(log, table):
    return {
        kind: train_pilot(log, label="y", features=_features(table), model=kind, seed=0)
        for kind in ("logistic", "hgb")
    }


def _true_sums(table, pilot, strategy, kappa):
    """(sum a_0, sum a_0 (1 - a_0)) over every negative of the input at ``kappa``."""
    X = np.column_stack([table.column(f).to_numpy() for f in pilot.features])
    neg = table.column("y").to_numpy() == 0
    h0, _ = inclusion_scores(strategy, pilot.logits(X[neg]), X[neg], pilot.info_inv)
    a = np.clip(kappa * h0, effective_floor(None), 1.0)
    return float(a.sum()), float(np.sum(a * (1.0 - a)))


def test_generator_is_field_like():
    t = field_like_table(50_000, positives=300, seed=3)
    y = t.column("y").to_numpy()
    assert 200 < y.sum() < 400  # expected 300, sd ~17
    amount = t.column("amount0").to_numpy()
    assert np.quantile(amount, 0.9999) > 1e3 * np.median(amount)  # heavy right tail
    scales = [np.std(t.column(c).to_numpy()) for c in _features(t)]
    assert max(scales) / min(scales) > 1e6  # very different scales
    assert len(np.unique(t.column("id").to_numpy())) == t.num_rows
    assert len(np.unique(t.column("user_id").to_numpy())) < t.num_rows / 10


@pytest.mark.xfail(reason="issue 11: the one-pass kappa drifts; being fixed", strict=True)
@pytest.mark.parametrize("kind", ["logistic", "hgb"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_default_mode_keeps_the_rate(log, table, pilots, tmp_path, kind, strategy):
    pilot = pilots[kind]
    rep = sample_parquet(
        log,
        tmp_path / "out.parquet",
        label="y",
        pilot=pilot,
        strategy=strategy,
        rate=RATE,
        key="id",
        progress=False,
    )
    target = RATE * rep.negatives_in
    expected, var = _true_sums(table, pilot, strategy, rep.kappa)
    tol = max(0.03 * target, 4.0 * math.sqrt(var))
    assert abs(rep.negatives_out - target) <= tol, (
        f"kept {rep.negatives_out} negatives, target {target:.0f} (true expected {expected:.0f})"
    )
    # the honest report: the true expected count over the input, and the z-score against it
    assert rep.expected_negatives_out == pytest.approx(expected, rel=1e-9)
    assert rep.negatives_z == pytest.approx((rep.negatives_out - expected) / math.sqrt(var))
