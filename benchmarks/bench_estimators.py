"""OffsetLogisticRegression fit time against scikit-learn's LogisticRegression(solver="lbfgs").

Same rows, same penalty (C=1), same run. Target: fastsample's default (Newton, tol 1e-8) within
1.5x of scikit-learn's default lbfgs (tol 1e-4); the ``lbfgs`` row uses the same tolerance as
scikit-learn for a like-for-like solver comparison.

Timing is off in ordinary test runs (each case runs once as a smoke test). For numbers::

    python benchmarks/bench_estimators.py      # writes benchmarks/results/estimators_fit.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

N_ROWS = 300_000
N_FEATURES = 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    coef = rng.normal(scale=0.5, size=N_FEATURES)
    p = 1.0 / (1.0 + np.exp(-(-4.0 + X @ coef)))
    y = (rng.random(N_ROWS) < p).astype(np.int64)
    return X, y


def _fit_sklearn(X, y):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="lbfgs").fit(X, y)


def _fit_newton(X, y):
    from fastsample.models.offset_logistic import OffsetLogisticRegression

    return OffsetLogisticRegression().fit(X, y)


def _fit_lbfgs(X, y):
    from fastsample.models.offset_logistic import OffsetLogisticRegression

    return OffsetLogisticRegression(solver="lbfgs", tol=1e-4).fit(X, y)


FITTERS = {
    "sklearn_lbfgs": _fit_sklearn,
    "fastsample_newton": _fit_newton,
    "fastsample_lbfgs": _fit_lbfgs,
}


@pytest.mark.parametrize("name", list(FITTERS))
def test_bench_logistic_fit(benchmark, data, name):
    X, y = data
    fit = FITTERS[name]
    fit(X[:2000], y[:2000])  # JIT warm-up outside the timed region
    benchmark.group = "logistic_fit"
    benchmark.extra_info["rows"] = N_ROWS
    model = benchmark.pedantic(fit, args=(X, y), rounds=5, iterations=1, warmup_rounds=1)
    # All three solve the same penalised problem: same coefficients up to solver tolerance.
    reference = _fit_newton(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=5e-3)


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                str(Path(__file__)),
                "--benchmark-enable",
                f"--benchmark-json={out}",
                "-p",
                "no:cacheprovider",
            ],
            check=True,
            cwd=root,
        )
        runs = json.loads(out.read_text())
    medians = {b["param"]: b["stats"]["median"] for b in runs["benchmarks"]}
    base = medians["sklearn_lbfgs"]
    lines = [
        f"# OffsetLogisticRegression fit time ({N_ROWS} rows x {N_FEATURES} features, C=1)",
        "",
        f"Machine: {runs['machine_info'].get('cpu', {}).get('brand_raw', '?')}; "
        f"{runs['datetime']}. Median of 5 rounds, same run. Command: "
        "`python benchmarks/bench_estimators.py`.",
        "",
        "| fitter | median s | ratio vs sklearn lbfgs |",
        "| --- | --- | --- |",
    ]
    for name, med in medians.items():
        lines.append(f"| {name} | {med:.3f} | {med / base:.2f} |")
    dest = root / "benchmarks" / "results" / "estimators_fit.md"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
