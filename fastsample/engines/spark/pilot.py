"""A pilot trained on a case-control sample of a Spark DataFrame."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.hashing import derive_seed, seed_mix
from fastsample.core.optional import require
from fastsample.core.pilot import feature_matrix
from fastsample.core.pilot_fit import case_control_rates, fit_case_control
from fastsample.core.reference import reference_rate, reference_weight
from fastsample.core.validation import label_error
from fastsample.engines.spark.arrow import (
    KEY,
    LABEL,
    REFERENCE,
    ROLE,
    TRAIN,
    case_control_batches,
    needed,
)
from fastsample.engines.spark.session import check_columns, check_workers, key_names
from fastsample.errors import InputError


def _class_counts(df: Any, label: str) -> tuple[int, int]:
    """(positives, negatives) by one Spark aggregation; ``InputError`` for other labels."""
    rows = df.groupBy(label).count().collect()
    n1 = n0 = 0
    for r in rows:
        v, c = r[0], int(r[1])
        if v is None:
            raise label_error(label, f"null ({c} rows)")
        if isinstance(v, bool | int | float) and v in (0, 1):
            if v == 1:
                n1 += c
            else:
                n0 += c
        else:
            raise label_error(label, f"value {v!r}")
    return n1, n0


def train_pilot_spark(
    df: Any,
    *,
    label: str,
    features: Sequence[str],
    key: str | Sequence[str],
    model: Any = "logistic",
    rows: int | None = None,
    seed: int = 0,
    negatives_per_positive: float = 1.0,
) -> Any:
    """Train a pilot on a case-control sample of a Spark DataFrame, collected to the driver.

    The same pilot as :func:`fastsample.engines.parquet.train_pilot` on the same rows: one Spark
    aggregation counts the classes; the keyed hash on ``derive_seed(seed, "pilot")`` keeps
    positives with probability ``q1`` and negatives with ``q0`` (about
    ``negatives_per_positive`` negatives per positive, at most ``rows`` rows expected); the
    sample is collected and fitted by :func:`fastsample.core.pilot_fit.fit_case_control` (in key
    order, so the partitioning does not matter). ``key`` is required, as in
    :func:`sample_spark`.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    label : str
        0/1 label column.
    features : list of str
        Numeric feature columns.
    key : str or list of str
        Key column(s).
    model : str or sklearn classifier
        ``"logistic"`` (default), ``"sgd"``, ``"hgb"`` or an unfitted classifier / Pipeline.
    rows : int, optional
        Cap on the expected sample size (default 1,000,000); it must fit in driver memory.
    seed : int
        Sampling seed (the pilot derives its own stream from it).
    negatives_per_positive : float
        Case-control ratio.

    Returns
    -------
    fastsample.core.pilot.Pilot
        Ship it to a cluster with ``pilot.save(path)`` and ``spark-submit --files path``.
    """
    seed_mix(seed)  # validates the seed
    cap = 1_000_000 if rows is None else rows
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap <= 0:
        raise InputError(f"rows must be a positive integer, got {rows!r}")
    if isinstance(features, str):
        features = [features]
    feats = list(features)
    if not feats:
        raise InputError("a pilot needs at least one feature column")
    keys = key_names(key)
    check_columns(df, label, feats, keys)
    n1, n0 = _class_counts(df, label)
    check_workers(df)
    q1, q0 = case_control_rates(
        n1, n0, negatives_per_positive=negatives_per_positive, max_rows=int(cap)
    )
    stream = derive_seed(seed, "pilot")
    types = require("pyspark.sql.types", "spark")
    fields = {f.name: f for f in df.schema.fields}
    # The kappa reference sample is drawn in the same pass, as by the local train_pilot.
    itemsize = 4 if all(isinstance(fields[f].dataType, types.FloatType) for f in feats) else 8
    q_ref = reference_rate(n0, len(feats), itemsize)
    schema = types.StructType(
        [fields[f] for f in feats]
        + [
            types.StructField(LABEL, types.ByteType(), False),
            types.StructField(KEY, types.LongType(), False),
            types.StructField(ROLE, types.ByteType(), False),
        ]
    )

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return case_control_batches(batches, label, feats, keys, stream, q1, q0, seed, q_ref)

    cols = needed(label, feats, keys)
    table = df.select(*cols).mapInArrow(fn, schema).toArrow()
    if table.num_rows == 0:
        raise InputError("the pilot's case-control sample is empty; use more rows")
    collected = pl.from_arrow(table)
    assert isinstance(collected, pl.DataFrame)
    sample = collected.filter(pl.col(ROLE) == TRAIN)
    ref = collected.filter(pl.col(ROLE) == REFERENCE)
    if sample.height == 0:
        raise InputError("the pilot's case-control sample is empty; use more rows")
    X = np.ascontiguousarray(feature_matrix(sample, feats))
    return fit_case_control(
        X,
        sample.get_column(LABEL).to_numpy(),
        sample.get_column(KEY).to_numpy().view(np.uint64),
        q1=q1,
        q0=q0,
        features=feats,
        model=model,
        seed=seed,
        label=label,
        n_positive=n1,
        n_negative=n0,
        reference=(
            feature_matrix(ref, feats),
            ref.get_column(KEY).to_numpy().view(np.uint64),
            reference_weight(q_ref, q0),
        ),
    )
