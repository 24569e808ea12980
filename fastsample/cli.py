"""The ``fastsample`` command line: argument parsing and printing only.

The handlers live in :mod:`fastsample.harness.commands` and import the heavy modules (NumPy,
Polars, Numba, scikit-learn) only when they run, so that ``fastsample --help`` stays fast; the
choices offered here are the library's own lists (:mod:`fastsample.core.names`).

Exit status: 0 on success, 2 on bad usage or bad input (one line on stderr, no traceback) —
storage failures such as a full disk, a read-only file system, a denied permission or an
unreachable endpoint included —, 1 on an unexpected failure, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from fastsample import __version__
from fastsample.core.names import (
    CALIBRATION_BINNINGS,
    EVALUATION_METHODS,
    PILOT_MODELS,
    STRATEGIES,
)
from fastsample.errors import InputError
from fastsample.harness.argtypes import count, names, number, option, positive_int, seed
from fastsample.harness.commands import HANDLERS, PROG, UsageError


def _short(n: int) -> str:
    """A row count as the help texts write it (1M, 30M, 4k)."""
    for mult, suffix in ((10**6, "M"), (10**3, "k")):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{suffix}"
    return str(n)


def _add_input(
    p: argparse.ArgumentParser,
    *,
    label_help: str = "0/1 label column",
    label_required: bool = True,
    metavar: str = "SOURCE",
    source_help: str = "Parquet file(s), glob or directory",
) -> None:
    """The options of every command that reads a source: where, in what format, which label."""
    p.add_argument("source", metavar=metavar, nargs="+", help=source_help)
    p.add_argument("--label", "-l", required=label_required, help=label_help)
    p.add_argument(
        "--format",
        choices=["parquet", "csv", "ndjson"],
        default=None,
        help="input format (default from the extension; Parquet otherwise)",
    )
    p.add_argument(
        "--storage-option",
        type=option,
        action="append",
        metavar="KEY=VALUE",
        help="filesystem option for s3:// gs:// abfs:// hdfs:// URIs (repeatable), "
        "e.g. endpoint_url=http://127.0.0.1:9000 or region=eu-west-1",
    )


def _add_flags(
    p: argparse.ArgumentParser,
    *,
    json: bool = False,
    overwrite: str | None = None,
    quiet: str | None = None,
) -> None:
    """The output switches: --json, --overwrite (of the file named), --quiet (what it mutes)."""
    if json:
        p.add_argument("--json", action="store_true", help="print JSON")
    if overwrite is not None:
        p.add_argument("--overwrite", action="store_true", help=f"replace an existing {overwrite}")
    if quiet is not None:
        p.add_argument("--quiet", "-q", action="store_true", help=quiet)


def _add_log_shape(
    p: argparse.ArgumentParser,
    *,
    rows: int,
    features: int,
    event_rate: bool = False,
    rate: float | None = None,
) -> None:
    """The generated log's size and event rate, and the keep rate of the commands sampling it."""
    p.add_argument(
        "--rows", type=count, default=rows, help=f"rows of the log ({_short(rows)}; 4e6, 500k ok)"
    )
    p.add_argument(
        "--features", type=positive_int, default=features, help=f"float32 features ({features})"
    )
    if event_rate:
        p.add_argument("--event-rate", type=number, default=0.01, help="expected P(y=1) (0.01)")
    if rate is not None:
        p.add_argument("--rate", type=number, default=rate, help=f"negative keep rate ({rate:g})")


