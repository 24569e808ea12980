"""The logistic pilot on real-looking logs: standardised features, one line when not converged.

The field-like log has lognormal and Pareto-tailed features on scales from 1e-3 to 1e5. An
unscaled logistic fit stops at its iteration limit there (scikit-learn prints a nine-line
ConvergenceWarning with URLs); the standardised one converges, and its folded coefficients
score exactly as the fitted pipeline.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from fastsample.core.pilot_fit import fit_pilot
from fastsample.errors import FastsampleWarning
from fastsample.harness.fieldlike import field_like_table


@pytest.fixture(scope="module")
def heavy() -> tuple[pl.DataFrame, list[str]]:
    df = pl.from_arrow(field_like_table(60_000, positives=1_000, features=12, seed=3))
    assert isinstance(df, pl.DataFrame)
    return df, [c for c in df.columns if c not in ("id", "user_id", "y")]


def test_logistic_pilot_converges_on_heavy_tailed_unscaled_features(heavy) -> None:
    df, feats = heavy
    X = df.select(feats).to_numpy()
    scales = X.std(axis=0)
    assert scales.max() / scales.min() > 1e6  # the scales the test is about
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = fit_pilot(df, df["y"].to_numpy(), features=feats, seed=2)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    last = p.model[-1]
    assert last.n_iter_[0] < last.max_iter
    # the kernels' folded coefficients compute the pipeline's logit
    np.testing.assert_allclose(
        p.logits(df), p.model.decision_function(X) + p.logit_shift, rtol=1e-9, atol=1e-9
    )


def test_an_unscaled_fit_of_the_same_sample_does_not_converge(heavy) -> None:
    """What the default avoids: the previous default model on the same rows."""
    df, feats = heavy
    with pytest.warns(FastsampleWarning, match="logistic|LogisticRegression"):
        fit_pilot(
            df,
            df["y"].to_numpy(),
            features=feats,
            model=LogisticRegression(C=100.0, max_iter=1000),
            seed=2,
        )


def test_a_pilot_that_does_not_converge_warns_in_one_line(heavy) -> None:
    df, feats = heavy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_pilot(df, df["y"].to_numpy(), features=feats, model=LogisticRegression(max_iter=3))
    assert [w.category for w in caught] == [FastsampleWarning]
    text = str(caught[0].message)
    assert "LogisticRegression pilot did not converge" in text and "\n" not in text
    assert not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_cli_pilot_prints_no_library_warning(tmp_path, heavy) -> None:
    df, feats = heavy
    src = tmp_path / "heavy.parquet"
    pq.write_table(df.to_arrow(), src)
    cmd = [sys.executable, "-m", "fastsample", "pilot", str(src), "-o", str(tmp_path / "p.npz")]
    res = subprocess.run(
        [*cmd, "--label", "y", "-f", ",".join(feats), "--quiet"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
