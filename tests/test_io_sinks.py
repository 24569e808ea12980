"""Sinks (fastsample.engines.sinks / publish): datasets, metadata where pyarrow users look, hive
layouts written by Polars, and storage failures as one line with nothing written."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import uuid

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import run_cli

from fastsample.engines.parquet import sample_parquet
from fastsample.engines.sinks import read_metadata
from fastsample.engines.sources import iter_batches, resolve_source
from fastsample.errors import InputError

FEATURES = ["f0", "f1"]
KW = {"label": "y", "features": FEATURES, "rate": 0.3, "seed": 2, "progress": False}


def _frame(n: int = 5000) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 2))
    p = 1 / (1 + np.exp(-(-3.0 + x[:, 0] - 0.5 * x[:, 1])))
    return pl.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "y": (rng.random(n) < p).astype(np.int64),
            "f0": x[:, 0],
            "f1": x[:, 1],
            "day": rng.integers(1, 4, size=n),
            "name": [f"u{i % 7}" for i in range(n)],
        }
    )


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log.parquet"
    _frame().write_parquet(path)
    return path


def test_plan_metadata_is_in_the_arrow_schema(tmp_path, log):
    """Issue 11 #5: not only the footer's key-value metadata."""
    out = tmp_path / "s.parquet"
    sample_parquet(str(log), str(out), **KW)
    record = read_metadata(out)
    for meta in (pq.read_schema(out).metadata, pq.read_table(out).schema.metadata):
        assert meta is not None and json.loads(meta[b"fastsample"]) == record
    assert record["plan"]["strategy"] == "proportional" and record["counts"]["rows_out"] > 0


@pytest.mark.parametrize("rows", [None, 250])
def test_partitioned_dataset(tmp_path, log, rows):
    one = tmp_path / "one.parquet"
    rep = sample_parquet(str(log), str(one), **KW)
    out = tmp_path / "ds"
    sample_parquet(str(log), str(out), partition_by=["day"], max_rows_per_file=rows, **KW)
    assert {p.name for p in out.iterdir()} == {
        "day=1",
        "day=2",
        "day=3",
        "_SUCCESS",
        "_fastsample.json",
    }
    parts = sorted(out.rglob("*.parquet"))
    assert all("day" not in pq.read_schema(p).names for p in parts)
    if rows:
        assert all(pq.read_metadata(p).num_rows <= rows for p in parts) and len(parts) > 3
    summary = json.loads((out / "_fastsample.json").read_text())
    assert summary["rows"] == rep.rows_out == sum(f["rows"] for f in summary["files"])
    assert {f["path"] for f in summary["files"]} == {str(p.relative_to(out)) for p in parts}
    for p in parts:
        record = json.loads(pq.read_schema(p).metadata[b"fastsample"])
        assert record["counts"]["rows_out"] == rep.rows_out
    want = pl.read_parquet(one).sort("id")
    got = pl.concat(
        [pl.from_arrow(b) for b, _ in iter_batches(resolve_source(str(out)), batch_rows=10_000)]
    )
    assert got.sort("id").select(want.columns).equals(want)
    assert read_metadata(out)["rows"] == rep.rows_out
    assert not [p for p in tmp_path.iterdir() if "fastsample-" in p.name]  # no staging left


def test_max_rows_per_file_alone_and_overwrite(tmp_path, log):
    out = tmp_path / "ds"
    sample_parquet(str(log), str(out), max_rows_per_file=100, **KW)
    n = len(list(out.glob("part-*.parquet")))
    assert n > 1
    with pytest.raises(InputError, match="already exists"):
        sample_parquet(str(log), str(out), max_rows_per_file=100, **KW)
    sample_parquet(str(log), str(out), max_rows_per_file=10_000, overwrite=True, **KW)
    assert len(list(out.glob("part-*.parquet"))) == 1
    assert not [p for p in tmp_path.iterdir() if "fastsample-" in p.name]


