"""The end-to-end demonstration behind ``fastsample demo`` (the README's first command).

Generates a synthetic click log with a known logistic model, trains a pilot on a keyed
case-control sample, samples the log with the streaming engine, fits a logistic model on the
sample with the log-odds offset
(:class:`fastsample.models.offset_logistic.OffsetLogisticRegression`), and checks its
calibration on fresh, unsampled rows of the same population — next to a model fitted on the same
sample without the offset (the classic mistake) and the true model.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fastsample.core import glm_kernels as _glm_kernels
from fastsample.core import kernels as _kernels
from fastsample.core.numba_config import SERIAL
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.training import train_pilot
from fastsample.harness.synthetic import click_log, click_log_coefficients, click_log_intercept
from fastsample.harness.synthetic import generate as generate_log
from fastsample.models.offset_logistic import OffsetLogisticRegression
from fastsample.toolkit.evaluation import evaluate


@dataclass
class DemoResult:
    """Numbers of one demo run (printed by the CLI as a table)."""

    rows: int
    features: int
    event_rate: float
    rate: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    sample: dict[str, Any] = field(default_factory=dict)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    holdout_rows: int = 0
    holdout_event_rate: float = 0.0

    def table(self) -> str:
        """Human-readable summary."""
        lines = [
            f"fastsample demo: {self.rows:,} rows x {self.features} features, "
            f"event rate {self.event_rate:.2%}, negatives kept at rate {self.rate:g}",
            "",
            f"{'step':<34}{'rows':>13}{'seconds':>10}{'Mrows/s':>10}",
        ]
        for s in self.steps:
            mr = s["rows"] / s["seconds"] / 1e6 if s["seconds"] > 0 else float("nan")
            mark = " *" if s.get("compiled") else ""
            lines.append(f"{s['step']:<34}{s['rows']:>13,}{s['seconds']:>10.2f}{mr:>10.2f}{mark}")
        if any(s.get("compiled") for s in self.steps):
            lines.append("* includes compiling Numba kernels: first run only (cached on disk)")
        sm = self.sample
        lines += [
            "",
            f"sample: {sm['rows_out']:,} of {sm['rows_in']:,} rows kept "
            f"({sm['rows_out'] / max(sm['rows_in'], 1):.2%}); positives {sm['positives_out']:,}"
            f"/{sm['positives_in']:,}; negatives {sm['negatives_out']:,} "
            f"(expected {sm['expected_negatives_out']:,.0f}); kappa {sm['kappa']:.4g}",
            "",
            f"calibration on {self.holdout_rows:,} fresh unsampled rows "
            f"(observed event rate {self.holdout_event_rate:.3%}):",
            f"{'model':<36}{'mean p':>9}{'ROC-AUC':>9}{'log loss':>10}{'ECE':>9}",
        ]
        for c in self.calibration:
            lines.append(
                f"{c['model']:<36}{c['mean_p']:>9.3%}{c['auc']:>9.4f}{c['log_loss']:>10.5f}"
                f"{c['ece']:>9.5f}"
            )
        return "\n".join(lines)


def _compilations() -> int:
    """Numba compilations so far in this process (cache misses of fastsample's kernels)."""
    count = 0
    for obj in [*vars(_kernels).values(), *vars(_glm_kernels).values(), *SERIAL.values()]:
        stats = getattr(obj, "stats", None)
        if stats is not None and hasattr(stats, "cache_misses"):
            count += sum(stats.cache_misses.values())
    return count


@contextmanager
def _step(res: DemoResult, name: str, rows: int) -> Iterator[dict[str, Any]]:
    """Time one step into ``res.steps``, noting whether it compiled Numba kernels."""
    step: dict[str, Any] = {"step": name, "rows": rows}
    before = _compilations()
    t = time.perf_counter()
    yield step
    step["seconds"] = time.perf_counter() - t
    step["compiled"] = _compilations() > before
    res.steps.append(step)


def run_demo(
    *,
    rows: int = 3_000_000,
    features: int = 8,
    event_rate: float = 0.01,
    rate: float = 0.05,
    seed: int = 0,
    workdir: str | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run the demonstration; files go to ``workdir`` (default: a temporary directory).

    Parameters
    ----------
    rows, features, event_rate
        Size and imbalance of the synthetic log.
    rate : float
        Expected fraction of negatives kept.
    seed : int
        Seed of the data, the pilot and the sample.
    """
    with tempfile.TemporaryDirectory(prefix="fastsample-demo-") as tmp:
        where = workdir or tmp
        os.makedirs(where, exist_ok=True)
        log = os.path.join(where, "clicks.parquet")
        out = os.path.join(where, "sample.parquet")
        pilot_path = os.path.join(where, "pilot.joblib")
        feats = [f"f{j}" for j in range(features)]
        res = DemoResult(rows=rows, features=features, event_rate=event_rate, rate=rate)

        with _step(res, "generate click log", rows):
            generate_log(
                log,
                rows=rows,
                features=features,
                event_rate=event_rate,
                seed=seed,
                overwrite=True,
                progress=progress,
            )

        with _step(res, "train pilot (2 passes)", rows):
            pilot = train_pilot(
                log, label="y", features=feats, seed=seed, key="id", progress=progress
            )
            pilot.save(pilot_path)

        with _step(res, "sample (proportional, one pass)", rows):
            rep = sample_parquet(
                log,
                out,
                label="y",
                pilot=pilot_path,
                rate=rate,
                seed=seed,
                key="id",
                overwrite=True,
                progress=progress,
            )
        res.sample = rep.to_dict()

        with _step(res, "offset logistic fit on sample", 0) as step:
            kept = pl.read_parquet(out, columns=[*feats, "y", "log_odds_offset"])
            step["rows"] = kept.height
            X = kept.select(feats).to_numpy().astype(np.float64)
            y = kept["y"].to_numpy()
            offset = kept["log_odds_offset"].to_numpy()
            fit = OffsetLogisticRegression(C=np.inf).fit(X, y, offset=offset)
        naive = OffsetLogisticRegression(C=np.inf).fit(X, y)

        # Fresh rows of the same population: a different seed, never sampled.
        n_hold = min(1_000_000, max(rows // 3, 10_000))
        hold = pl.DataFrame(
            click_log(n_hold, features=features, event_rate=event_rate, seed=seed + 1_000_003)
        )
        Xh = hold.select(feats).to_numpy().astype(np.float64)
        yh = hold["y"].to_numpy()
        res.holdout_rows = n_hold
        res.holdout_event_rate = float(yh.mean())
        beta = click_log_coefficients(features)
        b0 = click_log_intercept(event_rate)
        truth = 1.0 / (1.0 + np.exp(-(b0 + Xh @ beta)))
        candidates = [
            ("offset fit (fastsample)", fit.predict_proba(Xh)[:, 1]),
            ("same sample, no offset (naive)", naive.predict_proba(Xh)[:, 1]),
            ("pilot (case-control, corrected)", 1.0 / (1.0 + np.exp(-pilot.logits(Xh)))),
            ("true model", truth),
        ]
        for name, p in candidates:
            ev = evaluate(yh, p)
            res.calibration.append(
                {
                    "model": name,
                    "mean_p": float(np.mean(p)),
                    "auc": ev.roc_auc,
                    "log_loss": ev.log_loss,
                    "ece": ev.ece,
                }
            )
        return res
