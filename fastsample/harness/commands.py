"""What each ``fastsample`` command does once its arguments are parsed.

:mod:`fastsample.cli` parses and dispatches here; each handler calls the library and prints.
The library modules are imported inside the handlers on purpose: ``fastsample --help`` and a
command's start-up then load only what that command uses (NumPy, Polars, Numba and
scikit-learn take most of a second to import).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

__all__ = ["HANDLERS", "PROG", "UsageError", "print_json"]

PROG = "fastsample"


class UsageError(Exception):
    """Bad command-line usage detected after parsing (the CLI reports it as argparse does)."""


def _storage(args: argparse.Namespace) -> dict[str, str] | None:
    return dict(args.storage_option) if getattr(args, "storage_option", None) else None


def _source(args: argparse.Namespace) -> Any:
    """The command's SOURCE, resolved with its --format and --storage-option."""
    from fastsample.engines.sources import resolve_source  # lazy: start-up time

    return resolve_source(args.source, storage_options=_storage(args), format=args.format)


def _forward(args: argparse.Namespace, *names: str, **renamed: str) -> dict[str, Any]:
    """Keyword arguments for the library from the parsed options of the same names.

    ``renamed`` maps a library keyword to the option attribute it comes from
    (``n_bins="bins"``).
    """
    kwargs = {name: getattr(args, name) for name in names}
    kwargs.update((name, getattr(args, attr)) for name, attr in renamed.items())
    return kwargs


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout (values JSON cannot hold as strings)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _show(args: argparse.Namespace, result: Any, as_dict: Callable[[Any], Any]) -> int:
    """Print a demo's or a benchmark's result: its table, or with --json its fields."""
    if args.json:
        print_json(as_dict(result))
    else:
        print(result.table())
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from fastsample.harness.synthetic import generate  # lazy: start-up time

    info = generate(
        args.output,
        **_forward(args, "rows", "features", "event_rate", "seed", "overwrite"),
        progress=not args.quiet,
    )
    if not args.quiet:
        print(
            f"wrote {args.output}: {info['rows']:,} rows, {info['positives']:,} positives "
            f"({info['positives'] / max(info['rows'], 1):.4%}), {info['bytes'] / 2**20:,.1f} MiB"
        )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from fastsample.engines.sinks import check_output  # lazy: start-up time
    from fastsample.engines.sources import describe  # lazy: start-up time

    if args.plot is not None:
        if args.label is None:
            raise UsageError("--plot needs --label")
        check_output(args.plot, overwrite=args.overwrite)
    source = _source(args)
    info = describe(source, label=args.label)
    if args.label is not None and info.get("binary"):
        from fastsample.toolkit.frames import weighted_label_totals  # lazy: start-up time

        weighted = weighted_label_totals(source, label=args.label, weight=args.weight)
        if weighted["weight"] is not None:
            info["weighted"] = weighted
    if args.plot is not None:
        from fastsample.toolkit.plots import plot_imbalance  # lazy: start-up time

        plot_imbalance(
            source,
            args.plot,
            label=args.label,
            features=args.plot_features,
            overwrite=args.overwrite,
        )
    if args.json:
        print_json(info)
        return 0
    print(f"files: {info['files']}")
    print(f"rows:  {info['rows']:,}")
    print("schema:")
    width = max((len(n) for n in info["schema"]), default=0)
    for name, typ in info["schema"].items():
        print(f"  {name:<{width}}  {typ}")
    if args.label is not None:
        print(f"label {args.label!r}:")
        for value, n in info["counts"].items():
            print(f"  {value:>6}: {n:,}")
        if info["binary"]:
            rate = info["event_rate"]
            ratio = info["imbalance_ratio"]
            print(f"event rate: {rate:.6g}" if rate is not None else "event rate: n/a")
            print(
                f"imbalance ratio (negatives per positive): {ratio:,.1f}"
                if ratio is not None
                else "imbalance ratio: n/a (no positives)"
            )
            w = info.get("weighted")
            if w is not None:
                shown = f"{w['event_rate']:.6g}" if w["event_rate"] is not None else "n/a"
                print(
                    f"weighted by {w['weight']!r} (population estimate): positives "
                    f"{w['positives']:,.1f}, negatives {w['negatives']:,.1f}, event rate {shown}"
                )
        else:
            print("label is not binary 0/1")
    if args.plot is not None:
        print(f"plot: {args.plot}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fastsample.engines.sinks import check_output  # lazy: start-up time
    from fastsample.toolkit.evaluation import evaluate_parquet  # lazy: start-up time
    from fastsample.toolkit.plots import plot_evaluation  # lazy: start-up time

    if args.plot is not None:
        check_output(args.plot, overwrite=args.overwrite)
    result = evaluate_parquet(
        _source(args),
        **_forward(args, "label", "score", "weight", "strategy", "method", n_bins="bins"),
    )
    metrics = {**result.as_dict(), "weight": result.weight or "none"}
    if args.weight == "auto" and result.weight is not None:
        sys.stderr.write(
            f"{PROG}: weighted by {result.weight!r}, the sample's weight column"
            " (--weight none for the sample's own, unweighted metrics)\n"
        )
    if args.plot is not None:
        plot_evaluation(result, args.plot, overwrite=args.overwrite)
        metrics["plot"] = args.plot
    if args.json:
        print_json(metrics)
        return 0
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown}")
    return 0


