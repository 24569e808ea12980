"""A log that looks like real tabular event data: few positives, heavy tails, mixed scales.

The click log of :mod:`fastsample.harness.synthetic` has standard-normal features and a
logistic truth, which the linear pilot fits exactly. Real logs do not look like that, and on
them the one-pass kappa estimate drifted (issue 11). This generator reproduces the failure:

- about ``positives`` positives (default 1,000) among ``rows`` rows;
- ``features`` float64 features on very different scales: lognormal amounts (``amount*``,
  sigma 2, so a few rows are 10^4 times the median), Pareto-tailed counts (``count*``,
  tail index 1.3), durations in seconds (``secs*``, lognormal around 400), fractions in [0, 1]
  (``frac*``), tiny (``tiny*``, scale 1e-3) and huge offset columns (``big*``, 1e5 + 1e4 N),
  repeated in that order;
- a non-linear truth: the log-odds is additive in ``log1p`` of the amounts and counts, a
  threshold on the fractions and a sine of the durations' logarithm, so a logistic pilot on the
  raw, unscaled features is misspecified and a tree pilot is imperfect (few positives);
- ``id`` (int64, unique, shuffled), ``user_id`` (int64, about ``rows / 40`` users with
  Zipf-like activity, so it is *not* a row key) and ``y`` (int8).

Everything derives from ``seed``; the intercept is solved so the expected number of positives
is ``positives``.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fastsample.core.atomic import atomic_path
from fastsample.engines.sinks import check_output
from fastsample.errors import InputError

_KINDS = ("amount", "count", "secs", "frac", "tiny", "big")


def field_like_table(
    rows: int = 200_000, *, positives: int = 1_000, features: int = 12, seed: int = 0
) -> pa.Table:
    """The field-like log as one Arrow table (see the module docstring).

    Parameters
    ----------
    rows : int
        Number of rows.
    positives : int
        Expected number of positives (the intercept is solved for it).
    features : int
        Number of feature columns (at least 6: one of each kind).
    seed : int
        Seed of every random stream.

    Returns
    -------
    pyarrow.Table
        Columns ``id``, ``user_id``, the features, ``y``.
    """
    if rows < 1 or not 0 < positives < rows:
        raise InputError(f"need 0 < positives < rows, got positives={positives}, rows={rows}")
    if features < len(_KINDS):
        raise InputError(f"features must be at least {len(_KINDS)}, got {features}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    cols: dict[str, np.ndarray] = {}
    eta = np.zeros(rows)
    for j in range(features):
        kind = _KINDS[j % len(_KINDS)]
        name = f"{kind}{j // len(_KINDS)}"
        strength = 1.0 / (1 + j // len(_KINDS))  # later repeats matter less
        if kind == "amount":
            x = rng.lognormal(mean=3.0, sigma=2.0, size=rows)
            eta += 0.45 * strength * np.log1p(x)
        elif kind == "count":
            x = np.floor(rng.pareto(1.3, size=rows) * 3.0)
            eta += 0.6 * strength * np.log1p(x)
        elif kind == "secs":
            x = rng.lognormal(mean=6.0, sigma=1.2, size=rows)
            eta += 0.7 * strength * np.sin(np.log(x))
        elif kind == "frac":
            x = rng.beta(0.7, 2.0, size=rows)
            eta += 1.2 * strength * (x > 0.6)
        elif kind == "tiny":
            x = rng.normal(0.0, 1e-3, size=rows)
            eta += 300.0 * strength * x
        else:
            x = 1e5 + 1e4 * rng.standard_normal(rows)
            eta -= 0.3 * strength * (x - 1e5) / 1e4
        cols[name] = x
    b0 = _intercept(eta, positives)
    p = 1.0 / (1.0 + np.exp(-(b0 + eta)))
    y = (rng.random(rows) < p).astype(np.int8)
    # Zipf-like user activity: a few users own many rows, as in real logs.
    n_users = max(1, rows // 40)
    user = (rng.zipf(1.6, size=rows) - 1) % n_users
    ids = rng.permutation(rows).astype(np.int64) * 1_000_003 + 17
    table = {"id": ids, "user_id": user.astype(np.int64), **cols, "y": y}
    return pa.table(table)


def _intercept(eta: np.ndarray, positives: int) -> float:
    """``b0`` with ``sum sigmoid(b0 + eta) = positives`` (bisection; the sum increases in b0)."""
    lo, hi = -60.0, 60.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if float(np.sum(1.0 / (1.0 + np.exp(-(mid + eta))))) < positives:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def write_field_like(
    path: str | os.PathLike[str],
    rows: int = 200_000,
    *,
    positives: int = 1_000,
    features: int = 12,
    seed: int = 0,
    row_group_rows: int = 1 << 15,
    overwrite: bool = False,
) -> str:
    """Write :func:`field_like_table` to Parquet (atomically, several row groups); return the path."""
    out = check_output(path, overwrite=overwrite)
    table = field_like_table(rows, positives=positives, features=features, seed=seed)
    with atomic_path(out, overwrite=overwrite) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_rows)
    return out
