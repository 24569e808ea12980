"""The rate you asked for, by default, on a field-like log (issue 11, finding 1).

Few positives, heavy-tailed unscaled features and an imperfect pilot (linear on raw features,
or a tree model): the default one-pass mode must keep within max(3%, 4 SE) of ``rate * N0``
negatives, SE the Bernoulli standard deviation ``sqrt(sum a (1 - a))`` at the kappa used, and
the report must state the true expected count ``sum a_0`` over the input.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fastsample.core.strategies import STRATEGIES, effective_floor, inclusion_scores
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.sinks import read_metadata
from fastsample.engines.training import train_pilot
from fastsample.errors import FastsampleWarning
from fastsample.harness.fieldlike import field_like_table, write_field_like

ROWS = 100_000
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


class _Pilots(dict):
    """Pilots trained on first use (the tree pilot only for the tests that need it)."""

    def __init__(self, log, features):
        super().__init__()
        self.log, self.features = log, features

    def __missing__(self, kind):
        self[kind] = train_pilot(self.log, label="y", features=self.features, model=kind, seed=0)
        return self[kind]


@pytest.fixture(scope="module")
def pilots(log, table):
    return _Pilots(log, _features(table))


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


def test_an_imprecise_reference_falls_back_to_the_exact_pass(log, table, tmp_path, monkeypatch):
    import fastsample.core.reference as reference

    monkeypatch.setattr(reference, "REFERENCE_ROWS", 2_000)  # a small reference sample
    pilot = train_pilot(log, label="y", features=_features(table), seed=0)
    assert pilot.reference_X.shape[0] < 2_500
    with pytest.warns(FastsampleWarning, match="only to .* solving it exactly"):
        rep = sample_parquet(
            log, tmp_path / "o.parquet", label="y", pilot=pilot, strategy="opt-a", rate=RATE
        )
    assert rep.method == "exact"
    assert rep.expected_negatives_out == pytest.approx(rep.target_negatives_out, rel=1e-9)


def test_a_drifting_kappa_is_reported(log, table, pilots, tmp_path):
    # yesterday's pilot on a different population: the big spenders only
    big = table.filter(pc.greater(table.column("amount0"), 100.0))
    src = tmp_path / "big.parquet"
    pq.write_table(big, src)
    with pytest.warns(FastsampleWarning, match="--exact") as caught:
        rep = sample_parquet(
            src,
            tmp_path / "o.parquet",
            label="y",
            pilot=pilots["logistic"],
            strategy="proportional",
            rate=RATE,
            key="id",
            report=tmp_path / "r.json",
        )
    assert rep.expected_negatives_out > 1.1 * rep.target_negatives_out
    assert abs(rep.negatives_z) < 5  # realised vs the true expected count: only Bernoulli noise
    assert len(rep.warnings) == 1 and rep.warnings[0] in str(caught[0].message)
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["negatives_z"] == rep.negatives_z and record["warnings"] == rep.warnings
    meta = read_metadata(tmp_path / "o.parquet")
    assert meta["counts"]["expected_negatives_out"] == rep.expected_negatives_out
    assert meta["counts"]["negatives_sd"] == rep.negatives_sd
    # exact mode meets the target on the same input
    rep = sample_parquet(
        src,
        tmp_path / "e.parquet",
        label="y",
        pilot=pilots["logistic"],
        strategy="proportional",
        rate=RATE,
        key="id",
        exact=True,
    )
    assert not rep.warnings


@pytest.mark.parametrize("strategy", ["uniform", "opt-a", "lcc"])
def test_offsets_for_new_rows(log, table, pilots, tmp_path, strategy):
    import polars as pl

    from fastsample import correct_proba, sampling_offsets

    out = tmp_path / "o.parquet"
    sample_parquet(log, out, label="y", pilot=pilots["logistic"], strategy=strategy, rate=RATE)
    kept = pl.read_parquet(out)
    plan = read_metadata(out)["plan"]
    got = sampling_offsets(pilots["logistic"], kept, plan)
    np.testing.assert_allclose(got, kept["log_odds_offset"].to_numpy(), rtol=1e-12, atol=1e-12)
    # every row of the input gets one, label or not, and the correction undoes it exactly
    every = pl.from_arrow(table).drop("y")
    o = sampling_offsets(pilots["logistic"], every, plan)
    assert o.shape == (every.height,) and np.isfinite(o).all()
    np.testing.assert_allclose(correct_proba(np.full(3, 0.5), o[:3]), 1 / (1 + np.exp(o[:3])))
