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
import time

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


def make_data(rows: int = ROWS) -> dict:
    """The benchmark's frame, matrices and LogisticRegression pilot (seeded)."""
    rng = np.random.default_rng(0)
    X = np.asfortranarray(rng.normal(size=(rows, D)).astype(np.float32))
    beta = np.linspace(0.8, -0.4, D)
    eta = -4.5 + X.astype(np.float64) @ beta
    y = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(np.int8)
    frame = pl.DataFrame({**{f: X[:, j] for j, f in enumerate(FEATURES)}, "y": y})
    frame = frame.with_columns(pl.int_range(rows, dtype=pl.Int64).alias("id"))
    model = LogisticRegression().fit(X[: min(rows, 200_000)], y[: min(rows, 200_000)])
    return {"X": X, "Xc": np.ascontiguousarray(X), "y": y, "frame": frame, "model": model}


@pytest.fixture(scope="module")
def data():
    return make_data()


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


def _probs(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    p = rng.random(rows) * 0.98 + 0.01
    pi = rng.random(rows) * 0.9 + 0.05
    return p, pi, -np.log(pi)


@pytest.fixture(scope="module")
def probs():
    return _probs(ROWS)


def test_correct_proba(benchmark, probs):
    benchmark.group = "correction"
    p, _, offset = probs
    correct_proba(p, offset)
    benchmark.pedantic(correct_proba, args=(p, offset), rounds=7, iterations=1)


def test_tutorial_correction(benchmark, probs):
    benchmark.group = "correction"
    p, pi, _ = probs
    benchmark.pedantic(tutorial_correct_probabilities, args=(p, pi), rounds=7, iterations=1)


def interleaved(rows: int, rounds: int = 7) -> dict[str, float]:
    """Median seconds of each comparison and of ``sample_frame``'s phases, rounds interleaved.

    One round runs every entry once, in turn, so a change of the machine's load hits all of
    them alike (``scripts/bench_core.py`` runs this in a fresh process).
    """
    from fastsample.core.plan import resolve_parameters, solve_plan
    from fastsample.engines.batch import batch_scores, draw_indices, with_output_columns

    d = make_data(rows)
    frame, y = d["frame"], d["y"]
    pilot = Pilot(d["model"], FEATURES)
    params = resolve_parameters("proportional", 0.1, None, 0)
    # sample_frame's own call: every positive is kept, so h1 stays empty (read as -1)
    h0, h1 = batch_scores(frame, pilot, params.code, None, h1_values=False)
    neg = y == 0
    plan = solve_plan(params, h0[neg])
    drawn = draw_indices(frame, label="y", pilot=pilot, plan=plan, key="id", labels=y)
    args = _fused_args(d)
    cols = [frame.get_column(f).to_numpy() for f in FEATURES]
    col_args = (np.array([c.ctypes.data for c in cols], dtype=np.uint64), cols[0][:0])
    col_args += (*args[1:4], *args[5:])
    p, pi, offset = _probs(rows)
    rng = np.random.default_rng(1)
    runs = {
        "sample_frame": lambda: sample_frame(frame, label="y", pilot=pilot, rate=0.1, key="id"),
        "tutorial": lambda: tutorial_negative_sampling(d["Xc"], y, d["model"], 0.1, rng),
        "roofline": d["X"].sum,
        "linear_draw": lambda: K.linear_draw(*args),
        "linear_draw_columns": lambda: K.linear_draw_columns(*col_args),
        "correct_proba": lambda: correct_proba(p, offset),
        "tutorial_correction": lambda: tutorial_correct_probabilities(p, pi),
        "phase: scores": lambda: batch_scores(frame, pilot, params.code, None, h1_values=False),
        "phase: negatives' scores": lambda: h0[neg],
        "phase: kappa": lambda: solve_plan(params, h0[neg]),
        "phase: draw": lambda: draw_indices(
            frame, label="y", pilot=pilot, plan=plan, key="id", labels=y, scores=(h0, h1)
        ),
        "phase: kept rows": lambda: with_output_columns(frame, drawn, plan.columns),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # compile and warm up
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    # the kappa phase re-did the negatives' copy: report the solve alone
    out = {name: float(np.median(t)) for name, t in times.items()}
    out["phase: kappa"] -= out["phase: negatives' scores"]
    return out
