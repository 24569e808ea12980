"""The ``mapInArrow`` path: the local engine's kernels on each Arrow batch, on the executors.

For what the native path cannot express (non-linear pilots, ``timestamp_ntz`` keys) and the
exact mode's score passes. The workers need fastsample (see ``session.check_workers``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from fastsample.core.hashing import frame_keys, uniform_from_keys
from fastsample.core.kappa import Refinement, refine_part, score_bits, top_partial
from fastsample.core.plan import SamplingPlan
from fastsample.core.reference import reference_take
from fastsample.core.strategies import strategy_code
from fastsample.engines.batch import batch_scores, draw_indices, label_array
from fastsample.engines.spark.session import broadcast, spark_types
from fastsample.engines.stream import kept_rows


def needed(label: str, features: Sequence[str], keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([label, *features, *keys]))


def views(batches: Iterator[Any], cols: list[str]) -> Iterator[tuple[Any, Any]]:
    """Each non-empty Arrow batch with a Polars view of ``cols``.

    The batch itself is kept so that output rows can be gathered from it with their exact
    Spark/Arrow types.
    """
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


# Rows of the exact-kappa passes (:func:`kappa_batches`): what each row carries.
KAPPA_SCHEMA = "kind int, j int, idx long, count long, hi long, lo long, value double"
TOP, COLLECT, SPLIT = 0, 1, 2


def kappa_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    strategy: str,
    info_inv: np.ndarray | None,
    label: str,
    features: list[str],
    request: Refinement | None,
) -> Iterator[Any]:
    """One partition's partial of the exact-kappa pass of :mod:`fastsample.core.kappa`.

    ``request=None``: the top-level histogram (``top_partial``) of the partition's
    negatives; otherwise its ``refine_part`` answer: the collected scores and the non-empty
    sub-bins. Rows follow :data:`KAPPA_SCHEMA`; the driver merges them in any order.
    """
    pilot = pilot_handle.value
    cols = needed(label, features, [])
    parts = [
        score_bits(negative_scores(view, label, pilot, strategy, info_inv))
        for _batch, view in views(batches, cols)
    ]
    bits = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    out: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    if request is None:
        idx, count, hi, lo = top_partial(bits)
        out.append((TOP, 0, idx, count, hi, lo, np.zeros(idx.size)))
    else:
        part = refine_part(bits, request)
        for j, found in enumerate(part.values):
            v = np.concatenate(found) if found else np.zeros(0)
            fill = np.zeros(v.size, np.int64)
            out.append((COLLECT, j, fill, fill, fill, fill, v))
        for j in range(len(request.split)):
            nz = np.flatnonzero(part.count[j])
            sub = (part.count[j][nz], part.hi[j][nz], part.lo[j][nz])
            out.append((SPLIT, j, nz.astype(np.int64), *sub, np.zeros(nz.size)))
    for kind, j, idx, count, hi, lo, value in out:
        n = value.size  # every array of a group has this length
        if n == 0:
            continue
        yield pa.RecordBatch.from_pydict(
            {
                "kind": pa.array(np.full(n, kind, np.int32)),
                "j": pa.array(np.full(n, j, np.int32)),
                "idx": pa.array(idx, pa.int64()),
                "count": pa.array(count, pa.int64()),
                "hi": pa.array(hi, pa.int64()),
                "lo": pa.array(lo, pa.int64()),
                "value": pa.array(value, pa.float64()),
            }
        )


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
