"""Numba loops for the (weighted) logistic likelihood with a per-row offset.

Model: ``eta_i = x_i . coef + intercept + offset_i`` and ``p_i = sigmoid(eta_i)``.
Loss: ``sum_i w_i * (log(1 + exp(eta_i)) - y_i * eta_i)`` (negative log-likelihood).

Every kernel trusts its inputs (the wrapper in ``models/estimators.py`` validates), accepts float32 or
float64 ``X`` and accumulates in float64. Parameter layout: the gradient and the Hessian have
``d + 1`` entries, the last one for the intercept; the caller drops it when there is no
intercept.

Rows are processed in fixed blocks of ``BLOCK`` rows whose partial sums are added in block
order, so the bits of the result never depend on the number of threads. Small inputs take a
serial driver (same blocks, same order, same bits): waking a thread pool costs more than the
work there, especially on a busy machine. Build flags: ``numba_config.py``; the logistic
function is the kernels' one ``softplus_sigmoid``; NumPy twins: ``testing/reference_glm.py``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from fastsample.core.kernels import softplus_sigmoid
from fastsample.core.numba_config import helper, parallel_kernel, serial_kernel, serial_twin

BLOCK = 8192
# At or below this many blocks the serial driver is used.
SERIAL_BLOCKS = 4


@helper
def _eta(X, i, coef, intercept, offset):
    s = intercept + offset[i]
    for j in range(X.shape[1]):
        s += X[i, j] * coef[j]
    return s


@helper
def _row_loss_resid(X, y, sample_weight, offset, coef, intercept, i):
    # The loss and gradient kernels must see the same per-row terms, computed in the same
    # order, or the Newton and L-BFGS paths would drift apart in the last bits.
    eta = _eta(X, i, coef, intercept, offset)
    w = sample_weight[i]
    lo1p, p = softplus_sigmoid(eta)
    return w, p, w * (lo1p - y[i] * eta), w * (p - y[i])


@serial_kernel
def _block_loss_grad(X, y, sample_weight, offset, coef, intercept, lo, hi, acc):
    d = X.shape[1]
    for i in range(lo, hi):
        _, _, loss_i, r = _row_loss_resid(X, y, sample_weight, offset, coef, intercept, i)
        acc[d + 1] += loss_i
        for j in range(d):
            acc[j] += r * X[i, j]
        acc[d] += r


@serial_kernel
def _block_loss_grad_hess(X, y, sample_weight, offset, coef, intercept, lo, hi, g, h):
    d = X.shape[1]
    for i in range(lo, hi):
        w, p, loss_i, r = _row_loss_resid(X, y, sample_weight, offset, coef, intercept, i)
        g[d + 1] += loss_i
        v = w * p * (1.0 - p)
        for j in range(d):
            xj = X[i, j]
            g[j] += r * xj
            vx = v * xj
            for m in range(j + 1):
                h[j, m] += vx * X[i, m]
            h[d, j] += vx
        g[d] += r
        h[d, d] += v


@serial_kernel
def _block_score_outer(X, y, sample_weight, offset, coef, intercept, lo, hi, h):
    d = X.shape[1]
    for i in range(lo, hi):
        eta = _eta(X, i, coef, intercept, offset)
        _, p = softplus_sigmoid(eta)
        r = sample_weight[i] * (y[i] - p)
        v = r * r
        for j in range(d):
            vx = v * X[i, j]
            for m in range(j + 1):
                h[j, m] += vx * X[i, m]
            h[d, j] += vx
        h[d, d] += v


@parallel_kernel
def _par_loss_grad(X, y, sample_weight, offset, coef, intercept, part):
    n = X.shape[0]
    for b in prange(part.shape[0]):
        lo = b * BLOCK
        hi = min(n, lo + BLOCK)
        _block_loss_grad(X, y, sample_weight, offset, coef, intercept, lo, hi, part[b])


@parallel_kernel
def _par_loss_grad_hess(X, y, sample_weight, offset, coef, intercept, gpart, hpart):
    n = X.shape[0]
    for b in prange(gpart.shape[0]):
        lo = b * BLOCK
        hi = min(n, lo + BLOCK)
        _block_loss_grad_hess(
            X, y, sample_weight, offset, coef, intercept, lo, hi, gpart[b], hpart[b]
        )


@parallel_kernel
def _par_score_outer(X, y, sample_weight, offset, coef, intercept, hpart):
    n = X.shape[0]
    for b in prange(hpart.shape[0]):
        lo = b * BLOCK
        hi = min(n, lo + BLOCK)
        _block_score_outer(X, y, sample_weight, offset, coef, intercept, lo, hi, hpart[b])


# the serial drivers: the same loops compiled without parallel=True (same blocks, same bits)
_ser_loss_grad = serial_twin(_par_loss_grad)
_ser_loss_grad_hess = serial_twin(_par_loss_grad_hess)
_ser_score_outer = serial_twin(_par_score_outer)


@serial_kernel
def _symmetrize_sum(hpart, out):
    k = out.shape[0]
    for j in range(k):
        for m in range(k):
            out[j, m] = 0.0
    for b in range(hpart.shape[0]):
        for j in range(k):
            for m in range(j + 1):
                out[j, m] += hpart[b, j, m]
    for j in range(k):
        for m in range(j):
            out[m, j] = out[j, m]


@serial_kernel
def offset_logistic_loss_grad(X, y, sample_weight, offset, coef, intercept, grad_out):
    """Weighted negative log-likelihood; its gradient goes into ``grad_out`` (length d + 1)."""
    n, d = X.shape
    nblocks = (n + BLOCK - 1) // BLOCK
    part = np.zeros((nblocks, d + 2))
    if nblocks <= SERIAL_BLOCKS:
        _ser_loss_grad(X, y, sample_weight, offset, coef, intercept, part)
    else:
        _par_loss_grad(X, y, sample_weight, offset, coef, intercept, part)
    loss = 0.0
    for j in range(d + 1):
        grad_out[j] = 0.0
    for b in range(nblocks):
        for j in range(d + 1):
            grad_out[j] += part[b, j]
        loss += part[b, d + 1]
    return loss


@serial_kernel
def offset_logistic_loss_grad_hess(
    X, y, sample_weight, offset, coef, intercept, grad_out, hess_out
):
    """Loss, gradient and Hessian ``X~' diag(w p (1 - p)) X~`` (X~ = [X, 1]) in one pass."""
    n, d = X.shape
    k = d + 1
    nblocks = (n + BLOCK - 1) // BLOCK
    gpart = np.zeros((nblocks, k + 1))
    hpart = np.zeros((nblocks, k, k))
    if nblocks <= SERIAL_BLOCKS:
        _ser_loss_grad_hess(X, y, sample_weight, offset, coef, intercept, gpart, hpart)
    else:
        _par_loss_grad_hess(X, y, sample_weight, offset, coef, intercept, gpart, hpart)
    loss = 0.0
    for j in range(k):
        grad_out[j] = 0.0
    for b in range(nblocks):
        loss += gpart[b, k]
        for j in range(k):
            grad_out[j] += gpart[b, j]
    _symmetrize_sum(hpart, hess_out)
    return loss


