"""The native Spark path (SQL expressions only) keeps the local engine's rows on 1M rows.

Integer, string and composite keys; one, three and seven partitions, shuffled; Spark's ANSI
mode on (64-bit overflow raises, so the hash must never overflow); no Python worker in the
executed plan. One SparkSession and one cached 1M-row DataFrame for the module.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
from test_spark import _assert_same, _to_polars
from test_spark import spark as spark_session  # noqa: F401  (fixture, under this name)

from fastsample.core.pilot_fit import fit_pilot
from fastsample.engines.memory import sample_frame

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]

N = 1_000_000
FEATURES = ["f0", "f1", "f2", "f3"]
KEYS = {"integer": "id", "string": "sid", "composite": ["sid", "id"]}


@pytest.fixture(scope="module")
def spark(spark_session):  # noqa: F811  (the imported fixture)
    """test_spark's session with ANSI mode set explicitly (Spark 4's default): 64-bit
    overflow raises."""
    spark_session.conf.set("spark.sql.ansi.enabled", "true")
    return spark_session


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    rng = np.random.default_rng(2026)
    X = rng.normal(size=(N, len(FEATURES)))
    logit = -4.0 + X @ np.array([1.0, -0.6, 0.8, 0.3])
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
    # spread over the whole int64 range, negative values included, in shuffled order
    ids = rng.permutation(np.arange(N, dtype=np.int64) - N // 2) * np.int64(9_223_372_036_851)
    # one or two eight-byte words, multi-byte UTF-8 in a third of them
    small = rng.permutation(N)
    sids = [f"u{k}" if k % 3 else f"ü-{k}-{k % 97}" for k in small]
    return pl.DataFrame(
        {
            "id": ids,
            "sid": sids,
            "f0": X[:, 0].astype(np.float32),
            "f1": X[:, 1],
            "f2": X[:, 2].astype(np.float32),
            "f3": X[:, 3],
            "y": y,
        }
    )


@pytest.fixture(scope="module")
def pilot(data):
    return fit_pilot(data, data["y"].to_numpy(), features=FEATURES, seed=5, label="y")


@pytest.fixture(scope="module")
def sdf(spark, data):
    df = spark.createDataFrame(data.to_arrow()).cache()
    df.count()
    return df


def _cases(sdf, data, kind):
    """(name, Spark partitioning, the same rows locally). Integer and string keys: all 1M
    rows, 1, 3 and 7 partitions (shuffled) for integers, 7 shuffled for strings (hashed
    natively ~10x slower); then string and composite keys on a fifth of the rows."""
    from pyspark.sql import functions as F

    if kind != "composite":
        yield "7 partitions, shuffled", sdf.repartition(7).orderBy(F.rand(3)), data
    if kind != "integer":
        sdf, data = sdf.filter("id % 5 = 0"), data.filter(pl.col("id") % 5 == 0)
    yield "1 partition", sdf.coalesce(1), data
    yield "3 partitions", sdf.repartition(3), data
    if kind == "composite":
        yield "7 partitions, shuffled", sdf.repartition(7).orderBy(F.rand(3)), data


@pytest.mark.parametrize("kind", list(KEYS))
def test_native_keeps_the_local_rows(spark, sdf, data, pilot, kind):
    """Same kept rows as sample_frame, probabilities and offsets within 1e-15 relative."""
    from fastsample.engines.spark import sample_spark
    from fastsample.engines.spark.native import python_in_plan

    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    key = KEYS[kind]
    for name, part, rows in _cases(sdf, data, kind):
        local, info = sample_frame(
            rows, label="y", pilot=pilot, rate=0.05, seed=11, key=key, return_info=True
        )
        # a real sample: all positives and a small fraction of the negatives
        assert info["rows_out"] < 0.1 * rows.height
        out = sample_spark(part, label="y", pilot=pilot, key=key, plan=info["plan"], path="native")
        remote = _to_polars(out)
        assert remote.height == info["rows_out"], name
        _assert_same(local, remote)
        assert python_in_plan(out) == [], name


@pytest.mark.parametrize("strategy", ["uniform", "lcc", "opt-l"])
def test_native_strategies_keep_the_local_rows(spark, sdf, data, pilot, strategy):
    from fastsample.engines.spark import sample_spark

    sub = data.filter(pl.col("id") % 5 == 0)
    local, info = sample_frame(
        sub,
        label="y",
        pilot=pilot,
        strategy=strategy,
        rate=0.1,
        seed=4,
        key="id",
        return_info=True,
    )
    out = sample_spark(
        sdf.filter("id % 5 = 0").repartition(3),
        label="y",
        pilot=pilot,
        key="id",
        plan=info["plan"],
        path="native",
    )
    _assert_same(local, _to_polars(out), exact=strategy == "uniform")


def test_python_in_plan_sees_the_arrow_path(sdf, pilot):
    """The plan check is not vacuous: the mapInArrow path shows its Python operator."""
    from fastsample.engines.spark import sample_spark
    from fastsample.engines.spark.native import python_in_plan

    out = sample_spark(sdf.limit(1000), label="y", pilot=pilot, key="id", rate=0.5, path="arrow")
    out.collect()
    assert python_in_plan(out)


def test_auto_runs_native_for_integer_keys_and_says_so(sdf, pilot, caplog):
    from fastsample.engines.spark import sample_spark, spark_path
    from fastsample.engines.spark.native import python_in_plan

    assert spark_path(sdf, pilot=pilot, key="id") == ("native", None)
    assert spark_path(sdf, pilot=None, key="id", strategy="uniform") == ("native", None)
    route, why = spark_path(sdf, pilot=pilot, key="sid")
    assert route == "arrow" and "sid" in why
    with caplog.at_level(logging.INFO, logger="fastsample.spark"):
        out = sample_spark(sdf, label="y", pilot=pilot, key="id", rate=0.05, seed=1)
    assert "native Spark SQL path" in caplog.text
    assert python_in_plan(out) == []


def test_native_reports_a_bad_feature_by_name(spark, pilot):
    from fastsample.engines.spark import sample_spark

    rows = [(1, 0.0, 1.0, 2.0, 3.0, 0), (2, 0.5, float("nan"), 1.0, 1.0, 1)]
    bad = spark.createDataFrame(rows, ["id", *FEATURES, "y"])
    with pytest.raises(Exception, match="feature column 'f1' contains null, NaN or infinite"):
        sample_spark(bad, label="y", pilot=pilot, key="id", rate=0.5, path="native").collect()


def _generated_code(spark, sdf) -> str:
    """The whole-stage generated Java of ``sdf``'s executed plan (``explain("codegen")``)."""
    utils = spark._jvm.org.apache.spark.sql.api.python.PythonSQLUtils
    return str(utils.explainString(sdf._jdf.queryExecution(), "codegen"))


