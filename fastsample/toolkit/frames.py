"""The toolkit's inputs: a Parquet source or an in-memory frame, and a sample's weight column.

The report and the plots accept either kind of input; both go through :func:`open_frame`, so
a missing column or an unsupported container is reported with the same message everywhere.
The evaluation and ``fastsample inspect`` find a fastsample sample's weight column with
:func:`sample_weight_column`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from fastsample.engines.scan import describe_files, scan
from fastsample.engines.sinks import read_metadata
from fastsample.engines.sources import Source, resolve_source
from fastsample.errors import InputError

__all__ = [
    "ADDED_COLUMNS",
    "AUTO_WEIGHT",
    "FILE_COLUMN",
    "is_source",
    "lazy_frame",
    "open_frame",
    "resolve_weight",
    "sample_weight_column",
    "weighted_label_totals",
]

# Column that carries each row's file name when a per-file table is asked for.
FILE_COLUMN = "__fastsample_file"

#: ``weight=`` value that picks a fastsample sample's own weight column (the default).
AUTO_WEIGHT = "auto"
# The three columns fastsample adds to a sample, under their default names.
ADDED_COLUMNS = ("sampling_prob", "sample_weight", "log_odds_offset")


def is_source(data: Any) -> bool:
    """Whether ``data`` names Parquet (a path, a list of paths or a resolved ``Source``)."""
    if isinstance(data, (str, os.PathLike, Source)):
        return True
    return (
        isinstance(data, (list, tuple))
        and len(data) > 0
        and all(isinstance(d, (str, os.PathLike)) for d in data)
    )


def lazy_frame(data: Any) -> Any:
    """LazyFrame from polars, pandas, a dict of columns or a structured array."""
    if isinstance(data, pl.LazyFrame):
        return data
    if isinstance(data, pl.DataFrame):
        return data.lazy()
    if type(data).__module__.startswith("pandas"):
        return pl.from_pandas(data).lazy()
    if isinstance(data, dict):
        return pl.DataFrame(data).lazy()
    arr = np.asarray(data)
    if arr.dtype.names:
        return pl.DataFrame({n: arr[n] for n in arr.dtype.names}).lazy()
    raise InputError(
        "data must be a Parquet path, a polars/pandas DataFrame, a dict of columns or a "
        f"structured array (got {type(data).__name__})"
    )


def open_frame(
    data: Any, columns: Sequence[tuple[str, str | None]], per_file: bool
) -> tuple[Any, str, list[str] | None]:
    """(lazy frame, description for messages, file list or None); columns are (role, name)."""
    if is_source(data):
        lf, files = scan(data, columns, file_column=FILE_COLUMN if per_file else None)
        return lf, describe_files(files), files
    lf = lazy_frame(data)
    names = lf.collect_schema().names()
    for role, col in columns:
        if col is not None and col not in names:
            raise InputError(f"{role} column {col!r} not found (columns: {', '.join(names)})")
    return lf, "data", None


def sample_weight_column(source: Any) -> str | None:
    """The weight column of a fastsample sample, or None when ``source`` is not one.

    A sample is recognised by the fastsample record in its (first) file's Parquet metadata,
    whose plan names the weight column; or, for a file rewritten without that metadata, by
    the three columns fastsample adds under their default names. ``InputError`` when the
    metadata names a weight column the file no longer has.
    """
    src = source if isinstance(source, Source) else resolve_source(source)
    names = set(src.schema.names)
    try:
        meta: dict[str, Any] | None = read_metadata(src.files[0])
    except InputError:
        meta = None
    if meta is not None:
        plan = meta.get("plan")
        cols = plan.get("columns") if isinstance(plan, dict) else None
        col = str(
            cols.get("weight", "sample_weight") if isinstance(cols, dict) else "sample_weight"
        )
        if col not in names:
            raise InputError(
                f"{src.files[0]!r} is a fastsample sample but has no weight column {col!r};"
                " give the weight column, or weight 'none' for unweighted metrics"
            )
        return col
    return "sample_weight" if names.issuperset(ADDED_COLUMNS) else None


def resolve_weight(source: Any, weight: str | None) -> str | None:
    """The weight column to use: ``"auto"`` -> :func:`sample_weight_column`; None or ``"none"``
    -> no weights; any other string is a column name."""
    if weight is None or weight.lower() == "none":
        return None
    if weight == AUTO_WEIGHT:
        return sample_weight_column(source)
    return weight


def weighted_label_totals(source: Any, *, label: str, weight: str | None) -> dict[str, Any]:
    """Total weight of the positives and negatives (a population estimate on a sample).

    Returns
    -------
    dict
        ``weight`` (the column used, after :func:`resolve_weight`; None when unweighted, and
        then nothing else), ``positives``, ``negatives``, ``event_rate``.
    """
    src = resolve_source(source)
    col = resolve_weight(src, weight)
    if col is None:
        return {"weight": None}
    lf, _ = scan(src, [("label", label), ("weight", col)])
    w = pl.col(col).cast(pl.Float64)
    y = pl.col(label).cast(pl.Float64)
    totals = lf.select((w * y).sum().alias("pos"), (w * (1.0 - y)).sum().alias("neg")).collect(
        engine="streaming"
    )
    pos, neg = float(totals["pos"][0] or 0.0), float(totals["neg"][0] or 0.0)
    rate = pos / (pos + neg) if pos + neg > 0 else None
    return {"weight": col, "positives": pos, "negatives": neg, "event_rate": rate}
