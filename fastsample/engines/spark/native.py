"""The keep/drop decision as Spark SQL expressions: no Python worker in the physical plan.

For a linear pilot (or none) every step of the local kernel (``_block_logits``,
``_sigmoid``, ``_score_pair``, ``_clip``, ``_decide`` in :mod:`fastsample.core.kernels`) is
written as the same IEEE double operations in the same order: the logit
``((b + x_0 w_0) + x_1 w_1) + ...``, the two-branch sigmoid, ``kappa * h`` clipped to
``[floor, 1]`` and ``2^-53``, ``u < a_y``, ``log a_1 - log a_0``. Neither side fuses a
multiply-add (Java forbids it, Numba builds without ``fastmath``), and ``sqrt``, ``+``, ``*``
and ``/`` are correctly rounded on both. Only ``exp`` and ``log`` differ: Spark calls
``java.lang.StrictMath`` (fdlibm), the kernels the C library's. Measured on 2M arguments, 10% of
``exp`` and 2% of ``log`` results differ, always by exactly 1 ulp; so inclusion probabilities
agree within 4 ulp (relative 1e-15) and offsets within 1e-15 of ``max(1, |offset|)``, and a
decision can differ only for a uniform within that distance of its probability (about one
row in 10^15). Constant probabilities (``uniform``) are computed on the driver with Python's
``math.log``, the same C library call as the kernels: those agree bit for bit.

The keyed uniform is :mod:`fastsample.engines.spark.limbs`: splitmix64 in Catalyst's wrapping
``long`` arithmetic on a classic session (the session stays in ANSI mode), on overflow-free
32-bit halves under Spark Connect. Bad input raises inside the job with the local engine's wording, through
``raise_error``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastsample.core import kernels as K
from fastsample.core.hashing import seed_mix
from fastsample.core.plan import SamplingPlan
from fastsample.core.strategies import effective_floor, strategy_code
from fastsample.core.validation import label_error
from fastsample.engines.spark import limbs as L
from fastsample.engines.spark.session import spark_types


def unsupported(df: Any, pilot: Any, plan: SamplingPlan, keys: Sequence[str]) -> str | None:
    """Why the native path cannot run this sample (None when it can)."""
    types = spark_types()
    if pilot is not None and pilot.linear is None:
        return "the pilot is not a linear model"
    if strategy_code(plan.strategy) == K.OPT_A and plan.info_inv is None:
        return "opt-a needs the pilot's information matrix"
    fields = {f.name: f.dataType for f in df.schema.fields}
    for k in keys:
        if isinstance(fields[k], types.TimestampNTZType):
            return f"key column {k!r} has type timestamp_ntz"
    return None


def slow_keys(df: Any, keys: Sequence[str]) -> str | None:
    """Why ``path="auto"`` prefers mapInArrow although the native path could run (or None).

    String and binary keys are hashed natively word by word (hex digits parsed by ``conv``,
    one splitmix64 per 8 bytes). For the benchmark's ``user-<id>`` key with 16 features the
    largest generated method measured 11,423 bytes of bytecode with the wrapping arithmetic
    (16,961 with the 32-bit halves; Spark's ``maxMethodCodeSize``), still past HotSpot's
    8,000-byte ``DontCompileHugeMethods`` limit, so the stage runs interpreted (0.04x the plain
    PySpark query against 0.21x for mapInArrow; the integer-key method is 4,574 bytes and is
    compiled).
    """
    types = spark_types()
    fields = {f.name: f.dataType for f in df.schema.fields}
    for k in keys:
        if isinstance(fields[k], (types.StringType, types.BinaryType)):
            return f"key column {k!r} is a string: hashed faster by the kernels"
    return None


def _prefix(columns: Sequence[str]) -> str:
    """A helper-column prefix that no input column starts with."""
    prefix = "__fs_"
    while any(c.startswith(prefix) for c in columns):
        prefix += "_"
    return prefix


def _raise(F: Any, message: Any) -> Any:
    return F.raise_error(message if not isinstance(message, str) else F.lit(message))


def _max_words(df: Any, name: str) -> int:
    """8-byte words of the longest value of a string/binary key (one aggregation)."""
    F = L.functions()
    longest = df.select(F.max(F.octet_length(F.col(name)))).collect()[0][0]
    return (int(longest or 0) + 7) // 8


def _key_word(frame: L.Frame, name: str, dtype: Any) -> Any:
    F, types = L.functions(), spark_types()
    col = F.col(name)
    col = F.when(col.isNull(), _raise(F, f"key column {name!r} has a null value")).otherwise(col)
    if isinstance(dtype, (types.StringType, types.BinaryType)):
        raw = col if isinstance(dtype, types.BinaryType) else F.encode(col, "UTF-8")
        # coalesce: a non-nullable input keeps null tests out of the generated hash code
        raw = F.coalesce(raw, F.lit(bytearray()))
        return L.string_word(frame, raw, _max_words(frame.df, name), name)
    if isinstance(dtype, types.DateType):
        word = F.unix_date(col).cast("bigint")
    elif isinstance(dtype, types.TimestampType):
        word = F.unix_micros(col)
    else:  # integers and booleans: the two's-complement value
        word = col.cast("bigint")
    return frame.bind(F.coalesce(word, F.lit(0).cast("bigint")))


def uniform_column(frame: L.Frame, keys: Sequence[str], seed: int) -> Any:
    """The keyed uniform of every row, bound as a column of ``frame``."""
    fields = {f.name: f.dataType for f in frame.df.schema.fields}
    words = [_key_word(frame, k, fields[k]) for k in keys]
    if len(words) == 1:
        word = words[0]
    else:
        acc = L.lit(int(K.COMPOSITE_TAG))
        for w in words:
            acc = L.splitmix64(frame, frame.bind(acc.bitwiseXOR(w)))
        word = acc
    mixed = frame.bind(word.bitwiseXOR(L.lit(int(seed_mix(seed)))))
    return frame.bind(L.uniform(L.splitmix64(frame, mixed)))


def _sigmoid(F: Any, eta: Any, e: Any, sign: float = 1.0) -> Any:
    """``sigmoid(sign * eta)`` of the kernels, given the bound ``e = exp(-|eta|)``: two branches."""
    x = eta if sign > 0 else -eta
    return F.when(x >= 0.0, F.lit(1.0) / (F.lit(1.0) + e)).otherwise(e / (F.lit(1.0) + e))


def _clip(F: Any, v: Any, floor: float) -> Any:
    """``_clip`` of the kernels in their order; ``v`` is never NaN (the logit is checked), where
    ``least``/``greatest`` would differ from the kernels' comparisons."""
    return F.greatest(F.greatest(F.least(v, F.lit(1.0)), F.lit(floor)), F.lit(K.PI_EPS))


def _clip_value(v: float, floor: float) -> float:
    v = 1.0 if v > 1.0 else v
    v = floor if v < floor else v
    return K.PI_EPS if v < K.PI_EPS else v


def _sql_double(v: float) -> str:
    """A finite double as SQL text with exactly its value (``repr`` round-trips, and the cast
    parses with ``Double.parseDouble``; a decimal literal would go through ``BigDecimal``)."""
    return f"CAST('{float(v)!r}' AS DOUBLE)"


def _features(frame: L.Frame, pilot: Any) -> list[str]:
    """The pilot's features as doubles, null read as NaN (bound once, read by logit and check);
    their bound names.

    Non-null doubles keep the generated code of the logit and its check small: with null
    handling for 16 features the loop outgrew 8 kB of bytecode, and the JIT does not compile
    such methods (the stage ran interpreted, several times slower). Written as SQL text, as is
    the logit: one py4j call per expression instead of one per operator and literal (the
    driver-side build of a 16-feature sample was a third of its wall time at 1M rows).
    """
    F = L.functions()
    quoted = ["`" + n.replace("`", "``") + "`" for n in pilot.features]
    return frame.bind_names(
        [F.expr(f"coalesce(CAST({q} AS DOUBLE), CAST('NaN' AS DOUBLE))") for q in quoted]
    )


def _logit(F: Any, pilot: Any, x: list[str]) -> Any:
    """The logit in the kernels' order, ``((b + x_0 w_0) + x_1 w_1) + ...``, or the local
    engine's error for a null, NaN or infinite one, naming the first bad feature (``v - v``
    is NaN exactly for NaN and infinities); ``x`` are the bound features' names."""
    coef, intercept = pilot.linear
    eta = _sql_double(intercept)
    for xj, w in zip(x, coef, strict=True):
        eta = f"({eta} + {xj} * {_sql_double(w)})"
    messages = [
        f"feature column {n!r} contains null, NaN or infinite values" for n in pilot.features
    ]
    messages.append("pilot logits overflow: features too large for the pilot's weights")
    # one array lookup rather than a branch per feature: the per-feature branches were a
    # third of the generated loop
    flags = F.expr(f"array({', '.join(f'isnan({xj} - {xj})' for xj in x)}, true)")
    why = F.element_at(F.array(*map(F.lit, messages)), F.array_position(flags, True).cast("int"))
    return F.expr(eta), why


def _norm(F: Any, code: int, x: list[Any], info_inv: Any) -> Any:
    """``_row_norm`` of the kernels: sums from 0.0 in column order, then the square root."""
    if code == K.OPT_L:
        terms = [v * v for v in x]
    else:
        z = [F.lit(1.0), *x]
        terms = []
        for r in range(info_inv.shape[0]):
            t: Any = F.lit(0.0)
            for c in range(info_inv.shape[1]):
                t = t + F.lit(float(info_inv[r, c])) * z[c]
            terms.append(t * t)
    s: Any = F.lit(0.0)
    for t in terms:
        s = s + t
    return F.sqrt(s)


def _label(F: Any, label: str) -> Any:
    """``y == 1`` for a 0/1 label; anything else fails the job with core.validation's wording."""
    y = F.col(label)
    yv = y.cast("double")
    stem = str(label_error(label, ""))
    why = F.coalesce(
        F.concat(F.lit(f"{stem}value "), y.cast("string")), F.lit(str(label_error(label, "null")))
    )
    return (
        F.when(yv == 1.0, F.lit(True)).when(yv == 0.0, F.lit(False)).otherwise(F.raise_error(why))
    )


def apply_native(
    df: Any,
    plan: SamplingPlan,
    pilot: Any,
    label: str,
    feats: list[str],
    keys: list[str],
    arith: L.Arithmetic,
) -> Any:
    """The sample as a lazy Spark DataFrame computed by SQL expressions only; the hash's
    ``+`` and ``*`` by ``arith`` (:func:`fastsample.engines.spark.limbs.arithmetic`)."""
    F = L.functions()
    columns = list(df.columns)
    frame = L.Frame(df, _prefix(columns), arith)
    u = uniform_column(frame, keys, plan.seed)
    code = strategy_code(plan.strategy)
    floor = effective_floor(plan.floor)
    kappa = float(plan.kappa)
    y = frame.bind(_label(F, label))
    a1: Any = F.lit(1.0)
    if pilot is not None:
        names = _features(frame, pilot)
        raw, why = _logit(F, pilot, names)
        raw = frame.bind(raw)
        eta = frame.bind(F.when(F.isnan(raw - raw), F.raise_error(why)).otherwise(raw))
    if code == K.UNIFORM:
        a0_value = _clip_value(kappa * 1.0, floor)
        a0: Any = F.lit(a0_value)
        offset: Any = F.lit(math.log(1.0) - math.log(a0_value))
        if pilot is not None:  # the logit is still checked, as the kernels do
            a0 = F.when(eta.isNotNull(), a0)
    else:
        # sigmoid(eta) and sigmoid(-eta) share exp(-|eta|), as in the kernels
        e = frame.bind(F.exp(-F.abs(eta)))
        p = _sigmoid(F, eta, e)
        if code in (K.PROPORTIONAL, K.LCC):
            h0 = p
        else:
            norm = _norm(F, code, [F.col(n) for n in names], plan.info_inv)
            h0 = p * F.sqrt(_sigmoid(F, eta, e, -1.0)) * norm
        a0 = frame.bind(_clip(F, F.lit(kappa) * h0, floor))
        if code == K.LCC:
            a1 = frame.bind(_clip(F, F.lit(kappa) * _sigmoid(F, eta, e, -1.0), floor))
        offset = F.log(a1) - F.log(a0)
    a = frame.bind(F.when(y, a1).otherwise(a0))
    # The filter must not be pushed below the projections above: Catalyst would substitute
    # every bound column back into one expression tree (1.6 MB of plan text for 16 features,
    # 26x slower). A non-deterministic projection is the barrier it respects.
    keep = frame.bind(F.when(F.spark_partition_id() >= 0, u < a))
    cols = plan.columns
    return (
        frame.projected()
        .filter(keep)
        .select(
            *[F.col(c) for c in columns],
            a.alias(cols.prob),
            (F.lit(1.0) / a).alias(cols.weight),
            offset.alias(cols.offset),
        )
    )


def python_in_plan(sdf: Any) -> list[str]:
    """Physical operators of ``sdf``'s executed plan that run Python workers (empty if none)."""
    plan = sdf._jdf.queryExecution().executedPlan().toString()
    markers = ("Python", "ArrowEval", "MapInArrow", "MapInPandas", "FlatMapGroupsIn")
    return sorted({line.strip() for line in plan.splitlines() if any(m in line for m in markers)})
