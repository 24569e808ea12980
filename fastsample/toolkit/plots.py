"""Figures of the toolkit: evaluation curves, class balance and monitor windows, as PNG files.

matplotlib is an optional dependency (the ``plot`` extra): it is imported through
:func:`fastsample.core.optional.require` when a figure is drawn, so the rest of the toolkit
works without it and a missing install gives the ``pip install 'fastsample[plot]'`` hint.
Figures are built with matplotlib's object-oriented API (no pyplot: no display backend, the
caller's pyplot state untouched) and written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from fastsample.core.atomic import atomic_path
from fastsample.core.optional import require
from fastsample.engines.scan import scan
from fastsample.engines.sinks import check_output
from fastsample.engines.sources import Source, resolve_source
from fastsample.errors import InputError
from fastsample.toolkit.evaluation import EvaluationResult
from fastsample.toolkit.frames import is_source, lazy_frame, open_frame
from fastsample.toolkit.report import ImbalanceReport, format_count, imbalance_report

__all__ = ["new_figure", "plot_evaluation", "plot_imbalance", "plot_monitor", "save_figure"]


def save_figure(fig: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> str:
    """Save a matplotlib figure as PNG atomically (nothing appears at ``path`` on failure).

    ``overwrite=False`` refuses an existing ``path`` (the CLI's rule without ``--overwrite``).
    """
    target = check_output(path, overwrite=overwrite)
    with atomic_path(target, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return target


def new_figure(ncols: int, *, width: float = 5.0, height: float = 4.5) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` with ``ncols`` axes, built without pyplot.

    The object-oriented API needs no display backend and leaves a user's pyplot state alone.
    """
    figure = require("matplotlib.figure", "plot")
    fig = figure.Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def plot_evaluation(
    result: EvaluationResult,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    overwrite: bool = True,
) -> str:
    """Draw ROC, precision-recall and calibration curves of ``result`` into a PNG at ``path``.

    The file is written atomically; ``overwrite=False`` refuses an existing file.
    """
    fig, (ax_roc, ax_pr, ax_cal) = new_figure(3)
    if result.fpr.size:
        ax_roc.plot(result.fpr, result.tpr, lw=1.5, label=f"ROC-AUC = {result.roc_auc:.4f}")
    ax_roc.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax_roc.legend(loc="lower right")
    if result.recall.size:
        ax_pr.step(
            result.recall,
            result.precision,
            where="post",
            lw=1.5,
            label=f"AP = {result.average_precision:.4f}",
        )
    ax_pr.axhline(result.event_rate, color="k", ls="--", lw=0.8, label="event rate")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    ax_pr.legend(loc="upper right")
    cal = result.calibration
    # Rare-event scores live near 0: log axes keep the reliability diagram readable.
    lo = max(1e-6, float(min(cal.prob_pred.min(initial=1.0), 1.0)) / 2)
    ax_cal.plot([lo, 1], [lo, 1], "k--", lw=0.8, label="perfect")
    ax_cal.plot(
        np.clip(cal.prob_pred, lo, 1),
        np.clip(cal.prob_true, lo, 1),
        "o-",
        lw=1.5,
        label=f"ECE = {result.ece:.4f}",
    )
    ax_cal.set(
        xscale="log",
        yscale="log",
        xlabel="mean predicted probability",
        ylabel="observed event rate",
        title="Calibration",
    )
    ax_cal.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, overwrite=overwrite)


