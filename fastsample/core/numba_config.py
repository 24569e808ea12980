"""How fastsample builds and dispatches its Numba kernels: the one home for these choices.

- **Flags.** Every kernel and helper is compiled with ``cache=True``, so a new process loads
  machine code from Numba's on-disk cache instead of compiling. Helpers are inlined into
  their callers (``inline="always"``): they are tiny and called once per row. Kernels are
  ``nogil=True``: they touch no Python object, so the streaming engine's workers draw
  different batches on different cores while the reader and writer threads run.
- **fastmath stays off**, on purpose and not configurable: it lets LLVM assume there are no
  NaNs (the kernels' in-loop NaN checks would vanish) and reassociate sums (the last bits
  would depend on the vector width of the machine).
- **Threads.** The thread count is Numba's own ``NUMBA_NUM_THREADS``, read by Numba once at
  import. No result depends on it: parallel kernels walk fixed blocks of rows and add partial
  sums in block order.
- **Serial twins.** Waking the thread pool costs far more than the work on a small batch, so
  callers run ``for_rows(kernel, n)``: below :data:`PARALLEL_MIN_ROWS` it returns the same
  loop compiled without ``parallel=True`` (same blocks, same order, same bits). Inside
  :func:`serial_kernels` it returns the serial build whatever ``n``: one-off work of a run's
  set-up (the plan over a pilot's reference sample) then neither starts the thread pool nor
  loads the parallel builds, which a small run would otherwise pay for in start-up time.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from numba import njit


def _load_array_support_without_blas_probe() -> None:
    """Import Numba's array implementations with its SciPy BLAS probe skipped (start-up time).

    ``numba.np.arraymath`` imports ``scipy.linalg`` when it loads, only to learn whether
    ``np.dot`` may call BLAS: a third of Numba's first-call initialisation in every process.
    No kernel of ours calls BLAS, so the module is loaded here with that import made to fail
    (``np.dot`` then compiles to a plain loop; ``np.linalg`` functions still import SciPy
    when they compile). Nothing is skipped when SciPy's linalg is loaded already.
    """
    if "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules:
        return
    sys.modules["scipy.linalg.cython_blas"] = None  # type: ignore[assignment]
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules["scipy.linalg.cython_blas"]


_load_array_support_without_blas_probe()

# Below this many rows the serial build of a kernel is used (4 blocks of the draw kernels).
PARALLEL_MIN_ROWS = 65536

# parallel build -> serial build, filled by ``register_serial``
SERIAL: dict[Any, Any] = {}

_SERIAL_ONLY: ContextVar[bool] = ContextVar("fastsample_serial_only", default=False)


def serial_kernel(func: Callable[..., Any]) -> Any:
    """A serial kernel: ``njit(cache=True, nogil=True)``."""
    return njit(cache=True, nogil=True)(func)


def parallel_kernel(func: Callable[..., Any]) -> Any:
    """A kernel whose ``prange`` loops run on Numba's thread pool."""
    return njit(cache=True, nogil=True, parallel=True)(func)


def helper(func: Callable[..., Any]) -> Any:
    """A per-row helper, inlined into every kernel that calls it."""
    return njit(cache=True, inline="always")(func)


def serial_twin(parallel: Any, **overrides: Any) -> Any:
    """``parallel``'s Python source compiled without ``parallel=True``.

    ``overrides`` replace globals of the function (a parallel kernel it calls, say, by that
    kernel's own serial twin).
    """
    f = parallel.py_func
    env = {**f.__globals__, **overrides} if overrides else f.__globals__
    clone = types.FunctionType(
        f.__code__, env, f.__name__ + "_serial", f.__defaults__, f.__closure__
    )
    # a distinct qualified name gives the serial build its own on-disk cache entry
    clone.__qualname__ = f.__qualname__ + "_serial"
    return njit(cache=True, nogil=True)(clone)


def register_serial(*kernels: Any, **overrides: Any) -> None:
    """Give each parallel kernel a serial twin that :func:`for_rows` returns for small inputs."""
    for k in kernels:
        SERIAL[k] = serial_twin(k, **overrides)


def for_rows(kernel: Any, n: int) -> Any:
    """The kernel to run on ``n`` rows: the parallel build, or its serial twin when small."""
    if n >= PARALLEL_MIN_ROWS and not _SERIAL_ONLY.get():
        return kernel
    return SERIAL.get(kernel, kernel)


@contextmanager
def serial_kernels() -> Iterator[None]:
    """Within the block, :func:`for_rows` returns serial builds for any number of rows.

    Results are the same bits (the twins walk the same blocks in the same order); only the
    thread pool stays asleep.

    Examples
    --------
    >>> def k(n):
    ...     return n
    >>> SERIAL[k] = "serial k"
    >>> for_rows(k, 10**6) is k
    True
    >>> with serial_kernels():
    ...     for_rows(k, 10**6)
    'serial k'
    >>> del SERIAL[k]
    """
    token = _SERIAL_ONLY.set(True)
    try:
        yield
    finally:
        _SERIAL_ONLY.reset(token)
