"""The run's plan: every constant of a sampling run, validated and resolved once.

A run resolves its parameters once (:func:`resolve_parameters`: strategy name -> kernel code,
rate, floor -> the floor the kernels apply, seed -> the word mixed into every key), solves
kappa once (:func:`solve_plan`, :func:`pilot_plan`, or an engine's exact pass), and hands the
frozen :class:`SamplingPlan` to the per-batch step, which re-derives nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from fastsample.core.hashing import seed_mix
from fastsample.core.pilot import Pilot
from fastsample.core.reference import relative_error
from fastsample.core.strategies import (
    effective_floor,
    inclusion_scores,
    strategy_code,
    water_filling_expected,
)
from fastsample.errors import InputError


@dataclass(frozen=True)
class OutputColumns:
    """Names of the three columns added to every kept row."""

    prob: str = "sampling_prob"
    weight: str = "sample_weight"
    offset: str = "log_odds_offset"

    def names(self) -> list[str]:
        """The three names, in output order."""
        return [self.prob, self.weight, self.offset]

    def check(self, columns: list[str], source: str = "") -> None:
        """``InputError`` if a name repeats or collides with an input column."""
        names = self.names()
        if len(set(names)) != 3:
            raise InputError(f"output column names must differ, got {names}")
        where = f" in {source}" if source else ""
        for name in names:
            if name in columns:
                raise InputError(
                    f"output column {name!r} already exists{where}; choose another name"
                )


@dataclass(frozen=True)
class Parameters:
    """The user's sampling parameters, validated, with what the kernels need from them.

    Attributes
    ----------
    strategy : str
    rate : float
    seed : int
    floor : float or None
        As asked (None: no floor).
    code : int
        The strategy's kernel code.
    floor_value : float
        The floor the kernels apply (never below the uniforms' resolution, 2^-53).
    mix : numpy.uint64
        ``splitmix64(seed)``, XOR-ed into every key.
    """

    strategy: str
    rate: float
    seed: int
    floor: float | None
    code: int = field(repr=False)
    floor_value: float = field(repr=False)
    mix: np.uint64 = field(repr=False)

    def with_kappa(
        self,
        kappa: float,
        target_negatives: float,
        expected_negatives: float,
        *,
        method: str = "exact",
        info_inv: np.ndarray | None = None,
        columns: OutputColumns | None = None,
    ) -> SamplingPlan:
        """The plan of these parameters at ``kappa``."""
        return SamplingPlan(
            self.strategy,
            self.rate,
            self.seed,
            self.floor,
            self.code,
            self.floor_value,
            self.mix,
            kappa=kappa,
            target_negatives=target_negatives,
            expected_negatives=expected_negatives,
            method=method,
            info_inv=info_inv,
            columns=columns or OutputColumns(),
        )


def check_rate(rate: Any) -> float:
    """``rate`` as a float in (0, 1], else ``InputError``."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise InputError(f"rate must be a number in (0, 1], got {rate!r}") from None
    if not 0.0 < r <= 1.0:
        raise InputError(f"rate must be in (0, 1], got {rate!r}")
    return r


def resolve_parameters(strategy: str, rate: Any, floor: Any, seed: Any) -> Parameters:
    """Validate the sampling parameters, in this order, and resolve what the kernels need.

    This is the only place a run checks them: strategy, rate, floor (a number in [0, 1], not
    above the rate: a larger floor alone would keep more than the target), seed.
    """
    code = strategy_code(strategy)
    r = check_rate(rate)
    if floor is not None:
        try:
            fv = float(floor)
        except (TypeError, ValueError):
            raise InputError(f"floor must be a number in [0, 1], got {floor!r}") from None
        if fv > r:
            raise InputError(f"floor {floor!r} is above the rate {rate!r}")
    f = effective_floor(floor)
    mix = seed_mix(seed)
    return Parameters(strategy, r, int(seed), floor, code, f, mix)


@dataclass(frozen=True)
class SamplingPlan(Parameters):
    """Everything a batch is drawn with: the resolved parameters and ``kappa``.

    Build it with :func:`plan_sampling` / :func:`plan_from_pilot` (or, with parameters
    resolved already, :func:`solve_plan` / :func:`pilot_plan` / :meth:`Parameters.with_kappa`).
    The resolved fields (``code``, ``floor_value``, ``mix``) are plain attributes: the
    per-batch step reads them without a call.

    Attributes
    ----------
    strategy, rate, seed, floor, code, floor_value, mix
        As in :class:`Parameters`.
    kappa : float
        Scale of the scores.
    target_negatives : float
        ``rate * N0`` that kappa was solved for.
    expected_negatives : float
        Expected kept negatives at this kappa, over the rows (or reference sample) it was
        solved on.
    method : str
        ``"exact"`` (solved over every negative) or ``"pilot-sample"`` (one-pass estimate).
    info_inv : ndarray or None
        ``M~^{-1}`` for ``opt-a``.
    columns : OutputColumns
    relative_error : float
        Estimated relative standard error of the expected kept negatives the one-pass kappa
        gives (:func:`fastsample.core.reference.relative_error`); 0 in exact mode.
    """

    kappa: float
    target_negatives: float
    expected_negatives: float
    method: str = "exact"
    info_inv: np.ndarray | None = field(default=None, compare=False)
    columns: OutputColumns = field(default_factory=OutputColumns)
    relative_error: float = 0.0

    def metadata(self) -> dict[str, Any]:
        """JSON-ready parameters for the output's key-value metadata."""
        return {
            "strategy": self.strategy,
            "rate": self.rate,
            "seed": self.seed,
            "kappa": self.kappa,
            "target_negatives": self.target_negatives,
            "expected_negatives": self.expected_negatives,
            "floor": self.floor,
            "method": self.method,
            "columns": asdict(self.columns),
            "relative_error": self.relative_error,
        }


def solve_plan(
    params: Parameters,
    h0: Any,
    *,
    weights: Any = None,
    n_negatives: float | None = None,
    info_inv: np.ndarray | None = None,
    columns: OutputColumns | None = None,
    method: str = "exact",
) -> SamplingPlan:
    """The plan whose kappa solves the water-filling equation over the scores ``h0``.

    Parameters
    ----------
    params : Parameters
        From :func:`resolve_parameters`.
    h0 : array-like
        Scores of the negatives (all of them, or a weighted sample of them).
    weights : array-like, optional
        Horvitz–Thompson weights when ``h0`` is a sample (or counts for histogram centres).
    n_negatives : float, optional
        True number of negatives; the target is ``rate * n_negatives`` and sample weights are
        rescaled to total it (a ratio estimator). Default: the (weighted) count of ``h0``.
    info_inv : ndarray, optional
        ``M~^{-1}`` for ``opt-a``.
    columns : OutputColumns, optional
    method : str
        Recorded in the plan (``"exact"`` or ``"pilot-sample"``).
    """
    h = np.ascontiguousarray(h0, dtype=np.float64)
    # no weights: the kernels' unit weights (an empty array), no n-sized array of ones
    w = np.zeros(0) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    total = float(h.shape[0]) if weights is None else float(w.sum())
    if n_negatives is not None and total > 0:
        w = (np.ones(h.shape[0]) if weights is None else w) * (float(n_negatives) / total)
        total = float(n_negatives)
    unit = weights is None and w.size == 0
    target = params.rate * total
    kappa, expected = water_filling_expected(
        h, target, params.floor_value, weights=None if unit else w, floor=params.floor
    )
    expected = expected if h.size else 0.0
    return params.with_kappa(
        kappa, target, expected, method=method, info_inv=info_inv, columns=columns
    )


def plan_sampling(
    h0: Any,
    *,
    strategy: str,
    rate: float,
    seed: int,
    floor: float | None = None,
    **options: Any,
) -> SamplingPlan:
    """Solve kappa for the negatives' scores ``h0`` and return the plan.

    :func:`resolve_parameters` then :func:`solve_plan`, in one call.

    Parameters
    ----------
    h0 : array-like
        Scores of the negatives (all of them, or a weighted sample of them).
    strategy, rate, seed, floor
        Sampling parameters.
    **options
        ``weights``, ``n_negatives``, ``info_inv``, ``columns``, ``method``: as in
        :func:`solve_plan`.

    Examples
    --------
    >>> plan = plan_sampling([1.0, 1.0, 2.0, 4.0], strategy="proportional", rate=0.5, seed=0)
    >>> plan.kappa, plan.expected_negatives
    (0.25, 2.0)
    """
    return solve_plan(resolve_parameters(strategy, rate, floor, seed), h0, **options)


def pilot_plan(
    params: Parameters, pilot: Pilot, columns: OutputColumns | None = None
) -> SamplingPlan:
    """One-pass plan: kappa estimated from the pilot's reference sample of negatives."""
    if pilot.reference_X is None or pilot.reference_weight is None or pilot.n_negative is None:
        raise InputError(
            "this pilot has no reference sample for a one-pass kappa; use exact mode or a pilot from train_pilot/fit_pilot"
        )
    eta = pilot.logits(pilot.reference_X)
    h0, _ = inclusion_scores(params.strategy, eta, pilot.reference_X, pilot.info_inv)
    plan = solve_plan(
        params,
        h0,
        weights=pilot.reference_weight,
        n_negatives=pilot.n_negative,
        info_inv=pilot.info_inv,
        columns=columns,
        method="pilot-sample",
    )
    err = relative_error(h0, pilot.reference_weight, plan.kappa, params.floor_value)
    return replace(plan, relative_error=err)


def plan_from_pilot(
    pilot: Pilot,
    *,
    strategy: str,
    rate: float,
    seed: int,
    floor: float | None = None,
    columns: OutputColumns | None = None,
) -> SamplingPlan:
    """One-pass plan: kappa estimated from the pilot's reference sample of negatives."""
    return pilot_plan(resolve_parameters(strategy, rate, floor, seed), pilot, columns)


__all__ = [
    "OutputColumns",
    "Parameters",
    "SamplingPlan",
    "check_rate",
    "pilot_plan",
    "plan_from_pilot",
    "plan_sampling",
    "resolve_parameters",
    "solve_plan",
]
