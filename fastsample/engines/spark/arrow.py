"""The ``mapInArrow`` path: the local engine's kernels on each Arrow batch, on the executors.

For what the native path cannot express (non-linear pilots, ``timestamp_ntz`` keys) and the
exact mode's score passes. The workers need fastsample (see ``session.check_workers``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fastsample.core.plan import SamplingPlan
from fastsample.core.strategies import strategy_code
from fastsample.engines.batch import batch_scores, draw_indices, label_array
from fastsample.engines.spark.session import broadcast, spark_types
from fastsample.engines.stream import kept_rows
from fastsample.errors import InputError

# Bin id of zero scores (log2 is -inf there): below every real bin.
ZERO_BIN = -(2**62)


def needed(label: str, features: Sequence[str], keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([label, *features, *keys]))


def views(batches: Iterator[Any], cols: list[str]) -> Iterator[tuple[Any, Any]]:
    """Each non-empty Arrow batch with a Polars view of ``cols``.

    The batch itself is kept so that output rows can be gathered from it with their exact
    Spark/Arrow types.
    """
    import polars as pl

    for batch in batches:
        if batch.num_rows == 0:
            continue
        view = pl.from_arrow(batch.select(cols))
        assert isinstance(view, pl.DataFrame)
        yield batch, view


def negative_scores(
    view: Any, label: str, pilot: Any, strategy: str, info_inv: np.ndarray | None
) -> np.ndarray:
    """The pilot's scores of the batch's negatives (the rows the plan draws from)."""
    import polars as pl

    y = label_array(view, label)
    h0, _ = batch_scores(view.filter(pl.Series(y == 0)), pilot, strategy_code(strategy), info_inv)
    return h0


def draw_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    plan: SamplingPlan,
    label: str,
    features: list[str],
    keys: list[str],
) -> Iterator[Any]:
    import pyarrow as pa

    pilot = pilot_handle.value
    key: str | list[str] = keys[0] if len(keys) == 1 else keys
    cols = needed(label, features, keys)
    schema = None
    for batch, view in views(batches, cols):
        drawn = draw_indices(view, label=label, pilot=pilot, plan=plan, key=key)
        if drawn.index.size == 0:
            continue
        if schema is None:
            schema = batch.schema
            for n in plan.columns.names():
                schema = schema.append(pa.field(n, pa.float64(), nullable=False))
        # The kept rows come from the original Arrow batch, so every input column keeps its
        # exact Spark/Arrow type (no round trip through Polars types).
        yield kept_rows(batch, drawn, schema)


def histogram_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    strategy: str,
    info_inv: np.ndarray | None,
    label: str,
    features: list[str],
    scale: float,
    ranges: np.ndarray,
) -> Iterator[Any]:
    """Per-batch histogram of the negatives' scores: (bin, count, sum, min, max) rows.

    ``ranges`` (k x 2, sorted, disjoint) restricts the rows to scores inside one of them;
    an empty array means every negative.
    """
    import pyarrow as pa

    pilot = pilot_handle.value
    cols = needed(label, features, [])
    for _batch, view in views(batches, cols):
        h0 = negative_scores(view, label, pilot, strategy, info_inv)
        if h0.size and not np.isfinite(h0).all():
            raise InputError("pilot scores contain NaN or infinite values")
        h0 = in_ranges(h0, ranges)
        if h0.size == 0:
            continue
        b = bin_ids(h0, scale)
        order = np.argsort(b, kind="stable")
        b, hs = b[order], h0[order]
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        yield pa.RecordBatch.from_pydict(
            {
                "bin": pa.array(b[starts], pa.int64()),
                "n": pa.array(np.diff(np.r_[starts, b.size]), pa.int64()),
                "s": pa.array(np.add.reduceat(hs, starts), pa.float64()),
                "lo": pa.array(np.minimum.reduceat(hs, starts), pa.float64()),
                "hi": pa.array(np.maximum.reduceat(hs, starts), pa.float64()),
            }
        )


def scores_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    strategy: str,
    info_inv: np.ndarray | None,
    label: str,
    features: list[str],
    ranges: np.ndarray,
) -> Iterator[Any]:
    """The negatives' scores that fall inside ``ranges`` (for the exact solve)."""
    import pyarrow as pa

    pilot = pilot_handle.value
    cols = needed(label, features, [])
    for _batch, view in views(batches, cols):
        h0 = negative_scores(view, label, pilot, strategy, info_inv)
        h0 = in_ranges(h0, ranges)
        if h0.size:
            yield pa.RecordBatch.from_pydict({"h": pa.array(h0, pa.float64())})


def bin_ids(h: np.ndarray, scale: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        b = np.floor(np.log2(h) * scale)
    out = np.where(h > 0, b, 0).astype(np.int64)
    out[h <= 0] = ZERO_BIN
    return out


def in_ranges(h: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    if ranges.shape[0] == 0:
        return h
    i = np.searchsorted(ranges[:, 0], h, side="right") - 1
    ok = (i >= 0) & (h <= ranges[np.clip(i, 0, None), 1])
    return h[ok]


def case_control_batches(
    batches: Iterator[Any],
    label: str,
    features: list[str],
    keys: list[str],
    stream: int,
    q1: float,
    q0: float,
    seed: int,
    q_ref: float,
) -> Iterator[Any]:
    """Rows of the pilot's case-control sample and of its kappa reference sample: features,
    label, key word and role (:data:`TRAIN` or :data:`REFERENCE`)."""
    import pyarrow as pa

    from fastsample.core.hashing import frame_keys, uniform_from_keys
    from fastsample.core.reference import reference_take

    key: str | list[str] = keys[0] if len(keys) == 1 else keys
    cols = needed(label, features, keys)
    for batch, view in views(batches, cols):
        y = label_array(view, label)
        words = frame_keys(view, key)
        take = uniform_from_keys(words, stream) < np.where(y == 1, q1, q0)
        ref = reference_take(y, words, seed, q_ref, take)
        rows = take | ref
        if not rows.any():
            continue
        idx = pa.array(np.flatnonzero(rows))
        arrays = [batch.column(f).take(idx) for f in features]
        arrays += [
            pa.array(y[rows].astype(np.int8)),
            pa.array(words[rows].view(np.int64)),
            pa.array(np.where(take[rows], TRAIN, REFERENCE).astype(np.int8)),
        ]
        names = [*features, LABEL, KEY, ROLE]
        yield pa.RecordBatch.from_arrays(arrays, names=names)


# Names of the case-control sample's label and key columns (beside the features).
LABEL = "__fastsample_label__"
KEY = "__fastsample_key__"
ROLE = "__fastsample_role__"
TRAIN, REFERENCE = 1, 2


def apply_arrow(
    df: Any, plan: SamplingPlan, pilot: Any, label: str, feats: list[str], keys: list[str]
) -> Any:
    """The sample computed by the kernels inside ``mapInArrow`` (the pilot broadcast once)."""
    types = spark_types()
    handle = broadcast(df, pilot)
    schema = types.StructType(
        [*df.schema.fields]
        + [types.StructField(n, types.DoubleType(), False) for n in plan.columns.names()]
    )

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return draw_batches(batches, handle, plan, label, feats, keys)

    return df.mapInArrow(fn, schema)
