"""The logistic function and its log-partner on NumPy arrays, overflow-free.

One home for the NumPy-side link functions; the Numba kernels keep their own scalar versions
(they cannot call NumPy ufuncs on arrays the same way). Both take an array of floats and return
float64 of the same shape.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sigmoid", "softplus"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` elementwise without overflow.

    >>> import numpy as np
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    # Each branch evaluates exp of a non-positive number, so neither overflows.
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` elementwise without overflow (so ``log sigmoid(x) = -softplus(-x)``).

    >>> import numpy as np
    >>> softplus(np.array([-1000.0, 0.0, 1000.0]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+03])
    """
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))