def _scatter_sample(
    data: Any, label: str, features: Sequence[str], max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``max_points`` rows of each class (evenly spaced, deterministic), as (X, y)."""
    lf, where, _ = open_frame(data, [("label", label), *(("feature", f) for f in features)], False)
    for f in features:
        if not lf.collect_schema()[f].is_numeric():
            raise InputError(f"{where}: feature column {f!r} must be numeric")
    y = pl.col(label).cast(pl.Float64)
    counts = lf.group_by(y.alias("__y")).agg(pl.len().alias("n")).collect(engine="streaming")
    parts = []
    for cls in (0.0, 1.0):
        n = int(counts.filter(pl.col("__y") == cls)["n"].sum())
        if n == 0:
            continue
        step = max(1, math.ceil(n / max_points))
        part = (
            lf.filter(y == cls)
            .select([pl.col(f).cast(pl.Float64) for f in features])
            .gather_every(step)
            .with_columns(pl.lit(int(cls), dtype=pl.Int8).alias("__y"))
        )
        parts.append(part)
    if not parts:
        raise InputError(f"{where}: no rows")
    df = pl.concat(parts).drop_nulls().drop_nans().collect(engine="streaming")
    return df.select(list(features)).to_numpy(), df["__y"].to_numpy()


def _default_features(data: Any, exclude: Sequence[str | None]) -> list[str]:
    lf = scan(data, None)[0] if is_source(data) else lazy_frame(data)
    schema = lf.collect_schema()
    skip = {c for c in exclude if c} | {"sampling_prob", "sample_weight", "log_odds_offset"}
    # Floats first: integer columns are often ids, positions or codes that make poor axes.
    floats = [n for n, t in schema.items() if t.is_float() and n not in skip]
    others = [n for n, t in schema.items() if t.is_numeric() and not t.is_float() and n not in skip]
    return [*floats, *others][:2]


def plot_imbalance(
    data: Any,
    path: str | os.PathLike[str],
    *,
    label: str,
    features: Sequence[str] | None = None,
    weight: str | None = None,
    report: ImbalanceReport | None = None,
    max_points: int = 50_000,
    overwrite: bool = True,
) -> str:
    """PNG of the class distribution and a 2-D hexbin of two features by class.

    The left panel shows the class counts (log scale when the classes differ by more than
    20x). The right panel draws the negatives as a log-density hexbin and the positives as
    points on top; each class is thinned to at most ``max_points`` evenly spaced rows.

    Parameters
    ----------
    data : Parquet source or in-memory frame
    path : output PNG path (written atomically)
    label : label column
    features : two feature columns (default: the first two float columns, then other numeric)
    weight : weight column for the counts (optional)
    report : a precomputed :func:`imbalance_report` to reuse
    max_points : per-class cap on plotted points
    overwrite : bool
        ``False`` refuses an existing ``path`` (checked before any work).
    """
    check_output(path, overwrite=overwrite)
    if is_source(data) and not isinstance(data, Source):
        data = resolve_source(data)

    rep = report or imbalance_report(data, label=label, weight=weight)
    feats = list(features) if features is not None else _default_features(data, [label, weight])
    if len(feats) not in (0, 2):
        raise InputError(f"features: give exactly two columns (got {feats})")
    fig, axes = new_figure(2 if len(feats) == 2 else 1)
    ax = axes[0]
    counts = [rep.negatives, rep.positives]
    bars = ax.bar(["0 (negative)", "1 (positive)"], counts, color=["#8a8a8a", "#d62728"])
    ax.bar_label(bars, labels=[format_count(c) for c in counts])
    if rep.imbalance_ratio > 20 and min(counts) > 0:
        ax.set_yscale("log")
        ax.set_ylim(min(counts) / 5, max(counts) * 3)
    ax.set(
        ylabel="weighted rows" if rep.weight else "rows",
        title=f"{label}: event rate {rep.event_rate:.3g}, ratio {rep.imbalance_ratio:.3g}:1",
    )
    if len(feats) == 2:
        X, y = _scatter_sample(data, label, feats, max_points)
        ax2 = axes[1]
        neg, pos = X[y == 0], X[y == 1]
        if len(neg):
            hb = ax2.hexbin(neg[:, 0], neg[:, 1], gridsize=50, bins="log", cmap="Greys", mincnt=1)
            fig.colorbar(hb, ax=ax2, label="negatives per cell")
        if len(pos):
            ax2.scatter(pos[:, 0], pos[:, 1], s=4, c="#d62728", alpha=0.6, label="positives")
            ax2.legend(loc="upper right")
        ax2.set(xlabel=feats[0], ylabel=feats[1], title="features by class")
    return save_figure(fig, path, overwrite=overwrite)


def plot_monitor(monitor: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> str:
    """PNG with AUC, calibration, event rate and sampling efficiency per window of ``monitor``.

    Flagged windows are marked in red; the AUC panel shows the baseline and its
    tolerance band.
    """
    if not monitor.records:
        raise InputError("monitor has no complete window to plot yet")
    fig, axes = new_figure(4, width=4.2, height=3.6)
    idx = np.array([r.window for r in monitor.records])
    bad = np.array([r.degraded for r in monitor.records])

    def series(ax: Any, values: list[float], title: str, ylabel: str) -> None:
        v = np.asarray(values, dtype=np.float64)
        ax.plot(idx, v, "o-", ms=3, lw=1.2)
        if bad.any():
            ax.plot(idx[bad], v[bad], "o", color="#d62728", ms=6, label="flagged")
            ax.legend(loc="best")
        ax.set(title=title, xlabel="window", ylabel=ylabel)

    aucs = [r.roc_auc for r in monitor.records]
    series(axes[0], aucs, "ROC-AUC", "AUC")
    base = monitor.baseline
    if base is not None and not math.isnan(base["auc"]):
        axes[0].axhline(base["auc"], color="k", lw=0.8, ls="--")
        axes[0].axhline(base["auc"] - monitor.auc_tolerance, color="#d62728", lw=0.8, ls=":")
    series(
        axes[1],
        [r.calibration_ratio for r in monitor.records],
        "Calibration",
        "observed / predicted",
    )
    axes[1].axhline(1.0, color="k", lw=0.8, ls="--")
    series(axes[2], [r.event_rate for r in monitor.records], "Event rate (est.)", "rate")
    series(
        axes[3], [r.kept_fraction for r in monitor.records], "Sampling efficiency", "kept fraction"
    )
    ax_ess = axes[3].twinx()
    ax_ess.plot(
        idx, [r.ess / r.rows for r in monitor.records], "s--", ms=3, lw=0.8, color="#2ca02c"
    )
    ax_ess.set_ylabel("Kish ESS / rows", color="#2ca02c")
    return save_figure(fig, path, overwrite=overwrite)
