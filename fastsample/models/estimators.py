"""Estimators that undo negative sampling.

- :class:`OffsetLogisticRegression`: logistic regression with a per-row offset (the likelihood
  estimator of DESIGN.md §2.3), served without the offset.
- :class:`NegativeSamplingClassifier`: pilot -> keyed negative sample -> final model fitted
  with the offset, IPW weights or a post-hoc correction; predicts population probabilities.
- ``NegativeSampler`` and ``KeyedRandomUnderSampler`` (imbalanced-learn API) live in
  :mod:`fastsample.models.samplers`, which needs the ``imblearn`` extra; they are re-exported here.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import linalg, optimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastsample.core import glm_kernels as _k
from fastsample.errors import InputError

__all__ = ["NegativeSamplingClassifier", "OffsetLogisticRegression"]
_SAMPLERS = ("NegativeSampler", "KeyedRandomUnderSampler")


def __getattr__(name: str) -> Any:
    # The samplers subclass imbalanced-learn's base class, an optional dependency.
    if name in _SAMPLERS:
        from fastsample.models import samplers

        return getattr(samplers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_offset(offset: Any, n: int, name: str = "offset") -> np.ndarray:
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


def _binary_classes(y: np.ndarray, owner: str) -> np.ndarray:
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


class OffsetLogisticRegression(ClassifierMixin, BaseEstimator):
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

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
        classes = _binary_classes(y, "OffsetLogisticRegression")
        self.classes_ = classes
        n, d = X.shape
        y01 = (y == classes[1]).astype(np.float64)
        off = _as_offset(offset, n)
        weighted = sample_weight is not None
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        wsum = float(w.sum())
        if not wsum > 0:
            raise InputError("sample_weight sums to zero")

        k = d + 1
        alpha = 0.0 if np.isinf(self.C) else 1.0 / float(self.C)
        fi = bool(self.fit_intercept)
        grad = np.empty(k)
        hess = np.empty((k, k))
        cache: dict[str, Any] = {}

        def unpack(theta: np.ndarray) -> tuple[np.ndarray, float]:
            return theta[:d], float(theta[d]) if fi else 0.0

        def evaluate(theta: np.ndarray, need_hess: bool) -> dict[str, Any]:
            # SciPy asks for the Hessian before the loss at a new point; one fused pass
            # serves both, so each Newton iteration reads the data once.
            if (
                "x" in cache
                and np.array_equal(cache["x"], theta)
                and (not need_hess or "h" in cache)
            ):
                return cache
            coef, b = unpack(theta)
            cache.clear()
            if need_hess or self.solver == "newton":
                loss = _k.offset_logistic_loss_grad_hess(X, y01, w, off, coef, b, grad, hess)
                h = hess[: theta.size, : theta.size].copy()
                h[np.arange(d), np.arange(d)] += alpha
                cache["h"] = h / wsum
            else:
                loss = _k.offset_logistic_loss_grad(X, y01, w, off, coef, b, grad)
            g = grad[: theta.size].copy()
            g[:d] += alpha * coef
            cache["f"] = (loss + 0.5 * alpha * float(coef @ coef)) / wsum
            cache["g"] = g / wsum
            cache["x"] = theta.copy()
            return cache

        def fun_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ev = evaluate(theta, need_hess=False)
            return ev["f"], ev["g"].copy()

        def hessian(theta: np.ndarray) -> np.ndarray:
            return evaluate(theta, need_hess=True)["h"].copy()

        theta0 = np.zeros(d + fi)
        if fi:
            # Start at the intercept of the constant model, ignoring the offset's spread: it
            # puts Newton inside its quadratic region for rare events.
            pbar = float(np.clip(np.average(y01, weights=w), 1e-12, 1 - 1e-12))
            theta0[d] = np.log(pbar / (1.0 - pbar)) - float(np.average(off, weights=w))
        with warnings.catch_warnings():
            # trust-exact warns on an exactly singular Hessian (e.g. a constant column
            # unpenalised); the result is still checked below.
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.solver == "newton":
                res = optimize.minimize(
                    fun_grad,
                    theta0,
                    jac=True,
                    hess=hessian,
                    method="trust-exact",
                    options={"gtol": self.tol, "maxiter": self.max_iter},
                )
            else:
                res = optimize.minimize(
                    fun_grad,
                    theta0,
                    jac=True,
                    method="L-BFGS-B",
                    options={
                        "gtol": self.tol,
                        "ftol": 64 * np.finfo(float).eps,
                        "maxiter": self.max_iter,
                        "maxcor": 20,
                    },
                )
        theta = np.asarray(res.x, dtype=np.float64)
        if not res.success and not _at_optimum(fun_grad, hessian, theta):
            warnings.warn(
                f"OffsetLogisticRegression ({self.solver}) did not converge: {res.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
        coef, b = unpack(theta)
        self.coef_ = coef.reshape(1, d).copy()
        self.intercept_ = np.array([b])
        self.n_iter_ = np.array([int(res.nit)], dtype=np.int32)
        self.covariance_ = self._covariance(
            X, y01, w, off, coef, b, hessian(theta) * wsum, weighted
        )
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
        off = _as_offset(offset, X.shape[0])
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
        p1 = _sigmoid(eta)
        return np.column_stack([_sigmoid(-eta), p1])

    def predict_log_proba(self, X: Any, offset: Any = None) -> np.ndarray:
        """Log class probabilities, computed in log space (no underflow to ``-inf``)."""
        eta = self.decision_function(X, offset=offset)
        return np.column_stack([-np.logaddexp(0.0, eta), -np.logaddexp(0.0, -eta)])

    def predict(self, X: Any, offset: Any = None) -> np.ndarray:
        """Predicted class labels (positive where the log-odds are > 0)."""
        eta = self.decision_function(X, offset=offset)
        return self.classes_[(eta > 0).astype(np.intp)]


def _at_optimum(fun_grad, hessian, theta: np.ndarray) -> bool:
    """Whether a second-order step could still lower the objective measurably.

    SciPy's solvers can stop with "bad approximation" / "abnormal termination" when the
    remaining decrease is below floating-point resolution; the Newton decrement
    ``g' H^-1 g / 2`` (the predicted decrease) tells that case apart from a real failure.
    """
    f, g = fun_grad(theta)
    try:
        step = linalg.solve(hessian(theta), g, assume_a="sym")
    except (linalg.LinAlgError, ValueError):
        return False
    decrement = 0.5 * float(g @ step)
    return bool(np.isfinite(decrement) and decrement <= 1e-13 * max(1.0, abs(f)))


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    out = np.empty_like(eta)
    pos = eta >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-eta[pos]))
    e = np.exp(eta[~pos])
    out[~pos] = e / (1.0 + e)
    return out


# -- sampling through the core ----------------------------------------------------------------

_LABEL = "__fastsample_label__"
_COLUMNS = None  # set lazily: sampling.OutputColumns with names no user column can take
_PILOT_MODELS = ("logistic", "sgd", "hgb", "gbm")


def _output_columns():
    global _COLUMNS
    if _COLUMNS is None:
        from fastsample.engines.batch import OutputColumns

        _COLUMNS = OutputColumns(
            prob="__fastsample_prob__",
            weight="__fastsample_weight__",
            offset="__fastsample_offset__",
        )
    return _COLUMNS


def _is_fitted(est: Any) -> bool:
    from sklearn.exceptions import NotFittedError

    try:
        check_is_fitted(est)
    except NotFittedError:
        return False
    except TypeError:  # not an estimator
        return False
    return True


def resolve_pilot(
    pilot: Any,
    frame: Any,
    y01: np.ndarray,
    *,
    features: list[str],
    strategy: str,
    seed: int,
    key: Any = None,
) -> Any:
    """The :class:`~fastsample.core.pilot.Pilot` to sample with, trained here when needed.

    ``pilot`` may be None (a logistic pilot is trained unless the strategy is uniform), a
    model name (``"logistic"``, ``"sgd"``, ``"hgb"``), an unfitted classifier (trained on a
    case-control sample), a fitted classifier, a :class:`Pilot` or a path to a saved one.
    """
    import os

    from fastsample.core.hashing import frame_keys
    from fastsample.core.pilot import Pilot, as_pilot, fit_pilot

    if pilot is None and strategy == "uniform":
        return None
    if pilot is None:
        pilot = "logistic"
    if isinstance(pilot, Pilot) or (
        isinstance(pilot, (str, os.PathLike)) and os.path.exists(os.fspath(pilot))
    ):
        return as_pilot(pilot)
    if isinstance(pilot, str) and pilot not in _PILOT_MODELS:
        raise InputError(
            f"pilot {pilot!r} is neither a saved pilot file nor one of {', '.join(_PILOT_MODELS)}"
        )
    if isinstance(pilot, str) or not _is_fitted(pilot):
        keys = frame_keys(frame, key, 0)
        return fit_pilot(frame, y01, features=features, model=pilot, seed=seed, keys=keys)
    return as_pilot(pilot, features if getattr(pilot, "feature_names_in_", None) is None else None)


def draw_sample(
    frame: Any,
    y01: np.ndarray,
    *,
    features: list[str],
    pilot: Any,
    strategy: str,
    rate: float,
    seed: int,
    floor: float | None = None,
    key: Any = None,
) -> dict[str, Any]:
    """Run :func:`fastsample.engines.batch.sample_frame` on a polars frame with 0/1 labels ``y01``.

    Returns a dict with ``indices`` (kept rows, increasing), ``prob``, ``weight``, ``offset``,
    the resolved ``pilot``, the sampling ``plan`` and the counts of ``sample_frame``'s info.
    """
    import polars as pl

    from fastsample.engines.batch import sample_frame

    df = frame.with_columns(pl.Series(_LABEL, np.asarray(y01, dtype=np.int8)))
    pilot_obj = resolve_pilot(
        pilot, df, y01, features=features, strategy=strategy, seed=seed, key=key
    )
    cols = _output_columns()
    out, info = sample_frame(
        df,
        label=_LABEL,
        features=features,
        pilot=pilot_obj,
        strategy=strategy,
        rate=rate,
        seed=seed,
        key=key,
        floor=floor,
        columns=cols,
        return_info=True,
    )
    info = dict(info)
    info.update(
        prob=out.get_column(cols.prob).to_numpy(),
        weight=out.get_column(cols.weight).to_numpy(),
        offset=out.get_column(cols.offset).to_numpy(),
        pilot=pilot_obj,
    )
    return info


def _booster_kind(est: Any) -> str:
    mod = type(est).__module__.split(".")[0]
    if mod in ("lightgbm", "xgboost"):
        return mod
    if isinstance(est, OffsetLogisticRegression):
        return "fastsample"
    return "other"


def _accepts_fit_param(est: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class NegativeSamplingClassifier(ClassifierMixin, BaseEstimator):
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
        Inclusion-probability strategy (DESIGN.md §2.2).
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
        "estimator": [None, HasMethods(["fit"])],
        "pilot": "no_validation",
        "strategy": [StrOptions({"uniform", "proportional", "opt-l", "opt-a", "lcc"})],
        "rate": [Interval(Real, 0, 1, closed="right")],
        "correction": [StrOptions({"offset", "weights", "posthoc"})],
        "floor": [None, Interval(Real, 0, 1, closed="both")],
        "seed": [Interval(Integral, None, None, closed="neither")],
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _feature_names(self, n_features: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        given = self.pilot
        from fastsample.core.pilot import Pilot

        if isinstance(given, Pilot) and len(given.features) == n_features:
            return list(given.features)
        return [f"x{j}" for j in range(n_features)]

    def _frame(self, X: np.ndarray):
        import polars as pl

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
        from sklearn.base import clone

        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        classes = _binary_classes(y, "NegativeSamplingClassifier")
        self.classes_ = classes
        y01 = (y == classes[1]).astype(np.int8)
        frame, names = self._frame(X)
        drawn = draw_sample(
            frame,
            y01,
            features=names,
            pilot=self.pilot,
            strategy=self.strategy,
            rate=self.rate,
            seed=int(self.seed),
            floor=self.floor,
        )
        idx = drawn["indices"]
        self.pilot_ = drawn["pilot"]
        self.plan_ = drawn["plan"]
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
        from fastsample.core.correction import log_odds_offset
        from fastsample.core.strategies import inclusion_probabilities

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
            # the sampled labels but never trained with (peers.md, summary point 3).
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
            from fastsample.core.correction import correct_log_odds

            eta = correct_log_odds(eta, self._sampled_offset(X))
        return eta

    def predict_proba(self, X: Any) -> np.ndarray:
        """Population-scale class probabilities, columns in the order of ``classes_``."""
        eta = self.decision_function(X)
        return np.column_stack([_sigmoid(-eta), _sigmoid(eta)])

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed in log space."""
        eta = self.decision_function(X)
        return np.column_stack([-np.logaddexp(0.0, eta), -np.logaddexp(0.0, -eta)])

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class on the population scale."""
        eta = self.decision_function(X)
        return self.classes_[(eta > 0).astype(np.intp)]
