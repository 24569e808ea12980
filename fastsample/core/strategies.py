"""Inclusion-probability strategies, the water-filling solve for kappa, and floors.

Every strategy gives each row a score ``h >= 0`` from the pilot's logit;
negatives are kept with ``a_0 = clip(kappa * h0, floor, 1)``, positives with ``a_1 = 1``
except under ``lcc`` where ``a_1 = clip(kappa * h1, floor, 1)`` with ``h1 = 1 - p~``.
``kappa`` is solved so that the expected number of kept negatives equals the target.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastsample.core import kernels as K
from fastsample.core.names import STRATEGIES
from fastsample.errors import InputError

__all__ = [
    "STRATEGIES",
    "clip_probabilities",
    "effective_floor",
    "expected_count",
    "expected_total",
    "feature_matrix",
    "inclusion_probabilities",
    "inclusion_scores",
    "information_inverse",
    "solve_kappa",
    "strategy_code",
    "water_filling",
    "water_filling_expected",
]
_CODES = {
    "uniform": K.UNIFORM,
    "proportional": K.PROPORTIONAL,
    "opt-l": K.OPT_L,
    "opt-a": K.OPT_A,
    "lcc": K.LCC,
}
_EMPTY_2D = np.zeros((0, 0), dtype=np.float64)


def strategy_code(strategy: str) -> int:
    """Kernel code of a strategy name; ``InputError`` for an unknown name."""
    try:
        return _CODES[strategy]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None


def effective_floor(floor: float | None) -> float:
    """The floor actually applied: ``floor`` validated, never below the uniforms' 2^-53."""
    if floor is None:
        return K.PI_EPS
    f = float(floor)
    if not 0.0 <= f <= 1.0 or np.isnan(f):
        raise InputError(f"floor must be in [0, 1], got {floor!r}")
    return max(f, K.PI_EPS)


def _float_1d(values: Any, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    # min and max propagate NaN and allocate nothing: a cheap screen before the slow search
    if arr.size and np.isfinite(arr.min()) and np.isfinite(arr.max()):
        return
    if arr.size and not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)][0]
        raise InputError(f"{name} contains a non-finite value ({bad})")


