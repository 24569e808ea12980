"""Imbalance report: exact counts, streaming == in memory, weights, bins, plots."""

from __future__ import annotations

import math
import os

import numpy as np
import polars as pl
import pytest

from fastsample.errors import InputError
from fastsample.toolkit.plots import plot_imbalance
from fastsample.toolkit.report import imbalance_report


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(-4.0 + 1.5 * x)))
    y = (rng.random(n) < p).astype(np.int64)
    x_missing = np.where(rng.random(n) < 0.01, np.nan, x)
    return pl.DataFrame(
        {
            "x": x_missing,
            "z": rng.normal(size=n),
            "y": y,
            "day": rng.integers(0, 4, n),
            "w": rng.uniform(1.0, 10.0, n),
        }
    )


def test_counts_are_exact(frame):
    y = frame["y"].to_numpy()
    rep = imbalance_report(frame, label="y")
    assert rep.n_rows == len(y)
    assert rep.positives == y.sum() and rep.negatives == len(y) - y.sum()
    assert rep.event_rate == pytest.approx(y.mean(), rel=1e-15)
    assert rep.imbalance_ratio == pytest.approx((len(y) - y.sum()) / y.sum(), rel=1e-15)
    assert rep.minority_class == 1


def test_weighted_counts_are_weight_sums(frame):
    y, w = frame["y"].to_numpy(), frame["w"].to_numpy()
    rep = imbalance_report(frame, label="y", weight="w")
    assert rep.positives == pytest.approx(w[y == 1].sum(), rel=1e-12)
    assert rep.negatives == pytest.approx(w[y == 0].sum(), rel=1e-12)
    assert rep.event_rate == pytest.approx(np.sum(w * y) / w.sum(), rel=1e-12)


def test_single_class_is_not_called_balanced():
    """The tutorial's `min(counts) / max(counts)` over `np.unique` sees one class and reports a
    ratio of 1.0 ("balanced") for data with no positives at all; the report says inf."""
    rep = imbalance_report(pl.DataFrame({"y": np.zeros(500, dtype=np.int64)}), label="y")
    assert rep.positives == 0 and rep.negatives == 500
    assert math.isinf(rep.imbalance_ratio) and rep.event_rate == 0.0
    counts = np.unique(np.zeros(500), return_counts=True)[1]
    assert counts.min() / counts.max() == 1.0  # what the tutorial would print


def test_per_group_and_per_bin_match_numpy(frame):
    y, day, x = frame["y"].to_numpy(), frame["day"].to_numpy(), frame["x"].to_numpy()
    edges = [-1.0, 0.0, 0.5, 1.5]
    rep = imbalance_report(frame, label="y", by="day", feature="x", bins=edges)
    g = rep.per_group
    assert g["day"].to_list() == [0, 1, 2, 3]
    for row in g.iter_rows(named=True):
        m = day == row["day"]
        assert row["rows"] == m.sum() and row["positives"] == y[m].sum()
    b = rep.per_bin
    finite = ~np.isnan(x)
    ids = np.searchsorted(np.array(edges), x[finite], side="left")  # (lower, upper]
    for k in range(len(edges) + 1):
        row = b.filter(pl.col("bin") == k).row(0, named=True)
        assert row["rows"] == np.sum(ids == k)
        assert row["positives"] == y[finite][ids == k].sum()
    missing = b.filter(pl.col("bin").is_null()).row(0, named=True)
    assert missing["rows"] == np.sum(~finite)
    assert b["lower"][0] == -np.inf and b["upper"][len(edges)] == np.inf


def test_quantile_bins_have_equal_counts(frame):
    rep = imbalance_report(frame, label="y", feature="z", bins=5)
    rows = rep.per_bin["rows"].to_numpy()
    assert len(rows) == 5 and rows.sum() == frame.height
    assert np.all(np.abs(rows - frame.height / 5) <= 1)
    # event rate rises with x when the model says so
    rates = imbalance_report(frame.drop_nulls(), label="y", feature="z", bins=5)
    assert rates.per_bin["event_rate"].null_count() == 0


def test_streaming_equals_in_memory(frame, tmp_path):
    for i in range(4):
        frame[i * 5000 : (i + 1) * 5000].write_parquet(tmp_path / f"part{i}.parquet")
    kw = {"label": "y", "weight": "w", "feature": "x", "bins": [-0.5, 0.5]}
    mem = imbalance_report(frame, by="day", **kw)
    disk = imbalance_report(tmp_path, by="day", **kw)
    assert _close(mem, disk)
    per_file = imbalance_report(tmp_path, label="y")
    assert per_file.group == "file" and per_file.per_group.height == 4
    assert per_file.per_group["rows"].sum() == frame.height
    assert [os.path.basename(f) for f in per_file.per_group["file"]] == [
        f"part{i}.parquet" for i in range(4)
    ]


def _close(a, b):
    da, db = a.as_dict(), b.as_dict()
    for key in ("rows", "positives", "negatives", "event_rate", "imbalance_ratio"):
        assert da[key] == pytest.approx(db[key], rel=1e-12)
    for table in ("per_bin", "per_group"):
        for ra, rb in zip(da[table]["rows"], db[table]["rows"], strict=True):
            assert ra.keys() == rb.keys()
            for k in ra:
                if isinstance(ra[k], float):
                    assert ra[k] == pytest.approx(rb[k], rel=1e-12), (table, k)
                else:
                    assert ra[k] == rb[k], (table, k)
    return True


def test_hive_partitions_are_groups(tmp_path, frame):
    for d in range(2):
        part = tmp_path / f"day={d}"
        part.mkdir()
        frame.filter(pl.col("day") == d).drop("day").write_parquet(part / "data.parquet")
    rep = imbalance_report(tmp_path, label="y", by="day")
    assert rep.per_group["rows"].to_list() == [
        frame.filter(pl.col("day") == d).height for d in range(2)
    ]


def test_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"y": [0, 1, 3], "x": [1.0, 2.0, 3.0]}).write_parquet(path)
    with pytest.raises(InputError, match=r"bad\.parquet.*'y'.*3"):
        imbalance_report(path, label="y")
    with pytest.raises(InputError, match=r"label column 'label' not found in .*bad\.parquet"):
        imbalance_report(path, label="label")
    with pytest.raises(InputError, match="strictly increasing"):
        imbalance_report(
            pl.DataFrame({"y": [0, 1], "x": [1.0, 2.0]}), label="y", feature="x", bins=[1.0, 0.0]
        )
    with pytest.raises(InputError, match=r"'w'.*-1"):
        imbalance_report(pl.DataFrame({"y": [0, 1], "w": [1.0, -1.0]}), label="y", weight="w")


def test_plot_png(frame, tmp_path):
    out = tmp_path / "imbalance.png"
    plot_imbalance(frame, out, label="y", features=["x", "z"], max_points=2000)
    assert out.read_bytes()[:4] == b"\x89PNG"
    frame.write_parquet(tmp_path / "d.parquet")
    out2 = tmp_path / "imbalance2.png"
    plot_imbalance(tmp_path / "d.parquet", out2, label="y")  # default: first two numeric columns
    assert out2.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="two columns"):
        plot_imbalance(frame, tmp_path / "x.png", label="y", features=["x"])