@serial_kernel
def offset_logistic_score_outer(X, y, sample_weight, offset, coef, intercept, out):
    """Outer product of the per-row scores, ``sum_i (w_i (y_i - p_i))^2 x~_i x~_i'``.

    The "meat" of the sandwich covariance for weighted fits.
    """
    n, d = X.shape
    k = d + 1
    nblocks = (n + BLOCK - 1) // BLOCK
    hpart = np.zeros((nblocks, k, k))
    if nblocks <= SERIAL_BLOCKS:
        _ser_score_outer(X, y, sample_weight, offset, coef, intercept, hpart)
    else:
        _par_score_outer(X, y, sample_weight, offset, coef, intercept, hpart)
    _symmetrize_sum(hpart, out)


@parallel_kernel
def _par_linear_predictor(X, coef, intercept, offset, out):
    for i in prange(X.shape[0]):
        out[i] = _eta(X, i, coef, intercept, offset)


_ser_linear_predictor = serial_twin(_par_linear_predictor)


@serial_kernel
def linear_predictor(X, coef, intercept, offset, out):
    """``out_i = x_i . coef + intercept + offset_i`` (the logit), in float64."""
    n = X.shape[0]
    if n <= SERIAL_BLOCKS * BLOCK:
        _ser_linear_predictor(X, coef, intercept, offset, out)
    else:
        _par_linear_predictor(X, coef, intercept, offset, out)
