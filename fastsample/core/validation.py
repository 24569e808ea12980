"""Input checks shared across the package: the one 0/1 label check, numeric feature matrices."""

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


def label_error(column: str, found: str, source: str = "") -> InputError:
    """The one message for a label that is not 0/1: it names the file (when known) and column.

    Every label check of the package (Polars frames, Arrow and Spark schemas, Spark jobs,
    arrays) words its error through this, so a user sees one sentence whatever the engine.

    Parameters
    ----------
    column : str
        Label column (or argument) name.
    found : str
        What was found instead, e.g. ``"value 2"``, ``"type string"``, ``"null"``.
    source : str
        File, URI or frame the column was read from; empty when unknown.

    Examples
    --------
    >>> str(label_error("y", "value 2", "a.parquet"))
    "a.parquet: label column 'y' must be 0 or 1, found value 2"
    """
    where = f"{source}: " if source else ""
    return InputError(f"{where}label column {column!r} must be 0 or 1, found {found}")


def binary_labels(values: Any, column: str = "label", source: str = "") -> np.ndarray:
    """0/1 (or boolean) labels as an int8 array, else :func:`label_error`.

    Parameters
    ----------
    values : array-like, polars.Series or pandas.Series
        The labels. Nulls (Polars/pandas missing values, NaN) and any value other than 0 and 1
        are rejected.
    column, source : str
        Named in the error message.
    """
    if hasattr(values, "null_count") and hasattr(values, "dtype") and hasattr(values, "cast"):
        return _polars_labels(values, column, source)
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "O" and any(v is None for v in arr.ravel()):
            raise label_error(column, "null", source)
        ok = np.array([v in (0, 1) and not isinstance(v, str) for v in arr.ravel()], dtype=bool)
        if not ok.all():
            raise label_error(column, f"value {arr.ravel()[~ok][0]!r}", source)
        return arr.astype(np.int8)
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        v = arr[bad][0].item()
        raise label_error(column, "null" if v != v else f"value {v!r}", source)
    return arr.astype(np.int8)


def _polars_labels(s: Any, column: str, source: str) -> np.ndarray:
    import polars as pl  # the caller already holds a Polars series

    if s.null_count():
        raise label_error(column, f"null ({s.null_count()} rows)", source)
    if s.dtype == pl.Boolean:
        return s.cast(pl.Int8).to_numpy()
    if not s.dtype.is_numeric():
        raise label_error(column, f"type {s.dtype}", source)
    bad = s.filter((s != 0) & (s != 1))
    if bad.len():
        raise label_error(column, f"value {bad[0]!r}", source)
    return s.cast(pl.Int8).to_numpy()
