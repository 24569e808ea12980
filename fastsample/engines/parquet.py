"""The streaming Parquet engine: scan -> score -> draw -> write, in bounded memory.

:func:`sample_parquet` reads a Parquet source as Arrow record batches (pyarrow's batch reader
on a prefetching thread, two batches ahead). Only the label, feature and key columns of a batch
are handed to :func:`fastsample.engines.batch.draw_indices`; the kept rows are then gathered from the
Arrow batch itself, so the other columns are never converted, and appended to the output
through an atomic writer that encodes on its own thread. A row's fate depends only on its key (or,
without a key column, its global row index in input order) and the seed, so the output does not
depend on the batch size or the thread count. :func:`train_pilot` draws the pilot's
case-control sample from the same kind of source on an independent hash stream.

kappa (the scale of the inclusion scores) is estimated in one pass from the pilot's own sample
of negatives by default. ``exact=True`` first streams every negative's score to an anonymous
spill file (8 bytes a negative, on disk) and solves the water-filling equation over all of them
by exact refinement of a histogram of the scores' bit patterns (see :func:`_exact_kappa`), so
the expected number of kept negatives equals ``rate * N0`` up to floating-point rounding.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np

from fastsample.engines.publish import open_sink, write_text
from fastsample.engines.sinks import check_output
from fastsample.engines.sources import (
    Source,
    expand_columns,
    iter_batches,
    iter_frames,
    require_columns,
    resolve_source,
)
from fastsample.engines.storage import PathLike
from fastsample.errors import InputError

#: Rows per batch read from Parquet when ``chunk_rows`` is not given.
DEFAULT_CHUNK_ROWS = 1 << 18
#: Default cap on the pilot's case-control sample (rows, expected).
DEFAULT_PILOT_ROWS = 1_000_000


def _chunk_rows(chunk_rows: Any) -> int:
    if chunk_rows is None:
        return DEFAULT_CHUNK_ROWS
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)):
        raise InputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if chunk_rows <= 0:
        raise InputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    return int(chunk_rows)


def _key_list(key: str | Sequence[str] | None) -> list[str]:
    if key is None:
        return []
    if isinstance(key, str):
        return [key]
    keys = [str(k) for k in key]
    if not keys:
        raise InputError("key must name at least one column")
    return keys


def _key_arg(key: str | Sequence[str] | None) -> str | list[str] | None:
    if key is None or (not isinstance(key, str) and len(key) == 0):
        return None
    keys = _key_list(key)
    return keys[0] if len(keys) == 1 else keys


def _label_type_check(src: Source, label: str) -> None:
    import pyarrow as pa

    require_columns(src, [label], "label")
    typ = src.schema.field(label).type
    if not (pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_floating(typ)):
        raise InputError(
            f"label column {label!r} in {src.files[0]!r} must be 0/1, found type {typ}"
        )


class _Prefetch:
    """Iterate ``items`` on a background thread, at most ``depth`` items ahead.

    The thread starts at construction, so batches are decoded while the caller is still
    loading the pilot and planning (Parquet decoding releases the GIL), and then while it
    scores and draws each batch. Exceptions are re-raised in the caller. ``close`` stops the
    thread (the caller calls it in a ``finally``, so a run that fails before iterating leaves
    nothing behind).
    """

    def __init__(self, items: Any, depth: int) -> None:
        import queue
        import threading

        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = object()
        self._items = items
        self._thread = threading.Thread(target=self._work, name="fastsample-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put((None, item)):
                    return
            self._put((None, self._done))
        except BaseException as exc:  # handed to the consumer
            self._put((exc, None))

    def __iter__(self) -> Any:
        while True:
            exc, item = self._q.get()
            if exc is not None:
                raise exc
            if item is self._done:
                return
            yield item

    def close(self) -> None:
        """Stop the reader thread and wait for it."""
        self._stop.set()
        self._thread.join()


#: Batches decoded ahead of the one being sampled. Deeper queues did not help on 2 cores
#: (30M rows, whole processes: depth 2 ran in 4.48-4.81 s, depth 8 in 4.61-5.17 s and held
#: 90 MB more), likely because a batch decoded long before is no longer in cache.
_PREFETCH_DEPTH = 2


# --------------------------------------------------------------------------- pilot


def train_pilot(
    source: PathLike | Sequence[PathLike] | Source,
    *,
    label: str,
    features: Sequence[str],
    model: Any = "logistic",
    rows: int | None = None,
    seed: int = 0,
    key: str | Sequence[str] | None = None,
    negatives_per_positive: float = 1.0,
    chunk_rows: int | None = None,
    progress: bool = False,
    storage_options: dict[str, Any] | None = None,
    format: str | None = None,
) -> Any:
    """Train a pilot on a case-control sample streamed out of a Parquet source.

    A first pass counts the classes; a second keeps positives with probability ``q1`` and
    negatives with ``q0`` (about ``negatives_per_positive`` negatives per positive, and at most
    ``rows`` rows expected) with the keyed hash on ``derive_seed(seed, "pilot")`` — a stream
    independent of the sampling seed's. The model is fitted on that sample and shifted by
    ``log(q0/q1)`` so it predicts population-scale probabilities
    (:func:`fastsample.core.pilot_fit.fit_case_control`).

    Parameters
    ----------
    source : path, glob, directory or list of them
    label : str
        0/1 label column.
    features : list of str
        Feature columns (shell patterns such as ``f*`` are expanded against the schema).
    model : str or sklearn classifier
        ``"logistic"`` (default), ``"sgd"``, ``"hgb"``, or an unfitted classifier / Pipeline.
    rows : int, optional
        Cap on the expected sample size (default 1,000,000).
    seed : int
        Sampling seed (the pilot derives its own stream from it).
    key : str or list of str, optional
        Key column(s); default the global row index.

    Returns
    -------
    fastsample.core.pilot.Pilot
        Save it with ``pilot.save(path)``.
    """
    import polars as pl

    from fastsample.core.hashing import derive_seed, frame_keys, seed_mix, uniform_from_keys
    from fastsample.core.pilot import feature_matrix
    from fastsample.core.pilot_fit import case_control_rates, fit_case_control
    from fastsample.engines.batch import label_array

    seed_mix(seed)  # validates the seed
    cap = DEFAULT_PILOT_ROWS if rows is None else rows
    if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap <= 0:
        raise InputError(f"rows must be a positive integer, got {rows!r}")
    batch = _chunk_rows(chunk_rows)
    src = resolve_source(source, storage_options=storage_options, format=format)
    if not src.reusable:
        raise InputError(
            f"training a pilot reads {src.files[0]} twice, but it can be read only once; "
            "train the pilot on a file or a re-readable source and pass it"
        )
    _label_type_check(src, label)
    if isinstance(features, str):
        features = [features]
    feats = expand_columns(src, list(features), "feature")
    keys = _key_list(key)
    require_columns(src, keys, "key")
    from fastsample.core.progress import progress_bar

    n1 = n0 = 0
    with progress_bar(total=src.num_rows, desc="pilot: count", enabled=progress) as bar:
        for frame, path in iter_frames(src, batch_rows=max(batch, 1 << 16), columns=[label]):
            y = label_array(frame, label, source=path)
            k = int(np.count_nonzero(y))
            n1 += k
            n0 += frame.height - k
            bar.update(frame.height)
    q1, q0 = case_control_rates(
        n1, n0, negatives_per_positive=negatives_per_positive, max_rows=int(cap)
    )
    stream = derive_seed(seed, "pilot")
    cols = list(dict.fromkeys([label, *feats, *keys]))
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ks: list[np.ndarray] = []
    offset = 0
    with progress_bar(total=src.num_rows, desc="pilot: sample", enabled=progress) as bar:
        for frame, path in iter_frames(src, batch_rows=batch, columns=cols):
            y = label_array(frame, label, source=path)
            words = frame_keys(frame, _key_arg(keys), offset)
            offset += frame.height
            u = uniform_from_keys(words, stream)
            take = u < np.where(y == 1, q1, q0)
            if take.any():
                sub = frame.filter(pl.Series(take))
                xs.append(np.ascontiguousarray(feature_matrix(sub, feats, source=path)))
                ys.append(y[take])
                ks.append(np.asarray(words)[take])
            bar.update(frame.height)
    if not xs:
        raise InputError("the pilot's case-control sample is empty; use more rows")
    X = np.concatenate(xs)
    return fit_case_control(
        X,
        np.concatenate(ys),
        np.concatenate(ks),
        q1=q1,
        q0=q0,
        features=feats,
        model=model,
        seed=seed,
        label=label,
        n_positive=n1,
        n_negative=n0,
    )


# --------------------------------------------------------------------------- report


@dataclass
class SampleReport:
    """What :func:`sample_parquet` did: counts in and out, expected counts, kappa, timing.

    ``target_negatives_out`` is ``rate * N0``. ``expected_negatives_out`` is the expected
    number of kept negatives under the probabilities actually used: in exact mode
    ``sum_i clip(kappa h_i, floor, 1)`` over every negative (equal to the target up to
    rounding); in one-pass mode the pilot-sample (Horvitz–Thompson) estimate of that sum, scaled
    to this input's N0 — so realised minus expected shows the Bernoulli noise, and exact mode
    shows in addition how far the one-pass kappa was off. ``expected_positives_out`` is N1
    (every positive kept) except under ``lcc``, where it is ``sum_i a_1(x_i)`` over the
    positives, computed exactly.
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
    seconds: float = 0.0
    rows_per_second: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.rows_in:,} rows in ({self.positives_in:,} positives) -> "
            f"{self.rows_out:,} rows out ({self.positives_out:,} positives, "
            f"{self.negatives_out:,} negatives; expected {self.expected_negatives_out:,.1f}) "
            f"in {self.seconds:.2f} s ({self.rows_per_second / 1e6:.2f} Mrows/s), "
            f"kappa {self.kappa:.6g} ({self.method})"
        )


