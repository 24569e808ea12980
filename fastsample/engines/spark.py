"""The sampling engine on Apache Spark, row for row identical to the local engine.

Every Arrow batch of the Spark DataFrame goes through :func:`fastsample.engines.batch.draw_indices`
(the same Numba kernels as the local engines) inside ``DataFrame.mapInArrow``. A row's fate
depends only on its key, the seed and its pilot score (DESIGN.md §3), so the sample does not
change with the number of partitions, the batch size or the order of the rows — unlike
Spark's own ``sample``/``rand``, which are seeded per partition.

pyspark is an optional dependency (``pip install 'fastsample[spark]'``) imported lazily.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fastsample.core.optional import require
from fastsample.core.plan import OutputColumns, SamplingPlan, check_rate
from fastsample.core.validation import label_error
from fastsample.errors import FastsampleError, InputError

# Name of the temporary row-position column added to the Polars view of a batch; chosen so
# that it cannot be mistaken for a user column (and checked anyway).
# Exact mode: log2-histogram resolution of the first pass (bins per octave), the factor by
# which each refinement pass divides the bins that straddle a threshold, and the number of
# straddling rows that are small enough to collect to the driver.
_BINS_PER_OCTAVE = 64
_REFINE = 1024
_MAX_REFINE = 3
_COLLECT_ROWS = 2_000_000
_ZERO_BIN = -(2**62)


def _pyspark() -> Any:
    return require("pyspark.sql", "spark")


def local_session(cores: int = 2, *, app_name: str = "fastsample", **conf: str) -> Any:
    """A local-mode SparkSession set up for fastsample (tests, benchmarks, trying it out).

    Python workers run this interpreter (``PYSPARK_PYTHON``), so the Numba kernels and their
    on-disk cache are the driver's; the UI is off and shuffles use few partitions.

    Parameters
    ----------
    cores : int
        Worker threads (``local[cores]``).
    app_name : str
        Spark application name.
    **conf : str
        Extra Spark settings, e.g. ``**{"spark.driver.memory": "2g"}``.
    """
    sql = _pyspark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        sql.SparkSession.builder.master(f"local[{int(cores)}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(1, int(cores))))
        .config("spark.sql.adaptive.enabled", "false")
    )
    for name, value in conf.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


# --- validation on the driver -----------------------------------------------------------


def _key_names(key: Any) -> list[str]:
    if key is None:
        raise InputError(
            "Spark needs a key column (key=...): without one the local engine keys rows by "
            "their global row index, which Spark cannot reproduce across partitionings"
        )
    names = [key] if isinstance(key, str) else list(key)
    if not names or not all(isinstance(k, str) for k in names):
        raise InputError(f"key must be a column name or a list of names, got {key!r}")
    return names


def _check_columns(df: Any, label: str, features: Sequence[str], keys: Sequence[str]) -> None:
    """Driver-side checks of names and types, so most bad input fails before any job runs."""
    types = require("pyspark.sql.types", "spark")
    fields = {f.name: f.dataType for f in df.schema.fields}
    numeric = (types.NumericType, types.BooleanType)
    if label not in fields:
        raise InputError(f"label column {label!r} not found in the Spark DataFrame")
    if not isinstance(fields[label], numeric):
        raise label_error(label, f"type {fields[label].simpleString()}")
    for f in features:
        if f not in fields:
            raise InputError(f"feature column {f!r} not found in the Spark DataFrame")
        if not isinstance(fields[f], numeric) or isinstance(fields[f], types.DecimalType):
            raise InputError(f"feature column {f!r} is not numeric ({fields[f].simpleString()})")
    for k in keys:
        if k not in fields:
            raise InputError(f"key column {k!r} not found in the Spark DataFrame")
        t = fields[k]
        if isinstance(t, (types.FloatType, types.DoubleType, types.DecimalType)):
            raise InputError(
                f"key column {k!r} has floating-point type {t.simpleString()}; use an integer or string key"
            )
        allowed = (
            types.IntegralType,
            types.BooleanType,
            types.StringType,
            types.BinaryType,
            types.DateType,
            types.TimestampType,
            types.TimestampNTZType,
        )
        if not isinstance(t, allowed):
            raise InputError(f"key column {k!r} has unsupported type {t.simpleString()}")


def _resolve_pilot(pilot: Any, features: Sequence[str] | None, strategy: str) -> Any:
    from fastsample.core.pilot import as_pilot

    if pilot is None:
        if strategy != "uniform":
            raise InputError(f"strategy {strategy!r} needs a pilot")
        return None
    return as_pilot(pilot, list(features) if features is not None else None)


def _broadcast(df: Any, value: Any) -> Any:
    """A broadcast handle for ``value`` (plain value under Spark Connect, which has none)."""
    try:
        sc = df.sparkSession.sparkContext
    except Exception:  # Spark Connect: the closure carries the value
        return _Plain(value)
    return sc.broadcast(value)


class _Plain:
    def __init__(self, value: Any) -> None:
        self.value = value


# --- per-batch work (runs on the executors) ----------------------------------------------


def _needed(label: str, features: Sequence[str], keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([label, *features, *keys]))


def _views(batches: Iterator[Any], cols: list[str]) -> Iterator[tuple[Any, Any]]:
    """Each non-empty Arrow batch with a Polars view of ``cols``.

    The batch itself is kept so that output rows can be gathered from it with their exact
    Spark/Arrow types.
    """
    import polars as pl

    for batch in batches:
        if batch.num_rows == 0:
            continue
        view = pl.from_arrow(batch.select(cols))
        assert isinstance(view, pl.DataFrame)
        yield batch, view


def _negative_scores(
    view: Any, label: str, pilot: Any, strategy: str, info_inv: np.ndarray | None
) -> np.ndarray:
    """The pilot's scores of the batch's negatives (the rows the plan draws from)."""
    import polars as pl

    from fastsample.core.strategies import strategy_code
    from fastsample.engines.batch import batch_scores, label_array

    y = label_array(view, label)
    h0, _ = batch_scores(view.filter(pl.Series(y == 0)), pilot, strategy_code(strategy), info_inv)
    return h0


def _draw_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    plan: SamplingPlan,
    label: str,
    features: list[str],
    keys: list[str],
) -> Iterator[Any]:
    import pyarrow as pa

    from fastsample.engines.batch import draw_indices
    from fastsample.engines.stream import kept_rows

    pilot = pilot_handle.value
    key: str | list[str] = keys[0] if len(keys) == 1 else keys
    cols = _needed(label, features, keys)
    schema = None
    for batch, view in _views(batches, cols):
        drawn = draw_indices(view, label=label, pilot=pilot, plan=plan, key=key)
        if drawn.index.size == 0:
            continue
        if schema is None:
            schema = batch.schema
            for n in plan.columns.names():
                schema = schema.append(pa.field(n, pa.float64(), nullable=False))
        # The kept rows come from the original Arrow batch, so every input column keeps its
        # exact Spark/Arrow type (no round trip through Polars types).
        yield kept_rows(batch, drawn, schema)


def _histogram_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    strategy: str,
    info_inv: np.ndarray | None,
    label: str,
    features: list[str],
    scale: float,
    ranges: np.ndarray,
) -> Iterator[Any]:
    """Per-batch histogram of the negatives' scores: (bin, count, sum, min, max) rows.

    ``ranges`` (k x 2, sorted, disjoint) restricts the rows to scores inside one of them;
    an empty array means every negative.
    """
    import pyarrow as pa

    pilot = pilot_handle.value
    cols = _needed(label, features, [])
    for _batch, view in _views(batches, cols):
        h0 = _negative_scores(view, label, pilot, strategy, info_inv)
        if h0.size and not np.isfinite(h0).all():
            raise InputError("pilot scores contain NaN or infinite values")
        h0 = _in_ranges(h0, ranges)
        if h0.size == 0:
            continue
        b = _bin_ids(h0, scale)
        order = np.argsort(b, kind="stable")
        b, hs = b[order], h0[order]
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        yield pa.RecordBatch.from_pydict(
            {
                "bin": pa.array(b[starts], pa.int64()),
                "n": pa.array(np.diff(np.r_[starts, b.size]), pa.int64()),
                "s": pa.array(np.add.reduceat(hs, starts), pa.float64()),
                "lo": pa.array(np.minimum.reduceat(hs, starts), pa.float64()),
                "hi": pa.array(np.maximum.reduceat(hs, starts), pa.float64()),
            }
        )


def _scores_batches(
    batches: Iterator[Any],
    pilot_handle: Any,
    strategy: str,
    info_inv: np.ndarray | None,
    label: str,
    features: list[str],
    ranges: np.ndarray,
) -> Iterator[Any]:
    """The negatives' scores that fall inside ``ranges`` (for the exact solve)."""
    import pyarrow as pa

    pilot = pilot_handle.value
    cols = _needed(label, features, [])
    for _batch, view in _views(batches, cols):
        h0 = _negative_scores(view, label, pilot, strategy, info_inv)
        h0 = _in_ranges(h0, ranges)
        if h0.size:
            yield pa.RecordBatch.from_pydict({"h": pa.array(h0, pa.float64())})


