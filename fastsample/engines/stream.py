"""The streaming pass: draw every batch, write the kept rows, count what was done.

Only the label, feature and key columns of an Arrow batch go through Polars and the per-batch
step (:func:`fastsample.engines.batch.draw_indices`); the kept rows are gathered from the Arrow
batch itself, so the other columns are never converted, and appended to the output through an
atomic writer that encodes on its own thread.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numba
import numpy as np
import polars as pl
import pyarrow as pa

from fastsample import __version__
from fastsample.core.keysketch import KeySketch
from fastsample.core.numba_config import PARALLEL_MIN_ROWS, serial_kernels
from fastsample.core.pilot import Pilot
from fastsample.core.plan import SamplingPlan
from fastsample.core.progress import progress_bar
from fastsample.core.tally import ExpectedTally, rate_warning, z_score
from fastsample.engines.args import key_arg
from fastsample.engines.batch import Drawn, batch_scores, draw_indices, label_array
from fastsample.engines.prefetch import ordered_map
from fastsample.engines.publish import open_sink, write_text
from fastsample.engines.storage import PathLike


@dataclass
class SampleReport:
    """What :func:`sample_parquet` did: counts in and out, expected counts, kappa, timing.

    ``target_negatives_out`` is ``rate * N0``, what was asked for. ``expected_negatives_out``
    is the *true* expected number of kept negatives, ``sum_i a_0(x_i)`` over every negative of
    the input at the kappa used (summed in the sampling pass), whatever way kappa was found:
    in exact mode it equals the target up to rounding; in one-pass mode it shows how far the
    estimated kappa was off. ``negatives_sd`` is the Bernoulli standard deviation
    ``sqrt(sum a_0 (1 - a_0))`` of the realised count around it and ``negatives_z`` the
    realised count's z-score, ``(negatives_out - expected) / sd``: a draw with a correct kappa
    and a row key has ``|z|`` below 3 or so. ``expected_positives_out`` is N1 (every positive
    kept) except under ``lcc``, where it is ``sum_i a_1(x_i)`` over the positives (and
    ``positives_z`` its z-score). ``kappa_relative_error`` is the one-pass estimate's relative
    standard error (0 in exact mode). ``key_distinct`` estimates the distinct keys (None without
    a key column); ``warnings`` holds the one-line warnings of the run (also issued as
    :class:`fastsample.errors.FastsampleWarning`).
    """

    source: list[str]
    output: str
    strategy: str
    rate: float
    seed: int
    floor: float | None
    key: list[str] | None
    method: str
    kappa: float
    pilot_fingerprint: str | None
    group_key: bool = False
    rows_in: int = 0
    positives_in: int = 0
    negatives_in: int = 0
    rows_out: int = 0
    positives_out: int = 0
    negatives_out: int = 0
    expected_rows_out: float = 0.0
    expected_positives_out: float = 0.0
    expected_negatives_out: float = 0.0
    target_negatives_out: float = 0.0
    negatives_sd: float = 0.0
    negatives_z: float = 0.0
    positives_z: float = 0.0
    kappa_relative_error: float = 0.0
    key_distinct: float | None = None
    seconds: float = 0.0
    rows_per_second: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.rows_in:,} rows in ({self.positives_in:,} positives) -> "
            f"{self.rows_out:,} rows out ({self.positives_out:,} positives, "
            f"{self.negatives_out:,} negatives: target {self.target_negatives_out:,.1f}, "
            f"expected {self.expected_negatives_out:,.1f}, z {self.negatives_z:+.2f}) "
            f"in {self.seconds:.2f} s ({self.rows_per_second / 1e6:.2f} Mrows/s), "
            f"kappa {self.kappa:.6g} ({self.method})"
        )


def write_json(
    path: PathLike,
    payload: dict[str, Any],
    *,
    overwrite: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """``payload`` as JSON at ``path`` (a file or URI), published atomically."""
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    write_text(os.fspath(path), text, overwrite=overwrite, storage_options=storage_options)


def stream_sample(
    reader: Iterable[tuple[Any, str]],
    out: str,
    rep_obj: SampleReport,
    *,
    overwrite: bool,
    schema: Any,
    plan: SamplingPlan,
    pilot: Pilot | None,
    label: str,
    keys: list[str],
    target_neg: float | None,
    progress: bool,
    total: int | None,
    t0: float,
    sink_options: dict[str, Any] | None = None,
) -> None:
    """The sampling pass of :func:`fastsample.engines.parquet.sample_parquet`.

    Draw every batch of ``reader`` (Arrow record batches and their file names), write the kept
    rows and the metadata atomically to ``out`` in ``schema``, and fill in the counts of
    ``rep_obj``.
    """
    key = key_arg(keys)
    tally = ExpectedTally()
    sketch = KeySketch(total or 0) if keys and not rep_obj.group_key else None
    # Only these columns go through Polars and the kernels; the kept rows are gathered from
    # the Arrow batch itself, so the other columns are never converted (strings included).
    needed = list(dict.fromkeys([label, *(pilot.features if pilot else []), *keys]))
    workers = stream_workers(total)

    def numbered() -> Iterator[tuple[Any, str, int]]:
        # A row's default key is its global index: numbered here, in input order.
        start = 0
        for batch, path in reader:
            yield batch, path, start
            start += batch.num_rows

    def step(item: tuple[Any, str, int]) -> tuple[int, Drawn, Any, Any]:
        batch, path, start = item
        if workers > 1:
            # each worker is one core: the serial builds, never the thread pool
            with serial_kernels():
                return draw_one(batch, path, start, needed, label, pilot, plan, key, schema)
        return draw_one(batch, path, start, needed, label, pilot, plan, key, schema)

    with (
        open_sink(out, schema, overwrite=overwrite, **(sink_options or {})) as sink,
        compute_threads(total) if workers == 1 else nullcontext(),
    ):
        offset = 0
        with progress_bar(total=total, desc="sample", enabled=progress) as bar:
            for n, drawn, kept, scores in ordered_map(step, numbered(), workers):
                offset += n
                pos_in = int(np.count_nonzero(drawn.labels))
                rep_obj.positives_in += pos_in
                rep_obj.negatives_in += n - pos_in
                if kept is not None:
                    pos_out = int(np.count_nonzero(drawn.labels[drawn.index]))
                    rep_obj.positives_out += pos_out
                    rep_obj.negatives_out += drawn.index.size - pos_out
                    sink.write(kept)
                # Sums in input order whatever the workers: the report is the same bits.
                if scores is not None:
                    tally.add(scores[0], scores[1], drawn.labels, plan.kappa, plan.floor_value)
                if sketch is not None:
                    sketch.add(drawn.keys)
                bar.update(n)
        rep_obj.rows_in = offset
        close_run(sink, rep_obj, tally, sketch, plan, pilot, label, keys, target_neg, t0)


def uniform_probability(plan: SamplingPlan) -> float:
    """``a_0`` of every negative without a pilot (``h = 1``): ``clip(kappa, floor, 1)``."""
    return min(1.0, max(plan.floor_value, plan.kappa))


def close_run(
    sink: Any,
    rep_obj: SampleReport,
    tally: ExpectedTally,
    sketch: KeySketch | None,
    plan: SamplingPlan,
    pilot: Pilot | None,
    label: str,
    keys: list[str],
    target_neg: float | None,
    t0: float,
) -> None:
    """Complete ``rep_obj`` from the pass's counts, sums and key sketch; close ``sink`` with
    the run's metadata. ``rep_obj`` holds the input and output counts already.

    Without a pilot every negative has the same probability, so the expected sums are
    derived from the label counts once (the same bits however the input was batched).
    """
    if pilot is None:
        tally.add_constant(rep_obj.negatives_in, uniform_probability(plan), rep_obj.positives_in)
    rep_obj.rows_out = rep_obj.positives_out + rep_obj.negatives_out
    exp_neg, exp_pos = tally.negatives, tally.positives
    rep_obj.expected_negatives_out = exp_neg
    rep_obj.expected_positives_out = exp_pos
    rep_obj.expected_rows_out = exp_neg + exp_pos
    rep_obj.target_negatives_out = (
        target_neg if target_neg is not None else plan.rate * rep_obj.negatives_in
    )
    rep_obj.negatives_sd = float(np.sqrt(tally.negatives_var))
    rep_obj.negatives_z = z_score(rep_obj.negatives_out, exp_neg, tally.negatives_var)
    rep_obj.positives_z = z_score(rep_obj.positives_out, exp_pos, tally.positives_var)
    rep_obj.kappa_relative_error = float(plan.relative_error)
    said = rate_warning(
        rep_obj.target_negatives_out,
        exp_neg,
        rep_obj.negatives_out,
        tally.negatives_var,
        plan.method,
        grouped=rep_obj.group_key,
    )
    if said is not None:
        rep_obj.warnings.append(said)
    if sketch is not None:
        rep_obj.key_distinct = sketch.distinct()
        said = sketch.warning(keys)
        if said is not None:
            rep_obj.warnings.append(said)
    rep_obj.seconds = time.perf_counter() - t0
    rep_obj.rows_per_second = rep_obj.rows_in / rep_obj.seconds if rep_obj.seconds else 0.0
    meta = {
        "fastsample_version": __version__,
        "plan": plan.metadata(),
        "pilot_fingerprint": rep_obj.pilot_fingerprint,
        "pilot_features": pilot.features if pilot is not None else None,
        "label": label,
        "key": keys or None,
        "group_key": rep_obj.group_key,
        "counts": {k: getattr(rep_obj, k) for k in COUNT_FIELDS},
        "warnings": rep_obj.warnings,
    }
    sink.close(meta)


def draw_one(
    batch: Any,
    path: str,
    start: int,
    needed: list[str],
    label: str,
    pilot: Pilot | None,
    plan: SamplingPlan,
    key: Any,
    schema: Any,
) -> tuple[int, Drawn, Any, Any]:
    """One batch of the pass: ``(rows, drawn, kept rows or None, (h0, h1) or None)``.

    Touches nothing shared, so workers run it on different batches at once.
    """
    frame = pl.from_arrow(batch.select(needed))
    assert isinstance(frame, pl.DataFrame)
    drawn = draw_indices(
        frame, label=label, pilot=pilot, plan=plan, key=key, row_offset=start, source=repr(path)
    )
    n = batch.num_rows
    kept = kept_rows(batch, drawn, schema) if drawn.index.size else None
    # The true sum(a_y) and its variance need every row's scores, which the fused draw does
    # not return: a second scoring pass, summed by the caller in input order.
    scores = None
    if pilot is not None and n:
        scores = batch_scores(frame, pilot, plan.code, plan.info_inv, repr(path))
    return n, drawn, kept, scores


def stream_workers(rows: int | None) -> int:
    """Threads that draw batches at once: Numba's thread count (``NUMBA_NUM_THREADS``).

    One below ``PARALLEL_MIN_ROWS`` input rows (a single small batch gains nothing). The
    output, the report and every count are the same for any number (input-order merge).
    """
    if rows is not None and rows < PARALLEL_MIN_ROWS:
        return 1
    # read from the config: numba.get_num_threads() would start the thread pool
    return max(1, int(numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def arrow_array(values: np.ndarray, typ: Any) -> Any:
    """A NumPy array as an Arrow array over the same buffer.

    ``pa.array`` on a NumPy array imports pandas to rule out a Series: 0.3 s of start-up.
    """
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(typ, data.shape[0], [None, pa.py_buffer(data)])


def kept_rows(batch: Any, drawn: Drawn, schema: Any) -> Any:
    """The kept rows of an Arrow batch plus the three output columns, in ``schema``."""
    kept = batch.take(arrow_array(drawn.index, pa.int64()))
    f64 = pa.float64()
    arrays = [
        *kept.columns,
        arrow_array(drawn.prob, f64),
        arrow_array(1.0 / drawn.prob, f64),
        arrow_array(drawn.offset, f64),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextmanager
def compute_threads(rows: int | None = None) -> Iterator[None]:
    """Half the cores (at least one) for the Numba kernels while the engine streams.

    pyarrow decodes the next batches and encodes the output on the other cores meanwhile;
    letting the kernels take every core as well oversubscribed a 2-core machine (measured:
    5.0 s with 2 kernel threads, 4.3 s with 1, on 30M rows). The thread count does not change
    any result (fixed-block reductions). With fewer than ``PARALLEL_MIN_ROWS`` input rows
    (known from the metadata) no parallel kernel runs, and the thread pool, which
    ``numba.set_num_threads`` would start, is left asleep (start-up time).
    """
    if rows is not None and rows < PARALLEL_MIN_ROWS:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(before, (os.cpu_count() or 1) // 2)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


COUNT_FIELDS = (
    "rows_in",
    "positives_in",
    "negatives_in",
    "rows_out",
    "positives_out",
    "negatives_out",
    "expected_rows_out",
    "expected_positives_out",
    "expected_negatives_out",
    "target_negatives_out",
    "negatives_sd",
    "negatives_z",
    "positives_z",
    "kappa_relative_error",
    "key_distinct",
)


def batch_expected(
    frame: Any, label: str, pilot: Pilot | None, plan: SamplingPlan, source: str
) -> tuple[float, float]:
    """Expected kept (negatives, positives) of one batch: the sums of a_0 and a_1."""
    y = label_array(frame, label, source=source)
    f = plan.floor_value
    h0, h1 = batch_scores(frame, pilot, plan.code, plan.info_inv, source)
    a0 = np.clip(plan.kappa * h0, f, 1.0)
    a1 = np.where(h1 < 0, 1.0, np.clip(plan.kappa * h1, f, 1.0))
    pos = y == 1
    return float(a0[~pos].sum()), float(a1[pos].sum())


__all__ = [
    "COUNT_FIELDS",
    "SampleReport",
    "arrow_array",
    "batch_expected",
    "close_run",
    "compute_threads",
    "draw_one",
    "kept_rows",
    "stream_sample",
    "stream_workers",
    "uniform_probability",
    "write_json",
]
