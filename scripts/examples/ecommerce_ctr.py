#!/usr/bin/env python
"""E-commerce click-through example: 100 000 impressions, 10 features, 2% clicks.

Runs end to end with no arguments (a few seconds to a minute):

1. generate a training and a test click log (Parquet, known logistic model);
2. imbalance report of the training log (+ class / hexbin plot);
3. streaming negative sampling of the training log with a pilot (`sample_parquet`,
   ``proportional`` strategy, 10% of the negatives, exact kappa);
4. an offset logistic regression on the sample (population-scale probabilities), compared
   with a full-data fit, an uncorrected fit on the sample, the post-hoc correction, and the
   seed tutorial's sign-flipped correction;
5. evaluation on the test log (streaming `evaluate_parquet` for the main model) — prints the
   metrics and writes ``imbalance.png``, ``evaluation.png`` and ``calibration.png``.

Usage: ``python scripts/examples/ecommerce_ctr.py [--rows N] [--out DIR] [--seed S]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np
import polars as pl

FEATURES = [f"f{j}" for j in range(10)]


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -eta))


def run(
    rows: int = 100_000,
    out: str = "fastsample-examples/ecommerce_ctr",
    seed: int = 0,
    rate: float = 0.1,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the example; return the metrics of every model (and the paths written)."""
    from sklearn.linear_model import LogisticRegression

    from fastsample.core.correction import correct_log_odds
    from fastsample.core.strategies import inclusion_probabilities
    from fastsample.engines.parquet import sample_parquet
    from fastsample.engines.training import train_pilot
    from fastsample.harness.synthetic import generate
    from fastsample.models.offset_logistic import OffsetLogisticRegression
    from fastsample.toolkit.evaluation import evaluate, evaluate_parquet
    from fastsample.toolkit.plots import new_figure, plot_evaluation, plot_imbalance, save_figure
    from fastsample.toolkit.report import imbalance_report

    say = (lambda *a: None) if quiet else print
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    train_path = os.path.join(out, "train.parquet")
    test_path = os.path.join(out, "test.parquet")
    generate(train_path, rows=rows, features=10, event_rate=0.02, seed=seed, overwrite=True)
    generate(test_path, rows=rows, features=10, event_rate=0.02, seed=seed + 1, overwrite=True)

    rep = imbalance_report(train_path, label="y", feature="f0", bins=5)
    say(
        f"training log: {rep.n_rows:,} rows, {int(rep.positives):,} clicks, "
        f"event rate {rep.event_rate:.4f}, imbalance {rep.imbalance_ratio:.1f}:1"
    )
    plot_imbalance(
        train_path, os.path.join(out, "imbalance.png"), label="y", features=["f0", "f1"], report=rep
    )

    # The pilot: a logistic model on a keyed case-control sample, intercept-corrected.
    pilot = train_pilot(train_path, label="y", features=FEATURES, seed=seed)
    sample_path = os.path.join(out, "sample.parquet")
    info = sample_parquet(
        train_path,
        sample_path,
        label="y",
        pilot=pilot,
        strategy="proportional",
        rate=rate,
        seed=seed,
        exact=True,
        overwrite=True,
        progress=False,
    )
    say(f"sample: {info}")
    sample = pl.read_parquet(sample_path)
    Xs = sample.select(FEATURES).to_numpy().astype(np.float64)
    ys = sample["y"].to_numpy()
    offset = sample["log_odds_offset"].to_numpy()

    train = pl.read_parquet(train_path, columns=[*FEATURES, "y"])
    test = pl.read_parquet(test_path, columns=["id", *FEATURES, "y"])
    Xtr, ytr = train.select(FEATURES).to_numpy().astype(np.float64), train["y"].to_numpy()
    Xte, yte = test.select(FEATURES).to_numpy().astype(np.float64), test["y"].to_numpy()

    full = LogisticRegression(C=np.inf, max_iter=1000).fit(Xtr, ytr)
    offset_model = OffsetLogisticRegression(C=np.inf).fit(Xs, ys, offset=offset)
    naive = LogisticRegression(C=np.inf, max_iter=1000).fit(Xs, ys)
    # The sampling probability a test row *would* have had: same pilot, same kappa.
    a0, _ = inclusion_probabilities(
        "proportional", pilot.logits(Xte), kappa=info.kappa, floor=info.floor
    )
    test_offset = -np.log(a0)

    scores = {
        "full data (all rows)": full.predict_proba(Xte)[:, 1],
        "offset fit on sample (fastsample)": offset_model.predict_proba(Xte)[:, 1],
        "post-hoc corrected sample fit": _sigmoid(
            correct_log_odds(naive.decision_function(Xte), test_offset)
        ),
        "uncorrected sample fit": naive.predict_proba(Xte)[:, 1],
        "tutorial sign (logit - log pi)": _sigmoid(naive.decision_function(Xte) + test_offset),
    }
    scored_path = os.path.join(out, "test_scores.parquet")
    test.select("id", "y").with_columns(
        pl.Series("p", scores["offset fit on sample (fastsample)"])
    ).write_parquet(scored_path)
    # Quantile bins: clicks are rare, so equal-width bins would put almost every row in one.
    main_eval = evaluate_parquet(scored_path, label="y", score="p", strategy="quantile", n_bins=15)
    plot_evaluation(
        main_eval,
        os.path.join(out, "evaluation.png"),
        title="offset logistic regression on a 10% pilot-based negative sample",
    )

    results: dict[str, Any] = {"event_rate": float(yte.mean()), "models": {}}
    fig, (ax,) = new_figure(1, width=6.0, height=5.0)
    for name, p in scores.items():
        res = (
            main_eval
            if name.startswith("offset fit")
            else evaluate(yte, p, strategy="quantile", n_bins=15)
        )
        m = res.as_dict()
        m["mean_p_over_rate"] = res.mean_score / res.event_rate
        m["train_rows"] = rows if name.startswith("full") else int(sample.height)
        results["models"][name] = m
        cal = res.calibration
        ax.plot(
            np.clip(cal.prob_pred, 1e-4, 1),
            np.clip(cal.prob_true, 1e-4, 1),
            "o-",
            ms=3,
            label=f"{name} (ECE {res.ece:.3f})",
        )
    ax.plot([1e-4, 1], [1e-4, 1], "k--", lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="mean predicted probability",
        ylabel="observed click rate",
        title="Calibration on the test log",
    )
    ax.legend(fontsize=7, loc="upper left")
    save_figure(fig, os.path.join(out, "calibration.png"))

    say(f"\ntest log: {len(yte):,} rows, click rate {yte.mean():.4f}")
    say(
        f"{'model':<36} {'rows':>8} {'AUC':>7} {'AP':>7} {'logloss':>8} {'NE':>7} "
        f"{'ECE':>7} {'mean p/rate':>11}"
    )
    for name, m in results["models"].items():
        say(
            f"{name:<36} {m['train_rows']:>8,} {m['roc_auc']:>7.4f} {m['average_precision']:>7.4f} "
            f"{m['log_loss']:>8.5f} {m['normalized_entropy']:>7.4f} {m['ece']:>7.4f} "
            f"{m['mean_p_over_rate']:>11.3f}"
        )
    results["plots"] = [
        os.path.join(out, f) for f in ("imbalance.png", "evaluation.png", "calibration.png")
    ]
    results["seconds"] = time.perf_counter() - t0
    say(f"\nplots: {', '.join(results['plots'])}  ({results['seconds']:.1f} s)")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per log (100000)")
    parser.add_argument("--out", default="fastsample-examples/ecommerce_ctr", help="output dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run(rows=args.rows, out=args.out, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
