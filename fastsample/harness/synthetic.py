"""A synthetic click log with a known logistic model, for demos, tests and benchmarks.

Columns, in order:

- ``id`` (int64): the row number, 0 .. rows-1.
- ``ts`` (timestamp[us]): 2026-01-01T00:00:00 plus 100 ms per row.
- ``device`` (dictionary-encoded string, a categorical): ``mobile`` 55%, ``desktop`` 35%,
  ``tablet`` 10%; independent of everything else.
- ``position`` (int32): ad slot 1..10, uniform; independent of everything else.
- ``f0`` .. ``f{D-1}`` (float32): independent standard normal features.
- ``y`` (int8): the label, ``P(y = 1 | f) = sigmoid(b0 + f · beta)`` evaluated on the stored
  float32 features, with ``beta_j = signal * (-1)^j / sqrt(D)`` (so ``f · beta ~ N(0, signal^2)``,
  ``signal = 2`` by default) and the intercept ``b0`` chosen so that the expected event rate
  ``E[sigmoid(b0 + signal Z)]``, ``Z ~ N(0, 1)``, equals the requested rate (Gauss–Hermite
  quadrature, then bisection; see :func:`click_log_intercept`).

Rows are generated in fixed blocks of 2^20 whose random streams derive from ``(seed, block)``,
so a given ``(rows, features, event_rate, seed)`` always produces the same data, and the first
``n`` rows of a longer log equal the shorter log of ``n`` rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fastsample.core.atomic import atomic_path
from fastsample.core.progress import progress_bar
from fastsample.engines.sinks import check_output, dictionary_columns, file_size
from fastsample.errors import InputError

BLOCK_ROWS = 1 << 20
DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_P = (0.55, 0.35, 0.10)
_EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
_STEP_US = 100_000


def click_log_coefficients(n_features: int, signal: float = 2.0) -> np.ndarray:
    """Slopes ``beta_j = signal * (-1)^j / sqrt(D)`` of the click log's logistic model."""
    j = np.arange(n_features)
    return signal * np.where(j % 2 == 0, 1.0, -1.0) / math.sqrt(n_features)


