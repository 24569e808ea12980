"""Each Numba kernel against its NumPy twin, from the shared registry.

Timing is off in ordinary test runs (every benchmark is then a smoke test on a small input);
``python scripts/bench_core.py`` runs them at 10M rows and writes the README table.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastsample.core import kernels as K
from fastsample.testing.registry import KERNELS, KernelCase

ROWS = int(os.environ.get("FASTSAMPLE_BENCH_ROWS", "20000"))


@pytest.mark.parametrize("impl", ["numba", "numpy"])
@pytest.mark.parametrize("case", KERNELS, ids=lambda c: c.name)
def test_kernel(benchmark, case: KernelCase, impl: str) -> None:
    n = max(1, int(ROWS * case.bench_scale))
    args = case.make(np.random.default_rng(0), n, np.float32, True)
    func = K.for_rows(case.kernel, n) if impl == "numba" else case.twin
    benchmark.group = f"kernel:{case.name}"
    benchmark.extra_info.update(rows=n, impl=impl, kernel=case.name)
    func(*args)  # compile / warm up outside the timed rounds
    benchmark.pedantic(func, args=args, rounds=5, iterations=1, warmup_rounds=0)
