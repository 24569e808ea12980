"""Names the command line needs before any heavy import: the library's one list of each option.

This module imports nothing, so ``fastsample --help`` offers exactly these names as choices
without loading NumPy or Numba; the functions that take the options validate against the same
tuples (the strategies through :data:`fastsample.core.strategies.STRATEGIES`).
"""

from __future__ import annotations

#: The inclusion-probability strategies, in documentation order.
STRATEGIES: tuple[str, ...] = ("uniform", "proportional", "opt-l", "opt-a", "lcc")

#: Calibration binnings and evaluation methods of :mod:`fastsample.toolkit.evaluation`.
CALIBRATION_BINNINGS: tuple[str, ...] = ("uniform", "quantile")
EVALUATION_METHODS: tuple[str, ...] = ("auto", "exact", "histogram")

#: The pilot models a name asks for (:func:`fastsample.core.pilot_fit.fit_pilot`, the CLI's
#: ``--model``, the estimators' ``pilot=``); ``"gbm"`` is also read as an old name of ``"hgb"``.
PILOT_MODELS: tuple[str, ...] = ("logistic", "sgd", "hgb")
PILOT_MODEL_ALIASES: dict[str, str] = {"gbm": "hgb"}

__all__ = [
    "CALIBRATION_BINNINGS",
    "EVALUATION_METHODS",
    "PILOT_MODELS",
    "PILOT_MODEL_ALIASES",
    "STRATEGIES",
]
