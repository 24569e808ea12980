"""The key specification of :mod:`fastsample.core.hashing` as Spark SQL expressions.

splitmix64 wraps on purpose, and Spark 4 runs with ``spark.sql.ansi.enabled=true``, where a
64-bit ``+`` or ``*`` that overflows raises. Shifts, ``&``, ``|`` and ``^`` never check
overflow, so a word stays one bigint column; only its one addition and two multiplications by
a constant need care. :func:`arithmetic` picks, once per run, one of two ways to do them:

* :class:`Wrapping` (classic sessions): Catalyst's own ``Add`` and ``Multiply`` built through
  py4j with ``EvalMode.LEGACY`` on these expressions only: Java's wrapping ``long`` arithmetic,
  three plain operations per splitmix64 in the generated code. The session stays in ANSI mode
  (a user's overflowing ``+`` in the same query or session still raises): flipping
  ``spark.sql.ansi.enabled`` would be racy for concurrent queries.
* :class:`Halves` (Spark Connect, which has no py4j gateway, or a JVM whose classes differ):
  the addition on 32-bit halves (each sum below 2^34), the multiplication as three products of
  the word's unsigned 32-bit halves and the constant's signed ones (each below 2^63 in
  magnitude): 7 ``addExact`` and 6 ``multiplyExact`` per splitmix64, none of which can
  overflow.

Both give the words and uniforms of :mod:`fastsample.core.hashing` bit for bit (the tests
compare them on integer, string and composite keys).

Every intermediate word that is read more than once is bound to its own column
(:meth:`Frame.bind`): an inlined splitmix64 would repeat its input word's expression at every
read. The plan must also keep the filter on the final uniform from being pushed down through
these projections (``native.apply_native`` does), or Catalyst substitutes them all back into
one expression tree.
"""

from __future__ import annotations

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


class Halves:
    """``x + c`` and ``x * c`` mod 2^64 by checked operations that cannot overflow (any session)."""

    name = "ANSI-safe 32-bit halves"
    # both read the word twice (its two halves): the caller binds it
    reads_twice = True

    def add(self, x: Any, c: int) -> Any:
        return _add_const(x, c)

    def mul(self, x: Any, c: int) -> Any:
        return _mul_const(x, c)


class Wrapping:
    """``x + c`` and ``x * c`` as Catalyst ``Add``/``Multiply`` in ``EvalMode.LEGACY``: Java's
    wrapping ``long`` arithmetic on these expressions only, the session's ANSI mode untouched.

    Built through the py4j gateway of a classic session (``jvm``); the constructor evaluates
    ``2^62 + 2^62`` with it, so a JVM whose classes differ raises here, not inside a job.
    """

    name = "wrapping long arithmetic"
    reads_twice = False

    def __init__(self, jvm: Any) -> None:
        from pyspark.sql.classic.column import Column  # lazy: pyspark is optional

        self._column = Column
        self._exprs = jvm.org.apache.spark.sql.catalyst.expressions
        self._utils = jvm.org.apache.spark.sql.classic.ExpressionUtils
        self._legacy = self._exprs.NumericEvalContext(self._exprs.EvalMode.LEGACY(), True)
        long_type = jvm.org.apache.spark.sql.types.DataTypes.LongType
        big = self._exprs.Literal.create(1 << 62, long_type)  # py4j passes a java.lang.Long
        if self._exprs.Add(big, big, self._legacy).eval(None) != -(1 << 63):
            raise TypeError("Catalyst's LEGACY Add does not wrap")

    def _binary(self, op: str, x: Any, c: int) -> Any:
        left, right = self._utils.expression(x._jc), self._utils.expression(lit(c)._jc)
        return self._column(self._utils.column(getattr(self._exprs, op)(left, right, self._legacy)))

    def add(self, x: Any, c: int) -> Any:
        return self._binary("Add", x, c)

    def mul(self, x: Any, c: int) -> Any:
        return self._binary("Multiply", x, c)


Arithmetic = Halves | Wrapping


def arithmetic(session: Any) -> Arithmetic:
    """:class:`Wrapping` when ``session`` has a py4j gateway to Catalyst, else :class:`Halves`."""
    jvm = getattr(session, "_jvm", None)  # Spark Connect sessions have none
    if jvm is None:
        return Halves()
    py4j = require("py4j.protocol", "spark")
    try:
        return Wrapping(jvm)
    except (py4j.Py4JError, TypeError, AttributeError):  # another Spark's Catalyst API
        return Halves()


def splitmix64(frame: Frame, x: Any) -> Any:
    """splitmix64 of the word ``x`` (a bound column); the intermediates read twice are bound."""
    w = frame.arith
    operand = frame.bind if w.reads_twice else (lambda v: v)
    z = frame.bind(w.add(x, int(K.GOLDEN)))
    z = frame.bind(w.mul(operand(_xorshift(z, 30)), int(K.MIX1)))
    z = frame.bind(w.mul(operand(_xorshift(z, 27)), int(K.MIX2)))
    return frame.bind(_xorshift(z, 31))


def uniform(x: Any) -> Any:
    """(x >>> 11) * 2^-53 as a double: the 53 high bits are below 2^53, exact in a double."""
    F = functions()
    return F.shiftrightunsigned(x, 11).cast("double") * F.lit(TWO_POW_M53)


LATERAL_ALIAS = "spark.sql.lateralColumnAlias.enableImplicitResolution"


class Frame:
    """A DataFrame being extended with bound columns, and the arithmetic its hash uses.

    The bound columns become one ``select`` (:meth:`projected`) whose later columns read the
    earlier ones by name (lateral column aliases): the analyzer splits it into one projection
    per dependency level, as a chain of ``withColumns`` would, but analyses the plan once
    instead of once per step (each analysis cost ~30 ms on the driver). A session with lateral
    aliases switched off gets the chain.
    """

    def __init__(self, df: Any, prefix: str, arith: Arithmetic) -> None:
        self.df = df
        self.prefix = prefix
        self.arith = arith
        self.count = 0
        self._bound: list[Any] = []
        self._lateral = df.sparkSession.conf.get(LATERAL_ALIAS, "true").lower() == "true"

    def bind(self, x: Any) -> Any:
        """``x`` as a new column of the frame; the column (cheap to read again)."""
        return self.bind_all([x])[0]

    def bind_all(self, xs: list[Any]) -> list[Any]:
        """Several expressions as new columns of the same projection."""
        return [functions().col(n) for n in self.bind_names(xs)]

    def bind_names(self, xs: list[Any]) -> list[str]:
        """:meth:`bind_all`, returning the new columns' names (plain identifiers)."""
        names = [f"{self.prefix}{self.count + i}" for i in range(len(xs))]
        self.count += len(xs)
        if self._lateral:
            self._bound.extend(x.alias(n) for n, x in zip(names, xs, strict=True))
        else:
            self.df = self.df.withColumns(dict(zip(names, xs, strict=True)))
        return names

    def projected(self) -> Any:
        """The DataFrame with every bound column."""
        return self.df.select("*", *self._bound) if self._bound else self.df


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
    h = splitmix64(frame, frame.bind(n.cast("bigint").bitwiseXOR(lit(int(K.STRING_TAG)))))

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
        mixed = splitmix64(frame, frame.bind(F.when(active, h.bitwiseXOR(w)).otherwise(h)))
        h = frame.bind(F.when(active, mixed).otherwise(h))
    return h
