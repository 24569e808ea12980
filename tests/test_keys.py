"""Keys that mean what you think (issue 11 #2): a repeated key is said; group sampling on purpose."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from fastsample.cli import main
from fastsample.core.keysketch import SAMPLE_ABOVE
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.sinks import read_metadata
from fastsample.errors import FastsampleWarning, InputError
from fastsample.harness.fieldlike import write_field_like


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "log.parquet"
    write_field_like(path, 60_000, positives=600, features=6, seed=2)
    return path


def _sample(log, out, **kw):
    kw.setdefault("strategy", "uniform")
    return sample_parquet(log, out, label="y", rate=0.1, progress=False, **kw)


def test_a_row_key_is_quiet(log, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastsampleWarning)
        rep = _sample(log, tmp_path / "o.parquet", key="id")
    assert rep.key_distinct == pytest.approx(60_000, rel=0.08) and not rep.warnings


def test_a_repeated_key_is_warned_about(log, tmp_path):
    with pytest.warns(FastsampleWarning, match="'user_id' is not unique") as caught:
        rep = _sample(log, tmp_path / "o.parquet", key="user_id")
    n_users = pl.read_parquet(log, columns=["user_id"])["user_id"].n_unique()
    assert rep.key_distinct == pytest.approx(n_users, rel=0.08)
    msg = next(str(w.message) for w in caught if "not unique" in str(w.message))
    assert f"{rep.key_distinct:,.0f} distinct values in 60,000 rows" in msg and "\n" not in msg
    assert "--group-key" in msg
    assert read_metadata(tmp_path / "o.parquet")["warnings"] == rep.warnings
    # the cluster effect itself: whole users kept or dropped, so the count misses by far more
    # than the row-level standard error
    assert abs(rep.negatives_z) > 5


def test_group_key_samples_whole_groups(log, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastsampleWarning)
        rep = _sample(log, tmp_path / "g.parquet", group_key="user_id")
    assert rep.group_key and rep.key == ["user_id"] and rep.key_distinct is None
    kept = pl.read_parquet(tmp_path / "g.parquet").filter(pl.col("y") == 0)
    every = pl.read_parquet(log).filter(pl.col("y") == 0)
    # uniform: one probability, so a group's negatives are all kept or all dropped
    per_user = (
        every.group_by("user_id")
        .len()
        .join(kept.group_by("user_id").len(), on="user_id", how="inner", suffix="_kept")
    )
    assert per_user.height > 0 and (per_user["len"] == per_user["len_kept"]).all()
    meta = read_metadata(tmp_path / "g.parquet")
    assert meta["group_key"] is True and meta["key"] == ["user_id"]
    with pytest.raises(InputError, match="key or group_key"):
        _sample(log, tmp_path / "x.parquet", key="id", group_key="user_id")


def test_cli_group_key_and_key_help(log, tmp_path, capsys):
    out = tmp_path / "c.parquet"
    argv = ["sample", str(log), "-o", str(out), "-l", "y", "--strategy", "uniform", "-q"]
    assert main([*argv, "--group-key", "user_id"]) == 0
    assert read_metadata(out)["group_key"] is True
    with pytest.raises(SystemExit):
        main([*argv, "--key", "id", "--group-key", "user_id", "--overwrite"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "unique" in text and "--group-key" in text and "clustered by group" in text


def test_the_hash_sample_still_sees_a_repeated_key(tmp_path):
    # above 1M rows the sketch looks at 1 key in 16: a key column with 1,000 values is caught
    n = SAMPLE_ABOVE
    path = tmp_path / "big.parquet"
    pl.DataFrame(
        {"k": np.arange(n, dtype=np.int64) % 1000, "y": (np.arange(n) % 50 == 0).astype(np.int8)}
    ).write_parquet(path)
    with pytest.warns(FastsampleWarning, match="not unique"):
        rep = sample_parquet(
            path, tmp_path / "o.parquet", label="y", strategy="uniform", rate=0.01, key="k"
        )
    assert rep.key_distinct == pytest.approx(1000, rel=0.2)
