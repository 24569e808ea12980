"""The in-memory engine: :func:`sample_frame` samples a whole frame on the per-batch step.

The frame is one batch: its scores give kappa exactly (water-filling over every negative),
then :func:`fastsample.engines.batch.draw_indices` draws it with those same scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from fastsample.core import kernels as K
from fastsample.core.hashing import frame_keys
from fastsample.core.pilot import Pilot, as_pilot, feature_matrix
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.plan import OutputColumns, SamplingPlan, resolve_parameters, solve_plan
from fastsample.core.strategies import expected_total, information_inverse
from fastsample.engines.batch import batch_scores, draw_indices, label_array, with_output_columns
from fastsample.errors import InputError


def as_polars_frame(frame: Any, label: Any) -> tuple[pl.DataFrame, Any, str]:
    """(polars frame, label name, container kind) from polars, pandas or NumPy input.

    A 2-D array's columns are named ``column_0, column_1, ...`` and an integer ``label``
    becomes the name of that column.
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
        Inclusion-probability strategy (see :mod:`fastsample.core.strategies`).
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
    params = resolve_parameters(strategy, rate, floor, seed)
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
    if params.code == K.OPT_A and pl_obj is not None:
        info_inv = pl_obj.info_inv
        if info_inv is None:
            X = feature_matrix(df, pl_obj.features)
            info_inv = information_inverse(X, pl_obj.logits(X))
    h0, h1 = batch_scores(df, pl_obj, params.code, info_inv, h1_values=False)
    neg = y == 0
    plan = solve_plan(params, h0[neg], info_inv=info_inv, columns=cols)
    drawn = draw_indices(
        df, label=label_name, pilot=pl_obj, plan=plan, key=key, labels=y, scores=(h0, h1)
    )
    out = with_output_columns(df, drawn, cols)
    result: Any = out.to_pandas() if kind == "pandas" else out
    if not return_info:
        return result
    kept = int(drawn.index.shape[0])
    n_pos_out = int(y[drawn.index].sum())
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
        "indices": drawn.index.copy(),
    }
    return result, info


def _expected_positives(h1: np.ndarray, y: np.ndarray, plan: SamplingPlan) -> float:
    pos = y == 1
    if not pos.any():
        return 0.0
    if h1.shape[0] == 0 or (h1[pos] < 0).all():  # empty: every h1 is -1
        return float(pos.sum())
    h = h1[pos]
    return expected_total(h, np.zeros(0), plan.kappa, plan.floor_value)  # unit weights


__all__ = ["as_polars_frame", "sample_frame"]