def feature_matrix(X: Any, n: int, strategy: str) -> np.ndarray:
    """Validate a feature matrix for opt-l / opt-a (any memory layout is accepted)."""
    if X is None:
        raise InputError(f"strategy {strategy!r} needs the feature matrix X")
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InputError(f"X must have shape ({n}, d), got {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    _check_finite(arr, "X")
    return arr


def information_inverse(X: Any, logits: Any, weights: Any = None) -> np.ndarray:
    """Inverse of the pilot's information matrix ``sum w p(1-p) z z' / sum w``, ``z = (1, x)``.

    This is the ``M~^{-1}`` of the A-optimal score; weights undo the pilot's own sampling.
    """
    eta = _float_1d(logits, "logits")
    Z = np.column_stack([np.ones(eta.shape[0]), np.asarray(X, dtype=np.float64)])
    w = np.ones(eta.shape[0]) if weights is None else _float_1d(weights, "weights")
    p = 1.0 / (1.0 + np.exp(-eta))
    v = w * p * (1.0 - p)
    M = (Z * v[:, None]).T @ Z / max(float(w.sum()), 1e-300)
    return np.linalg.pinv(M)


def inclusion_scores(
    strategy: str, logits: Any, X: Any = None, info_inv: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores ``(h0, h1)`` of each row; ``h1`` is ``None`` unless the strategy is ``lcc``.

    Parameters
    ----------
    strategy : {"uniform", "proportional", "opt-l", "opt-a", "lcc"}
    logits : array-like of float
        Pilot logits on the population scale.
    X : array-like of shape (n, d), optional
        Features, for ``opt-l`` and ``opt-a``.
    info_inv : array-like of shape (d + 1, d + 1), optional
        ``M~^{-1}`` for ``opt-a`` (see :func:`information_inverse`).
    """
    code = strategy_code(strategy)
    eta = _float_1d(logits, "logits")
    _check_finite(eta, "logits")
    n = eta.shape[0]
    Xa, Minv = _EMPTY_2D, _EMPTY_2D
    if code in (K.OPT_L, K.OPT_A):
        Xa = feature_matrix(X, n, strategy)
    if code == K.OPT_A:
        if info_inv is None:
            info_inv = information_inverse(Xa, eta)
        Minv = np.ascontiguousarray(info_inv, dtype=np.float64)
        if Minv.shape != (Xa.shape[1] + 1, Xa.shape[1] + 1):
            raise InputError(f"info_inv must have shape {(Xa.shape[1] + 1,) * 2}, got {Minv.shape}")
    h0 = np.empty(n)
    h1 = np.empty(n)
    if n:
        K.for_rows(K.strategy_scores, n)(code, eta, Xa, Minv, h0, h1)
    return h0, (h1 if code == K.LCC else None)


_UNIT = np.zeros(0)  # the kernels read an empty weight array as "every weight is 1"


def _weights(h: np.ndarray, weights: Any) -> np.ndarray:
    if weights is None:
        return _UNIT
    w = _float_1d(weights, "weights")
    if w.shape != h.shape:
        raise InputError(f"weights has {w.shape[0]} entries, scores have {h.shape[0]}")
    _check_finite(w, "weights")
    if w.size and w.min() < 0:
        raise InputError("weights must be non-negative")
    return w


def _total(h: np.ndarray, w: np.ndarray) -> float:
    return float(h.shape[0]) if w.size == 0 else float(w.sum())


def solve_kappa(h: Any, target: float, *, floor: float | None = None, weights: Any = None) -> float:
    """Water-filling: the kappa with ``sum_i w_i clip(kappa h_i, floor, 1) = target``.

    Plain "scale then clip" undershoots whenever rows clip at 1; this solves the clipped
    equation exactly (piecewise linear and monotone in kappa).

    Parameters
    ----------
    h : array-like of float
        Non-negative scores of the negatives.
    target : float
        Expected number of kept negatives wanted (``rate * N0``).
    floor : float, optional
        Lower bound on each probability.
    weights : array-like, optional
        Row weights, e.g. Horvitz–Thompson weights when ``h`` comes from a sample, or bin
        counts when ``h`` are histogram centres.

    Returns
    -------
    float
        kappa. When the target is unreachable (every row with ``h > 0`` already at 1), the
        smallest kappa that keeps all of them; check with :func:`expected_count`.

    Examples
    --------
    >>> h = np.array([1.0, 1.0, 10.0])
    >>> k = solve_kappa(h, target=1.5)
    >>> round(expected_count(h, k), 12)
    1.5
    """
    return water_filling(h, target, effective_floor(floor), weights=weights, floor=floor)


def water_filling(
    h: Any, target: float, floor_value: float, *, weights: Any = None, floor: Any = None
) -> float:
    """:func:`solve_kappa` for a floor already resolved by :func:`effective_floor`.

    The scores, weights and target are checked here; ``floor`` (as asked) only words the
    error when the floor alone exceeds the target.
    """
    return water_filling_expected(h, target, floor_value, weights=weights, floor=floor)[0]


def water_filling_expected(
    h: Any, target: float, floor_value: float, *, weights: Any = None, floor: Any = None
) -> tuple[float, float]:
    """:func:`water_filling` and the expected count at its kappa, bit for bit
    :func:`expected_total`'s (the solver's last pass gives it when it can)."""
    hv = _float_1d(h, "scores")
    # min and max (NaN propagates) are the finiteness and sign checks and, for the usual
    # all-positive scores, k_max: no boolean mask or copy of the n scores
    lo_h = float(hv.min()) if hv.size else 0.0
    hi_h = float(hv.max()) if hv.size else 0.0
    if not (np.isfinite(lo_h) and np.isfinite(hi_h)):
        _check_finite(hv, "scores")
    if lo_h < 0:
        raise InputError("scores must be non-negative")
    w = _weights(hv, weights)
    f = floor_value
    t = float(target)
    if not np.isfinite(t) or t < 0:
        raise InputError(f"target must be a non-negative number, got {target!r}")
    total_w = _total(hv, w)
    if not hi_h > 0 or total_w == 0.0 or t == 0.0:
        return 1.0, expected_total(hv, w, 1.0, f)
    min_positive = lo_h if lo_h > 0 else float(hv[hv > 0].min())
    with np.errstate(over="ignore", divide="ignore"):
        k_max = 1.0 / min_positive
    if not np.isfinite(k_max):  # subnormal scores
        k_max = float(np.finfo(np.float64).max)
    if not _below_every_row_kept(hv, w, lo_h, t):
        g_max = K.for_rows(K.expected_count, hv.size)(hv, w, k_max, f)
        if t >= g_max:
            return k_max, g_max
    g_min = f * total_w
    if t <= g_min:
        raise InputError(
            f"floor {floor} alone keeps {g_min:.6g} expected negatives, above the target {t:.6g}"
        )
    out = np.zeros(1)
    kappa = float(K.for_rows(K.solve_kappa, hv.size)(hv, w, t, f, k_max, out))
    return kappa, float(out[0])


def _below_every_row_kept(h: np.ndarray, w: np.ndarray, lo_h: float, target: float) -> bool:
    """Whether ``target`` is surely below g(k_max), the count at which every row is kept.

    At ``k_max = 1 / min(h)`` each term of g is 1 up to two roundings, and the sum adds at most
    ``n`` more: with unit weights and positive scores ``g(k_max) >= n (1 - n 2^-50)``, so the
    pass that computes g(k_max) is needed only for targets that close to ``n``.
    """
    n = h.shape[0]
    return w.size == 0 and lo_h > 0 and n < 2**40 and target < n * (1.0 - n * 2.0**-50)


def expected_total(h: np.ndarray, w: np.ndarray, kappa: float, floor_value: float) -> float:
    """``sum_i w_i clip(kappa h_i, floor_value, 1)`` for float64 arrays and a resolved floor.

    An empty ``w`` means unit weights.
    """
    return float(K.for_rows(K.expected_count, h.size)(h, w, float(kappa), floor_value))


def expected_count(
    h: Any, kappa: float, *, floor: float | None = None, weights: Any = None
) -> float:
    """``sum_i w_i clip(kappa h_i, floor, 1)``: expected kept count at this kappa."""
    hv = _float_1d(h, "scores")
    w = _weights(hv, weights)
    return float(K.for_rows(K.expected_count, hv.size)(hv, w, float(kappa), effective_floor(floor)))


def clip_probabilities(h: np.ndarray, kappa: float, floor: float | None) -> np.ndarray:
    """``clip(kappa h, floor, 1)`` exactly as the draw kernels compute it."""
    return np.clip(kappa * h, effective_floor(floor), 1.0)


def inclusion_probabilities(
    strategy: str,
    logits: Any,
    *,
    kappa: float,
    floor: float | None = None,
    X: Any = None,
    info_inv: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inclusion probabilities ``(a0, a1)`` of each row as a negative and as a positive.

    Parameters
    ----------
    strategy, logits, X, info_inv
        As in :func:`inclusion_scores`.
    kappa : float
        Scale from :func:`solve_kappa`.
    floor : float, optional
        Lower bound on every probability.

    Returns
    -------
    a0, a1 : numpy.ndarray
        ``a1`` is all ones except under ``lcc``.
    """
    h0, h1 = inclusion_scores(strategy, logits, X, info_inv)
    a0 = clip_probabilities(h0, kappa, floor)
    a1 = np.ones_like(a0) if h1 is None else clip_probabilities(h1, kappa, floor)
    return a0, a1


def undersampling_rate(
    n_positive: float, n_negative: float, negatives_per_positive: float
) -> float:
    """Keep-rate of negatives that gives ``negatives_per_positive`` kept negatives per positive
    in expectation: ``min(1, ratio * N1 / N0)``."""
    try:
        r = float(negatives_per_positive)
    except (TypeError, ValueError):
        raise InputError(
            f"negatives_per_positive must be a number, got {negatives_per_positive!r}"
        ) from None
    if not (r > 0 and math.isfinite(r)):
        raise InputError(f"negatives_per_positive must be > 0, got {negatives_per_positive!r}")
    if n_positive <= 0:
        raise InputError("label: no positive rows; nothing to balance against")
    if n_negative <= 0:
        raise InputError("label: no negative rows to undersample")
    return min(1.0, r * n_positive / n_negative)
