"""Argument checks shared by the Parquet engine's entry points (cheap: no Numba, no Polars)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fastsample.core.validation import label_error
from fastsample.engines.sources import Source, require_columns
from fastsample.errors import InputError

#: Rows per batch read from Parquet when ``chunk_rows`` is not given.
DEFAULT_CHUNK_ROWS = 1 << 18

# Output names that promise another format: the engine writes Parquet only (it reads CSV and
# NDJSON, so a user may expect it to write them too).
_NOT_PARQUET = {".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".xlsx", ".feather", ".arrow"}


def parquet_output(output: Any) -> None:
    """``InputError`` when the output's name promises a format other than Parquet."""
    name = os.fspath(output)
    suffix = os.path.splitext(str(name))[1].lower()
    if suffix in _NOT_PARQUET:
        raise InputError(
            f"output {name!r} names a {suffix[1:].upper()} file, but fastsample writes "
            "Parquet; name it .parquet (convert afterwards, e.g. with Polars)"
        )


def chunk_rows(value: Any) -> int:
    """Rows per batch: ``value`` checked, or the default."""
    if value is None:
        return DEFAULT_CHUNK_ROWS
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"chunk_rows must be a positive integer, got {value!r}")
    if value <= 0:
        raise InputError(f"chunk_rows must be a positive integer, got {value!r}")
    return int(value)


def key_list(key: str | Sequence[str] | None) -> list[str]:
    """Key column names as a list (empty: no key column)."""
    if key is None:
        return []
    if isinstance(key, str):
        return [key]
    keys = [str(k) for k in key]
    if not keys:
        raise InputError("key must name at least one column")
    return keys


def key_arg(key: str | Sequence[str] | None) -> str | list[str] | None:
    """Key column(s) as :func:`fastsample.core.hashing.frame_keys` takes them."""
    if key is None or (not isinstance(key, str) and len(key) == 0):
        return None
    keys = key_list(key)
    return keys[0] if len(keys) == 1 else keys


def check_label_type(src: Source, label: str) -> None:
    """The label column exists and has a type that can hold 0/1 (checked on the schema)."""
    require_columns(src, [label], "label")
    typ = src.schema.field(label).type
    if not (pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_floating(typ)):
        raise label_error(label, f"type {typ}", repr(src.files[0]))
