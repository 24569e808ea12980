"""Performance and drift monitor over fixed-size windows of scored rows.

Feed batches of ``(label, score[, weight])`` with :meth:`PerformanceMonitor.update`. Rows are
buffered until a window of ``window_size`` rows is complete; the window's metrics become one
:class:`WindowRecord` and its rows are dropped, so memory is bounded by one window plus one
batch. Nothing is retrained or recomputed over the whole history.

Per window: weighted ROC-AUC (with its standard error), expected calibration error, the ratio
of predicted to observed events, the weighted event rate, the kept fraction (rows kept /
rows the sample stands for, ``n / sum(w)`` — a Horvitz–Thompson estimate — unless the caller
passes ``rows_seen``) and Kish's effective sample size ``(sum w)^2 / sum w^2``.

Degradation rule (each test must be *both* practically large and statistically clear):

* **AUC drop** — after the baseline is fixed (the pooled first ``baseline_windows`` windows, or
  :meth:`PerformanceMonitor.set_baseline`): flag when
  ``baseline_auc - auc > max(auc_tolerance, z * se)``, where ``se`` is the Hanley–McNeil
  standard error of the window's AUC computed with Kish effective class counts.
* **Miscalibration** — predicted events ``pred = sum w p`` vs observed ``obs = sum w y``: flag when
  ``|obs / pred - 1| > calibration_tolerance`` and ``|obs - pred| > z * sd``, where ``sd`` is
  the standard deviation of ``sum w (y - p)`` under a calibrated model *and* the sampling
  (see :func:`calibration_sd`).
  This needs no baseline.
* **Event-rate shift** (drift, not by itself degradation) — against the baseline rate ``r0``:
  ``event_rate_shift`` is set when ``|rate / r0 - 1| > calibration_tolerance`` and
  ``|obs - r0 W| > z * calibration_sd(y, r0, w)``. A model that predicts the new rate stays
  calibrated and is not marked ``degraded``; one that does not also trips the calibration test.

``degraded`` is true when the AUC or calibration test fires; ``reasons`` lists every test that
fired, the event-rate shift included.

The seed tutorial instead compared the mean AUC of the last 10 calls with the mean over all
calls (which includes those 10), started only after 1000 calls, ignored noise, and reported
``mean(sampling_prob)`` of kept rows as the sampling efficiency — an overestimate of the
kept fraction, since kept rows are the ones with high probabilities.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fastsample.engines.sources import iter_frames, require_columns, resolve_source
from fastsample.errors import InputError
from fastsample.toolkit.metrics import calibration_curve, check_scores, log_loss, roc_auc
from fastsample.toolkit.plots import plot_monitor

__all__ = [
    "PerformanceMonitor",
    "WindowRecord",
    "auc_standard_error",
    "calibration_sd",
    "kish_ess",
    "monitor_parquet",
]


def kish_ess(weights: Any) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (equals n for equal weights)."""
    w = np.asarray(weights, dtype=np.float64)
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def auc_standard_error(auc: float, n_pos: float, n_neg: float) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from ``n_pos`` positives and ``n_neg``
    negatives (effective counts may be fractional)."""
    if not (n_pos > 0 and n_neg > 0) or math.isnan(auc):
        return math.nan
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (
        auc * (1.0 - auc)
        + max(n_pos - 1.0, 0.0) * (q1 - auc * auc)
        + max(n_neg - 1.0, 0.0) * (q2 - auc * auc)
    ) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def calibration_sd(y: Any, p: Any, weights: Any) -> float:
    """Estimated standard deviation of ``T = sum_kept w (y - p)`` for a calibrated model.

    Two sources of noise: the labels (``Var = sum_pop p (1 - p)``, estimated by
    ``sum_kept w p (1 - p)``) and, for weights ``w = 1 / a`` of a Poisson sample, the draw
    (Horvitz–Thompson variance ``sum_pop (1 - a)/a (y - p)^2``, estimated by
    ``sum_kept (w^2 - w) (y - p)^2``). With ``w = 1`` this is ``sqrt(sum p (1 - p))``. Weights
    below 1 are not inverse probabilities and add no sampling term.
    """
    yv = np.asarray(y, dtype=np.float64)
    pv = np.asarray(p, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    label_var = np.sum(w * pv * (1.0 - pv))
    draw_var = np.sum(np.clip(w * w - w, 0.0, None) * (yv - pv) ** 2)
    return math.sqrt(float(label_var + draw_var))


@dataclass(frozen=True)
class WindowRecord:
    """Metrics of one window (a structured record: see :meth:`as_dict`)."""

    window: int
    first_row: int
    rows: int
    positives: int
    weight_total: float
    event_rate: float
    mean_score: float
    calibration_ratio: float
    roc_auc: float
    auc_se: float
    ece: float
    log_loss: float
    kept_fraction: float
    ess: float
    degraded: bool = False
    event_rate_shift: bool = False
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready; ``reasons`` as a list)."""
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


