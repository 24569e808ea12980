"""How far the default (one-pass) sample misses the requested rate on a field-like log.

For each pilot kind (logistic, hgb) and strategy, sample the field-like log of
:mod:`fastsample.harness.fieldlike` in the default mode and print the realised kept negatives
and the true expected count ``sum a_0`` over the input (at the kappa actually used), both
relative to the target ``rate * N0``, with the z-score of realised vs target
(SE = sqrt(sum a_0 (1 - a_0))) and whether the realised count is within max(3%, 4 SE) of the
target (issue 11's tolerance).

    PYTHONPATH=. .venv/bin/python scripts/rate_drift.py --rows 200000 --positives 1000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fastsample.core.strategies import STRATEGIES, effective_floor, inclusion_scores
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.training import train_pilot
from fastsample.harness.fieldlike import write_field_like


def _true_expected(table, pilot, strategy, kappa, floor):
    X = np.column_stack([table.column(f).to_numpy() for f in pilot.features])
    y = table.column("y").to_numpy()
    neg = y == 0
    eta = pilot.logits(X[neg])
    h0, _ = inclusion_scores(strategy, eta, X[neg], pilot.info_inv)
    a = np.clip(kappa * h0, effective_floor(floor), 1.0)
    return float(a.sum()), float(np.sum(a * (1.0 - a)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--positives", type=int, default=1_000)
    ap.add_argument("--features", type=int, default=12)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="data seeds")
    ap.add_argument("--pilots", nargs="+", default=["logistic", "hgb"])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--exact", action="store_true", help="also run exact mode")
    args = ap.parse_args()
    modes = [False, True] if args.exact else [False]
    print(
        f"field-like log: {args.rows:,} rows, ~{args.positives:,} positives, "
        f"{args.features} features, rate {args.rate}"
    )
    head = (
        f"{'seed':>4} {'pilot':<9} {'strategy':<12} {'mode':<6} {'target':>9} "
        f"{'true_exp/t':>10} {'realised/t':>10} {'z(real-t)':>9} {'ok':>3} {'secs':>6}"
    )
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            path = Path(tmp) / f"log{seed}.parquet"
            write_field_like(
                path, args.rows, positives=args.positives, features=args.features, seed=seed
            )
            table = pq.read_table(path)
            feats = [c for c in table.column_names if c not in ("id", "user_id", "y")]
            for kind in args.pilots:
                pilot = train_pilot(
                    path, label="y", features=feats, model=kind, seed=seed, progress=False
                )
                for strategy in args.strategies:
                    for exact in modes:
                        out = Path(tmp) / "out.parquet"
                        t0 = time.perf_counter()
                        rep = sample_parquet(
                            path,
                            out,
                            label="y",
                            pilot=pilot,
                            strategy=strategy,
                            rate=args.rate,
                            seed=seed,
                            key="id",
                            exact=exact,
                            overwrite=True,
                            progress=False,
                        )
                        secs = time.perf_counter() - t0
                        target = args.rate * rep.negatives_in
                        exp, var = _true_expected(table, pilot, strategy, rep.kappa, None)
                        se = math.sqrt(var) if var > 0 else 0.0
                        z = (rep.negatives_out - target) / se if se else float("nan")
                        tol = max(0.03 * target, 4.0 * se)
                        ok = "yes" if abs(rep.negatives_out - target) <= tol else "NO"
                        print(
                            f"{seed:>4} {kind:<9} {strategy:<12} "
                            f"{'exact' if exact else 'default':<6} {target:>9.0f} "
                            f"{exp / target:>10.3f} {rep.negatives_out / target:>10.3f} "
                            f"{z:>9.1f} {ok:>3} {secs:>6.2f}"
                        )


if __name__ == "__main__":
    main()
