"""Drawing a keyed negative sample for the in-memory estimators (classifier and samplers).

One path from a NumPy/Polars training set to the kept rows: resolve (or train) the pilot, then
run :func:`fastsample.engines.batch.sample_frame` with output columns no user column can take.
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any

import numpy as np
import polars as pl
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from fastsample.core.hashing import frame_keys
from fastsample.core.names import PILOT_MODEL_ALIASES, PILOT_MODELS, STRATEGIES
from fastsample.core.pilot import Pilot, as_pilot
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.plan import OutputColumns
from fastsample.engines.memory import sample_frame
from fastsample.errors import InputError

__all__ = ["SAMPLING_CONSTRAINTS", "draw_for", "draw_sample", "resolve_pilot"]

#: scikit-learn ``_parameter_constraints`` of the sampling parameters that the estimators
#: drawing with :func:`draw_sample` share (``pilot``, ``strategy``, ``rate``, ``floor``,
#: ``seed``).
SAMPLING_CONSTRAINTS: dict[str, Any] = {
    "pilot": "no_validation",
    "strategy": [StrOptions(set(STRATEGIES))],
    "rate": [Interval(Real, 0, 1, closed="right")],
    "floor": [None, Interval(Real, 0, 1, closed="both")],
    "seed": [Interval(Integral, None, None, closed="neither")],
}

_LABEL = "__fastsample_label__"
# Output columns with names no user column can take.
_COLUMNS = OutputColumns(
    prob="__fastsample_prob__", weight="__fastsample_weight__", offset="__fastsample_offset__"
)


def _is_fitted(est: Any) -> bool:
    try:
        check_is_fitted(est)
    except NotFittedError:
        return False
    except TypeError:  # not an estimator
        return False
    return True


def resolve_pilot(
    pilot: Any,
    frame: Any,
    y01: np.ndarray,
    *,
    features: list[str],
    strategy: str,
    seed: int,
    key: Any = None,
) -> Any:
    """The :class:`~fastsample.core.pilot.Pilot` to sample with, trained here when needed.

    ``pilot`` may be None (a logistic pilot is trained unless the strategy is uniform), a
    model name (``"logistic"``, ``"sgd"``, ``"hgb"``), an unfitted classifier (trained on a
    case-control sample), a fitted classifier, a :class:`Pilot` or a path to a saved one.
    """
    if pilot is None and strategy == "uniform":
        return None
    if pilot is None:
        pilot = "logistic"
    if isinstance(pilot, Pilot) or (
        isinstance(pilot, (str, os.PathLike)) and os.path.exists(os.fspath(pilot))
    ):
        return as_pilot(pilot)
    names = (*PILOT_MODELS, *PILOT_MODEL_ALIASES)
    if isinstance(pilot, str) and pilot not in names:
        raise InputError(
            f"pilot {pilot!r} is neither a saved pilot file nor one of {', '.join(names)}"
        )
    if isinstance(pilot, str) or not _is_fitted(pilot):
        keys = frame_keys(frame, key, 0)
        return fit_pilot(frame, y01, features=features, model=pilot, seed=seed, keys=keys)
    return as_pilot(pilot, features if getattr(pilot, "feature_names_in_", None) is None else None)


def draw_sample(
    frame: Any,
    y01: np.ndarray,
    *,
    features: list[str],
    pilot: Any,
    strategy: str,
    rate: float,
    seed: int,
    floor: float | None = None,
    key: Any = None,
) -> dict[str, Any]:
    """Run :func:`fastsample.engines.memory.sample_frame` on a polars frame with 0/1 labels ``y01``.

    Returns a dict with ``indices`` (kept rows, increasing), ``prob``, ``weight``, ``offset``,
    the resolved ``pilot``, the sampling ``plan`` and the counts of ``sample_frame``'s info.
    """
    df = frame.with_columns(pl.Series(_LABEL, np.asarray(y01, dtype=np.int8)))
    pilot_obj = resolve_pilot(
        pilot, df, y01, features=features, strategy=strategy, seed=seed, key=key
    )
    cols = _COLUMNS
    out, info = sample_frame(
        df,
        label=_LABEL,
        features=features,
        pilot=pilot_obj,
        strategy=strategy,
        rate=rate,
        seed=seed,
        key=key,
        floor=floor,
        columns=cols,
        return_info=True,
    )
    info = dict(info)
    info.update(
        prob=out.get_column(cols.prob).to_numpy(),
        weight=out.get_column(cols.weight).to_numpy(),
        offset=out.get_column(cols.offset).to_numpy(),
        pilot=pilot_obj,
    )
    return info


def draw_for(
    est: Any, frame: Any, y01: np.ndarray, *, features: list[str], key: Any = None
) -> dict[str, Any]:
    """:func:`draw_sample` with the estimator's own sampling parameters.

    Reads ``est``'s parameters named in :data:`SAMPLING_CONSTRAINTS` and sets ``est.pilot_``
    (the resolved pilot) and ``est.plan_`` (the sampling plan); returns what
    :func:`draw_sample` returns.
    """
    drawn = draw_sample(
        frame,
        y01,
        features=features,
        pilot=est.pilot,
        strategy=est.strategy,
        rate=est.rate,
        seed=int(est.seed),
        floor=est.floor,
        key=key,
    )
    est.pilot_ = drawn["pilot"]
    est.plan_ = drawn["plan"]
    return drawn
