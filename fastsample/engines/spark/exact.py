"""Planning on Spark: the one-pass kappa (the local engine's, bit for bit) and the exact mode.

The exact mode is the local engine's algorithm (:mod:`fastsample.core.kappa`) with Spark jobs
as its passes and bounded driver memory: the negatives' scores come from the local kernels
inside ``mapInArrow`` (so the workers need fastsample), each partition returns its partial
(a histogram of bit patterns with exact significand sums, then the answers to refinements)
and the driver merges them: the same kappa as ``sample_parquet(..., exact=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fastsample.core.kappa import RefinedPart, Refinement, TopHistogram, exact_kappa
from fastsample.core.plan import (
    OutputColumns,
    SamplingPlan,
    check_rate,
    plan_from_pilot,
    plan_sampling,
    resolve_parameters,
)
from fastsample.core.strategies import strategy_code
from fastsample.engines.spark.arrow import COLLECT, KAPPA_SCHEMA, SPLIT, kappa_batches, needed
from fastsample.engines.spark.session import broadcast, check_columns, check_workers, resolve_pilot
from fastsample.errors import InputError


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
    ``exact=True`` solves the water-filling equation over every negative of ``df`` with
    :func:`fastsample.core.kappa.exact_kappa`, each pass a Spark job (partials per partition,
    merged on the driver): the same kappa as ``sample_parquet(..., exact=True)`` bit for bit.
    ``df`` must then be deterministic (cache it if it is computed with random expressions).

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Input rows.
    label, features, pilot, strategy, rate, seed, floor, exact
        As in :func:`sample_spark`.
    columns : OutputColumns, optional
        Names of the three added columns.
    """
    strategy_code(strategy)
    r = check_rate(rate)
    cols = columns or OutputColumns()
    pilot_obj = resolve_pilot(pilot, features, strategy)
    feats = pilot_obj.features if pilot_obj is not None else []
    check_columns(df, label, feats, [])
    info_inv = pilot_obj.info_inv if pilot_obj is not None else None
    if strategy == "opt-a" and info_inv is None:
        raise InputError("strategy 'opt-a' needs a pilot with an information matrix (fit_pilot)")
    if pilot_obj is None:
        # uniform without a pilot, h = 1 for every row: kappa is the rate (one-pass) or the
        # root over the negatives' count (exact)
        n0 = [float(df.filter(df[label] == 0).count())] if exact else None
        return plan_sampling(
            np.ones(1),
            strategy=strategy,
            rate=r,
            seed=seed,
            floor=floor,
            weights=None if n0 is None else np.array(n0),
            columns=cols,
            method="exact" if exact else "pilot-sample",
        )
    if not exact:
        return plan_from_pilot(
            pilot_obj, strategy=strategy, rate=r, seed=seed, floor=floor, columns=cols
        )
    kappa, target, expected = _exact_kappa(
        df, pilot_obj, strategy, info_inv, label, feats, r, floor
    )
    params = resolve_parameters(strategy, r, floor, seed)
    return params.with_kappa(
        kappa, target, expected, method="exact", info_inv=info_inv, columns=cols
    )


def _exact_kappa(
    df: Any,
    pilot: Any,
    strategy: str,
    info_inv: Any,
    label: str,
    feats: list[str],
    rate: float,
    floor: float | None,
) -> tuple[float, float, float]:
    """``(kappa, target, expected)`` by :func:`fastsample.core.kappa.exact_kappa`.

    Each pass is one ``mapInArrow`` job whose partitions return their partials (the top-level
    histogram, then the answers to each refinement), merged on the driver: the same exact
    integer sums and sorted scores as the local engine's, so the same kappa bit for bit.
    """
    check_workers(df)
    handle = broadcast(df, pilot)
    cols = needed(label, feats, [])

    def run(request: Refinement | None) -> Any:
        def fn(batches: Iterator[Any]) -> Iterator[Any]:
            return kappa_batches(batches, handle, strategy, info_inv, label, feats, request)

        return df.select(*cols).mapInArrow(fn, KAPPA_SCHEMA).toArrow()

    def column(table: Any, name: str, rows: Any) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy())[rows]

    top = run(None)
    hist = TopHistogram()
    hist.add_partial(*(column(top, c, slice(None)) for c in ("idx", "count", "hi", "lo")))

    def refine(request: Refinement) -> RefinedPart:
        table = run(request)
        kind, j = table.column("kind").to_numpy(), table.column("j").to_numpy()
        part = RefinedPart.empty(request)
        for k in range(len(request.collect)):
            part.values[k].append(column(table, "value", (kind == COLLECT) & (j == k)))
        for k in range(len(request.split)):
            rows = (kind == SPLIT) & (j == k)
            idx = column(table, "idx", rows)
            for acc, name in ((part.count, "count"), (part.hi, "hi"), (part.lo, "lo")):
                np.add.at(acc[k], idx, column(table, name, rows))
        return part

    target = rate * hist.total
    if hist.total == 0:
        return 1.0, target, 0.0
    kappa, expected = exact_kappa(hist, target, floor, refine)
    return kappa, target, expected
