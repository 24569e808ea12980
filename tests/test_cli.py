"""The fastsample command line: exit codes, one-line errors, round trips, lazy imports."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from fastsample.cli import build_parser, main
from fastsample.core.names import (
    CALIBRATION_BINNINGS,
    EVALUATION_METHODS,
    PILOT_MODEL_ALIASES,
    PILOT_MODELS,
    STRATEGIES,
)
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.strategies import strategy_code
from fastsample.errors import InputError
from fastsample.toolkit.metrics import calibration_curve


def _run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "fastsample", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_help_and_lazy_imports():
    res = _run("--help")
    assert res.returncode == 0
    assert "generate" in res.stdout and "inspect" in res.stdout
    # --help must not pay for the heavy libraries: check what importing the CLI loads.
    code = (
        "import sys, fastsample.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('numpy','polars','numba','pyarrow','sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _choices(command: str, option: str) -> tuple[str, ...]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return tuple(action.choices)


def test_choices_are_the_librarys_lists():
    """The CLI offers exactly the names the library accepts (no copy of the lists to drift)."""
    assert _choices("sample", "--strategy") == STRATEGIES
    assert _choices("evaluate", "--strategy") == CALIBRATION_BINNINGS
    assert _choices("evaluate", "--method") == EVALUATION_METHODS
    for name in STRATEGIES:
        assert strategy_code(name) >= 0
    y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.8, 0.3, 0.6])
    for binning in CALIBRATION_BINNINGS:
        calibration_curve(y, p, n_bins=2, strategy=binning)
    with pytest.raises(InputError, match="not one of uniform, quantile"):
        calibration_curve(y, p, strategy="kmeans")


def test_pilot_model_choices_are_the_librarys_list():
    """Both commands that train a pilot offer the library's model names, and it builds each."""
    assert _choices("pilot", "--model") == PILOT_MODELS
    assert _choices("sample", "--model") == PILOT_MODELS
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (rng.random(400) < 0.3).astype(np.int8)
    for name in (*PILOT_MODELS, *PILOT_MODEL_ALIASES):
        pilot = fit_pilot(X, y, features=["a", "b"], model=name, seed=0)
        assert pilot.logits(X).shape == (400,)
    with pytest.raises(InputError, match="unknown pilot model 'forest'"):
        fit_pilot(X, y, features=["a", "b"], model="forest", seed=0)


