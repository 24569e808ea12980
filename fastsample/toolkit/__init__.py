"""Toolkit: imbalance report, evaluation, reweighting, monitoring."""