def _write_json(
    path: PathLike,
    payload: dict[str, Any],
    *,
    overwrite: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    write_text(os.fspath(path), text, overwrite=overwrite, storage_options=storage_options)


# --------------------------------------------------------------------------- exact kappa

_SPILL_BLOCK = 1 << 20
_TOP_SHIFT = 44  # top-level bins: 2^8 per octave of the scores (bit patterns >> 44)
_SPLIT_BITS = 16  # each refinement splits a bin into 2^16 sub-bins
_COLLECT_CAP = 1 << 21  # at most this many exact scores are held in memory at once


_MANTISSA_SPLIT = 26  # mantissa = hi * 2^26 + lo, hi < 2^27, lo < 2^26
_EXACT_ROWS = 1 << 26  # bincount sums of at most this many parts stay below 2^53: exact


def _mantissa_sums(bits: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin integer sums of the significands of non-negative doubles, split in two parts.

    Every value of a bin shares its binary exponent (a bin never spans two binades), so a bin's
    sum is ``(hi * 2^26 + lo) * 2^exponent`` with integer ``hi``, ``lo``: exact, whatever the
    order or grouping of the rows. float64 ``bincount`` adds integers exactly while the sums
    stay below 2^53, hence the chunks of at most ``_EXACT_ROWS`` rows. The arrays run up to the
    largest bin present.
    """
    size = int(bins.max()) + 1 if bins.size else 0
    exp = (bits >> np.uint64(52)) & np.uint64(0x7FF)
    sig = (bits & np.uint64((1 << 52) - 1)) | np.where(exp > 0, np.uint64(1 << 52), np.uint64(0))
    hi_all = (sig >> np.uint64(_MANTISSA_SPLIT)).astype(np.float64)
    lo_all = (sig & np.uint64((1 << _MANTISSA_SPLIT) - 1)).astype(np.float64)
    hi = np.zeros(size, dtype=np.int64)
    lo = np.zeros(size, dtype=np.int64)
    for start in range(0, bins.shape[0], _EXACT_ROWS):
        part = slice(start, start + _EXACT_ROWS)
        hi += np.bincount(bins[part], weights=hi_all[part], minlength=size).astype(np.int64)
        lo += np.bincount(bins[part], weights=lo_all[part], minlength=size).astype(np.int64)
    return hi, lo


def _bin_total(hi: int, lo: int, bits: int) -> float:
    """A bin's exact sum from :func:`_mantissa_sums`, rounded once; ``bits``: any of its values."""
    exp = max((bits >> 52) & 0x7FF, 1) - 1075
    return math.ldexp(float((int(hi) << _MANTISSA_SPLIT) + int(lo)), exp)


class _Spill:
    """Scores of every negative in an anonymous temporary file (float64, input order).

    The per-bin sums are exact integers (see :func:`_mantissa_sums`), so kappa depends on the
    scores alone, not on the order of the rows or the size of the batches.
    """

    def __init__(self) -> None:
        self._fh: IO[bytes] = tempfile.TemporaryFile(prefix="fastsample-scores-")  # noqa: SIM115
        self.count = 0
        size = 1 << (64 - _TOP_SHIFT - 1)
        self.top_count = np.zeros(size, dtype=np.int64)
        self.top_hi = np.zeros(size, dtype=np.int64)
        self.top_lo = np.zeros(size, dtype=np.int64)

    def add(self, h: np.ndarray) -> None:
        h = np.ascontiguousarray(h, dtype=np.float64) + 0.0  # -0.0 -> +0.0
        if not h.size:
            return
        if not np.isfinite(h).all() or (h < 0).any():
            raise InputError("pilot scores contain NaN, infinite or negative values")
        self._fh.write(h.tobytes())
        bits = h.view(np.uint64)
        b = (bits >> np.uint64(_TOP_SHIFT)).astype(np.int64)
        counts = np.bincount(b)
        self.top_count[: counts.size] += counts
        hi, lo = _mantissa_sums(bits, b)
        self.top_hi[: hi.size] += hi
        self.top_lo[: lo.size] += lo
        self.count += h.size

    def top_total(self, i: int) -> float:
        """Exact sum of the scores in top-level bin ``i``, rounded once."""
        return _bin_total(int(self.top_hi[i]), int(self.top_lo[i]), i << _TOP_SHIFT)

    def blocks(self) -> Any:
        self._fh.flush()
        self._fh.seek(0)
        while True:
            h = np.fromfile(self._fh, dtype=np.float64, count=_SPILL_BLOCK)
            if not h.size:
                return
            yield h

    def close(self) -> None:
        self._fh.close()


def _bits_value(bits: int) -> float:
    return float(np.array([min(bits, 0x7FF0000000000000)], dtype=np.uint64).view(np.float64)[0])


@dataclass
class _Segment:
    lo: int  # first bit pattern
    hi: int  # one past the last bit pattern
    count: int
    total: float
    values: np.ndarray | None = None


def _exact_kappa(spill: _Spill, target: float, floor: float | None) -> tuple[float, float]:
    """Solve ``sum_i clip(kappa h_i, floor, 1) = target`` over every spilled score.

    For non-negative doubles the bit pattern orders like the value, so bins of bit patterns are
    exact, disjoint value intervals. Each bin enters the equation as one pseudo-row (its mean,
    weighted by its count) — exact wherever every value of the bin is on the same linear piece
    (all clipped to 1, all clipped to the floor, or all in between) at the solution. Bins that
    straddle a breakpoint (``1/kappa`` or ``floor/kappa``; at most a few) are replaced by their
    exact scores (one pass over the spill) or, when too many, split 2^16-fold (one pass), and the
    solve is repeated until no bin straddles. Memory: the histogram plus at most
    ``_COLLECT_CAP`` scores. Bin sums are exact (:func:`_mantissa_sums`) and collected scores
    are sorted, so the result depends on the multiset of scores only, not on their order.

    Returns
    -------
    (kappa, expected kept negatives at kappa)
    """
    from fastsample.core.strategies import effective_floor, expected_count, solve_kappa

    f = effective_floor(floor)
    idx = np.flatnonzero(spill.top_count)
    segs = [
        _Segment(
            int(i) << _TOP_SHIFT,
            (int(i) + 1) << _TOP_SHIFT,
            int(spill.top_count[i]),
            spill.top_total(int(i)),
        )
        for i in idx
    ]
    while True:
        hs: list[np.ndarray] = []
        ws: list[np.ndarray] = []
        for s in segs:
            if s.values is not None:
                hs.append(s.values)
                ws.append(np.ones(s.values.size))
            else:
                hs.append(np.array([s.total / s.count if s.hi - s.lo > 1 else _bits_value(s.lo)]))
                ws.append(np.array([float(s.count)]))
        h = np.concatenate(hs) if hs else np.zeros(0)
        w = np.concatenate(ws) if ws else np.zeros(0)
        kappa = solve_kappa(h, target, floor=floor, weights=w)
        straddling = []
        for s in segs:
            if s.values is not None or s.hi - s.lo == 1:
                continue
            lo_v = kappa * _bits_value(s.lo)
            hi_v = kappa * _bits_value(s.hi)
            if hi_v <= f or lo_v >= 1.0 or (lo_v >= f and hi_v <= 1.0):
                continue
            straddling.append(s)
        if not straddling:
            return kappa, expected_count(h, kappa, floor=floor, weights=w)
        budget = _COLLECT_CAP
        collect: list[_Segment] = []
        split: list[_Segment] = []
        for s in straddling:
            if s.count <= budget:
                collect.append(s)
                budget -= s.count
            else:
                split.append(s)
        found: dict[int, list[np.ndarray]] = {id(s): [] for s in collect}
        shifts = {id(s): max(0, (s.hi - s.lo).bit_length() - 1 - _SPLIT_BITS) for s in split}
        cnt = {id(s): np.zeros(1 << _SPLIT_BITS, np.int64) for s in split}
        his = {id(s): np.zeros(1 << _SPLIT_BITS, np.int64) for s in split}
        los = {id(s): np.zeros(1 << _SPLIT_BITS, np.int64) for s in split}
        for block in spill.blocks():
            bits = block.view(np.uint64)
            for s in collect:
                m = (bits >= np.uint64(s.lo)) & (bits < np.uint64(s.hi))
                found[id(s)].append(block[m])
            for s in split:
                m = (bits >= np.uint64(s.lo)) & (bits < np.uint64(s.hi))
                sub = ((bits[m] - np.uint64(s.lo)) >> np.uint64(shifts[id(s)])).astype(np.int64)
                cnt[id(s)] += np.bincount(sub, minlength=1 << _SPLIT_BITS)
                part_hi, part_lo = _mantissa_sums(bits[m], sub)
                his[id(s)][: part_hi.size] += part_hi
                los[id(s)][: part_lo.size] += part_lo
        new: list[_Segment] = []
        for s in segs:
            if id(s) in found:
                # sorted: the solve then sees the same sequence whatever the input order
                vals = np.sort(np.concatenate(found[id(s)]))
                new.append(_Segment(s.lo, s.hi, s.count, s.total, vals))
            elif id(s) in cnt:
                width = 1 << shifts[id(s)]
                for j in np.flatnonzero(cnt[id(s)]):
                    lo = s.lo + int(j) * width
                    total = _bin_total(int(his[id(s)][j]), int(los[id(s)][j]), lo)
                    new.append(_Segment(lo, min(lo + width, s.hi), int(cnt[id(s)][j]), total))
            else:
                new.append(s)
        segs = new


# --------------------------------------------------------------------------- sampling


def _validate(strategy: str, rate: Any, floor: Any, seed: Any) -> float:
    from fastsample.core.hashing import seed_mix
    from fastsample.core.strategies import effective_floor, strategy_code
    from fastsample.engines.batch import check_rate

    strategy_code(strategy)
    r = check_rate(rate)
    if floor is not None:
        try:
            fv = float(floor)
        except (TypeError, ValueError):
            raise InputError(f"floor must be a number in [0, 1], got {floor!r}") from None
        if fv > r:
            raise InputError(f"floor {floor!r} is above the rate {rate!r}")
    effective_floor(floor)
    seed_mix(seed)
    return r


def sample_parquet(
    source: Any,
    output: PathLike,
    *,
    label: str,
    features: Sequence[str] | None = None,
    pilot: Any = None,
    strategy: str = "proportional",
    rate: float = 0.1,
    seed: int = 0,
    key: str | Sequence[str] | None = None,
    floor: float | None = None,
    exact: bool = False,
    chunk_rows: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    report: PathLike | None = None,
    columns: Any = None,
    pilot_rows: int | None = None,
    pilot_model: Any = "logistic",
    storage_options: dict[str, Any] | None = None,
    format: str | None = None,
    max_rows_per_file: int | None = None,
    partition_by: str | Sequence[str] | None = None,
) -> SampleReport:
    """Sample a Parquet source far larger than memory into one Parquet file.

    Every positive is kept (under ``lcc`` positives are sampled too) and each negative with
    probability ``clip(kappa * h(x), floor, 1)`` (DESIGN.md §2). The output holds the input
    columns unchanged plus ``sampling_prob``, ``sample_weight`` and ``log_odds_offset``, and
    the parameters, pilot fingerprint, kappa and counts as JSON in the Parquet key-value
    metadata under ``"fastsample"`` (read it with :func:`fastsample.engines.sinks.read_metadata`).

    Parameters
    ----------
    source : path, URI, glob, directory (hive partitions ok), list of them, or an open stream
        Parquet, CSV or NDJSON files, local or on object storage (``s3://``, ``gs://``,
        ``abfs://``, ``hdfs://``), or a ``pyarrow.dataset.Dataset``, ``RecordBatchReader``,
        Polars ``LazyFrame`` or any ``__arrow_c_stream__`` object, read batch by batch
        (:mod:`fastsample.engines.sources`). A ``RecordBatchReader`` is read once: give a
        ``pilot`` and leave ``exact`` off.
    output : path or URI
        Output file, or a dataset directory/prefix with ``max_rows_per_file`` or
        ``partition_by``. Published atomically (:mod:`fastsample.engines.sinks`); refused if
        it exists (unless ``overwrite``) or is an input.
    label : str
        0/1 label column.
    features : list of str, optional
        Feature columns; default the pilot's. Needed to train a pilot when none is given.
    pilot : Pilot, path to a saved pilot, fitted classifier, or None
        None trains one with :func:`train_pilot` (unless ``strategy="uniform"``).
    strategy : {"proportional", "uniform", "opt-l", "opt-a", "lcc"}
    rate : float
        Expected fraction of negatives kept, in (0, 1].
    seed : int
        Sampling seed.
    key : str or list of str, optional
        Key column(s). Default: the global row index in input order (files in sorted path
        order), which does not survive re-ordering or re-partitioning of the input.
    floor : float, optional
        Lower bound on every inclusion probability.
    exact : bool
        Solve kappa over every negative (an extra pass and a spill file of 8 bytes a negative)
        instead of estimating it from the pilot's sample.
    chunk_rows : int, optional
        Rows per batch (default 262,144). Does not change the result.
    overwrite : bool
        Replace an existing output.
    progress : bool
        Progress bar on a terminal.
    report : path, optional
        Also write the report as JSON there.
    columns : fastsample.engines.batch.OutputColumns, optional
        Names of the three added columns.
    storage_options : dict, optional
        Filesystem options for URIs, input and output (:mod:`fastsample.engines.storage`).
    format : {"parquet", "csv", "ndjson"}, optional
        Input format (default from the extension).
    max_rows_per_file : int, optional
        Write a dataset of files of at most this many rows.
    partition_by : str or list of str, optional
        Write a hive-partitioned dataset by these columns.

    Returns
    -------
    SampleReport
    """
    import pyarrow as pa

    t0 = time.perf_counter()
    batch_rows = _chunk_rows(chunk_rows)
    src = resolve_source(source, storage_options=storage_options, format=format)
    parts = [partition_by] if isinstance(partition_by, str) else list(partition_by or [])
    sink_options = {
        "storage_options": storage_options,
        "max_rows_per_file": max_rows_per_file,
        "partition_by": parts,
    }
    dataset = bool(max_rows_per_file or parts)
    out = check_output(
        output, overwrite=overwrite, source=src, dataset=dataset, storage_options=storage_options
    )
    if not src.reusable and (exact or (pilot is None and strategy != "uniform")):
        raise InputError(
            f"{src.files[0]} can be read only once, and "
            f"{'exact mode' if exact else 'training a pilot on it'} needs another pass; "
            "pass a pilot and leave exact mode off, or give a re-readable source"
        )
    # With a pilot at hand (or none needed) nothing else reads the input first: start decoding
    # now, so the reader works through the start-up below (loading Numba, the pilot, the plan).
    # Reading is harmless if a check below fails: the reader is stopped on the way out.
    reader: _Prefetch | None = None
    if not exact and (pilot is not None or strategy == "uniform"):
        reader = _Prefetch(iter_batches(src, batch_rows=batch_rows), _PREFETCH_DEPTH)
    try:
        from fastsample.core.pilot import as_pilot
        from fastsample.engines.batch import OutputColumns, plan_from_pilot, plan_sampling

        r = _validate(strategy, rate, floor, seed)
        cols = columns or OutputColumns()
        if report is not None:
            rep = check_output(report, overwrite=True, source=src, storage_options=storage_options)
            if os.path.realpath(rep) == os.path.realpath(out):
                raise InputError(f"report {os.fspath(report)!r} is the output file")
        _label_type_check(src, label)
        keys = _key_list(key)
        require_columns(src, keys, "key")
        cols.check(list(src.schema.names), source=repr(src.files[0]))
        feats = expand_columns(src, list(features), "feature") if features else None

        pilot_obj = None
        if pilot is not None:
            pilot_obj = as_pilot(pilot, feats)
            missing = [f for f in pilot_obj.features if f not in src.schema.names]
            if missing:
                raise InputError(
                    f"pilot feature column {missing[0]!r} not found in {src.files[0]!r}"
                )
        elif strategy != "uniform":
            if not feats:
                raise InputError(
                    f"strategy {strategy!r} needs a pilot, or features to train one on the source"
                )
            if src.num_rows != 0:
                pilot_obj = train_pilot(
                    src,
                    label=label,
                    features=feats,
                    model=pilot_model,
                    rows=pilot_rows,
                    seed=seed,
                    key=key,
                    chunk_rows=batch_rows,
                    progress=progress,
                )

        target_neg = None
        if exact and src.num_rows != 0:
            plan, n0_exact = _exact_plan(
                src, label, pilot_obj, strategy, r, seed, floor, cols, batch_rows, progress
            )
            target_neg = r * n0_exact
        elif pilot_obj is None:
            # uniform without a pilot: h = 1 for every row, so kappa = rate exactly.
            plan = plan_sampling(
                np.ones(1), strategy=strategy, rate=r, seed=seed, floor=floor, columns=cols
            )
        elif pilot_obj.reference_X is None:
            raise InputError(
                "this pilot carries no sample of negatives for a one-pass kappa (a bare classifier); "
                "use exact=True / --exact"
            )
        else:
            plan = plan_from_pilot(
                pilot_obj, strategy=strategy, rate=r, seed=seed, floor=floor, columns=cols
            )
        if strategy == "opt-a" and plan.info_inv is None and pilot_obj is not None:
            raise InputError("strategy 'opt-a' needs a pilot with an information matrix")

        out_schema = src.schema
        for name in cols.names():
            out_schema = out_schema.append(pa.field(name, pa.float64()))
        rep_obj = SampleReport(
            source=list(src.files),
            output=str(out),
            strategy=strategy,
            rate=r,
            seed=int(seed),
            floor=floor,
            key=keys or None,
            method=plan.method,
            kappa=float(plan.kappa),
            pilot_fingerprint=pilot_obj.fingerprint if pilot_obj is not None else None,
            columns={"prob": cols.prob, "weight": cols.weight, "offset": cols.offset},
        )
        if reader is None:
            reader = _Prefetch(iter_batches(src, batch_rows=batch_rows), _PREFETCH_DEPTH)
        _stream(
            reader,
            out,
            rep_obj,
            overwrite=overwrite,
            schema=out_schema,
            plan=plan,
            r=r,
            pilot=pilot_obj,
            label=label,
            keys=keys,
            target_neg=target_neg,
            progress=progress,
            total=src.num_rows,
            t0=t0,
            sink_options=sink_options,
        )
        if report is not None:
            _write_json(report, rep_obj.to_dict(), storage_options=storage_options)
        return rep_obj
    finally:
        if reader is not None:
            reader.close()


def _stream(
    reader: _Prefetch,
    out: str,
    rep_obj: SampleReport,
    *,
    overwrite: bool,
    schema: Any,
    plan: Any,
    r: float,
    pilot: Any,
    label: str,
    keys: list[str],
    target_neg: float | None,
    progress: bool,
    total: int | None,
    t0: float,
    sink_options: dict[str, Any] | None = None,
) -> None:
    """The sampling pass of :func:`sample_parquet`: draw every batch, write the kept rows and
    the metadata atomically to ``out``, and fill in the counts of ``rep_obj``."""
    import polars as pl

    from fastsample import __version__
    from fastsample.core.progress import progress_bar
    from fastsample.engines.batch import draw_indices

    key_arg = _key_arg(keys)
    # sum(a_y) over the input needs every row's scores: a second scoring pass per batch, paid
    # only where the plan cannot give it (lcc samples positives too). Otherwise the expected
    # negatives come from the plan: exact in exact mode, the pilot-sample estimate in one pass.
    exact_expected = plan.strategy == "lcc"
    exp_neg = 0.0
    exp_pos = 0.0
    # Only these columns go through Polars and the kernels; the kept rows are gathered from
    # the Arrow batch itself, so the other columns are never converted (strings included).
    needed = list(dict.fromkeys([label, *(pilot.features if pilot else []), *keys]))
    with (
        open_sink(out, schema, overwrite=overwrite, **(sink_options or {})) as sink,
        _compute_threads(),
    ):
        offset = 0
        with progress_bar(total=total, desc="sample", enabled=progress) as bar:
            for batch, path in reader:
                frame = pl.from_arrow(batch.select(needed))
                assert isinstance(frame, pl.DataFrame)
                drawn = draw_indices(
                    frame,
                    label=label,
                    pilot=pilot,
                    plan=plan,
                    key=key_arg,
                    row_offset=offset,
                    source=repr(path),
                )
                n = batch.num_rows
                offset += n
                pos_in = int(np.count_nonzero(drawn.labels))
                rep_obj.positives_in += pos_in
                rep_obj.negatives_in += n - pos_in
                if drawn.index.size:
                    pos_out = int(np.count_nonzero(drawn.labels[drawn.index]))
                    rep_obj.positives_out += pos_out
                    rep_obj.negatives_out += drawn.index.size - pos_out
                    sink.write(_kept_rows(batch, drawn, schema))
                if exact_expected:
                    e0, e1 = _expected(frame, label, pilot, plan, path)
                    exp_neg += e0
                    exp_pos += e1
                bar.update(n)
        rep_obj.rows_in = offset
        rep_obj.rows_out = rep_obj.positives_out + rep_obj.negatives_out
        if not exact_expected:
            exp_pos = float(rep_obj.positives_in)
            exp_neg = (
                plan.expected_negatives / plan.target_negatives * r * rep_obj.negatives_in
                if plan.target_negatives
                else r * rep_obj.negatives_in
            )
        elif plan.method == "exact":
            exp_neg = plan.expected_negatives
        rep_obj.expected_negatives_out = exp_neg
        rep_obj.expected_positives_out = exp_pos
        rep_obj.expected_rows_out = exp_neg + exp_pos
        rep_obj.target_negatives_out = (
            target_neg if target_neg is not None else r * rep_obj.negatives_in
        )
        rep_obj.seconds = time.perf_counter() - t0
        rep_obj.rows_per_second = rep_obj.rows_in / rep_obj.seconds if rep_obj.seconds else 0.0
        meta = {
            "fastsample_version": __version__,
            "plan": plan.metadata(),
            "pilot_fingerprint": rep_obj.pilot_fingerprint,
            "pilot_features": pilot.features if pilot is not None else None,
            "label": label,
            "key": keys or None,
            "counts": {k: getattr(rep_obj, k) for k in _COUNT_FIELDS},
        }
        sink.close(meta)


def _arrow(values: np.ndarray, typ: Any) -> Any:
    """A NumPy array as an Arrow array over the same buffer.

    ``pa.array`` on a NumPy array imports pandas to rule out a Series: 0.3 s of start-up.
    """
    import pyarrow as pa

    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(typ, data.shape[0], [None, pa.py_buffer(data)])


def _kept_rows(batch: Any, drawn: Any, schema: Any) -> Any:
    """The kept rows of an Arrow batch plus the three output columns, in ``schema``."""
    import pyarrow as pa

    kept = batch.take(_arrow(drawn.index, pa.int64()))
    f64 = pa.float64()
    arrays = [
        *kept.columns,
        _arrow(drawn.prob, f64),
        _arrow(1.0 / drawn.prob, f64),
        _arrow(drawn.offset, f64),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextmanager
def _compute_threads() -> Any:
    """Half the cores (at least one) for the Numba kernels while the engine streams.

    pyarrow decodes the next batches and encodes the output on the other cores meanwhile;
    letting the kernels take every core as well oversubscribed a 2-core machine (measured:
    5.0 s with 2 kernel threads, 4.3 s with 1, on 30M rows). The thread count does not change
    any result (fixed-block reductions).
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(before, (os.cpu_count() or 1) // 2)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


_COUNT_FIELDS = (
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
)


def _expected(frame: Any, label: str, pilot: Any, plan: Any, path: str) -> tuple[float, float]:
    """Expected kept (negatives, positives) of one batch: the sums of a_0 and a_1."""
    from fastsample.core.strategies import effective_floor
    from fastsample.engines.batch import _scores, label_array

    y = label_array(frame, label, source=repr(path))
    f = effective_floor(plan.floor)
    h0, h1 = _scores(frame, pilot, plan.strategy, plan.info_inv, repr(path))
    a0 = np.clip(plan.kappa * h0, f, 1.0)
    a1 = np.where(h1 < 0, 1.0, np.clip(plan.kappa * h1, f, 1.0))
    pos = y == 1
    return float(a0[~pos].sum()), float(a1[pos].sum())


def _exact_plan(
    src: Source,
    label: str,
    pilot: Any,
    strategy: str,
    rate: float,
    seed: int,
    floor: float | None,
    cols: Any,
    batch: int,
    progress: bool,
) -> tuple[Any, int]:
    """First pass of exact mode: spill every negative's score, then solve kappa exactly."""
    from fastsample.core.progress import progress_bar
    from fastsample.engines.batch import SamplingPlan, _scores, label_array

    info_inv = pilot.info_inv if pilot is not None else None
    needed = [label, *(pilot.features if pilot is not None else [])]
    spill = _Spill()
    try:
        with progress_bar(total=src.num_rows, desc="exact kappa", enabled=progress) as bar:
            for frame, path in iter_frames(
                src, batch_rows=batch, columns=list(dict.fromkeys(needed))
            ):
                y = label_array(frame, label, source=repr(path))
                h0, _ = _scores(frame, pilot, strategy, info_inv, repr(path))
                spill.add(h0[y == 0])
                bar.update(frame.height)
        n0 = spill.count
        target = rate * n0
        kappa, expected = _exact_kappa(spill, target, floor) if n0 else (1.0, 0.0)
    finally:
        spill.close()
    plan = SamplingPlan(
        strategy=strategy,
        rate=rate,
        seed=int(seed),
        kappa=float(kappa),
        target_negatives=target,
        expected_negatives=expected,
        floor=floor,
        method="exact",
        info_inv=info_inv,
        columns=cols,
    )
    return plan, n0
