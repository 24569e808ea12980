"""Class reweighting and random undersampling, with the correction each one needs.

Reweighting classes by ``w_1, w_0`` changes the likelihood exactly as keeping class ``y`` with a
probability proportional to ``w_y`` would, so a logistic model fitted with class weights learns
``logit p(x) + log(w_1 / w_0)``. Its probabilities are therefore *not* population
probabilities (the seed tutorial reads them as if they were): subtract the constant log-odds
shift :func:`class_weight_offset` — for balanced weights ``log(N0 / N1)`` — with
:func:`fastsample.core.correction.correct_proba`, as :func:`correct_class_weighted_proba` does.

Random undersampling is the ``uniform`` strategy of the sampling core: every positive and each
negative with the same probability, decided by the keyed hash (reproducible, independent of
row order and batching). Its output carries the usual ``sampling_prob``, ``sample_weight`` and
``log_odds_offset`` (``-log rate``) columns, so the offset fit or the post-hoc correction puts a
model back on the population scale.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from sklearn.utils.class_weight import compute_class_weight

from fastsample.core.atomic import atomic_path
from fastsample.core.correction import correct_proba
from fastsample.core.strategies import undersampling_rate
from fastsample.core.validation import binary_labels
from fastsample.engines.batch import label_array
from fastsample.engines.memory import as_polars_frame, sample_frame
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.sinks import ParquetSink, check_output
from fastsample.engines.sources import iter_frames, resolve_source
from fastsample.errors import InputError
from fastsample.toolkit.report import imbalance_report

__all__ = [
    "add_class_weight_column",
    "balanced_class_weights",
    "class_weight_offset",
    "correct_class_weighted_proba",
    "reweight_parquet",
    "undersample",
    "undersample_parquet",
    "undersampling_rate",
]


def _labels01(y: Any, name: str = "label") -> np.ndarray:
    return binary_labels(y, name)


def balanced_class_weights(y: Any, sample_weight: Any = None) -> dict[int, float]:
    """Balanced weights ``n / (2 n_c)`` per class (scikit-learn's ``compute_class_weight``).

    Parameters
    ----------
    y : array of 0/1 labels
    sample_weight : array, optional
        Row weights (e.g. a sample's ``sample_weight``): class sizes become weighted sums.

    Returns
    -------
    dict ``{0: w_0, 1: w_1}``; after weighting, both classes carry the same total weight.
    """
    labels = _labels01(y)
    for cls in (0, 1):
        if not np.any(labels == cls):
            raise InputError(f"label: class {cls} is absent; balanced weights need both classes")
    w = compute_class_weight(
        "balanced", classes=np.array([0, 1]), y=labels, sample_weight=sample_weight
    )
    return {0: float(w[0]), 1: float(w[1])}


def _weights_from_counts(n_negative: float, n_positive: float) -> dict[int, float]:
    """The same balanced rule from class totals (what a streaming pass can compute)."""
    if n_negative <= 0 or n_positive <= 0:
        cls = 1 if n_positive <= 0 else 0
        raise InputError(f"label: class {cls} is absent; balanced weights need both classes")
    n = n_negative + n_positive
    return {0: n / (2.0 * n_negative), 1: n / (2.0 * n_positive)}


def _check_weights(class_weight: Mapping[int, float]) -> dict[int, float]:
    try:
        w = {0: float(class_weight[0]), 1: float(class_weight[1])}
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"class_weight must map 0 and 1 to positive numbers, got {class_weight!r}"
        ) from None
    if not all(v > 0 and math.isfinite(v) for v in w.values()):
        raise InputError(f"class_weight must map 0 and 1 to positive numbers, got {class_weight!r}")
    return w


def class_weight_offset(class_weight: Mapping[int, float]) -> float:
    """The log-odds shift ``log(w_1 / w_0)`` that class weights add to a logistic model."""
    w = _check_weights(class_weight)
    return math.log(w[1] / w[0])


def correct_class_weighted_proba(proba: Any, class_weight: Mapping[int, float]) -> np.ndarray:
    """Population probabilities of a model trained with ``class_weight``.

    ``sigmoid(logit(proba) - log(w_1 / w_0))`` via :func:`fastsample.core.correction.correct_proba`.
    Exact for a well-specified logistic model; for other models it removes the prior shift.
    """
    return correct_proba(proba, class_weight_offset(class_weight))


def _resolve_weights(
    class_weight: Any, y: np.ndarray | None = None, counts: tuple[float, float] | None = None
) -> dict[int, float]:
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise InputError(f"class_weight: {class_weight!r} is not 'balanced' or a mapping")
        if y is not None:
            return balanced_class_weights(y)
        assert counts is not None
        return _weights_from_counts(*counts)
    return _check_weights(class_weight)


def add_class_weight_column(
    frame: Any, *, label: str, class_weight: Any = "balanced", name: str = "class_weight"
) -> Any:
    """``frame`` with a per-row weight column ``name`` holding its class's weight.

    Parameters
    ----------
    frame : polars or pandas DataFrame
    label : 0/1 label column
    class_weight : ``"balanced"`` or a mapping ``{0: w_0, 1: w_1}``
    name : new column's name (must not exist)
    """
    is_pandas = type(frame).__module__.startswith("pandas")
    df = pl.from_pandas(frame) if is_pandas else frame
    if not isinstance(df, pl.DataFrame):
        raise InputError(f"frame must be a polars or pandas DataFrame, got {type(frame).__name__}")
    if label not in df.columns:
        raise InputError(f"label column {label!r} not found")
    if name in df.columns:
        raise InputError(f"output column {name!r} already exists; choose another name")
    y = _labels01(df[label].to_numpy(), f"label column {label!r}")
    w = _resolve_weights(class_weight, y=y)
    out = df.with_columns(pl.Series(name, np.where(y == 1, w[1], w[0])))
    return out.to_pandas() if is_pandas else out


def reweight_parquet(
    source: Any,
    output: str | os.PathLike[str],
    *,
    label: str,
    class_weight: Any = "balanced",
    name: str = "class_weight",
    overwrite: bool = False,
    batch_rows: int = 1 << 18,
) -> dict[str, Any]:
    """Copy a Parquet source to ``output`` with a per-row class-weight column, streaming.

    One counting pass (for ``"balanced"``) and one writing pass, both in bounded memory; the
    output is written atomically and its key-value metadata (``fastsample``) records the
    weights and the log-odds shift to subtract from a model trained with them.

    Returns
    -------
    dict with ``class_weight``, ``log_odds_shift``, ``rows``, ``positives``, ``negatives``.
    """
    src = resolve_source(source)
    out = check_output(output, overwrite=overwrite, source=src)
    if name in src.schema.names:
        raise InputError(f"output column {name!r} already exists in {src.files[0]!r}")
    rep = imbalance_report(src, label=label, per_file=False)
    w = _resolve_weights(class_weight, counts=(rep.negatives, rep.positives))
    record = {
        "operation": "class-reweight",
        "label": label,
        "column": name,
        "class_weight": {str(k): v for k, v in w.items()},
        "log_odds_shift": class_weight_offset(w),
        "rows": rep.n_rows,
        "positives": rep.positives,
        "negatives": rep.negatives,
    }
    schema = src.schema.append(pa.field(name, pa.float64()))
    with atomic_path(out, overwrite=overwrite) as tmp:
        sink = ParquetSink(tmp, schema)
        for frame, _ in iter_frames(src, batch_rows=batch_rows):
            y = pl.col(label).cast(pl.Float64)
            batch = frame.with_columns(
                pl.when(y == 1.0).then(w[1]).otherwise(w[0]).cast(pl.Float64).alias(name)
            )
            sink.write(batch.to_arrow())
        sink.close(metadata=record)
    return record


# ----------------------------------------------------------------------------- undersampling


def _undersampling(
    n1: float, n0: float, negatives_per_positive: float, seed: int
) -> dict[str, Any]:
    """The sampling core's arguments for random undersampling: uniform, at the rate keeping
    ``negatives_per_positive`` negatives per positive in expectation."""
    rate = undersampling_rate(n1, n0, negatives_per_positive)
    return {"strategy": "uniform", "rate": rate, "seed": seed}


def undersample(
    frame: Any,
    *,
    label: str,
    negatives_per_positive: float = 1.0,
    seed: int = 0,
    key: str | list[str] | None = None,
    return_info: bool = False,
) -> Any:
    """Random undersampling of the negatives to a target ratio, with the keyed draw.

    Every positive is kept; each negative with probability
    :func:`undersampling_rate` (so the expected ratio is ``negatives_per_positive : 1``). The
    output has the sampling core's three columns; ``log_odds_offset`` is ``-log rate`` on every
    row, the constant to subtract from a model fitted without it.

    Parameters
    ----------
    frame : polars / pandas DataFrame or 2-D array (see :func:`fastsample.engines.batch.sample_frame`)
    label : 0/1 label column
    negatives_per_positive : float
        Target kept negatives per positive (1.0 = balanced).
    seed : int
        Sampling seed.
    key : str or list of str, optional
        Key column(s); default the row index (then the sample depends on row order).
    return_info : bool
        Also return the sampling core's info dict (counts, plan).
    """
    df, label_name, _ = as_polars_frame(frame, label)
    if not isinstance(label_name, str) or label_name not in df.columns:
        raise InputError(f"label column {label!r} not found")
    y = label_array(df, label_name)
    n1 = float(np.count_nonzero(y == 1))
    draw = _undersampling(n1, float(y.shape[0]) - n1, negatives_per_positive, seed)
    return sample_frame(frame, label=label, key=key, return_info=return_info, **draw)


def undersample_parquet(
    source: Any,
    output: str | os.PathLike[str],
    *,
    label: str,
    negatives_per_positive: float = 1.0,
    seed: int = 0,
    **engine_options: Any,
) -> Any:
    """Random undersampling of a Parquet source with the streaming engine.

    Counts the classes in one streaming pass, then runs
    :func:`fastsample.engines.parquet.sample_parquet` with ``strategy="uniform"`` at the rate
    :func:`undersampling_rate` gives. Other keyword arguments (``key``, ``overwrite``,
    ``progress``, ...) go to the engine.
    """
    rep = imbalance_report(source, label=label, per_file=False)
    draw = _undersampling(rep.positives, rep.negatives, negatives_per_positive, seed)
    return sample_parquet(source, output, label=label, **draw, **engine_options)
