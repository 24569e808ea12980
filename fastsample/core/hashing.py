"""Row keys to uniforms: the reproducibility guarantee.

A row's fate depends only on its key and the seed. This module turns any supported key
column into 64-bit key words and those into uniforms in [0, 1).

Key specification (byte level; golden vectors live in ``tests/test_hashing.py``)
--------------------------------------------------------------------------------
All arithmetic is on unsigned 64-bit words, modulo 2^64.

* ``splitmix64(z)``: ``z += 0x9E3779B97F4A7C15``;
  ``z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9``; ``z = (z ^ (z >> 27)) * 0x94D049BB133111EB``;
  ``return z ^ (z >> 31)``.
* ``u(k, seed) = (splitmix64(k ^ splitmix64(seed)) >> 11) * 2^-53``; a row is kept iff
  ``u < a_y(x)``.
* Integer keys (any width, signed or unsigned) and booleans: the value as a two's-complement
  64-bit word (int32 ``-1`` and int64 ``-1`` are the same key). Date, datetime, duration and
  time columns use their physical integer (so the datetime's time unit is part of the key).
* String keys (also categorical/enum values and binary): the UTF-8 bytes ``b`` of length
  ``L``: ``h = splitmix64(0x66735F7374725F31 ^ L)``; then for each 8-byte little-endian word
  ``w`` of ``b`` (the last one zero-padded) ``h = splitmix64(h ^ w)``; the key word is ``h``.
* Composite keys (two or more columns, in the order given): ``h = 0x66735F636D705F31``; for
  each column's key word ``k``: ``h = splitmix64(h ^ k)``. A one-column list is that column.
* No key column: the key of a row is its global 0-based row index in input order. That
  keeps decisions independent of chunk size and thread count, but not of row order or file
  layout: pass a key column when the same rows may arrive differently.
* Seeds are integers in [-2^63, 2^64); negative seeds are taken as two's complement.
  ``derive_seed(seed, stream)`` gives an independent stream (``splitmix64(seed ^ H)`` with
  ``H`` the string key word of ``stream``) — the pilot's own sample uses ``"pilot"``.

Floating-point keys are refused: equal-looking floats can differ in their last bit.

The same words and uniforms for integer and boolean keys (and the row index) are also built as
Polars expressions in :mod:`fastsample.core.keyexpr` (re-exported here), which needs no Numba.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from fastsample.core import kernels as K
from fastsample.core.keyexpr import (  # noqa: F401  (the Polars expressions: re-exported)
    key_words_expr,
    seed_mix,
    seed_word,
    splitmix64_int,
    uniform_below_expr,
    uniform_expr,
)
from fastsample.errors import InputError


def _string_word(text: str) -> int:
    raw = text.encode("utf-8")
    h = splitmix64_int(int(K.STRING_TAG) ^ len(raw))
    for pos in range(0, len(raw), 8):
        h = splitmix64_int(h ^ int.from_bytes(raw[pos : pos + 8], "little"))
    return h


def derive_seed(seed: int, stream: str) -> int:
    """An independent seed for a named sub-stream (e.g. ``"pilot"``), in [0, 2^64).

    Parameters
    ----------
    seed : int
        The user's seed.
    stream : str
        Name of the sub-stream.

    Examples
    --------
    >>> derive_seed(0, "pilot") != derive_seed(0, "kappa")
    True
    """
    return splitmix64_int(seed_word(seed) ^ _string_word(stream))


def _to_arrow(values: Any) -> pa.Array:
    if isinstance(values, pl.Series):
        arr: Any = values.to_arrow()
    elif isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values
    else:
        np_values = np.asarray(values)
        if np_values.ndim != 1:
            raise InputError(f"keys must be one-dimensional, got shape {np_values.shape}")
        arr = pa.array(np_values.tolist() if np_values.dtype.kind in "OU" else np_values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _integer_words(values: Any, name: str) -> np.ndarray | None:
    """Key words of integer, boolean or temporal keys without going through Arrow; else None."""
    if isinstance(values, pl.Series):
        dtype = values.dtype
        if not (dtype.is_integer() or dtype.is_temporal() or dtype == pl.Boolean):
            return None
        if values.null_count():
            raise InputError(f"key column {name!r} has {values.null_count()} null value(s)")
        phys = values.to_physical()
        if phys.dtype == pl.UInt64:
            return phys.to_numpy()
        return phys.cast(pl.Int64).to_numpy().view(np.uint64)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return None
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"keys must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "u":
        return arr.astype(np.uint64, copy=False)
    if arr.dtype.kind in "ib":
        return arr.astype(np.int64, copy=False).view(np.uint64)
    if arr.dtype.kind in "mM":
        return arr.view(np.int64).view(np.uint64)
    if arr.dtype.kind == "f":
        raise InputError(
            f"key column {name!r} has floating-point type {arr.dtype}; use an integer or string key"
        )
    return None


def hash_keys(values: Any, name: str = "key") -> np.ndarray:
    """64-bit key words of one key column, per the key specification above.

    Parameters
    ----------
    values : polars.Series, pyarrow.Array, numpy.ndarray or sequence
        Integer, boolean, temporal, string, categorical or binary values; no nulls.
    name : str
        Column name used in error messages.

    Returns
    -------
    numpy.ndarray of uint64
    """
    fast = _integer_words(values, name)
    if fast is not None:
        return fast
    arr = _to_arrow(values)
    if arr.null_count:
        raise InputError(f"key column {name!r} has {arr.null_count} null value(s)")
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        raise InputError(
            f"key column {name!r} has floating-point type {t}; use an integer or string key"
        )
    if pa.types.is_boolean(t) or pa.types.is_temporal(t) or pa.types.is_integer(t):
        # through Polars: it shares Arrow's memory, and its to_numpy stays zero-copy
        words = _integer_words(pl.Series(name, arr), name)
        if words is None:
            raise InputError(f"key column {name!r} has unsupported type {t}")
        return words
    textual = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_string_view,
        pa.types.is_binary,
        pa.types.is_binary_view,
        pa.types.is_fixed_size_binary,
    )
    if any(is_type(t) for is_type in textual):
        arr = pc.cast(arr, pa.large_binary())
    if not pa.types.is_large_binary(arr.type):
        raise InputError(f"key column {name!r} has unsupported type {t}")
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    out = np.empty(n, dtype=np.uint64)
    if n:
        K.for_rows(K.hash_bytes, n)(np.ascontiguousarray(offsets), data, out)
    return out


def composite_keys(columns: Sequence[Any], names: Sequence[str] | None = None) -> np.ndarray:
    """Key words of a composite key (several columns, order matters)."""
    names = list(names) if names is not None else [f"key[{i}]" for i in range(len(columns))]
    if not columns:
        raise InputError("a composite key needs at least one column")
    if len(columns) == 1:
        return hash_keys(columns[0], names[0])
    words = [hash_keys(c, nm) for c, nm in zip(columns, names, strict=True)]
    acc = np.full(words[0].shape[0], K.COMPOSITE_TAG, dtype=np.uint64)
    for w in words:
        if w.shape[0] != acc.shape[0]:
            raise InputError("composite key columns have different lengths")
        K.for_rows(K.combine_keys, acc.size)(acc, w, acc)
    return acc


def frame_keys(
    frame: pl.DataFrame, key: str | Sequence[str] | None, row_offset: int = 0
) -> np.ndarray:
    """Key words for every row of ``frame``.

    Parameters
    ----------
    frame : polars.DataFrame
        The rows.
    key : str, sequence of str or None
        Key column(s); ``None`` uses the global row index ``row_offset + i``.
    row_offset : int
        Index of the frame's first row in the whole input (for ``key=None``).
    """
    if key is None:
        start = np.uint64(row_offset)
        return np.arange(frame.height, dtype=np.uint64) + start
    names = [key] if isinstance(key, str) else list(key)
    missing = [k for k in names if k not in frame.columns]
    if missing:
        raise InputError(f"key column {missing[0]!r} not found")
    return composite_keys([frame.get_column(k) for k in names], names)


def uniform_from_keys(keys: Any, seed: int) -> np.ndarray:
    """Uniforms in [0, 1) decided by each key and the seed alone.

    Parameters
    ----------
    keys : array-like, polars.Series or pyarrow.Array
        One key column (see the module's key specification).
    seed : int
        Integer seed in [-2^63, 2^64).

    Returns
    -------
    numpy.ndarray of float64

    Examples
    --------
    >>> float(uniform_from_keys([42], seed=7)[0])
    0.4323047487697754
    """
    words = hash_keys(keys)
    out = np.empty(words.shape[0], dtype=np.float64)
    K.for_rows(K.uniform_from_keys, out.size)(words, seed_mix(seed), out)
    return out
