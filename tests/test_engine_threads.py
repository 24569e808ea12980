"""The streaming pass on several drawing workers: the same output and report as on one."""

from __future__ import annotations

import numba
import polars as pl
import pytest

from fastsample.engines import stream
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.training import train_pilot
from fastsample.harness.synthetic import generate


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("threads") / "log.parquet"
    generate(path, rows=120_000, features=4, event_rate=0.03, seed=4)
    return path


@pytest.mark.parametrize("strategy", ["proportional", "uniform"])
def test_workers_change_nothing(log, tmp_path, monkeypatch, strategy):
    pilot = train_pilot(log, label="y", features=["f*"], seed=1) if strategy != "uniform" else None
    got = {}
    for workers in (1, 3):
        monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", workers)
        assert stream.stream_workers(120_000) == workers
        out = tmp_path / f"o{workers}.parquet"
        rep = sample_parquet(
            log,
            out,
            label="y",
            pilot=pilot,
            strategy=strategy,
            rate=0.1,
            key="id",
            chunk_rows=7_000,  # 18 batches, several in flight at once
            progress=False,
        )
        d = rep.to_dict()
        for varies in ("output", "seconds", "rows_per_second"):
            d.pop(varies)
        got[workers] = (pl.read_parquet(out), d)
    one, three = got[1], got[3]
    assert one[0].height > 0
    assert one[0].equals(three[0])  # same rows, same order, same probabilities and offsets
    assert one[1] == three[1]  # every count and sum of the report, to the bit


def test_a_bad_batch_fails_the_run_on_workers_too(tmp_path, monkeypatch):
    from fastsample.errors import InputError

    src = tmp_path / "bad.parquet"
    n = 100_000
    y = [0] * n
    y[90_000] = 2  # a non-binary label in a late batch
    pl.DataFrame({"id": range(n), "y": y}).write_parquet(src, row_group_size=10_000)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    with pytest.raises(InputError, match="'y'"):
        sample_parquet(
            src,
            tmp_path / "o.parquet",
            label="y",
            strategy="uniform",
            chunk_rows=10_000,
            progress=False,
        )
    assert not (tmp_path / "o.parquet").exists()
