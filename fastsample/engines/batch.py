"""The draw: one batch at a time (for the engines) and a whole frame in memory.

Flow: frame -> label and feature columns -> pilot scores ``h`` -> ``kappa`` -> keyed draw ->
kept rows + ``sampling_prob``, ``sample_weight``, ``log_odds_offset``. ``sample_frame`` solves
kappa exactly over the frame; the streaming engines get kappa first (a :class:`SamplingPlan`)
and then call :func:`draw_batch` per batch, which for a linear pilot is a single fused pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fastsample.core import kernels as K
from fastsample.core.hashing import frame_keys, seed_mix
from fastsample.core.pilot import Pilot, as_pilot, feature_matrix, raise_if_not_finite
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.strategies import (
    effective_floor,
    expected_count,
    information_inverse,
    solve_kappa,
    strategy_code,
    uses_features,
)
from fastsample.errors import InputError

_EMPTY_2D = np.zeros((0, 0), dtype=np.float64)


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
class SamplingPlan:
    """Everything needed to draw a batch once ``kappa`` is known.

    Attributes
    ----------
    strategy, rate, seed, floor
        The user's parameters (``floor`` None means none was asked for).
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
    """

    strategy: str
    rate: float
    seed: int
    kappa: float
    target_negatives: float
    expected_negatives: float
    floor: float | None = None
    method: str = "exact"
    info_inv: np.ndarray | None = field(default=None, compare=False)
    columns: OutputColumns = field(default_factory=OutputColumns)

    def metadata(self) -> dict[str, Any]:
        """JSON-ready parameters for the output's key-value metadata."""
        d = asdict(self)
        d.pop("info_inv")
        d["columns"] = asdict(self.columns)
        return d


