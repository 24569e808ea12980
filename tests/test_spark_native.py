"""The native Spark SQL path: no Python worker, the local engine's rows over a million rows.

One SparkSession (``local_session``) for the module, Spark 4's defaults (ANSI mode on, so a
64-bit overflow anywhere in the hash would fail the job). Probabilities agree to 1e-15
relative, not bit for bit: Spark's ``exp``/``log`` are ``StrictMath``'s (see
``fastsample.engines.spark.native``).
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import numpy as np
import polars as pl
import pytest

from fastsample.core.hashing import composite_keys, hash_keys, uniform_from_keys
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.plan import plan_from_pilot, plan_sampling
from fastsample.engines.batch import draw_batch
from fastsample.errors import FastsampleError, InputError

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install '.[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java: no java on PATH and no JAVA_HOME", allow_module_level=True)

N = 1_000_000
FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="module")
def spark():
    from fastsample.engines.spark import local_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = local_session(2, **{"spark.driver.memory": "2g"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N, 3))
    logit = -3.5 + X @ np.array([1.0, -0.5, 0.8])
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
    ids = rng.permutation(np.arange(-N // 2, N - N // 2, dtype=np.int64) * 1_000_003)
    return pl.DataFrame(
        {
            "id": ids,
            # lengths 0..23 bytes: empty, partial and several 8-byte words, non-ASCII
            "sid": pl.Series(ids % 7919).cast(pl.String).str.pad_start(3, "é")
            + pl.Series(["", "-x", "-user-account"] * (N // 3) + [""] * (N % 3)),
            "f0": X[:, 0].astype(np.float32),
            "f1": X[:, 1].astype(np.float32),
            "f2": X[:, 2],
            "y": y,
        }
    ).with_columns(pl.format("{}{}", pl.col("sid"), pl.col("id")).alias("sid"))


@pytest.fixture(scope="module")
def pilot(data):
    part = data.head(100_000)
    return fit_pilot(
        part,
        part["y"].to_numpy(),
        features=FEATURES,
        seed=3,
        keys=part["id"].to_numpy().view(np.uint64),
        label="y",
    )


@pytest.fixture(scope="module")
def sdf(spark, data):
    return spark.createDataFrame(data.to_arrow()).cache()


def _to_polars(spark_df) -> pl.DataFrame:
    return pl.from_arrow(spark_df.toArrow())


def assert_close_rows(local: pl.DataFrame, remote: pl.DataFrame, by: str = "id") -> None:
    """Same rows and input values; probabilities and offsets within 1e-15 (relative)."""
    a, b = local.sort(by), remote.sort(by)
    assert a.columns == b.columns
    assert a.height == b.height > 0
    assert a[by].equals(b[by])
    for name in a.columns[:-3]:
        assert a[name].cast(b[name].dtype).equals(b[name]), name
    for name in ("sampling_prob", "sample_weight"):
        np.testing.assert_allclose(b[name], a[name], rtol=1e-15, atol=0)
    off_a, off_b = a["log_odds_offset"].to_numpy(), b["log_odds_offset"].to_numpy()
    assert np.all(np.abs(off_a - off_b) <= 1e-15 * np.maximum(1.0, np.abs(off_a)))


def test_uniforms_are_the_hash_spec_bit_for_bit(spark, sdf, data):
    """Integer, string and composite keys: the limb arithmetic gives the kernels' uniforms."""
    from fastsample.engines.spark import limbs, native

    small = sdf.limit(300).cache()
    for keys in (["id"], ["sid"], ["sid", "id"]):
        # string keys are slow natively (sample_spark sends them to mapInArrow): 300 rows
        part, data_part = (sdf, data) if keys == ["id"] else (small, _to_polars(small))
        frame = limbs.Frame(part, "__fs_")
        u = native.uniform_column(frame, keys, seed=-7)
        got = _to_polars(frame.df.select("id", u.alias("u"))).sort("id")
        cols = [data_part[k] for k in keys]
        words = composite_keys(cols, keys) if len(keys) > 1 else None
        ref = uniform_from_keys(words if words is not None else cols[0], seed=-7)
        want = pl.DataFrame({"id": data_part["id"], "u": ref}).sort("id")
        assert got["u"].equals(want["u"]), keys


def test_string_key_edge_cases(spark):
    """Empty strings, exact multiples of 8 bytes, multi-byte UTF-8 and binary keys."""
    import pyarrow as pa

    from fastsample.engines.spark import limbs, native

    texts = ["", "a", "abcdefg", "abcdefgh", "abcdefghi", "é" * 8, "日本語のキー", "x" * 40]
    table = pa.table({"s": texts, "b": pa.array([t.encode() for t in texts], pa.binary())})
    for col in ("s", "b"):
        frame = limbs.Frame(spark.createDataFrame(table), "__fs_")
        u = native.uniform_column(frame, [col], seed=3)
        got = [r[0] for r in frame.df.select(u).collect()]
        want = uniform_from_keys(hash_keys(table.column(col)).view(np.int64), seed=3)
        assert got == want.tolist(), col


def _partitionings(sdf):
    from pyspark.sql import functions as F

    yield sdf.coalesce(1)
    yield sdf.repartition(3)
    yield sdf.repartition(7, "sid").orderBy(F.rand(5))


