"""fastsample: reproducible pilot-based negative sampling with exact log-odds correction."""

__version__ = "0.1.0"