def test_a_failed_dataset_run_leaves_nothing(tmp_path, log):
    def batches():
        for i, b in enumerate(pq.ParquetFile(log).iter_batches(batch_size=500)):
            if i == 4:
                raise RuntimeError("boom")
            yield b

    reader = pa.RecordBatchReader.from_batches(pq.read_schema(log), batches())
    with pytest.raises(RuntimeError, match="boom"):
        sample_parquet(
            reader,
            str(tmp_path / "ds"),
            label="y",
            strategy="uniform",
            partition_by="day",
            progress=False,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.parquet"]


def test_polars_hive_layout_keeps_the_key_in_the_files(tmp_path):
    """Issue 11 #6: accepted when the values agree, an error naming the file when they differ."""
    frame = _frame()
    frame.write_parquet(tmp_path / "hive", partition_by="day")
    src = resolve_source(str(tmp_path / "hive"))
    assert src.columns.count("day") == 1 and src.schema.field("day").type == pa.int64()
    rep = sample_parquet(str(tmp_path / "hive"), str(tmp_path / "s.parquet"), **KW)
    got = pl.read_parquet(tmp_path / "s.parquet")
    assert rep.rows_in == frame.height and set(got["day"].unique()) <= {1, 2, 3}
    # A file whose own column contradicts its directory.
    bad = next((tmp_path / "hive" / "day=2").glob("*.parquet"))
    pq.write_table(
        pq.read_table(bad).set_column(4, "day", pa.array([3] * pq.read_metadata(bad).num_rows)), bad
    )
    with pytest.raises(InputError, match=r"hive partition day=2 of .* disagrees .*value 3") as err:
        sample_parquet(str(tmp_path / "hive"), str(tmp_path / "t.parquet"), **KW)
    assert "day=2" in str(err.value) and not (tmp_path / "t.parquet").exists()


def _cli_limited(args: list[str], fsize: int) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill

    return run_cli(*args, preexec_fn=limit)


@pytest.mark.parametrize("dataset", [False, True])
def test_full_disk_is_one_line_and_nothing_is_written(tmp_path, dataset):
    """Issue 11 #10, with RLIMIT_FSIZE standing in for a full disk (EFBIG at the limit)."""
    big = tmp_path / "big.parquet"
    rng = np.random.default_rng(0)
    n = 400_000
    pq.write_table(
        pa.table({"y": np.zeros(n, dtype=np.int64), "a": rng.random(n), "b": rng.random(n)}), big
    )
    out = tmp_path / "out"
    extra = ["--max-rows-per-file", "300000"] if dataset else []
    res = _cli_limited(
        [
            "sample",
            str(big),
            "-o",
            str(out),
            "--label",
            "y",
            "--strategy",
            "uniform",
            "--rate",
            "1",
            "-q",
            *extra,
        ],
        fsize=2 << 20,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "nothing was written" in res.stderr and str(out) in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.parquet"]


def test_no_space_left_on_a_small_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        big = tmp_path / "big.parquet"
        rng = np.random.default_rng(0)
        n = 300_000
        pq.write_table(pa.table({"y": np.zeros(n, dtype=np.int64), "a": rng.random(n)}), big)
        out = mnt / "o.parquet"
        res = run_cli(
            "sample",
            str(big),
            "-o",
            str(out),
            "--label",
            "y",
            "--strategy",
            "uniform",
            "--rate",
            "1",
            "-q",
        )
        assert res.returncode == 2, res.stderr
        assert "no space left" in res.stderr and "nothing was written" in res.stderr
        assert res.stderr.count("\n") == 1 and os.listdir(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_read_only_directory_is_one_line(tmp_path, log):
    ro = tmp_path / f"ro{uuid.uuid4().hex[:4]}"
    ro.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    os.chmod(ro, 0o555)
    try:
        res = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-m",
                "fastsample",
                "sample",
                str(log),
                "-o",
                str(ro / "o.parquet"),
                "--label",
                "y",
                "--strategy",
                "uniform",
                "-q",
            ],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 2, res.stderr
        assert "permission denied" in res.stderr and "nothing was written" in res.stderr
        assert res.stderr.count("\n") == 1 and os.listdir(ro) == []
    finally:
        os.chmod(ro, 0o755)


def test_file_uris_in_and_out(tmp_path, log):
    out = tmp_path / "u.parquet"
    rep = sample_parquet(log.as_uri(), out.as_uri(), **KW)
    assert rep.rows_out == pq.read_metadata(out).num_rows > 0
    res = run_cli(
        "sample",
        log.as_uri(),
        "-o",
        (tmp_path / "d").as_uri(),
        "--label",
        "y",
        "--strategy",
        "uniform",
        "--max-rows-per-file",
        "100",
        "-q",
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "d" / "_SUCCESS").exists()
