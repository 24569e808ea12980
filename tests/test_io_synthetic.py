"""The synthetic click log (fastsample.harness.synthetic): determinism, schema and its documented model."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from fastsample.errors import InputError
from fastsample.harness import synthetic


def test_schema_and_determinism():
    a = synthetic.click_log(3000, features=3, event_rate=0.05, seed=4)
    assert a.schema.names == ["id", "ts", "device", "position", "f0", "f1", "f2", "y"]
    assert a.equals(synthetic.click_log(3000, features=3, event_rate=0.05, seed=4))
    assert not a.equals(synthetic.click_log(3000, features=3, event_rate=0.05, seed=5))
    # a prefix of a longer log is the shorter log
    assert synthetic.click_log(100, features=3, event_rate=0.05, seed=4).equals(a.slice(0, 100))
    assert a.column("id").to_pylist() == list(range(3000))
    assert set(a.column("device").to_pylist()) <= set(synthetic.DEVICES)
    pos = a.column("position").to_numpy()
    assert pos.min() >= 1 and pos.max() <= 10


def test_intercept_solves_the_event_rate_equation():
    # Independent check of the quadrature: Monte Carlo with 2M normal draws has a standard error
    # below sqrt(r(1-r)/2e6) < 1e-4 for the rates below; allow 5 standard errors.
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for rate in (0.001, 0.01, 0.2):
        b0 = synthetic.click_log_intercept(rate)
        mc = np.mean(1.0 / (1.0 + np.exp(-(b0 + 2.0 * z))))
        assert abs(mc - rate) < 5 * math.sqrt(rate * (1 - rate) / 2e6)


def test_realised_event_rate_and_coefficients_match_the_model():
    sm = pytest.importorskip("statsmodels.api")
    n, d, rate = 300_000, 4, 0.05
    t = synthetic.click_log(n, features=d, event_rate=rate, seed=11)
    y = t.column("y").to_numpy().astype(float)
    # Each y is Bernoulli(p_i) with E p_i = rate: SE of the mean <= sqrt(rate(1-rate)/n).
    assert abs(y.mean() - rate) < 4 * math.sqrt(rate * (1 - rate) / n)
    x = np.column_stack([t.column(f"f{j}").to_numpy() for j in range(d)]).astype(float)
    fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    truth = np.r_[synthetic.click_log_intercept(rate), synthetic.click_log_coefficients(d)]
    # Maximum likelihood is consistent: each estimate within 4 of its own standard errors.
    assert np.all(np.abs(fit.params - truth) < 4 * fit.bse)


def test_generate_writes_atomically_and_refuses_overwrite(tmp_path):
    out = tmp_path / "log.parquet"
    info = synthetic.generate(out, rows=5000, features=2, event_rate=0.1, seed=1)
    assert info["rows"] == 5000
    table = pq.read_table(out)
    assert table.equals(synthetic.click_log(5000, features=2, event_rate=0.1, seed=1))
    assert info["positives"] == int(table.column("y").to_numpy().sum())
    with pytest.raises(InputError, match="already exists"):
        synthetic.generate(out, rows=10, features=2)
    synthetic.generate(out, rows=0, features=2, overwrite=True)
    assert pq.read_table(out).num_rows == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.parquet"]


@pytest.mark.parametrize(
    "kwargs",
    [{"rows": -1}, {"features": 0}, {"event_rate": 0.0}, {"event_rate": 1.5}, {"seed": -3}],
)
def test_generate_rejects_bad_parameters(tmp_path, kwargs):
    args = {"rows": 10, "features": 2, "event_rate": 0.1, "seed": 0, **kwargs}
    with pytest.raises(InputError):
        synthetic.generate(tmp_path / "o.parquet", **args)
    assert list(tmp_path.iterdir()) == []
