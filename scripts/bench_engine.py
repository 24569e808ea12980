"""Run the end-to-end engine benchmark and write its table into README.md.

Usage: .venv/bin/python scripts/bench_engine.py [--rows 30M] [--repeats 3] [--dir DIR] [--json OUT]
Generates the logs once into --dir (default .benchmarks/engine/, git-ignored), then times whole processes (see
fastsample/harness/bench.py). Takes several minutes at the default size; not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from fastsample.harness.argtypes import count
from fastsample.harness.bench import as_dict, run_engine_bench, update_readme

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=count, default=30_000_000)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rss", type=count, nargs=2, default=[4_000_000, 16_000_000])
    ap.add_argument("--dir", default=os.path.join(ROOT, ".benchmarks", "engine"))
    ap.add_argument("--json", help="also write the raw results as JSON here")
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    args = ap.parse_args()
    result = run_engine_bench(
        rows=args.rows,
        features=args.features,
        rate=args.rate,
        repeats=args.repeats,
        workdir=args.dir,
        rss_rows=tuple(args.rss),
    )
    table = result.table()
    print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(as_dict(result), fh, indent=2)
    if not args.no_readme and not update_readme(os.path.join(ROOT, "README.md"), table):
        print("README.md has no engine-bench markers; table not written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
