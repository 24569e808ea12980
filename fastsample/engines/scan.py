"""A Parquet source as one Polars lazy frame, for the toolkit's streaming aggregations.

File resolution, schema checks and hive partitions come from :mod:`fastsample.engines.sources`
(the one home for sources); this module only turns the resolved source into a ``LazyFrame`` that
Polars' streaming engine can aggregate in bounded memory: local files through ``scan_parquet``,
remote files and pyarrow datasets through ``scan_pyarrow_dataset`` (the same pyarrow filesystem
and credentials as the engine), lazy frames and CSV/NDJSON scans as they are. A single-pass
``RecordBatchReader`` cannot be scanned lazily: an error says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastsample.engines.sources import Source, polars_type, require_columns, resolve_source
from fastsample.errors import InputError


def describe_files(files: Sequence[str]) -> str:
    """``first-file`` or ``first-file (+k files)`` for error messages."""
    return files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} files)"


def scan(
    source: Any,
    columns: Sequence[tuple[str, str | None]] | None,
    *,
    file_column: str | None = None,
) -> tuple[Any, list[str]]:
    """Lazy scan of ``source`` restricted to ``columns``, checking that each column exists.

    Parameters
    ----------
    source : path, glob, directory, list of them, or a resolved :class:`fastsample.engines.sources.Source`
    columns : ``(role, name)`` pairs; a ``None`` name is skipped; ``columns=None`` keeps all
        columns. A missing column raises ``InputError`` naming the role, column and file.
    file_column : str, optional
        When given, a column holding each row's file path is added (per-file reports).

    Returns
    -------
    (polars.LazyFrame, list of file paths)
    """
    import polars as pl  # lazy: start-up time

    src = source if isinstance(source, Source) else resolve_source(source)
    if columns is not None:
        for role, name in columns:
            if name is not None:
                require_columns(src, [name], role)
        wanted = list(dict.fromkeys(name for _, name in columns if name is not None))
    else:
        wanted = list(src.schema.names)
    if src.stream is not None:
        return _scan_stream(src, wanted, file_column), list(src.files)
    own = set(src.file_schema.names if src.file_schema is not None else src.schema.names)
    parts = src.partitions or [{} for _ in src.files]
    frames = []
    for path, fs_path, part in zip(src.files, src.fs_paths(), parts, strict=True):
        if src.filesystem is None:
            lf = pl.scan_parquet(path, hive_partitioning=False)
        else:
            lf = pl.scan_pyarrow_dataset(_dataset(fs_path, src.filesystem))
        lf = lf.select([c for c in wanted if c in own])
        extra = [
            pl.lit(part.get(c), dtype=polars_type(src.schema.field(c).type)).alias(c)
            for c in wanted
            if c not in own
        ]
        if file_column is not None:
            extra.append(pl.lit(path, dtype=pl.String).alias(file_column))
        if extra:
            lf = lf.with_columns(extra)
        frames.append(lf.select([*wanted, *([file_column] if file_column else [])]))
    if not frames:
        raise InputError("no Parquet files to read")
    return pl.concat(frames, how="vertical"), list(src.files)


def _dataset(path: str, filesystem: Any) -> Any:
    import pyarrow.dataset as ds  # lazy: start-up time

    return ds.dataset(path, filesystem=filesystem, format="parquet")


def _scan_stream(src: Any, wanted: list[str], file_column: str | None) -> Any:
    import polars as pl  # lazy: start-up time

    stream = src.stream
    if stream.kind == "lazy":
        lf = stream.obj
    elif stream.kind == "dataset":
        lf = pl.scan_pyarrow_dataset(stream.obj)
    else:
        raise InputError(
            f"{stream.name} cannot be scanned lazily; give a file, a pyarrow Dataset or a LazyFrame"
        )
    lf = lf.select(wanted)
    if file_column is not None:
        lf = lf.with_columns(pl.lit(stream.name, dtype=pl.String).alias(file_column))
    return lf
