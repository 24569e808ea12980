"""Logistic regression with a per-row offset on the log-odds, served without the offset.

The likelihood estimator of a negative sample: fitted on the kept rows with
``offset = -log pi`` it estimates the population model. The fit is
:func:`fastsample.models.solver.solve_offset_logistic`, the package's one solver of this
likelihood.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastsample.core import glm_kernels as _k
from fastsample.core.logistic import sigmoid, softplus
from fastsample.errors import InputError
from fastsample.models.solver import solve_offset_logistic

__all__ = ["BinaryTagsMixin", "OffsetLogisticRegression", "as_offset", "binary_classes"]


def as_offset(offset: Any, n: int, name: str = "offset") -> np.ndarray:
    """A float64 offset vector of length ``n`` (zeros when ``None``)."""
    if offset is None:
        return np.zeros(n)
    if hasattr(offset, "to_numpy"):
        offset = offset.to_numpy()
    arr = np.asarray(offset, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} values but X has {n} rows")
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)][0]
        raise InputError(f"{name} must be finite; found {bad}")
    return arr


def binary_classes(y: np.ndarray, owner: str) -> np.ndarray:
    """The two sorted classes of ``y``; the messages are the ones scikit-learn's checks expect."""
    check_classification_targets(y)
    y_type = type_of_target(y, input_name="y", raise_unknown=True)
    classes = np.unique(y)
    if classes.shape[0] > 2:
        raise ValueError(
            f"Only binary classification is supported. The type of the target is {y_type}."
        )
    if classes.shape[0] < 2:
        raise ValueError(f"{owner} needs samples of 2 classes in y; got 1 class")
    return classes


