"""The per-batch step every engine calls: label, keys, features -> :class:`Drawn`.

Every engine (in memory, Parquet, Spark) resolves a :class:`~fastsample.core.plan.SamplingPlan`
once per run and then calls :func:`draw_indices` per batch: the label is checked, the keys are
hashed, and for a linear pilot the scores and the draw are one fused pass over the feature
columns, read in place. :func:`draw_batch` also builds the kept rows of a Polars batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fastsample.core import kernels as K
from fastsample.core.hashing import frame_keys
from fastsample.core.pilot import Pilot, feature_matrix, raise_if_not_finite
from fastsample.core.plan import OutputColumns, SamplingPlan
from fastsample.core.validation import binary_labels
from fastsample.errors import InputError

_EMPTY_2D = np.zeros((0, 0), dtype=np.float64)


def label_array(frame: pl.DataFrame, label: str, *, source: str = "") -> np.ndarray:
    """The label column as int8 0/1; ``InputError`` for a missing, null or non-binary label."""
    if label not in frame.columns:
        where = f" in {source}" if source else ""
        raise InputError(f"label column {label!r} not found{where}")
    return binary_labels(frame.get_column(label), label, source)


def batch_scores(
    frame: pl.DataFrame,
    pilot: Pilot | None,
    code: int,
    info_inv: np.ndarray | None,
    source: str = "",
    *,
    h1_values: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(h0, h1)`` of every row of a batch; ``h1 = -1`` where positives are always kept.

    Parameters
    ----------
    frame : polars.DataFrame
        The batch (the pilot's feature columns at least).
    pilot : Pilot or None
        None scores every row 1 (``uniform``).
    code : int
        The strategy's kernel code (``plan.code``).
    info_inv : ndarray or None
        ``M~^{-1}`` for ``opt-a``.
    source : str
        File name for error messages.
    h1_values : bool
        False allows an empty ``h1`` when every h1 is -1 (the strategies but ``lcc``): the
        draw (``kernels.draw``) reads it so, and no n-sized array of -1 is written.
    """
    n = frame.height
    h0 = np.empty(n)
    h1 = np.empty(n if h1_values or code == K.LCC else 0)
    if pilot is None:
        h0.fill(1.0)
        h1.fill(-1.0)
        return h0, h1
    lin = pilot.linear
    cols = _feature_columns(frame, pilot.features) if n and lin is not None else None
    if cols is not None and lin is not None and code not in (K.OPT_L, K.OPT_A):
        K.for_rows(K.linear_scores_columns, n)(*_addresses(cols), lin[0], lin[1], code, h0, h1)
        if np.isnan(h0.min()):  # min propagates NaN, with no n-sized mask
            _raise_non_finite(
                feature_matrix(frame, pilot.features, check_finite=False), pilot, source
            )
        return h0, h1
    if h1.shape[0] != n:  # only the column kernel leaves h1 unwritten
        h1 = np.empty(n)
    # a linear pilot's kernel flags non-finite features itself (no extra pass over X)
    X = feature_matrix(frame, pilot.features, source=source, check_finite=lin is None)
    Minv = _info(code, info_inv)
    if n == 0:
        return h0, h1
    if lin is not None:
        K.for_rows(K.linear_scores, n)(X, lin[0], lin[1], code, Minv, h0, h1)
        if np.isnan(h0.min()):  # min propagates NaN, with no n-sized mask
            _raise_non_finite(X, pilot, source)
    else:
        K.for_rows(K.strategy_scores, n)(
            code, pilot.logits(X), X if code in (K.OPT_L, K.OPT_A) else _EMPTY_2D, Minv, h0, h1
        )
    return h0, h1


def _feature_columns(frame: pl.DataFrame, features: list[str]) -> list[np.ndarray] | None:
    """The feature columns as contiguous arrays of one float dtype, or None.

    float32 or float64 columns without nulls come out as views of the frame's buffers; None
    (use :func:`feature_matrix`) when the dtypes differ or a column is missing, not a float, or
    has nulls, so the dtype rule and every error message stay :func:`feature_matrix`'s.
    """
    if any(f not in frame.columns for f in features):
        return None
    series = [frame.get_column(f) for f in features]
    dtypes = {s.dtype for s in series}
    if len(dtypes) != 1 or not dtypes <= {pl.Float32, pl.Float64}:
        return None
    if any(s.null_count() for s in series):
        return None
    cols = [s.to_numpy() for s in series]
    if not all(c.flags.c_contiguous for c in cols):
        return None
    return cols


