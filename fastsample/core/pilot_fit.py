"""Training a pilot: a keyed case-control sample, a fit, the shift to the population scale.

The pilot's sample keeps every positive and about as many negatives, drawn with the keyed hash
on its own stream; the fitted logits are shifted by ``log(q0 / q1)`` so the :class:`Pilot`
predicts population-scale probabilities. The default ``"logistic"`` pilot standardises its
features first (raw log features span many orders of magnitude, and an unscaled fit stalls);
the scaler is folded into the stored linear coefficients, so scoring is unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl

from fastsample.core import kernels as K
from fastsample.core.hashing import derive_seed, seed_mix
from fastsample.core.names import PILOT_MODEL_ALIASES
from fastsample.core.pilot import Pilot, feature_matrix
from fastsample.core.reference import (
    INDEPENDENT,
    META_KEY,
    reference_rate,
    reference_take,
    reference_weight,
)
from fastsample.core.strategies import information_inverse
from fastsample.core.validation import binary_labels
from fastsample.errors import FastsampleWarning, InputError

__all__ = ["case_control_rates", "fit_case_control", "fit_pilot"]

# Negatives kept in the bundle for the one-pass kappa estimate: enough for a relative
# standard error of the expected count well under 1% at ordinary rates, and a few MB on disk.
MAX_REFERENCE_ROWS = 200_000


def _make_model(model: Any, seed: int) -> Any:
    # scikit-learn is imported here, not at the top: the engines import this module, and
    # sampling with a saved linear pilot never loads scikit-learn.
    from sklearn.base import clone

    if not isinstance(model, str):
        return clone(model)
    model = PILOT_MODEL_ALIASES.get(model, model)
    if model == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # Weak penalty: the pilot should be close to the unpenalised MLE on large samples.
        # Standardised first, so the penalty and the solver see comparable scales.
        return make_pipeline(StandardScaler(), LogisticRegression(C=100.0, max_iter=1000))
    if model == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss="log_loss", alpha=1e-6, random_state=seed % (2**32))
    if model == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed % (2**32))
    raise InputError(f"unknown pilot model {model!r}; use 'logistic', 'sgd', 'hgb' or a classifier")


def _fit(model: Any, X: np.ndarray, y: np.ndarray, name: str) -> None:
    """Fit ``model``; a library's convergence warning becomes one line of ours."""
    from sklearn.exceptions import ConvergenceWarning  # see _make_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    converged = True
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            converged = False
        else:  # anything else is passed on as it came (the outer filters apply)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not converged:
        warnings.warn(
            f"the {name} pilot did not converge on its {y.shape[0]:,}-row case-control sample; "
            "its scores may be poor (transform heavy-tailed features, or pass a classifier "
            "with a larger max_iter)",
            FastsampleWarning,
            stacklevel=4,
        )


def case_control_rates(
    n_positive: int,
    n_negative: int,
    *,
    negatives_per_positive: float = 1.0,
    max_rows: int | None = None,
) -> tuple[float, float]:
    """Keep-rates ``(q1, q0)`` of the pilot's case-control sample.

    About ``negatives_per_positive`` negatives per positive; when ``max_rows`` is given, both
    classes are thinned so the expected sample size stays within it.
    """
    if n_positive == 0 or n_negative == 0:
        cls = "positive" if n_positive == 0 else "negative"
        raise InputError(f"cannot train a pilot: the data has no {cls} rows")
    q1 = 1.0
    q0 = min(1.0, negatives_per_positive * n_positive / n_negative)
    if max_rows is not None:
        expected = q1 * n_positive + q0 * n_negative
        if expected > max_rows:
            shrink = max_rows / expected
            q1 *= shrink
            q0 *= shrink
    return q1, q0


