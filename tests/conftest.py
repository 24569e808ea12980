"""Shared fixtures: small synthetic rare-event data."""

from __future__ import annotations

import polars as pl
import pytest
from helpers import make_events
from hypothesis import settings


@pytest.fixture(scope="session")
def events() -> pl.DataFrame:
    return make_events(60_000)


# Numba compiles on first use, so per-example deadlines measure the compiler, not the code.
settings.register_profile("fastsample", deadline=None, max_examples=50)
settings.load_profile("fastsample")
