"""The README's "Where your logs are" snippets run as written, on local and moto equivalents.

The shell block runs against a moto S3 server started here (buckets ``logs`` and ``samples``;
``gs://`` is read as ``s3://``, the one scheme served); the Python block runs in a directory
holding a small ``clicks.parquet``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    text = README.read_text()
    section = text[text.index("### Where your logs are") :]
    section = section[: section.index("\n## ")]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def _commands(block: str) -> list[list[str]]:
    """Shell lines joined at their backslashes, comments dropped, split as the shell would."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def _clicks(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(3.5 - x[:, 0]))).astype(np.int64)
    cols = {"id": np.arange(seed * n, (seed + 1) * n), "y": y, "f0": x[:, 0], "f1": x[:, 1]}
    return pa.table(cols)


def test_python_snippet_runs(tmp_path, monkeypatch):
    pytest.importorskip("duckdb")
    (code,) = _blocks("python")
    pq.write_table(_clicks(20_000, 0), tmp_path / "clicks.parquet")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    kept = pl.read_parquet(tmp_path / "f1_pos.parquet")
    assert kept.height > 0 and (kept["f1"] > 0).all()
    assert (pl.read_parquet(tmp_path / "f0_pos" / "*.parquet")["f0"] > 0).all()


def test_shell_snippet_runs_against_s3(tmp_path):
    pytest.importorskip("moto", reason="moto[server] (the dev extra) runs the S3 tests")
    from pyarrow import fs
    from s3_server import KEY, REGION, SECRET, moto_server, s3_filesystem

    (block,) = _blocks("bash")
    commands = _commands(block)
    assert all(c[0] == "./scripts/fastsample" for c in commands)
    with moto_server() as url:
        s3 = s3_filesystem(url, KEY, SECRET)
        for bucket in ("logs", "samples"):
            s3.create_dir(bucket)
        for i, day in enumerate(("2024-01-01", "2024-01-02", "2024-02-01")):
            pq.write_table(_clicks(3000, i), f"logs/clicks/day={day}/part.parquet", filesystem=s3)
        events = _clicks(2000, 9).rename_columns(["id", "clicked", "f0", "f1"])
        pl.from_arrow(events).write_csv(tmp_path / "events.csv")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID=KEY,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_REGION=REGION,
        )
        for command in commands:
            args = [a.replace("gs://", "s3://") for a in command[1:]]
            res = subprocess.run(
                [sys.executable, "-m", "fastsample", *args],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                env=env,
                timeout=300,
            )
            assert res.returncode == 0, (command, res.stderr)
        names = {i.path for i in s3.get_file_info(fs.FileSelector("samples", recursive=True))}
        assert {"samples/clicks/_SUCCESS", "samples/jan.parquet", "samples/pilot.npz"} <= names
        assert "samples/p.parquet" in names
        jan = pq.read_table("samples/jan.parquet", filesystem=s3).column("id").to_numpy()
        assert jan.size and jan.max() < 6000  # only the two January days' rows
    assert pq.read_metadata(tmp_path / "sample.parquet").num_rows > 0
