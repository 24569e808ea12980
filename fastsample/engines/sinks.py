"""Sinks: one Parquet file or a Parquet dataset, local or on object storage, published atomically.

Nothing is ever written in place. A local file goes through :func:`fastsample.core.atomic.atomic_path`
(an anonymous inode linked at the end on Linux, so even ``SIGKILL`` leaves nothing). A local
dataset is written into a hidden sibling directory (``.NAME.fastsample-XXXX``) renamed onto
the target in one ``rename`` at the end. On object storage, which has no rename, everything is
written under a hidden sibling staging prefix and moved to the target when the run succeeded;
a dataset's ``_fastsample.json`` and then ``_SUCCESS`` are written last, so a reader that waits
for ``_SUCCESS`` never sees a partial dataset, and an interrupted run leaves nothing at the
target (the staging prefix may remain after ``SIGKILL``; clean ``.*.fastsample-*`` names with a
lifecycle rule).

Every file carries the run's metadata as JSON under :data:`METADATA_KEY`, both in the Parquet
footer's key-value metadata and in the Arrow schema (``pq.read_schema(p).metadata``); a dataset
also has it, with the list of files and their rows, in ``_fastsample.json``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fastsample.engines.storage import Location, PathLike, is_environment_error, locate, reason
from fastsample.errors import InputError

#: Parquet key-value metadata key under which fastsample stores its JSON record.
METADATA_KEY = "fastsample"
#: File written beside a dataset's parts with the run's metadata and the list of files.
DATASET_METADATA = "_fastsample.json"
#: At most this many files are open at once in a dataset sink (as ``pyarrow.dataset``).
MAX_OPEN_FILES = 1024
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth Parquet dictionary encoding: strings, binaries and dictionaries.

    pyarrow tries a dictionary for every column by default; on high-cardinality floats that
    costs about five times the whole write and gives a larger file.
    """
    out = []
    for f in schema:
        t = f.type
        if (
            pa.types.is_dictionary(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_string_view(t)
            or pa.types.is_boolean(t)
        ):
            out.append(f.name)
    return out


class ParquetSink:
    """Incremental Parquet writer with row-group buffering and end-of-run metadata.

    Batches are cast to ``schema`` (so the input columns keep their exact types) and buffered
    until ``row_group_rows`` rows, keeping memory bounded whatever the input batch size. With
    ``threaded=True`` encoding and compression run on a background thread (pyarrow releases
    the GIL), overlapping with the caller's next batch; at most two row groups wait in the
    queue, so memory stays bounded. ``filesystem`` is a pyarrow filesystem (``None``: local).
    """

    def __init__(
        self,
        path: str,
        schema: pa.Schema,
        *,
        row_group_rows: int = 262_144,
        compression: str = "zstd",
        threaded: bool = False,
        filesystem: Any = None,
    ) -> None:
        self.schema = schema
        self.row_group_rows = row_group_rows
        self._writer = pq.ParquetWriter(
            path,
            schema,
            compression=compression,
            use_dictionary=dictionary_columns(schema),
            filesystem=filesystem,
        )
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows_written = 0
        self._queue: Any = None
        self._thread: Any = None
        self._error: BaseException | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(
                target=self._drain, name="fastsample-writer", daemon=True
            )
            self._thread.start()

    def _drain(self) -> None:
        while True:
            table = self._queue.get()
            if table is None:
                return
            if self._error is not None:
                continue
            try:
                self._write_table(table)
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc

    def _write_table(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=max(self.row_group_rows, table.num_rows))
        self.rows_written += table.num_rows

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Append rows (a table or record batch with the sink's column names)."""
        self._check()
        if data.num_rows == 0:
            return
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if not data.schema.equals(self.schema):
            data = data.cast(self.schema)
        for b in data.to_batches():
            self._pending.append(b)
            self._pending_rows += b.num_rows
        if self._pending_rows >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered rows to the writer (one row group)."""
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._pending = []
        self._pending_rows = 0
        if self._queue is not None:
            self._queue.put(table)
        else:
            self._write_table(table)

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def close(self, metadata: dict[str, Any] | None = None) -> None:
        """Flush, attach ``metadata`` as JSON under :data:`METADATA_KEY`, and close.

        The record goes into the footer's key-value metadata and into the stored Arrow schema
        (``ARROW:schema``, rewritten with the record as schema metadata), so that
        ``pq.read_schema``, ``pq.read_table(...).schema`` and Polars all see it.
        """
        self.flush()
        self._stop()
        self._check()
        if metadata is not None:
            record = json.dumps(metadata, sort_keys=True)
            stored = self.schema.with_metadata({METADATA_KEY: record}).serialize()
            self._writer.add_key_value_metadata(
                {
                    METADATA_KEY: record,
                    "ARROW:schema": base64.b64encode(stored.to_pybytes()).decode(),
                }
            )
        self._writer.close()

    def abort(self) -> None:
        """Stop the writer thread and close the file (whose content is then discarded)."""
        self._error = self._error or RuntimeError("aborted")
        with contextlib.suppress(Exception):
            self._stop()
        with contextlib.suppress(Exception):
            self._writer.close()


def read_metadata(path: PathLike, *, storage_options: Mapping[str, Any] | None = None) -> dict:
    """Return the fastsample record of a Parquet file, or of a dataset's ``_fastsample.json``.

    Raises
    ------
    InputError
        The file is not Parquet or carries no fastsample record.
    """
    loc = locate(path, storage_options)
    text = loc.uri
    try:
        if _is_dir(loc):
            with _open_input(loc.child(DATASET_METADATA)) as fh:
                return dict(json.loads(fh.read()))
        meta = pq.read_metadata(loc.path, filesystem=loc.filesystem).metadata or {}
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise InputError(f"cannot read {text!r} as Parquet: {reason(exc)}") from None
    raw = meta.get(METADATA_KEY.encode())
    if raw is None:
        raise InputError(f"{text!r} has no {METADATA_KEY!r} key-value metadata")
    try:
        value = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{text!r} has unreadable {METADATA_KEY!r} metadata") from None
    if not isinstance(value, dict):
        raise InputError(f"{text!r} has unreadable {METADATA_KEY!r} metadata")
    return value


def file_size(path: PathLike) -> int:
    """Size of ``path`` in bytes (0 when it does not exist)."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------- checks


def _is_dir(loc: Location) -> bool:
    if loc.filesystem is None:
        return os.path.isdir(loc.path)
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    return bool(loc.filesystem.get_file_info(loc.path).type == fs.FileType.Directory)


def _open_input(loc: Location) -> Any:
    if loc.filesystem is None:
        return open(loc.path, "rb")
    return loc.filesystem.open_input_stream(loc.path)


def _inside(out: str, roots: Sequence[str], *, local: bool) -> str | None:
    sep = os.sep if local else "/"
    for root in roots:
        if out == root or out.startswith(root.rstrip(sep) + sep):
            return root
    return None


def check_output(
    output: PathLike,
    *,
    overwrite: bool,
    source: Any = None,
    dataset: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Validate an output file (or, with ``dataset``, directory/prefix) before any work starts.

    Refuses: an output that is one of the inputs or lies inside an input directory, an existing
    output without ``overwrite``, a directory where a file is expected, a missing parent
    directory or bucket. Returns the output as given (a string).
    """
    loc = locate(output, storage_options)
    out = loc.uri
    if loc.filesystem is not None:
        return _check_remote(loc, overwrite=overwrite, source=source, dataset=dataset)
    real = os.path.realpath(loc.path)
    if source is not None:
        for f in source.files if source.filesystem is None and source.stream is None else []:
            if os.path.realpath(f) == real:
                raise InputError(f"output {out!r} is also an input file")
        root = _inside(real, source.roots if source.filesystem is None else [], local=True)
        if root is not None:
            raise InputError(f"output {out!r} is inside the input directory {root!r}")
    if os.path.isdir(loc.path) and not dataset:
        raise InputError(f"output {out!r} is a directory")
    parent = os.path.dirname(os.path.abspath(loc.path.rstrip(os.sep) or loc.path))
    if not os.path.isdir(parent):
        raise InputError(f"output directory {parent!r} does not exist")
    if os.path.lexists(loc.path) and not overwrite:
        raise InputError(f"output {out!r} already exists (pass overwrite=True / --overwrite)")
    return out


def _check_remote(loc: Location, *, overwrite: bool, source: Any, dataset: bool) -> str:
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    out = loc.uri.rstrip("/")
    if source is not None and source.filesystem is not None:
        if out in source.files:
            raise InputError(f"output {loc.uri!r} is also an input file")
        root = _inside(out, source.roots, local=False)
        if root is not None:
            raise InputError(f"output {loc.uri!r} is inside the input prefix {root!r}")
    bucket = loc.path.split("/", 1)[0]
    try:
        if loc.filesystem.get_file_info(bucket).type == fs.FileType.NotFound:
            raise InputError(f"cannot write {loc.uri!r}: the bucket {bucket!r} does not exist")
        kind = loc.filesystem.get_file_info(loc.path.rstrip("/")).type
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot write {loc.uri!r}: {reason(exc)}") from None
    if kind == fs.FileType.Directory and not dataset:
        raise InputError(f"output {loc.uri!r} is a prefix with objects under it")
    if kind != fs.FileType.NotFound and not overwrite:
        raise InputError(f"output {loc.uri!r} already exists (pass overwrite=True / --overwrite)")
    return loc.uri


# --------------------------------------------------------------------------- sinks


class DatasetSink:
    """A Parquet dataset: files of at most ``max_rows_per_file`` rows, hive directories by
    ``partition_by`` (the partition columns then live in the directory names, not in the
    files). Every file stays open until :meth:`close`, so each gets the final metadata."""

    def __init__(
        self,
        root: Location,
        schema: pa.Schema,
        *,
        max_rows_per_file: int | None = None,
        partition_by: Sequence[str] = (),
    ) -> None:
        for col in partition_by:
            if col not in schema.names:
                raise InputError(f"partition column {col!r} is not an output column")
        self.root = root
        self.partition_by = list(partition_by)
        self.file_schema = pa.schema([f for f in schema if f.name not in self.partition_by])
        if not self.file_schema.names:
            raise InputError("partition_by leaves no column to write in the files")
        self.max_rows = max_rows_per_file
        self.row_group_rows = min(262_144, max_rows_per_file or 262_144)
        self.files: list[tuple[str, ParquetSink, list[int]]] = []
        self._current: dict[tuple[Any, ...], tuple[str, ParquetSink, list[int]]] = {}

    def _directory(self, key: tuple[Any, ...]) -> str:
        parts = [
            f"{c}={_HIVE_NULL if v is None else quote(str(v), safe='')}"
            for c, v in zip(self.partition_by, key, strict=True)
        ]
        return "/".join(parts)

    def _open(self, key: tuple[Any, ...]) -> tuple[str, ParquetSink, list[int]]:
        if len(self.files) >= MAX_OPEN_FILES:
            raise InputError(
                f"the dataset at {self.root.uri!r} would need more than {MAX_OPEN_FILES} files; "
                "raise --max-rows-per-file or partition by fewer values"
            )
        directory = self._directory(key)
        rel = f"{directory + '/' if directory else ''}part-{len(self.files):05d}.parquet"
        target = self.root.child(rel)
        if self.root.filesystem is None:
            os.makedirs(os.path.dirname(target.path), exist_ok=True)
        sink = ParquetSink(
            target.path,
            self.file_schema,
            row_group_rows=self.row_group_rows,
            filesystem=self.root.filesystem,
        )
        entry = (rel, sink, [0])
        self.files.append(entry)
        self._current[key] = entry
        return entry

    def _append(self, key: tuple[Any, ...], table: pa.Table) -> None:
        while table.num_rows:
            entry = self._current.get(key)
            if entry is None or (self.max_rows is not None and entry[2][0] >= self.max_rows):
                if entry is not None:
                    entry[1].flush()  # a full file keeps only its writer open, not its rows
                entry = self._open(key)
            room = table.num_rows if self.max_rows is None else self.max_rows - entry[2][0]
            part = table.slice(0, room)
            entry[1].write(part)
            entry[2][0] += part.num_rows
            table = table.slice(part.num_rows)

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows with the dataset's full schema (partition columns included)."""
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        if not table.num_rows:
            return
        if not self.partition_by:
            self._append((), table)
            return
        index = pa.array(np.arange(table.num_rows, dtype=np.int64))
        keys = pa.table(
            [*(table.column(c) for c in self.partition_by), index],
            names=[*self.partition_by, "__row"],
        )
        groups = keys.group_by(self.partition_by, use_threads=False).aggregate([("__row", "list")])
        body = table.drop_columns(self.partition_by)
        for i in range(groups.num_rows):
            key = tuple(groups.column(c)[i].as_py() for c in self.partition_by)
            rows = groups.column("__row_list")[i].values
            self._append(key, body.take(rows))

    def close(self, metadata: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Close every file with ``metadata``; return ``[{"path", "rows"}]`` in writing order."""
        for _, sink, _ in self.files:
            sink.close(metadata)
        return [{"path": rel, "rows": rows[0]} for rel, _, rows in self.files]

    def abort(self) -> None:
        """Close every file (their content is then discarded)."""
        for _, sink, _ in self.files:
            sink.abort()


def write_bytes(loc: Location, data: bytes) -> None:
    """Write ``data`` to ``loc`` in one piece (local file or object-storage upload)."""
    if loc.filesystem is None:
        with open(loc.path, "wb") as fh:
            fh.write(data)
    else:
        with loc.filesystem.open_output_stream(loc.path) as fh:
            fh.write(data)


def environment_error(target: str, exc: BaseException) -> InputError:
    """The one-line error of a storage failure while writing ``target``."""
    return InputError(f"cannot write {target!r}: {reason(exc)}; nothing was written")


@contextlib.contextmanager
def storage_errors(target: str) -> Iterator[None]:
    """Turn a storage failure (disk full, access denied, ...) inside the block into the one-line
    error naming ``target``; any other exception passes unchanged."""
    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        if is_environment_error(exc):
            raise environment_error(target, exc) from None
        raise
