"""The key specification's decision as Polars expressions, and the seed's word, without Numba.

:mod:`fastsample.core.hashing` states the key specification; this module holds the parts a
Polars query needs (integer and boolean keys, the row index), so that a query can be built
before Numba is imported (start-up time). Polars' UInt64 ``+`` and ``*`` wrap modulo 2^64 and
``//`` by a power of two is the shift, so the expressions give the kernels' bits
(``tests/test_hashing.py`` compares them on every integer width). The constants are the
specification's; :mod:`fastsample.core.kernels` holds the same words as ``np.uint64``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from fastsample.errors import InputError

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
COMPOSITE_TAG = 0x66735F636D705F31
TWO_POW_M53 = 1.0 / 9007199254740992.0

MASK64 = (1 << 64) - 1


def splitmix64_int(z: int) -> int:
    """``splitmix64`` of a Python integer word."""
    z = (z + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def seed_word(seed: Any) -> int:
    """A seed as its 64-bit word (two's complement); ``InputError`` outside [-2^63, 2^64)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    s = int(seed)
    if not -(1 << 63) <= s <= MASK64:
        raise InputError(f"seed {s} is outside [-2^63, 2^64)")
    return s & MASK64


def seed_mix(seed: int) -> np.uint64:
    """``splitmix64(seed)``: the per-seed word the kernels XOR into every key."""
    return np.uint64(splitmix64_int(seed_word(seed)))


def _u64(value: Any) -> pl.Expr:
    return pl.lit(int(value), dtype=pl.UInt64)


def splitmix64_expr(z: pl.Expr) -> pl.Expr:
    """``splitmix64`` of a UInt64 Polars expression (the key specification, bit for bit)."""
    z = z + _u64(GOLDEN)
    z = (z ^ (z // _u64(1 << 30))) * _u64(MIX1)
    z = (z ^ (z // _u64(1 << 27))) * _u64(MIX2)
    return z ^ (z // _u64(1 << 31))


def _word_expr(name: str, dtype: Any) -> pl.Expr | None:
    """One integer or boolean key column as its UInt64 key word; None for any other type."""
    col = pl.col(name)
    if dtype == pl.UInt64:
        return col
    if dtype == pl.Boolean or dtype in (pl.UInt8, pl.UInt16, pl.UInt32):
        return col.cast(pl.UInt64)
    if dtype.is_signed_integer():
        # two's complement: the 64-bit signed value's bits
        return col.cast(pl.Int64).reinterpret(signed=False)
    return None


def key_words_expr(key: Sequence[str], dtypes: Sequence[Any]) -> pl.Expr | None:
    """The key words of integer/boolean key columns as one UInt64 expression, or None.

    Parameters
    ----------
    key : sequence of str
        Key column names, in the key's order (two or more: a composite key).
    dtypes : sequence of polars data types
        Their types; None is returned unless every one is an integer or boolean type.

    Examples
    --------
    >>> from fastsample.core.hashing import hash_keys, uniform_from_keys
    >>> frame = pl.DataFrame({"k": [-1, 42]})
    >>> words = frame.select(key_words_expr(["k"], [pl.Int64])).to_series()
    >>> bool((words.to_numpy() == hash_keys(frame["k"])).all())
    True
    """
    words = []
    for name, dtype in zip(key, dtypes, strict=True):
        word = _word_expr(name, dtype)
        if word is None:
            return None
        words.append(word)
    if len(words) == 1:
        return words[0]
    acc = _u64(COMPOSITE_TAG)
    for word in words:
        acc = splitmix64_expr(acc ^ word)
    return acc if words else None


def uniform_expr(words: pl.Expr, seed: int) -> pl.Expr:
    """``u(k, seed)`` of UInt64 key words as a Float64 Polars expression, the kernels' bits.

    Examples
    --------
    >>> from fastsample.core.hashing import hash_keys, uniform_from_keys
    >>> frame = pl.DataFrame({"k": pl.Series([42], dtype=pl.UInt64)})
    >>> frame.select(uniform_expr(pl.col("k"), seed=7)).item() == float(uniform_from_keys([42], 7)[0])
    True
    """
    mixed = splitmix64_expr(words ^ _u64(seed_mix(seed)))
    # (h >> 11) < 2^53 converts exactly; the product by 2^-53 is exact too
    return (mixed // _u64(1 << 11)).cast(pl.Float64) * TWO_POW_M53


def uniform_below_expr(words: pl.Expr, seed: int, a: float) -> pl.Expr:
    """``u(k, seed) < a`` for UInt64 key words as a Boolean Polars expression, exactly.

    With ``m = h >> 11`` (``h`` the mixed word), ``u = m 2^-53 < a`` holds iff the integer
    ``m < ceil(a 2^53)`` (both sides scaled by a power of two, exactly), iff
    ``h < ceil(a 2^53) 2^11``: one comparison of the word, no shift, conversion or product.

    Examples
    --------
    >>> from fastsample.core.hashing import hash_keys, uniform_from_keys
    >>> frame = pl.DataFrame({"k": pl.Series(range(1000), dtype=pl.UInt64)})
    >>> kept = frame.select(uniform_below_expr(pl.col("k"), 7, 0.25)).to_series().to_numpy()
    >>> bool((kept == (uniform_from_keys(frame["k"], 7) < 0.25)).all())
    True
    """
    threshold = math.ceil(float(a) * 2.0**53) << 11
    if threshold > MASK64:
        return words >= _u64(0)  # a >= 1: every uniform is below (null stays null)
    return splitmix64_expr(words ^ _u64(seed_mix(seed))) < _u64(threshold)


__all__ = [
    "COMPOSITE_TAG",
    "GOLDEN",
    "MASK64",
    "MIX1",
    "MIX2",
    "TWO_POW_M53",
    "key_words_expr",
    "seed_mix",
    "seed_word",
    "splitmix64_expr",
    "splitmix64_int",
    "uniform_below_expr",
    "uniform_expr",
]
