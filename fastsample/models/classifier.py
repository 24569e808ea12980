"""The scikit-learn meta-estimator that fits a model on a keyed negative sample.

:class:`NegativeSamplingClassifier`: pilot -> keyed negative sample -> final model fitted with
the offset, IPW weights or a post-hoc correction; predicts population probabilities.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from fastsample.core.correction import correct_log_odds, log_odds_offset
from fastsample.core.logistic import sigmoid, softplus
from fastsample.core.pilot import Pilot
from fastsample.core.strategies import inclusion_probabilities
from fastsample.errors import InputError
from fastsample.models.draw import SAMPLING_CONSTRAINTS, draw_for
from fastsample.models.offset_logistic import (
    BinaryTagsMixin,
    OffsetLogisticRegression,
    binary_classes,
)

__all__ = ["NegativeSamplingClassifier"]


def _booster_kind(est: Any) -> str:
    mod = type(est).__module__.split(".")[0]
    if mod in ("lightgbm", "xgboost"):
        return mod
    if isinstance(est, OffsetLogisticRegression):
        return "fastsample"
    return "other"


def _accepts_fit_param(est: Any, name: str) -> bool:
    try:
        params = inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class NegativeSamplingClassifier(BinaryTagsMixin, ClassifierMixin, BaseEstimator):
    """Fit a classifier on a keyed negative sample and predict on the population scale.

    ``fit(X, y)`` trains (or takes) a pilot, keeps every positive and a scored fraction of the
    negatives with :func:`fastsample.engines.batch.sample_frame` (reproducible: each row's fate
    depends on its row index and ``seed`` only), then fits the final ``estimator`` on the kept
    rows with the chosen correction.

    Parameters
    ----------
    estimator : classifier, default=None
        The final model (cloned). ``None`` means ``OffsetLogisticRegression()``.
    pilot : None, str, classifier, Pilot or path, default=None
        ``None`` trains a logistic pilot on a case-control sample (not needed for
        ``strategy="uniform"``); a model name (``"logistic"``, ``"sgd"``, ``"hgb"``) or an
        unfitted classifier is trained the same way; a fitted classifier, a
        :class:`~fastsample.core.pilot.Pilot` or a saved pilot file is used as is.
    strategy : {"proportional", "uniform", "opt-l", "opt-a", "lcc"}, default="proportional"
        Inclusion-probability strategy (:mod:`fastsample.core.strategies`).
    rate : float, default=0.1
        Expected fraction of negatives kept.
    correction : {"offset", "weights", "posthoc"}, default="offset"
        ``"offset"``: fit with the log-odds offset (``offset=`` for OffsetLogisticRegression,
        LightGBM ``init_score``, XGBoost ``base_margin``; any other estimator must accept an
        ``offset`` fit parameter). ``"weights"``: inverse-probability ``sample_weight``.
        ``"posthoc"``: plain fit, then ``logit p = s(x) - o(x)`` at prediction, with ``o``
        recomputed from the pilot for the rows being predicted.
    floor : float, optional
        Lower bound on every inclusion probability.
    seed : int, default=0
        Sampling seed (the pilot's own sample uses a derived, independent stream).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``classes_[1]`` is the positive class (the one always kept).
    estimator_ : estimator
        The fitted final model.
    pilot_ : Pilot or None
    plan_ : SamplingPlan
        Strategy, rate, ``kappa`` and expected counts.
    sample_indices_ : ndarray
        Rows of ``X`` the final model was trained on.
    sampling_prob_, sample_weight_, log_odds_offset_ : ndarray
        Per kept row: ``a_y``, ``1 / a_y`` and ``log a_1 - log a_0``.
    n_features_in_ : int
    feature_names_in_ : ndarray
        Defined only when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsample import NegativeSamplingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20000, 2))
    >>> y = (rng.random(20000) < 1 / (1 + np.exp(-(X[:, 0] - 4)))).astype(int)
    >>> clf = NegativeSamplingClassifier(rate=0.05, seed=1).fit(X, y)
    >>> clf.predict_proba(X).shape
    (20000, 2)
    """

    _parameter_constraints: dict[str, Any] = {  # noqa: RUF012 - sklearn's convention
        **SAMPLING_CONSTRAINTS,
        "estimator": [None, HasMethods(["fit"])],
        "correction": [StrOptions({"offset", "weights", "posthoc"})],
    }

    def __init__(
        self,
        estimator: Any = None,
        pilot: Any = None,
        strategy: str = "proportional",
        rate: float = 0.1,
        correction: str = "offset",
        floor: float | None = None,
        seed: int = 0,
    ) -> None:
        self.estimator = estimator
        self.pilot = pilot
        self.strategy = strategy
        self.rate = rate
        self.correction = correction
        self.floor = floor
        self.seed = seed

    def _feature_names(self, n_features: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        given = self.pilot
        if isinstance(given, Pilot) and len(given.features) == n_features:
            return list(given.features)
        return [f"x{j}" for j in range(n_features)]

    def _frame(self, X: np.ndarray):
        names = self._feature_names(X.shape[1])
        return pl.DataFrame({n: X[:, j] for j, n in enumerate(names)}), names

    def fit(self, X: Any, y: Any):
        """Sample and fit the final model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, pandas or Polars.
        y : array-like of shape (n_samples,)
            Two classes; the larger label in sorted order is the positive (always kept).

        Returns
        -------
        self : NegativeSamplingClassifier
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        classes = binary_classes(y, "NegativeSamplingClassifier")
        self.classes_ = classes
        y01 = (y == classes[1]).astype(np.int8)
        frame, names = self._frame(X)
        drawn = draw_for(self, frame, y01, features=names)
        idx = drawn["indices"]
        self.sample_indices_ = idx
        self.sampling_prob_ = drawn["prob"]
        self.sample_weight_ = drawn["weight"]
        self.log_odds_offset_ = drawn["offset"]
        ys = y01[idx]
        if ys.min(initial=1) == ys.max(initial=0):
            raise InputError(
                f"the sample of {idx.size} rows holds only one class; raise rate (now {self.rate})"
            )
        est: Any = OffsetLogisticRegression() if self.estimator is None else clone(self.estimator)
        kind = _booster_kind(est)
        Xs = X[idx]
        if self.correction == "weights":
            est.fit(Xs, ys, sample_weight=self.sample_weight_)
        elif self.correction == "posthoc":
            est.fit(Xs, ys)
        elif kind == "lightgbm":
            est.fit(Xs, ys, init_score=self.log_odds_offset_)
        elif kind == "xgboost":
            est.fit(Xs, ys, base_margin=self.log_odds_offset_)
        elif _accepts_fit_param(est, "offset"):
            est.fit(Xs, ys, offset=self.log_odds_offset_)
        else:
            raise InputError(
                f"correction='offset' needs an estimator whose fit takes an offset "
                f"(OffsetLogisticRegression, LightGBM, XGBoost); {type(est).__name__} does not: "
                "use correction='weights' or 'posthoc'"
            )
        self.estimator_ = est
        return self

    def _sampled_offset(self, X: np.ndarray) -> np.ndarray:
        """``o(x) = log a_1(x) - log a_0(x)`` for new rows, from the fitted pilot and plan."""
        if self.pilot_ is None:
            logits = np.zeros(X.shape[0])
        else:
            frame, _ = self._frame(X)
            logits = self.pilot_.logits(frame)
        a0, a1 = inclusion_probabilities(
            self.strategy,
            logits,
            kappa=self.plan_.kappa,
            floor=self.floor,
            X=X,
            info_inv=self.plan_.info_inv,
        )
        return log_odds_offset(a0, a1)

    def _model_logit(self, X: np.ndarray) -> np.ndarray:
        est: Any = self.estimator_
        kind = _booster_kind(est)
        if kind == "fastsample":
            return est.decision_function(X)
        if kind == "xgboost":
            # Serve with a zero margin: otherwise XGBoost adds a base_score it estimated from
            # the sampled labels but never trained with (tests/test_boost_recipes.py).
            zeros = np.zeros(X.shape[0])
            return np.asarray(est.predict(X, output_margin=True, base_margin=zeros), dtype=float)
        if kind == "lightgbm":
            return np.asarray(est.predict(X, raw_score=True), dtype=np.float64)
        if hasattr(est, "decision_function"):
            return np.asarray(est.decision_function(X), dtype=np.float64).reshape(-1)
        p = np.asarray(est.predict_proba(X), dtype=np.float64)[:, 1]
        p = np.clip(p, 1e-300, 1.0 - 2.0**-53)
        return np.log(p) - np.log1p(-p)

    def decision_function(self, X: Any) -> np.ndarray:
        """Population-scale log-odds of the positive class.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        eta = self._model_logit(X)
        if self.correction == "posthoc":
            eta = correct_log_odds(eta, self._sampled_offset(X))
        return eta

    def predict_proba(self, X: Any) -> np.ndarray:
        """Population-scale class probabilities, columns in the order of ``classes_``."""
        eta = self.decision_function(X)
        return np.column_stack([sigmoid(-eta), sigmoid(eta)])

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed in log space."""
        eta = self.decision_function(X)
        return np.column_stack([-softplus(eta), -softplus(-eta)])

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class on the population scale."""
        eta = self.decision_function(X)
        return self.classes_[(eta > 0).astype(np.intp)]