def cmd_pilot(args: argparse.Namespace) -> int:
    from fastsample.engines.publish import save_pilot  # lazy: start-up time
    from fastsample.engines.sinks import check_output  # lazy: start-up time
    from fastsample.engines.training import train_pilot  # lazy: start-up time

    storage = _storage(args)
    src = _source(args)
    out = check_output(args.output, overwrite=args.overwrite, source=src, storage_options=storage)
    pilot = train_pilot(
        src,
        **_forward(args, "label", "features", "model", "rows", "seed", "key"),
        progress=not args.quiet,
    )
    save_pilot(pilot, out, overwrite=args.overwrite, storage_options=storage)
    if not args.quiet:
        meta = pilot.meta
        print(
            f"wrote {args.output}: {args.model} pilot on {meta.get('sample_rows', 0):,} sampled "
            f"rows ({pilot.n_positive:,} positives, {pilot.n_negative:,} negatives in the "
            f"source), {len(pilot.features)} features, fingerprint {pilot.fingerprint}"
            + ("" if pilot.linear is not None else "; its model is pickled: sample --trust-pilot")
        )
    return 0


def _pilot_arg(args: argparse.Namespace) -> Any:
    """The --pilot path, or the pilot itself read with the --trust-pilot opt-in."""
    if args.pilot is None or not args.trust_pilot:
        return args.pilot  # the engine reads the path (pickle-free files only)
    from fastsample.core.pilot import Pilot  # lazy: start-up time
    from fastsample.engines.storage import open_pilot  # lazy: start-up time

    pilot = open_pilot(args.pilot, storage_options=_storage(args), trusted=True)
    return pilot if isinstance(pilot, Pilot) else Pilot.load(pilot, trusted=True)


def cmd_sample(args: argparse.Namespace) -> int:
    from fastsample.engines.parquet import sample_parquet  # lazy: start-up time

    report = sample_parquet(
        args.source,
        args.output,
        pilot=_pilot_arg(args),
        progress=not args.quiet,
        storage_options=_storage(args),
        pilot_model=args.model,
        **_forward(
            args,
            "label",
            "features",
            "strategy",
            "rate",
            "seed",
            "key",
            "group_key",
            "floor",
            "exact",
            "chunk_rows",
            "overwrite",
            "report",
            "pilot_rows",
            "format",
            "max_rows_per_file",
            "partition_by",
        ),
    )
    if not args.quiet:
        print(f"wrote {args.output}: {report}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from fastsample.harness.demo import run_demo  # lazy: start-up time

    result = run_demo(
        **_forward(args, "rows", "features", "event_rate", "rate", "seed", workdir="dir"),
        progress=not args.quiet,
    )
    return _show(args, result, asdict)


def cmd_bench(args: argparse.Namespace) -> int:
    from fastsample.harness.bench import as_dict, run_engine_bench  # lazy: start-up time

    rss = None if args.no_rss else (args.rss_small, args.rss_large)
    result = run_engine_bench(
        **_forward(args, "rows", "features", "rate", "repeats", workdir="dir"),
        rss_rows=rss,
        progress=not args.quiet,
    )
    return _show(args, result, as_dict)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "bench": cmd_bench,
    "demo": cmd_demo,
    "generate": cmd_generate,
    "inspect": cmd_inspect,
    "evaluate": cmd_evaluate,
    "pilot": cmd_pilot,
    "sample": cmd_sample,
}