def _bin_ids(h: np.ndarray, scale: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        b = np.floor(np.log2(h) * scale)
    out = np.where(h > 0, b, 0).astype(np.int64)
    out[h <= 0] = _ZERO_BIN
    return out


def _in_ranges(h: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    if ranges.shape[0] == 0:
        return h
    i = np.searchsorted(ranges[:, 0], h, side="right") - 1
    ok = (i >= 0) & (h <= ranges[np.clip(i, 0, None), 1])
    return h[ok]


# --- planning ----------------------------------------------------------------------------


def plan_spark(
    df: Any,
    *,
    label: str,
    features: Sequence[str] | None = None,
    pilot: Any,
    strategy: str = "proportional",
    rate: float = 0.1,
    seed: int = 0,
    floor: float | None = None,
    exact: bool = False,
    columns: OutputColumns | None = None,
) -> SamplingPlan:
    """The :class:`~fastsample.engines.batch.SamplingPlan` (kappa) that :func:`sample_spark` uses.

    One-pass mode (default) estimates kappa on the driver from the pilot's reference sample
    of negatives, exactly as the local engine does, so both give the same kappa bit for bit.
    ``exact=True`` solves the water-filling equation over every negative of ``df`` with Spark
    jobs and bounded driver memory: a log-scale histogram of the scores (count, sum, min,
    max per bin), refined where a bin straddles a clipping threshold, then the few straddling
    scores collected and solved with :func:`fastsample.core.strategies.solve_kappa`. ``df`` must
    then be deterministic (cache it if it is computed with random expressions).

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Input rows.
    label, features, pilot, strategy, rate, seed, floor, exact
        As in :func:`sample_spark`.
    columns : OutputColumns, optional
        Names of the three added columns.
    """
    from fastsample.core.plan import plan_from_pilot, plan_sampling
    from fastsample.core.strategies import strategy_code

    strategy_code(strategy)
    r = check_rate(rate)
    cols = columns or OutputColumns()
    pilot_obj = _resolve_pilot(pilot, features, strategy)
    feats = pilot_obj.features if pilot_obj is not None else []
    _check_columns(df, label, feats, [])
    info_inv = pilot_obj.info_inv if pilot_obj is not None else None
    if strategy == "opt-a" and info_inv is None:
        raise InputError("strategy 'opt-a' needs a pilot with an information matrix (fit_pilot)")
    if not exact:
        if pilot_obj is None:
            # uniform without a pilot: h = 1 for every row, kappa = rate.
            return plan_sampling(
                np.ones(1),
                strategy=strategy,
                rate=r,
                seed=seed,
                floor=floor,
                columns=cols,
                method="pilot-sample",
            )
        from fastsample.core.reference import one_pass_problem

        plan = plan_from_pilot(
            pilot_obj, strategy=strategy, rate=r, seed=seed, floor=floor, columns=cols
        )
        problem = one_pass_problem(pilot_obj, plan.relative_error, plan.target_negatives)
        if problem is None:
            return plan
        import warnings

        from fastsample.errors import FastsampleWarning

        warnings.warn(
            f"one-pass kappa: {problem}; solving it exactly over every row instead "
            "(an extra Spark job; exact=True always does)",
            FastsampleWarning,
            stacklevel=2,
        )
    h, w = _exact_scores(df, pilot_obj, strategy, info_inv, label, feats, r, floor)
    return plan_sampling(
        h,
        strategy=strategy,
        rate=r,
        seed=seed,
        floor=floor,
        weights=w,
        info_inv=info_inv,
        columns=cols,
        method="exact",
    )


def _histogram(
    df: Any,
    handle: Any,
    strategy: str,
    info_inv: Any,
    label: str,
    feats: list[str],
    scale: float,
    ranges: np.ndarray,
) -> np.ndarray:
    """(bin, n, sum, lo, hi) rows of the negatives' score histogram, as a float64 matrix."""
    F = require("pyspark.sql.functions", "spark")
    cols = _needed(label, feats, [])

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return _histogram_batches(batches, handle, strategy, info_inv, label, feats, scale, ranges)

    rows = (
        df.select(*cols)
        .mapInArrow(fn, "bin long, n long, s double, lo double, hi double")
        .groupBy("bin")
        .agg(
            F.sum("n").alias("n"),
            F.sum("s").alias("s"),
            F.min("lo").alias("lo"),
            F.max("hi").alias("hi"),
        )
        .collect()
    )
    out = np.array([[r["n"], r["s"], r["lo"], r["hi"]] for r in rows], dtype=np.float64)
    return out.reshape(-1, 4)


def _bracket(bins: np.ndarray, target: float, floor: float | None) -> tuple[float, float]:
    """kappa range that must hold the root: scores at their bin's max, then at its min."""
    from fastsample.core.strategies import solve_kappa

    n, lo, hi = bins[:, 0], bins[:, 2], bins[:, 3]
    return solve_kappa(hi, target, floor=floor, weights=n), solve_kappa(
        lo, target, floor=floor, weights=n
    )


def _exact_scores(
    df: Any,
    pilot: Any,
    strategy: str,
    info_inv: Any,
    label: str,
    feats: list[str],
    rate: float,
    floor: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and weights whose water-filling root is the root over every negative.

    Bins that lie on one linear piece of ``g(k) = sum clip(k h, floor, 1)`` for every kappa
    in the bracket become one weighted row (their mean score and count: exact on that
    piece); bins that straddle a threshold are refined, then their scores are collected.
    """
    from fastsample.core.strategies import effective_floor

    handle = _broadcast(df, pilot)
    if pilot is None:
        n0 = df.filter(df[label] == 0).count()
        return np.ones(1), np.array([float(n0)])
    f = effective_floor(floor)
    scale = float(_BINS_PER_OCTAVE)
    bins = _histogram(df, handle, strategy, info_inv, label, feats, scale, np.zeros((0, 2)))
    n0 = float(bins[:, 0].sum())
    if n0 == 0:
        return np.zeros(0), np.zeros(0)
    target = rate * n0
    for level in range(_MAX_REFINE + 1):
        k_lo, k_hi = _bracket(bins, target, floor)
        lo, hi = bins[:, 2], bins[:, 3]
        single = lo == hi
        above = lo * k_lo >= 1.0
        below = hi * k_hi <= f
        mid = (hi * k_hi < 1.0) & (lo * k_lo > f)
        loose = ~(single | above | below | mid)
        n_loose = float(bins[loose, 0].sum())
        if not loose.any():
            break
        ranges = bins[loose][:, 2:4]
        ranges = ranges[np.argsort(ranges[:, 0])]
        if n_loose <= _COLLECT_ROWS or level == _MAX_REFINE:
            raw = _collect_scores(df, handle, strategy, info_inv, label, feats, ranges)
            if raw.size != int(n_loose):
                raise FastsampleError(
                    f"the Spark DataFrame changed between passes ({raw.size} scores collected, "
                    f"{int(n_loose)} counted); cache it before exact sampling"
                )
            keep = ~loose
            return _pseudo_rows(bins[keep], raw)
        scale *= _REFINE
        fine = _histogram(df, handle, strategy, info_inv, label, feats, scale, ranges)
        if fine[:, 0].sum() != n_loose:
            raise FastsampleError(
                "the Spark DataFrame changed between passes; cache it before exact sampling"
            )
        bins = np.vstack([bins[~loose], fine])
    return _pseudo_rows(bins, np.zeros(0))


def _pseudo_rows(bins: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, s = bins[:, 0], bins[:, 1]
    mean = np.where(bins[:, 2] == bins[:, 3], bins[:, 2], s / np.maximum(n, 1.0))
    # A mean can round outside its bin: keep it inside so the bin stays on its piece.
    mean = np.clip(mean, bins[:, 2], bins[:, 3])
    return np.concatenate([mean, raw]), np.concatenate([n, np.ones(raw.size)])


def _collect_scores(
    df: Any,
    handle: Any,
    strategy: str,
    info_inv: Any,
    label: str,
    feats: list[str],
    ranges: np.ndarray,
) -> np.ndarray:
    cols = _needed(label, feats, [])

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return _scores_batches(batches, handle, strategy, info_inv, label, feats, ranges)

    table = df.select(*cols).mapInArrow(fn, "h double").toArrow()
    return np.sort(np.asarray(table.column("h").to_numpy(), dtype=np.float64))


# --- public entry point ------------------------------------------------------------------


def sample_spark(
    df: Any,
    *,
    label: str,
    features: Sequence[str] | None = None,
    pilot: Any,
    strategy: str = "proportional",
    rate: float = 0.1,
    seed: int = 0,
    key: str | Sequence[str],
    floor: float | None = None,
    exact: bool = False,
    columns: OutputColumns | None = None,
    plan: SamplingPlan | None = None,
) -> Any:
    """Sample a Spark DataFrame: every positive, a pilot-scored fraction of the negatives.

    The same engine as the local one, run by ``mapInArrow`` on each Arrow batch: the kept rows
    and their ``sampling_prob``, ``sample_weight`` and ``log_odds_offset`` equal those of
    :func:`fastsample.sample_frame` / ``sample_parquet`` for the same data, key, seed, pilot
    and kappa, whatever the partitioning. The pilot is broadcast once.

    ``key`` is required: without a key the local engine uses each row's global index in input
    order, and a Spark DataFrame has no stable row order across partitionings, so the same row
    could get a different fate.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Input rows (with the label, the pilot's features and the key).
    label : str
        Label column (0/1 or boolean).
    features : list of str, optional
        Feature columns; default the pilot's (must match them when given).
    pilot : Pilot, path to a saved pilot, fitted classifier, or None
        The pilot model (None only with ``strategy="uniform"``).
    strategy : {"proportional", "uniform", "opt-l", "opt-a", "lcc"}
        Inclusion-probability strategy.
    rate : float
        Expected fraction of negatives kept, in (0, 1].
    seed : int
        Sampling seed.
    key : str or list of str
        Key column(s) that decide each row's uniform (DESIGN.md §3).
    floor : float, optional
        Lower bound on every inclusion probability.
    exact : bool
        Solve kappa over every negative (extra Spark jobs) instead of the one-pass estimate
        from the pilot's reference sample; see :func:`plan_spark`.
    columns : OutputColumns, optional
        Names of the three added columns.
    plan : SamplingPlan, optional
        A plan computed elsewhere (e.g. by a local run, or :func:`plan_spark` once for
        several jobs); it replaces ``strategy``, ``rate``, ``seed``, ``floor``, ``exact`` and
        ``columns``, so the Spark sample is the local one row for row.

    Returns
    -------
    pyspark.sql.DataFrame
        The input columns (types unchanged) plus the three float64 columns; lazy, like any
        Spark transformation. Bad values found while it runs (null or non-binary labels,
        NaN features) raise :class:`~fastsample.errors.InputError` inside the Spark job.
    """
    keys = _key_names(key)
    cols = plan.columns if plan is not None else (columns or OutputColumns())
    cols.check(list(df.columns), "the Spark DataFrame")
    pilot_obj = _resolve_pilot(pilot, features, plan.strategy if plan else strategy)
    feats = pilot_obj.features if pilot_obj is not None else []
    _check_columns(df, label, feats, keys)
    if plan is None:
        plan = plan_spark(
            df,
            label=label,
            pilot=pilot_obj,
            strategy=strategy,
            rate=rate,
            seed=seed,
            floor=floor,
            exact=exact,
            columns=cols,
        )
    return _apply_plan(df, plan, pilot_obj, label, feats, keys)


def _apply_plan(
    df: Any, plan: SamplingPlan, pilot: Any, label: str, feats: list[str], keys: list[str]
) -> Any:
    types = require("pyspark.sql.types", "spark")
    handle = _broadcast(df, pilot)
    schema = types.StructType(
        [*df.schema.fields]
        + [types.StructField(n, types.DoubleType(), False) for n in plan.columns.names()]
    )

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return _draw_batches(batches, handle, plan, label, feats, keys)

    return df.mapInArrow(fn, schema)


# --- pilot and imbalance report on Spark -------------------------------------------------


def _class_counts(df: Any, label: str) -> tuple[int, int]:
    """(positives, negatives) by one Spark aggregation; ``InputError`` for other labels."""
    rows = df.groupBy(label).count().collect()
    n1 = n0 = 0
    for r in rows:
        v, c = r[0], int(r[1])
        if v is None:
            raise label_error(label, f"null ({c} rows)")
        if isinstance(v, bool | int | float) and v in (0, 1):
            if v == 1:
                n1 += c
            else:
                n0 += c
        else:
            raise label_error(label, f"value {v!r}")
    return n1, n0


def _case_control_batches(
    batches: Iterator[Any],
    label: str,
    features: list[str],
    keys: list[str],
    stream: int,
    q1: float,
    q0: float,
    seed: int,
    q_ref: float,
) -> Iterator[Any]:
    """Rows of the pilot's case-control sample (label 0/1) and of the kappa reference sample
    (label 2; :mod:`fastsample.core.reference`): features, label and the key word."""
    import pyarrow as pa

    from fastsample.core.hashing import frame_keys, uniform_from_keys
    from fastsample.core.reference import reference_take
    from fastsample.engines.batch import label_array

    key: str | list[str] = keys[0] if len(keys) == 1 else keys
    cols = _needed(label, features, keys)
    for batch, view in _views(batches, cols):
        y = label_array(view, label)
        words = frame_keys(view, key)
        take = uniform_from_keys(words, stream) < np.where(y == 1, q1, q0)
        ref = reference_take(y, words, seed, q_ref, take)
        out = take | ref
        if not out.any():
            continue
        idx = pa.array(np.flatnonzero(out))
        lab = np.where(ref, 2, y).astype(np.int8)
        arrays = [batch.column(f).take(idx) for f in features]
        arrays += [pa.array(lab[out]), pa.array(words[out].view(np.int64))]
        names = [*features, _LABEL, _KEY]
        yield pa.RecordBatch.from_arrays(arrays, names=names)


_LABEL = "__fastsample_label__"
_KEY = "__fastsample_key__"


def train_pilot_spark(
    df: Any,
    *,
    label: str,
    features: Sequence[str],
    key: str | Sequence[str],
    model: Any = "logistic",
    rows: int | None = None,
    seed: int = 0,
    negatives_per_positive: float = 1.0,
) -> Any:
    """Train a pilot on a case-control sample of a Spark DataFrame, collected to the driver.

    The same pilot as :func:`fastsample.engines.parquet.train_pilot` on the same rows: one Spark
    aggregation counts the classes; the keyed hash on ``derive_seed(seed, "pilot")`` keeps
    positives with probability ``q1`` and negatives with ``q0`` (about
    ``negatives_per_positive`` negatives per positive, at most ``rows`` rows expected); the
    sample is collected and fitted by :func:`fastsample.core.pilot_fit.fit_case_control` (in key
    order, so the partitioning does not matter). ``key`` is required, as in
    :func:`sample_spark`.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    label : str
        0/1 label column.
    features : list of str
        Numeric feature columns.
    key : str or list of str
        Key column(s).
    model : str or sklearn classifier
        ``"logistic"`` (default), ``"sgd"``, ``"hgb"`` or an unfitted classifier / Pipeline.
    rows : int, optional
        Cap on the expected sample size (default 1,000,000); it must fit in driver memory.
    seed : int
        Sampling seed (the pilot derives its own stream from it).
    negatives_per_positive : float
        Case-control ratio.

    Returns
    -------
    fastsample.core.pilot.Pilot
        Ship it to a cluster with ``pilot.save(path)`` and ``spark-submit --files path``.
    """
    import polars as pl

    from fastsample.core.hashing import derive_seed, seed_mix
    from fastsample.core.pilot import feature_matrix
    from fastsample.core.pilot_fit import case_control_rates, fit_case_control
    from fastsample.core.reference import reference_rate, reference_weight

    seed_mix(seed)  # validates the seed
    cap = 1_000_000 if rows is None else rows
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap <= 0:
        raise InputError(f"rows must be a positive integer, got {rows!r}")
    if isinstance(features, str):
        features = [features]
    feats = list(features)
    if not feats:
        raise InputError("a pilot needs at least one feature column")
    keys = _key_names(key)
    _check_columns(df, label, feats, keys)
    n1, n0 = _class_counts(df, label)
    q1, q0 = case_control_rates(
        n1, n0, negatives_per_positive=negatives_per_positive, max_rows=int(cap)
    )
    stream = derive_seed(seed, "pilot")
    types = require("pyspark.sql.types", "spark")
    fields = {f.name: f for f in df.schema.fields}
    schema = types.StructType(
        [fields[f] for f in feats]
        + [
            types.StructField(_LABEL, types.ByteType(), False),
            types.StructField(_KEY, types.LongType(), False),
        ]
    )

    single = all(isinstance(fields[f].dataType, types.FloatType) for f in feats)
    q_ref = reference_rate(n0, len(feats), 4 if single else 8)

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return _case_control_batches(batches, label, feats, keys, stream, q1, q0, seed, q_ref)

    cols = _needed(label, feats, keys)
    table = df.select(*cols).mapInArrow(fn, schema).toArrow()
    if table.num_rows == 0:
        raise InputError("the pilot's case-control sample is empty; use more rows")
    rows_out = pl.from_arrow(table)
    assert isinstance(rows_out, pl.DataFrame)
    is_ref = pl.col(_LABEL) == 2
    sample, ref = rows_out.filter(~is_ref), rows_out.filter(is_ref)
    if sample.height == 0:
        raise InputError("the pilot's case-control sample is empty; use more rows")
    X = np.ascontiguousarray(feature_matrix(sample, feats))
    return fit_case_control(
        X,
        sample.get_column(_LABEL).to_numpy(),
        sample.get_column(_KEY).to_numpy().view(np.uint64),
        q1=q1,
        q0=q0,
        features=feats,
        model=model,
        seed=seed,
        label=label,
        n_positive=n1,
        n_negative=n0,
        reference=(
            feature_matrix(ref, feats) if ref.height else np.zeros((0, len(feats))),
            ref.get_column(_KEY).to_numpy().view(np.uint64),
            reference_weight(q_ref, q0),
        ),
    )


__all__ = [
    "local_session",
    "plan_spark",
    "sample_spark",
    "train_pilot_spark",
]