def _add_model(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--model", default="logistic", choices=PILOT_MODELS, help=help)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastsample`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Reproducible pilot-based negative sampling of huge imbalanced Parquet logs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "generate",
        help="write a synthetic click log (Parquet)",
        description="Write a synthetic click log with a known logistic model.",
    )
    p.add_argument("output", metavar="OUT", help="output Parquet file")
    _add_log_shape(p, rows=1_000_000, features=16, event_rate=True)
    p.add_argument("--seed", type=seed, default=0, help="random seed (0)")
    _add_flags(p, overwrite="OUT", quiet="no progress bar or summary")

    p = sub.add_parser(
        "inspect",
        help="rows, schema and class balance of a Parquet source",
        description="Print rows, schema, label counts and imbalance ratio.",
    )
    _add_input(
        p,
        label_help="label column to count",
        label_required=False,
        source_help="Parquet file(s), a glob or a directory (hive partitions ok)",
    )
    p.add_argument(
        "--weight",
        "-w",
        default="auto",
        metavar="COL",
        help="with --label, also the weighted class totals by this column ('none': no); "
        "default: a fastsample sample's own weight column",
    )
    p.add_argument("--plot", metavar="PNG", help="draw class counts and a 2-D hexbin by class")
    p.add_argument(
        "--plot-features",
        type=names,
        metavar="A,B",
        help="the two features of the hexbin (default: first two numeric columns)",
    )
    _add_flags(p, json=True, overwrite="PNG")

    p = sub.add_parser(
        "evaluate",
        help="weighted metrics and plots of scores in Parquet",
        description="ROC-AUC, average precision, log loss, normalized entropy, "
        "Brier score and calibration (ECE) of a score column, streaming.",
    )
    _add_input(
        p,
        metavar="SCORES",
        source_help="Parquet file(s), a glob or a directory with label and score columns",
    )
    p.add_argument("--score", "-s", required=True, help="predicted probability column")
    p.add_argument(
        "--weight",
        "-w",
        default="auto",
        metavar="COL",
        help="row weight column, or 'none'; default: a fastsample sample's own weight column "
        "(so the metrics estimate the population's), no weights on other files",
    )
    p.add_argument("--plot", metavar="PNG", help="draw ROC, precision-recall and calibration")
    p.add_argument("--bins", type=positive_int, default=10, help="calibration bins (10)")
    p.add_argument(
        "--strategy",
        choices=CALIBRATION_BINNINGS,
        default="uniform",
        help="calibration binning (uniform)",
    )
    p.add_argument(
        "--method",
        choices=EVALUATION_METHODS,
        default="auto",
        help="exact (columns in memory) or histogram (bounded memory) (auto)",
    )
    _add_flags(p, json=True, overwrite="PNG")

    p = sub.add_parser(
        "pilot",
        help="train a pilot model on a case-control sample",
        description="Train a pilot on a keyed case-control sample of SOURCE "
        "(about one negative per positive) and save it. A linear pilot (logistic, sgd) is "
        "written as plain arrays that load without pickle; an hgb pilot's model is pickled, "
        "and `sample` reads it only with --trust-pilot.",
    )
    _add_input(p)
    p.add_argument("-o", "--output", required=True, metavar="PILOT", help="pilot file to write")
    p.add_argument(
        "--features",
        "-f",
        required=True,
        type=names,
        help="comma-separated feature columns; shell patterns ok (f*)",
    )
    _add_model(p, "pilot model (logistic)")
    p.add_argument("--rows", type=count, default=None, help="cap on the sample (1M)")
    p.add_argument("--seed", type=seed, default=0, help="seed (the pilot derives its own stream)")
    p.add_argument("--key", type=names, default=None, help="key column(s); default row index")
    _add_flags(p, overwrite="PILOT", quiet="no progress bar or summary")

    p = sub.add_parser(
        "sample",
        help="sample a Parquet source (the main job)",
        description="Keep every positive and a pilot-chosen fraction of the "
        "negatives; write them with sampling_prob, sample_weight and "
        "log_odds_offset.",
    )
    _add_input(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output Parquet file, or dataset directory/prefix (local path or URI)",
    )
    p.add_argument(
        "--max-rows-per-file",
        type=count,
        default=None,
        help="write OUT as a dataset of files of at most this many rows",
    )
    p.add_argument(
        "--partition-by",
        type=names,
        default=None,
        metavar="COL[,COL]",
        help="write OUT as a hive-partitioned dataset (COL=value/ directories)",
    )
    keying = p.add_mutually_exclusive_group()
    keying.add_argument(
        "--key",
        type=names,
        default=None,
        help="column(s) identifying each row, unique: rows sharing a key are kept or dropped "
        "together (a repeated key is warned about); default the global row index, which "
        "changes when the input is re-ordered or re-partitioned",
    )
    keying.add_argument(
        "--group-key",
        type=names,
        default=None,
        metavar="COL",
        help="sample whole groups on purpose: every row of a group shares one uniform "
        "(permanent random numbers); counts and totals then vary more than for rows, and "
        "standard errors must be clustered by group",
    )
    p.add_argument("--pilot", metavar="PILOT", help="pilot file from `fastsample pilot`")
    p.add_argument(
        "--trust-pilot",
        action="store_true",
        help="allow PILOT to be unpickled, as an hgb pilot or one saved by an older fastsample "
        "needs; unpickling runs any code the file holds, so use it only for files from a "
        "source you trust (linear pilots never need it)",
    )
    p.add_argument(
        "--features",
        "-f",
        type=names,
        default=None,
        help="feature columns (train a pilot when --pilot is not given)",
    )
    _add_model(p, "model of a pilot trained on the fly (logistic)")
    p.add_argument("--pilot-rows", type=count, default=None, help="cap on that pilot's sample")
    p.add_argument(
        "--strategy",
        default="proportional",
        choices=STRATEGIES,
        help="inclusion-probability strategy (proportional)",
    )
    p.add_argument("--rate", type=number, default=0.1, help="expected fraction of negatives kept")
    p.add_argument("--floor", type=number, default=None, help="lower bound on probabilities")
    p.add_argument("--seed", type=seed, default=0, help="sampling seed (0)")
    p.add_argument(
        "--exact",
        action="store_true",
        help="solve kappa over all rows (extra pass) instead of from the pilot sample",
    )
    p.add_argument("--chunk-rows", type=positive_int, default=None, help="rows per batch")
    p.add_argument("--report", metavar="PATH", help="write a JSON report there")
    _add_flags(p, overwrite="OUT", quiet="no progress bar or summary")

    p = sub.add_parser(
        "demo",
        help="generate, pilot, sample, fit and check calibration",
        description="End to end on a synthetic click log: generate it, train a "
        "pilot, sample, fit with the log-odds offset and check calibration on "
        "fresh unsampled rows.",
    )
    _add_log_shape(p, rows=3_000_000, features=8, event_rate=True, rate=0.05)
    p.add_argument("--seed", type=seed, default=0, help="seed (0)")
    p.add_argument("--dir", help="keep the files in this directory (default: temporary)")
    _add_flags(p, json=True, quiet="no progress bars")

    p = sub.add_parser(
        "bench",
        help="end-to-end benchmark against Polars and DuckDB",
        description="Whole-process benchmark on a generated log: fastsample "
        "sample vs Polars decode-only, Polars hash filter + sink, DuckDB "
        "bernoulli + COPY; plus peak RSS at two sizes.",
    )
    _add_log_shape(p, rows=30_000_000, features=16, rate=0.05)
    p.add_argument("--repeats", type=positive_int, default=3, help="runs per pipeline (3)")
    p.add_argument("--dir", help="work directory (logs are reused from there)")
    p.add_argument("--rss-small", type=count, default=4_000_000, help="memory check, small log")
    p.add_argument("--rss-large", type=count, default=16_000_000, help="memory check, large log")
    p.add_argument("--no-rss", action="store_true", help="skip the memory check")
    _add_flags(p, json=True, quiet="no progress output")

    return parser


