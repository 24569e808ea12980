"""imbalanced-learn samplers backed by fastsample's keyed draw (needs the ``imblearn`` extra).

Both samplers are Bernoulli (Poisson) samplers: each row is kept independently, so the kept
counts are right in expectation, not exactly; imbalanced-learn's under-samplers promise
exact counts instead, hence ``_sampling_type = "bypass"``. Each row's fate depends only on
its key (the row index, or the ``key`` column) and ``seed``: the same rows come back whatever
the row order or container. NumPy, pandas and Polars inputs are returned as the same type.
After ``fit_resample`` the sampler exposes ``sample_indices_``, ``sampling_prob_``,
``sample_weight_`` and ``log_odds_offset_`` for the kept rows.
"""

from __future__ import annotations

from collections import Counter
from numbers import Integral, Real
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.optional import require
from fastsample.errors import InputError
from fastsample.models.draw import SAMPLING_CONSTRAINTS, draw_for, draw_sample

require("imblearn", "imblearn")

from imblearn.base import BaseSampler  # noqa: E402
from imblearn.utils import check_sampling_strategy  # noqa: E402
from sklearn.utils._param_validation import Interval  # noqa: E402
from sklearn.utils.multiclass import check_classification_targets  # noqa: E402
from sklearn.utils.validation import validate_data  # noqa: E402

__all__ = ["KeyedRandomUnderSampler", "NegativeSampler"]


def _kind(obj: Any) -> str:
    mod = type(obj).__module__.split(".")[0]
    if mod == "polars":
        return "polars"
    if mod == "pandas":
        return "pandas"
    return "other"


def _take(obj: Any, idx: np.ndarray) -> Any:
    kind = _kind(obj)
    if kind == "pandas":
        return obj.iloc[idx]
    if kind == "polars":
        return obj[idx]
    return np.asarray(obj)[idx]


class _KeyedSampler(BaseSampler):
    """Shared machinery: container handling, key columns, fitted attributes."""

    _sampling_type = "bypass"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.sampler_tags.sample_indices = True
        return tags

    def _check_X_y(self, X, y, accept_sparse=None):
        return super()._check_X_y(X, y, accept_sparse=False)

    def fit_resample(self, X, y, **params):
        """Resample: every row kept or dropped by its own keyed Bernoulli draw.

        Parameters
        ----------
        X : ndarray, pandas.DataFrame or polars.DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        X_resampled, y_resampled
            Same container types as the inputs, rows in their original order.
        """
        if _kind(X) not in ("pandas", "polars"):
            return super().fit_resample(X, y, **params)
        # DataFrames are sampled natively (imbalanced-learn cannot rebuild a Polars frame), so
        # that column names, dtypes and the pandas index come back untouched.
        self._validate_params()
        y_arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            y_arr = y_arr.ravel()
        check_classification_targets(y_arr)
        keys = self._key_names()
        columns = [str(c) for c in X.columns]
        missing = [k for k in keys if k not in columns]
        if missing:
            raise InputError(f"key column {missing[0]!r} not found in X")
        feats = [c for c in columns if c not in keys]
        if _kind(X) == "polars":
            Xf = X.select(feats).to_numpy()
            key_frame = X.select(keys)
        else:
            Xf = X[[c for c in X.columns if str(c) in feats]].to_numpy()
            key_frame = pl.from_pandas(X[[c for c in X.columns if str(c) in keys]])
        Xf, y_arr = validate_data(self, Xf, y_arr, dtype=[np.float64, np.float32])
        self.n_features_in_ = len(columns)
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.sampling_strategy_ = check_sampling_strategy(
            self.sampling_strategy, y_arr, self._sampling_type
        )
        frame = pl.DataFrame({n: Xf[:, j] for j, n in enumerate(feats)})
        if keys:
            frame = frame.with_columns(key_frame)
        idx = self._sample(frame, y_arr, feats)
        return _take(X, idx), _take(y, idx)

    def _key_names(self) -> list[str]:
        key = getattr(self, "key", None)
        if key is None:
            return []
        return [key] if isinstance(key, str) else list(key)

    def _fit_resample(self, X, y):
        if self._key_names():
            raise InputError("key= names a column, so X must be a pandas or Polars DataFrame")
        names = [f"x{j}" for j in range(X.shape[1])]
        frame = pl.DataFrame({n: X[:, j] for j, n in enumerate(names)})
        idx = self._sample(frame, np.asarray(y), names)
        return X[idx], y[idx]

    def _set_sample(self, drawn_idx, prob, offset):
        order = np.argsort(drawn_idx, kind="stable")
        self.sample_indices_ = np.asarray(drawn_idx)[order]
        self.sampling_prob_ = np.asarray(prob, dtype=np.float64)[order]
        self.sample_weight_ = 1.0 / self.sampling_prob_
        self.log_odds_offset_ = np.asarray(offset, dtype=np.float64)[order]
        return self.sample_indices_


def _majority(y: np.ndarray) -> Any:
    counts = Counter(y.tolist())
    # Ties go to the smallest label, so the choice never depends on row order.
    return max(sorted(counts), key=lambda c: counts[c])


