"""Numerical core: kernels, hashing, strategies and kappa, correction, the pilot bundle."""
