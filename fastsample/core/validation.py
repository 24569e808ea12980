"""Input checks shared by the in-memory learners (online window, extreme-imbalance ensemble)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastsample.errors import InputError


def numeric_matrix(X: Any, expected_features: int | None = None) -> np.ndarray:
    """``X`` (array, pandas or Polars) as a finite float64 2-D array, else ``InputError``.

    ``expected_features``, when given, is the width the learner was fed before.
    """
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):
        X = X.to_numpy()
    try:
        M = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("X: features must be numeric") from None
    if M.ndim != 2:
        raise InputError(f"X must be two-dimensional, got shape {M.shape}")
    if expected_features is not None and M.shape[1] != expected_features:
        raise InputError(f"X has {M.shape[1]} features, the learner was fed {expected_features}")
    if M.size and not np.isfinite(M).all():
        bad = int(np.flatnonzero(~np.isfinite(M).all(axis=0))[0])
        raise InputError(f"X: feature column {bad} contains NaN or infinite values")
    return M
