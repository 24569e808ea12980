"""Listing files: globs, directories and prefixes, hive partition values, file formats.

Directories are listed by ``pyarrow.dataset`` discovery (which skips ``_``/``.`` names at every
level and parses hive ``key=value`` directories, ``__HIVE_DEFAULT_PARTITION__`` as null); local
globs by :mod:`glob`, remote ones by one recursive listing of the literal prefix matched against
the pattern. Everything comes back in sorted path order.
"""

from __future__ import annotations

import fnmatch
import glob as _glob
import os
import re
from typing import Any

import pyarrow as pa

from fastsample.engines.storage import Location, reason
from fastsample.errors import InputError

GLOB_CHARS = re.compile(r"[*?\[]")
_INT_RE = re.compile(r"^[+-]?\d{1,18}$")
FORMATS = ("parquet", "csv", "ndjson")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` within one path segment, ``**`` across segments, ``[...]`` classes."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] in "*?[":
            out.append(fnmatch.translate(pattern[i]).removeprefix("(?s:").removesuffix(r")\Z"))
            out[-1] = out[-1].replace(".*", "[^/]*").replace(".", "[^/]")
            if pattern[i] == "[":
                end = pattern.find("]", i + 1)
                out[-1] = pattern[i : end + 1] if end > 0 else re.escape("[")
                i = end + 1 if end > 0 else i + 1
                continue
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _listing_format(fmt: str) -> str:
    return {"parquet": "parquet", "csv": "csv", "ndjson": "json"}[fmt]


def _directory(loc: Location, fmt: str) -> tuple[list[str], list[dict[str, str | None]]]:
    """Files under a directory (sorted) and each one's raw hive values.

    pyarrow's discovery lists the files (recursively, ``_``/``.`` names skipped at every level)
    without opening any: with an explicit empty schema it neither reads a footer nor unifies
    the partition keys' inferred types with the files' (which fails when the files hold the key
    column too, as Polars writes them). pyarrow's ``HivePartitioning`` then parses each file's
    directories (URL-decoding, ``__HIVE_DEFAULT_PARTITION__`` as null), all values as strings.
    """
    import pyarrow.dataset as ds  # lazy: start-up time (dataset discovery only for directories)

    try:
        found = ds.dataset(
            loc.path, filesystem=loc.filesystem, format=_listing_format(fmt), schema=pa.schema([])
        )
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot list {loc.uri!r}: {reason(exc)}") from None
    files = sorted(found.files)
    root = loc.path.rstrip("/" + os.sep)
    rels = [
        (f[len(root) :] if f.startswith(root) else os.path.relpath(f, root)).lstrip("/" + os.sep)
        for f in files
    ]
    rels = [r.replace(os.sep, "/") for r in rels]
    dirs = [r.rpartition("/")[0] for r in rels]
    keys = [[seg.partition("=")[0] for seg in d.split("/") if "=" in seg] for d in dirs]
    names = list(dict.fromkeys(keys[0])) if keys else []
    if not names or any(k != keys[0] for k in keys):
        return files, [{} for _ in files]
    hive = ds.HivePartitioning(pa.schema([(k, pa.string()) for k in names]))
    raw = [ds.get_partition_keys(hive.parse(r)) for r in rels]  # the last segment: the file
    return files, [{k: r.get(k) for k in names} for r in raw]


def expand(loc: Location, fmt: str) -> tuple[list[str], list[dict[str, str | None]], bool]:
    """(files, raw hive values, is a directory) of one item."""
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    if loc.filesystem is None:
        if os.path.isdir(loc.path):
            files, hive = _directory(loc, fmt)
            if not files:
                raise InputError(f"directory {loc.uri!r} contains no {fmt_name(fmt)} files")
            return files, hive, True
        if not os.path.exists(loc.path) and GLOB_CHARS.search(loc.path):
            files = sorted(
                p
                for p in _glob.glob(loc.path, recursive=True)
                if os.path.isfile(p) and not _hidden(os.path.basename(p))
            )
            if not files:
                raise InputError(f"glob {loc.uri!r} matches no files")
            return files, [{} for _ in files], False
        if not os.path.exists(loc.path):
            raise InputError(f"input file {loc.uri!r} does not exist")
        return [loc.path], [{}], False
    try:
        if GLOB_CHARS.search(loc.path):
            literal = GLOB_CHARS.split(loc.path, maxsplit=1)[0].rpartition("/")[0]
            regex = _glob_regex(loc.path)
            infos = loc.filesystem.get_file_info(fs.FileSelector(literal, recursive=True))
            files = sorted(
                i.path
                for i in infos
                if i.type == fs.FileType.File and regex.match(i.path) and not _hidden(i.base_name)
            )
            if not files:
                raise InputError(f"glob {loc.uri!r} matches no files")
            return files, [{} for _ in files], False
        info = loc.filesystem.get_file_info(loc.path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read {loc.uri!r}: {reason(exc)}") from None
    if info.type == fs.FileType.Directory:
        files, hive = _directory(loc, fmt)
        if not files:
            raise InputError(f"prefix {loc.uri!r} contains no {fmt_name(fmt)} files")
        return files, hive, True
    if info.type == fs.FileType.NotFound:
        _check_bucket(loc)
        raise InputError(f"input file {loc.uri!r} does not exist")
    return [loc.path], [{}], False


def _check_bucket(loc: Location) -> None:
    """A missing object may be a missing bucket: say which."""
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    bucket = loc.path.split("/", 1)[0]
    try:
        missing = loc.filesystem.get_file_info(bucket).type == fs.FileType.NotFound
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read {loc.uri!r}: {reason(exc)}") from None
    if missing and "/" in loc.path:
        raise InputError(f"cannot read {loc.uri!r}: the bucket {bucket!r} does not exist")


def fmt_name(fmt: str) -> str:
    """``Parquet``, ``CSV`` or ``NDJSON``."""
    return {"parquet": "Parquet", "csv": "CSV", "ndjson": "NDJSON"}[fmt]


def detect_format(name: str, fmt: str | None) -> str:
    """``fmt`` when given (checked), else guessed from ``name``'s extension (Parquet otherwise)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    base = name.lower().removesuffix(".gz").removesuffix(".zst")
    return next((f for ext, f in _EXTENSIONS.items() if base.endswith(ext)), "parquet")


def partition_columns(
    raw: list[dict[str, str | None]],
) -> tuple[list[dict[str, Any]], list[pa.Field]]:
    keys = list(raw[0]) if raw else []
    if not keys or any(list(r) != keys for r in raw):
        # Not consistently hive-partitioned: treat every file as plain data.
        return [{} for _ in raw], []
    fields: list[pa.Field] = []
    parsed: list[dict[str, Any]] = [{} for _ in raw]
    for key in keys:
        values = [r[key] for r in raw]
        as_int = all(v is None or _INT_RE.match(v) for v in values)
        fields.append(pa.field(key, pa.int64() if as_int else pa.string()))
        for i, v in enumerate(values):
            parsed[i][key] = None if v is None else (int(v) if as_int else v)
    return parsed, fields
