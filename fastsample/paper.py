"""Reproduction of the simulation of Wang, Zhang & Wang (NeurIPS 2021).

Rare-event logistic data as in the authors' code (statistics.md §1.8, case 1 "Normal"),
the full-data MLE, and the closed-form asymptotic efficiencies of statistics.md Target A.
``scripts/reproduce_paper.py`` runs the full comparison; the tests run a small one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PAPER_ALPHA",
    "PAPER_BETA",
    "asymptotic_efficiency_1d",
    "full_data_mle",
    "generate_normal_case",
    "paper_covariance",
]

PAPER_ALPHA = -7.65
PAPER_BETA = np.full(6, -1.0)


def paper_covariance(d: int = 6) -> np.ndarray:
    """``Sigma_ij = 0.5^|i-j| / 4``, the covariates' covariance in the paper's design."""
    idx = np.arange(d)
    return 0.5 ** np.abs(idx[:, None] - idx[None, :]) / 4.0


@dataclass(frozen=True)
class SimulatedData:
    """One full data set: features ``X`` (float64), labels ``y`` (int8), the true ``theta``."""

    X: np.ndarray
    y: np.ndarray
    theta: np.ndarray

    @property
    def n_positive(self) -> int:
        return int(self.y.sum())


def generate_normal_case(
    n: int = 500_000,
    rng: np.random.Generator | int | None = None,
    *,
    alpha: float = PAPER_ALPHA,
    beta: np.ndarray = PAPER_BETA,
) -> SimulatedData:
    """Case 1 of the paper: ``z ~ N(0, Sigma)``, ``P(y=1|z) = sigmoid(alpha + z' beta)``.

    Parameters
    ----------
    n : int, default=500_000
        Rows (the paper uses 500 000).
    rng : numpy Generator or seed
    alpha, beta : true intercept and slopes (defaults: -7.65 and six -1's; event rate ~0.28%).
    """
    rng = np.random.default_rng(rng)
    beta = np.asarray(beta, dtype=np.float64)
    chol = np.linalg.cholesky(paper_covariance(beta.size))
    X = rng.standard_normal((n, beta.size)) @ chol.T
    eta = alpha + X @ beta
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int8)
    return SimulatedData(X=X, y=y, theta=np.r_[alpha, beta])


def full_data_mle(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unpenalised logistic MLE on every row, as ``(intercept, coef...)``."""
    from fastsample.estimators import OffsetLogisticRegression

    model = OffsetLogisticRegression(C=np.inf).fit(X, y)
    return np.r_[model.intercept_, model.coef_[0]]


# -- Target A: closed-form asymptotic efficiencies (statistics.md §1.4, Target A) --------------


def asymptotic_efficiency_1d(r: float, n_nodes: int = 200) -> dict[str, float]:
    """``tr(V) / tr(V_full)`` for the 1-D example of statistics.md Target A.

    ``x ~ N(0, 1)``, ``f(x) = x``, ``gdot = (1, x)``; ``r`` = positives per kept negative
    (``c E e^f``). Expectations by ``n_nodes``-point Gauss-Hermite quadrature.

    Returns
    -------
    dict
        Keys ``uniform_ipw``, ``uniform_lik``, ``opt_ipw``, ``opt_lik``, ``proportional``
        (for ``pi`` proportional to ``p`` the IPW and likelihood variances coincide).
    """
    t, wq = np.polynomial.hermite.hermgauss(n_nodes)
    x = np.sqrt(2.0) * t
    wq = wq / np.sqrt(np.pi)  # E[g(x)] = sum wq * g(x)

    def expect(values: np.ndarray) -> np.ndarray:
        return np.tensordot(wq, values, axes=(0, 0))

    G = np.column_stack([np.ones_like(x), x])
    GG = G[:, :, None] * G[:, None, :]
    ef = np.exp(x)
    Eef = float(expect(ef))
    M = expect(ef[:, None, None] * GG)
    Minv = np.linalg.inv(M)
    Vf = Eef * Minv
    c = r / Eef

    def ipw(phi: np.ndarray) -> np.ndarray:
        inner = expect((np.exp(2 * x) / phi)[:, None, None] * GG)
        return Vf + c * Eef * Minv @ inner @ Minv

    def lik(phi: np.ndarray) -> np.ndarray:
        lam = expect((ef / (1.0 + c * ef / phi))[:, None, None] * GG)
        return Eef * np.linalg.inv(lam)

    def normalise(h: np.ndarray) -> np.ndarray:
        return h / float(expect(h))

    uniform = np.ones_like(x)
    opt = normalise(ef * np.linalg.norm(G @ Minv.T, axis=1))
    prop = normalise(ef)
    tr_f = np.trace(Vf)
    return {
        "uniform_ipw": float(np.trace(ipw(uniform)) / tr_f),
        "uniform_lik": float(np.trace(lik(uniform)) / tr_f),
        "opt_ipw": float(np.trace(ipw(opt)) / tr_f),
        "opt_lik": float(np.trace(lik(opt)) / tr_f),
        "proportional": float(np.trace(lik(prop)) / tr_f),
        "proportional_ipw": float(np.trace(ipw(prop)) / tr_f),
    }
