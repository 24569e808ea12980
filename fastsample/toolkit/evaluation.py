"""Every metric of a classifier at once, in memory and streaming over Parquet.

:func:`evaluate` computes the weighted metrics of :mod:`fastsample.toolkit.metrics` and the
curves needed to plot them. Evaluated on a fastsample output with its ``sample_weight`` column
(``1 / a_y(x)``), each metric estimates the metric on the full population the sample was
drawn from. :func:`evaluate_parquet` does that by default on a fastsample sample
(``weight="auto"``, see :func:`fastsample.toolkit.frames.sample_weight_column`): unweighted metrics of a sample describe
the sample, not the population (its event rate is inflated, so its calibration is off).

Streaming evaluation (:func:`evaluate_parquet`) has two modes:

``"exact"``
    reads only the label, score and weight columns into memory (about 17 bytes a row) and
    computes the same numbers as :func:`evaluate`.
``"histogram"``
    one streaming Polars pass; memory is independent of the row count. Scores are binned on a
    fine grid that is uniform in log-odds (``hist_bins`` bins over ``[-20, 20]``, i.e. a
    log-odds resolution of 3.8e-5 at the default 2**20 bins; rare-event scores crowd near 0,
    where a grid uniform in probability would put them all in one bin). ROC-AUC and average
    precision are the exact values for the binned score; rows sharing a bin count as ties, so
    the ROC-AUC differs from the exact one by at most ``auc_tie_bound`` (half the weighted
    fraction of positive/negative pairs that share a bin), which is reported. Log loss, Brier
    score, event rate and the calibration sums are exact (floating-point sums).

``method="auto"`` picks ``"exact"`` up to ``exact_max_rows`` rows and ``"histogram"`` above.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve, roc_curve

from fastsample.core.names import EVALUATION_METHODS
from fastsample.core.validation import label_error
from fastsample.engines.scan import describe_files, scan
from fastsample.engines.sources import resolve_source
from fastsample.errors import InputError
from fastsample.toolkit.frames import AUTO_WEIGHT, resolve_weight
from fastsample.toolkit.metrics import (
    CalibrationCurve,
    average_precision,
    binary_entropy,
    brier_score,
    calibration_curve,
    check_binning,
    check_scores,
    log_loss,
    roc_auc,
)

__all__ = ["EvaluationResult", "evaluate", "evaluate_parquet"]

# Log-odds range and default resolution of the streaming score histogram.
_LOGIT_RANGE = 20.0
_HIST_BINS = 1 << 20


# EvaluationResult fields that as_dict leaves out.
_NOT_SCALAR = frozenset({"calibration", "fpr", "tpr", "recall", "precision", "weight"})


@dataclass(frozen=True)
class EvaluationResult:
    """All metrics of one evaluation plus the curves needed to plot them.

    ``method`` is ``"exact"`` or ``"histogram"``; ``auc_tie_bound`` bounds
    ``|roc_auc - exact ROC-AUC|`` (0 for exact). Weighted quantities (``total_weight``,
    ``positive_weight``, ``event_rate``) estimate population values when the weights are
    inverse inclusion probabilities. ``weight`` names the weight column
    :func:`evaluate_parquet` used (None: unweighted, and for in-memory results).
    """

    n_rows: int
    total_weight: float
    positive_weight: float
    event_rate: float
    mean_score: float
    roc_auc: float
    average_precision: float
    log_loss: float
    normalized_entropy: float
    brier: float
    ece: float
    calibration: CalibrationCurve
    method: str = "exact"
    auc_tie_bound: float = 0.0
    fpr: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    tpr: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    recall: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    precision: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    weight: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Scalar metrics by name, in field order (what the CLI prints and JSON reports store).

        Every field but the curves and the weight column's name, so a new metric field shows
        up here without another list to keep; ``n_rows`` is written ``rows``.
        """
        return {
            "rows" if f.name == "n_rows" else f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _NOT_SCALAR
        }