@pytest.mark.parametrize("strategy", ["proportional", "lcc", "opt-a", "opt-l", "uniform"])
def test_native_path_keeps_the_local_rows(sdf, data, pilot, strategy):
    """A million rows in 1, 3 and 7 partitions (shuffled) for proportional; 100k, 3 for the rest."""
    from fastsample.engines.spark import sample_spark
    from fastsample.engines.spark.native import python_in_plan

    plan = plan_from_pilot(pilot, strategy=strategy, rate=0.05, seed=4, floor=1e-3)
    if strategy != "proportional":  # the same expressions but the score: 100k rows suffice
        data = data.slice(0, 100_000)
        sdf = sdf.sparkSession.createDataFrame(data.to_arrow())
    local = draw_batch(data, label="y", pilot=pilot, plan=plan, key="id")
    parts = list(_partitionings(sdf)) if strategy == "proportional" else [sdf.repartition(3)]
    for part in parts:
        out = sample_spark(part, label="y", pilot=pilot, key="id", plan=plan, path="native")
        assert python_in_plan(out) == []
        assert_close_rows(local, _to_polars(out))


@pytest.mark.parametrize("key", ["sid", ["sid", "id"]])
def test_native_path_string_and_composite_keys(spark, data, pilot, key):
    """String keys run natively when asked (slowly: 300 rows here), with the local rows."""
    from fastsample.engines.spark import sample_spark, spark_path
    from fastsample.engines.spark.native import python_in_plan

    part = data.slice(0, 300)
    small = spark.createDataFrame(part.to_arrow())
    assert spark_path(small, pilot=pilot, key=key)[0] == "arrow"  # auto prefers the kernels
    plan = plan_from_pilot(pilot, strategy="lcc", rate=0.5, seed=4)
    local = draw_batch(part, label="y", pilot=pilot, plan=plan, key=key)
    out = sample_spark(
        small.repartition(3), label="y", pilot=pilot, key=key, plan=plan, path="native"
    )
    assert python_in_plan(out) == []
    assert_close_rows(local, _to_polars(out))


def test_uniform_without_pilot_is_bit_for_bit(sdf, data):
    from fastsample.engines.spark import sample_spark
    from fastsample.engines.spark.native import python_in_plan

    plan = plan_sampling(np.ones(1), strategy="uniform", rate=0.03, seed=9)
    local = draw_batch(data, label="y", pilot=None, plan=plan, key="id").sort("id")
    out = sample_spark(
        sdf.repartition(3), label="y", pilot=None, key="id", plan=plan, path="native"
    )
    assert python_in_plan(out) == []
    remote = _to_polars(out).sort("id")
    assert local.equals(remote.select(local.columns))


def test_plan_has_no_python_and_ansi_is_on(spark, sdf, pilot):
    from fastsample.engines.spark import sample_spark, spark_path
    from fastsample.engines.spark.native import python_in_plan

    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    assert spark_path(sdf, pilot=pilot, key="id")[0] == "arrow"  # measured faster, for now
    out = sample_spark(sdf, label="y", pilot=pilot, key="id", rate=0.1, path="native")
    assert python_in_plan(out) == []
    arrow = sample_spark(sdf, label="y", pilot=pilot, key="id", rate=0.1, path="arrow")
    assert python_in_plan(arrow)  # the check does see a Python worker when there is one


def test_non_linear_pilot_takes_the_arrow_path(spark, sdf, data, pilot):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from fastsample.engines.spark import sample_spark, spark_path

    part = data.head(20_000)
    hgb = fit_pilot(
        part,
        part["y"].to_numpy(),
        features=FEATURES,
        model=HistGradientBoostingClassifier(max_iter=5),
        seed=1,
        label="y",
    )
    path, why = spark_path(sdf, pilot=hgb, key="id")
    assert path == "arrow" and "not a linear model" in why
    with pytest.raises(InputError, match="native Spark path cannot run this sample"):
        sample_spark(sdf, label="y", pilot=hgb, key="id", path="native")


def test_bad_values_fail_the_native_job_with_one_line(spark):
    import pyarrow as pa

    from fastsample.engines.spark import sample_spark

    plan = plan_sampling(np.ones(1), strategy="uniform", rate=0.5, seed=1)
    cases = [
        ({"id": [1, 2], "y": [0, 2]}, "label column 'y' must be 0 or 1, found value 2"),
        ({"id": [1, None], "y": [0, 1]}, "key column 'id' has a null value"),
        ({"id": [1, 2], "y": [0, None]}, "label column 'y' must be 0 or 1, found null"),
    ]
    for columns, message in cases:
        df = spark.createDataFrame(pa.table(columns))
        with pytest.raises(Exception, match=message):
            sample_spark(df, label="y", pilot=None, key="id", plan=plan, path="native").collect()


def test_workers_without_fastsample_get_one_line(spark, sdf, pilot):
    """The mapInArrow path probes the workers first; the native path needs nothing there."""
    from fastsample.engines.spark import sample_spark, session

    sc = spark.sparkContext
    saved, saved_ok = sc.pythonExec, set(session._WORKERS_OK)
    bare = "/usr/bin/python3"  # the system interpreter: no numpy, no fastsample
    if not os.path.exists(bare) or os.path.realpath(bare) == os.path.realpath(sys.executable):
        pytest.skip("no system python3 without fastsample to play the misconfigured worker")
    try:
        sc.pythonExec = bare
        session._WORKERS_OK.clear()
        with pytest.raises(FastsampleError) as err:
            sample_spark(sdf, label="y", pilot=pilot, key="id", path="arrow")
        assert "PYSPARK_PYTHON" in str(err.value) and "\n" not in str(err.value)
        # the native path runs on those same workers: it starts no Python at all
        out = sample_spark(sdf.limit(5000), label="y", pilot=pilot, key="id", path="native")
        assert out.count() > 0
    finally:
        sc.pythonExec = saved
        session._WORKERS_OK.update(saved_ok)
