"""Test oracles and benchmark baselines: NumPy twins, the kernel registry, the tutorial's path. Not public API."""
