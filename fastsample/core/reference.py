"""The kappa reference sample: negatives drawn for the one-pass kappa, and how precise it is.

The one-pass engine solves kappa on a weighted sample of negatives instead of all of them.
That sample used to be the negatives of the pilot's own case-control sample (about as many as
the positives): too few to see the right tail of heavy-tailed scores, and, for a flexible
pilot, the very rows it was fitted on, whose scores are biased low. On a field-like log with
1,000 positives the realised count then missed the target by +10% (opt-a, linear pilot) to
+390% (a tree pilot) (issue 11; ``scripts/rate_drift.py``).

The reference sample here is drawn for kappa alone, in the pilot's pass over the data:

- negatives kept with probability ``q = reference_rate(N0, d)`` on their own stream
  ``derive_seed(seed, "kappa-reference")`` (independent of the pilot draw and of the sampling
  seed's uniforms), up to :data:`REFERENCE_ROWS` rows and :data:`REFERENCE_BYTES` of features;
- excluding the pilot's training rows (so a model's fit to its own rows cannot bias it); a
  negative is in it with probability ``q (1 - q0)``, its Horvitz–Thompson weight.

:func:`relative_error` estimates the relative standard error of the expected kept count that
results from solving kappa on it; the engine solves kappa exactly over every row instead when
that error could break the tolerance (:data:`MAX_RELATIVE_ERROR`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastsample.core import kernels as K
from fastsample.core.hashing import derive_seed, seed_mix

#: Cap on the reference sample's rows: a relative error of the expected count of about
#: ``CV(a) / sqrt(200,000)``: 0.2-0.6% for the coefficients of variation (1-2.5) seen so far.
REFERENCE_ROWS = 200_000
#: Cap on the reference sample's feature bytes (it is stored in the pilot file).
REFERENCE_BYTES = 32 << 20
#: Relative standard error of the expected count above which one pass is not trusted (unless it
#: is small against the draw's own noise, see :func:`error_limit`): at 0.75%, the kappa error
#: stays within the 3% tolerance at 4 standard errors. (On the 30M-row benchmark log the
#: proportional strategy's 200,000-row reference gives 0.56%.)
MAX_RELATIVE_ERROR = 0.0075
#: ``Pilot.meta`` key recording how the reference sample was drawn.
META_KEY = "kappa_reference"
INDEPENDENT = "independent"


def reference_rate(n_negative: int, n_features: int, itemsize: int = 8) -> float:
    """Keep-rate ``q`` of the negatives in the reference sample (at most 1)."""
    rows = min(REFERENCE_ROWS, REFERENCE_BYTES // max(1, n_features * itemsize))
    return min(1.0, rows / max(1, n_negative))


def reference_take(
    y: np.ndarray, words: np.ndarray, seed: int, q: float, pilot_take: np.ndarray
) -> np.ndarray:
    """Mask of the rows in the reference sample: negatives with ``u < q`` on the reference
    stream that are not in the pilot's sample (``pilot_take``)."""
    u = np.empty(words.shape[0])
    if u.size:
        mix = seed_mix(derive_seed(seed, "kappa-reference"))
        K.for_rows(K.uniform_from_keys, u.size)(np.ascontiguousarray(words), mix, u)
    return (np.asarray(y) == 0) & (u < q) & ~np.asarray(pilot_take, dtype=bool)


def reference_weight(q: float, q0: float) -> float:
    """Horvitz–Thompson weight of a reference row: ``1 / (q (1 - q0))``."""
    p = q * (1.0 - q0)
    return 1.0 / p if p > 0 else 0.0


def relative_error(h: Any, weights: Any, kappa: float, floor: float) -> float:
    """Estimated relative standard error of the expected kept count, kappa solved on a sample.

    ``h`` are the sample's scores and ``weights`` their Horvitz–Thompson weights (rows were
    drawn independently with probability ``1 / weight``). The kappa solve makes the ratio
    estimate ``N0 * mean_w(a)`` equal the target, so the true expected count differs from the
    target by about the ratio estimator's error: relative variance
    ``sum w (w - 1) (a - abar)^2 / (sum w a)^2``.
    """
    hv = np.asarray(h, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if hv.size == 0:
        return math.inf
    a = np.clip(kappa * hv, floor, 1.0)
    total = float(np.sum(w * a))
    if total <= 0.0:
        return math.inf
    abar = total / float(w.sum())
    var = float(np.sum(w * np.maximum(w - 1.0, 0.0) * (a - abar) ** 2))
    return math.sqrt(var) / total


def is_independent(pilot: Any) -> bool:
    """Whether the pilot's reference sample was drawn for kappa (not its training negatives)."""
    meta = getattr(pilot, "meta", None) or {}
    return meta.get(META_KEY) == INDEPENDENT


def error_limit(target: float) -> float:
    """Largest acceptable relative error of the one-pass expected count for ``target``.

    :data:`MAX_RELATIVE_ERROR`, or half the draw's own relative noise ``1 / sqrt(target)``
    when that is larger (small inputs, where the realised count's tolerance is 4 SE): the
    kappa error then adds at most 12% to the realised count's spread.
    """
    return max(MAX_RELATIVE_ERROR, 0.5 / math.sqrt(target)) if target > 0 else math.inf


def one_pass_problem(pilot: Any, rel_error: float, target: float) -> str | None:
    """Why the one-pass kappa cannot be trusted for this pilot, or None when it can."""
    if not is_independent(pilot) and pilot.linear is None:
        return (
            "the pilot's reference negatives are its own training rows, whose scores a "
            "non-linear model fits too well"
        )
    limit = error_limit(target)
    if not rel_error <= limit:
        return (
            f"the reference sample gives the expected count only to {rel_error:.2%} "
            f"(limit {limit:.2%})"
        )
    return None
