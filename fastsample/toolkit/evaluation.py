"""Weighted metrics for rare-event classifiers, in memory and streaming over Parquet.

Every metric accepts ``sample_weight``. Evaluated on a fastsample output with its
``sample_weight`` column (``1 / a_y(x)``), each metric estimates the metric on the full
population the sample was drawn from: the weighted sums are Horvitz–Thompson estimates of the
population sums. :func:`evaluate_parquet` does that by default on a fastsample sample
(``weight="auto"``, see :func:`sample_weight_column`): unweighted metrics of a sample describe
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
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastsample.errors import InputError

__all__ = [
    "CalibrationCurve",
    "EvaluationResult",
    "average_precision",
    "brier_score",
    "calibration_curve",
    "check_scores",
    "evaluate",
    "evaluate_parquet",
    "expected_calibration_error",
    "log_loss",
    "normalized_entropy",
    "plot_evaluation",
    "roc_auc",
    "sample_weight_column",
    "weighted_label_totals",
]

# Log-odds range and default resolution of the streaming score histogram.
_LOGIT_RANGE = 20.0
_HIST_BINS = 1 << 20
_STRATEGIES = ("uniform", "quantile")

#: ``weight=`` value that picks a fastsample sample's own weight column (the default).
AUTO_WEIGHT = "auto"
_ADDED_COLUMNS = ("sampling_prob", "sample_weight", "log_odds_offset")


# ----------------------------------------------------------------------------- validation


def check_scores(
    y_true: Any, y_score: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and coerce to (int8 labels, float64 scores, float64 weights or None).

    Every metric starts here, so all of them reject the same inputs with the same messages.
    """
    y = np.asarray(y_true)
    try:
        p = np.asarray(y_score, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("score: values must be numeric probabilities") from None
    if y.ndim != 1 or p.ndim != 1:
        raise InputError(f"label and score must be 1-D (got shapes {y.shape} and {p.shape})")
    if y.shape[0] != p.shape[0]:
        raise InputError(f"label has {y.shape[0]} rows but score has {p.shape[0]}")
    if y.shape[0] == 0:
        raise InputError("label: no rows to evaluate")
    if y.dtype == bool:
        y = y.astype(np.int8)
    else:
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            raise InputError(f"label: values must be 0 or 1 (found {y[bad][0]!r})")
        y = y.astype(np.int8)
    bad_p = ~((p >= 0.0) & (p <= 1.0))  # also catches NaN
    if bad_p.any():
        raise InputError(f"score: values must be probabilities in [0, 1] (found {p[bad_p][0]!r})")
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != p.shape:
            raise InputError(f"weight has shape {w.shape} but score has {p.shape}")
        bad_w = ~(np.isfinite(w) & (w >= 0.0))
        if bad_w.any():
            raise InputError(f"weight: values must be finite and >= 0 (found {w[bad_w][0]!r})")
        if not w.sum() > 0.0:
            raise InputError("weight: total weight is 0")
    return y, p, w


def _check_strategy(strategy: str, n_bins: int) -> None:
    if strategy not in _STRATEGIES:
        raise InputError(f"strategy: {strategy!r} is not one of {', '.join(_STRATEGIES)}")
    if int(n_bins) < 1:
        raise InputError(f"n_bins: must be >= 1 (got {n_bins})")


def _binary_entropy(rate: float) -> float:
    if not 0.0 < rate < 1.0:
        return math.nan
    return -(rate * math.log(rate) + (1.0 - rate) * math.log1p(-rate))


# ----------------------------------------------------------------------------- metrics


def roc_auc(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Weighted ROC-AUC (scikit-learn's ``roc_auc_score``); NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, p, w = check_scores(y_true, y_score, sample_weight)
    if _single_class(y, w):
        return math.nan
    return float(roc_auc_score(y, p, sample_weight=w))


def average_precision(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Weighted average precision, the step-wise PR-AUC (scikit-learn's ``average_precision_score``)."""
    from sklearn.metrics import average_precision_score

    y, p, w = check_scores(y_true, y_score, sample_weight)
    if _positive_weight(y, w) <= 0.0:
        return math.nan
    return float(average_precision_score(y, p, sample_weight=w))


def log_loss(y_true: Any, y_prob: Any, sample_weight: Any = None) -> float:
    """Weighted mean log loss (scikit-learn's ``log_loss``; probabilities clipped to float64 eps)."""
    from sklearn.metrics import log_loss as _sk_log_loss

    y, p, w = check_scores(y_true, y_prob, sample_weight)
    return float(_sk_log_loss(y, p, sample_weight=w, labels=[0, 1]))


def normalized_entropy(y_true: Any, y_prob: Any, sample_weight: Any = None) -> float:
    """Log loss divided by the entropy of the (weighted) base rate.

    1.0 means no better than always predicting the event rate; lower is better. NaN when the
    base rate is 0 or 1.
    """
    y, p, w = check_scores(y_true, y_prob, sample_weight)
    rate = _event_rate(y, w)
    return log_loss(y, p, w) / _binary_entropy(rate) if 0.0 < rate < 1.0 else math.nan


def brier_score(y_true: Any, y_prob: Any, sample_weight: Any = None) -> float:
    """Weighted Brier score, the mean squared error of the probabilities."""
    from sklearn.metrics import brier_score_loss

    y, p, w = check_scores(y_true, y_prob, sample_weight)
    return float(brier_score_loss(y, p, sample_weight=w, labels=[0, 1]))


@dataclass(frozen=True)
class CalibrationCurve:
    """Reliability diagram data: one entry per non-empty bin.

    Attributes
    ----------
    prob_pred : weighted mean predicted probability in the bin
    prob_true : weighted event rate in the bin
    weight : total weight in the bin
    edges : bin edges (``n_bins + 1`` values)
    """

    prob_pred: np.ndarray
    prob_true: np.ndarray
    weight: np.ndarray
    edges: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: weight-averaged ``|prob_true - prob_pred|``."""
        total = float(self.weight.sum())
        if total <= 0.0:
            return math.nan
        return float(np.sum(self.weight * np.abs(self.prob_true - self.prob_pred)) / total)


def _bin_edges(p: np.ndarray, w: np.ndarray | None, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    q = np.linspace(0.0, 1.0, n_bins + 1)
    if w is None:
        return np.percentile(p, q * 100)  # scikit-learn's rule, so unweighted curves agree
    return np.quantile(p, q, weights=w, method="inverted_cdf")


def _curve_from_sums(
    sum_w: np.ndarray, sum_wp: np.ndarray, sum_wy: np.ndarray, edges: np.ndarray
) -> CalibrationCurve:
    nonzero = sum_w > 0
    return CalibrationCurve(
        prob_pred=sum_wp[nonzero] / sum_w[nonzero],
        prob_true=sum_wy[nonzero] / sum_w[nonzero],
        weight=sum_w[nonzero],
        edges=edges,
    )


def calibration_curve(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    sample_weight: Any = None,
) -> CalibrationCurve:
    """Weighted reliability curve.

    Bins follow scikit-learn's ``calibration_curve`` (``uniform``: equal-width bins on [0, 1];
    ``quantile``: equal-weight bins; a value on an edge goes to the lower bin), so without
    weights the result equals scikit-learn's; with weights every sum is weighted (scikit-learn's
    function takes no weights).
    """
    _check_strategy(strategy, n_bins)
    y, p, w = check_scores(y_true, y_prob, sample_weight)
    edges = _bin_edges(p, w, int(n_bins), strategy)
    ids = np.searchsorted(edges[1:-1], p)
    ww = np.ones_like(p) if w is None else w
    n = len(edges) - 1
    return _curve_from_sums(
        np.bincount(ids, weights=ww, minlength=n),
        np.bincount(ids, weights=ww * p, minlength=n),
        np.bincount(ids, weights=ww * y, minlength=n),
        edges,
    )


def expected_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    sample_weight: Any = None,
) -> float:
    """Expected calibration error: ``sum_b (W_b / W) |event rate_b - mean prob_b|``."""
    return calibration_curve(
        y_true, y_prob, n_bins=n_bins, strategy=strategy, sample_weight=sample_weight
    ).ece


def _single_class(y: np.ndarray, w: np.ndarray | None) -> bool:
    pos = _positive_weight(y, w)
    tot = float(len(y)) if w is None else float(w.sum())
    return pos <= 0.0 or pos >= tot


def _positive_weight(y: np.ndarray, w: np.ndarray | None) -> float:
    return float(y.sum()) if w is None else float(w[y == 1].sum())


def _event_rate(y: np.ndarray, w: np.ndarray | None) -> float:
    return float(y.mean()) if w is None else float(np.sum(w * y) / np.sum(w))


# ----------------------------------------------------------------------------- result


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
        """Scalar metrics by name (what the CLI prints and what JSON reports store)."""
        return {
            "rows": self.n_rows,
            "total_weight": self.total_weight,
            "positive_weight": self.positive_weight,
            "event_rate": self.event_rate,
            "mean_score": self.mean_score,
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
            "log_loss": self.log_loss,
            "normalized_entropy": self.normalized_entropy,
            "brier": self.brier,
            "ece": self.ece,
            "method": self.method,
            "auc_tie_bound": self.auc_tie_bound,
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
    from sklearn.metrics import precision_recall_curve, roc_curve

    _check_strategy(strategy, n_bins)
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
        normalized_entropy=ll / _binary_entropy(rate) if both else math.nan,
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


# ----------------------------------------------------------------------------- streaming


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
        :func:`sample_weight_column`.
    n_bins, strategy : calibration binning (``quantile`` edges come from the score histogram
        in histogram mode)
    method : ``"auto"``, ``"exact"`` or ``"histogram"`` (see the module docstring)
    exact_max_rows : row count up to which ``"auto"`` reads the columns into memory
    hist_bins : number of log-odds bins of the streaming histogram
    """

    from fastsample.engines.io import resolve_source
    from fastsample.engines.scan import describe_files, scan

    _check_strategy(strategy, n_bins)
    if method not in ("auto", "exact", "histogram"):
        raise InputError(f"method: {method!r} is not one of auto, exact, histogram")
    if int(hist_bins) < 2:
        raise InputError(f"hist_bins: must be >= 2 (got {hist_bins})")
    src = resolve_source(source)
    weight = resolve_weight(src, weight)
    lf, files = scan(src, [("label", label), ("score", score), ("weight", weight)])
    where = describe_files(files)
    if method == "auto":
        method = "exact" if src.num_rows <= exact_max_rows else "histogram"
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


def sample_weight_column(source: Any) -> str | None:
    """The weight column of a fastsample sample, or None when ``source`` is not one.

    A sample is recognised by the fastsample record in its (first) file's Parquet metadata,
    whose plan names the weight column; or, for a file rewritten without that metadata, by
    the three columns fastsample adds under their default names. ``InputError`` when the
    metadata names a weight column the file no longer has.
    """
    from fastsample.engines.io import Source, read_metadata, resolve_source

    src = source if isinstance(source, Source) else resolve_source(source)
    names = set(src.schema.names)
    try:
        meta: dict[str, Any] | None = read_metadata(src.files[0])
    except InputError:
        meta = None
    if meta is not None:
        plan = meta.get("plan")
        cols = plan.get("columns") if isinstance(plan, dict) else None
        col = str(
            cols.get("weight", "sample_weight") if isinstance(cols, dict) else "sample_weight"
        )
        if col not in names:
            raise InputError(
                f"{src.files[0]!r} is a fastsample sample but has no weight column {col!r};"
                " give the weight column, or weight 'none' for unweighted metrics"
            )
        return col
    return "sample_weight" if names.issuperset(_ADDED_COLUMNS) else None


def resolve_weight(source: Any, weight: str | None) -> str | None:
    """The weight column to use: ``"auto"`` -> :func:`sample_weight_column`; None or ``"none"``
    -> no weights; any other string is a column name."""
    if weight is None or weight.lower() == "none":
        return None
    if weight == AUTO_WEIGHT:
        return sample_weight_column(source)
    return weight


def weighted_label_totals(source: Any, *, label: str, weight: str | None) -> dict[str, Any]:
    """Total weight of the positives and negatives (a population estimate on a sample).

    Returns
    -------
    dict
        ``weight`` (the column used, after :func:`resolve_weight`; None when unweighted, and
        then nothing else), ``positives``, ``negatives``, ``event_rate``.
    """
    import polars as pl

    from fastsample.engines.io import resolve_source
    from fastsample.engines.scan import scan

    src = resolve_source(source)
    col = resolve_weight(src, weight)
    if col is None:
        return {"weight": None}
    lf, _ = scan(src, [("label", label), ("weight", col)])
    w = pl.col(col).cast(pl.Float64)
    y = pl.col(label).cast(pl.Float64)
    totals = lf.select((w * y).sum().alias("pos"), (w * (1.0 - y)).sum().alias("neg")).collect(
        engine="streaming"
    )
    pos, neg = float(totals["pos"][0] or 0.0), float(totals["neg"][0] or 0.0)
    rate = pos / (pos + neg) if pos + neg > 0 else None
    return {"weight": col, "positives": pos, "negatives": neg, "event_rate": rate}


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
    import polars as pl

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
            shown = "null" if v is None else repr(v)
            raise InputError(f"{where}: column {label!r} must be 0 or 1 (found {shown})")
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
    cal = _curve_from_sums(
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
        normalized_entropy=ll / _binary_entropy(rate) if both else math.nan,
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


# ----------------------------------------------------------------------------- plots


def save_figure(fig: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> str:
    """Save a matplotlib figure as PNG atomically (nothing appears at ``path`` on failure).

    ``overwrite=False`` refuses an existing ``path`` (the CLI's rule without ``--overwrite``).
    """
    from fastsample.core.atomic import atomic_path
    from fastsample.engines.io import check_output

    target = check_output(path, overwrite=overwrite)
    with atomic_path(target, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return target


def new_figure(ncols: int, *, width: float = 5.0, height: float = 4.5) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` with ``ncols`` axes, built without pyplot.

    The object-oriented API needs no display backend and leaves a user's pyplot state alone.
    """
    from fastsample.core.optional import require

    figure = require("matplotlib.figure", "plot")
    fig = figure.Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def plot_evaluation(
    result: EvaluationResult,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    overwrite: bool = True,
) -> str:
    """Draw ROC, precision-recall and calibration curves of ``result`` into a PNG at ``path``.

    The file is written atomically; ``overwrite=False`` refuses an existing file.
    """
    fig, (ax_roc, ax_pr, ax_cal) = new_figure(3)
    if result.fpr.size:
        ax_roc.plot(result.fpr, result.tpr, lw=1.5, label=f"ROC-AUC = {result.roc_auc:.4f}")
    ax_roc.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax_roc.legend(loc="lower right")
    if result.recall.size:
        ax_pr.step(
            result.recall,
            result.precision,
            where="post",
            lw=1.5,
            label=f"AP = {result.average_precision:.4f}",
        )
    ax_pr.axhline(result.event_rate, color="k", ls="--", lw=0.8, label="event rate")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    ax_pr.legend(loc="upper right")
    cal = result.calibration
    # Rare-event scores live near 0: log axes keep the reliability diagram readable.
    lo = max(1e-6, float(min(cal.prob_pred.min(initial=1.0), 1.0)) / 2)
    ax_cal.plot([lo, 1], [lo, 1], "k--", lw=0.8, label="perfect")
    ax_cal.plot(
        np.clip(cal.prob_pred, lo, 1),
        np.clip(cal.prob_true, lo, 1),
        "o-",
        lw=1.5,
        label=f"ECE = {result.ece:.4f}",
    )
    ax_cal.set(
        xscale="log",
        yscale="log",
        xlabel="mean predicted probability",
        ylabel="observed event rate",
        title="Calibration",
    )
    ax_cal.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, overwrite=overwrite)
