"""fastsample: reproducible pilot-based negative sampling with exact log-odds correction.

Public names are imported lazily so that ``import fastsample`` (and the CLI's ``--help``)
stays fast: Numba, Polars and scikit-learn load only when a function that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "FastsampleError": "fastsample.errors",
    "InputError": "fastsample.errors",
    "uniform_from_keys": "fastsample.core.hashing",
    "hash_keys": "fastsample.core.hashing",
    "inclusion_probabilities": "fastsample.core.strategies",
    "solve_kappa": "fastsample.core.strategies",
    "log_odds_offset": "fastsample.core.correction",
    "correct_log_odds": "fastsample.core.correction",
    "correct_proba": "fastsample.core.correction",
    "sampling_offsets": "fastsample.core.correction",
    "Pilot": "fastsample.core.pilot",
    "fit_pilot": "fastsample.core.pilot_fit",
    "SamplingPlan": "fastsample.core.plan",
    "OutputColumns": "fastsample.core.plan",
    "sample_frame": "fastsample.engines.memory",
    "sample_parquet": "fastsample.engines.parquet",
    "train_pilot": "fastsample.engines.training",
    "SampleReport": "fastsample.engines.stream",
    "read_metadata": "fastsample.engines.sinks",
    "sample_spark": "fastsample.engines.spark",
    "plan_spark": "fastsample.engines.spark",
    "train_pilot_spark": "fastsample.engines.spark",
    "imbalance_report_spark": "fastsample.toolkit.report_spark",
    "EvaluationResult": "fastsample.toolkit.evaluation",
    "CalibrationCurve": "fastsample.toolkit.metrics",
    "evaluate": "fastsample.toolkit.evaluation",
    "evaluate_parquet": "fastsample.toolkit.evaluation",
    "plot_evaluation": "fastsample.toolkit.plots",
    "roc_auc": "fastsample.toolkit.metrics",
    "average_precision": "fastsample.toolkit.metrics",
    "log_loss": "fastsample.toolkit.metrics",
    "normalized_entropy": "fastsample.toolkit.metrics",
    "brier_score": "fastsample.toolkit.metrics",
    "calibration_curve": "fastsample.toolkit.metrics",
    "expected_calibration_error": "fastsample.toolkit.metrics",
    "ImbalanceReport": "fastsample.toolkit.report",
    "imbalance_report": "fastsample.toolkit.report",
    "plot_imbalance": "fastsample.toolkit.plots",
    "PerformanceMonitor": "fastsample.toolkit.monitor",
    "WindowRecord": "fastsample.toolkit.monitor",
    "kish_ess": "fastsample.toolkit.monitor",
    "monitor_parquet": "fastsample.toolkit.monitor",
    "OffsetLogisticRegression": "fastsample.models.offset_logistic",
    "balanced_class_weights": "fastsample.toolkit.reweight",
    "add_class_weight_column": "fastsample.toolkit.reweight",
    "class_weight_offset": "fastsample.toolkit.reweight",
    "correct_class_weighted_proba": "fastsample.toolkit.reweight",
    "reweight_parquet": "fastsample.toolkit.reweight",
    "undersample": "fastsample.toolkit.reweight",
    "undersample_parquet": "fastsample.toolkit.reweight",
    "SlidingWindowLearner": "fastsample.models.online",
    "NegativeSamplingClassifier": "fastsample.models.classifier",
    "NegativeSampler": "fastsample.models.samplers",
    "KeyedRandomUnderSampler": "fastsample.models.samplers",
    "ExtremeImbalanceClassifier": "fastsample.models.ensemble",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastsample' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
