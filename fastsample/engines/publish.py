"""Atomic publication of a sink's output: a file or a dataset appears whole, or not at all.

See :mod:`fastsample.engines.sinks` for the guarantees. :func:`open_sink` is the one entry point:
the caller writes batches, calls ``close(metadata)``, and leaves the ``with`` block; only then
is the output published. Any exception (``KeyboardInterrupt`` included) discards everything,
and storage failures (disk full, read-only, permission, quota) become one ``InputError`` line
naming the output and saying that nothing was written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from fastsample.core.atomic import atomic_path
from fastsample.engines.sinks import (
    DATASET_METADATA,
    DatasetSink,
    ParquetSink,
    environment_error,
    storage_errors,
    write_bytes,
)
from fastsample.engines.storage import Location, locate
from fastsample.errors import InputError


class DatasetWriter:
    """What :func:`open_sink` yields for a dataset: ``write``, then ``close(metadata)``."""

    def __init__(self, sink: DatasetSink) -> None:
        self.sink = sink
        self.files: list[dict[str, Any]] = []

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows."""
        self.sink.write(data)

    def close(self, metadata: dict[str, Any] | None = None) -> None:
        """Close every file with ``metadata`` and write ``_fastsample.json`` beside them."""
        self.files = self.sink.close(metadata)
        record = {**(metadata or {}), "files": self.files}
        record["rows"] = sum(f["rows"] for f in self.files)
        write_bytes(
            self.sink.root.child(DATASET_METADATA), (json.dumps(record, indent=2) + "\n").encode()
        )

    def abort(self) -> None:
        """Discard the files."""
        self.sink.abort()


def _staging_name(loc: Location) -> tuple[str, str]:
    """(parent, hidden sibling name) for staging ``loc``'s output."""
    path = loc.path.rstrip("/" if loc.filesystem is not None else os.sep)
    sep = "/" if loc.filesystem is not None else os.sep
    parent, _, name = path.rpartition(sep)
    return parent, f".{name}.fastsample-{os.urandom(6).hex()}"


@contextlib.contextmanager
def open_sink(
    output: str,
    schema: pa.Schema,
    *,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    max_rows_per_file: int | None = None,
    partition_by: Sequence[str] = (),
) -> Iterator[Any]:
    """Open the sink of ``output``: one Parquet file, or a dataset when ``max_rows_per_file``
    or ``partition_by`` is given. Yields an object with ``write(batch)`` and
    ``close(metadata)``; the output is published when the ``with`` block exits normally.

    Raises
    ------
    InputError
        Bad options, or a storage failure (one line naming ``output``; nothing written).
    """
    if max_rows_per_file is not None and (
        isinstance(max_rows_per_file, bool) or int(max_rows_per_file) <= 0
    ):
        raise InputError(f"max_rows_per_file must be a positive integer, got {max_rows_per_file!r}")
    loc = locate(output, storage_options)
    dataset = bool(max_rows_per_file or partition_by)
    with storage_errors(loc.uri):
        if loc.filesystem is None and not dataset:
            with atomic_path(loc.path, overwrite=overwrite) as tmp:
                sink = ParquetSink(tmp, schema, threaded=True)
                yield from _aborting(sink)
        elif loc.filesystem is None:
            yield from _local_dataset(loc, schema, overwrite, max_rows_per_file, partition_by)
        else:
            yield from _remote(loc, schema, overwrite, dataset, max_rows_per_file, partition_by)


def _aborting(writer: Any) -> Iterator[Any]:
    """Hand ``writer`` to the ``with`` block; if the block fails, discard what it wrote."""
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise


def _local_dataset(
    loc: Location,
    schema: pa.Schema,
    overwrite: bool,
    max_rows: int | None,
    partition_by: Sequence[str],
) -> Iterator[Any]:
    parent, name = _staging_name(loc)
    staging = tempfile.mkdtemp(prefix=name, dir=parent or ".")
    writer = DatasetWriter(
        DatasetSink(
            Location(staging, None, staging),
            schema,
            max_rows_per_file=max_rows,
            partition_by=partition_by,
        )
    )
    target = loc.path.rstrip(os.sep)
    try:
        yield from _aborting(writer)
        open(os.path.join(staging, "_SUCCESS"), "wb").close()
        if os.path.lexists(target):
            if not overwrite:
                raise InputError(f"output {loc.uri!r} appeared while writing; not overwritten")
            # Two renames: the old dataset is out of the way before the new one is in place.
            old = f"{staging}.old"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _remote(
    loc: Location,
    schema: pa.Schema,
    overwrite: bool,
    dataset: bool,
    max_rows: int | None,
    partition_by: Sequence[str],
) -> Iterator[Any]:
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    filesystem = loc.filesystem
    parent, name = _staging_name(loc)
    staging = Location(f"{parent}/{name}", filesystem, f"{parent}/{name}")
    target = loc.path.rstrip("/")
    writer: Any
    if dataset:
        writer = DatasetWriter(
            DatasetSink(staging, schema, max_rows_per_file=max_rows, partition_by=partition_by)
        )
    else:
        writer = ParquetSink(staging.path, schema, threaded=True, filesystem=filesystem)
    try:
        yield from _aborting(writer)
        exists = filesystem.get_file_info(target).type != fs.FileType.NotFound
        if exists and not overwrite:
            raise InputError(f"output {loc.uri!r} appeared while writing; not overwritten")
        if not dataset:
            filesystem.move(staging.path, target)
            return
        if exists:
            filesystem.delete_dir_contents(target, missing_dir_ok=True)
        # Object storage has no rename: parts are moved (server-side copies), then the
        # metadata, then _SUCCESS, so a reader waiting for _SUCCESS sees the whole dataset.
        for entry in writer.files:
            filesystem.move(staging.child(entry["path"]).path, f"{target}/{entry['path']}")
        filesystem.move(staging.child(DATASET_METADATA).path, f"{target}/{DATASET_METADATA}")
        with filesystem.open_output_stream(f"{target}/_SUCCESS"):
            pass
    finally:
        with contextlib.suppress(OSError, pa.ArrowException):
            if dataset:
                filesystem.delete_dir(staging.path)
            elif filesystem.get_file_info(staging.path).type == fs.FileType.File:
                filesystem.delete_file(staging.path)


def write_text(
    target: str,
    text: str,
    *,
    overwrite: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write a small text file (a JSON report) atomically, locally or on object storage.

    Locally through :func:`fastsample.core.atomic.atomic_path`; on object storage as one
    upload of the whole content, which becomes visible only when complete.
    """
    loc = locate(target, storage_options)
    with storage_errors(loc.uri):
        if loc.filesystem is None:
            with atomic_path(loc.path, overwrite=overwrite) as tmp, open(tmp, "w") as fh:
                fh.write(text)
            return
        from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

        if not overwrite and loc.filesystem.get_file_info(loc.path).type != fs.FileType.NotFound:
            raise InputError(f"output {loc.uri!r} already exists")
        write_bytes(loc, text.encode())


def save_pilot(
    pilot: Any,
    target: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Write a :class:`~fastsample.core.pilot.Pilot` to a file or URI, atomically.

    Locally this is :meth:`~fastsample.core.pilot.Pilot.save`. On object storage the file is
    uploaded under a hidden staging name beside ``target`` and moved there once whole, so an
    interrupted upload leaves nothing at ``target``. Read it back with
    :func:`fastsample.engines.storage.open_pilot` (``sample --pilot s3://...`` does).

    Returns
    -------
    str
        ``target`` as given.

    Raises
    ------
    InputError
        ``target`` exists and ``overwrite`` is false, or the storage refuses (one line naming
        ``target``; nothing written).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastsample.core.pilot import as_pilot
    >>> from fastsample.core.pilot_fit import fit_pilot
    >>> from fastsample.engines.storage import open_pilot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2))
    >>> pilot = fit_pilot(X, (X[:, 0] > 1).astype(int), features=["a", "b"])
    >>> path = os.path.join(tempfile.mkdtemp(), "pilot.npz")
    >>> save_pilot(pilot, "file://" + path) == "file://" + path
    True
    >>> as_pilot(open_pilot("file://" + path)).fingerprint == pilot.fingerprint
    True
    """
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    loc = locate(target, storage_options)
    if loc.filesystem is None:
        if not overwrite and os.path.lexists(loc.path):
            raise InputError(
                f"output {loc.uri!r} already exists (pass overwrite=True / --overwrite)"
            )
        pilot.save(loc.path)
        return os.fspath(target)
    parent, name = _staging_name(loc)
    staging = f"{parent}/{name}"
    filesystem = loc.filesystem
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = pilot.save(os.path.join(tmp, "pilot.npz"))
            fs.copy_files(str(local), staging, destination_filesystem=filesystem)
        if not overwrite and filesystem.get_file_info(loc.path).type != fs.FileType.NotFound:
            raise InputError(
                f"output {loc.uri!r} already exists (pass overwrite=True / --overwrite)"
            )
        filesystem.move(staging, loc.path)
    except (OSError, pa.ArrowException) as exc:
        raise environment_error(loc.uri, exc) from None
    finally:
        with contextlib.suppress(OSError, pa.ArrowException):
            if filesystem.get_file_info(staging).type == fs.FileType.File:
                filesystem.delete_file(staging)
    return os.fspath(target)