def test_native_hash_wraps_per_expression_and_the_session_stays_ansi(spark, sdf, pilot, caplog):
    """splitmix64 in plain long arithmetic (no checked calls in the generated code), while an
    overflowing ``*`` written by the user in the same query still raises."""
    from pyspark.sql import functions as F

    from fastsample.core import kernels as K
    from fastsample.engines.spark import limbs, sample_spark

    with caplog.at_level(logging.INFO, logger="fastsample.spark"):
        out = sample_spark(sdf, label="y", pilot=pilot, key="id", rate=0.05, seed=1)
    assert "hash in wrapping long arithmetic" in caplog.text
    code = _generated_code(spark, out)
    # not vacuous: the hash's constants are in the generated code, as plain long products
    mix1 = limbs.signed(int(K.MIX1))
    assert f"* {mix1}L" in code or f"* ({mix1}L)" in code, code[:2000]
    assert "multiplyExact" not in code and "addExact" not in code
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    boom = out.select((F.col("id") * F.lit(1 << 40)).alias("boom"))
    with pytest.raises(Exception, match="ARITHMETIC_OVERFLOW"):
        boom.collect()


def test_overflow_free_halves_keep_the_local_rows(spark, sdf, data, pilot, monkeypatch):
    """The fallback of sessions without a py4j gateway (Spark Connect): same rows, checked
    arithmetic that never overflows."""
    from fastsample.engines.spark import limbs, sample_spark
    from fastsample.engines.spark import sample as spark_sample

    assert isinstance(limbs.arithmetic(spark), limbs.Wrapping)
    assert isinstance(limbs.arithmetic(object()), limbs.Halves)  # no _jvm, as under Connect
    monkeypatch.setattr(spark_sample, "arithmetic", lambda session: limbs.Halves())
    rows = data.filter(pl.col("id") % 5 == 0)
    for key in ("id", ["sid", "id"]):
        local, info = sample_frame(
            rows, label="y", pilot=pilot, rate=0.05, seed=11, key=key, return_info=True
        )
        out = sample_spark(
            sdf.filter("id % 5 = 0").repartition(3),
            label="y",
            pilot=pilot,
            key=key,
            plan=info["plan"],
            path="native",
        )
        _assert_same(local, _to_polars(out))
        assert "multiplyExact" in _generated_code(spark, out)


def test_without_lateral_aliases_the_bound_columns_are_chained(spark, sdf, data, pilot):
    """A session with lateral column aliases off gets one projection per bound step: same rows."""
    from fastsample.engines.spark import sample_spark
    from fastsample.engines.spark.limbs import LATERAL_ALIAS

    rows = data.filter(pl.col("id") % 25 == 0)
    local, info = sample_frame(
        rows, label="y", pilot=pilot, rate=0.05, seed=3, key="id", return_info=True
    )
    spark.conf.set(LATERAL_ALIAS, "false")
    try:
        out = sample_spark(
            sdf.filter("id % 25 = 0"), label="y", pilot=pilot, key="id", plan=info["plan"]
        )
        remote = _to_polars(out)
    finally:
        spark.conf.unset(LATERAL_ALIAS)
    _assert_same(local, remote)
