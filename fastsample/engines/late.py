"""The uniform pass on Polars' engine: decide on label and key, decode the other columns late.

Under ``strategy="uniform"`` without a pilot a row's fate depends only on its key (or global row
index), the seed and its label: positives are kept, a negative when ``u(key, seed) < a_0``.
For integer or boolean keys (and the row index) that is a Polars expression with the kernels'
bits (:func:`fastsample.core.hashing.uniform_below_expr`), so the pass is one query,
``scan_parquet(...).filter(label == 1 | u < a_0)``: Polars decodes the label and key of every
row and the other columns only for the kept rows, on its own thread pool, in input order. The
kept rows get the three output columns and go to the same atomic sink as the streaming pass's.

Meanwhile one thread reads only the label and key columns through
:func:`fastsample.engines.sources.iter_batches`, in the streaming pass's batches, and runs
that pass's checks on them (0/1 labels, null keys: the same errors, naming the same file) and
its counts and key sketch; so the output, the report and the errors are the streaming pass's.
:func:`late_pass` says when this path applies; every other case (remote files, streams, a hive
key that the files also hold, a column type whose round trip through Polars is not checked) takes
the streaming pass.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from fastsample.core.keyexpr import TWO_POW_M53, key_words_expr, seed_word, uniform_below_expr
from fastsample.core.progress import progress_bar
from fastsample.engines.args import key_arg
from fastsample.engines.publish import open_sink
from fastsample.engines.sources import Source, iter_batches, polars_type
from fastsample.engines.storage import one_line, raised_by
from fastsample.errors import InputError

if TYPE_CHECKING:
    from fastsample.core.keysketch import KeySketch
    from fastsample.core.plan import SamplingPlan
    from fastsample.engines.stream import SampleReport

# This module imports no Numba at its top: sample_parquet starts the query (start_query) before
# Numba and the kernels are imported, so Polars decodes meanwhile. What needs them is imported
# inside the functions that run later.

#: The row index column of a key-less query (a source holding this name takes the stream).
ROW_INDEX = "__fastsample_row"


def _round_trips(typ: pa.DataType) -> bool:
    """Whether a column of this Arrow type comes back from Polars with the same values and,
    cast to ``typ``, the same type (the types ``tests/test_late.py`` compares)."""
    if pa.types.is_dictionary(typ):
        return _round_trips(typ.value_type) and pa.types.is_string(typ.value_type)
    if pa.types.is_timestamp(typ):
        return typ.unit in ("ms", "us", "ns")
    return bool(
        pa.types.is_integer(typ)
        or pa.types.is_float32(typ)
        or pa.types.is_float64(typ)
        or pa.types.is_boolean(typ)
        or pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
        or pa.types.is_date32(typ)
    )


def late_pass(src: Source, keys: list[str]) -> bool:
    """Whether the uniform pass can run on Polars' engine for ``src`` and ``keys``.

    Local Parquet files with rows, every column of a type that round-trips through Polars,
    integer or boolean key columns (or none), and no hive key that the files also hold (the
    streaming pass checks those values row by row).
    """
    if src.stream is not None or src.filesystem is not None or not src.num_rows:
        return False
    names = list(src.schema.names)
    own = src.file_schema.names if src.file_schema is not None else names
    if ROW_INDEX in names or any(c in own for part in src.partitions for c in part):
        return False
    if any(k not in names for k in keys):
        return False  # the usual error comes from the checks that follow
    if not all(_round_trips(f.type) for f in src.schema):
        return False
    return not keys or _key_words(src, keys) is not None


#: Polars' type of each Arrow integer and boolean type (the key types this path hashes).
_KEY_TYPES = {
    pa.bool_(): pl.Boolean,
    pa.int8(): pl.Int8,
    pa.int16(): pl.Int16,
    pa.int32(): pl.Int32,
    pa.int64(): pl.Int64,
    pa.uint8(): pl.UInt8,
    pa.uint16(): pl.UInt16,
    pa.uint32(): pl.UInt32,
    pa.uint64(): pl.UInt64,
}


def _key_words(src: Source, keys: list[str]) -> pl.Expr | None:
    """The key words of ``keys`` as a Polars expression; None unless every key column is an
    integer or boolean column. (Arrow types mapped here: ``pl.from_arrow`` of the schema would
    import pandas, 0.25 s of start-up.)"""
    dtypes = [_KEY_TYPES.get(src.schema.field(k).type) for k in keys]
    if any(d is None for d in dtypes):
        return None
    return key_words_expr(keys, dtypes)


def kept_query(src: Source, label: str, keys: list[str], seed: int, a0: float) -> pl.LazyFrame:
    """The kept rows of ``src`` in input order, every column in ``src.schema`` order: the
    positives and the negatives whose uniform is below ``a0``."""
    own = src.file_schema.names if src.file_schema is not None else src.schema.names
    extra = [c for c in src.schema.names if c not in own]
    parts = src.partitions or [{} for _ in src.files]
    frames = []
    start = 0
    for path, part in zip(src.fs_paths(), parts, strict=True):
        lf = pl.scan_parquet(
            path,
            hive_partitioning=False,
            glob=False,
            row_index_name=None if keys else ROW_INDEX,
            row_index_offset=start,
        )
        if extra:
            lf = lf.with_columns(
                pl.lit(part.get(c), dtype=polars_type(src.schema.field(c).type)).alias(c)
                for c in extra
            )
        frames.append(lf)
        if not keys:
            start += pq.read_metadata(path).num_rows
    query = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
    if keys:
        words = _key_words(src, keys)
        assert words is not None  # late_pass checked the key types
    else:
        words = pl.col(ROW_INDEX).cast(pl.UInt64)
    keep = (pl.col(label).cast(pl.Float64) == 1.0) | uniform_below_expr(words, seed, a0)
    return query.filter(keep).select(src.schema.names)


def _checks(
    src: Source,
    label: str,
    keys: list[str],
    batch_rows: int,
    sketch: KeySketch | None,
    bar: Any,
    stop: threading.Event,
) -> tuple[int, int]:
    """The streaming pass's checks, counts and sketch over the label and key columns only:
    ``(positives, negatives)`` of the input; raises the error that pass would raise."""
    from fastsample.core.hashing import frame_keys  # lazy: Numba (see the top)
    from fastsample.engines.batch import label_array  # lazy: Numba (see the top)

    key = key_arg(keys)
    positives = negatives = 0
    columns = list(dict.fromkeys([label, *keys]))
    if sketch is not None:
        # pyarrow ends a batch at every row group when a dictionary column is read (the
        # dictionary may change there), and the sketch's in-batch repeat count depends on the
        # batches: read one such column too, so the batches are the streaming pass's.
        columns += [f.name for f in src.schema if pa.types.is_dictionary(f.type)][:1]
    for batch, path in iter_batches(src, batch_rows=batch_rows, columns=columns):
        if stop.is_set():
            break
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        y = label_array(frame, label, source=repr(path))
        if key is not None:
            words = frame_keys(frame, key)
            if sketch is not None:
                sketch.add(words)
        pos = int(np.count_nonzero(y))
        positives += pos
        negatives += y.shape[0] - pos
        bar.update(y.shape[0])
    return positives, negatives


def _with_columns(
    frame: pl.DataFrame, label: str, a0: float, offset: float, schema: pa.Schema
) -> tuple[pa.Table, int]:
    """Kept rows from Polars with the three output columns, cast to ``schema``; and the
    number of positives among them."""
    from fastsample.engines.stream import arrow_array  # lazy: Numba (see the top)

    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    positive = frame.get_column(label).cast(pl.Float64).to_numpy() == 1.0
    prob = np.where(positive, 1.0, a0)
    f64 = pa.float64()
    arrays = [table.column(i).cast(schema.field(i).type) for i in range(table.num_columns)] + [
        pa.chunked_array([arrow_array(prob, f64)]),
        pa.chunked_array([arrow_array(1.0 / prob, f64)]),
        pa.chunked_array([arrow_array(np.full(frame.height, offset), f64)]),
    ]
    return pa.Table.from_arrays(arrays, schema=schema), int(np.count_nonzero(positive))


@dataclass(frozen=True)
class Started:
    """A query started before the plan was solved, and the ``a0`` and seed it decides with."""

    a0: float
    seed: int
    batches: Any


def guess_probability(rate: Any, floor: Any) -> float | None:
    """``a_0`` as the plan will give it without a pilot, ``clip(rate, floor, 1)``, from the raw
    arguments; None unless they are plain numbers in range (the checks then say why)."""
    try:
        r = float(rate)
        f = math.ldexp(1.0, -53) if floor is None else max(float(floor), math.ldexp(1.0, -53))
    except (TypeError, ValueError):
        return None
    if not (0.0 < r <= 1.0 and f <= 1.0):
        return None
    return min(1.0, max(f, r))


def start_query(
    src: Source, label: str, keys: list[str], rate: Any, floor: Any, seed: Any
) -> Started | None:
    """Start the kept-rows query from the raw arguments, before the plan is solved (and
    before Numba is imported): :func:`stream_late` uses it when the plan's ``a0`` and seed
    are the ones guessed, else discards it. None when the arguments are not usable yet."""
    a0 = guess_probability(rate, floor)
    try:
        seed_word(seed)
    except InputError:
        return None
    if a0 is None or a0 < TWO_POW_M53 or label not in src.schema.names:
        return None
    try:
        return Started(
            a0, int(seed), iter(kept_query(src, label, keys, seed, a0).collect_batches())
        )
    except Exception as exc:
        if not raised_by(exc, "polars"):
            raise
        return None  # the streaming checks name the problem


def stream_late(
    src: Source,
    out: str,
    rep_obj: SampleReport,
    *,
    overwrite: bool,
    schema: pa.Schema,
    plan: SamplingPlan,
    label: str,
    keys: list[str],
    batch_rows: int,
    progress: bool,
    t0: float,
    sink_options: dict[str, Any] | None = None,
    started: Started | None = None,
) -> None:
    """The uniform pass of :func:`fastsample.engines.parquet.sample_parquet` on Polars' engine
    (see the module documentation); fills in ``rep_obj`` as the streaming pass does."""
    from fastsample.core.keysketch import KeySketch  # lazy: Numba (see the top)
    from fastsample.core.tally import ExpectedTally  # lazy: Numba (see the top)
    from fastsample.engines.batch import draw_indices  # lazy: Numba (see the top)
    from fastsample.engines.stream import close_run, uniform_probability  # lazy: Numba

    a0 = uniform_probability(plan)
    if started is not None and started.a0 == a0 and started.seed == plan.seed:
        batches = started.batches
    else:
        # Polars starts decoding when asked for the iterator, and runs a few batches ahead:
        # ask first, so the set-up below (the kernel's first call, the sink) overlaps it.
        try:
            batches = iter(kept_query(src, label, keys, plan.seed, a0).collect_batches())
        except Exception as exc:
            if not raised_by(exc, "polars"):
                raise
            raise InputError(f"cannot read {src.files[0]!r}: {one_line(exc)}") from None
    # The offset as the draw kernel computes it (a positive row is always kept).
    offset = float(
        draw_indices(pl.DataFrame({label: [1]}), label=label, pilot=None, plan=plan).offset[0]
    )
    sketch = KeySketch(src.num_rows or 0) if keys and not rep_obj.group_key else None
    stop = threading.Event()
    with (
        open_sink(out, schema, overwrite=overwrite, **(sink_options or {})) as sink,
        progress_bar(total=src.num_rows, desc="sample", enabled=progress) as bar,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastsample-checks") as pool,
    ):
        checked: Future[tuple[int, int]] = pool.submit(
            _checks, src, label, keys, batch_rows, sketch, bar, stop
        )
        try:
            for frame in batches:
                if checked.done():
                    checked.result()  # a bad label or key stops the run now
                if frame.height:
                    kept, pos_out = _with_columns(frame, label, a0, offset, schema)
                    rep_obj.positives_out += pos_out
                    rep_obj.negatives_out += frame.height - pos_out
                    sink.write(kept)
        except BaseException as exc:
            stop.set()
            if not raised_by(exc, "polars"):
                raise
            checked.result()  # the streaming pass's error for the same input, if any
            raise InputError(f"cannot read {src.files[0]!r}: {one_line(exc)}") from None
        rep_obj.positives_in, rep_obj.negatives_in = checked.result()
        rep_obj.rows_in = rep_obj.positives_in + rep_obj.negatives_in
        close_run(sink, rep_obj, ExpectedTally(), sketch, plan, None, label, keys, None, t0)


__all__ = [
    "ROW_INDEX",
    "Started",
    "guess_probability",
    "kept_query",
    "late_pass",
    "start_query",
    "stream_late",
]