@dataclass
class _Baseline:
    auc: float
    event_rate: float


class PerformanceMonitor:
    """Window-by-window AUC, calibration, event rate and sampling efficiency, with drift flags.

    Parameters
    ----------
    window_size : int
        Rows per window.
    baseline_windows : int
        Windows pooled into the baseline when :meth:`set_baseline` is not called.
    auc_tolerance : float
        Smallest AUC drop worth flagging.
    calibration_tolerance : float
        Smallest relative error of predicted vs observed events (and of the event rate vs the
        baseline) worth flagging.
    z : float
        Significance multiplier of the standard errors.
    n_bins : int
        Calibration bins for the ECE.
    on_record : callable, optional
        Called with every new :class:`WindowRecord` (e.g. to log it).
    """

    def __init__(
        self,
        window_size: int = 10_000,
        *,
        baseline_windows: int = 3,
        auc_tolerance: float = 0.02,
        calibration_tolerance: float = 0.2,
        z: float = 3.0,
        n_bins: int = 10,
        on_record: Callable[[WindowRecord], Any] | None = None,
    ) -> None:
        if int(window_size) < 2:
            raise InputError(f"window_size: must be >= 2 (got {window_size})")
        if int(baseline_windows) < 1:
            raise InputError(f"baseline_windows: must be >= 1 (got {baseline_windows})")
        self.window_size = int(window_size)
        self.baseline_windows = int(baseline_windows)
        self.auc_tolerance = float(auc_tolerance)
        self.calibration_tolerance = float(calibration_tolerance)
        self.z = float(z)
        self.n_bins = int(n_bins)
        self.on_record = on_record
        self.records: list[WindowRecord] = []
        self._baseline: _Baseline | None = None
        self._pending: list[WindowRecord] = []
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._rows_consumed = 0

    # --------------------------------------------------------------- input

    def update(
        self,
        y_true: Any,
        y_prob: Any,
        sample_weight: Any = None,
        *,
        sampling_prob: Any = None,
        rows_seen: int | None = None,
    ) -> list[WindowRecord]:
        """Add a batch of scored rows; return the records of windows it completed.

        Parameters
        ----------
        y_true, y_prob : arrays of labels (0/1) and predicted population probabilities
        sample_weight : array, optional
            Row weights (``1 / a_y`` for sampled rows).
        sampling_prob : array, optional
            Inclusion probabilities; used as ``1 / sampling_prob`` when no weight is given.
        rows_seen : int, optional
            Rows the batch had before sampling (else estimated as ``sum(w)``).
        """
        if sample_weight is None and sampling_prob is not None:
            a = np.asarray(sampling_prob, dtype=np.float64)
            if a.size and not np.all((a > 0) & (a <= 1)):
                raise InputError("sampling_prob: values must lie in (0, 1]")
            sample_weight = 1.0 / a
        y, p, w = check_scores(y_true, y_prob, sample_weight)
        ww = np.ones_like(p) if w is None else w
        # Rows each kept row stands for: its weight (a Horvitz–Thompson count), or an equal share
        # of the caller's exact count when a batch is split across windows.
        seen = ww if rows_seen is None else np.full(len(y), float(rows_seen) / max(len(y), 1))
        self._parts.append((y, p, ww, seen))
        self._buffered += len(y)
        out: list[WindowRecord] = []
        while self._buffered >= self.window_size:
            out.append(self._close(self.window_size))
        return out

    def flush(self) -> list[WindowRecord]:
        """Close a final partial window (if it has rows)."""
        return [self._close(self._buffered)] if self._buffered else []

    def set_baseline(self, y_true: Any, y_prob: Any, sample_weight: Any = None) -> None:
        """Fix the baseline AUC and event rate from reference data (e.g. the validation set)."""
        y, p, w = check_scores(y_true, y_prob, sample_weight)
        ww = np.ones_like(p) if w is None else w
        self._baseline = _Baseline(
            auc=roc_auc(y, p, w), event_rate=float(np.sum(ww * y) / np.sum(ww))
        )

    @property
    def baseline(self) -> dict[str, float] | None:
        """The baseline AUC and event rate, once known."""
        return None if self._baseline is None else asdict(self._baseline)

    # --------------------------------------------------------------- windows

    def _take(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        ys, ps, ws, seen = [], [], [], 0.0
        need = n
        while need:
            y, p, w, s = self._parts[0]
            k = min(need, len(y))
            ys.append(y[:k])
            ps.append(p[:k])
            ws.append(w[:k])
            seen += float(s[:k].sum())
            if k == len(y):
                self._parts.pop(0)
            else:
                self._parts[0] = (y[k:], p[k:], w[k:], s[k:])
            need -= k
        self._buffered -= n
        return np.concatenate(ys), np.concatenate(ps), np.concatenate(ws), seen

    def _close(self, n: int) -> WindowRecord:
        y, p, w, seen = self._take(n)
        first = self._rows_consumed
        self._rows_consumed += n
        W = float(w.sum())
        obs = float(np.sum(w * y))
        pred = float(np.sum(w * p))
        pos = y == 1
        auc = roc_auc(y, p, w)
        se = auc_standard_error(auc, kish_ess(w[pos]), kish_ess(w[~pos]))
        rec = WindowRecord(
            window=len(self.records),
            first_row=first,
            rows=n,
            positives=int(pos.sum()),
            weight_total=W,
            event_rate=obs / W,
            mean_score=pred / W,
            calibration_ratio=obs / pred if pred > 0 else math.nan,
            roc_auc=auc,
            auc_se=se,
            ece=calibration_curve(y, p, n_bins=self.n_bins, sample_weight=w).ece,
            log_loss=log_loss(y, p, w),
            kept_fraction=n / seen if seen > 0 else math.nan,
            ess=kish_ess(w),
        )
        reasons = []
        # miscalibration needs no baseline
        sd = calibration_sd(y, p, w)
        if (
            pred > 0
            and abs(obs / pred - 1.0) > self.calibration_tolerance
            and abs(obs - pred) > self.z * sd
        ):
            reasons.append(f"calibration: observed/predicted events {obs / pred:.3f}")
        rec = _with(rec, reasons=tuple(reasons), degraded=bool(reasons))
        if self._baseline is None:
            self._pending.append(rec)
            if len(self._pending) >= self.baseline_windows:
                self._fix_baseline_from_pending()
            return self._emit(rec)
        rec = self._judge(rec, y, w)
        return self._emit(rec)

    def _fix_baseline_from_pending(self) -> None:
        recs = self._pending
        weights = np.array([r.weight_total for r in recs])
        aucs = np.array([r.roc_auc for r in recs])
        ok = ~np.isnan(aucs)
        auc = float(np.average(aucs[ok], weights=weights[ok])) if ok.any() else math.nan
        rate = float(sum(r.event_rate * r.weight_total for r in recs) / weights.sum())
        self._baseline = _Baseline(auc=auc, event_rate=rate)
        self._pending = []

    def _judge(self, rec: WindowRecord, y: np.ndarray, w: np.ndarray) -> WindowRecord:
        base = self._baseline
        assert base is not None
        reasons = list(rec.reasons)
        degraded = shift = False
        if not math.isnan(base.auc) and not math.isnan(rec.roc_auc):
            se = 0.0 if math.isnan(rec.auc_se) else rec.auc_se
            threshold = max(self.auc_tolerance, self.z * se)
            if base.auc - rec.roc_auc > threshold:
                degraded = True
                reasons.append(
                    f"auc: {rec.roc_auc:.4f} is {base.auc - rec.roc_auc:.4f} below baseline "
                    f"{base.auc:.4f} (threshold {threshold:.4f})"
                )
        r0 = base.event_rate
        if 0.0 < r0 < 1.0:
            W = rec.weight_total
            obs = rec.event_rate * W
            sd = calibration_sd(y, np.full(y.shape[0], r0), w)
            if (
                abs(rec.event_rate / r0 - 1.0) > self.calibration_tolerance
                and abs(obs - r0 * W) > self.z * sd
            ):
                shift = True
                reasons.append(f"event rate: {rec.event_rate:.4g} vs baseline {r0:.4g}")
        return _with(
            rec, reasons=tuple(reasons), degraded=degraded or rec.degraded, event_rate_shift=shift
        )

    def _emit(self, rec: WindowRecord) -> WindowRecord:
        self.records.append(rec)
        if self.on_record is not None:
            self.on_record(rec)
        return rec

    # --------------------------------------------------------------- output

    @property
    def degraded(self) -> bool:
        """True when the latest window was flagged."""
        return bool(self.records) and self.records[-1].degraded

    def to_frame(self) -> Any:
        """All records as a polars DataFrame (one row per window)."""
        cols = list(WindowRecord.__dataclass_fields__)
        if not self.records:
            return pl.DataFrame(schema=dict.fromkeys(cols, pl.Float64))
        return pl.DataFrame([r.as_dict() for r in self.records])

    def plot(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> str:
        """PNG with AUC, calibration, event rate and sampling efficiency per window.

        Flagged windows are marked in red; the AUC panel shows the baseline and its
        tolerance band (see :func:`fastsample.toolkit.plots.plot_monitor`).
        """
        return plot_monitor(self, path, overwrite=overwrite)


def _with(rec: WindowRecord, **changes: Any) -> WindowRecord:
    d = asdict(rec)
    d.update(changes)
    return WindowRecord(**d)


def monitor_parquet(
    source: Any,
    *,
    label: str,
    score: str,
    weight: str | None = None,
    sampling_prob: str | None = None,
    window_size: int = 100_000,
    batch_rows: int = 1 << 18,
    flush: bool = False,
    **options: Any,
) -> PerformanceMonitor:
    """Run a :class:`PerformanceMonitor` over scored rows stored in Parquet, in file order.

    Reads only the needed columns, in batches (bounded memory); windows are consecutive runs of
    ``window_size`` rows. ``options`` go to :class:`PerformanceMonitor`.

    Parameters
    ----------
    source : Parquet file(s), glob or directory
    label, score : 0/1 label and predicted probability columns
    weight : row-weight column, optional (e.g. ``sample_weight``)
    sampling_prob : inclusion-probability column, optional (used when ``weight`` is not given)
    window_size, batch_rows : window and read-batch sizes
    flush : also close a final partial window
    """
    src = resolve_source(source)
    cols = [label, score]
    require_columns(src, [label], "label")
    require_columns(src, [score], "score")
    if weight is not None:
        require_columns(src, [weight], "weight")
        cols.append(weight)
    if sampling_prob is not None:
        require_columns(src, [sampling_prob], "sampling_prob")
        cols.append(sampling_prob)
    mon = PerformanceMonitor(window_size, **options)
    for frame, path in iter_frames(src, batch_rows=batch_rows, columns=cols):
        try:
            mon.update(
                frame[label].to_numpy(),
                frame[score].to_numpy(),
                frame[weight].to_numpy() if weight else None,
                sampling_prob=frame[sampling_prob].to_numpy() if sampling_prob else None,
            )
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    if flush:
        mon.flush()
    return mon
