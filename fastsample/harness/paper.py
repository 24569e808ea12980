"""Reproduction of the simulation of Wang, Zhang & Wang (NeurIPS 2021).

Rare-event logistic data as in the authors' code (their case 1, "Normal": six N(0, Sigma)
covariates with Sigma_ij = 0.5^|i-j| / 4, intercept -7.65, every slope -1), the full-data MLE,
and the closed-form asymptotic efficiencies of the 1-D example (x ~ N(0, 1), slope 1) from the
paper's theorems 2 and 4.
``scripts/reproduce_paper.py`` runs the full comparison; the tests run a small one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from fastsample.core.correction import log_odds_offset
from fastsample.core.hashing import derive_seed, uniform_from_keys
from fastsample.core.pilot import Pilot
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.strategies import clip_probabilities, inclusion_scores, solve_kappa
from fastsample.models.offset_logistic import OffsetLogisticRegression

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
    model = OffsetLogisticRegression(C=np.inf).fit(X, y)
    return np.r_[model.intercept_, model.coef_[0]]


# -- closed-form asymptotic efficiencies of the 1-D example (theorems 2 and 4) ---------------


def asymptotic_efficiency_1d(r: float, n_nodes: int = 200) -> dict[str, float]:
    """``tr(V) / tr(V_full)`` of each estimator in a 1-D example (the paper's theorems 2 and 4).

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


# -- the paper's simulation: every method on fresh data, MSE over the coefficients ------------

#: (label, strategy, correction) of every subsampling method compared.
METHODS: tuple[tuple[str, str, str], ...] = (
    ("uniform+IPW", "uniform", "weights"),
    ("uniform+offset", "uniform", "offset"),
    ("opt-a+IPW", "opt-a", "weights"),
    ("opt-a+offset", "opt-a", "offset"),
    ("lcc", "lcc", "offset"),
    ("proportional+offset", "proportional", "offset"),
)
FEATURES = [f"x{j}" for j in range(6)]


def paper_pilot(
    X: np.ndarray, y: np.ndarray, *, seed: int, n0: int = 200, misspecify: np.ndarray | None = None
) -> Pilot:
    """The authors' pilot: a case-control Poisson sample of about ``n0`` rows (half positives),
    an unpenalised logistic fit, the intercept corrected by the case-control shift.

    ``misspecify`` (7 values, intercept first) is added to the fitted population-scale
    coefficients, as in the authors' misspecified-pilot experiment (``1.5 * U(0, 1)`` each).
    """
    pilot = fit_pilot(
        X, y, features=FEATURES, model=LogisticRegression(C=np.inf), seed=seed, max_rows=n0
    )
    if misspecify is None:
        return pilot
    shift = np.asarray(misspecify, dtype=np.float64)
    model = clone(pilot.model)
    model.classes_ = pilot.model.classes_
    model.coef_ = pilot.model.coef_ + shift[1:]
    model.intercept_ = pilot.model.intercept_ + shift[0]
    model.n_features_in_ = pilot.model.n_features_in_
    # The information matrix stays the consistent pilot's: only the scores are perturbed.
    return Pilot(
        model=model,
        features=pilot.features,
        logit_shift=pilot.logit_shift,
        info_inv=pilot.info_inv,
        n_rows=pilot.n_rows,
        n_positive=pilot.n_positive,
        n_negative=pilot.n_negative,
        meta={**pilot.meta, "misspecified": shift.tolist()},
    )


def draw_subsample(
    h0: np.ndarray, h1: np.ndarray | None, y: np.ndarray, u: np.ndarray, budget: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keep mask and ``(a0, a1, a_y)`` for an expected ``budget`` kept negatives.

    ``kappa`` is water-filled by :func:`fastsample.core.strategies.solve_kappa`; ``a_y`` is clipped
    exactly as the engine's kernels do and a row is kept iff ``u < a_y``. Under LCC (``h1``
    given) positives are thinned too, so kappa is solved for the same expected total size
    ``N1 + budget`` as the other strategies: all methods are compared at equal size.
    """
    neg = y == 0
    if h1 is None:
        kappa = solve_kappa(h0[neg], float(budget))
    else:
        kappa = solve_kappa(np.r_[h0[neg], h1[~neg]], float(budget + (~neg).sum()))
    a0 = clip_probabilities(h0, kappa, None)
    a1 = np.ones_like(a0) if h1 is None else clip_probabilities(h1, kappa, None)
    a = np.where(neg, a0, a1)
    return u < a, a0, a1, a


def subsample_fits(
    X: np.ndarray,
    y: np.ndarray,
    pilot: Pilot,
    *,
    budgets: list[int],
    seed: int,
    methods: tuple[tuple[str, str, str], ...] = METHODS,
) -> list[dict]:
    """Fit every method at every negative budget on one data set.

    The draw is the engine's: scores from :func:`fastsample.core.strategies.inclusion_scores`,
    water-filled ``kappa`` for an expected ``budget`` kept negatives, ``a_y`` clipped exactly
    as the kernels do, and ``keep <=> u < a_y`` with ``u`` from
    :func:`fastsample.core.hashing.uniform_from_keys` on the row index (the same uniforms for
    every method: common random numbers sharpen the comparison between methods).
    """
    u = uniform_from_keys(np.arange(y.shape[0], dtype=np.int64), seed)
    eta = pilot.logits(X)
    neg = y == 0
    out = []
    for strategy in dict.fromkeys(s for _, s, _ in methods):
        h0, h1 = inclusion_scores(strategy, eta, X, pilot.info_inv)
        for budget in budgets:
            keep, a0, a1, a = draw_subsample(h0, h1, y, u, budget)
            for label, s, correction in methods:
                if s != strategy:
                    continue
                model = OffsetLogisticRegression(C=np.inf)
                if correction == "offset":
                    off = log_odds_offset(a0[keep], a1[keep])
                    model.fit(X[keep], y[keep], offset=off)
                else:
                    model.fit(X[keep], y[keep], sample_weight=1.0 / a[keep])
                out.append(
                    {
                        "method": label,
                        "budget": budget,
                        "theta": np.r_[model.intercept_, model.coef_[0]],
                        "kept_negatives": int((keep & neg).sum()),
                        "kept_positives": int((keep & ~neg).sum()),
                        "expected_size": float(a[neg].sum() + a[~neg].sum()),
                    }
                )
    return out


def run_replicate(
    rep: int,
    *,
    n_rows: int = 500_000,
    budgets: list[int],
    seed: int = 1,
    misspecified: bool = True,
) -> list[dict]:
    """One repetition of the paper's design: fresh data, full MLE, pilots, every method.

    Returns one record per (pilot, method, budget), plus one ``full`` record.
    """
    rep_seed = derive_seed(seed, f"rep-{rep}")
    rng = np.random.default_rng(rep_seed)
    data = generate_normal_case(n_rows, rng)
    records: list[dict] = [
        {
            "pilot": "-",
            "method": "full",
            "budget": 0,
            "theta": full_data_mle(data.X, data.y),
            "kept_negatives": int(data.y.shape[0] - data.n_positive),
            "kept_positives": data.n_positive,
            "expected_size": float(data.y.shape[0]),
        }
    ]
    pilots = {"consistent": paper_pilot(data.X, data.y, seed=rep_seed)}
    if misspecified:
        pilots["misspecified"] = paper_pilot(
            data.X, data.y, seed=rep_seed, misspecify=1.5 * rng.random(7)
        )
    for name, pilot in pilots.items():
        methods = METHODS
        if name != "consistent":
            # Uniform sampling ignores the pilot: its rows would repeat the consistent ones.
            methods = tuple(m for m in METHODS if m[1] != "uniform")
        for rec in subsample_fits(
            data.X, data.y, pilot, budgets=budgets, seed=rep_seed, methods=methods
        ):
            records.append({"pilot": name, **rec})
    for rec in records:
        rec["n_positive"] = data.n_positive
        rec["sq_error"] = float(np.sum((rec["theta"] - data.theta) ** 2))
    return records


def summarize(records: list[dict]) -> list[dict]:
    """Empirical MSE (sum over the 7 coefficients of the mean squared error) per
    (pilot, method, budget), its Monte Carlo standard error, and mean realised sizes."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["pilot"], rec["method"], rec["budget"]), []).append(rec)
    full = groups.get(("-", "full", 0), [])
    full_mse = float(np.mean([r["sq_error"] for r in full])) if full else float("nan")
    mean_n1 = float(np.mean([r["n_positive"] for r in records]))
    rows = []
    for (pilot, method, budget), recs in groups.items():
        se = np.array([r["sq_error"] for r in recs])
        size = np.array([r["kept_negatives"] + r["kept_positives"] for r in recs])
        rows.append(
            {
                "pilot": pilot,
                "method": method,
                "budget": budget,
                "reps": len(recs),
                "mse": float(se.mean()),
                "mse_se": float(se.std(ddof=1) / np.sqrt(len(se))) if len(se) > 1 else float("nan"),
                "ratio_to_full": float(se.mean() / full_mse),
                "realised_size": float(size.mean()),
                "expected_size": float(np.mean([r["expected_size"] for r in recs])),
                "kept_positives": float(np.mean([r["kept_positives"] for r in recs])),
                "r": mean_n1 / budget if budget else 0.0,
            }
        )
    return rows


def markdown_report(rows: list[dict], *, command: str, seconds: float, n_rows: int) -> str:
    """The results tables as markdown (one MSE table per pilot, then realised sizes)."""
    budgets = sorted({r["budget"] for r in rows if r["budget"]})
    by = {(r["pilot"], r["method"], r["budget"]): r for r in rows}
    full = by[("-", "full", 0)]
    reps = full["reps"]
    lines = [
        "# Reproduction of Wang, Zhang & Wang (NeurIPS 2021), simulation case 1 (Normal)",
        "",
        f"Command: `{command}`  ",
        f"N = {n_rows}, {reps} repetitions (fresh data each), wall time {seconds:.0f} s. "
        f"Mean positives N1 = {np.mean([r['kept_positives'] for r in rows if r['method'] == 'full']):.0f}.",
        "",
        "Design (the paper's simulation, case 1): six N(0, Sigma) covariates, Sigma_ij = 0.5^|i-j| / 4, "
        "intercept -7.65, slopes -1; a case-control pilot of about 200 rows (unpenalised "
        "logistic fit, intercept corrected); every method keeps an expected `budget` negatives "
        "(water-filled kappa) and every positive, except LCC whose kappa is solved for the same "
        "expected total size. MSE = sum over the 7 coefficients of the mean squared error "
        "against the true values; ± is one Monte Carlo standard error; `/full` divides by the "
        f"full-data MLE's MSE ({full['mse']:.4g} ± {full['mse_se']:.2g}).",
        "",
    ]
    for pilot in ("consistent", "misspecified"):
        methods = [m for (p, m, b) in by if p == pilot and b == budgets[0]]
        if pilot == "misspecified":
            # uniform sampling ignores the pilot: its rows are the consistent table's.
            methods = [m for (p, m, b) in by if p == "consistent" and b == budgets[0]]
        if not any(p == pilot for (p, _, _) in by):
            continue
        title = (
            "Consistent pilot"
            if pilot == "consistent"
            else ("Misspecified pilot (1.5 U(0,1) added to each pilot coefficient)")
        )
        lines += [f"## {title}: MSE (and MSE / full)", ""]
        lines.append("| method | " + " | ".join(f"n = {b}" for b in budgets) + " |")
        lines.append("| --- |" + " --- |" * len(budgets))
        for m in methods:
            cells = []
            for b in budgets:
                r = by.get((pilot, m, b)) or by[("consistent", m, b)]
                cells.append(f"{r['mse']:.4f} ± {r['mse_se']:.4f} ({r['ratio_to_full']:.2f})")
            shared = pilot == "misspecified" and (pilot, m, budgets[0]) not in by
            lines.append(
                f"| {m}{' (pilot not used)' if shared else ''} | " + " | ".join(cells) + " |"
            )
        lines.append(
            "| theory for proportional: 1 + r, r = N1/n | "
            + " | ".join(f"({1 + by[('consistent', methods[0], b)]['r']:.2f})" for b in budgets)
            + " |"
        )
        lines.append("")
    lines += ["## Mean realised sample size (positives + negatives), consistent pilot", ""]
    lines.append("| method | " + " | ".join(f"n = {b}" for b in budgets) + " |")
    lines.append("| --- |" + " --- |" * len(budgets))
    for m in [m for (p, m, b) in by if p == "consistent" and b == budgets[0]]:
        cells = [
            f"{by[('consistent', m, b)]['realised_size']:.0f} "
            f"(exp. {by[('consistent', m, b)]['expected_size']:.0f})"
            for b in budgets
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)
