"""The key specification of :mod:`fastsample.core.hashing` as Spark SQL expressions that never overflow.

Spark 4 runs with ``spark.sql.ansi.enabled=true``: a 64-bit ``+`` or ``*`` that wraps raises
instead, and splitmix64 wraps on purpose. So every 64-bit word is carried as four 16-bit limbs
(low limb first) in bigint columns: a limb product is below 2^32, a column of four products
plus a carry below 2^35, and shifts, ``&``, ``|`` and ``^`` never check overflow. The words and
uniforms are bit for bit those of :mod:`fastsample.core.hashing` (the tests compare them on
integer, string and composite keys).

Each splitmix64 step is materialised as its own projection (``withColumns``): an output limb
reads up to four input limbs, so the fully inlined expression of one splitmix64 would grow
about tenfold per step. Spark keeps the projections apart (it does not inline an expression
that is referenced more than once) and whole-stage code generation fuses them into one loop.
String keys unroll one splitmix64 per 8-byte word, up to the longest value's count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastsample.core import kernels as K
from fastsample.core.optional import require

MASK = 0xFFFF
# 2^-53 as a Spark literal: the 53 high bits of the word, scaled into [0, 1).
TWO_POW_M53 = K.TWO_POW_M53

Limbs = list[Any]  # four bigint Column expressions, low limb first


def functions() -> Any:
    return require("pyspark.sql.functions", "spark")


def const(value: int) -> list[int]:
    """The four 16-bit limbs of a 64-bit constant (two's complement for negative values)."""
    v = int(value) & ((1 << 64) - 1)
    return [(v >> (16 * k)) & MASK for k in range(4)]


def _lit(v: int) -> Any:
    return functions().lit(int(v)).cast("bigint")


def of_long(col: Any) -> Limbs:
    """Limbs of a bigint column (its two's-complement bits)."""
    F = functions()
    m = _lit(MASK)
    return [
        col.bitwiseAND(m),
        F.shiftright(col, 16).bitwiseAND(m),
        F.shiftright(col, 32).bitwiseAND(m),
        F.shiftrightunsigned(col, 48),
    ]


def xor_const(z: Limbs, c: Sequence[int]) -> Limbs:
    return [zi.bitwiseXOR(_lit(ci)) if ci else zi for zi, ci in zip(z, c, strict=True)]


def xor(z: Limbs, w: Limbs) -> Limbs:
    return [a.bitwiseXOR(b) for a, b in zip(z, w, strict=True)]


def _add_const(z: Limbs, c: Sequence[int]) -> Limbs:
    F = functions()
    out, carry = [], None
    for k in range(4):
        t = z[k] + _lit(c[k]) if c[k] else z[k]
        if carry is not None:
            t = t + carry
        out.append(t.bitwiseAND(_lit(MASK)))
        carry = F.shiftright(t, 16)
    return out


def _xorshift(z: Limbs, s: int) -> Limbs:
    """z ^ (z >> s) for 0 < s < 64, limb by limb."""
    F = functions()
    q, r = divmod(s, 16)
    out = []
    for i in range(4):
        lo = z[i + q] if i + q < 4 else None
        hi = z[i + q + 1] if i + q + 1 < 4 else None
        if lo is None:
            out.append(z[i])
            continue
        part = F.shiftright(lo, r) if r else lo
        if hi is not None and r:
            part = part.bitwiseOR(F.shiftleft(hi, 16 - r).bitwiseAND(_lit(MASK)))
        out.append(z[i].bitwiseXOR(part))
    return out


def _mul_const(x: Limbs, c: Sequence[int]) -> Limbs:
    """x * c mod 2^64 by schoolbook limb products (each below 2^32, column sums below 2^35)."""
    F = functions()
    out, carry = [], None
    for k in range(4):
        terms = [x[i] * _lit(c[k - i]) for i in range(k + 1) if c[k - i]]
        if carry is not None:
            terms.append(carry)
        t = terms[0]
        for term in terms[1:]:
            t = t + term
        out.append(t.bitwiseAND(_lit(MASK)))
        carry = F.shiftright(t, 16)
    return out


# bind(z, k): make the limbs z cheap to read (a projection, or a lambda's variable) and
# continue with k on the bound limbs; k's result is bind's result.
Binder = Callable[[Limbs, Callable[[Limbs], Any]], Any]


def splitmix64(z: Limbs, bind: Binder, finish: Callable[[Limbs], Any] = lambda z: z) -> Any:
    """``finish(splitmix64(z))``, every intermediate word bound by ``bind``."""
    return bind(
        _add_const(z, const(K.GOLDEN)),
        lambda a: bind(
            _xorshift(a, 30),
            lambda b: bind(
                _mul_const(b, const(K.MIX1)),
                lambda c: bind(
                    _xorshift(c, 27),
                    lambda d: bind(
                        _mul_const(d, const(K.MIX2)), lambda e: finish(_xorshift(e, 31))
                    ),
                ),
            ),
        ),
    )


def uniform(z: Limbs) -> Any:
    """(z >> 11) * 2^-53 as a double: the 53 high bits are below 2^53, exact in a double."""
    F = functions()
    bits = (
        F.shiftleft(z[3], 37)
        .bitwiseOR(F.shiftleft(z[2], 21))
        .bitwiseOR(F.shiftleft(z[1], 5))
        .bitwiseOR(F.shiftright(z[0], 11))
    )
    return bits.cast("double") * F.lit(TWO_POW_M53)


class Frame:
    """A DataFrame being extended with limb columns, one projection per bound step."""

    def __init__(self, df: Any, prefix: str) -> None:
        self.df = df
        self.prefix = prefix
        self.count = 0

    def bind(self, z: Limbs, k: Callable[[Limbs], Any] = lambda z: z) -> Any:
        F = functions()
        names = [f"{self.prefix}{self.count}_{j}" for j in range(4)]
        self.count += 1
        self.df = self.df.withColumns(dict(zip(names, z, strict=True)))
        return k([F.col(n) for n in names])

    def names(self) -> list[str]:
        """Every helper column added (to drop them afterwards)."""
        return [c for c in self.df.columns if c.startswith(self.prefix)]


def string_word(frame: Frame, raw: Any, max_words: int, name: str) -> Limbs:
    """Key word of a binary expression (a string's UTF-8 bytes), per the string key spec.

    ``h = splitmix64(STRING_TAG ^ L)``; then ``h = splitmix64(h ^ w)`` for each 8-byte
    little-endian word ``w`` of the bytes, the last one zero-padded. The words are read from
    the bytes' hex digits, 8 digits (4 bytes, read big-endian) at a time, then byte-swapped.
    ``max_words`` (the longest value's word count, from a driver-side aggregation) steps are
    unrolled; each is computed only for rows that have that word (``CASE WHEN`` evaluates
    one branch).
    """
    F = functions()
    n_name, d_name = f"{frame.prefix}{frame.count}_n", f"{frame.prefix}{frame.count}_d"
    frame.count += 1
    n = F.octet_length(raw)
    words = F.floor((n + F.lit(7)) / F.lit(8)).cast("int")
    too_long = F.raise_error(
        F.lit(f"key column {name!r} changed while sampling (a value longer than planned)")
    )
    frame.df = frame.df.withColumn(n_name, F.when(words > max_words, too_long).otherwise(n))
    frame.df = frame.df.withColumn(d_name, F.rpad(F.hex(raw), max_words * 16, "0"))
    n, digits = F.col(n_name), F.col(d_name)
    words = F.floor((n + F.lit(7)) / F.lit(8)).cast("int")
    h = frame.bind(
        splitmix64(xor_const(of_long(n.cast("bigint")), const(K.STRING_TAG)), frame.bind)
    )

    def half(i: int, j: int) -> Limbs:
        v = F.conv(F.substring(digits, 16 * i + 8 * j + 1, 8), 16, 10).cast("bigint")
        m = _lit(0xFF)
        b = [F.shiftright(v, 24 - 8 * t).bitwiseAND(m) for t in range(4)]
        return [b[0].bitwiseOR(F.shiftleft(b[1], 8)), b[2].bitwiseOR(F.shiftleft(b[3], 8))]

    for i in range(max_words):
        active = words > i

        def guarded(z: Limbs, k: Callable[[Limbs], Any], active: Any = active) -> Any:
            return frame.bind([F.when(active, v).otherwise(_lit(0)) for v in z], k)

        mixed = splitmix64(xor(h, half(i, 0) + half(i, 1)), guarded)
        h = frame.bind([F.when(active, v).otherwise(old) for v, old in zip(mixed, h, strict=True)])
    return h