def evaluate(
    y_true: Any,
    y_prob: Any,
    sample_weight: Any = None,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
) -> EvaluationResult:
    """Compute every metric (and the ROC, PR and calibration curves) in memory.

    Parameters
    ----------
    y_true : array of 0/1 (or bool) labels
    y_prob : array of predicted probabilities in [0, 1]
    sample_weight : array, optional
        Row weights; with fastsample's ``sample_weight`` column the metrics estimate the
        population metrics.
    n_bins, strategy : calibration binning (see :func:`calibration_curve`)
    """
    check_binning(strategy, n_bins)
    y, p, w = check_scores(y_true, y_prob, sample_weight)
    ww = np.ones_like(p) if w is None else w
    total = float(ww.sum())
    pos = float(ww[y == 1].sum())
    rate = pos / total
    cal = calibration_curve(y, p, n_bins=n_bins, strategy=strategy, sample_weight=w)
    both = 0.0 < pos < total
    if both:
        fpr, tpr, _ = roc_curve(y, p, sample_weight=w)
    else:
        fpr = tpr = np.empty(0)
    if pos > 0.0:
        precision, recall, _ = precision_recall_curve(y, p, sample_weight=w)
    else:
        precision = recall = np.empty(0)
    ll = log_loss(y, p, w)
    return EvaluationResult(
        n_rows=len(y),
        total_weight=total,
        positive_weight=pos,
        event_rate=rate,
        mean_score=float(np.sum(ww * p) / total),
        roc_auc=roc_auc(y, p, w),
        average_precision=average_precision(y, p, w),
        log_loss=ll,
        normalized_entropy=ll / binary_entropy(rate) if both else math.nan,
        brier=brier_score(y, p, w),
        ece=cal.ece,
        calibration=cal,
        method="exact",
        auc_tie_bound=0.0,
        fpr=np.asarray(fpr),
        tpr=np.asarray(tpr),
        recall=np.asarray(recall),
        precision=np.asarray(precision),
    )


