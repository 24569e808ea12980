"""Streaming engine benchmarks (smoke-sized; timing off in ordinary test runs).

In-process, same run: Polars' streaming decode of the file (the I/O floor), a Polars hash
filter + sink (uniform negative sampling), and ``sample_parquet`` with a linear pilot,
strategy ``proportional``. The 30M-row whole-process comparison (plus DuckDB and peak RSS) is
``scripts/bench_engine.py`` / ``fastsample bench``; ``test_bench_harness`` runs that harness
on a tiny log so it stays working.
"""

from __future__ import annotations

import polars as pl
import pytest

from fastsample.engines.parquet import sample_parquet
from fastsample.engines.training import train_pilot
from fastsample.harness.bench import run_engine_bench
from fastsample.harness.synthetic import generate

N_ROWS = 300_000
RATE = 0.05


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "log.parquet"
    generate(path, rows=N_ROWS, features=16, event_rate=0.01, seed=0)
    return str(path)


@pytest.fixture(scope="module")
def pilot(log_path):
    return train_pilot(log_path, label="y", features=["f*"], seed=0)


def test_bench_polars_decode(benchmark, log_path):
    benchmark.group = "engine"
    out = benchmark(
        lambda: pl.scan_parquet(log_path).select(pl.all().max()).collect(engine="streaming")
    )
    assert out.height == 1


def test_bench_polars_hash_filter_sink(benchmark, log_path, tmp_path):
    benchmark.group = "engine"
    out = tmp_path / "o.parquet"
    cut = int(RATE * 2**32)

    def run():
        (
            pl.scan_parquet(log_path)
            .filter((pl.col("y") == 1) | ((pl.col("id").hash(7) & 0xFFFFFFFF) < cut))
            .sink_parquet(out)
        )

    benchmark(run)
    assert pl.scan_parquet(out).select(pl.len()).collect().item() > 0


def test_bench_sample_parquet(benchmark, log_path, pilot, tmp_path):
    benchmark.group = "engine"
    out = tmp_path / "o.parquet"
    rep = benchmark(
        lambda: sample_parquet(
            log_path, out, label="y", pilot=pilot, rate=RATE, overwrite=True, progress=False
        )
    )
    assert rep.rows_in == N_ROWS and rep.positives_out == rep.positives_in


def test_bench_harness(tmp_path):
    # The whole-process harness end to end on a tiny log: every pipeline runs and is tabled.
    res = run_engine_bench(
        rows=20_000,
        features=4,
        repeats=1,
        workdir=str(tmp_path),
        rss_rows=(5_000, 10_000),
        progress=False,
    )
    med = res.medians()
    expected = {"polars decode", "polars hash filter + sink", "fastsample sample"}
    assert expected <= set(med)
    assert all(m["seconds"] > 0 and m["max_rss_mb"] > 0 for m in med.values())
    assert med["fastsample sample"]["rows_out"] > 0
    table = res.table()
    assert "| fastsample sample |" in table and "Peak RSS" in table
