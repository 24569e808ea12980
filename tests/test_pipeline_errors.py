"""Bad input to the streaming engine: a one-line InputError naming the culprit, and no output
created or changed (fastsample.engines.parquet)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastsample.core.pilot_fit import fit_pilot
from fastsample.engines import parquet as pipeline
from fastsample.errors import InputError
from fastsample.harness.synthetic import click_log

FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return pl.from_arrow(click_log(3000, features=3, event_rate=0.1, seed=1))


@pytest.fixture(scope="module")
def pilot_file(tmp_path_factory, data) -> str:
    path = tmp_path_factory.mktemp("pilot") / "p.pilot"
    fit_pilot(data, data["y"].to_numpy(), features=FEATURES, seed=0, label="y").save(path)
    return str(path)


def _write(path, frame: pl.DataFrame) -> str:
    pq.write_table(frame.to_arrow(), path, row_group_size=500)
    return str(path)


def _expect_error(tmp_path, needle, source, **kw):
    out = tmp_path / "out.parquet"
    existed = out.exists()
    before = out.read_bytes() if existed else None
    listing = sorted(os.listdir(tmp_path))
    kw.setdefault("label", "y")
    kw.setdefault("progress", False)
    with pytest.raises(InputError) as err:
        pipeline.sample_parquet(source, out, **kw)
    msg = str(err.value)
    assert "\n" not in msg
    assert needle in msg, msg
    assert sorted(os.listdir(tmp_path)) == listing
    if existed:
        assert out.read_bytes() == before
    return msg


def test_missing_and_non_parquet_inputs(tmp_path, pilot_file):
    _expect_error(tmp_path, "missing.parquet", tmp_path / "missing.parquet", pilot=pilot_file)
    (tmp_path / "t.parquet").write_text("id,y\n")
    _expect_error(tmp_path, "t.parquet", tmp_path / "t.parquet", pilot=pilot_file)
    _expect_error(tmp_path, "matches no files", str(tmp_path / "*.pq"), pilot=pilot_file)
    (tmp_path / "d").mkdir()
    _expect_error(tmp_path, "contains no Parquet files", tmp_path / "d", pilot=pilot_file)


def test_truncated_input(tmp_path, data, pilot_file):
    good = _write(tmp_path / "g.parquet", data)
    with open(good, "rb") as fh:
        raw = fh.read()
    (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) - 100])
    _expect_error(tmp_path, "cut.parquet", tmp_path / "cut.parquet", pilot=pilot_file)


def test_schemas_differ(tmp_path, data, pilot_file):
    a = _write(tmp_path / "a.parquet", data)
    b = _write(tmp_path / "b.parquet", data.with_columns(pl.col("f0").cast(pl.Float64)))
    _expect_error(tmp_path, "'f0'", [a, b], pilot=pilot_file)


def test_missing_columns(tmp_path, data, pilot_file):
    src = _write(tmp_path / "a.parquet", data)
    _expect_error(tmp_path, "label column 'label'", src, pilot=pilot_file, label="label")
    _expect_error(tmp_path, "key column 'uid'", src, pilot=pilot_file, key="uid")
    _expect_error(tmp_path, "feature column 'g9'", src, features=["f0", "g9"])
    no_f2 = _write(tmp_path / "n.parquet", data.drop("f2"))
    _expect_error(tmp_path, "pilot feature column 'f2'", no_f2, pilot=pilot_file)


def _last_row_label(data: pl.DataFrame, value, dtype) -> pl.DataFrame:
    y = data["y"].cast(dtype).to_list()
    y[-1] = value
    return data.with_columns(pl.Series("y", y, dtype=dtype))


@pytest.mark.parametrize(
    ("value", "dtype", "needle"),
    [(2, pl.Int8, "found value 2"), ("a", pl.String, "found type"), (None, pl.Int8, "null")],
)
def test_labels_not_binary(tmp_path, data, pilot_file, value, dtype, needle):
    # The bad label sits in the very last row: the run fails late, and still leaves no output.
    src = _write(tmp_path / "bad.parquet", _last_row_label(data, value, dtype))
    (tmp_path / "out.parquet").write_bytes(b"previous content")
    msg = _expect_error(tmp_path, needle, src, pilot=pilot_file, chunk_rows=256, overwrite=True)
    assert "'y'" in msg


def test_bad_features(tmp_path, data, pilot_file):
    nan = data.with_columns(
        pl.when(pl.int_range(pl.len()) == 2500)
        .then(float("nan"))
        .otherwise(pl.col("f1"))
        .cast(pl.Float32)
        .alias("f1")
    )
    src = _write(tmp_path / "nan.parquet", nan)
    _expect_error(tmp_path, "'f1'", src, pilot=pilot_file)  # reaching the draw
    _expect_error(tmp_path, "'f1'", src, features=FEATURES)  # reaching the pilot's training
    inf = _write(tmp_path / "inf.parquet", data.with_columns(pl.lit(float("inf")).alias("f0")))
    _expect_error(tmp_path, "'f0'", inf, pilot=pilot_file)
    text = _write(tmp_path / "s.parquet", data.with_columns(pl.col("f2").cast(pl.String)))
    _expect_error(tmp_path, "'f2'", text, features=FEATURES)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"rate": 0.0}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": "x"}, "rate"),
        ({"floor": -0.1}, "floor"),
        ({"seed": "abc"}, "seed"),
        ({"seed": 2**70}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"chunk_rows": -5}, "chunk_rows"),
        ({"chunk_rows": 2.5}, "chunk_rows"),
        ({"strategy": "magic"}, "magic"),
    ],
)
def test_bad_parameters(tmp_path, data, pilot_file, kw, needle):
    src = _write(tmp_path / "a.parquet", data)
    _expect_error(tmp_path, needle, src, pilot=pilot_file, **kw)


def test_output_rules(tmp_path, data, pilot_file):
    src = _write(tmp_path / "a.parquet", data)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"keep me")
    _expect_error(tmp_path, "already exists", src, pilot=pilot_file)
    with pytest.raises(InputError, match="also an input"):
        pipeline.sample_parquet(src, src, label="y", pilot=pilot_file, overwrite=True)
    assert pl.read_parquet(src).equals(data)
    clash = _write(tmp_path / "c.parquet", data.with_columns(sampling_prob=pl.lit(1.0)))
    out.unlink()
    _expect_error(tmp_path, "'sampling_prob'", clash, pilot=pilot_file)


@pytest.mark.parametrize("name", ["out.csv", "OUT.NDJSON", "out.arrow"])
def test_output_named_for_another_format_is_refused(tmp_path, data, pilot_file, name):
    """The engine writes Parquet only, so a name promising CSV, NDJSON, ... is an error."""
    src = _write(tmp_path / "a.parquet", data)
    out = tmp_path / name
    suffix = name.rsplit(".", 1)[1].upper()
    with pytest.raises(InputError, match=f"names a {suffix} file, but fastsample writes Parquet"):
        pipeline.sample_parquet(src, out, label="y", pilot=pilot_file, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["a.parquet"]


def test_bad_pilot_files(tmp_path, data):
    src = _write(tmp_path / "a.parquet", data)
    (tmp_path / "junk.pilot").write_bytes(b"not a pilot")
    _expect_error(tmp_path, "junk.pilot", src, pilot=tmp_path / "junk.pilot")
    _expect_error(tmp_path, "a.parquet", src, pilot=src)
    _expect_error(tmp_path, "nothere.pilot", src, pilot=tmp_path / "nothere.pilot")


def test_bare_classifier_needs_exact_mode(tmp_path, data):
    from sklearn.linear_model import LogisticRegression

    src = _write(tmp_path / "a.parquet", data)
    clf = LogisticRegression().fit(data.select(FEATURES).to_numpy(), data["y"].to_numpy())
    _expect_error(tmp_path, "exact", src, pilot=clf, features=FEATURES)
    rep = pipeline.sample_parquet(
        src,
        tmp_path / "o.parquet",
        label="y",
        pilot=clf,
        features=FEATURES,
        exact=True,
        progress=False,
    )
    assert rep.method == "exact" and rep.rows_out > 0


_SLOW_SAMPLE = [
    "-c",
    "import sys; from fastsample.cli import main; sys.exit(main(sys.argv[1:]))",
]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_run_leaves_output_untouched(tmp_path, data, pilot_file, sig):
    big = pl.concat([data] * 20).with_columns(id=pl.int_range(pl.len(), dtype=pl.Int64))
    src = _write(tmp_path / "in.parquet", big)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous")
    proc = subprocess.Popen(
        [
            sys.executable,
            *_SLOW_SAMPLE,
            "sample",
            src,
            "-o",
            str(out),
            "--label",
            "y",
            "--pilot",
            pilot_file,
            "--chunk-rows",
            "1",
            "--overwrite",
            "--quiet",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until the run holds its (anonymous) output file open in tmp_path.
        deadline = time.time() + 120
        fd_dir = f"/proc/{proc.pid}/fd"
        while time.time() < deadline:
            links = []
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    links.append(os.readlink(os.path.join(fd_dir, fd)))
            if any(str(tmp_path) in ln and "in.parquet" not in ln for ln in links):
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        else:
            pytest.fail("the run never opened its output")
        time.sleep(0.3)
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
    else:
        assert rc == 130
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "out.parquet"]


def test_api_accepts_numpy_integer_parameters(tmp_path, data, pilot_file):
    src = _write(tmp_path / "a.parquet", data)
    rep = pipeline.sample_parquet(
        src,
        tmp_path / "o.parquet",
        label="y",
        pilot=pilot_file,
        seed=np.int64(3),
        chunk_rows=np.int64(1000),
        progress=False,
    )
    assert rep.seed == 3


def test_arrow_schema_kept_for_odd_types(tmp_path, pilot_file, data):
    frame = data.with_columns(
        pl.col("ts").dt.replace_time_zone("UTC"),
        pl.col("position").cast(pl.UInt16),
        note=pl.lit("x"),
    )
    src = tmp_path / "a.parquet"
    pq.write_table(frame.to_arrow(), src)
    out = tmp_path / "o.parquet"
    pipeline.sample_parquet(src, out, label="y", pilot=pilot_file, progress=False)
    a = pq.read_schema(src).remove_metadata()
    b = pq.read_schema(out).remove_metadata()
    assert b.names[: len(a.names)] == a.names
    for f in a:
        assert b.field(f.name).type == f.type, f.name
    assert pa.types.is_float64(b.field("sampling_prob").type)
