"""The streaming Parquet engine: scan -> score -> draw -> write, in bounded memory.

:func:`sample_parquet` checks its arguments, starts the reader (pyarrow's batch reader on a
prefetching thread, :mod:`fastsample.engines.prefetch`), resolves the run's plan once, and
hands the batches to the streaming pass (:func:`fastsample.engines.stream.stream_sample`),
which calls the per-batch step (:func:`fastsample.engines.batch.draw_indices`) on each; a
uniform run without a pilot on local Parquet files with an integer key or none runs instead as
one Polars query that decodes the other columns only for the kept rows
(:mod:`fastsample.engines.late`: the same output and report). A row's
fate depends only on its key (or, without a key column, its global row index in input order)
and the seed, so the output does not depend on the batch size or the thread count. The pilot,
when none is given, comes from :func:`fastsample.engines.training.train_pilot` (a case-control
sample drawn from the same source on an independent hash stream).

kappa (the scale of the inclusion scores) is estimated in one pass from the pilot's own sample
of negatives by default. ``exact=True`` first streams every negative's score to a spill file
and solves the water-filling equation over all of them exactly
(:mod:`fastsample.engines.exact`, :mod:`fastsample.core.kappa`), so the expected number of
kept negatives equals ``rate * N0`` up to floating-point rounding.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fastsample.engines.args import check_label_type, key_list, parquet_output
from fastsample.engines.args import chunk_rows as check_chunk_rows
from fastsample.engines.prefetch import Prefetch
from fastsample.engines.sinks import check_output
from fastsample.engines.sources import expand_columns, iter_batches, require_columns, resolve_source
from fastsample.engines.storage import PathLike, open_pilot
from fastsample.errors import FastsampleWarning, InputError

if TYPE_CHECKING:
    from fastsample.engines.stream import SampleReport


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
    group_key: str | Sequence[str] | None = None,
) -> SampleReport:
    """Sample a Parquet source far larger than memory into one Parquet file.

    Every positive is kept (under ``lcc`` positives are sampled too) and each negative with
    probability ``clip(kappa * h(x), floor, 1)``. The output holds the input
    columns unchanged plus ``sampling_prob``, ``sample_weight`` and ``log_odds_offset``, and
    the parameters, pilot fingerprint, kappa and counts as JSON in the Parquet key-value
    metadata under ``"fastsample"`` (read it with :func:`fastsample.read_metadata`).

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
        Column(s) that identify each row: the key should be unique (rows sharing a key share
        their uniform, so they are kept or dropped together; a non-unique key is detected
        while streaming and warned about). Default: the global row index in input order
        (files in sorted path order), which does not survive re-ordering or re-partitioning
        of the input.
    floor : float, optional
        Lower bound on every inclusion probability.
    exact : bool
        Solve kappa over every negative (an extra pass and a spill file of 8 bytes a negative)
        instead of estimating it from the pilot's kappa reference sample. The default one-pass
        mode also makes that pass, with a one-line warning, when the reference sample cannot
        give the expected count to 0.75% (:func:`fastsample.core.reference.one_pass_problem`).
    chunk_rows : int, optional
        Rows per batch (default 262,144). Does not change the result.
    overwrite : bool
        Replace an existing output.
    progress : bool
        Progress bar on a terminal.
    report : path, optional
        Also write the report as JSON there.
    columns : fastsample.OutputColumns, optional
        Names of the three added columns.
    storage_options : dict, optional
        Filesystem options for URIs, input and output (:mod:`fastsample.engines.storage`).
    format : {"parquet", "csv", "ndjson"}, optional
        Input format (default from the extension).
    max_rows_per_file : int, optional
        Write a dataset of files of at most this many rows.
    partition_by : str or list of str, optional
        Write a hive-partitioned dataset by these columns.
    group_key : str or list of str, optional
        Sample groups on purpose instead ("permanent random numbers"): every row of a group
        shares one uniform, so a group's rows are kept or dropped together (each row still with
        its own probability ``a_y(x)``). Expected counts and the Horvitz–Thompson weights are
        unchanged, but rows of a group are no longer independent: the variance of totals and
        counts grows with the group sizes, and model standard errors from the sample must be
        clustered by group. Exclusive with ``key``.

    Returns
    -------
    SampleReport
    """
    t0 = time.perf_counter()
    parquet_output(output)
    batch_rows = check_chunk_rows(chunk_rows)
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
    reader: Prefetch | None = None
    late = False
    started = None
    if not exact and pilot is None and strategy == "uniform":
        from fastsample.engines.late import late_pass, start_query  # lazy: uniform runs only

        try:
            late_keys = key_list(group_key if group_key is not None else key)
            late = late_pass(src, late_keys)
        except InputError:
            late = False  # the checks below say what is wrong
        if late:
            # Polars decodes while Numba is imported and the plan solved (checked there).
            started = start_query(src, label, late_keys, rate, floor, seed)
    if not late and not exact and (pilot is not None or strategy == "uniform"):
        reader = Prefetch(iter_batches(src, batch_rows=batch_rows))
    try:
        # Numba-backed modules are imported here, after the reader has started, so that
        # decoding overlaps their import (start-up time; see the comment above).
        from fastsample.core.pilot import as_pilot  # lazy: start-up time (see above)
        from fastsample.core.plan import (  # lazy: start-up
            OutputColumns,
            pilot_plan,
            resolve_parameters,
            solve_plan,
        )
        from fastsample.engines.stream import (  # lazy: start-up
            SampleReport,
            stream_sample,
            write_json,
        )

        params = resolve_parameters(strategy, rate, floor, seed)
        r = params.rate
        cols = columns or OutputColumns()
        if report is not None:
            rep = check_output(report, overwrite=True, source=src, storage_options=storage_options)
            if os.path.realpath(rep) == os.path.realpath(out):
                raise InputError(f"report {os.fspath(report)!r} is the output file")
        check_label_type(src, label)
        if group_key is not None and key is not None:
            raise InputError("give key or group_key, not both")
        grouped = group_key is not None
        keys = key_list(group_key if grouped else key)
        require_columns(src, keys, "group key" if grouped else "key")
        cols.check(list(src.schema.names), source=repr(src.files[0]))
        feats = expand_columns(src, list(features), "feature") if features else None

        pilot_obj = None
        if pilot is not None:
            pilot_obj = as_pilot(open_pilot(pilot, storage_options=storage_options), feats)
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
                from fastsample.engines.training import (
                    train_pilot,  # lazy: start-up time (only runs that train a pilot)
                )

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
            from fastsample.engines.exact import (
                exact_plan,  # lazy: start-up time (only runs in exact mode)
            )

            plan, n0_exact = exact_plan(src, label, pilot_obj, params, cols, batch_rows, progress)
            target_neg = r * n0_exact
        elif pilot_obj is None:
            # uniform without a pilot: h = 1 for every row, so kappa = rate exactly.
            plan = solve_plan(params, np.ones(1), columns=cols)
        elif pilot_obj.reference_X is None:
            raise InputError(
                "this pilot carries no sample of negatives for a one-pass kappa (a bare classifier); "
                "use exact=True / --exact"
            )
        else:
            from fastsample.core.numba_config import (
                serial_kernels,  # lazy: start-up time (see above)
            )
            from fastsample.core.reference import (
                one_pass_problem,  # lazy: start-up time (see above)
            )

            # Serially: the reference sample is at most 200,000 rows, the other core is
            # decoding the first batches meanwhile, and a small run then never starts the
            # thread pool nor loads the parallel builds (start-up time, issue 12).
            with serial_kernels():
                plan = pilot_plan(params, pilot_obj, cols)
            problem = one_pass_problem(pilot_obj, plan.relative_error, plan.target_negatives)
            if problem is not None and src.reusable:
                from fastsample.engines.exact import (
                    exact_plan,  # lazy: start-up time (only runs in exact mode)
                )

                warnings.warn(
                    f"one-pass kappa: {problem}; solving it exactly over every row instead "
                    "(an extra pass; --exact / exact=True always does)",
                    FastsampleWarning,
                    stacklevel=2,
                )
                plan, n0_exact = exact_plan(
                    src, label, pilot_obj, params, cols, batch_rows, progress
                )
                target_neg = r * n0_exact
            elif problem is not None:
                warnings.warn(
                    f"one-pass kappa: {problem}, and this source can be read only once; the "
                    "kept count may miss the target (see the report's z-score)",
                    FastsampleWarning,
                    stacklevel=2,
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
            group_key=grouped,
            method=plan.method,
            kappa=float(plan.kappa),
            pilot_fingerprint=pilot_obj.fingerprint if pilot_obj is not None else None,
            columns={"prob": cols.prob, "weight": cols.weight, "offset": cols.offset},
        )
        if late:
            from fastsample.engines.late import stream_late  # lazy: start-up (uniform runs only)

            stream_late(
                src,
                out,
                rep_obj,
                overwrite=overwrite,
                schema=out_schema,
                plan=plan,
                label=label,
                keys=keys,
                batch_rows=batch_rows,
                progress=progress,
                t0=t0,
                sink_options=sink_options,
                started=started,
            )
        else:
            if reader is None:
                reader = Prefetch(iter_batches(src, batch_rows=batch_rows))
            stream_sample(
                reader,
                out,
                rep_obj,
                overwrite=overwrite,
                schema=out_schema,
                plan=plan,
                pilot=pilot_obj,
                label=label,
                keys=keys,
                target_neg=target_neg,
                progress=progress,
                total=src.num_rows,
                t0=t0,
                sink_options=sink_options,
            )
        for message in rep_obj.warnings:
            warnings.warn(message, FastsampleWarning, stacklevel=2)
        if report is not None:
            write_json(report, rep_obj.to_dict(), storage_options=storage_options)
        return rep_obj
    finally:
        started = None  # a query started early and not used stops with its iterator
        if reader is not None:
            reader.close()


__all__ = ["sample_parquet"]