def check_rate(rate: Any) -> float:
    """``rate`` as a float in (0, 1], else ``InputError``."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise InputError(f"rate must be a number in (0, 1], got {rate!r}") from None
    if not 0.0 < r <= 1.0:
        raise InputError(f"rate must be in (0, 1], got {rate!r}")
    return r


def plan_sampling(
    h0: Any,
    *,
    strategy: str,
    rate: float,
    seed: int,
    floor: float | None = None,
    weights: Any = None,
    n_negatives: float | None = None,
    info_inv: np.ndarray | None = None,
    columns: OutputColumns | None = None,
    method: str = "exact",
) -> SamplingPlan:
    """Solve kappa for the negatives' scores ``h0`` and return the plan.

    Parameters
    ----------
    h0 : array-like
        Scores of the negatives (all of them, or a weighted sample of them).
    strategy, rate, seed, floor
        Sampling parameters.
    weights : array-like, optional
        Horvitz–Thompson weights when ``h0`` is a sample (or counts for histogram centres).
    n_negatives : float, optional
        True number of negatives; the target is ``rate * n_negatives`` and sample weights are
        rescaled to total it (a ratio estimator). Default: the (weighted) count of ``h0``.
    """
    strategy_code(strategy)
    r = check_rate(rate)
    effective_floor(floor)
    h = np.ascontiguousarray(h0, dtype=np.float64)
    w = np.ones(h.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if n_negatives is not None and total > 0:
        w = w * (float(n_negatives) / total)
        total = float(n_negatives)
    target = r * total
    kappa = solve_kappa(h, target, floor=floor, weights=w)
    expected = expected_count(h, kappa, floor=floor, weights=w) if h.size else 0.0
    return SamplingPlan(
        strategy=strategy,
        rate=r,
        seed=int(seed),
        kappa=kappa,
        target_negatives=target,
        expected_negatives=expected,
        floor=floor,
        method=method,
        info_inv=info_inv,
        columns=columns or OutputColumns(),
    )


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
    if pilot.reference_X is None or pilot.reference_weight is None or pilot.n_negative is None:
        raise InputError(
            "this pilot has no reference sample for a one-pass kappa; use exact mode or a pilot from train_pilot/fit_pilot"
        )
    from fastsample.core.strategies import inclusion_scores

    eta = pilot.logits(pilot.reference_X)
    h0, _ = inclusion_scores(strategy, eta, pilot.reference_X, pilot.info_inv)
    return plan_sampling(
        h0,
        strategy=strategy,
        rate=rate,
        seed=seed,
        floor=floor,
        weights=pilot.reference_weight,
        n_negatives=pilot.n_negative,
        info_inv=pilot.info_inv,
        columns=columns,
        method="pilot-sample",
    )


def label_array(frame: pl.DataFrame, label: str, *, source: str = "") -> np.ndarray:
    """The label column as int8 0/1; ``InputError`` for a missing, null or non-binary label."""
    where = f" in {source}" if source else ""
    if label not in frame.columns:
        raise InputError(f"label column {label!r} not found{where}")
    s = frame.get_column(label)
    if s.null_count():
        raise InputError(f"label column {label!r}{where} has {s.null_count()} null value(s)")
    if not (s.dtype.is_numeric() or s.dtype == pl.Boolean):
        raise InputError(f"label column {label!r}{where} must be 0/1, found type {s.dtype}")
    if s.dtype == pl.Boolean:
        return s.cast(pl.Int8).to_numpy()
    bad = s.filter((s != 0) & (s != 1))
    if bad.len():
        raise InputError(f"label column {label!r}{where} must be 0/1, found value {bad[0]!r}")
    return s.cast(pl.Int8).to_numpy()


def _scores(
    frame: pl.DataFrame,
    pilot: Pilot | None,
    strategy: str,
    info_inv: np.ndarray | None,
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(h0, h1) of every row; h1 = -1 where positives are always kept."""
    n = frame.height
    code = strategy_code(strategy)
    h0 = np.empty(n)
    h1 = np.empty(n)
    if pilot is None:
        h0.fill(1.0)
        h1.fill(-1.0)
        return h0, h1
    lin = pilot.linear
    cols = _feature_columns(frame, pilot.features) if n and lin is not None else None
    if cols is not None and lin is not None and code not in (K.OPT_L, K.OPT_A):
        K.for_rows(K.linear_scores_columns, n)(*_addresses(cols), lin[0], lin[1], code, h0, h1)
        if np.isnan(h0).any():
            _raise_non_finite(
                feature_matrix(frame, pilot.features, check_finite=False), pilot, source
            )
        return h0, h1
    # a linear pilot's kernel flags non-finite features itself (no extra pass over X)
    X = feature_matrix(frame, pilot.features, source=source, check_finite=lin is None)
    Minv = _info(code, info_inv)
    if n == 0:
        return h0, h1
    if lin is not None:
        K.for_rows(K.linear_scores, n)(X, lin[0], lin[1], code, Minv, h0, h1)
        if np.isnan(h0).any():
            _raise_non_finite(X, pilot, source)
    else:
        K.for_rows(K.strategy_scores, n)(
            code, pilot.logits(X), X if code in (K.OPT_L, K.OPT_A) else _EMPTY_2D, Minv, h0, h1
        )
    return h0, h1


def _feature_columns(frame: pl.DataFrame, features: list[str]) -> list[np.ndarray] | None:
    """The feature columns as contiguous arrays of one float dtype, or None.

    float32 or float64 columns without nulls come out as views of the frame's buffers; None
    (use :func:`feature_matrix`) when the dtypes differ or a column is missing, not a float, or
    has nulls, so the dtype rule and every error message stay :func:`feature_matrix`'s.
    """
    if any(f not in frame.columns for f in features):
        return None
    series = [frame.get_column(f) for f in features]
    dtypes = {s.dtype for s in series}
    if len(dtypes) != 1 or not dtypes <= {pl.Float32, pl.Float64}:
        return None
    if any(s.null_count() for s in series):
        return None
    cols = [s.to_numpy() for s in series]
    if not all(c.flags.c_contiguous for c in cols):
        return None
    return cols


