"""Every Numba kernel equals its NumPy twin over sizes, dtypes and memory layouts."""

from __future__ import annotations

import numpy as np
import pytest

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
