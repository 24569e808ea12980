"""A Parquet source as one Polars lazy frame, for the toolkit's streaming aggregations.

File resolution, schema checks and hive partitions come from :mod:`fastsample.engines.io` (the one
home for sources); this module only turns the resolved files into a ``LazyFrame`` that Polars'
streaming engine can aggregate in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    source : path, glob, directory, list of them, or a resolved :class:`fastsample.engines.io.Source`
    columns : ``(role, name)`` pairs; a ``None`` name is skipped; ``columns=None`` keeps all
        columns. A missing column raises ``InputError`` naming the role, column and file.
    file_column : str, optional
        When given, a column holding each row's file path is added (per-file reports).

    Returns
    -------
    (polars.LazyFrame, list of file paths)
    """
    import polars as pl

    from fastsample.engines.io import Source, _polars_type, require_columns, resolve_source

    src = source if isinstance(source, Source) else resolve_source(source)
    if columns is not None:
        for role, name in columns:
            if name is not None:
                require_columns(src, [name], role)
        wanted = list(dict.fromkeys(name for _, name in columns if name is not None))
    else:
        wanted = list(src.schema.names)
    own = set(src.file_schema.names if src.file_schema is not None else src.schema.names)
    parts = src.partitions or [{} for _ in src.files]
    frames = []
    for path, part in zip(src.files, parts, strict=True):
        lf = pl.scan_parquet(path, hive_partitioning=False).select([c for c in wanted if c in own])
        extra = [
            pl.lit(part.get(c), dtype=_polars_type(src.schema.field(c).type)).alias(c)
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
