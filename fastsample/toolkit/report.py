"""Imbalance report: class counts, imbalance ratio and event rates, from Parquet or memory.

One Polars lazy query serves both inputs: an in-memory frame is wrapped as a ``LazyFrame`` and
a Parquet source is scanned, then the same ``group_by`` aggregations run on the streaming
engine, so memory does not grow with the row count (per-file and per-bin tables have one row
per file or bin). With ``weight`` (e.g. fastsample's ``sample_weight`` column) every count is
a weighted sum, i.e. a Horvitz–Thompson estimate of the population count the sample was drawn
from.

Definitions: ``imbalance_ratio = majority count / minority count`` (>= 1; ``inf`` when a class
is absent — 1000 means "1 in 1001 rows is the rare class"); ``event_rate = positives / rows``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.validation import label_error
from fastsample.engines.sources import Source, resolve_source
from fastsample.errors import InputError
from fastsample.toolkit.frames import FILE_COLUMN, is_source, open_frame

__all__ = [
    "ImbalanceReport",
    "class_ratio",
    "explicit_edges",
    "format_count",
    "imbalance_report",
    "with_bin_bounds",
]

# Rows read to estimate quantile bin edges of a Parquet column (a deterministic, evenly spaced
# subsample: the edges only need to be representative, the counts per bin are exact).
_EDGE_SAMPLE_ROWS = 1_000_000


@dataclass(frozen=True)
class ImbalanceReport:
    """Class balance of a data set.

    Attributes
    ----------
    rows, positives, negatives : float
        Counts (weighted sums when a weight column was given).
    n_rows : int
        Number of physical rows read.
    event_rate : float
        ``positives / rows``.
    imbalance_ratio : float
        ``max(positives, negatives) / min(positives, negatives)``; ``inf`` if a class is absent.
    per_group : polars.DataFrame or None
        One row per file or partition value: rows, positives, negatives, event_rate.
    per_bin : polars.DataFrame or None
        One row per bin of ``feature``: bin, lower, upper, rows, positives, event_rate
        (bin ``null`` holds missing values; bins are ``(lower, upper]``).
    label, weight, group, feature : str or None
        Column names the report was built from.
    """

    rows: float
    positives: float
    negatives: float
    n_rows: int
    event_rate: float
    imbalance_ratio: float
    per_group: Any = None
    per_bin: Any = None
    label: str = "y"
    weight: str | None = None
    group: str | None = None
    feature: str | None = None

    @property
    def minority_class(self) -> int:
        """The rarer label (1 on ties)."""
        return 1 if self.positives <= self.negatives else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (tables as lists of row dicts)."""
        out: dict[str, Any] = {
            "rows": self.rows,
            "n_rows": self.n_rows,
            "positives": self.positives,
            "negatives": self.negatives,
            "event_rate": self.event_rate,
            "imbalance_ratio": self.imbalance_ratio,
            "label": self.label,
            "weight": self.weight,
        }
        if self.per_group is not None:
            out["per_group"] = {"column": self.group, "rows": self.per_group.to_dicts()}
        if self.per_bin is not None:
            out["per_bin"] = {"feature": self.feature, "rows": self.per_bin.to_dicts()}
        return out

    def format(self) -> str:
        """Human-readable multi-line summary."""
        lines = [
            f"rows             {format_count(self.rows)}",
            f"positives        {format_count(self.positives)}",
            f"negatives        {format_count(self.negatives)}",
            f"event rate       {self.event_rate:.6g}",
            f"imbalance ratio  {self.imbalance_ratio:.6g} : 1",
        ]
        if self.per_group is not None:
            lines.append(f"per {self.group}:")
            lines.extend("  " + line for line in str(self.per_group).splitlines())
        if self.per_bin is not None:
            lines.append(f"per bin of {self.feature}:")
            lines.extend("  " + line for line in str(self.per_bin).splitlines())
        return "\n".join(lines)


