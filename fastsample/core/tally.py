"""The honest count: true expected kept rows over the input, their variance, and the verdict.

The engine's sampling pass adds, per batch, ``sum a`` and ``sum a (1 - a)`` over the negatives
(and, under ``lcc``, over the positives) at the plan's kappa: the expected number of kept rows
and its Bernoulli variance, over every input row, whatever way kappa was found. A report then
states the target ``rate * N0``, that true expected count, the realised count, and the
z-score of realised vs expected; :func:`rate_warning` gives one line when the realised or the
expected count is off the target beyond the tolerance ``max(3%, 4 SE)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastsample.core.numba_config import serial_kernel

#: Relative tolerance of the kept count around the target (issue 11): max(3%, 4 SE).
RELATIVE_TOLERANCE = 0.03
Z_TOLERANCE = 4.0


@serial_kernel
def _sums(h0, h1, y, kappa, floor, out):
    """out += (sum a0, sum a0 (1 - a0)) over negatives, (sum a1, sum a1 (1 - a1)) over
    positives; ``h1 < 0`` marks a positive kept with probability 1 (as in the draw kernels)."""
    s0 = v0 = s1 = v1 = 0.0
    for i in range(y.shape[0]):
        if y[i] == 0:
            a = min(1.0, max(floor, kappa * h0[i]))
            s0 += a
            v0 += a * (1.0 - a)
        else:
            a = 1.0 if h1[i] < 0 else min(1.0, max(floor, kappa * h1[i]))
            s1 += a
            v1 += a * (1.0 - a)
    out[0] += s0
    out[1] += v0
    out[2] += s1
    out[3] += v1


@dataclass
class ExpectedTally:
    """Running sums of the inclusion probabilities over the input rows."""

    negatives: float = 0.0
    negatives_var: float = 0.0
    positives: float = 0.0
    positives_var: float = 0.0

    def add(
        self, h0: np.ndarray, h1: np.ndarray, y: np.ndarray, kappa: float, floor: float
    ) -> None:
        """Add one batch: scores ``(h0, h1)`` as the draw uses them, 0/1 labels ``y``."""
        out = np.zeros(4)
        if y.shape[0]:
            _sums(h0, h1, y, float(kappa), float(floor), out)
        self.negatives += float(out[0])
        self.negatives_var += float(out[1])
        self.positives += float(out[2])
        self.positives_var += float(out[3])

    def add_constant(self, n_negative: int, a0: float, n_positive: int) -> None:
        """Add rows whose probabilities are known without scores (uniform, no pilot)."""
        self.negatives += n_negative * a0
        self.negatives_var += n_negative * a0 * (1.0 - a0)
        self.positives += float(n_positive)


def z_score(realised: float, expected: float, variance: float) -> float:
    """``(realised - expected) / sqrt(variance)``; 0 when both agree and the variance is 0."""
    if variance > 0.0:
        return (realised - expected) / math.sqrt(variance)
    return 0.0 if realised == expected else math.copysign(math.inf, realised - expected)


def tolerance(target: float, variance: float) -> float:
    """Allowed ``|count - target|``: ``max(3% of the target, 4 standard errors)``."""
    return max(RELATIVE_TOLERANCE * target, Z_TOLERANCE * math.sqrt(max(variance, 0.0)))


def rate_warning(
    target: float,
    expected: float,
    realised: float,
    variance: float,
    method: str,
    *,
    grouped: bool = False,
) -> str | None:
    """One line when the kept negatives miss the target beyond :func:`tolerance`, else None.

    Either the expected count at the kappa used is off the target by more than 3% (a kappa
    problem: the line names ``--exact``), or the realised count is off by more than the
    tolerance although the expected count is not (more than chance allows for independent
    rows: a repeated key, say). Under group sampling (``grouped``) the row-level variance does
    not apply, so only the first is said.
    """
    if target <= 0.0:
        return None
    if abs(expected - target) > RELATIVE_TOLERANCE * target:
        hint = (
            "the exact pass gave this kappa, so the target is out of reach with these "
            "probabilities (they clip at 1 or at the floor)"
            if method == "exact"
            else "rerun with --exact (exact=True) to solve kappa over every row"
        )
        return (
            f"kept {realised:,.0f} negatives for a target of {target:,.0f} "
            f"({realised / target - 1.0:+.1%}); the expected count at this kappa is "
            f"{expected:,.1f} ({expected / target - 1.0:+.1%}); {hint}"
        )
    tol = tolerance(target, variance)
    if grouped or abs(realised - target) <= tol:
        return None
    z = z_score(realised, expected, variance)
    return (
        f"kept {realised:,.0f} negatives for a target of {target:,.0f} "
        f"({realised / target - 1.0:+.1%}, z = {z:+.1f} against the expected {expected:,.1f}): "
        "more than chance allows for independent rows; is the key unique?"
    )