def test_generate_and_inspect_round_trip(tmp_path, capsys):
    out = tmp_path / "log.parquet"
    assert (
        main(
            [
                "generate",
                str(out),
                "--rows",
                "20k",
                "--features",
                "3",
                "--event-rate",
                "0.02",
                "--seed",
                "5",
                "--quiet",
            ]
        )
        == 0
    )
    assert pq.read_metadata(out).num_rows == 20_000
    capsys.readouterr()
    assert main(["inspect", str(out), "--label", "y", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 20_000
    assert info["positives"] + info["negatives"] == 20_000
    assert info["imbalance_ratio"] == pytest.approx(info["negatives"] / info["positives"])
    assert main(["inspect", str(out), "--label", "y"]) == 0
    text = capsys.readouterr().out
    assert "imbalance ratio" in text and "f2" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["inspect", "{tmp}/missing.parquet", "--label", "y"], "missing.parquet"),
        (["inspect", "{tmp}/*.parquet", "--label", "y"], "matches no files"),
        (["inspect", "{tmp}/notparquet.parquet"], "notparquet.parquet"),
        (["inspect", "{tmp}/log.parquet", "--label", "nope"], "'nope'"),
        (["generate", "{tmp}/log.parquet", "--rows", "10"], "already exists"),
        (["generate", "{tmp}/new.parquet", "--event-rate", "2"], "event rate 2.0"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    (tmp_path / "sub").mkdir()
    log = tmp_path / "log.parquet"
    assert main(["generate", str(log), "--rows", "100", "--features", "2", "--quiet"]) == 0
    (tmp_path / "notparquet.parquet").write_text("hello")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{tmp}", str(tmp_path / "sub") if "*" in a else str(tmp_path)) for a in args]
    res = _run(*argv)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert needle in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_usage_exits_2():
    assert _run("generate").returncode == 2
    assert _run("nosuchcommand").returncode == 2
    assert _run("generate", "x.parquet", "--rows", "-4").returncode == 2


def test_pilot_and_sample_round_trip(tmp_path, capsys):
    log = tmp_path / "log.parquet"
    assert (
        main(
            [
                "generate",
                str(log),
                "--rows",
                "30000",
                "--features",
                "3",
                "--event-rate",
                "0.05",
                "--quiet",
            ]
        )
        == 0
    )
    pilot = tmp_path / "p.pilot"
    assert (
        main(
            ["pilot", str(log), "-o", str(pilot), "--label", "y", "--features", "f*", "--seed", "3"]
        )
        == 0
    )
    assert "fingerprint" in capsys.readouterr().out
    out = tmp_path / "s.parquet"
    report = tmp_path / "r.json"
    assert (
        main(
            [
                "sample",
                str(log),
                "-o",
                str(out),
                "--label",
                "y",
                "--pilot",
                str(pilot),
                "--rate",
                "0.1",
                "--key",
                "id",
                "--report",
                str(report),
                "--exact",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "rows out" in text
    info = json.loads(report.read_text())
    assert info["rows_out"] == pq.read_metadata(out).num_rows
    assert info["method"] == "exact" and info["key"] == ["id"]
    # the same command again refuses to overwrite, and --overwrite replaces
    res = _run("sample", str(log), "-o", str(out), "--label", "y", "--pilot", str(pilot))
    assert res.returncode == 2 and "already exists" in res.stderr
    assert (
        main(
            [
                "sample",
                str(log),
                "-o",
                str(out),
                "--label",
                "y",
                "--pilot",
                str(pilot),
                "--overwrite",
                "--quiet",
                "--strategy",
                "uniform",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--rate", "0"], "rate"),
        (["--floor", "-0.5"], "floor"),
        (["--label", "nope"], "'nope'"),
        (["--key", "nokey"], "'nokey'"),
        (["--pilot", "{log}"], "not a fastsample pilot"),
        (["--features", "zz"], "'zz'"),
    ],
)
def test_sample_bad_input_exit_2(tmp_path, extra, needle):
    log = tmp_path / "log.parquet"
    assert (
        main(
            [
                "generate",
                str(log),
                "--rows",
                "2000",
                "--features",
                "2",
                "--event-rate",
                "0.1",
                "--quiet",
            ]
        )
        == 0
    )
    out = tmp_path / "s.parquet"
    args = ["sample", str(log), "-o", str(out), "--label", "y", "--features", "f0,f1"]
    res = _run(*args, *[e.replace("{log}", str(log)) for e in extra])
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr
    assert not out.exists()


def test_demo_runs_end_to_end(tmp_path, capsys):
    # Small but real: generate, pilot, sample, offset fit and the calibration table.
    assert (
        main(
            [
                "demo",
                "--rows",
                "200k",
                "--features",
                "3",
                "--event-rate",
                "0.05",
                "--rate",
                "0.1",
                "--dir",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "offset fit (fastsample)" in text and "no offset (naive)" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clicks.parquet",
        "pilot.joblib",
        "sample.parquet",
    ]


def test_demo_offset_fit_is_calibrated_and_naive_is_not():
    from fastsample.harness.demo import run_demo

    res = run_demo(rows=400_000, features=3, event_rate=0.02, rate=0.05, seed=1, progress=False)
    by = {c["model"]: c for c in res.calibration}
    observed = res.holdout_event_rate
    n = res.holdout_rows
    # Mean predicted probability vs the observed rate on n fresh rows: the observed rate's
    # standard error is sqrt(r(1-r)/n) (~2.2e-4 here); the fitted model adds its own estimation
    # error of the same order, so allow 6 standard errors of the observed rate.
    se = (observed * (1 - observed) / n) ** 0.5
    assert abs(by["offset fit (fastsample)"]["mean_p"] - observed) < 6 * se
    assert by["same sample, no offset (naive)"]["mean_p"] > 3 * observed
    assert res.sample["positives_out"] == res.sample["positives_in"]


def test_bench_runs_every_pipeline_on_a_small_log(tmp_path, capsys):
    """``fastsample bench`` end to end at toy size: every pipeline ran and its numbers add up."""
    assert (
        main(
            [
                "bench",
                "--rows",
                "60k",
                "--features",
                "3",
                "--repeats",
                "1",
                "--rss-small",
                "20k",
                "--rss-large",
                "40k",
                "--dir",
                str(tmp_path),
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    med = res["medians"]
    assert {"polars decode", "polars hash filter + sink", "fastsample sample"} <= set(med)
    for name, m in med.items():
        assert m["seconds"] > 0 and m["cpu_seconds"] > 0, name
        assert m["mrows_per_s"] == pytest.approx(60_000 / m["seconds"] / 1e6)
    fs = med["fastsample sample"]
    # the sample keeps every positive and about 5% of the negatives: far fewer rows than in
    assert 0 < fs["rows_out"] < 60_000 * 0.5
    rss = res["rss"]
    assert rss["small_mb"] > 0 and rss["large_mb"] > 0
    # the memory check is a median of several runs per size, not one run
    assert rss["runs"] >= 3
    assert rss["small_max_mb"] >= rss["small_mb"] and rss["large_max_mb"] >= rss["large_mb"]


def test_bench_engine_script_starts():
    """``scripts/bench_engine.py`` (which rewrites the README table) imports and parses its options."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "scripts", "bench_engine.py")
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.run(
        [sys.executable, script, "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "--rss" in proc.stdout


def test_demo_marks_steps_that_compiled_numba_kernels(tmp_path):
    """The demo's first run times compilation too; it says so, and only when it happened."""
    import os

    from fastsample.harness.demo import DemoResult

    code = (
        "import numpy as np\n"
        "from fastsample.core import kernels as K\n"
        "from fastsample.harness.demo import _compilations\n"
        "z = np.zeros(5, np.uint64)\n"
        "before = _compilations(); K.combine_keys(z, z, z.copy()); print(before, _compilations())"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs[0] == ["0", "1"]  # empty cache: compiled
    assert runs[1] == ["0", "0"]  # the same cache again: loaded
    res = DemoResult(
        rows=10,
        features=1,
        event_rate=0.1,
        rate=0.5,
        sample={
            "rows_out": 1,
            "rows_in": 10,
            "positives_out": 1,
            "positives_in": 1,
            "negatives_out": 0,
            "expected_negatives_out": 0.5,
            "kappa": 1.0,
        },
    )
    res.steps = [{"step": "sample", "rows": 10, "seconds": 1.0, "compiled": False}]
    assert "compiling" not in res.table()
    res.steps[0]["compiled"] = True
    assert "sample" in res.table() and "* includes compiling Numba kernels" in res.table()
