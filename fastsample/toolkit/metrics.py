"""Weighted metrics for rare-event classifiers, computed in memory.

Every metric accepts ``sample_weight``. Evaluated on a fastsample output with its
``sample_weight`` column (``1 / a_y(x)``), each metric estimates the metric on the full
population the sample was drawn from: the weighted sums are Horvitz–Thompson estimates of the
population sums. scikit-learn computes the ranking and loss metrics; inputs are checked once,
by :func:`check_scores`, with the same messages for every metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sk_log_loss

from fastsample.core.names import CALIBRATION_BINNINGS
from fastsample.core.validation import binary_labels
from fastsample.errors import InputError

__all__ = [
    "CalibrationCurve",
    "average_precision",
    "binary_entropy",
    "brier_score",
    "calibration_curve",
    "check_binning",
    "check_scores",
    "expected_calibration_error",
    "log_loss",
    "normalized_entropy",
    "roc_auc",
]


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
    y = binary_labels(y, "label")
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


def check_binning(strategy: str, n_bins: int) -> None:
    """``InputError`` unless ``strategy`` is a calibration binning and ``n_bins >= 1``."""
    if strategy not in CALIBRATION_BINNINGS:
        raise InputError(f"strategy: {strategy!r} is not one of {', '.join(CALIBRATION_BINNINGS)}")
    if int(n_bins) < 1:
        raise InputError(f"n_bins: must be >= 1 (got {n_bins})")


def binary_entropy(rate: float) -> float:
    """Entropy in nats of a Bernoulli(``rate``) label; NaN unless ``0 < rate < 1``."""
    if not 0.0 < rate < 1.0:
        return math.nan
    return -(rate * math.log(rate) + (1.0 - rate) * math.log1p(-rate))


def roc_auc(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Weighted ROC-AUC (scikit-learn's ``roc_auc_score``); NaN when only one class is present."""
    y, p, w = check_scores(y_true, y_score, sample_weight)
    if _single_class(y, w):
        return math.nan
    return float(roc_auc_score(y, p, sample_weight=w))


def average_precision(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Weighted average precision, the step-wise PR-AUC (scikit-learn's ``average_precision_score``)."""
    y, p, w = check_scores(y_true, y_score, sample_weight)
    if _positive_weight(y, w) <= 0.0:
        return math.nan
    return float(average_precision_score(y, p, sample_weight=w))


def log_loss(y_true: Any, y_prob: Any, sample_weight: Any = None) -> float:
    """Weighted mean log loss (scikit-learn's ``log_loss``; probabilities clipped to float64 eps)."""
    y, p, w = check_scores(y_true, y_prob, sample_weight)
    return float(sk_log_loss(y, p, sample_weight=w, labels=[0, 1]))


def normalized_entropy(y_true: Any, y_prob: Any, sample_weight: Any = None) -> float:
    """Log loss divided by the entropy of the (weighted) base rate.

    1.0 means no better than always predicting the event rate; lower is better. NaN when the
    base rate is 0 or 1.
    """
    y, p, w = check_scores(y_true, y_prob, sample_weight)
    rate = _event_rate(y, w)
    return log_loss(y, p, w) / binary_entropy(rate) if 0.0 < rate < 1.0 else math.nan


def brier_score(y_true: Any, y_prob: Any, sample_weight: Any = None) -> float:
    """Weighted Brier score, the mean squared error of the probabilities."""
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

    @classmethod
    def from_sums(
        cls, sum_w: np.ndarray, sum_wp: np.ndarray, sum_wy: np.ndarray, edges: np.ndarray
    ) -> CalibrationCurve:
        """The curve from per-bin sums of weights, weighted scores and weighted labels.

        Empty bins are dropped; the in-memory and the streaming evaluation both end here.
        """
        nonzero = sum_w > 0
        return cls(
            prob_pred=sum_wp[nonzero] / sum_w[nonzero],
            prob_true=sum_wy[nonzero] / sum_w[nonzero],
            weight=sum_w[nonzero],
            edges=edges,
        )


def _bin_edges(p: np.ndarray, w: np.ndarray | None, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    q = np.linspace(0.0, 1.0, n_bins + 1)
    if w is None:
        return np.percentile(p, q * 100)  # scikit-learn's rule, so unweighted curves agree
    return np.quantile(p, q, weights=w, method="inverted_cdf")


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
    check_binning(strategy, n_bins)
    y, p, w = check_scores(y_true, y_prob, sample_weight)
    edges = _bin_edges(p, w, int(n_bins), strategy)
    ids = np.searchsorted(edges[1:-1], p)
    ww = np.ones_like(p) if w is None else w
    n = len(edges) - 1
    return CalibrationCurve.from_sums(
        np.bincount(ids, weights=ww, minlength=n),
        np.bincount(ids, weights=ww * p, minlength=n),
        np.bincount(ids, weights=ww * y, minlength=n),
        edges,
    )


def expected_calibration_error(y_true: Any, y_prob: Any, **options: Any) -> float:
    """Expected calibration error: ``sum_b (W_b / W) |event rate_b - mean prob_b|``.

    The ``ece`` of :func:`calibration_curve`, which takes the keyword arguments (``n_bins``,
    ``strategy``, ``sample_weight``).
    """
    return calibration_curve(y_true, y_prob, **options).ece


def _single_class(y: np.ndarray, w: np.ndarray | None) -> bool:
    pos = _positive_weight(y, w)
    tot = float(len(y)) if w is None else float(w.sum())
    return pos <= 0.0 or pos >= tot


def _positive_weight(y: np.ndarray, w: np.ndarray | None) -> float:
    return float(y.sum()) if w is None else float(w[y == 1].sum())


def _event_rate(y: np.ndarray, w: np.ndarray | None) -> float:
    return float(y.mean()) if w is None else float(np.sum(w * y) / np.sum(w))
