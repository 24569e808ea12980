"""CLI truths (issue 11): a sample is evaluated with its weights by default; -o names Parquet."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from fastsample.cli import main
from fastsample.engines.parquet import sample_parquet
from fastsample.toolkit.evaluation import evaluate_parquet
from fastsample.toolkit.frames import sample_weight_column


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalw")
    rng = np.random.default_rng(1)
    n = 60_000
    x = rng.normal(size=n).astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-(-4.0 + 1.5 * x.astype(np.float64))))
    y = (rng.random(n) < p).astype(np.int8)
    src = tmp / "log.parquet"
    pl.DataFrame({"id": np.arange(n), "x": x, "p": p, "y": y}).write_parquet(src)
    out = tmp / "sample.parquet"
    sample_parquet(src, out, label="y", features=["x"], rate=0.05, key="id", progress=False)
    return out


def _metrics(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_weights_a_sample_by_default(sample, capsys):
    base = ["evaluate", str(sample), "-l", "y", "-s", "p", "--json"]
    default = _metrics(base, capsys)
    weighted = _metrics([*base, "--weight", "sample_weight"], capsys)
    unweighted = _metrics([*base, "--weight", "none"], capsys)
    for key in ("roc_auc", "ece", "log_loss", "event_rate"):
        assert default[key] == pytest.approx(weighted[key], rel=1e-12)
    # the sample's own metrics are those of another population: clearly different
    assert abs(unweighted["ece"] - weighted["ece"]) > 0.02
    assert abs(unweighted["roc_auc"] - weighted["roc_auc"]) > 0.01
    assert default["weight"] == "sample_weight" and unweighted["weight"] == "none"
    assert main(base[:-1]) == 0
    assert "weighted by 'sample_weight'" in capsys.readouterr().err


def test_sample_weight_column_without_metadata(sample, tmp_path):
    plain = tmp_path / "rewritten.parquet"
    pl.read_parquet(sample).write_parquet(plain)  # Polars drops the key-value metadata
    assert sample_weight_column(plain) == "sample_weight"
    other = tmp_path / "scores.parquet"
    pl.read_parquet(sample).drop("sampling_prob").write_parquet(other)
    assert sample_weight_column(other) is None
    assert evaluate_parquet(other, label="y", score="p").weight is None


def test_metadata_without_its_weight_column_is_refused(sample, tmp_path, capsys):
    import pyarrow.parquet as pq

    t = pq.read_table(sample)
    t = t.drop_columns(["sample_weight"])
    bad = tmp_path / "noweight.parquet"
    pq.write_table(t, bad)  # keeps the schema metadata? the footer record is what counts
    pf = pq.ParquetFile(sample)
    meta = {k: v for k, v in (pf.metadata.metadata or {}).items() if k == b"fastsample"}
    with pq.ParquetWriter(bad, t.schema) as w:
        w.write_table(t)
        w.add_key_value_metadata(meta)
    assert main(["evaluate", str(bad), "-l", "y", "-s", "p"]) == 2
    err = capsys.readouterr().err
    assert "no weight column 'sample_weight'" in err and "none" in err
    assert main(["evaluate", str(bad), "-l", "y", "-s", "p", "--weight", "none"]) == 0


def test_inspect_takes_weight(sample, capsys):
    info = _metrics(["inspect", str(sample), "-l", "y", "--json"], capsys)
    w = info["weighted"]
    assert w["weight"] == "sample_weight"
    # the weighted totals estimate the input's 60,000 rows (HT), the counts are the sample's
    assert w["positives"] + w["negatives"] == pytest.approx(60_000, rel=0.05)
    assert sum(info["counts"].values()) < 10_000
    info = _metrics(["inspect", str(sample), "-l", "y", "--json", "--weight", "none"], capsys)
    assert "weighted" not in info
    assert main(["inspect", str(sample), "-l", "y"]) == 0
    assert "population estimate" in capsys.readouterr().out


def test_sample_refuses_an_output_named_csv(tmp_path, capsys):
    src = tmp_path / "in.parquet"
    pl.DataFrame({"id": [1, 2], "y": [0, 1]}).write_parquet(src)
    out = tmp_path / "out.csv"
    code = main(["sample", str(src), "-o", str(out), "-l", "y", "--strategy", "uniform", "-q"])
    assert code == 2 and not out.exists()
    assert "out.csv" in capsys.readouterr().err
