"""Former home of sources and sinks, kept so existing imports keep working.

Sources now live in :mod:`fastsample.engines.sources` (with :mod:`~fastsample.engines.listing`,
:mod:`~fastsample.engines.streams` and :mod:`~fastsample.engines.storage`), sinks in
:mod:`fastsample.engines.sinks` and :mod:`~fastsample.engines.publish`. Import from there.
"""

from __future__ import annotations

from fastsample.engines.sinks import (
    METADATA_KEY,
    ParquetSink,
    check_output,
    dictionary_columns,
    file_size,
    read_metadata,
)
from fastsample.engines.sources import (
    Source,
    describe,
    expand_columns,
    iter_batches,
    iter_frames,
    polars_type,
    require_columns,
    resolve_source,
)
from fastsample.engines.storage import PathLike

__all__ = [
    "METADATA_KEY",
    "ParquetSink",
    "PathLike",
    "Source",
    "check_output",
    "describe",
    "dictionary_columns",
    "expand_columns",
    "file_size",
    "iter_batches",
    "iter_frames",
    "polars_type",
    "read_metadata",
    "require_columns",
    "resolve_source",
]
