"""The in-memory path against the tutorial's, and the fused kernel against a memory roofline.

Same run, same data (``FASTSAMPLE_BENCH_ROWS`` rows x 16 float32 features; 20k by default so
that ordinary test runs only smoke-test these):

* ``sample_frame`` with a LogisticRegression pilot (fused path, exact kappa) vs the tutorial's
  NumPy path (``predict_proba`` + its sampling function, ``reference.tutorial_negative_sampling``);
* the fused one-pass kernels alone (kappa known): ``linear_draw`` on the column-major matrix
  and ``linear_draw_columns`` on the frame's own column buffers (the engines' path), vs
  ``X.sum()`` over the same features: the cost of just reading them once (the roofline);
* ``correct_proba`` vs the tutorial's correction formula.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from fastsample.core import kernels as K
from fastsample.core.correction import correct_proba
from fastsample.core.pilot import Pilot
from fastsample.engines.memory import sample_frame
from fastsample.testing.reference import tutorial_correct_probabilities, tutorial_negative_sampling

ROWS = int(os.environ.get("FASTSAMPLE_BENCH_ROWS", "20000"))
D = 16
FEATURES = [f"f{j}" for j in range(D)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = np.asfortranarray(rng.normal(size=(ROWS, D)).astype(np.float32))
    beta = np.linspace(0.8, -0.4, D)
    eta = -4.5 + X.astype(np.float64) @ beta
    y = (rng.random(ROWS) < 1 / (1 + np.exp(-eta))).astype(np.int8)
    frame = pl.DataFrame({**{f: X[:, j] for j, f in enumerate(FEATURES)}, "y": y})
    frame = frame.with_columns(pl.int_range(ROWS, dtype=pl.Int64).alias("id"))
    model = LogisticRegression().fit(X[: min(ROWS, 200_000)], y[: min(ROWS, 200_000)])
    return {"X": X, "Xc": np.ascontiguousarray(X), "y": y, "frame": frame, "model": model}


def test_sample_frame_fused(benchmark, data):
    benchmark.group = "in-memory path"
    pilot = Pilot(data["model"], FEATURES)
    run = lambda: sample_frame(data["frame"], label="y", pilot=pilot, rate=0.1, key="id")  # noqa: E731
    run()
    out = benchmark.pedantic(run, rounds=5, iterations=1)
    assert out.height > 0


def test_tutorial_numpy_path(benchmark, data):
    benchmark.group = "in-memory path"
    rng = np.random.default_rng(1)
    run = lambda: tutorial_negative_sampling(data["Xc"], data["y"], data["model"], 0.1, rng)  # noqa: E731
    run()
    out = benchmark.pedantic(run, rounds=5, iterations=1)
    assert out[0].shape[0] > 0


def _fused_args(data):
    X, y = data["X"], data["y"]
    model = data["model"]
    n = X.shape[0]
    nblocks = (n + K.BLOCK - 1) // K.BLOCK
    return (
        X,
        model.coef_[0].astype(np.float64),
        float(model.intercept_[0]),
        K.PROPORTIONAL,
        np.zeros((0, 0)),
        y,
        np.arange(n, dtype=np.uint64),
        np.uint64(7),
        2.0,
        2.0**-53,
        np.empty(n, np.int64),
        np.empty(n),
        np.empty(n),
        np.zeros(nblocks, np.int64),
    )


def test_fused_kernel(benchmark, data):
    benchmark.group = "roofline"
    args = _fused_args(data)
    kernel = K.for_rows(K.linear_draw, data["X"].shape[0])
    kernel(*args)
    benchmark.pedantic(kernel, args=args, rounds=7, iterations=1)


def test_fused_kernel_columns(benchmark, data):
    benchmark.group = "roofline"
    args = _fused_args(data)
    cols = [data["frame"].get_column(f).to_numpy() for f in FEATURES]
    addresses = np.array([c.ctypes.data for c in cols], dtype=np.uint64)
    col_args = (addresses, cols[0][:0], *args[1:4], *args[5:])
    kernel = K.for_rows(K.linear_draw_columns, data["X"].shape[0])
    kernel(*col_args)
    benchmark.pedantic(kernel, args=col_args, rounds=7, iterations=1)


def test_roofline_sum(benchmark, data):
    benchmark.group = "roofline"
    X = data["X"]
    X.sum()
    benchmark.pedantic(X.sum, rounds=7, iterations=1)


@pytest.fixture(scope="module")
def probs():
    rng = np.random.default_rng(2)
    p = rng.random(ROWS) * 0.98 + 0.01
    pi = rng.random(ROWS) * 0.9 + 0.05
    return p, pi, -np.log(pi)


def test_correct_proba(benchmark, probs):
    benchmark.group = "correction"
    p, _, offset = probs
    correct_proba(p, offset)
    benchmark.pedantic(correct_proba, args=(p, offset), rounds=7, iterations=1)


def test_tutorial_correction(benchmark, probs):
    benchmark.group = "correction"
    p, pi, _ = probs
    benchmark.pedantic(tutorial_correct_probabilities, args=(p, pi), rounds=7, iterations=1)
