"""Open data streams as sources: pyarrow datasets and readers, Polars lazy frames, C streams.

Each pass opens the stream again (a dataset is scanned again, a lazy frame or a DuckDB relation
runs its query again); only a ``pyarrow.RecordBatchReader`` cannot be re-opened, so a second pass
over one is refused with a message saying what to do instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from fastsample.errors import InputError


class Stream:
    """An open data stream behind a :class:`Source`: opened once per pass.

    Parameters
    ----------
    obj : Dataset, RecordBatchReader, LazyFrame or ``__arrow_c_stream__`` exporter
    name : str
        How messages name it (``<polars LazyFrame>``, or a CSV's file name).
    """

    def __init__(self, obj: Any, name: str) -> None:
        self.obj = obj
        self.name = name
        self.kind = _stream_kind(obj)
        self.reusable = self.kind != "reader"
        self.passes = 0

    def schema(self) -> pa.Schema:
        """The stream's Arrow schema, read without running it."""
        if self.kind == "lazy":
            return self.obj.limit(0).collect().to_arrow().schema
        if self.kind == "export":
            return pa.RecordBatchReader.from_stream(self.obj).schema
        return self.obj.schema

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """One pass over the stream: batches of at most ``batch_rows`` rows of ``columns``."""
        if self.passes and not self.reusable:
            raise InputError(
                f"{self.name} can be read only once; pass a pilot and leave exact mode off, "
                "or give a re-readable source (a file, a pyarrow Dataset, a LazyFrame)"
            )
        self.passes += 1
        if self.kind == "dataset":
            it: Iterator[Any] = self.obj.to_batches(columns=columns, batch_size=batch_rows)
        elif self.kind == "lazy":
            frames = self.obj.select(columns).collect_batches(
                chunk_size=batch_rows, engine="streaming"
            )
            it = (f.to_arrow() for f in frames)
        else:
            reader = (
                self.obj if self.kind == "reader" else pa.RecordBatchReader.from_stream(self.obj)
            )
            it = (b.select(columns) for b in reader)
        yield from _rebatch(it, batch_rows)


def _rebatch(items: Iterator[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``batch_rows`` rows (the last one shorter), whatever the producer's.

    Large batches are sliced (no copy); small ones are gathered and copied into one, so the
    engine sees the batch sizes of the file path. With a producer's 100k-row batches left as
    they were, the process's peak memory grew with the stream's length (about 14 MB per
    million rows, from glibc's heap fragmentation by the per-batch arrays; flat with a fixed
    ``MALLOC_MMAP_THRESHOLD_``), and flat with whole batches. The result never depends on
    the batching (rows are keyed by their global index or their key).
    """
    pending: list[pa.RecordBatch] = []
    rows = 0
    for item in items:
        for batch in item.to_batches() if isinstance(item, pa.Table) else [item]:
            while batch.num_rows:
                take = batch.slice(0, batch_rows - rows)
                batch = batch.slice(take.num_rows)
                pending.append(take)
                rows += take.num_rows
                if rows == batch_rows:
                    yield _combine(pending)
                    pending, rows = [], 0
    if rows:
        yield _combine(pending)


def _combine(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    table = pa.Table.from_batches(batches).combine_chunks()
    return table.to_batches()[0]


def _stream_kind(obj: Any) -> str:
    import pyarrow.dataset as ds  # lazy: start-up time (only for dataset sources)

    if isinstance(obj, ds.Dataset):
        return "dataset"
    if isinstance(obj, pa.RecordBatchReader):
        return "reader"
    if type(obj).__module__.startswith("polars") and type(obj).__name__ == "LazyFrame":
        return "lazy"
    if hasattr(obj, "__arrow_c_stream__"):
        return "export"
    raise InputError(f"cannot read a {type(obj).__name__} as a source")


def is_stream(obj: Any) -> bool:
    """Whether ``obj`` is an open data stream rather than a path, URI or list of them."""
    return not isinstance(obj, (str, os.PathLike, list, tuple)) and (
        hasattr(obj, "__arrow_c_stream__")
        or type(obj).__name__ in ("LazyFrame", "FileSystemDataset", "UnionDataset")
        or _is_dataset(obj)
    )


def _is_dataset(obj: Any) -> bool:
    import pyarrow.dataset as ds  # lazy: start-up time (only for dataset sources)

    return isinstance(obj, ds.Dataset)
