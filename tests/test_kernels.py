"""Every Numba kernel equals its NumPy twin over sizes, dtypes and memory layouts."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastsample.core import glm_kernels as G
from fastsample.core import kernels as K
from fastsample.testing.registry import GLM_KERNELS, KERNELS, KernelCase

SIZES = [0, 1, 7, K.BLOCK + 3]
EMPTY_OK = {"solve_kappa"}  # solve_kappa needs at least one positive score; covered elsewhere


def _copy(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


@pytest.mark.parametrize("case", KERNELS, ids=lambda c: c.name)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("contiguous", [True, False])
def test_kernel_equals_twin(case: KernelCase, n: int, dtype, contiguous: bool) -> None:
    _check_twin(case, n, dtype, contiguous)


# enough blocks for the GLM kernels to take their parallel driver
@pytest.mark.parametrize("case", GLM_KERNELS, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_glm_parallel_driver_equals_twin(case: KernelCase, dtype) -> None:
    _check_twin(case, G.BLOCK * (G.SERIAL_BLOCKS + 2) + 13, dtype, True)


def _check_twin(case: KernelCase, n: int, dtype, contiguous: bool) -> None:
    rng = np.random.default_rng(n * 31 + contiguous)
    args = case.make(rng, n, dtype, contiguous)
    a_k, a_t = _copy(args), _copy(args)
    r_k = case.kernel(*a_k)
    r_t = case.twin(*a_t)
    if case.returns:
        if case.exact:
            assert r_k == r_t
        else:
            assert r_k == pytest.approx(r_t, rel=1e-10, abs=max(case.atol, 1e-12))
    for pos in case.outputs:
        got, want = a_k[pos], a_t[pos]
        if got.dtype.kind in "iu" or case.exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)


SCALAR_HELPERS = {"splitmix64", "sigmoid", "softplus_sigmoid"}


def test_registry_covers_every_public_kernel() -> None:
    public = {
        name
        for mod in (K, G)
        for name, obj in vars(mod).items()
        if hasattr(obj, "py_func") and not name.startswith("_") and name not in SCALAR_HELPERS
    }
    covered = {case.kernel.__name__ for case in KERNELS}
    assert public <= covered, public - covered


@pytest.mark.parametrize("case", [c for c in KERNELS if c.kernel in K.SERIAL], ids=lambda c: c.name)
def test_serial_and_parallel_builds_are_bit_identical(case: KernelCase) -> None:
    n = K.PARALLEL_MIN_ROWS + 5
    args = case.make(np.random.default_rng(5), n, np.float64, True)
    a_p, a_s = _copy(args), _copy(args)
    r_p = K.for_rows(case.kernel, n)(*a_p)
    r_s = K.for_rows(case.kernel, 1)(*a_s)
    assert K.for_rows(case.kernel, 1) is not case.kernel
    assert r_p == r_s
    for pos in case.outputs:
        np.testing.assert_array_equal(a_p[pos], a_s[pos])


def _boundary_rows(kappa: float, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, keys, labels) whose kappa * sigmoid(logit) lies within a few ulps of the row's
    uniform, plus logits at the ends of the float range: rows the fused draw's cheap bound
    must hand to the exact path."""
    n = 3 * K.BLOCK + 11
    rng = np.random.default_rng(17)
    keys = rng.integers(0, 2**63, size=n, dtype=np.int64).view(np.uint64)
    mix = np.uint64(12345)
    u = np.empty(n)
    K.uniform_from_keys(keys, mix, u)
    p = np.clip(u / kappa, 1e-300, 1 - 1e-16)
    eta = np.log(p) - np.log1p(-p)
    steps = rng.integers(-4, 5, size=n)
    for k in range(-4, 5):  # move each logit k ulps
        sel = steps == k
        for _ in range(abs(k)):
            eta[sel] = np.nextafter(eta[sel], np.inf if k > 0 else -np.inf)
    ends = [-1e300, -1e4, -800.0, -745.2, -708.4, -40.0, -1e-300, 0.0, 40.0, 60.0, 800.0, 1e300]
    eta[: len(ends)] = ends
    y = (rng.random(n) < 0.05).astype(np.int8)
    return eta, keys, y


@pytest.mark.parametrize("code", [K.PROPORTIONAL, K.LCC, K.UNIFORM])
@pytest.mark.parametrize(("kappa", "floor"), [(1.0, 0.0), (0.7, 0.01), (3.0, 0.2), (1e6, 0.0)])
def test_fused_draw_equals_exact_scores_then_draw_at_the_boundary(code, kappa, floor) -> None:
    """The fused draw decides with a bound on most rows; it must keep exactly the rows that
    scoring every row exactly and then drawing keeps, bit for bit, near the boundary too."""
    eta, keys, y = _boundary_rows(kappa, floor)
    n = eta.shape[0]
    mix = np.uint64(12345)
    X = np.asfortranarray(np.column_stack([eta, np.zeros(n)]))
    coef = np.array([1.0, 0.0])
    h0, h1 = np.empty(n), np.empty(n)
    K.linear_scores(X, coef, 0.0, code, np.zeros((0, 0)), h0, h1)
    want = [np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(3 + 1, np.int64)]
    K.draw(h0, h1, y, keys, mix, kappa, floor, *want)
    addresses = np.array([X.ctypes.data + j * X.strides[1] for j in range(2)], dtype=np.uint64)
    for build in (K.for_rows(K.linear_draw, n), K.for_rows(K.linear_draw, 1)):
        got = [np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(3 + 1, np.int64)]
        build(X, coef, 0.0, code, np.zeros((0, 0)), y, keys, mix, kappa, floor, *got)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    got = [np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(3 + 1, np.int64)]
    K.linear_draw_columns(addresses, X[:0, 0], coef, 0.0, code, y, keys, mix, kappa, floor, *got)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_exp_bound_is_above_exp_everywhere() -> None:
    """The fused draw's cheap bound E(x) >= e^x, tightest where x / ln 2 is an integer (the
    chord of 2^x touches it there): checked at and a few ulps around every such point of the
    range, and on random logits, with room left for the exact path's own roundings."""
    bound = njit(lambda x: K._exp_bound(x))
    pts = np.arange(-1030, 70) * np.log(2.0)
    grid, lo, hi = [pts], pts, pts
    for _ in range(4):
        lo, hi = np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)
        grid += [lo, hi]
    rng = np.random.default_rng(3)
    x = np.concatenate([*grid, rng.normal(scale=30.0, size=20000), [0.0, -0.0, 1e-300]])
    got = np.array([bound(v) for v in x])
    with np.errstate(over="ignore"):
        need = np.minimum(np.exp(x), 2.0**59) * (1.0 + 1e-12)  # past 2^60 it only must top 1
    assert (got >= need).all(), x[got < need][:5]
    with np.errstate(over="ignore"):  # and tight: at most the chord's 6.2% above
        assert (got <= np.minimum(np.maximum(np.exp(x), 2.0**-1020), 2.0**60) * 1.07).all()
