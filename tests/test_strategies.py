"""Strategy scores, water-filling kappa and probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsample.core.strategies import (
    expected_count,
    inclusion_probabilities,
    inclusion_scores,
    information_inverse,
    solve_kappa,
)
from fastsample.errors import InputError
from fastsample.testing import reference as R

PI_EPS = 2.0**-53


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("dist", ["exponential", "lognormal", "tiny", "ties"])
@pytest.mark.parametrize("floor", [None, 0.001, 0.02])
@pytest.mark.parametrize("rate", [0.001, 0.05, 0.5, 0.95])
def test_water_filling_hits_target(dist: str, floor, rate: float) -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    h = {
        "exponential": rng.exponential(size=n),
        "lognormal": rng.lognormal(0, 3, size=n),
        "tiny": rng.exponential(size=n) * 1e-200,
        "ties": np.repeat(rng.exponential(size=50), n // 50),
    }[dist]
    target = rate * n
    if floor is not None and floor * n >= target:
        with pytest.raises(InputError, match="floor"):
            solve_kappa(h, target, floor=floor)
        return
    k = solve_kappa(h, target, floor=floor)
    assert _rel(expected_count(h, k, floor=floor), target) < 1e-9
    f = PI_EPS if floor is None else floor
    assert k == pytest.approx(
        R.solve_kappa(h, np.ones(n), target, f, 1 / h.min(), np.zeros(1)), rel=1e-9
    )


def test_plain_scaling_undershoots_but_water_filling_does_not() -> None:
    h = np.array([10.0, 10.0, 1.0, 1.0, 1.0, 1.0])
    target = 3.0
    naive = target / h.sum()
    assert expected_count(h, naive) < target  # the two large rows clip at 1
    assert expected_count(h, solve_kappa(h, target)) == pytest.approx(target, rel=1e-12)


def test_degenerate_cases() -> None:
    h = np.array([0.0, 0.5, 2.0, 0.0])
    # target at or above the number of rows with h > 0: everything scorable kept
    k = solve_kappa(h, 2.0)
    assert k == 2.0 and expected_count(h, k) == pytest.approx(2.0)
    assert solve_kappa(h, 3.5) == 2.0
    # all h equal: kappa is the plain ratio
    assert solve_kappa(np.full(10, 0.25), 5.0) == pytest.approx(2.0, rel=1e-15)
    # empty input or nothing to keep: a harmless kappa
    assert solve_kappa(np.zeros(0), 0.0) == 1.0
    with pytest.raises(InputError):
        solve_kappa(np.array([-1.0]), 1.0)
    with pytest.raises(InputError):
        solve_kappa(np.array([np.nan]), 1.0)


def test_weights_are_frequency_weights() -> None:
    rng = np.random.default_rng(1)
    h = rng.exponential(size=200)
    counts = rng.integers(1, 5, size=200)
    k_w = solve_kappa(h, 100.0, weights=counts.astype(float))
    k_rep = solve_kappa(np.repeat(h, counts), 100.0)
    assert k_w == pytest.approx(k_rep, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-300, 1e6)), min_size=1, max_size=300),
    st.floats(0.01, 0.99),
    st.sampled_from([None, 1e-4, 1e-2]),
)
def test_water_filling_property(hs: list[float], frac: float, floor) -> None:
    h = np.array(hs)
    f = PI_EPS if floor is None else floor
    reachable = float(np.sum(np.where(h > 0, 1.0, f)))
    lower = f * h.size
    target = lower + frac * (reachable - lower)
    if target <= lower or not (h > 0).any():
        return
    k = solve_kappa(h, target, floor=floor)
    assert abs(expected_count(h, k, floor=floor) - target) <= 1e-9 * target


def _sig(x):
    return 1 / (1 + np.exp(-x))


def test_scores_match_their_formulas() -> None:
    rng = np.random.default_rng(3)
    eta = rng.normal(-3, 2, size=1000)
    X = rng.normal(size=(1000, 3))
    p = _sig(eta)
    np.testing.assert_allclose(inclusion_scores("uniform", eta)[0], 1.0)
    np.testing.assert_allclose(inclusion_scores("proportional", eta)[0], p, rtol=1e-12)
    np.testing.assert_allclose(
        inclusion_scores("opt-l", eta, X)[0],
        p * np.sqrt(1 - p) * np.linalg.norm(X, axis=1),
        rtol=1e-10,
    )
    Minv = information_inverse(X, eta)
    Z = np.column_stack([np.ones(1000), X])
    np.testing.assert_allclose(
        inclusion_scores("opt-a", eta, X, Minv)[0],
        p * np.sqrt(1 - p) * np.linalg.norm(Z @ Minv.T, axis=1),
        rtol=1e-10,
    )
    h0, h1 = inclusion_scores("lcc", eta)
    np.testing.assert_allclose(h0, p, rtol=1e-12)
    np.testing.assert_allclose(h1, 1 - p, rtol=1e-10)
    assert inclusion_scores("proportional", eta)[1] is None


def test_extreme_logits_never_give_zero_or_nan_probabilities() -> None:
    eta = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    for strategy in ("proportional", "lcc", "opt-l"):
        a0, a1 = inclusion_probabilities(strategy, eta, kappa=2.0, X=np.ones((5, 2)))
        for a in (a0, a1):
            assert np.isfinite(a).all() and (a > 0).all() and (a <= 1).all()
            assert np.isfinite(-np.log(a)).all()


def test_floor_and_cap() -> None:
    eta = np.linspace(-20, 5, 100)
    a0, a1 = inclusion_probabilities("proportional", eta, kappa=10.0, floor=0.05)
    assert a0.min() == 0.05 and a0.max() == 1.0 and (a1 == 1).all()


def test_unknown_strategy_and_bad_inputs() -> None:
    with pytest.raises(InputError, match="unknown strategy 'best'"):
        inclusion_scores("best", [0.0])
    with pytest.raises(InputError, match="needs the feature matrix"):
        inclusion_scores("opt-l", [0.0])
    with pytest.raises(InputError, match="non-finite"):
        inclusion_scores("proportional", [np.inf])
    with pytest.raises(InputError, match="floor"):
        inclusion_probabilities("uniform", [0.0], kappa=1.0, floor=-0.1)


@pytest.mark.parametrize("n", [3, 70_000])  # serial and parallel builds
@pytest.mark.parametrize("floor", [PI_EPS, 0.01])
def test_unit_weights_are_the_bits_of_explicit_ones(n: int, floor: float) -> None:
    """An empty weight array (no n-sized array of ones) gives the bits of w = 1 exactly."""
    from fastsample.core import kernels as K

    rng = np.random.default_rng(n)
    h = np.r_[rng.lognormal(-3, 2, size=n - 2), 0.0, 50.0]  # a zero and a row that clips
    ones, unit = np.ones(n), np.zeros(0)
    for k in (0.5, 3.0, 40.0):
        assert K.expected_count(h, unit, k, floor) == K.expected_count(h, ones, k, floor)
    target = 0.2 * n
    k_max = 1.0 / h[h > 0].min()
    kernel = K.for_rows(K.solve_kappa, n)
    e_unit, e_ones = np.zeros(1), np.zeros(1)
    assert kernel(h, unit, target, floor, k_max, e_unit) == kernel(
        h, ones, target, floor, k_max, e_ones
    )
    assert e_unit[0] == e_ones[0]
    assert solve_kappa(h, target, floor=floor) == solve_kappa(h, target, floor=floor, weights=ones)


@pytest.mark.parametrize("gap", [0.0, 1e-13, 1e-9, 1e-6, 0.5])
def test_targets_next_to_every_row_kept(gap: float) -> None:
    """The shortcut that skips g(k_max) agrees with computing it, at targets close to n."""
    rng = np.random.default_rng(11)
    h = rng.random(70_000) + 1e-3
    target = h.size * (1.0 - gap)
    k = solve_kappa(h, target)
    assert k == solve_kappa(h, target, weights=np.ones(h.size))
    assert expected_count(h, k) == pytest.approx(target, rel=1e-9)


@pytest.mark.parametrize("dist", ["exponential", "lognormal", "ties", "two-values"])
@pytest.mark.parametrize("floor", [None, 0.02])
@pytest.mark.parametrize("n", [500, 70_000])
def test_solver_expected_count_is_expected_counts_bits(dist: str, floor, n: int) -> None:
    """The count the solver returns from its last pass is expected_count at kappa, bit for bit."""
    from fastsample.core.strategies import effective_floor, water_filling_expected

    rng = np.random.default_rng(n)
    h = {
        "exponential": rng.exponential(size=n),
        "lognormal": rng.lognormal(0, 3, size=n),
        "ties": np.repeat(rng.exponential(size=10), n // 10),
        "two-values": np.r_[np.full(n // 2, 0.5), np.full(n - n // 2, 2.0)],  # bisection exits
    }[dist]
    for rate in (0.05, 0.4, 0.9, 0.999999):
        target = rate * n
        f = effective_floor(floor)
        if f * n >= target:
            continue
        k, e = water_filling_expected(h, target, f, floor=floor)
        assert k == solve_kappa(h, target, floor=floor)
        assert e == expected_count(h, k, floor=floor)
