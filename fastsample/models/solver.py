"""The one solver of the offset logistic likelihood, shared by every model that fits it.

Minimises ``(sum_i w_i [log(1 + exp(eta_i)) - y_i eta_i] + alpha ||coef||^2 / 2) / sum_i w_i``
with ``eta_i = x_i . coef + intercept + offset_i`` (the intercept is never penalised), by
SciPy's trust-region Newton method with the exact Hessian (``trust-exact``; one fused data pass
per iteration) or by L-BFGS-B on the loss and gradient. Used by
:class:`fastsample.models.offset_logistic.OffsetLogisticRegression` (cold start) and
:class:`fastsample.models.online.SlidingWindowLearner` (warm-started from its last state).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, optimize

from fastsample.core import glm_kernels as gk

__all__ = ["OffsetLogisticSolution", "cold_start", "solve_offset_logistic"]


@dataclass(frozen=True)
class OffsetLogisticSolution:
    """What :func:`solve_offset_logistic` found.

    Attributes
    ----------
    coef : ndarray of shape (n_features,)
    intercept : float
        0.0 when no intercept was fitted.
    theta : ndarray
        ``(coef..., intercept)``, the solver's layout (intercept last, only when fitted).
    n_iter : int
    converged : bool
        SciPy reported success, or the remaining predicted decrease is below floating-point
        resolution (see :func:`_at_optimum`).
    message : str
        SciPy's message.
    hessian : ndarray of shape (theta.size, theta.size) or None
        Penalised Hessian of the *summed* objective at ``theta`` (not divided by the weight);
        None unless asked for.
    """

    coef: np.ndarray
    intercept: float
    theta: np.ndarray
    n_iter: int
    converged: bool
    message: str
    hessian: np.ndarray | None


def cold_start(y01: np.ndarray, w: np.ndarray, off: np.ndarray, d: int, fit_intercept: bool):
    """Starting point: zero coefficients and the intercept of the constant model.

    The intercept ignores the offset's spread (its weighted mean only): that puts Newton inside
    its quadratic region for rare events.
    """
    theta0 = np.zeros(d + int(fit_intercept))
    if fit_intercept:
        pbar = float(np.clip(np.average(y01, weights=w), 1e-12, 1 - 1e-12))
        theta0[d] = np.log(pbar / (1.0 - pbar)) - float(np.average(off, weights=w))
    return theta0


def solve_offset_logistic(
    X: np.ndarray,
    y01: np.ndarray,
    w: np.ndarray,
    off: np.ndarray,
    *,
    alpha: float = 0.0,
    fit_intercept: bool = True,
    theta0: np.ndarray | None = None,
    method: str = "newton",
    tol: float = 1e-8,
    max_iter: int = 100,
    with_hessian: bool = True,
) -> OffsetLogisticSolution:
    """Minimise the weighted, L2-penalised offset logistic loss.

    Parameters
    ----------
    X : ndarray of shape (n, d), C-contiguous float32 or float64
    y01 : ndarray of shape (n,), float64 0/1 labels
    w : ndarray of shape (n,), non-negative float64 weights with a positive sum
    off : ndarray of shape (n,), float64 offsets
    alpha : float
        L2 penalty on the coefficients (``1 / C``); 0 for the maximum-likelihood estimate.
    fit_intercept : bool
    theta0 : ndarray, optional
        Starting point in the solver's layout (``(coef..., intercept)``); default
        :func:`cold_start`. A warm start from a nearby optimum needs one or two Newton steps.
    method : {"newton", "lbfgs"}
    tol : float
        Gradient-norm tolerance on the objective divided by the total weight.
    max_iter : int
    with_hessian : bool
        Compute the Hessian at the solution (for standard errors; may cost one more pass).

    Returns
    -------
    OffsetLogisticSolution
    """
    d = X.shape[1]
    fi = bool(fit_intercept)
    k = d + fi
    wsum = float(w.sum())
    grad = np.empty(d + 1)
    hess = np.empty((d + 1, d + 1))
    cache: dict[str, Any] = {}
    diag = np.arange(d)

    def evaluate(theta: np.ndarray, need_hess: bool) -> dict[str, Any]:
        # SciPy asks for the Hessian before the loss at a new point; one fused pass serves
        # both, so each Newton iteration reads the data once.
        if "x" in cache and np.array_equal(cache["x"], theta) and (not need_hess or "h" in cache):
            return cache
        coef, b = theta[:d], float(theta[d]) if fi else 0.0
        cache.clear()
        if need_hess or method == "newton":
            loss = gk.offset_logistic_loss_grad_hess(X, y01, w, off, coef, b, grad, hess)
            h = hess[:k, :k].copy()
            h[diag, diag] += alpha
            cache["h"] = h / wsum
        else:
            loss = gk.offset_logistic_loss_grad(X, y01, w, off, coef, b, grad)
        g = grad[:k].copy()
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

    start = cold_start(y01, w, off, d, fi) if theta0 is None else np.asarray(theta0, float)
    with warnings.catch_warnings():
        # trust-exact warns on an exactly singular Hessian (e.g. a constant column
        # unpenalised); convergence is judged below instead.
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "newton":
            res = optimize.minimize(
                fun_grad,
                start,
                jac=True,
                hess=hessian,
                method="trust-exact",
                options={"gtol": tol, "maxiter": max_iter},
            )
        else:
            res = optimize.minimize(
                fun_grad,
                start,
                jac=True,
                method="L-BFGS-B",
                options={
                    "gtol": tol,
                    "ftol": 64 * np.finfo(float).eps,
                    "maxiter": max_iter,
                    "maxcor": 20,
                },
            )
    theta = np.asarray(res.x, dtype=np.float64)
    converged = bool(res.success) or _at_optimum(fun_grad, hessian, theta)
    return OffsetLogisticSolution(
        coef=theta[:d].copy(),
        intercept=float(theta[d]) if fi else 0.0,
        theta=theta,
        n_iter=int(res.nit),
        converged=converged,
        message=str(res.message),
        hessian=hessian(theta) * wsum if with_hessian else None,
    )


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
