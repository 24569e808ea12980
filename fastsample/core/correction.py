"""Offsets, weights and the post-hoc correction that undo the sampling.

Sign convention. On kept rows ``logit P(y=1 | x, kept) = logit p(x) + o(x)`` with the
log-odds offset ``o = log a_1 - log a_0`` (``-log pi`` for negative sampling). So

* a model fitted *with* the offset is already on the population scale: serve it as is;
* a model fitted *without* it learned ``logit p + o``: subtract the offset,
  ``logit p = s - o`` (i.e. ``+ log pi``). The seed tutorial adds it instead — wrong sign.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastsample.core import kernels as K
from fastsample.core.pilot import feature_matrix
from fastsample.core.strategies import inclusion_probabilities
from fastsample.errors import InputError


def _pair(
    values: Any, offset: Any, name: str, *, check_nan: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values)
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(np.float64)
    if v.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {v.shape}")
    o = np.asarray(offset)
    if o.dtype not in (np.float32, np.float64):
        o = o.astype(np.float64)
    if o.ndim == 0:
        o = np.broadcast_to(o, v.shape)
    if o.shape != v.shape:
        raise InputError(f"offset has shape {o.shape}, {name} has {v.shape}")
    # min/max propagate NaN and need no temporaries: cheaper than elementwise masks
    if check_nan and o.size and np.isnan(o.min()):
        raise InputError("offset contains NaN")
    return v, o


def log_odds_offset(a0: Any, a1: Any = None) -> np.ndarray:
    """Log-odds offset ``log a_1 - log a_0``; with ``a1=None`` (negative sampling) ``-log a_0``.

    Parameters
    ----------
    a0 : array-like
        Probability that the row would be kept as a negative (in (0, 1]).
    a1 : array-like, optional
        Probability that it would be kept as a positive (1 when omitted).
    """
    a0 = np.asarray(a0, dtype=np.float64)
    if a0.size and ((a0 <= 0) | (a0 > 1) | np.isnan(a0)).any():
        raise InputError("inclusion probabilities must lie in (0, 1]")
    if a1 is None:
        return -np.log(a0)
    a1 = np.asarray(a1, dtype=np.float64)
    if a1.size and ((a1 <= 0) | (a1 > 1) | np.isnan(a1)).any():
        raise InputError("inclusion probabilities must lie in (0, 1]")
    return np.log(a1) - np.log(a0)


def correct_log_odds(log_odds: Any, offset: Any) -> np.ndarray:
    """Population log-odds of a model trained on the sample *without* an offset.

    Parameters
    ----------
    log_odds : array-like
        The model's log-odds (decision function) on the sampled scale.
    offset : array-like or float
        ``log_odds_offset`` of the same rows (for uniform negative sampling at rate ``r``
        the constant ``-log r``).

    Returns
    -------
    numpy.ndarray
        ``log_odds - offset``.

    Examples
    --------
    >>> correct_log_odds([0.0], -np.log(0.01)).round(4)
    array([-4.6052])
    """
    v, o = _pair(log_odds, offset, "log_odds")
    out = np.empty(v.shape[0], dtype=np.float64)
    if out.size:
        K.for_rows(K.correct_log_odds, out.size)(v, o, out)
    return out


def correct_proba(proba: Any, offset: Any) -> np.ndarray:
    """Population probabilities of a model trained on the sample *without* an offset.

    ``sigmoid(logit(p) - offset)``, evaluated without forming ``logit(p)`` so that
    probabilities of exactly 0 or 1 stay 0 or 1. For a uniform rate ``w`` this is
    He et al.'s ``q = p / (p + (1 - p) / w)``.

    Parameters
    ----------
    proba : array-like
        Sampled-scale probabilities in [0, 1].
    offset : array-like or float
        ``log_odds_offset`` of the same rows.

    Examples
    --------
    >>> correct_proba([0.5], -np.log(0.01)).round(6)
    array([0.009901])
    """
    v, o = _pair(proba, offset, "proba", check_nan=False)
    out = np.empty(v.shape[0], dtype=np.float64)
    # the kernel checks the inputs as it goes: no separate passes over them
    if out.size and K.for_rows(K.correct_proba, out.size)(v, o, out):
        if np.isnan(o).any():
            raise InputError("offset contains NaN")
        raise InputError("probabilities must lie in [0, 1]")
    return out


_PLAN_FIELDS = ("strategy", "kappa", "floor")


def sampling_offsets(pilot: Any, data: Any, plan: Any) -> np.ndarray:
    """The log-odds offset ``o(x)`` the sampling gives rows of ``data``, e.g. new rows to serve.

    A model fitted on a sample *without* the offset needs ``o(x)`` of every row it scores,
    not only of the kept rows: ``correct_proba(model.predict_proba(X)[:, 1],
    sampling_offsets(pilot, X, plan))``. ``o(x) = log a_1(x) - log a_0(x)`` depends on ``x``
    alone (not on the label), through the pilot, the strategy, kappa and the floor.

    Parameters
    ----------
    pilot : fastsample.core.pilot.Pilot or None
        The pilot the sample was drawn with (None for ``uniform`` without one).
    data : polars.DataFrame or 2-D array
        Rows holding the pilot's features (in the pilot's order for an array).
    plan : SamplingPlan or dict
        The plan, or its record in the sample's metadata
        (``fastsample.engines.sinks.read_metadata(path)["plan"]``): ``strategy``, ``kappa``,
        ``floor``.

    Returns
    -------
    numpy.ndarray of float64
    """
    fields = plan if isinstance(plan, dict) else {k: getattr(plan, k) for k in _PLAN_FIELDS}
    strategy, kappa, floor = str(fields["strategy"]), float(fields["kappa"]), fields["floor"]
    if pilot is None:
        if strategy != "uniform":
            raise InputError(f"strategy {strategy!r} needs the pilot to compute offsets")
        n = data.height if hasattr(data, "height") else np.asarray(data).shape[0]
        return np.full(n, -np.log(min(1.0, max(kappa, K.PI_EPS if floor is None else floor))))
    X = feature_matrix(data, pilot.features) if hasattr(data, "columns") else np.asarray(data)
    a0, a1 = inclusion_probabilities(
        strategy, pilot.logits(X), kappa=kappa, floor=floor, X=X, info_inv=pilot.info_inv
    )
    return np.log(a1) - np.log(a0)