def click_log_intercept(event_rate: float, signal: float = 2.0) -> float:
    """Intercept ``b0`` with ``E[sigmoid(b0 + signal Z)] = event_rate`` for ``Z ~ N(0, 1)``.

    The expectation is computed with 120-node Gauss–Hermite quadrature (exact to ~1e-12 for
    this smooth integrand) and solved by bisection, as it is increasing in ``b0``.
    """
    if not 0.0 < event_rate < 1.0:
        raise InputError(f"event rate {event_rate!r} must be in (0, 1)")
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / math.sqrt(2.0 * math.pi)

    def rate(b0: float) -> float:
        z = b0 + signal * nodes
        return float(np.sum(weights * 0.5 * (1.0 + np.tanh(0.5 * z))))

    lo, hi = -60.0, 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if rate(mid) < event_rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _check(rows: int, features: int, event_rate: float, seed: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
        raise InputError(f"rows {rows!r} must be a non-negative integer")
    if isinstance(features, bool) or not isinstance(features, (int, np.integer)) or features < 1:
        raise InputError(f"features {features!r} must be a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed {seed!r} must be a non-negative integer")
    if not isinstance(event_rate, (int, float)) or not 0.0 < float(event_rate) < 1.0:
        raise InputError(f"event rate {event_rate!r} must be in (0, 1)")


def click_log_schema(features: int) -> pa.Schema:
    """Arrow schema of the click log with ``features`` feature columns."""
    fields = [
        pa.field("id", pa.int64()),
        pa.field("ts", pa.timestamp("us")),
        pa.field("device", pa.dictionary(pa.int32(), pa.string())),
        pa.field("position", pa.int32()),
        *[pa.field(f"f{j}", pa.float32()) for j in range(features)],
        pa.field("y", pa.int8()),
    ]
    return pa.schema(fields)


def _block(
    block: int, start: int, stop: int, features: int, b0: float, beta: np.ndarray, seed: int
) -> pa.Table:
    """Rows ``start .. stop-1`` (all inside ``block``) of the log."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, block])))
    n_block = BLOCK_ROWS
    # Draw the whole block's streams so that a prefix of the block is the same rows whatever
    # ``stop`` is; then slice.
    lo, hi = start - block * n_block, stop - block * n_block
    x = rng.standard_normal((n_block, features), dtype=np.float32)[lo:hi]
    u = rng.random(n_block)[lo:hi]
    dev = rng.choice(len(DEVICES), size=n_block, p=_DEVICE_P).astype(np.int32)[lo:hi]
    pos = rng.integers(1, 11, size=n_block, dtype=np.int32)[lo:hi]
    eta = b0 + x.astype(np.float64) @ beta
    p = 0.5 * (1.0 + np.tanh(0.5 * eta))
    y = (u < p).astype(np.int8)
    ids = np.arange(start, stop, dtype=np.int64)
    ts = (_EPOCH_US + ids * _STEP_US).astype("datetime64[us]")
    columns: dict[str, pa.Array] = {
        "id": pa.array(ids),
        "ts": pa.array(ts, type=pa.timestamp("us")),
        "device": pa.DictionaryArray.from_arrays(pa.array(dev), pa.array(DEVICES)),
        "position": pa.array(pos),
    }
    for j in range(features):
        columns[f"f{j}"] = pa.array(np.ascontiguousarray(x[:, j]))
    columns["y"] = pa.array(y)
    return pa.table(columns, schema=click_log_schema(features))


def iter_click_log(
    rows: int, *, features: int = 16, event_rate: float = 0.01, seed: int = 0, signal: float = 2.0
) -> Iterator[pa.Table]:
    """Yield the click log as Arrow tables of at most 2^20 rows, in row order."""
    _check(rows, features, event_rate, seed)
    b0 = click_log_intercept(float(event_rate), signal)
    beta = click_log_coefficients(features, signal)
    for block in range((rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        start = block * BLOCK_ROWS
        yield _block(block, start, min(rows, start + BLOCK_ROWS), features, b0, beta, seed)


def click_log(
    rows: int, *, features: int = 16, event_rate: float = 0.01, seed: int = 0, signal: float = 2.0
) -> pa.Table:
    """The click log in memory as one Arrow table (use :func:`generate` for large logs)."""
    tables = list(
        iter_click_log(rows, features=features, event_rate=event_rate, seed=seed, signal=signal)
    )
    if not tables:
        return click_log_schema(features).empty_table()
    return pa.concat_tables(tables)


def generate(
    path: str | os.PathLike[str],
    *,
    rows: int,
    features: int = 16,
    event_rate: float = 0.01,
    seed: int = 0,
    signal: float = 2.0,
    overwrite: bool = False,
    row_group_rows: int = 1 << 19,
    progress: bool = False,
) -> dict[str, float | int]:
    """Write the synthetic click log to a Parquet file (zstd), atomically.

    Parameters
    ----------
    path : path
        Output file; refused if it exists unless ``overwrite``.
    rows, features, event_rate, seed, signal
        See the module docstring.
    progress : bool
        Show a progress bar (on a terminal only).

    Returns
    -------
    dict
        ``rows``, ``positives``, ``intercept``, ``bytes``.
    """
    _check(rows, features, event_rate, seed)
    out = check_output(path, overwrite=overwrite)
    positives = 0
    schema = click_log_schema(features)
    with (
        atomic_path(out, overwrite=overwrite) as tmp,
        progress_bar(total=rows, desc="generate", unit="rows", enabled=progress) as bar,
    ):
        writer = pq.ParquetWriter(
            tmp, schema, compression="zstd", use_dictionary=dictionary_columns(schema)
        )
        try:
            for table in iter_click_log(
                rows, features=features, event_rate=event_rate, seed=seed, signal=signal
            ):
                positives += int(pc.sum(table.column("y")).as_py() or 0)
                writer.write_table(table, row_group_size=row_group_rows)
                bar.update(table.num_rows)
            if rows == 0:
                writer.write_table(schema.empty_table())
        finally:
            writer.close()
    return {
        "rows": int(rows),
        "positives": positives,
        "intercept": click_log_intercept(float(event_rate), signal),
        "bytes": file_size(out),
    }
