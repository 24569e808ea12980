"""Online learning on a sliding window of negatively sampled rows, corrected by offsets.

:class:`SlidingWindowLearner` receives batches of rows as they arrive. Each batch is sampled
with the keyed draw of the sampling core (every positive; negatives with probability
``pi(x)``, by default proportional to the *current* model's probability — the model is its own
pilot), and the kept rows enter a window of at most ``window`` rows together with their
log-odds offset ``-log pi(x)`` (computed at draw time, so rows drawn under older models keep
the offsets that match their actual draw). The oldest rows leave the window first.

After each batch the model is **updated, not retrained**: the offset logistic likelihood of
the window is minimised by the package's one solver of that likelihood
(:func:`fastsample.models.solver.solve_offset_logistic`, trust-region Newton, at most
``max_iter`` iterations) *started from the previous coefficients*. The window changes little
between batches, so one or two Newton steps reach the new optimum; the seed tutorial instead
rebuilt and refitted a whole pipeline (pilot and model) on the full buffer at every call.

Because the fit carries the offsets, the model is already on the population scale:
:meth:`SlidingWindowLearner.predict_proba` needs no further correction. Memory is bounded by
the window (``window x (n_features + 2)`` floats) plus one batch.

Keys: by default a row's key is its position in the stream (rows seen before it), so the draw
is reproducible for the same stream; pass ``keys`` to make each row's fate depend only on its
own key and the seed (:mod:`fastsample.core.hashing`).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.logistic import sigmoid
from fastsample.core.pilot import Pilot
from fastsample.core.plan import check_rate
from fastsample.core.validation import binary_labels, numeric_matrix
from fastsample.engines.memory import sample_frame
from fastsample.errors import InputError
from fastsample.models.solver import solve_offset_logistic

__all__ = ["SlidingWindowLearner"]

_ROW = "__fastsample_row"
_POS = "__fastsample_pos"
_LABEL = "__fastsample_y"


class SlidingWindowLearner:
    """Incrementally updated logistic model over a bounded window of sampled rows.

    Parameters
    ----------
    window : int
        Maximum number of kept rows held (memory bound).
    rate : float
        Expected fraction of each batch's negatives kept, in (0, 1].
    strategy : {"proportional", "uniform", "opt-l"}
        Inclusion strategy of the sampling core; the current model is the pilot. The first
        batch (no model yet) is always drawn uniformly.
    floor : float, optional
        Lower bound on inclusion probabilities (bounds the offsets).
    seed : int
        Sampling seed.
    C : float
        Inverse L2 penalty on the coefficients (not the intercept); ``np.inf`` for none.
    max_iter : int
        Newton iterations per update.

    Attributes
    ----------
    coef_, intercept_ : population-scale coefficients (after the first fit)
    n_seen_, n_kept_ : rows received and rows kept so far
    n_updates_ : number of model updates
    history_ : list of dict, one per batch (rows, kept, window rows, Newton iterations)
    last_batch_ : dict
        Positions (``index``) of the last batch's kept rows and their ``sampling_prob`` — e.g.
        to feed a :class:`fastsample.toolkit.monitor.PerformanceMonitor` with only the logged rows.
    """

    def __init__(
        self,
        *,
        window: int = 100_000,
        rate: float = 0.1,
        strategy: str = "proportional",
        floor: float | None = None,
        seed: int = 0,
        C: float = 1.0,
        max_iter: int = 5,
    ) -> None:
        if int(window) < 2:
            raise InputError(f"window: must be >= 2 (got {window})")
        if strategy not in ("proportional", "uniform", "opt-l"):
            raise InputError(f"strategy: {strategy!r} is not proportional, uniform or opt-l")
        if not (C > 0):
            raise InputError(f"C: must be > 0 (got {C})")
        if int(max_iter) < 1:
            raise InputError(f"max_iter: must be >= 1 (got {max_iter})")
        self.window = int(window)
        self.rate = check_rate(rate)
        self.strategy = strategy
        self.floor = floor
        self.seed = int(seed)
        self.C = float(C)
        self.max_iter = int(max_iter)
        self.n_seen_ = 0
        self.n_kept_ = 0
        self.n_updates_ = 0
        self.history_: list[dict[str, Any]] = []
        self._chunks: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._rows = 0
        self._theta: np.ndarray | None = None
        self._d: int | None = None

    # ------------------------------------------------------------------ data

    @property
    def window_rows_(self) -> int:
        """Kept rows currently in the window."""
        return self._rows

    @property
    def coef_(self) -> np.ndarray:
        self._check_fitted()
        assert self._theta is not None
        return self._theta[:-1].reshape(1, -1).copy()

    @property
    def intercept_(self) -> np.ndarray:
        self._check_fitted()
        assert self._theta is not None
        return self._theta[-1:].copy()

    def _check_fitted(self) -> None:
        if self._theta is None:
            raise InputError("the learner has no model yet: feed batches with both classes first")

    def _pilot(self) -> Any:
        """The current model as a linear pilot for the sampling core."""
        assert self._theta is not None and self._d is not None
        features = [f"x{j}" for j in range(self._d)]
        return Pilot.from_linear(self._theta[:-1], float(self._theta[-1]), features)

    def _sample(self, X: np.ndarray, y: np.ndarray, keys: Any) -> tuple[np.ndarray, ...]:
        n, d = X.shape
        cols: dict[str, Any] = {f"x{j}": X[:, j] for j in range(d)}
        cols[_LABEL] = y
        cols[_POS] = np.arange(n, dtype=np.int64)
        cols[_ROW] = (
            np.arange(self.n_seen_, self.n_seen_ + n, dtype=np.int64)
            if keys is None
            else np.asarray(keys)
        )
        if keys is not None and cols[_ROW].shape != (n,):
            raise InputError(f"keys has shape {cols[_ROW].shape}, expected ({n},)")
        frame = pl.DataFrame(cols)
        if self._theta is None or self.strategy == "uniform":
            pilot, strategy = None, "uniform"
        else:
            pilot, strategy = self._pilot(), self.strategy
        if not np.any(y == 0):  # nothing to sample: keep the positives
            self.last_batch_ = {"index": np.arange(n), "sampling_prob": np.ones(n)}
            return X, y.astype(np.float64), np.zeros(n)
        kept = sample_frame(
            frame,
            label=_LABEL,
            pilot=pilot,
            strategy=strategy,
            rate=self.rate,
            seed=self.seed,
            key=_ROW,
            floor=self.floor,
        )
        self.last_batch_ = {
            "index": kept[_POS].to_numpy(),
            "sampling_prob": kept["sampling_prob"].to_numpy(),
        }
        Xk = kept.select([f"x{j}" for j in range(d)]).to_numpy().astype(np.float64)
        return Xk, kept[_LABEL].to_numpy().astype(np.float64), kept["log_odds_offset"].to_numpy()

    def _append(self, X: np.ndarray, y: np.ndarray, off: np.ndarray) -> None:
        if len(y) > self.window:  # a huge batch: only its most recent rows fit
            X, y, off = X[-self.window :], y[-self.window :], off[-self.window :]
        self._chunks.append((X, y, off))
        self._rows += len(y)
        while self._rows > self.window:
            X0, y0, o0 = self._chunks[0]
            extra = self._rows - self.window
            if extra >= len(y0):
                self._chunks.popleft()
                self._rows -= len(y0)
            else:
                self._chunks[0] = (X0[extra:], y0[extra:], o0[extra:])
                self._rows -= extra

    def _window(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Xs, ys, os_ = zip(*self._chunks, strict=True)
        return (
            np.ascontiguousarray(np.concatenate(Xs)),
            np.concatenate(ys),
            np.concatenate(os_),
        )

    # ------------------------------------------------------------------ fitting

    def partial_fit(self, X: Any, y: Any, *, keys: Any = None) -> SlidingWindowLearner:
        """Sample one batch, slide the window, and update the model from its last state.

        Parameters
        ----------
        X : array-like of shape (n, d) (NumPy, polars or pandas)
        y : array-like of 0/1 labels
        keys : array-like, optional
            Row keys for the keyed draw (default: position in the stream).
        """
        M = numeric_matrix(X, self._d)
        yv = np.asarray(y)
        if yv.shape != (M.shape[0],):
            raise InputError(f"y has shape {yv.shape}, expected ({M.shape[0]},)")
        binary_labels(yv, "y")
        if self._d is None:
            self._d = M.shape[1]
        n = M.shape[0]
        if n == 0:
            return self
        Xk, yk, off = self._sample(M, yv.astype(np.int8), keys)
        self.n_seen_ += n
        self.n_kept_ += len(yk)
        self._append(Xk, yk, off)
        iterations = self._update()
        self.history_.append(
            {
                "rows": n,
                "kept": len(yk),
                "window_rows": self._rows,
                "iterations": iterations,
            }
        )
        return self

    def _update(self) -> int:
        """Warm-started trust-region Newton on the window's offset likelihood; iterations."""
        Xw, yw, ow = self._window()
        if yw.min() == yw.max():
            return 0  # one class only: nothing identifiable yet
        sol = solve_offset_logistic(
            Xw,
            yw,
            np.ones(len(yw)),
            ow,
            alpha=0.0 if math.isinf(self.C) else 1.0 / self.C,
            theta0=self._theta,  # None on the first update: the solver's cold start
            tol=1e-8,
            max_iter=self.max_iter,
            with_hessian=False,
        )
        self._theta = sol.theta
        self.n_updates_ += 1
        return sol.n_iter

    # ------------------------------------------------------------------ prediction

    def decision_function(self, X: Any) -> np.ndarray:
        """Population-scale log-odds (no offset at serving time)."""
        self._check_fitted()
        assert self._theta is not None
        M = numeric_matrix(X, self._d)
        return M @ self._theta[:-1] + self._theta[-1]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Population-scale probabilities, shape ``(n, 2)``."""
        p1 = sigmoid(self.decision_function(X))
        return np.column_stack([1 - p1, p1])