def fit_pilot(
    X: Any,
    y: Any,
    *,
    features: list[str] | None = None,
    model: Any = "logistic",
    seed: int = 0,
    keys: Any = None,
    negatives_per_positive: float = 1.0,
    max_rows: int | None = None,
    label: str | None = None,
) -> Pilot:
    """Train a pilot on a case-control sample drawn with the keyed hash, then correct it.

    The sample keeps positives with probability ``q1`` and negatives with ``q0`` (see
    :func:`case_control_rates`), drawn on the independent stream ``derive_seed(seed, "pilot")``.
    The fitted logits are shifted by ``log(q0 / q1)`` (``-log(N0/N1)`` for a half/half sample),
    so the pilot predicts population-scale probabilities.

    Parameters
    ----------
    X : polars.DataFrame or 2-D array
        Features of every row (a frame may hold other columns too).
    y : array-like of 0/1
        Labels.
    features : list of str, optional
        Feature columns (default: all columns of a frame, or ``x0..x{d-1}`` for an array).
    model : str or sklearn classifier
        ``"logistic"`` (default), ``"sgd"``, ``"hgb"`` or an unfitted classifier to clone.
    seed : int
        Sampling seed; the pilot uses its own derived stream.
    keys : array-like, optional
        Row key words (uint64); default the row index.
    negatives_per_positive : float
        Case-control ratio.
    max_rows : int, optional
        Cap on the expected pilot sample size.
    label : str, optional
        Label column name recorded in the bundle.
    """
    if isinstance(X, pl.DataFrame):
        features = list(features) if features is not None else list(X.columns)
        Xm = feature_matrix(X, features)
    else:
        Xm = np.asarray(X)
        if Xm.ndim != 2:
            raise InputError(f"X must be two-dimensional, got shape {Xm.shape}")
        features = list(features) if features is not None else [f"x{j}" for j in range(Xm.shape[1])]
        if len(features) != Xm.shape[1]:
            raise InputError(f"{len(features)} feature names for {Xm.shape[1]} columns")
        if not np.isfinite(Xm).all():
            bad = int(np.flatnonzero(~np.isfinite(Xm).all(axis=0))[0])
            raise InputError(f"feature column {features[bad]!r} contains NaN or infinite values")
    yv = np.asarray(y)
    if yv.shape != (Xm.shape[0],):
        raise InputError(f"y has shape {yv.shape}, expected ({Xm.shape[0]},)")
    binary_labels(yv, "y")
    n1 = int(np.count_nonzero(yv == 1))
    n0 = int(np.count_nonzero(yv == 0))
    q1, q0 = case_control_rates(
        n1, n0, negatives_per_positive=negatives_per_positive, max_rows=max_rows
    )
    words = (
        np.arange(yv.shape[0], dtype=np.uint64)
        if keys is None
        else np.asarray(keys, dtype=np.uint64)
    )
    u = np.empty(yv.shape[0])
    K.for_rows(K.uniform_from_keys, u.size)(words, seed_mix(derive_seed(seed, "pilot")), u)
    q = np.where(yv == 1, q1, q0)
    take = u < q
    q_ref = reference_rate(n0, Xm.shape[1], Xm.dtype.itemsize)
    ref = reference_take(yv, words, seed, q_ref, take)
    return fit_case_control(
        np.ascontiguousarray(Xm[take]),
        yv[take],
        words[take],
        q1=q1,
        q0=q0,
        features=features,
        model=model,
        seed=seed,
        label=label,
        n_positive=n1,
        n_negative=n0,
        reference=(Xm[ref], words[ref], reference_weight(q_ref, q0)),
    )


