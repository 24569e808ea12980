"""Extreme imbalance: pick a sampled ensemble or a single sampled model by the measured ratio.

:class:`ExtremeImbalanceClassifier` measures ``imbalance_ratio = N0 / N1`` (negatives per
positive) on the training labels and chooses:

* ``imbalance_ratio >= threshold`` (default 1000, i.e. rarer than 1:1000) — an **ensemble**:

  - ``ensemble="bagging"`` (default): ``n_estimators`` offset logistic regressions, member
    ``k`` fitted on its own uniform negative sample drawn with the keyed hash and the derived
    seed ``derive_seed(seed, "bag-k")`` (so the members see different negatives and the whole
    ensemble is reproducible), each with offset ``-log rate`` and hence on the population
    scale; the ensemble averages the members' log-odds.
  - ``ensemble="brf"``: imbalanced-learn's ``BalancedRandomForestClassifier`` (optional extra
    ``imblearn``). Each tree sees every positive and an equal number of random negatives, so
    the forest's probabilities live on a 1:1 scale; they are corrected by the constant
    log-odds shift ``log(N0 / N1)`` (:func:`fastsample.core.correction.correct_proba`). For trees
    this removes the prior shift but is not an exact likelihood correction.

* otherwise — a **single** model: a pilot-based proportional negative sample
  (:func:`fastsample.engines.batch.sample_frame`) and an offset logistic regression
  (:class:`fastsample.models.offset_logistic.OffsetLogisticRegression`).

Either way :meth:`ExtremeImbalanceClassifier.predict_proba` returns population-scale
probabilities. The seed tutorial served the forest's balanced-scale probabilities as they were
(a 1:2000 event rate comes out near 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.correction import correct_proba
from fastsample.core.hashing import derive_seed
from fastsample.core.logistic import sigmoid
from fastsample.core.optional import require
from fastsample.core.strategies import undersampling_rate
from fastsample.core.validation import binary_labels, numeric_matrix
from fastsample.engines.memory import sample_frame
from fastsample.errors import InputError
from fastsample.models.offset_logistic import OffsetLogisticRegression

__all__ = ["ExtremeImbalanceClassifier", "imbalance_ratio"]


def imbalance_ratio(y: Any) -> float:
    """Negatives per positive ``N0 / N1`` of 0/1 labels (``inf`` without positives)."""
    arr = binary_labels(y, "y")
    n1 = int(np.count_nonzero(arr == 1))
    n0 = arr.shape[0] - n1
    return n0 / n1 if n1 else math.inf


# A dataclass for its keyword-only constructor and repr: not a scikit-learn estimator (no
# get_params), so nothing introspects an explicit __init__; eq=False keeps identity equality.
@dataclass(kw_only=True, eq=False)
class ExtremeImbalanceClassifier:
    """Population-scale classifier for rare events, ensemble or single model by imbalance.

    Parameters
    ----------
    threshold : float
        Negatives per positive at or above which the ensemble path is used.
    ensemble : {"bagging", "brf"}
        Ensemble kind (``"brf"`` needs ``pip install 'fastsample[imblearn]'``).
    n_estimators : int
        Members of the ensemble (trees for ``"brf"``).
    negatives_per_positive : float
        Expected kept negatives per positive in each bagging member's sample and in the single
        model's sample.
    C : float
        Inverse L2 penalty of the logistic models (``np.inf``: none).
    seed : int
        Seed of every keyed draw (members use derived seeds) and of the forest.
    brf_params : dict, optional
        Extra ``BalancedRandomForestClassifier`` parameters.

    Attributes
    ----------
    path_ : str
        ``"bagging"``, ``"brf"`` or ``"single"``.
    imbalance_ratio_ : float
        Measured ``N0 / N1``.
    estimators_ : list
        Fitted members (one for the single path).
    sample_rate_ : float
        Keep-rate of negatives (for ``"brf"``: ``N1 / N0``, each tree's effective rate).
    """

    threshold: float = 1000.0
    ensemble: str = "bagging"
    n_estimators: int = 10
    negatives_per_positive: float = 5.0
    C: float = 1.0
    seed: int = 0
    brf_params: dict[str, Any] | None = None

    # ------------------------------------------------------------------ helpers

    def _frame(self, M: np.ndarray, y: np.ndarray | None = None) -> Any:
        cols: dict[str, Any] = {f"x{j}": M[:, j] for j in range(M.shape[1])}
        if y is not None:
            cols["__y"] = y
            cols["__key"] = np.arange(M.shape[0], dtype=np.int64)
        return pl.DataFrame(cols)

    def _offset_fit(self, kept: Any, d: int) -> Any:
        Xk = kept.select([f"x{j}" for j in range(d)]).to_numpy()
        return OffsetLogisticRegression(C=self.C).fit(
            Xk, kept["__y"].to_numpy(), offset=kept["log_odds_offset"].to_numpy()
        )

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any) -> ExtremeImbalanceClassifier:
        """Measure the imbalance, choose the path and fit it.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : array-like of 0/1 labels (both classes present)
        """
        if self.ensemble not in ("bagging", "brf"):
            raise InputError(f"ensemble: {self.ensemble!r} is not 'bagging' or 'brf'")
        if int(self.n_estimators) < 1:
            raise InputError(f"n_estimators: must be >= 1 (got {self.n_estimators})")
        M = numeric_matrix(X)
        yv = np.asarray(y)
        if yv.shape != (M.shape[0],):
            raise InputError(f"y has shape {yv.shape}, expected ({M.shape[0]},)")
        ratio = imbalance_ratio(yv)
        n1 = int(np.count_nonzero(yv == 1))
        n0 = yv.shape[0] - n1
        if n1 == 0 or n0 == 0:
            raise InputError(f"y: class {1 if n1 == 0 else 0} is absent; need both classes")
        yv = yv.astype(np.int8)
        self.imbalance_ratio_ = ratio
        self.n_features_in_ = M.shape[1]
        rate = undersampling_rate(n1, n0, self.negatives_per_positive)
        frame = self._frame(M, yv)
        d = M.shape[1]
        if ratio < self.threshold:
            kept = sample_frame(
                frame,
                label="__y",
                features=[f"x{j}" for j in range(d)],
                strategy="proportional",
                rate=rate,
                seed=self.seed,
                key="__key",
            )
            self.path_ = "single"
            self.sample_rate_ = rate
            self.estimators_ = [self._offset_fit(kept, d)]
            return self
        if self.ensemble == "brf":
            brf = require("imblearn.ensemble", "imblearn").BalancedRandomForestClassifier(
                n_estimators=int(self.n_estimators),
                sampling_strategy="auto",
                replacement=False,
                bootstrap=False,
                random_state=int(self.seed) % (2**32),
                **(self.brf_params or {}),
            )
            brf.fit(M, yv)
            self.path_ = "brf"
            self.sample_rate_ = n1 / n0
            self.estimators_ = [brf]
            return self
        members = []
        for k in range(int(self.n_estimators)):
            kept = sample_frame(
                frame,
                label="__y",
                strategy="uniform",
                rate=rate,
                seed=derive_seed(self.seed, f"bag-{k}"),
                key="__key",
            )
            members.append(self._offset_fit(kept, d))
        self.path_ = "bagging"
        self.sample_rate_ = rate
        self.estimators_ = members
        return self

    # ------------------------------------------------------------------ predict

    def _check(self, X: Any) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise InputError("the classifier is not fitted yet")
        M = numeric_matrix(X)
        if M.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {M.shape[1]} features, the model was fitted on {self.n_features_in_}"
            )
        return M

    def decision_function(self, X: Any) -> np.ndarray:
        """Population-scale log-odds (mean of the members' log-odds for bagging)."""
        M = self._check(X)
        if self.path_ == "brf":
            p = self.predict_proba(M)[:, 1]
            with np.errstate(divide="ignore"):
                return np.log(p) - np.log1p(-p)
        return np.mean([m.decision_function(M) for m in self.estimators_], axis=0)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Population-scale probabilities, shape ``(n, 2)``."""
        M = self._check(X)
        if self.path_ == "brf":
            forest = self.estimators_[0]
            q = forest.predict_proba(M)[:, list(forest.classes_).index(1)]
            p1 = correct_proba(q, -math.log(self.sample_rate_))
        else:
            eta = self.decision_function(M)
            p1 = sigmoid(eta)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """Class with the larger population-scale probability (almost always 0 for rare events;
        rank with :meth:`predict_proba` instead)."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