def _addresses(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Arguments of the column kernels: the buffers' addresses and a dtype prototype.

    The kernels read the buffers in place, so the caller keeps ``cols`` alive during the call.
    """
    return np.array([c.ctypes.data for c in cols], dtype=np.uint64), cols[0][:0]


def _raise_non_finite(X: np.ndarray, pilot: Pilot, source: str) -> None:
    raise_if_not_finite(X, pilot.features, source)
    where = f" in {source}" if source else ""
    raise InputError(f"pilot logits overflow{where}: features too large for the pilot's weights")


def _info(code: int, info_inv: np.ndarray | None) -> np.ndarray:
    if code != K.OPT_A:
        return _EMPTY_2D
    if info_inv is None:
        raise InputError("strategy 'opt-a' needs the pilot's information matrix")
    return np.ascontiguousarray(info_inv, dtype=np.float64)


def _buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.float64),
        np.zeros((n + K.BLOCK - 1) // K.BLOCK, dtype=np.int64),
    )


def with_output_columns(frame: pl.DataFrame, drawn: Drawn, columns: OutputColumns) -> pl.DataFrame:
    """The kept rows of ``frame`` with the three output columns appended."""
    idx, prob = drawn.index, drawn.prob
    kept = frame[idx] if idx.shape[0] != frame.height else frame
    return kept.with_columns(
        pl.Series(columns.prob, prob),
        pl.Series(columns.weight, 1.0 / prob),
        pl.Series(columns.offset, drawn.offset),
    )


@dataclass(frozen=True)
class Drawn:
    """The outcome of :func:`draw_indices` for one batch.

    Attributes
    ----------
    index : ndarray of int64
        Positions of the kept rows in the batch, increasing.
    prob, offset : ndarray of float64
        Inclusion probability and log-odds offset of each kept row.
    labels : ndarray of int8
        The batch's 0/1 labels (every row, validated).
    keys : ndarray of uint64
        The key words the draw used (every row).
    """

    index: np.ndarray
    prob: np.ndarray
    offset: np.ndarray
    labels: np.ndarray
    keys: np.ndarray


def draw_indices(
    frame: pl.DataFrame,
    *,
    label: str,
    pilot: Pilot | None,
    plan: SamplingPlan,
    key: str | list[str] | None = None,
    row_offset: int = 0,
    source: str = "",
    labels: np.ndarray | None = None,
    scores: tuple[np.ndarray, np.ndarray] | None = None,
) -> Drawn:
    """Which rows of one batch are kept: the one per-batch step of every engine.

    The decision for each row depends only on its key (or global row index
    ``row_offset + i`` when ``key`` is None), the seed and its pilot score, so splitting the
    input into batches of any size gives the same rows. ``frame`` needs only the label, the
    pilot's features and the key columns; engines holding the batch in another form (an Arrow
    record batch) gather the kept rows themselves with ``index``.

    Parameters
    ----------
    frame : polars.DataFrame
        One batch of input rows.
    label : str
        Label column (0/1).
    pilot : Pilot or None
        Pilot (None only for ``strategy="uniform"``); its features are read from the frame.
    plan : SamplingPlan
        The run's plan (strategy code, floor, seed mix and kappa, resolved once).
    key : str or list of str, optional
        Key column(s).
    row_offset : int
        Global index of the batch's first row (used when ``key`` is None).
    source : str
        File name for error messages.
    labels, scores : optional
        The batch's checked labels and ``(h0, h1)``, when the caller has them already
        (:func:`fastsample.engines.memory.sample_frame` solves kappa on the scores first).
    """
    if pilot is None and plan.code != K.UNIFORM:
        raise InputError(f"strategy {plan.strategy!r} needs a pilot")
    y = label_array(frame, label, source=source) if labels is None else labels
    keys = frame_keys(frame, key, row_offset)
    n = frame.height
    idx, prob, off, counts = _buffers(n)
    code = plan.code
    lin = pilot.linear if pilot is not None else None
    cols = (
        _feature_columns(frame, pilot.features)
        if n and pilot is not None and lin is not None and scores is None
        else None
    )
    args = (y, keys, plan.mix, plan.kappa, plan.floor_value, idx, prob, off, counts)
    if cols is not None and code not in (K.OPT_L, K.OPT_A):
        assert pilot is not None and lin is not None  # cols is only built for a linear pilot
        K.for_rows(K.linear_draw_columns, n)(*_addresses(cols), lin[0], lin[1], code, *args)
        if counts.min() < 0:
            _raise_non_finite(
                feature_matrix(frame, pilot.features, check_finite=False), pilot, source
            )
    elif n and lin is not None and scores is None:
        assert pilot is not None
        X = feature_matrix(frame, pilot.features, source=source, check_finite=False)
        K.for_rows(K.linear_draw, n)(X, lin[0], lin[1], code, _info(code, plan.info_inv), *args)
        if counts.min() < 0:
            _raise_non_finite(X, pilot, source)
    elif n:
        h0, h1 = (
            batch_scores(frame, pilot, code, plan.info_inv, source) if scores is None else scores
        )
        K.for_rows(K.draw, n)(h0, h1, *args)
    kept = int(K.compact(idx, prob, off, counts)) if n else 0
    return Drawn(_trim(idx, kept), _trim(prob, kept), _trim(off, kept), y, keys)


def _trim(buffer: np.ndarray, kept: int) -> np.ndarray:
    # A view of the first rows keeps the whole batch-sized buffer alive as long as the kept
    # rows live, and a sink holds them until a row group is full (262,144 rows: 5M input rows
    # at rate 0.05), so prob and offset pinned 16 bytes per input row and peak memory grew
    # with the input. Copying a small kept part costs little; a large one stays a view.
    return buffer[:kept].copy() if 2 * kept < buffer.shape[0] else buffer[:kept]


def draw_batch(frame: pl.DataFrame, **draw: Any) -> pl.DataFrame:
    """Kept rows of one batch with the three output columns, for a known plan.

    ``draw``: the keyword arguments of :func:`draw_indices` (``label``, ``pilot``, ``plan``
    at least).
    """
    drawn = draw_indices(frame, **draw)
    return with_output_columns(frame, drawn, draw["plan"].columns)


__all__ = [
    "Drawn",
    "batch_scores",
    "draw_batch",
    "draw_indices",
    "label_array",
    "with_output_columns",
]
