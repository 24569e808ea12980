"""Planning on Spark: the one-pass kappa (the local engine's, bit for bit) and the exact mode.

The exact mode solves the water-filling equation over every negative with Spark jobs and
bounded driver memory: the negatives' scores come from the local kernels inside
``mapInArrow`` (so the workers need fastsample), binned on a log scale, refined where a bin
straddles a clipping threshold, and the few straddling scores collected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fastsample.core.optional import require
from fastsample.core.plan import (
    OutputColumns,
    SamplingPlan,
    check_rate,
    plan_from_pilot,
    plan_sampling,
)
from fastsample.core.strategies import effective_floor, solve_kappa, strategy_code
from fastsample.engines.spark.arrow import histogram_batches, needed, scores_batches
from fastsample.engines.spark.session import broadcast, check_columns, check_workers, resolve_pilot
from fastsample.errors import FastsampleError, InputError

# Exact mode: log2-histogram resolution of the first pass (bins per octave), the factor by
# which each refinement pass divides the bins that straddle a threshold, and the number of
# straddling rows that are small enough to collect to the driver.
_BINS_PER_OCTAVE = 64
_REFINE = 1024
_MAX_REFINE = 3
_COLLECT_ROWS = 2_000_000


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
    strategy_code(strategy)
    r = check_rate(rate)
    cols = columns or OutputColumns()
    pilot_obj = resolve_pilot(pilot, features, strategy)
    feats = pilot_obj.features if pilot_obj is not None else []
    check_columns(df, label, feats, [])
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
        return plan_from_pilot(
            pilot_obj, strategy=strategy, rate=r, seed=seed, floor=floor, columns=cols
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
    cols = needed(label, feats, [])

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return histogram_batches(batches, handle, strategy, info_inv, label, feats, scale, ranges)

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
    if pilot is None:
        n0 = df.filter(df[label] == 0).count()
        return np.ones(1), np.array([float(n0)])
    check_workers(df)
    handle = broadcast(df, pilot)
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
    cols = needed(label, feats, [])

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        return scores_batches(batches, handle, strategy, info_inv, label, feats, ranges)

    table = df.select(*cols).mapInArrow(fn, "h double").toArrow()
    return np.sort(np.asarray(table.column("h").to_numpy(), dtype=np.float64))