def _addresses(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Arguments of the column kernels: the buffers' addresses and a dtype prototype.

    The kernels read the buffers in place, so the caller keeps ``cols`` alive during the call.
    """
    return np.array([c.ctypes.data for c in cols], dtype=np.uint64), cols[0][:0]


def _raise_non_finite(X: np.ndarray, pilot: Pilot, source: str) -> None:
    raise_if_not_finite(X, pilot.features, source)
    where = f" in {source}" if source else ""
    raise InputError(f"pilot logits overflow{where}: features too large for the pilot's weights")


def _info(code: int, info_inv: np.ndarray | None) -> np.ndarray:
    if code != K.OPT_A:
        return _EMPTY_2D
    if info_inv is None:
        raise InputError("strategy 'opt-a' needs the pilot's information matrix")
    return np.ascontiguousarray(info_inv, dtype=np.float64)


def _buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.float64),
        np.zeros((n + K.BLOCK - 1) // K.BLOCK, dtype=np.int64),
    )


def _attach(
    frame: pl.DataFrame,
    idx: np.ndarray,
    prob: np.ndarray,
    offset: np.ndarray,
    columns: OutputColumns,
) -> pl.DataFrame:
    kept = frame[idx] if idx.shape[0] != frame.height else frame
    return kept.with_columns(
        pl.Series(columns.prob, prob),
        pl.Series(columns.weight, 1.0 / prob),
        pl.Series(columns.offset, offset),
    )


def draw_batch(
    frame: pl.DataFrame,
    *,
    label: str,
    pilot: Pilot | None,
    plan: SamplingPlan,
    key: str | list[str] | None = None,
    row_offset: int = 0,
    source: str = "",
) -> pl.DataFrame:
    """Kept rows of one batch with the three output columns, for a known plan.

    The decision for each row depends only on its key (or global row index
    ``row_offset + i`` when ``key`` is None), the seed and its pilot score, so splitting the
    input into batches of any size gives the same rows.

    Parameters
    ----------
    frame : polars.DataFrame
        One batch of input rows.
    label : str
        Label column (0/1).
    pilot : Pilot or None
        Pilot (None only for ``strategy="uniform"``); its features are read from the frame.
    plan : SamplingPlan
        From :func:`plan_sampling`, :func:`plan_from_pilot` or the engine's exact pass.
    key : str or list of str, optional
        Key column(s).
    row_offset : int
        Global index of the batch's first row (used when ``key`` is None).
    source : str
        File name for error messages.
    """
    drawn = draw_indices(
        frame, label=label, pilot=pilot, plan=plan, key=key, row_offset=row_offset, source=source
    )
    return _attach(frame, drawn.index, drawn.prob, drawn.offset, plan.columns)


@dataclass(frozen=True)
class Drawn:
    """The outcome of :func:`draw_indices` for one batch.

    Attributes
    ----------
    index : ndarray of int64
        Positions of the kept rows in the batch, increasing.
    prob, offset : ndarray of float64
        Inclusion probability and log-odds offset of each kept row.
    labels : ndarray of int8
        The batch's 0/1 labels (every row, validated).
    """

    index: np.ndarray
    prob: np.ndarray
    offset: np.ndarray
    labels: np.ndarray


def draw_indices(
    frame: pl.DataFrame,
    *,
    label: str,
    pilot: Pilot | None,
    plan: SamplingPlan,
    key: str | list[str] | None = None,
    row_offset: int = 0,
    source: str = "",
) -> Drawn:
    """Which rows of one batch are kept, without building the kept rows.

    Same decisions as :func:`draw_batch` (whose parameters these are); ``frame`` needs only
    the label, the pilot's features and the key columns. Engines holding the batch in another
    form (an Arrow record batch) gather the kept rows themselves with ``index``.
    """
    if pilot is None and plan.strategy != "uniform":
        raise InputError(f"strategy {plan.strategy!r} needs a pilot")
    y = label_array(frame, label, source=source)
    keys = frame_keys(frame, key, row_offset)
    n = frame.height
    idx, prob, off, counts = _buffers(n)
    code = strategy_code(plan.strategy)
    floor = effective_floor(plan.floor)
    mix = seed_mix(plan.seed)
    lin = pilot.linear if pilot is not None else None
    cols = (
        _feature_columns(frame, pilot.features)
        if n and pilot is not None and lin is not None
        else None
    )
    if cols is not None and code not in (K.OPT_L, K.OPT_A):
        assert pilot is not None and lin is not None  # cols is only built for a linear pilot
        K.for_rows(K.linear_draw_columns, n)(
            *_addresses(cols),
            lin[0],
            lin[1],
            code,
            y,
            keys,
            mix,
            plan.kappa,
            floor,
            idx,
            prob,
            off,
            counts,
        )
        if counts.min() < 0:
            _raise_non_finite(
                feature_matrix(frame, pilot.features, check_finite=False),
                pilot,
                source,
            )
    elif n and lin is not None:
        X = feature_matrix(frame, pilot.features, source=source, check_finite=False)  # type: ignore[union-attr]
        K.for_rows(K.linear_draw, n)(
            X,
            lin[0],
            lin[1],
            code,
            _info(code, plan.info_inv),
            y,
            keys,
            mix,
            plan.kappa,
            floor,
            idx,
            prob,
            off,
            counts,
        )
        if counts.min() < 0:
            _raise_non_finite(X, pilot, source)  # type: ignore[arg-type]
    elif n:
        h0, h1 = _scores(frame, pilot, plan.strategy, plan.info_inv, source)
        K.for_rows(K.draw, n)(h0, h1, y, keys, mix, plan.kappa, floor, idx, prob, off, counts)
    kept = int(K.compact(idx, prob, off, counts)) if n else 0
    return Drawn(idx[:kept], prob[:kept], off[:kept], y)


def as_polars_frame(frame: Any, label: Any) -> tuple[pl.DataFrame, str, str]:
    """(polars frame, label name, container kind) from polars, pandas or NumPy input.

    The kind (``"polars"``, ``"pandas"`` or ``"numpy"``) says how to hand a result back; a 2-D
    array's columns become ``column_0``, ``column_1``, ... and an integer label names one.
    """
    if isinstance(frame, pl.DataFrame):
        return frame, label, "polars"
    if isinstance(frame, pl.LazyFrame):
        return frame.collect(), label, "polars"
    mod = type(frame).__module__
    if mod.startswith("pandas"):
        return pl.from_pandas(frame), label, "pandas"
    if isinstance(frame, dict):
        return pl.DataFrame(frame), label, "polars"
    arr = np.asarray(frame)
    if arr.dtype.names:
        return pl.DataFrame({n: arr[n] for n in arr.dtype.names}), label, "numpy"
    if arr.ndim != 2:
        raise InputError(f"frame must be a DataFrame or a 2-D array, got shape {arr.shape}")
    cols = {f"column_{j}": arr[:, j] for j in range(arr.shape[1])}
    if isinstance(label, (int, np.integer)):
        label = f"column_{int(label)}"
    return pl.DataFrame(cols), label, "numpy"


def sample_frame(
    frame: Any,
    *,
    label: str | int,
    features: list[str] | None = None,
    pilot: Any = None,
    strategy: str = "proportional",
    rate: float = 0.1,
    seed: int = 0,
    key: str | list[str] | None = None,
    floor: float | None = None,
    columns: OutputColumns | None = None,
    return_info: bool = False,
) -> Any:
    """Sample an in-memory frame: every positive, a scored fraction of the negatives.

    kappa is solved exactly over the frame's negatives, so the expected number of kept
    negatives is ``rate * N0``.

    Parameters
    ----------
    frame : polars.DataFrame, pandas.DataFrame or numpy array
        Rows to sample. A 2-D array's columns are named ``column_0, column_1, ...`` and
        ``label`` may be a column position.
    label : str or int
        Label column (0/1).
    features : list of str, optional
        Feature columns; default the pilot's. Needed to train a pilot when none is given.
    pilot : Pilot, path, fitted classifier or None
        The pilot. None with a strategy other than ``uniform`` trains one on this frame
        with :func:`fastsample.core.pilot_fit.fit_pilot` (its own seed stream).
    strategy : {"proportional", "uniform", "opt-l", "opt-a", "lcc"}
        Inclusion-probability strategy (DESIGN.md §2.2).
    rate : float
        Expected fraction of negatives kept, in (0, 1].
    seed : int
        Sampling seed.
    key : str or list of str, optional
        Key column(s); default the row index.
    floor : float, optional
        Lower bound on every inclusion probability.
    columns : OutputColumns, optional
        Names of the added columns.
    return_info : bool
        Also return a dict with the plan, counts, pilot fingerprint and ``indices``: the
        positions of the kept rows in the input, increasing.

    Returns
    -------
    DataFrame (same kind as the input; polars for NumPy input), or (frame, info).

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"id": range(10), "y": [1] + [0] * 9})
    >>> out = sample_frame(df, label="y", strategy="uniform", rate=1.0)
    >>> out.columns
    ['id', 'y', 'sampling_prob', 'sample_weight', 'log_odds_offset']
    """
    df, label_name, kind = as_polars_frame(frame, label)
    if not isinstance(label_name, str):
        raise InputError(f"label must be a column name, got {label_name!r}")
    cols = columns or OutputColumns()
    cols.check(df.columns)
    code = strategy_code(strategy)
    check_rate(rate)
    y = label_array(df, label_name)
    if strategy == "uniform" and pilot is None:
        pl_obj: Pilot | None = None
    elif pilot is None:
        if not features:
            raise InputError(f"strategy {strategy!r} needs a pilot, or `features` to train one")
        keys = frame_keys(df, key, 0)
        pl_obj = fit_pilot(df, y, features=list(features), seed=seed, keys=keys, label=label_name)
    else:
        pl_obj = as_pilot(pilot, features)
    info_inv = None
    if code == K.OPT_A and pl_obj is not None:
        info_inv = pl_obj.info_inv
        if info_inv is None:
            X = feature_matrix(df, pl_obj.features)
            info_inv = information_inverse(X, pl_obj.logits(X))
    h0, h1 = _scores(df, pl_obj, strategy, info_inv, "")
    neg = y == 0
    plan = plan_sampling(
        h0[neg],
        strategy=strategy,
        rate=rate,
        seed=seed,
        floor=floor,
        info_inv=info_inv,
        columns=cols,
    )
    keys = frame_keys(df, key, 0)
    idx, prob, off, counts = _buffers(df.height)
    if df.height:
        K.for_rows(K.draw, df.height)(
            h0,
            h1,
            y,
            keys,
            seed_mix(seed),
            plan.kappa,
            effective_floor(floor),
            idx,
            prob,
            off,
            counts,
        )
    kept = int(K.compact(idx, prob, off, counts)) if df.height else 0
    out = _attach(df, idx[:kept], prob[:kept], off[:kept], cols)
    if kind == "pandas":
        result: Any = out.to_pandas()
    else:
        result = out
    if not return_info:
        return result
    n_pos_out = int(y[idx[:kept]].sum())
    info = {
        "plan": plan,
        "rows_in": df.height,
        "positives_in": int(y.sum()),
        "negatives_in": int(neg.sum()),
        "rows_out": kept,
        "positives_out": n_pos_out,
        "negatives_out": kept - n_pos_out,
        "expected_negatives_out": plan.expected_negatives,
        "expected_positives_out": _expected_positives(h1, y, plan),
        "pilot_fingerprint": pl_obj.fingerprint if pl_obj is not None else None,
        "pilot": pl_obj,
        "indices": idx[:kept].copy(),
    }
    return result, info


def _expected_positives(h1: np.ndarray, y: np.ndarray, plan: SamplingPlan) -> float:
    pos = y == 1
    if not pos.any():
        return 0.0
    if (h1[pos] < 0).all():
        return float(pos.sum())
    return expected_count(h1[pos], plan.kappa, floor=plan.floor)


__all__ = [
    "Drawn",
    "OutputColumns",
    "SamplingPlan",
    "as_polars_frame",
    "draw_batch",
    "draw_indices",
    "label_array",
    "plan_from_pilot",
    "plan_sampling",
    "sample_frame",
    "uses_features",
]