class NegativeSampler(_KeyedSampler):
    """Negative sampling with fastsample's strategies, as an imbalanced-learn sampler.

    The most frequent class is the "negative" class; every row of the other classes is kept
    and each negative is kept with probability ``a_0(x)`` from the strategy (:mod:`fastsample.core.strategies`),
    scaled so that ``rate * N0`` negatives are kept in expectation.

    Parameters
    ----------
    pilot : None, str, classifier, Pilot or path, default=None
        As in :class:`~fastsample.models.classifier.NegativeSamplingClassifier`.
    strategy : {"proportional", "uniform", "opt-l", "opt-a", "lcc"}, default="proportional"
    rate : float, default=0.1
        Expected fraction of negatives kept.
    floor : float, optional
        Lower bound on every inclusion probability.
    seed : int, default=0
    key : str or list of str, optional
        Key column(s) of a DataFrame ``X`` deciding each row's draw (default: row index).
        Key columns are kept in the output but are not pilot features.

    Attributes
    ----------
    sample_indices_ : ndarray
        Kept rows of ``X``, increasing.
    sampling_prob_, sample_weight_, log_odds_offset_ : ndarray
        Per kept row: ``a_y``, ``1 / a_y`` and ``log a_1 - log a_0`` (pass the offset to an
        offset-aware learner, e.g. ``OffsetLogisticRegression.fit(..., offset=...)``).
    pilot_ : Pilot or None
    plan_ : SamplingPlan
    negative_class_ : label
        The class that was subsampled.
    """

    sampling_strategy = "auto"  # imbalanced-learn reads it; unused by a "bypass" sampler

    _parameter_constraints: dict[str, Any] = {  # noqa: RUF012
        **SAMPLING_CONSTRAINTS,
        "key": [None, str, list],
    }

    def __init__(
        self,
        pilot: Any = None,
        strategy: str = "proportional",
        rate: float = 0.1,
        floor: float | None = None,
        seed: int = 0,
        key: Any = None,
    ) -> None:
        self.pilot = pilot
        self.strategy = strategy
        self.rate = rate
        self.floor = floor
        self.seed = seed
        self.key = key

    def _sample(self, frame, y, features):
        neg = _majority(y)
        self.negative_class_ = neg
        y01 = (y != neg).astype(np.int8)
        if not y01.any():
            raise ValueError(f"y holds a single class ({neg!r}); need at least 2 classes")
        keys = self._key_names()
        drawn = draw_for(self, frame, y01, features=features, key=keys or None)
        return self._set_sample(drawn["indices"], drawn["prob"], drawn["offset"])


class KeyedRandomUnderSampler(_KeyedSampler):
    """Reproducible random under-sampling: imbalanced-learn's ``RandomUnderSampler`` semantics
    for ``sampling_strategy``, drawn with the keyed hash instead of a positional RNG.

    Each targeted class ``c`` keeps each of its rows with probability ``n_c' / n_c``
    (``n_c'`` the count asked for by ``sampling_strategy``), so counts are right in
    expectation and each row's fate depends only on its key and ``seed``.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As for :class:`imblearn.under_sampling.RandomUnderSampler`.
    seed : int, default=0
    key : str or list of str, optional
        Key column(s) of a DataFrame ``X`` (default: row index).

    Attributes
    ----------
    sample_indices_, sampling_prob_, sample_weight_ : ndarray
    log_odds_offset_ : ndarray
        For two classes, ``log a_minority - log a_majority`` per kept row (a constant: add
        ``-offset`` to a model's logit trained on the sample); NaN with more classes.
    class_rates_ : dict
        Keep probability of every class.
    """

    _parameter_constraints: dict[str, Any] = {  # noqa: RUF012
        "sampling_strategy": [Interval(Real, 0, 1, closed="right"), str, dict, callable],
        "seed": [Interval(Integral, None, None, closed="neither")],
        "key": [None, str, list],
    }

    def __init__(self, sampling_strategy: Any = "auto", seed: int = 0, key: Any = None) -> None:
        self.sampling_strategy = sampling_strategy
        self.seed = seed
        self.key = key

    def _sample(self, frame, y, features):
        classes, counts = np.unique(y, return_counts=True)
        if classes.size < 2:
            raise ValueError(f"y holds a single class ({classes[0]!r}); need at least 2 classes")
        target = check_sampling_strategy(self.sampling_strategy, y, "under-sampling")
        rates = dict.fromkeys(classes.tolist(), 1.0)
        keys = self._key_names() or None
        parts, probs = [np.flatnonzero(~np.isin(y, list(target)))], []
        probs.append(np.ones(parts[0].size))
        for c, n_keep in target.items():
            members = y == c
            n_c = int(members.sum())
            rate = n_keep / n_c
            rates[c] = rate
            if n_keep == 0:
                continue
            # Class c plays the "negatives" of a uniform negative sample at this rate.
            drawn = draw_sample(
                frame,
                (~members).astype(np.int8),
                features=features,
                pilot=None,
                strategy="uniform",
                rate=rate,
                seed=int(self.seed),
                key=keys,
            )
            mine = members[drawn["indices"]]
            parts.append(drawn["indices"][mine])
            probs.append(drawn["prob"][mine])
        self.class_rates_ = rates
        idx = np.concatenate(parts)
        prob = np.concatenate(probs)
        if classes.size == 2:
            minority = classes[np.argmin(counts)]
            majority = (
                classes[np.argmax(counts)] if minority != classes[np.argmax(counts)] else classes[1]
            )
            offset = np.full(idx.size, np.log(rates[minority]) - np.log(rates[majority]))
        else:
            offset = np.full(idx.size, np.nan)
        return self._set_sample(idx, prob, offset)
