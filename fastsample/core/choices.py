"""The names the library accepts for its options, in one place.

This module imports nothing, so the command line offers exactly these names as its choices
without loading NumPy or Numba for ``--help``; the functions that take the options validate
against the same tuples.
"""

from __future__ import annotations

# Inclusion-probability strategies of the sampling engines (see fastsample.core.strategies).
STRATEGIES: tuple[str, ...] = ("uniform", "proportional", "opt-l", "opt-a", "lcc")

# Calibration binnings and evaluation methods of fastsample.toolkit.evaluation.
CALIBRATION_BINNINGS: tuple[str, ...] = ("uniform", "quantile")
EVALUATION_METHODS: tuple[str, ...] = ("auto", "exact", "histogram")

__all__ = ["CALIBRATION_BINNINGS", "EVALUATION_METHODS", "STRATEGIES"]
