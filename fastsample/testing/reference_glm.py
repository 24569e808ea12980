"""Naive NumPy twins of the kernels in ``core/glm_kernels.py`` (same signatures).

Obviously correct and not fast: they are the test oracles and the benchmark baselines.
"""

from __future__ import annotations

import numpy as np

from fastsample.core.logistic import sigmoid, softplus


def _design(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.asarray(X, dtype=np.float64), np.ones(X.shape[0])])


def _eta(X, coef, intercept, offset) -> np.ndarray:
    return np.asarray(X, dtype=np.float64) @ np.asarray(coef, dtype=np.float64) + intercept + offset


def offset_logistic_loss_grad(X, y, sample_weight, offset, coef, intercept, grad_out):
    """Weighted negative log-likelihood; gradient written into ``grad_out`` (length d + 1)."""
    eta = _eta(X, coef, intercept, offset)
    p = sigmoid(eta)
    grad_out[:] = _design(X).T @ (sample_weight * (p - y))
    return float(np.sum(sample_weight * (softplus(eta) - y * eta)))


def offset_logistic_loss_grad_hess(
    X, y, sample_weight, offset, coef, intercept, grad_out, hess_out
):
    """Loss, gradient and Hessian ``X~' diag(w p (1 - p)) X~``."""
    loss = offset_logistic_loss_grad(X, y, sample_weight, offset, coef, intercept, grad_out)
    eta = _eta(X, coef, intercept, offset)
    p = sigmoid(eta)
    Z = _design(X)
    hess_out[:, :] = (Z * (sample_weight * p * (1.0 - p))[:, None]).T @ Z
    return loss


def offset_logistic_score_outer(X, y, sample_weight, offset, coef, intercept, out):
    """``sum_i (w_i (y_i - p_i))^2 x~_i x~_i'``."""
    eta = _eta(X, coef, intercept, offset)
    p = sigmoid(eta)
    S = _design(X) * (sample_weight * (y - p))[:, None]
    out[:, :] = S.T @ S


def linear_predictor(X, coef, intercept, offset, out):
    """``out_i = x_i . coef + intercept + offset_i``."""
    out[:] = _eta(X, coef, intercept, offset)
