#!/usr/bin/env python
"""Social-media engagement example: feature engineering, sampling, online updates, monitoring.

Runs end to end with no arguments (about a minute):

1. generate 14 days of posts shown to users (raw columns ``user_posts``, ``content_length``,
   ``hour``, ``day``, ``topic_score``; ~3% engagement); from day 12 the topic score matters
   much less (drift);
2. feature engineering, fitted on the training days only: activity normalised by the
   *training* mean of ``user_posts``, ``log1p`` content length, hour and weekday as sine *and*
   cosine, topic score. (The seed tutorial divided by the mean of whatever batch it was given,
   so one row alone always had activity 1, and kept only cos(hour) and sin(day), which maps
   06:00 and 18:00 to the same value.)
3. imbalance report per day; pilot-based negative sampling of days 0-9 (10% of negatives);
   offset logistic regression, compared with the tutorial's features and an uncorrected fit;
4. days 10-13 as a stream of hourly batches: a sliding-window learner predicts each batch
   before updating on it, and a performance monitor tracks AUC, calibration, event rate and
   sampling efficiency per window and flags the drift.

Writes ``imbalance.png``, ``evaluation.png`` and ``monitor.png``; prints the metrics.

Usage: ``python scripts/examples/social_engagement.py [--rows N] [--out DIR] [--seed S]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, ClassVar

import numpy as np
import polars as pl

DAYS = 14
TRAIN_DAYS = 10
DRIFT_DAY = 12
RAW = ["user_posts", "content_length", "hour", "day", "topic_score"]


def generate_posts(rows: int, seed: int = 0) -> pl.DataFrame:
    """Synthetic engagement log with a known logistic model in the engineered features."""
    rng = np.random.default_rng(seed)
    day = np.sort(rng.integers(0, DAYS, rows))
    hour = rng.integers(0, 24, rows)
    user_posts = np.round(rng.lognormal(mean=2.0, sigma=0.6, size=rows)) + 1
    content_length = np.round(rng.lognormal(mean=5.0, sigma=0.8, size=rows))
    topic = rng.beta(2.0, 5.0, size=rows)
    # The truth is linear in the engineered features (so a logistic model is well specified):
    # activity against the population mean of user_posts, evening peak at 20:00, a weekly
    # cycle peaking on Saturday, shorter content preferred, topic relevance (weaker after drift).
    activity = user_posts / (np.exp(2.0 + 0.6**2 / 2) + 0.5)
    evening = np.cos(2 * np.pi * (hour - 20) / 24)
    weekly = np.cos(2 * np.pi * ((day % 7) - 5) / 7)
    topic_effect = np.where(day >= DRIFT_DAY, 0.5, 4.0)
    eta = (
        -4.6
        + 0.4 * activity
        + 0.6 * evening
        + 0.3 * weekly
        - 0.25 * np.log1p(content_length)
        + topic_effect * topic
    )
    y = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(np.int8)
    return pl.DataFrame(
        {
            "post_id": np.arange(rows, dtype=np.int64),
            "day": day,
            "hour": hour,
            "user_posts": user_posts,
            "content_length": content_length,
            "topic_score": topic,
            "engaged": y,
        }
    )


class EngagementFeatures:
    """Feature engineering fitted once on training data and reused unchanged at serving time.

    ``fit`` stores the training mean of ``user_posts``; ``transform`` gives activity (posts /
    that mean), ``log1p(content_length)``, ``sin`` and ``cos`` of the hour and of the weekday,
    and the topic score.
    """

    names: ClassVar[list[str]] = [
        "activity",
        "log_length",
        "hour_sin",
        "hour_cos",
        "day_sin",
        "day_cos",
        "topic",
    ]

    def fit(self, frame: pl.DataFrame) -> EngagementFeatures:
        self.mean_posts_ = float(frame["user_posts"].mean())  # type: ignore[arg-type]
        return self

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        h = frame["hour"].to_numpy() * (2 * np.pi / 24)
        d = (frame["day"].to_numpy() % 7) * (2 * np.pi / 7)
        return np.column_stack(
            [
                frame["user_posts"].to_numpy() / self.mean_posts_,
                np.log1p(frame["content_length"].to_numpy()),
                np.sin(h),
                np.cos(h),
                np.sin(d),
                np.cos(d),
                frame["topic_score"].to_numpy(),
            ]
        )


def tutorial_features(frame: pl.DataFrame) -> np.ndarray:
    """The seed tutorial's engineering, kept only to measure what its mistakes cost."""
    posts = frame["user_posts"].to_numpy()
    return np.column_stack(
        [
            posts / posts.mean(),  # the mean of this batch, not of the training data
            np.log1p(frame["content_length"].to_numpy()),
            np.cos(2 * np.pi * frame["hour"].to_numpy() / 24),  # no sine: 06:00 == 18:00
            np.sin(2 * np.pi * frame["day"].to_numpy() / 7),  # no cosine
            frame["topic_score"].to_numpy(),
        ]
    )