def format_count(x: float) -> str:
    """A count as text: thousands separators, two decimals only for a weighted sum."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.2f}"


def class_ratio(pos: float, neg: float) -> float:
    """Majority count over minority count (>= 1; ``inf`` when a class is empty)."""
    lo, hi = min(pos, neg), max(pos, neg)
    return hi / lo if lo > 0 else math.inf


def _quantile_edges(lf: Any, feature: str, bins: int, n_rows: int) -> np.ndarray:
    step = max(1, math.ceil(n_rows / _EDGE_SAMPLE_ROWS))
    col = pl.col(feature).cast(pl.Float64)
    values = (
        lf.select(col.gather_every(step).alias("v"))
        .filter(pl.col("v").is_not_null() & pl.col("v").is_not_nan())
        .collect(engine="streaming")["v"]
        .to_numpy()
    )
    if values.size == 0:
        return np.empty(0)
    interior = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(interior)


def imbalance_report(
    data: Any,
    *,
    label: str,
    weight: str | None = None,
    by: str | None = None,
    per_file: bool | None = None,
    feature: str | None = None,
    bins: int | Sequence[float] = 10,
) -> ImbalanceReport:
    """Class counts, imbalance ratio and event rates of ``data``.

    Parameters
    ----------
    data : Parquet path(s) / directory / glob, or an in-memory frame
        Parquet is read by a streaming Polars query (bounded memory).
    label : str
        0/1 (or boolean) label column.
    weight : str, optional
        Row-weight column; counts become weighted sums (population estimates for a
        fastsample output's ``sample_weight``).
    by : str, optional
        Partition column for the per-group table (e.g. a hive partition such as ``date``).
    per_file : bool, optional
        Per-file table for a Parquet source (default: when the source has several files and
        ``by`` is not given).
    feature : str, optional
        Numeric column whose bins get their own event rate.
    bins : int or sequence of float
        Number of quantile bins (edges estimated from an evenly spaced subsample of at most
        one million rows for Parquet, all rows in memory), or explicit interior edges.
    """
    source = is_source(data)
    if by is not None and per_file:
        raise InputError("choose either `by` or `per_file`, not both")
    if per_file and not source:
        raise InputError("per_file needs a Parquet source")
    if source:
        if not isinstance(data, Source):
            data = resolve_source(data)
        if per_file is None and by is None:
            per_file = len(data.files) > 1
    lf, where, _files = open_frame(
        data,
        [("label", label), ("weight", weight), ("partition", by), ("feature", feature)],
        bool(per_file) and source,
    )
    schema = lf.collect_schema()
    if not (schema[label].is_numeric() or schema[label] == pl.Boolean):
        raise label_error(label, f"type {schema[label]}", where)
    if feature is not None and not schema[feature].is_numeric():
        raise InputError(f"{where}: feature column {feature!r} must be numeric")
    y = pl.col(label).cast(pl.Float64)
    w = pl.col(weight).cast(pl.Float64) if weight else pl.lit(1.0, dtype=pl.Float64)
    lf = lf.with_columns(y.alias("__y"), w.alias("__w"))
    if weight:
        bad = (
            lf.filter(
                pl.col("__w").is_null()
                | pl.col("__w").is_nan()
                | pl.col("__w").is_infinite()
                | (pl.col("__w") < 0)
            )
            .select(weight)
            .head(1)
            .collect()
        )
        if bad.height:
            raise InputError(
                f"{where}: weight column {weight!r} must be finite and >= 0 (found {bad.item()!r})"
            )
    totals = (
        lf.group_by("__y")
        .agg(pl.len().alias("n"), pl.col("__w").sum().alias("w"))
        .collect(engine="streaming")
    )
    for v in totals["__y"].to_list():
        if v is None or v not in (0.0, 1.0):
            raise label_error(label, "null" if v is None else f"value {v!r}", where)
    n_rows = int(totals["n"].sum())
    if n_rows == 0:
        raise InputError(f"{where}: no rows")
    pos = float(totals.filter(pl.col("__y") == 1.0)["w"].sum())
    neg = float(totals.filter(pl.col("__y") == 0.0)["w"].sum())
    rows = pos + neg

    def class_table(keys: list[Any]) -> Any:
        return (
            lf.group_by(keys)
            .agg(
                pl.len().alias("n_rows"),
                pl.col("__w").sum().alias("rows"),
                (pl.col("__w") * pl.col("__y")).sum().alias("positives"),
            )
            .with_columns((pl.col("rows") - pl.col("positives")).alias("negatives"))
            .with_columns(
                pl.when(pl.col("rows") > 0)
                .then(pl.col("positives") / pl.col("rows"))
                .otherwise(None)
                .alias("event_rate")
            )
        )

    per_group = None
    group_name = None
    if by is not None or per_file:
        group_name = by if by is not None else "file"
        key = by if by is not None else FILE_COLUMN
        per_group = (
            class_table([key])
            .sort(key, nulls_last=True)
            .collect(engine="streaming")
            .rename({key: group_name})
        )

    per_bin = None
    if feature is not None:
        if isinstance(bins, (int, np.integer)):
            if int(bins) < 1:
                raise InputError(f"bins: must be >= 1 (got {bins})")
            edges = _quantile_edges(lf, feature, int(bins), n_rows)
        else:
            edges = explicit_edges(bins)
        x = pl.col(feature).cast(pl.Float64)
        # bin k holds (edge_{k-1}, edge_k]: the count of interior edges strictly below x
        idx: Any = (
            pl.sum_horizontal([(x > float(e)).cast(pl.Int32) for e in edges])
            if edges.size
            else pl.lit(0, dtype=pl.Int32)
        )
        idx = pl.when(x.is_null() | x.is_nan()).then(None).otherwise(idx)
        table = (
            class_table([idx.alias("bin")]).sort("bin", nulls_last=True).collect(engine="streaming")
        )
        per_bin = with_bin_bounds(table, edges)

    return ImbalanceReport(
        rows=rows,
        positives=pos,
        negatives=neg,
        n_rows=n_rows,
        event_rate=pos / rows if rows > 0 else math.nan,
        imbalance_ratio=class_ratio(pos, neg),
        per_group=per_group,
        per_bin=per_bin,
        label=label,
        weight=weight,
        group=group_name,
        feature=feature,
    )


def explicit_edges(bins: Any) -> np.ndarray:
    """Explicit interior bin edges as float64; ``InputError`` unless finite and increasing.

    Shared with the Spark report so both reject the same edges with the same message.
    """
    edges = np.asarray(list(bins), dtype=np.float64)
    if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise InputError("bins: explicit edges must be finite and strictly increasing")
    return edges


def with_bin_bounds(table: Any, edges: np.ndarray) -> Any:
    """The per-bin table with each bin's (lower, upper] bounds, in the report's column order.

    Shared with the Spark report so both give the same table for the same counts.
    """
    lower = np.concatenate([[-np.inf], edges])
    upper = np.concatenate([edges, [np.inf]])
    ids = table["bin"].to_list()
    return table.with_columns(
        pl.Series("lower", [None if i is None else float(lower[i]) for i in ids], pl.Float64),
        pl.Series("upper", [None if i is None else float(upper[i]) for i in ids], pl.Float64),
    ).select("bin", "lower", "upper", "n_rows", "rows", "positives", "negatives", "event_rate")
