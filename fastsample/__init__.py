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
    "uniform_from_keys": "fastsample.hashing",
    "hash_keys": "fastsample.hashing",
    "inclusion_probabilities": "fastsample.strategies",
    "solve_kappa": "fastsample.strategies",
    "log_odds_offset": "fastsample.correction",
    "correct_log_odds": "fastsample.correction",
    "correct_proba": "fastsample.correction",
    "Pilot": "fastsample.pilot",
    "fit_pilot": "fastsample.pilot",
    "sample_frame": "fastsample.sampling",
    "sample_parquet": "fastsample.pipeline",
    "train_pilot": "fastsample.pipeline",
    "SampleReport": "fastsample.pipeline",
    "sample_spark": "fastsample.spark",
    "plan_spark": "fastsample.spark",
    "train_pilot_spark": "fastsample.spark",
    "imbalance_report_spark": "fastsample.spark",
    "EvaluationResult": "fastsample.evaluation",
    "CalibrationCurve": "fastsample.evaluation",
    "evaluate": "fastsample.evaluation",
    "evaluate_parquet": "fastsample.evaluation",
    "plot_evaluation": "fastsample.evaluation",
    "roc_auc": "fastsample.evaluation",
    "average_precision": "fastsample.evaluation",
    "log_loss": "fastsample.evaluation",
    "normalized_entropy": "fastsample.evaluation",
    "brier_score": "fastsample.evaluation",
    "calibration_curve": "fastsample.evaluation",
    "expected_calibration_error": "fastsample.evaluation",
    "ImbalanceReport": "fastsample.report",
    "imbalance_report": "fastsample.report",
    "plot_imbalance": "fastsample.report",
    "PerformanceMonitor": "fastsample.monitor",
    "WindowRecord": "fastsample.monitor",
    "kish_ess": "fastsample.monitor",
    "monitor_parquet": "fastsample.monitor",
    "OffsetLogisticRegression": "fastsample.estimators",
    "balanced_class_weights": "fastsample.reweight",
    "add_class_weight_column": "fastsample.reweight",
    "class_weight_offset": "fastsample.reweight",
    "correct_class_weighted_proba": "fastsample.reweight",
    "reweight_parquet": "fastsample.reweight",
    "undersample": "fastsample.reweight",
    "undersample_parquet": "fastsample.reweight",
    "SlidingWindowLearner": "fastsample.online",
    "NegativeSamplingClassifier": "fastsample.estimators",
    "NegativeSampler": "fastsample.samplers",
    "KeyedRandomUnderSampler": "fastsample.samplers",
    "ExtremeImbalanceClassifier": "fastsample.ensemble",
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
