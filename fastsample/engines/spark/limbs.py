"""The key specification of :mod:`fastsample.core.hashing` as Spark SQL expressions that never overflow.

Spark 4 runs with ``spark.sql.ansi.enabled=true``: a 64-bit ``+`` or ``*`` that wraps raises
instead, and splitmix64 wraps on purpose. Shifts, ``&``, ``|`` and ``^`` never check overflow,
so a 64-bit word stays one bigint column and only the two wrapping steps are split: an
addition is done on 32-bit halves (each sum below 2^34), a multiplication by a constant as
three products of the word's unsigned 32-bit halves and the constant's signed ones (each below
2^63 in magnitude). Every checked call costs: per splitmix64 this is 7 ``addExact`` and 6
``multiplyExact`` in the generated code, down from 15 and 12 with 16-bit limbs. The words
and uniforms are bit for bit those of :mod:`fastsample.core.hashing` (the tests compare them
on integer, string and composite keys).

Every intermediate word that is read more than once is bound to its own column
(:meth:`Frame.bind`): an inlined splitmix64 would repeat its input word's expression at every
read. The plan must also keep the filter on the final uniform from being pushed down through
these projections (``native.apply_native`` does), or Catalyst substitutes them all back into
one expression tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastsample.core import kernels as K
from fastsample.core.optional import require

M32 = 0xFFFFFFFF
# 2^-53 as a Spark literal: the 53 high bits of the word, scaled into [0, 1).
TWO_POW_M53 = K.TWO_POW_M53


def functions() -> Any:
    return require("pyspark.sql.functions", "spark")


def signed(value: int) -> int:
    """A 64-bit pattern as the signed value Spark's bigint holds."""
    v = int(value) & ((1 << 64) - 1)
    return v - (1 << 64) if v >> 63 else v


def lit(value: int) -> Any:
    """A 64-bit constant (any sign) as a bigint literal with the same bits."""
    return functions().lit(signed(value)).cast("bigint")


def _hi(x: Any) -> Any:
    return functions().shiftrightunsigned(x, 32)


def _split_signed(c: int) -> tuple[int, int]:
    """``c mod 2^64 = h 2^32 + l`` with ``l`` and ``h mod 2^32`` both in ``[-2^31, 2^31)``.

    Signed halves keep every product of a constant half with a word half below 2^63 in
    magnitude, so no checked multiply can overflow.
    """
    c &= (1 << 64) - 1
    lo = c & M32
    lo -= (lo >> 31) << 32
    hi = ((c - lo) >> 32) & M32
    hi -= (hi >> 31) << 32
    return hi, lo


def _add_const(x: Any, c: int) -> Any:
    """x + c mod 2^64 on 32-bit halves (``x`` is read twice: pass a bound column)."""
    F = functions()
    c &= (1 << 64) - 1
    lo = x.bitwiseAND(lit(M32)) + lit(c & M32)
    hi = (_hi(x) + _hi(lo)) + lit(c >> 32)
    return F.shiftleft(hi, 32).bitwiseOR(lo.bitwiseAND(lit(M32)))


def _xorshift(x: Any, s: int) -> Any:
    """x ^ (x >>> s), no arithmetic, so nothing to overflow."""
    return x.bitwiseXOR(functions().shiftrightunsigned(x, s))


def _mul_const(x: Any, c: int) -> Any:
    """x * c mod 2^64 with three products and two additions, none of which can overflow.

    With ``x = xh 2^32 + xl`` (unsigned halves) and ``c = ch 2^32 + cl`` (signed halves,
    :func:`_split_signed`), ``P = xl cl`` is below 2^63 in magnitude and
    ``x c = P + 2^32 (xl ch + xh cl) mod 2^64``: the low word is ``P``'s low 32 bits, the high
    word ``(P >> 32) + (xl ch mod 2^32) + (xh cl mod 2^32)`` mod 2^32 (the final shift drops
    the rest). Under ANSI every ``+`` and ``*`` is a checked call: this is 5 of them, the
    16-bit limb product took 12.
    """
    F = functions()
    ch, cl = _split_signed(int(c))
    xl, xh = x.bitwiseAND(lit(M32)), _hi(x)
    p = xl * F.lit(cl).cast("bigint")
    high = (
        F.shiftright(p, 32)
        + (xl * F.lit(ch).cast("bigint")).bitwiseAND(lit(M32))
        + (xh * F.lit(cl).cast("bigint")).bitwiseAND(lit(M32))
    )
    return F.shiftleft(high, 32).bitwiseOR(p.bitwiseAND(lit(M32)))


