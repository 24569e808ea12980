"""Engines: the per-batch draw, in-memory, streaming Parquet and Spark."""
