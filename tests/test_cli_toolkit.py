"""CLI: `evaluate` and `inspect --plot` (parsing and printing only; logic lives in modules)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from fastsample.cli import main
from fastsample.toolkit.evaluation import evaluate_parquet


@pytest.fixture
def scores(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(-3.0 + x)))
    y = (rng.random(n) < p).astype(np.int8)
    path = tmp_path / "scores.parquet"
    pl.DataFrame({"y": y, "p": p, "w": rng.uniform(1, 3, n), "x": x}).write_parquet(path)
    return path


def test_evaluate_prints_metrics_by_name(scores, tmp_path, capsys):
    png = tmp_path / "eval.png"
    assert (
        main(
            [
                "evaluate",
                str(scores),
                "--label",
                "y",
                "--score",
                "p",
                "--weight",
                "w",
                "--plot",
                str(png),
                "--json",
            ]
        )
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    ref = evaluate_parquet(scores, label="y", score="p", weight="w").as_dict()
    for key in ("roc_auc", "average_precision", "log_loss", "normalized_entropy", "brier", "ece"):
        assert got[key] == pytest.approx(ref[key], rel=1e-12)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(scores), "-l", "y", "-s", "p", "--method", "histogram"]) == 0
    text = capsys.readouterr().out
    assert "roc_auc" in text and "normalized_entropy" in text and "histogram" in text


def test_inspect_plot(scores, tmp_path, capsys):
    png = tmp_path / "inspect.png"
    assert (
        main(["inspect", str(scores), "--label", "y", "--plot", str(png), "--plot-features", "x,p"])
        == 0
    )
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert f"plot: {png}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["evaluate", "{scores}", "--label", "nope", "--score", "p"], "'nope'"),
        (["evaluate", "{scores}", "--label", "y", "--score", "x"], "[0, 1]"),
        (
            ["evaluate", "{scores}", "--label", "y", "--score", "p", "--plot", "{scores}"],
            "already exists",
        ),
        (["evaluate", "{tmp}/none.parquet", "--label", "y", "--score", "p"], "none.parquet"),
        (["inspect", "{scores}", "--label", "y", "--plot", "{tmp}/no/dir.png"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(scores, tmp_path, args, needle):
    argv = [a.format(scores=scores, tmp=tmp_path) for a in args]
    res = subprocess.run(
        [sys.executable, "-m", "fastsample", *argv], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


def test_inspect_plot_needs_label(scores, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["inspect", str(scores), "--plot", str(tmp_path / "x.png")])
    assert info.value.code == 2