# bind(x): the word x as a column (cheap to read again)
Binder = Callable[[Any], Any]


def splitmix64(x: Any, bind: Binder) -> Any:
    """splitmix64 of the word ``x`` (a bound column); every intermediate bound by ``bind``."""
    z = bind(_add_const(x, int(K.GOLDEN)))
    z = bind(_xorshift(z, 30))
    z = bind(_mul_const(z, int(K.MIX1)))
    z = bind(_xorshift(z, 27))
    z = bind(_mul_const(z, int(K.MIX2)))
    return bind(_xorshift(z, 31))


def uniform(x: Any) -> Any:
    """(x >>> 11) * 2^-53 as a double: the 53 high bits are below 2^53, exact in a double."""
    F = functions()
    return F.shiftrightunsigned(x, 11).cast("double") * F.lit(TWO_POW_M53)


class Frame:
    """A DataFrame being extended with word columns, one projection per bound step."""

    def __init__(self, df: Any, prefix: str) -> None:
        self.df = df
        self.prefix = prefix
        self.count = 0

    def bind(self, x: Any) -> Any:
        """``x`` as a new column of the frame; the column (cheap to read again)."""
        return self.bind_all([x])[0]

    def bind_all(self, xs: list[Any]) -> list[Any]:
        """Several expressions as new columns in one projection."""
        names = [f"{self.prefix}{self.count + i}" for i in range(len(xs))]
        self.count += len(xs)
        self.df = self.df.withColumns(dict(zip(names, xs, strict=True)))
        return [functions().col(n) for n in names]


def string_word(frame: Frame, raw: Any, max_words: int, name: str) -> Any:
    """Key word of a binary expression (a string's UTF-8 bytes), per the string key spec.

    ``h = splitmix64(STRING_TAG ^ L)``; then ``h = splitmix64(h ^ w)`` for each 8-byte
    little-endian word ``w`` of the bytes, the last one zero-padded. The words are read from
    the bytes' hex digits, 8 digits (4 bytes, read big-endian) at a time, then byte-swapped.
    ``max_words`` (the longest value's word count, from a driver-side aggregation) steps are
    unrolled; a row past its last word keeps its hash (``CASE WHEN`` evaluates one branch).
    """
    F = functions()
    n = F.octet_length(raw)
    words = F.floor((n + F.lit(7)) / F.lit(8)).cast("int")
    too_long = F.raise_error(
        F.lit(f"key column {name!r} changed while sampling (a value longer than planned)")
    )
    n = frame.bind(F.when(words > max_words, too_long).otherwise(n))
    digits = frame.bind(F.rpad(F.hex(raw), max_words * 16, "0"))
    words = frame.bind(F.floor((n + F.lit(7)) / F.lit(8)).cast("int"))
    h = splitmix64(frame.bind(n.cast("bigint").bitwiseXOR(lit(int(K.STRING_TAG)))), frame.bind)

    def half(i: int, j: int) -> Any:
        """Bytes 8i + 4j .. 8i + 4j + 3 as a little-endian 32-bit value."""
        v = F.conv(F.substring(digits, 16 * i + 8 * j + 1, 8), 16, 10).cast("bigint")
        b = [F.shiftright(v, 24 - 8 * t).bitwiseAND(lit(0xFF)) for t in range(4)]
        return (
            b[0]
            .bitwiseOR(F.shiftleft(b[1], 8))
            .bitwiseOR(F.shiftleft(b[2], 16))
            .bitwiseOR(F.shiftleft(b[3], 24))
        )

    for i in range(max_words):
        active = words > i
        w = half(i, 0).bitwiseOR(F.shiftleft(half(i, 1), 32))
        mixed = splitmix64(frame.bind(F.when(active, h.bitwiseXOR(w)).otherwise(h)), frame.bind)
        h = frame.bind(F.when(active, mixed).otherwise(h))
    return h
