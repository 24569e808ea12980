"""Sources: paths, globs, directories, URIs and open Arrow streams, read batch by batch.

A *source* is a file, a list of files, a glob, a directory or prefix (searched recursively), any
of them local or a URI (:mod:`fastsample.engines.storage`), or, in the Python API, an open data
stream: a ``pyarrow.dataset.Dataset``, a ``pyarrow.RecordBatchReader``, a Polars ``LazyFrame``
(run by Polars' streaming engine) or any object exporting the Arrow C stream interface
(``__arrow_c_stream__``: a DuckDB relation, a Polars or pyarrow table, ...). Streams are read
batch by batch and never collected.

Files are Parquet, CSV or NDJSON (``format``; by default from the first name's extension, Parquet
otherwise); CSV and NDJSON go through Polars' lazy scanners. Directories are listed by
``pyarrow.dataset`` discovery, which skips names starting with ``_`` or ``.`` (``_SUCCESS``,
``.crc``) as Spark does; globs skip such file names too. Globs and directories are read in
sorted path order; a list is read in the order given. Directories whose sub-directories are named
``key=value`` are hive-partitioned: each key becomes a column appended after the file's own
columns (Int64 when every value is an integer, else String: ``score=0.5`` stays the text
``"0.5"``, as pyarrow's discovery types it, so no float formatting changes a value;
``__HIVE_DEFAULT_PARTITION__`` is null). When the files hold the key column themselves (as
Polars writes them) the file's column and type are kept and every value read is checked against
the directory's (as numbers for a float column: Polars names ``1.0`` so): a difference is an
error.

Re-reading: files, datasets, lazy frames and C-stream exporters can be read any number of times
(each pass runs the query again); a ``RecordBatchReader`` only once, so what needs two passes
over the same input (training a pilot on it, ``exact=True``) says so instead of reading it twice.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fastsample.engines.listing import GLOB_CHARS, detect_format, expand, partition_columns
from fastsample.engines.storage import PathLike, locate, one_line, raised_by, reason
from fastsample.engines.streams import Stream, is_stream
from fastsample.errors import InputError


@dataclass(frozen=True)
class Source:
    """A resolved source read as one table.

    Attributes
    ----------
    files : list of str
        Files in reading order, as named to the user (URIs for remote files); a stream's name.
    schema : pyarrow.Schema
        Common schema (the files' columns, then hive partition columns), metadata stripped.
    num_rows : int or None
        Total number of rows (from the Parquet footers); ``None`` when unknown before reading.
    partitions : list of dict
        Per file, hive partition values (``{}`` when not hive-partitioned).
    roots : list of str
        Directories given as the source (used to refuse writing inside them).
    file_schema : pyarrow.Schema, optional
        The files' own columns (without the partition columns).
    filesystem : pyarrow.fs.FileSystem, optional
        The filesystem of remote files (``None``: local paths).
    paths : list of str
        Paths of the files inside ``filesystem`` (empty for local files: ``files``).
    stream : Stream, optional
        The open stream (streams, CSV and NDJSON sources).
    """

    files: list[str]
    schema: pa.Schema
    num_rows: int | None
    partitions: list[dict[str, Any]] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    file_schema: pa.Schema | None = None
    filesystem: Any = None
    paths: list[str] = field(default_factory=list)
    stream: Stream | None = None

    @property
    def columns(self) -> list[str]:
        """Column names of the combined schema."""
        return list(self.schema.names)

    @property
    def reusable(self) -> bool:
        """Whether the source can be read more than once."""
        return self.stream is None or self.stream.reusable

    def fs_paths(self) -> list[str]:
        """Paths to open in :attr:`filesystem`, one per file."""
        return self.paths or self.files


def polars_type(typ: pa.DataType) -> Any:
    """Polars type of a hive partition column of Arrow type ``typ``."""
    import polars as pl  # lazy: start-up time (Polars only for CSV/NDJSON and LazyFrames)

    return pl.Int64 if pa.types.is_integer(typ) else pl.String


def _footer(path: str, filesystem: Any = None, name: str | None = None) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path, filesystem=filesystem)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise InputError(f"cannot read {name or path!r} as Parquet: {reason(exc)}") from None


def _describe_difference(a: pa.Schema, b: pa.Schema) -> str:
    names_a, names_b = list(a.names), list(b.names)
    for name in names_a:
        if name not in names_b:
            return f"column {name!r} is missing"
    for name in names_b:
        if name not in names_a:
            return f"it has an extra column {name!r}"
    if names_a != names_b:
        return "the columns are in a different order"
    for fa, fb in zip(a, b, strict=True):
        if not fa.type.equals(fb.type):
            return f"column {fa.name!r} is {fb.type} there but {fa.type} in the first file"
    return "the schemas differ"


def _stream_source(obj: Any, name: str | None = None, files: list[str] | None = None) -> Source:
    stream = Stream(obj, name or f"<{type(obj).__module__.split('.')[0]} {type(obj).__name__}>")
    try:
        schema = stream.schema().remove_metadata()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read {stream.name}: {reason(exc)}") from None
    except Exception as exc:  # Polars raises its own errors for unreadable inputs
        raise InputError(f"cannot read {stream.name}: {one_line(exc)}") from None
    rows = None
    if stream.kind == "dataset":
        rows = int(obj.count_rows())
    elif stream.kind == "export" and hasattr(obj, "num_rows"):
        rows = int(obj.num_rows)
    return Source(
        files=files or [stream.name],
        schema=schema,
        num_rows=rows,
        stream=stream,
        file_schema=schema,
    )


def _scan_text(files: list[str], fmt: str, storage_options: Mapping[str, Any] | None) -> Source:
    import polars as pl  # lazy: start-up time (Polars only for CSV/NDJSON and LazyFrames)

    opts = dict(storage_options) if storage_options else None
    scanner = pl.scan_csv if fmt == "csv" else pl.scan_ndjson
    lf = scanner(files, storage_options=opts)
    return _stream_source(lf, name=files[0], files=files)


def resolve_source(
    source: Any,
    *,
    storage_options: Mapping[str, Any] | None = None,
    format: str | None = None,
) -> Source:
    """Resolve ``source`` into files with one common schema, or wrap an open stream.

    Parameters
    ----------
    source : path, URI, glob, directory, a list of them, or an open stream
        See the module documentation.
    storage_options : dict, optional
        Options of the filesystem of URIs (e.g. ``{"endpoint_url": ..., "region": ...}``).
    format : {"parquet", "csv", "ndjson"}, optional
        File format; default from the first name's extension (Parquet otherwise).

    Returns
    -------
    Source

    Raises
    ------
    InputError
        Nothing matches, a file is not readable, the files' schemas differ, or the storage
        refuses (one line naming the file or URI).
    """
    if isinstance(source, Source):
        return source
    if is_stream(source):
        return _stream_source(source)
    items: list[PathLike]
    if isinstance(source, (str, os.PathLike)):
        items = [source]
    else:
        items = list(source)
        if not items:
            raise InputError("the list of input files is empty")
    fmt = detect_format(os.fspath(items[0]), format)
    locs = [locate(i, storage_options) for i in items]
    filesystem = locs[0].filesystem
    if any((loc.filesystem is None) != (filesystem is None) for loc in locs):
        raise InputError("a source cannot mix local files and URIs")
    files: list[str] = []
    names: list[str] = []
    raw: list[dict[str, str | None]] = []
    roots: list[str] = []
    for loc in locs:
        found, hive, is_dir = expand(loc, fmt)
        files.extend(found)
        names.extend(loc.display(f) for f in found)
        raw.extend(hive)
        if is_dir:
            roots.append(os.path.realpath(loc.path) if filesystem is None else loc.uri.rstrip("/"))
    seen: set[str] = set()
    for f, name in zip(files, names, strict=True):
        real = os.path.realpath(f) if filesystem is None else f
        if real in seen:
            raise InputError(f"input file {name!r} is given more than once")
        seen.add(real)
    if fmt != "parquet":
        return _scan_text(names, fmt, storage_options)

    first_schema: pa.Schema | None = None
    num_rows = 0
    for f, name in zip(files, names, strict=True):
        meta = _footer(f, filesystem, name)
        try:
            schema = meta.schema.to_arrow_schema().remove_metadata()
        except (pa.ArrowException, ValueError) as exc:
            raise InputError(f"cannot read the schema of {name!r}: {one_line(exc)}") from None
        if first_schema is None:
            first_schema = schema
        elif not schema.equals(first_schema):
            raise InputError(
                f"schema of {name!r} differs from {names[0]!r}: "
                f"{_describe_difference(first_schema, schema)}"
            )
        num_rows += meta.num_rows
    assert first_schema is not None
    partitions, extra = partition_columns(raw)
    schema = first_schema
    for fld in extra:
        # A key the files also hold (Polars writes them so) stays the file's column; its
        # values are checked against the directory's while reading.
        if fld.name not in schema.names:
            schema = schema.append(fld)
    return Source(
        files=names,
        schema=schema,
        num_rows=num_rows,
        partitions=partitions,
        roots=roots,
        file_schema=first_schema,
        filesystem=filesystem,
        paths=files if filesystem is not None else [],
    )


def require_columns(source: Source, columns: Sequence[str], role: str) -> None:
    """Raise ``InputError`` naming the first of ``columns`` missing from ``source``."""
    for name in columns:
        if name not in source.schema.names:
            raise InputError(f"{role} column {name!r} not found in {source.files[0]!r}")


def expand_columns(source: Source, patterns: Sequence[str], role: str) -> list[str]:
    """Expand shell-style patterns (``f*``) against the schema; plain names must exist."""
    names: list[str] = []
    for pat in patterns:
        if GLOB_CHARS.search(pat):
            hits = [c for c in source.schema.names if fnmatch.fnmatchcase(c, pat)]
            if not hits:
                raise InputError(f"{role} pattern {pat!r} matches no column of {source.files[0]!r}")
            names.extend(h for h in hits if h not in names)
        else:
            require_columns(source, [pat], role)
            if pat not in names:
                names.append(pat)
    return names


def _check_hive(batch: pa.RecordBatch, checks: dict[str, Any], name: str) -> None:
    """Every value of a file column that is also a hive key equals the directory's value."""
    import pyarrow.compute as pc  # lazy: start-up time

    for col, value in checks.items():
        column = batch.column(col)
        if value is None:
            bad = pc.is_valid(column)
        elif pa.types.is_floating(column.type):
            try:
                number = pa.scalar(float(value), type=column.type)
            except ValueError:
                number = pa.scalar(None, type=column.type)
            bad = pc.invert(pc.fill_null(pc.equal(column, number), False))
        else:
            text = pc.cast(column, pa.string())
            bad = pc.invert(pc.fill_null(pc.equal(text, str(value)), False))
        if pc.any(bad).as_py():
            found = column.filter(bad)[0].as_py()
            raise InputError(
                f"hive partition {col}={value} of {name!r} disagrees with the file's own "
                f"column {col!r} (value {found!r})"
            )


def iter_batches(
    source: Source,
    *,
    batch_rows: int,
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[pa.RecordBatch, str]]:
    """Yield ``(pyarrow.RecordBatch, file)`` over ``source`` in order, ``batch_rows`` rows at most.

    Files are read with pyarrow's batch reader (columns decoded in parallel, one row group
    buffered at a time; no pre-buffering, which would keep every row group read so far until
    the file is closed). Polars' own streaming scan was as fast here but held about 150 MB more
    at 16M rows. Hive partition values are appended as constant columns, in ``columns`` order.
    Streams are read batch by batch (see :mod:`fastsample.engines.streams`). Read failures
    become ``InputError`` naming the file.
    """
    wanted = list(source.schema.names) if columns is None else list(columns)
    if source.stream is not None:
        yield from _stream_batches(source.stream, wanted, batch_rows)
        return
    own = source.file_schema.names if source.file_schema is not None else source.schema.names
    file_cols = [c for c in wanted if c in own]
    parts = source.partitions or [{} for _ in source.files]
    for path, name, part in zip(source.fs_paths(), source.files, parts, strict=True):
        consts = {
            c: pa.scalar(part[c], type=source.schema.field(c).type) for c in wanted if c not in own
        }
        checks = {c: part[c] for c in file_cols if c in part}
        try:
            pf = pq.ParquetFile(
                path, pre_buffer=False, buffer_size=1 << 22, filesystem=source.filesystem
            )
            batches = pf.iter_batches(batch_size=batch_rows, columns=file_cols, use_threads=True)
            for batch in batches:
                if not batch.num_rows:
                    continue
                if checks:
                    _check_hive(batch, checks, name)
                if consts:
                    arrays = [
                        pa.repeat(consts[c], batch.num_rows) if c in consts else batch.column(c)
                        for c in wanted
                    ]
                    batch = pa.RecordBatch.from_arrays(arrays, names=wanted)
                yield batch, name
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read {name!r}: {reason(exc)}") from None


def _stream_batches(
    stream: Stream, wanted: list[str], batch_rows: int
) -> Iterator[tuple[pa.RecordBatch, str]]:
    try:
        for batch in stream.batches(wanted, batch_rows):
            if batch.num_rows:
                yield batch, stream.name
    except InputError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read {stream.name}: {reason(exc)}") from None
    except Exception as exc:
        # Polars' and DuckDB's own errors (a CSV cell that does not parse, ...).
        if raised_by(exc, "polars", "duckdb", "_duckdb"):
            raise InputError(f"cannot read {stream.name}: {one_line(exc)}") from None
        raise


def iter_frames(
    source: Source,
    *,
    batch_rows: int,
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[Any, str]]:
    """Yield ``(polars.DataFrame, file)``: :func:`iter_batches` handed to Polars.

    Numeric columns cross without copying.
    """
    import polars as pl  # lazy: start-up time (Polars only for CSV/NDJSON and LazyFrames)

    for batch, path in iter_batches(source, batch_rows=batch_rows, columns=columns):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame, path


def describe(
    source: Source, *, label: str | None = None, batch_rows: int = 1 << 20
) -> dict[str, Any]:
    """Rows, schema and (with ``label``) the count of each label value, read in one pass.

    Returns
    -------
    dict
        ``files``, ``rows``, ``schema`` (name -> Arrow type), and with ``label``:
        ``label``, ``counts`` (value -> rows, values as strings, nulls as ``"null"``),
        ``binary`` (values are a subset of {0, 1} with no nulls), ``positives``,
        ``negatives``, ``event_rate`` and ``imbalance_ratio`` (negatives per positive).
    """
    rows = source.num_rows
    if rows is None and label is None:
        first = source.schema.names[:1]
        rows = sum(
            b.num_rows for b, _ in iter_batches(source, batch_rows=batch_rows, columns=first)
        )
    info: dict[str, Any] = {
        "files": len(source.files),
        "rows": rows,
        "schema": {f.name: str(f.type) for f in source.schema},
    }
    if label is None:
        return info
    require_columns(source, [label], "label")
    counts: dict[str, int] = {}
    for frame, _ in iter_frames(source, batch_rows=batch_rows, columns=[label]):
        vc = frame.get_column(label).value_counts()
        for value, n in vc.iter_rows():
            key = "null" if value is None else str(value)
            counts[key] = counts.get(key, 0) + int(n)
    info["rows"] = sum(counts.values())
    typ = source.schema.field(label).type
    numeric = pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_floating(typ)
    canon: dict[str, int] = {}
    for k, n in counts.items():
        if numeric and k not in ("null",):
            k = {"True": "1", "False": "0", "1.0": "1", "0.0": "0"}.get(k, k)
        canon[k] = canon.get(k, 0) + n
    binary = numeric and set(canon) <= {"0", "1"}
    pos, neg = canon.get("1", 0), canon.get("0", 0)
    info.update(
        label=label,
        counts=dict(sorted(canon.items())),
        binary=bool(binary),
        positives=pos,
        negatives=neg,
        event_rate=(pos / (pos + neg)) if binary and pos + neg else None,
        imbalance_ratio=(neg / pos) if binary and pos else None,
    )
    return info