def _install_sigterm() -> None:
    # SIGTERM runs the same clean-up path as Ctrl-C (temporary outputs removed).
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError, OSError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


def run() -> None:
    """Console entry point: :func:`main`, then exit without the interpreter's teardown.

    After a large job that teardown (a full garbage collection over every object Numba,
    Polars and pyarrow created) took about 0.3 s. Everything a command writes is closed and in
    place when :func:`main` returns, so only the standard streams need flushing.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away; nothing left to say
        pass
    os._exit(code)


def _one_line_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    # Any warning, ours or a library's, as one line on stderr: no source line, no URLs on
    # following lines (scikit-learn's ConvergenceWarning is nine lines when shown as is).
    sys.stderr.write(f"{PROG}: warning: {' '.join(str(message).split())}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if isinstance(getattr(args, "source", None), list) and len(args.source) == 1:
        args.source = args.source[0]
    _install_sigterm()
    try:
        with warnings.catch_warnings():  # restores the hook when an in-process caller returns
            warnings.showwarning = _one_line_warning
            return HANDLERS[args.command](args)
    except InputError as exc:
        msg = " ".join(str(exc).split())
        sys.stderr.write(f"{PROG}: error: {msg}\n")
        return 2
    except UsageError as exc:
        parser.error(str(exc))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; no output written\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        from fastsample.engines.storage import is_environment_error, reason  # lazy: start-up

        if not is_environment_error(exc):
            return _unexpected()
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        sys.stderr.write(
            f"{PROG}: error: cannot write{where}: {reason(exc)}; nothing was written\n"
        )
        return 2
    except ImportError as exc:
        if "fastsample[" not in str(exc):
            raise
        sys.stderr.write(f"{PROG}: {' '.join(str(exc).split())}\n")
        return 1
    except Exception:
        return _unexpected()


def _unexpected() -> int:
    """Report the exception being handled as a bug: a traceback, exit status 1."""
    sys.stderr.write(f"{PROG}: unexpected error (please report it):\n")
    traceback.print_exc()
    return 1
