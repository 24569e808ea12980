"""Streaming evaluation: exact (columns in memory, scikit-learn) vs log-odds histogram.

Timing is off in ordinary test runs (smoke test); ``scripts/bench.py`` or
``pytest benchmarks --benchmark-enable`` compares the two modes in the same run.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fastsample.toolkit.evaluation import evaluate_parquet

N_ROWS = 200_000


@pytest.fixture(scope="module")
def scores_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=N_ROWS)
    p = 1.0 / (1.0 + np.exp(-(-4.0 + x)))
    y = (rng.random(N_ROWS) < p).astype(np.int8)
    w = rng.uniform(1.0, 20.0, size=N_ROWS)
    path = tmp_path_factory.mktemp("bench") / "scores.parquet"
    pl.DataFrame({"y": y, "p": p, "w": w}).write_parquet(path)
    return path


@pytest.mark.parametrize("method", ["exact", "histogram"])
def test_bench_evaluate_parquet(benchmark, scores_path, method):
    benchmark.group = "evaluate_parquet"
    res = benchmark(evaluate_parquet, scores_path, label="y", score="p", weight="w", method=method)
    assert res.method == method and res.n_rows == N_ROWS
    assert 0.5 < res.roc_auc < 1.0
