"""Resolve a Parquet source (file, directory, glob or list) into a Polars lazy scan.

Shared by the toolkit modules (evaluation, report, monitor) so that every one of them names the
same file and column in its error messages.
"""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastsample.errors import InputError


def resolve_files(source: Any) -> list[str]:
    """Expand ``source`` into a sorted list of existing Parquet files.

    A directory means every ``*.parquet`` file below it; a string with ``*``/``?`` is a glob.
    Raises :class:`InputError` naming the path when nothing matches.
    """
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise InputError("no Parquet source given")
    files: list[str] = []
    for item in items:
        path = os.fspath(item)
        if any(ch in path for ch in "*?["):
            matched = sorted(_glob.glob(path, recursive=True))
            if not matched:
                raise InputError(f"{path}: no file matches this pattern")
            files.extend(matched)
        elif os.path.isdir(path):
            matched = sorted(str(p) for p in Path(path).rglob("*.parquet"))
            if not matched:
                raise InputError(f"{path}: directory holds no .parquet file")
            files.extend(matched)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files


def _is_hive_directory(source: Any, files: list[str]) -> bool:
    """True for a directory laid out as ``col=value/...`` (its partition columns get read)."""
    if not isinstance(source, (str, os.PathLike)) or not os.path.isdir(source):
        return False
    root = os.path.abspath(os.fspath(source))
    return any(
        "=" in part
        for f in files
        for part in Path(os.path.relpath(os.path.abspath(f), root)).parts[:-1]
    )


def scan(
    source: Any, columns: Sequence[str | None] | None, *, file_column: str | None = None
) -> tuple[Any, list[str]]:
    """Lazy scan of ``source`` restricted to ``columns``, checking that each column exists.

    Parameters
    ----------
    source : path, glob, directory or list of them
    columns : column names that must exist (``None`` entries are skipped); ``None`` keeps all
    file_column : str, optional
        When given, a column with each row's file path is added (per-file reports).

    Returns
    -------
    (polars.LazyFrame, list of file paths)
    """
    import polars as pl

    files = resolve_files(source)
    hive = _is_hive_directory(source, files)
    try:
        lf = pl.scan_parquet(files, include_file_paths=file_column, hive_partitioning=hive)
        schema = lf.collect_schema()
    except InputError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{files[0]}: cannot read as Parquet ({first})") from exc
    if columns is None:
        return lf, files
    wanted = [c for c in columns if c is not None]
    for col in wanted:
        if col not in schema:
            where = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} files)"
            raise InputError(f"{where}: no column {col!r} (columns: {', '.join(schema.names())})")
    keep = list(dict.fromkeys([*wanted, *([file_column] if file_column else [])]))
    return lf.select(keep), files
