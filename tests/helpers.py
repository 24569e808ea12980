"""Synthetic rare-event data shared by the tests."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import polars as pl

FEATURES = ["f0", "f1", "f2", "f3"]


def make_events(n: int, d: int = 4, *, intercept: float = -4.0, seed: int = 0) -> pl.DataFrame:
    """Rows with float32 features f0.., an int64 id and a label from logit = intercept + sum x."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    eta = intercept + X.astype(np.float64) @ np.linspace(1.0, 0.2, d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int64)
    cols = {f"f{j}": X[:, j] for j in range(d)}
    return pl.DataFrame({"id": np.arange(n, dtype=np.int64) * 7919 + 13, **cols, "y": y})


def run_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """``python -m fastsample ARGS`` in a subprocess, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "fastsample", *args], capture_output=True, text=True, **kwargs
    )