def run(
    rows: int = 200_000,
    out: str = "fastsample-examples/social_engagement",
    seed: int = 0,
    rate: float = 0.1,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the example; return the metrics and the monitor's records."""
    from sklearn.linear_model import LogisticRegression

    from fastsample.engines.memory import sample_frame
    from fastsample.models.offset_logistic import OffsetLogisticRegression
    from fastsample.models.online import SlidingWindowLearner
    from fastsample.toolkit.evaluation import evaluate
    from fastsample.toolkit.monitor import PerformanceMonitor
    from fastsample.toolkit.plots import plot_evaluation, plot_imbalance
    from fastsample.toolkit.report import imbalance_report

    say = (lambda *a: None) if quiet else print
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    data = generate_posts(rows, seed)
    train = data.filter(pl.col("day") < TRAIN_DAYS)
    test = data.filter(pl.col("day") >= TRAIN_DAYS)

    rep = imbalance_report(data, label="engaged", by="day")
    say(
        f"{rep.n_rows:,} posts, {int(rep.positives):,} engagements (rate {rep.event_rate:.4f}, "
        f"{rep.imbalance_ratio:.1f}:1); per day:"
    )
    for row in rep.per_group.iter_rows(named=True):
        say(
            f"  day {row['day']:>2}: {int(row['rows']):>7,} rows, event rate {row['event_rate']:.4f}"
        )
    plot_imbalance(
        data,
        os.path.join(out, "imbalance.png"),
        label="engaged",
        features=["topic_score", "hour"],
        report=rep,
    )

    fe = EngagementFeatures().fit(train)
    names = EngagementFeatures.names
    Xtr = fe.transform(train)
    feats = pl.DataFrame({n: Xtr[:, j] for j, n in enumerate(names)}).with_columns(
        train["post_id"], train["engaged"]
    )
    sample, info = sample_frame(
        feats,
        label="engaged",
        features=names,
        strategy="proportional",
        rate=rate,
        seed=seed,
        key="post_id",
        return_info=True,
    )
    say(
        f"sample of days 0-{TRAIN_DAYS - 1}: {info['rows_in']:,} rows -> {info['rows_out']:,} "
        f"({info['positives_out']:,} positives, {info['negatives_out']:,} negatives; "
        f"expected negatives {info['expected_negatives_out']:,.1f})"
    )
    Xs = sample.select(names).to_numpy()
    ys = sample["engaged"].to_numpy()
    off = sample["log_odds_offset"].to_numpy()
    model = OffsetLogisticRegression(C=np.inf).fit(Xs, ys, offset=off)

    # The tutorial's features, on the same sampled rows, with the same (correct) offset fit.
    tut_train = tutorial_features(train)
    idx = sample["post_id"].to_numpy() - int(train["post_id"][0])
    tut_model = OffsetLogisticRegression(C=np.inf).fit(tut_train[idx], ys, offset=off)
    naive = LogisticRegression(C=np.inf, max_iter=1000).fit(Xs, ys)

    pre = test.filter(pl.col("day") < DRIFT_DAY)
    yte = pre["engaged"].to_numpy()
    Xte = fe.transform(pre)
    # The tutorial scores new data in batches; each hourly batch gets its own mean.
    tut_scores = np.concatenate(
        [
            tut_model.predict_proba(tutorial_features(g))[:, 1]
            for _, g in pre.group_by(["day", "hour"], maintain_order=True)
        ]
    )
    y_tut = np.concatenate(
        [g["engaged"].to_numpy() for _, g in pre.group_by(["day", "hour"], maintain_order=True)]
    )
    results: dict[str, Any] = {"event_rate": float(yte.mean()), "models": {}}
    evals = {
        "engineered features + offset fit": evaluate(
            yte, model.predict_proba(Xte)[:, 1], strategy="quantile"
        ),
        "tutorial features + offset fit": evaluate(y_tut, tut_scores, strategy="quantile"),
        "uncorrected sample fit": evaluate(
            yte, naive.predict_proba(Xte)[:, 1], strategy="quantile"
        ),
    }
    say(
        f"\ndays {TRAIN_DAYS}-{DRIFT_DAY - 1} (before the drift): {len(yte):,} rows, "
        f"rate {yte.mean():.4f}"
    )
    say(
        f"{'model':<34} {'AUC':>7} {'AP':>7} {'logloss':>8} {'NE':>7} {'ECE':>7} {'mean p/rate':>11}"
    )
    for name, res in evals.items():
        m = res.as_dict()
        m["mean_p_over_rate"] = res.mean_score / res.event_rate
        results["models"][name] = m
        say(
            f"{name:<34} {m['roc_auc']:>7.4f} {m['average_precision']:>7.4f} "
            f"{m['log_loss']:>8.5f} {m['normalized_entropy']:>7.4f} {m['ece']:>7.4f} "
            f"{m['mean_p_over_rate']:>11.3f}"
        )
    plot_evaluation(
        evals["engineered features + offset fit"],
        os.path.join(out, "evaluation.png"),
        title="engagement: offset fit on a 10% negative sample",
    )

    # Streaming days 10-13 hour by hour: predict first (prequential), then update.
    batches = [g for _, g in test.group_by(["day", "hour"], maintain_order=True)]
    window = max(300, int(len(test) * (rate + rep.event_rate)) // 8)
    learner = SlidingWindowLearner(window=max(5000, info["rows_out"]), rate=rate, seed=seed, C=1e4)
    learner.partial_fit(Xtr, train["engaged"].to_numpy(), keys=train["post_id"].to_numpy())
    monitor = PerformanceMonitor(window_size=window, baseline_windows=2)
    kept_before_drift = 0
    for g in batches:
        Xg, yg = fe.transform(g), g["engaged"].to_numpy()
        p = learner.predict_proba(Xg)[:, 1]  # predict first (prequential), then update
        learner.partial_fit(Xg, yg, keys=g["post_id"].to_numpy())
        # Only the sampled rows are "logged": the monitor weights them by 1 / sampling_prob,
        # so its metrics estimate the whole stream's and it reports the kept fraction.
        kept = learner.last_batch_
        if int(g["day"][0]) < DRIFT_DAY:
            kept_before_drift += len(kept["index"])
        monitor.update(
            yg[kept["index"]],
            p[kept["index"]],
            sampling_prob=kept["sampling_prob"],
            rows_seen=len(yg),
        )
    monitor.plot(os.path.join(out, "monitor.png"))
    records = [r.as_dict() for r in monitor.records]
    results["monitor"] = records
    results["online"] = {
        "rows_seen": learner.n_seen_,
        "rows_kept": learner.n_kept_,
        "updates": learner.n_updates_,
        "window_rows": learner.window_rows_,
    }
    say(
        f"\nonline learner: {learner.n_seen_:,} rows seen, {learner.n_kept_:,} kept, "
        f"{learner.n_updates_} warm-started updates, window {learner.window_rows_:,} rows"
    )
    say(
        f"monitor ({window:,} logged (sampled) rows per window, days {TRAIN_DAYS}-{DAYS - 1}; drift from day {DRIFT_DAY}):"
    )
    first_row_of_drift = kept_before_drift
    for r in monitor.records:
        when = "drift" if r.first_row + r.rows > first_row_of_drift else "     "
        flag = ("DEGRADED: " if r.degraded else "") + "; ".join(r.reasons)
        say(
            f"  window {r.window:>2} {when} AUC {r.roc_auc:.3f} obs/pred {r.calibration_ratio:.2f} "
            f"rate {r.event_rate:.4f} kept {r.kept_fraction:.3f} ESS {r.ess:,.0f} {flag}"
        )
    results["first_drift_row"] = first_row_of_drift
    results["plots"] = [
        os.path.join(out, f) for f in ("imbalance.png", "evaluation.png", "monitor.png")
    ]
    results["seconds"] = time.perf_counter() - t0
    say(f"\nplots: {', '.join(results['plots'])}  ({results['seconds']:.1f} s)")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=200_000, help="posts in 14 days (200000)")
    parser.add_argument("--out", default="fastsample-examples/social_engagement", help="output dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run(rows=args.rows, out=args.out, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