def _histogram_auc(
    pos: np.ndarray, neg: np.ndarray
) -> tuple[float, float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ROC-AUC, tie bound and AP from weighted per-bin class masses (bins in ascending score).

    A bin is one tied score: this is exactly the metric of the binned score.
    """
    P, N = float(pos.sum()), float(neg.sum())
    # descending score order for the curves
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    auc = bound = ap = math.nan
    fpr = tpr = recall = precision = np.empty(0)
    if P > 0.0 and N > 0.0:
        below = np.cumsum(neg) - neg  # negative mass strictly below each bin
        auc = float(np.sum(pos * (below + 0.5 * neg)) / (P * N))
        bound = float(0.5 * np.sum(pos * neg) / (P * N))
        occupied = (pos[::-1] + neg[::-1]) > 0
        fpr = np.concatenate([[0.0], fp[occupied] / N])
        tpr = np.concatenate([[0.0], tp[occupied] / P])
    if P > 0.0:
        occupied = (pos[::-1] + neg[::-1]) > 0
        tp_o, fp_o = tp[occupied], fp[occupied]
        prec = tp_o / (tp_o + fp_o)
        rec = tp_o / P
        ap = float(np.sum(np.diff(np.concatenate([[0.0], rec])) * prec))
        # scikit-learn's orientation: recall decreasing, ending at (recall 0, precision 1)
        recall = np.concatenate([rec[::-1], [0.0]])
        precision = np.concatenate([prec[::-1], [1.0]])
    return auc, bound, ap, fpr, tpr, recall, precision


def evaluate_parquet(
    source: Any,
    *,
    label: str,
    score: str,
    weight: str | None = AUTO_WEIGHT,
    n_bins: int = 10,
    strategy: str = "uniform",
    method: str = "auto",
    exact_max_rows: int = 10_000_000,
    hist_bins: int = _HIST_BINS,
) -> EvaluationResult:
    """Evaluate scores stored in Parquet (file, directory, glob or list), streaming.

    Parameters
    ----------
    source : Parquet file(s)
    label, score : column names (0/1 label, probability in [0, 1])
    weight : column name, ``"auto"`` (default) or None / ``"none"``
        Row weights. ``"auto"``: on a fastsample sample (a file carrying fastsample metadata,
        or holding its three added columns) its weight column, so the metrics estimate the
        population's (a sample's unweighted metrics describe the sample: its event rate is
        inflated and its calibration is off); no weights on other files. See
        :func:`fastsample.toolkit.frames.sample_weight_column`.
    n_bins, strategy : calibration binning (``quantile`` edges come from the score histogram
        in histogram mode)
    method : ``"auto"``, ``"exact"`` or ``"histogram"`` (see the module docstring)
    exact_max_rows : row count up to which ``"auto"`` reads the columns into memory
    hist_bins : number of log-odds bins of the streaming histogram
    """

    check_binning(strategy, n_bins)
    if method not in EVALUATION_METHODS:
        raise InputError(f"method: {method!r} is not one of {', '.join(EVALUATION_METHODS)}")
    if int(hist_bins) < 2:
        raise InputError(f"hist_bins: must be >= 2 (got {hist_bins})")
    src = resolve_source(source)
    weight = resolve_weight(src, weight)
    lf, files = scan(src, [("label", label), ("score", score), ("weight", weight)])
    where = describe_files(files)
    if method == "auto":
        rows = src.num_rows
        method = "exact" if rows is not None and rows <= exact_max_rows else "histogram"
    if method == "exact":
        cols = [label, score, *([weight] if weight else [])]
        df = lf.select(cols).collect(engine="streaming")
        _check_nulls(df, cols, where)
        try:
            result = evaluate(
                df[label].to_numpy(),
                df[score].to_numpy(),
                df[weight].to_numpy() if weight else None,
                n_bins=n_bins,
                strategy=strategy,
            )
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    else:
        result = _evaluate_histogram(
            lf, where, label, score, weight, int(n_bins), strategy, int(hist_bins)
        )
    return dataclasses.replace(result, weight=weight)


def _check_nulls(df: Any, cols: Sequence[str], where: str) -> None:
    for col in cols:
        nulls = int(df[col].null_count())
        if nulls:
            raise InputError(f"{where}: column {col!r} has {nulls} null values")


def _evaluate_histogram(
    lf: Any,
    where: str,
    label: str,
    score: str,
    weight: str | None,
    n_bins: int,
    strategy: str,
    hist_bins: int,
) -> EvaluationResult:
    schema = lf.collect_schema()
    for col in (label, score, weight):
        if col is not None and not (schema[col].is_numeric() or schema[col] == pl.Boolean):
            raise InputError(f"{where}: column {col!r} must be numeric (is {schema[col]})")
    # Derived columns first: aggregations over a literal would count once per group.
    lf = lf.with_columns(
        pl.col(score).cast(pl.Float64).alias("__p"),
        pl.col(label).cast(pl.Float64).alias("__y"),
        (pl.col(weight).cast(pl.Float64) if weight else pl.lit(1.0, dtype=pl.Float64)).alias("__w"),
    )
    p, y, w = pl.col("__p"), pl.col("__y"), pl.col("__w")
    eps = float(np.finfo(np.float64).eps)
    pc = p.clip(eps, 1.0 - eps)
    width = 2.0 * _LOGIT_RANGE / hist_bins
    logit = (p.log() - (-p).log1p()).clip(-_LOGIT_RANGE, _LOGIT_RANGE)
    # non-strict casts: invalid scores are reported below, they must not abort the pass
    fine = (
        ((logit + _LOGIT_RANGE) / width)
        .floor()
        .clip(0, hist_bins - 1)
        .cast(pl.Int64, strict=False)
        .fill_null(0)
    )
    if strategy == "uniform":
        # same rule as the in-memory bins: (e_{k-1}, e_k], so p = 0 goes to bin 0
        cal_bin = (
            ((p * n_bins).ceil() - 1).clip(0, n_bins - 1).cast(pl.Int64, strict=False).fill_null(0)
        )
    else:
        cal_bin = pl.lit(0, dtype=pl.Int64)
    bad_p = (p.is_null() | p.is_nan() | (p < 0.0) | (p > 1.0)).fill_null(True).cast(pl.Int64)
    bad_w = (w.is_null() | w.is_nan() | w.is_infinite() | (w < 0.0)).fill_null(True).cast(pl.Int64)
    agg = (
        lf.group_by("__y", fine.alias("__fine"), cal_bin.alias("__cal"))
        .agg(
            pl.len().alias("n"),
            w.sum().alias("w"),
            (w * p).sum().alias("wp"),
            (-w * (y * pc.log() + (1.0 - y) * (-pc).log1p())).sum().alias("wll"),
            (w * (p - y) ** 2).sum().alias("wbr"),
            bad_p.sum().alias("bad_p"),
            bad_w.sum().alias("bad_w"),
        )
        .collect(engine="streaming")
    )
    if int(agg["bad_p"].sum()):
        val = lf.filter(bad_p == 1).select(score).head(1).collect().item()
        raise InputError(
            f"{where}: column {score!r} must hold probabilities in [0, 1] (found {val!r})"
        )
    if weight and int(agg["bad_w"].sum()):
        val = lf.filter(bad_w == 1).select(weight).head(1).collect().item()
        raise InputError(f"{where}: column {weight!r} must be finite and >= 0 (found {val!r})")
    labels = agg["__y"].unique().to_list()
    for v in labels:
        if v is None or v not in (0.0, 1.0):
            raise label_error(label, "null" if v is None else f"value {v!r}", where)
    yk = agg["__y"].to_numpy()
    fk = agg["__fine"].to_numpy()
    ck = agg["__cal"].to_numpy()
    aw = agg["w"].to_numpy()
    awp = agg["wp"].to_numpy()
    total = float(aw.sum())
    if not total > 0.0:
        raise InputError(f"{where}: total weight is 0")
    pos_w = float(aw[yk == 1.0].sum())
    rate = pos_w / total
    pos_h = np.bincount(fk[yk == 1.0], weights=aw[yk == 1.0], minlength=hist_bins)
    neg_h = np.bincount(fk[yk == 0.0], weights=aw[yk == 0.0], minlength=hist_bins)
    auc, bound, ap, fpr, tpr, recall, precision = _histogram_auc(pos_h, neg_h)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        cal_ids = ck
    else:
        # equal-weight edges on the fine grid: bin k collects fine bins up to the k-th quantile
        fine_w = pos_h + neg_h
        cum = np.cumsum(fine_w) / total
        cuts = np.searchsorted(cum, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], side="left")
        fine_edges_logit = -_LOGIT_RANGE + width * (cuts + 1)
        edges = np.concatenate([[0.0], 1.0 / (1.0 + np.exp(-fine_edges_logit)), [1.0]])
        cal_ids = np.searchsorted(cuts, fk, side="left")
    cal = CalibrationCurve.from_sums(
        np.bincount(cal_ids, weights=aw, minlength=n_bins),
        np.bincount(cal_ids, weights=awp, minlength=n_bins),
        np.bincount(cal_ids, weights=aw * (yk == 1.0), minlength=n_bins),
        edges,
    )
    ll = float(agg["wll"].sum()) / total
    both = 0.0 < pos_w < total
    return EvaluationResult(
        n_rows=int(agg["n"].sum()),
        total_weight=total,
        positive_weight=pos_w,
        event_rate=rate,
        mean_score=float(awp.sum()) / total,
        roc_auc=auc,
        average_precision=ap,
        log_loss=ll,
        normalized_entropy=ll / binary_entropy(rate) if both else math.nan,
        brier=float(agg["wbr"].sum()) / total,
        ece=cal.ece,
        calibration=cal,
        method="histogram",
        auc_tie_bound=bound,
        fpr=fpr,
        tpr=tpr,
        recall=recall,
        precision=precision,
    )
