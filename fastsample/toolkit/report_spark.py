"""The imbalance report of a Spark DataFrame, computed by Spark aggregations.

The same :class:`~fastsample.toolkit.report.ImbalanceReport` as
:func:`fastsample.toolkit.report.imbalance_report` gives for the same rows. pyspark is an
optional dependency (``pip install '.[spark]'``) imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.optional import require
from fastsample.core.validation import label_error
from fastsample.errors import InputError
from fastsample.toolkit.report import ImbalanceReport, class_ratio, explicit_edges, with_bin_bounds

__all__ = ["imbalance_report_spark"]


def imbalance_report_spark(
    df: Any,
    *,
    label: str,
    weight: str | None = None,
    by: str | None = None,
    feature: str | None = None,
    bins: int | Sequence[float] = 10,
    relative_error: float = 1e-4,
) -> Any:
    """Class counts, imbalance ratio and event rates of a Spark DataFrame.

    Spark aggregations only (nothing but the small tables reaches the driver); the result is
    the :class:`fastsample.toolkit.report.ImbalanceReport` that
    :func:`fastsample.toolkit.report.imbalance_report` gives for the same rows.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    label : str
        0/1 (or boolean) label column.
    weight : str, optional
        Row-weight column (e.g. ``sample_weight`` of a sample): counts become weighted sums.
    by : str, optional
        Column for the per-group table (e.g. a date partition).
    feature : str, optional
        Numeric column whose bins get their own event rate.
    bins : int or sequence of float
        Number of quantile bins, or explicit interior edges. Quantile edges come from
        ``DataFrame.approxQuantile`` with ``relative_error``; with explicit edges the table is
        exactly the local one.
    relative_error : float
        Passed to ``approxQuantile`` (0 is exact and costly).
    """
    F = require("pyspark.sql.functions", "spark")
    types = require("pyspark.sql.types", "spark")

    fields = {f.name: f.dataType for f in df.schema.fields}
    numeric = (types.NumericType, types.BooleanType)
    for role, col in (("label", label), ("weight", weight), ("by", by), ("feature", feature)):
        if col is not None and col not in fields:
            raise InputError(f"{role} column {col!r} not found in the Spark DataFrame")
    if not isinstance(fields[label], numeric):
        raise label_error(label, f"type {fields[label].simpleString()}")
    if feature is not None and not isinstance(fields[feature], types.NumericType):
        raise InputError(f"feature column {feature!r} must be numeric")
    y = F.col(label).cast("double")
    w = F.col(weight).cast("double") if weight else F.lit(1.0)
    data = df.select(y.alias("__y"), w.alias("__w"), *[c for c in (by, feature) if c])
    bad_label = data.filter(F.col("__y").isNull() | ~F.col("__y").isin(0.0, 1.0)).select("__y")
    first = bad_label.limit(1).collect()
    if first:
        v = first[0][0]
        raise label_error(label, "null" if v is None else f"value {v!r}")
    if weight:
        wcol = F.col("__w")
        bad = data.filter(
            wcol.isNull() | F.isnan(wcol) | (wcol < 0) | (F.abs(wcol) == float("inf"))
        )
        found = bad.limit(1).collect()
        if found:
            raise InputError(
                f"weight column {weight!r} must be finite and >= 0 (found {found[0][1]!r})"
            )

    def table(keys: list[Any]) -> pl.DataFrame:
        agg = data.groupBy(*keys).agg(
            F.count(F.lit(1)).alias("n_rows"),
            F.sum("__w").alias("rows"),
            F.sum(F.col("__w") * F.col("__y")).alias("positives"),
        )
        t = pl.from_arrow(agg.toArrow())
        assert isinstance(t, pl.DataFrame)
        return t.with_columns(
            pl.col("n_rows").cast(pl.UInt32),
            (pl.col("rows") - pl.col("positives")).alias("negatives"),
            pl.when(pl.col("rows") > 0)
            .then(pl.col("positives") / pl.col("rows"))
            .otherwise(None)
            .alias("event_rate"),
        )

    totals = table([])
    n_rows = int(totals["n_rows"][0]) if totals.height else 0
    if n_rows == 0:
        raise InputError("the Spark DataFrame has no rows")
    pos, rows = float(totals["positives"][0]), float(totals["rows"][0])
    neg = rows - pos
    per_group = None
    if by is not None:
        per_group = table([by]).sort(by, nulls_last=True)
    per_bin = None
    if feature is not None:
        if isinstance(bins, int | np.integer):
            if int(bins) < 1:
                raise InputError(f"bins: must be >= 1 (got {bins})")
            probs = np.linspace(0.0, 1.0, int(bins) + 1)[1:-1].tolist()
            clean = df.select(F.col(feature).cast("double").alias("v")).filter(
                F.col("v").isNotNull() & ~F.isnan("v")
            )
            edges = np.unique(np.asarray(clean.approxQuantile("v", probs, relative_error)))
        else:
            edges = explicit_edges(bins)
        x = F.col(feature).cast("double")
        # bin k holds (edge_{k-1}, edge_k], as in the local report
        idx: Any = F.lit(0)
        for e in edges:
            idx = idx + (x > float(e)).cast("int")
        data = data.withColumn("bin", F.when(x.isNull() | F.isnan(x), None).otherwise(idx))
        t = table(["bin"]).sort("bin", nulls_last=True)
        per_bin = with_bin_bounds(t, edges)
    return ImbalanceReport(
        rows=rows,
        positives=pos,
        negatives=neg,
        n_rows=n_rows,
        event_rate=pos / rows if rows > 0 else float("nan"),
        imbalance_ratio=class_ratio(pos, neg),
        per_group=per_group,
        per_bin=per_bin,
        label=label,
        weight=weight,
        group=by,
        feature=feature,
    )
