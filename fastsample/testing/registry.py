"""One registry pairing every kernel with its NumPy twin and an input generator.

The twin-equality tests (``tests/test_kernels.py``) and the kernel benchmarks
(``benchmarks/bench_kernels.py``) both iterate over :data:`KERNELS` (the sampling kernels of
``core/kernels.py`` and the logistic-likelihood kernels of ``core/glm_kernels.py``), so adding
a kernel is one kernel, one twin and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from fastsample.core import glm_kernels as G
from fastsample.core import kernels as K
from fastsample.testing import reference as R
from fastsample.testing import reference_glm as RG


@dataclass(frozen=True)
class KernelCase:
    """A kernel, its twin, and how to build arguments for both.

    ``make(rng, n, dtype, contiguous)`` returns the argument tuple; ``outputs`` are the
    positions of ``out`` arrays to compare. Integer outputs (keys, row indices, counts) must
    always be equal; ``exact`` says whether float outputs must be bit-equal too.
    """

    name: str
    kernel: Callable[..., Any]
    twin: Callable[..., Any]
    make: Callable[[np.random.Generator, int, Any, bool], tuple[Any, ...]]
    outputs: tuple[int, ...]
    exact: bool
    returns: bool = False
    # fraction of the benchmark's row count to use for both sides (for very slow twins)
    bench_scale: float = 1.0
    # tolerances for inexact float outputs (and ``rtol`` for an inexact return value)
    rtol: float = 1e-9
    atol: float = 1e-12


def _vec(
    rng: np.random.Generator, n: int, dtype: Any, contiguous: bool, scale: float = 1.0
) -> np.ndarray:
    if contiguous:
        return (rng.normal(size=n) * scale).astype(dtype)
    # every other element of a twice-as-long array: a strided, non-contiguous view
    return (rng.normal(size=2 * n) * scale).astype(dtype)[::2]


def _matrix(rng: np.random.Generator, n: int, d: int, dtype: Any, contiguous: bool) -> np.ndarray:
    if contiguous:
        return np.asfortranarray(rng.normal(size=(n, d)).astype(dtype))
    return rng.normal(size=(n, 2 * d)).astype(dtype)[:, ::2]


def _keys(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, size=n, dtype=np.int64).view(np.uint64) * np.uint64(3)


def _strings(rng: np.random.Generator, n: int, dtype: Any, contiguous: bool) -> tuple[Any, ...]:
    lengths = rng.integers(0, 30, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, size=int(offsets[-1]), dtype=np.uint8)
    return offsets, data, np.zeros(n, dtype=np.uint64)


def _draw_outputs(n: int) -> tuple[np.ndarray, ...]:
    nblocks = (n + K.BLOCK - 1) // K.BLOCK
    return (
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.float64),
        np.zeros(n, dtype=np.float64),
        np.zeros(nblocks, dtype=np.int64),
    )


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.random(n) < 0.2).astype(np.int8)


def _scores_args(rng, n, dtype, contiguous, code):
    d = 5
    X = _matrix(rng, n, d, dtype, contiguous)
    A = rng.normal(size=(d + 1, d + 1))
    info_inv = A @ A.T if code == K.OPT_A else np.zeros((0, 0))
    return (
        code,
        _vec(rng, n, np.float64, contiguous, 3.0) - 2.0,
        X,
        info_inv,
        np.zeros(n),
        np.zeros(n),
    )


def _linear_scores_args(rng, n, dtype, contiguous, code):
    d = 5
    X = _matrix(rng, n, d, dtype, contiguous)
    A = rng.normal(size=(d + 1, d + 1))
    info_inv = A @ A.T if code == K.OPT_A else np.zeros((0, 0))
    return X, rng.normal(size=d), -3.0, code, info_inv, np.zeros(n), np.zeros(n)


def _draw_args(rng, n, dtype, contiguous, h1_empty=False):
    h0 = np.abs(_vec(rng, n, np.float64, contiguous))
    h1 = np.where(rng.random(n) < 0.5, -1.0, np.abs(rng.normal(size=n)))
    if h1_empty:  # every positive kept: the draw reads an empty h1 as all -1
        h1 = np.zeros(0)
    return (h0, h1, _labels(rng, n), _keys(rng, n), np.uint64(12345), 0.4, 0.05, *_draw_outputs(n))


def _linear_draw_args(rng, n, dtype, contiguous, code=K.PROPORTIONAL, floor=0.0):
    X, coef, b, code, info_inv, _, _ = _linear_scores_args(rng, n, dtype, contiguous, code)
    return (
        X,
        coef,
        b,
        code,
        info_inv,
        _labels(rng, n),
        _keys(rng, n),
        np.uint64(99),
        3.0,
        floor,
        *_draw_outputs(n),
    )


def _linear_draw_columns_args(rng, n, dtype, contiguous, code=K.PROPORTIONAL, floor=0.0):
    # the kernel reads contiguous column buffers, so ``contiguous`` does not apply; the
    # zero-length ``proto`` view keeps the matrix holding those buffers alive with the args
    X, coef, b, code, _, y, keys, mix, kappa, floor, *outs = _linear_draw_args(
        rng, n, dtype, True, code, floor
    )
    addresses = np.array(
        [X.ctypes.data + j * X.strides[1] for j in range(X.shape[1])], dtype=np.uint64
    )
    return (addresses, X[:0, 0], coef, b, code, y, keys, mix, kappa, floor, *outs)


def _linear_scores_columns_args(rng, n, dtype, contiguous, code, h1_empty=False):
    X, coef, b, code, _, h0, h1 = _linear_scores_args(rng, n, dtype, True, code)
    addresses = np.array(
        [X.ctypes.data + j * X.strides[1] for j in range(X.shape[1])], dtype=np.uint64
    )
    return (addresses, X[:0, 0], coef, b, code, h0, np.zeros(0) if h1_empty else h1)


def _compact_args(rng, n, dtype, contiguous):
    args = _draw_args(rng, n, dtype, contiguous)
    K.draw(*args)
    return args[7:]


def _solve_args(rng, n, dtype, contiguous):
    h = np.abs(_vec(rng, max(n, 1), np.float64, contiguous)) + 1e-3
    w = np.ones(h.shape[0])
    target = 0.3 * h.shape[0]
    return h, w, target, K.PI_EPS, 1.0 / h.min(), np.zeros(1)


def _expected_args(rng, n, dtype, contiguous):
    h = np.abs(_vec(rng, n, np.float64, contiguous))
    return h, np.ones(n), 0.7, 0.01


def _correct_proba_args(rng, n, dtype, contiguous):
    p = rng.random(n).astype(dtype)
    o = np.abs(_vec(rng, n, dtype, contiguous, 3.0))
    if n > 2:
        p[0], p[1] = 0.0, 1.0
    if n > 6:  # inputs the kernel must count as bad
        p[3], p[4], o[5] = -0.5, np.nan, np.nan
    return p, o, np.zeros(n)


def _correct_log_odds_args(rng, n, dtype, contiguous):
    return _vec(rng, n, dtype, contiguous, 4.0), _vec(rng, n, dtype, contiguous, 2.0), np.zeros(n)


def _glm_problem(rng, n, dtype, contiguous):
    """(X, y, sample_weight, offset, coef, intercept) with two extreme logits."""
    d = 5
    X = rng.normal(size=(n, d)).astype(dtype)
    if not contiguous:
        X = rng.normal(size=(n, 2 * d)).astype(dtype)[:, ::2]
    coef = rng.normal(scale=0.5, size=d)
    off = rng.normal(size=n)
    if n:  # the stable log1p(exp) and sigmoid branches
        off[0] = 800.0
        off[-1] = -800.0
    eta = -2.5 + X.astype(np.float64) @ coef + off
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-np.clip(eta, -50, 50)))).astype(np.float64)
    return X, y, rng.uniform(0.2, 3.0, size=n), off, coef, -2.5


def _glm_grad_args(rng, n, dtype, contiguous):
    return (*_glm_problem(rng, n, dtype, contiguous), np.empty(6))


def _glm_hess_args(rng, n, dtype, contiguous):
    return (*_glm_problem(rng, n, dtype, contiguous), np.empty(6), np.empty((6, 6)))


def _glm_outer_args(rng, n, dtype, contiguous):
    return (*_glm_problem(rng, n, dtype, contiguous), np.empty((6, 6)))


def _glm_predictor_args(rng, n, dtype, contiguous):
    X, _, _, off, coef, b = _glm_problem(rng, n, dtype, contiguous)
    return X, coef, b, off, np.empty(n)


# Same float64 arithmetic as the twins in another summation order: a few ulps per row at most.
_GLM_RTOL, _GLM_ATOL = 1e-10, 1e-9


def _glm_case(name: str, outputs: tuple[int, ...], make: Any, returns: bool) -> KernelCase:
    """A GLM kernel's case: same name in ``glm_kernels`` and ``reference_glm``, a fifth of the
    benchmark rows, float tolerances (the twins sum in another order)."""
    return KernelCase(
        name,
        getattr(G, name),
        getattr(RG, name),
        make,
        outputs,
        False,
        returns=returns,
        rtol=_GLM_RTOL,
        atol=_GLM_ATOL,
        bench_scale=0.2,
    )


GLM_KERNELS: list[KernelCase] = [
    _glm_case("offset_logistic_loss_grad", (6,), _glm_grad_args, True),
    _glm_case("offset_logistic_loss_grad_hess", (6, 7), _glm_hess_args, True),
    _glm_case("offset_logistic_score_outer", (6,), _glm_outer_args, False),
    _glm_case("linear_predictor", (4,), _glm_predictor_args, False),
]

# strategies of the fused draw besides plain proportional (tested with a floor); the column
# kernel takes only the first two (no row norm)
_DRAW_STRATEGIES = [("lcc", K.LCC), ("uniform", K.UNIFORM), ("opt-l", K.OPT_L), ("opt-a", K.OPT_A)]

KERNELS: list[KernelCase] = [
    KernelCase(
        "uniform_from_keys",
        K.uniform_from_keys,
        R.uniform_from_keys,
        lambda rng, n, dt, c: (_keys(rng, n), np.uint64(0xDEADBEEF), np.zeros(n)),
        (2,),
        True,
    ),
    KernelCase("hash_bytes", K.hash_bytes, R.hash_bytes, _strings, (2,), True, bench_scale=0.01),
    KernelCase(
        "combine_keys",
        K.combine_keys,
        R.combine_keys,
        lambda rng, n, dt, c: (_keys(rng, n), _keys(rng, n), np.zeros(n, np.uint64)),
        (2,),
        True,
    ),
    *[
        KernelCase(
            f"strategy_scores[{name}]",
            K.strategy_scores,
            R.strategy_scores,
            partial(_scores_args, code=code),
            (4, 5),
            False,
        )
        for name, code in [
            ("uniform", K.UNIFORM),
            ("proportional", K.PROPORTIONAL),
            ("opt-l", K.OPT_L),
            ("opt-a", K.OPT_A),
            ("lcc", K.LCC),
        ]
    ],
    KernelCase(
        "linear_logits",
        K.linear_logits,
        R.linear_logits,
        lambda rng, n, dt, c: (_matrix(rng, n, 16, dt, c), rng.normal(size=16), 0.5, np.zeros(n)),
        (3,),
        False,
    ),
    *[
        KernelCase(
            f"linear_scores[{name}]",
            K.linear_scores,
            R.linear_scores,
            partial(_linear_scores_args, code=code),
            (5, 6),
            False,
        )
        for name, code in [("proportional", K.PROPORTIONAL), ("opt-a", K.OPT_A), ("lcc", K.LCC)]
    ],
    *[
        KernelCase(
            f"linear_scores_columns[{name}]",
            K.linear_scores_columns,
            R.linear_scores_columns,
            partial(_linear_scores_columns_args, code=code),
            (5, 6),
            False,
        )
        for name, code in [("proportional", K.PROPORTIONAL), ("lcc", K.LCC)]
    ],
    KernelCase(
        "linear_scores_columns[proportional, no h1]",
        K.linear_scores_columns,
        R.linear_scores_columns,
        partial(_linear_scores_columns_args, code=K.PROPORTIONAL, h1_empty=True),
        (5, 6),
        False,
    ),
    KernelCase("draw", K.draw, R.draw, _draw_args, (7, 8, 9, 10), False),
    KernelCase(
        "draw[no h1]", K.draw, R.draw, partial(_draw_args, h1_empty=True), (7, 8, 9, 10), False
    ),
    KernelCase(
        "linear_draw", K.linear_draw, R.linear_draw, _linear_draw_args, (10, 11, 12, 13), False
    ),
    *[
        KernelCase(
            f"linear_draw[{name}]",
            K.linear_draw,
            R.linear_draw,
            partial(_linear_draw_args, code=code, floor=0.02),
            (10, 11, 12, 13),
            False,
        )
        for name, code in _DRAW_STRATEGIES
    ],
    KernelCase(
        "linear_draw_columns",
        K.linear_draw_columns,
        R.linear_draw_columns,
        _linear_draw_columns_args,
        (10, 11, 12, 13),
        False,
    ),
    *[
        KernelCase(
            f"linear_draw_columns[{name}]",
            K.linear_draw_columns,
            R.linear_draw_columns,
            partial(_linear_draw_columns_args, code=code, floor=0.02),
            (10, 11, 12, 13),
            False,
        )
        for name, code in _DRAW_STRATEGIES[:2]
    ],
    KernelCase("compact", K.compact, R.compact, _compact_args, (0, 1, 2), True, returns=True),
    KernelCase(
        "solve_kappa",
        K.solve_kappa,
        R.solve_kappa,
        _solve_args,
        (5,),
        False,
        returns=True,
        bench_scale=0.02,
    ),
    KernelCase(
        "expected_count",
        K.expected_count,
        R.expected_count,
        _expected_args,
        (),
        False,
        returns=True,
    ),
    KernelCase(
        "correct_proba",
        K.correct_proba,
        R.correct_proba,
        _correct_proba_args,
        (2,),
        False,
        returns=True,
    ),
    KernelCase(
        "correct_log_odds",
        K.correct_log_odds,
        R.correct_log_odds,
        _correct_log_odds_args,
        (2,),
        False,
    ),
    *GLM_KERNELS,
]
