"""Re-run the simulation of Wang, Zhang & Wang (NeurIPS 2021), case 1, and write a table.

Compares uniform+IPW, uniform+offset, opt-a+IPW, opt-a+offset, LCC, proportional+offset and
the full-data MLE at several negative budgets, with a consistent and a misspecified pilot
(the authors' design: N = 500,000, six correlated normal covariates). Writes ``benchmarks/results/paper_reproduction.md``.

    python scripts/reproduce_paper.py --reps 60
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from tqdm import tqdm

from fastsample.harness.paper import markdown_report, run_replicate, summarize

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60, help="repetitions (paper: 1000)")
    parser.add_argument("--n-rows", type=int, default=500_000, help="rows per data set")
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=[1000, 2000, 3000, 5000, 10000],
        help="expected kept negatives",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-misspecified", action="store_true", help="skip that variant")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "paper_reproduction.md"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    records: list[dict] = []
    for rep in tqdm(range(args.reps), desc="repetitions"):
        records += run_replicate(
            rep,
            n_rows=args.n_rows,
            budgets=args.budgets,
            seed=args.seed,
            misspecified=not args.no_misspecified,
        )
    seconds = time.perf_counter() - start
    command = "python scripts/reproduce_paper.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    report = markdown_report(
        summarize(records), command=command.strip(), seconds=seconds, n_rows=args.n_rows
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text(report)
    tmp.replace(args.out)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