def fit_case_control(
    Xs: np.ndarray,
    ys: Any,
    sample_keys: np.ndarray,
    *,
    q1: float,
    q0: float,
    features: list[str],
    model: Any = "logistic",
    seed: int = 0,
    label: str | None = None,
    n_positive: int,
    n_negative: int,
    reference: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> Pilot:
    """Fit a pilot on an already-drawn case-control sample and put it on the population scale.

    The second half of :func:`fit_pilot`, shared with the streaming
    :func:`fastsample.engines.parquet.train_pilot` (which draws the sample from Parquet batches).

    Parameters
    ----------
    Xs, ys : arrays
        Features and 0/1 labels of the sampled rows.
    sample_keys : ndarray of uint64
        Key words of the sampled rows: rows are fitted in key order (so the pilot does not
        depend on the order they arrived in), and they seed the reference subsample's stream.
    q1, q0 : float
        Keep-rates the sample was drawn with (see :func:`case_control_rates`).
    n_positive, n_negative : int
        Class counts of the whole data.
    reference : (ndarray, ndarray, float), optional
        Features and key words of the kappa reference sample (negatives drawn for kappa
        alone, outside the pilot's sample; :mod:`fastsample.core.reference`) and their common
        Horvitz–Thompson weight; stored in key order. Without it (or when it is empty) the
        pilot's own negatives serve, as in pilots of old.
    """
    # Put the rows in key order first: the fit, the information matrix and the reference
    # sample all sum over rows, and the pilot must not depend on the order in which an engine
    # (Parquet files, Spark partitions) delivered its sample: the same keyed rows, one pilot.
    sample_keys = np.asarray(sample_keys, dtype=np.uint64)
    order = np.argsort(sample_keys, kind="stable")
    Xs, sample_keys = np.ascontiguousarray(np.asarray(Xs)[order]), sample_keys[order]
    ys = np.asarray(ys)[order].astype(np.int64)
    if ys.min(initial=1) == ys.max(initial=0):
        raise InputError("the pilot's case-control sample holds only one class; use more rows")
    fitted = _make_model(model, seed)
    _fit(fitted, Xs, ys, model if isinstance(model, str) else type(model).__name__)
    pilot = Pilot(
        model=fitted,
        features=features,
        label=label,
        logit_shift=float(np.log(q0) - np.log(q1)),
        n_rows=int(n_positive + n_negative),
        n_positive=int(n_positive),
        n_negative=int(n_negative),
        meta={
            "seed": int(seed),
            "q0": q0,
            "q1": q1,
            "sample_rows": int(ys.shape[0]),
            "model": model if isinstance(model, str) else type(model).__name__,
        },
    )
    eta = pilot.logits(Xs)
    weights = np.where(ys == 1, 1.0 / q1, 1.0 / q0)
    pilot.info_inv = information_inverse(Xs, eta, weights)
    if reference is not None and np.asarray(reference[0]).shape[0] and reference[2] > 0:
        # key order: the reference (and so kappa) must not depend on the input's row order
        ref_order = np.argsort(np.asarray(reference[1], dtype=np.uint64), kind="stable")
        ref_rows = np.asarray(reference[0])[ref_order]
        pilot.reference_X = ref_rows.astype(
            np.float32 if ref_rows.dtype == np.float32 else np.float64, copy=False
        )
        pilot.reference_weight = np.full(ref_rows.shape[0], float(reference[2]))
        pilot.meta[META_KEY] = INDEPENDENT
        return pilot
    neg = ys == 0
    ref_X, ref_w = Xs[neg], weights[neg]
    if ref_X.shape[0] > MAX_REFERENCE_ROWS:
        # Keep a keyed subsample (independent of the pilot draw) and reweight it.
        sub_u = np.empty(ref_X.shape[0])
        keys_neg = np.ascontiguousarray(np.asarray(sample_keys, dtype=np.uint64)[neg])
        K.uniform_from_keys(keys_neg, seed_mix(derive_seed(seed, "pilot-reference")), sub_u)
        frac = MAX_REFERENCE_ROWS / ref_X.shape[0]
        keep = sub_u < frac
        ref_X, ref_w = ref_X[keep], ref_w[keep] / frac
    pilot.reference_X = np.asarray(
        ref_X, dtype=np.float32 if Xs.dtype == np.float32 else np.float64
    )
    pilot.reference_weight = ref_w
    return pilot