class BinaryTagsMixin:
    """Tells scikit-learn's estimator checks that the classifier is binary only."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.classifier_tags.multi_class = False
        return tags


class OffsetLogisticRegression(BinaryTagsMixin, ClassifierMixin, BaseEstimator):
    """Binary logistic regression with a per-row offset on the log-odds.

    Maximises ``sum_i w_i [y_i eta_i - log(1 + exp(eta_i))] - ||coef||^2 / (2 C)`` with
    ``eta_i = x_i . coef + intercept + offset_i``. Fit on a negative sample with
    ``offset = -log(pi)`` (every kept row, positives included) and the fitted model predicts on
    the population scale: :meth:`predict_proba` serves *without* an offset.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 penalty strength as in :class:`sklearn.linear_model.LogisticRegression`;
        ``np.inf`` fits the unpenalised maximum-likelihood estimate. The intercept is never
        penalised.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    solver : {"newton", "lbfgs"}, default="newton"
        ``"newton"``: trust-region Newton (``scipy.optimize.minimize(method="trust-exact")``)
        with the exact Hessian, one fused data pass per iteration. ``"lbfgs"``: SciPy's
        L-BFGS-B on the loss and gradient.
    tol : float, default=1e-8
        Stop when the gradient norm of the objective divided by the total weight is below it.
    max_iter : int, default=100
        Maximum number of solver iterations.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        Class labels; ``classes_[1]`` is the positive class.
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    covariance_ : ndarray of shape (n_params, n_params)
        Estimated covariance of ``(intercept, coef...)`` (intercept first when fitted): the
        inverse of the penalised Hessian, or the sandwich ``H^-1 M H^-1`` when ``sample_weight``
        was given (``M`` = sum of squared weighted scores), as appropriate for inverse-probability
        weights.
    standard_errors_ : ndarray of shape (n_params,)
        Square roots of the diagonal of ``covariance_``.
    n_iter_ : ndarray of shape (1,)
        Solver iterations.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsample import OffsetLogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> y = rng.random(2000) < 1 / (1 + np.exp(-(X[:, 0] - 1)))
    >>> model = OffsetLogisticRegression(C=np.inf).fit(X, y, offset=np.zeros(2000))
    >>> model.predict_proba(X[:3]).shape
    (3, 2)
    """

    _parameter_constraints: dict[str, Any] = {  # noqa: RUF012 - sklearn's convention
        "C": [Interval(Real, 0, None, closed="right")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"newton", "lbfgs"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        solver: str = "newton",
        tol: float = 1e-8,
        max_iter: int = 100,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, offset: Any = None, sample_weight: Any = None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes; the larger label (in sorted order) is the positive class.
        offset : array-like of shape (n_samples,), optional
            Known term added to every row's log-odds during fitting (``-log pi`` for a
            negative sample). Not used at prediction time.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights (``1 / a_y`` for inverse-probability weighting).

        Returns
        -------
        self : OffsetLogisticRegression
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C")
        classes = binary_classes(y, "OffsetLogisticRegression")
        self.classes_ = classes
        n, d = X.shape
        y01 = (y == classes[1]).astype(np.float64)
        off = as_offset(offset, n)
        weighted = sample_weight is not None
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        wsum = float(w.sum())
        if not wsum > 0:
            raise InputError("sample_weight sums to zero")

        alpha = 0.0 if np.isinf(self.C) else 1.0 / float(self.C)
        sol = solve_offset_logistic(
            X,
            y01,
            w,
            off,
            alpha=alpha,
            fit_intercept=bool(self.fit_intercept),
            method=self.solver,
            tol=self.tol,
            max_iter=self.max_iter,
        )
        if not sol.converged:
            warnings.warn(
                f"OffsetLogisticRegression ({self.solver}) did not converge: {sol.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
        coef, b = sol.coef, sol.intercept
        self.coef_ = coef.reshape(1, d).copy()
        self.intercept_ = np.array([b])
        self.n_iter_ = np.array([sol.n_iter], dtype=np.int32)
        assert sol.hessian is not None  # asked for by default
        self.covariance_ = self._covariance(X, y01, w, off, coef, b, sol.hessian, weighted)
        self.standard_errors_ = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        return self

    def _covariance(self, X, y01, w, off, coef, b, H, weighted):
        # H: penalised Hessian of the summed objective in the solver's layout (coef..., b).
        d = X.shape[1]
        # Reorder to (intercept, coef...) to match statsmodels and the usual tables.
        order = np.r_[d, np.arange(d)] if self.fit_intercept else np.arange(d)
        H = H[np.ix_(order, order)]
        try:
            Hinv = linalg.pinvh(H)
        except (linalg.LinAlgError, ValueError):
            return np.full(H.shape, np.nan)
        if not weighted:
            return Hinv
        meat = np.empty((d + 1, d + 1))
        _k.offset_logistic_score_outer(X, y01, w, off, coef, b, meat)
        M = meat[np.ix_(order, order)]
        return Hinv @ M @ Hinv

    # -- prediction --------------------------------------------------------------------------
    def decision_function(self, X: Any, offset: Any = None) -> np.ndarray:
        """Population-scale log-odds ``x . coef + intercept`` (plus ``offset`` if given).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        offset : array-like of shape (n_samples,), optional
            Add it to reproduce the sampled-scale log-odds; leave it out to serve.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=False)
        off = as_offset(offset, X.shape[0])
        out = np.empty(X.shape[0])
        _k.linear_predictor(X, self.coef_[0], float(self.intercept_[0]), off, out)
        return out

    def predict_proba(self, X: Any, offset: Any = None) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        eta = self.decision_function(X, offset=offset)
        return np.column_stack([sigmoid(-eta), sigmoid(eta)])

    def predict_log_proba(self, X: Any, offset: Any = None) -> np.ndarray:
        """Log class probabilities, computed in log space (no underflow to ``-inf``)."""
        eta = self.decision_function(X, offset=offset)
        return np.column_stack([-softplus(eta), -softplus(-eta)])

    def predict(self, X: Any, offset: Any = None) -> np.ndarray:
        """Predicted class labels (positive where the log-odds are > 0)."""
        eta = self.decision_function(X, offset=offset)
        return self.classes_[(eta > 0).astype(np.intp)]
