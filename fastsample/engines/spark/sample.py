"""``sample_spark``: the native Spark SQL path when it can express the sample, else mapInArrow."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastsample.core.plan import OutputColumns, SamplingPlan, plan_sampling
from fastsample.engines.spark.arrow import apply_arrow
from fastsample.engines.spark.exact import plan_spark
from fastsample.engines.spark.limbs import arithmetic
from fastsample.engines.spark.native import apply_native, slow_keys, unsupported
from fastsample.engines.spark.session import check_columns, check_workers, key_names, resolve_pilot
from fastsample.errors import InputError

log = logging.getLogger("fastsample.spark")

PATHS = ("auto", "native", "arrow")


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
    path: str = "auto",
) -> Any:
    """Sample a Spark DataFrame: every positive, a pilot-scored fraction of the negatives.

    The kept rows and their ``sampling_prob``, ``sample_weight`` and ``log_odds_offset`` are
    those of :func:`fastsample.sample_frame` / ``sample_parquet`` for the same data, key,
    seed, pilot and kappa, whatever the partitioning or row order. Two ways to compute them:

    * ``"native"`` (what ``"auto"`` runs for a linear pilot or none, with integer, boolean,
      date or timestamp keys): Spark SQL expressions only, no Python worker (the executors
      need no fastsample, no Python at all). The hash's wrapping ``+``/``*`` are Catalyst
      expressions in Java's ``long`` arithmetic on a classic session (which stays in ANSI
      mode), overflow-free 32-bit halves under Spark Connect; the log line names which.
      Same rows; probabilities and offsets within 1e-15 relative (Spark's ``exp``/``log``
      are ``StrictMath``'s, which differ from the C library's by 1 ulp on some arguments;
      see :mod:`fastsample.engines.spark.native`).
    * ``"arrow"`` (what ``"auto"`` runs otherwise: non-linear pilots, string or binary keys,
      which the kernels hash faster): the local kernels on each Arrow batch inside
      ``mapInArrow``; bit for bit the local values. The workers must import
      fastsample: a one-line error says how to fix it before the job runs.

    The path taken is logged (logger ``fastsample.spark``, level INFO) and readable
    beforehand with :func:`spark_path`.

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
        Key column(s) that decide each row's uniform (see :mod:`fastsample.core.hashing`).
    floor : float, optional
        Lower bound on every inclusion probability.
    exact : bool
        Solve kappa over every negative (extra Spark jobs, on Python workers) instead of the
        one-pass estimate from the pilot's reference sample; see :func:`plan_spark`.
    columns : OutputColumns, optional
        Names of the three added columns.
    plan : SamplingPlan, optional
        A plan computed elsewhere (e.g. by a local run, or :func:`plan_spark` once for
        several jobs); it replaces ``strategy``, ``rate``, ``seed``, ``floor``, ``exact`` and
        ``columns``, so the Spark sample is the local one row for row.
    path : {"auto", "native", "arrow"}
        How to compute the sample; ``"native"`` raises ``InputError`` (saying why) when the
        native path cannot express it.

    Returns
    -------
    pyspark.sql.DataFrame
        The input columns (types unchanged) plus the three float64 columns; lazy, like any
        Spark transformation. Bad values found while it runs (null or non-binary labels,
        NaN features, null keys) fail the Spark job with the local engine's one-line message.
    """
    if path not in PATHS:
        raise InputError(f"path must be one of {', '.join(PATHS)}; got {path!r}")
    keys = key_names(key)
    cols = plan.columns if plan is not None else (columns or OutputColumns())
    cols.check(list(df.columns), "the Spark DataFrame")
    pilot_obj = resolve_pilot(pilot, features, plan.strategy if plan else strategy)
    feats = pilot_obj.features if pilot_obj is not None else []
    check_columns(df, label, feats, keys)
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
    why = unsupported(df, pilot_obj, plan, keys)
    if path == "native" and why is not None:
        raise InputError(f"the native Spark path cannot run this sample: {why}")
    if path == "auto" and why is None:
        # measured in scripts/bench_spark.py: string keys hashed natively run far slower than
        # the kernels (their generated method is too big for the JIT); integer keys do not
        why = slow_keys(df, keys)
    if path == "native" or (path == "auto" and why is None):
        arith = arithmetic(df.sparkSession)
        log.info("sample_spark: native Spark SQL path (no Python workers; hash in %s)", arith.name)
        return apply_native(df, plan, pilot_obj, label, feats, keys, arith)
    log.info("sample_spark: mapInArrow path (%s)", why or "asked for")
    check_workers(df)
    return apply_arrow(df, plan, pilot_obj, label, feats, keys)


def spark_path(
    df: Any, *, pilot: Any, key: str | Sequence[str], strategy: str = "proportional"
) -> tuple[str, str | None]:
    """``("native", None)`` or ``("arrow", reason)``: what ``sample_spark(path="auto")`` runs.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Input rows.
    pilot : Pilot, path, fitted classifier or None
        As in :func:`sample_spark`.
    key : str or list of str
        Key column(s).
    strategy : str
        Inclusion-probability strategy.
    """
    pilot_obj = resolve_pilot(pilot, None, strategy)
    info = pilot_obj.info_inv if pilot_obj is not None else None
    stub = plan_sampling([1.0], strategy=strategy, rate=1.0, seed=0, info_inv=info)
    keys = key_names(key)
    why = unsupported(df, pilot_obj, stub, keys) or slow_keys(df, keys)
    return ("native", None) if why is None else ("arrow", why)
