"""fastsample on Spark (local mode) gives the local engine's sample, row for row.

One SparkSession for the module (start-up dominates: ~10–25 s on this machine), small data,
several partitionings and Arrow batch sizes. Skipped only when pyspark or Java is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.plan import plan_from_pilot
from fastsample.engines.batch import draw_batch
from fastsample.engines.memory import sample_frame
from fastsample.errors import InputError

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'fastsample[spark]')")


def _java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None


if not _java_available():
    pytest.skip("Spark needs Java: no java on PATH and no JAVA_HOME", allow_module_level=True)

N = 6000
FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="session")
def spark():
    from fastsample.engines.spark import local_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark's "pandas >= 3 not fully supported" notice
        session = local_session(2, **{"spark.driver.memory": "1g"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    rng = np.random.default_rng(12)
    X = rng.normal(size=(N, 3))
    logit = -3.0 + X @ np.array([1.0, -0.5, 0.8])
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
    ids = rng.permutation(np.arange(-N // 2, N - N // 2, dtype=np.int64) * 7919)
    return pl.DataFrame(
        {
            "id": ids,
            "sid": [f"user-{i}-é" for i in ids],
            "f0": X[:, 0].astype(np.float32),
            "f1": X[:, 1].astype(np.float32),
            "f2": X[:, 2],
            "y": y,
            "note": [None if i % 5 == 0 else f"n{i}" for i in range(N)],
        }
    )


@pytest.fixture(scope="module")
def pilot(data):
    return fit_pilot(
        data,
        data["y"].to_numpy(),
        features=FEATURES,
        seed=3,
        keys=data["id"].to_numpy().view(np.uint64),
        label="y",
    )


@pytest.fixture(scope="module")
def sdf(spark, data):
    return spark.createDataFrame(data.to_arrow()).cache()


def _partitionings(sdf):
    from pyspark.sql import functions as F

    yield "1 partition", sdf.coalesce(1)
    yield "3 partitions", sdf.repartition(3)
    yield "7 partitions by key, shuffled", sdf.repartition(7, "sid").orderBy(F.rand(5))


def _sorted(frame: pl.DataFrame, by: str = "id") -> pl.DataFrame:
    return frame.sort(by)


def _to_polars(spark_df) -> pl.DataFrame:
    return pl.from_arrow(spark_df.toArrow())


def _assert_same(
    local: pl.DataFrame, remote: pl.DataFrame, by: str = "id", exact: bool = False
) -> None:
    """Same rows and input values; the three added columns bit for bit when ``exact``.

    Otherwise (the native path, whose ``exp``/``log`` are Spark's ``StrictMath``) within
    1e-15 relative: probabilities and weights, and offsets relative to ``max(1, |offset|)``.
    """
    a, b = _sorted(local, by), _sorted(remote, by)
    assert a.columns == b.columns
    assert a.height == b.height > 0
    assert a[by].to_list() == b[by].to_list()
    added = a.columns[-3:] if not exact else []
    for name in a.columns:
        if name not in added:
            assert a[name].cast(b[name].dtype).equals(b[name]), name
    for name in added[:2]:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-15, atol=0)
    if added:
        off_a, off_b = a[added[2]].to_numpy(), b[added[2]].to_numpy()
        assert np.all(np.abs(off_a - off_b) <= 1e-15 * np.maximum(1.0, np.abs(off_a)))


@pytest.mark.parametrize("path", ["arrow", "native"])
def test_same_plan_gives_sample_frame_rows_exactly(spark, sdf, data, pilot, path):
    """mapInArrow runs the kernels themselves: bit for bit; the native path within 1e-15."""
    from fastsample.engines.spark import sample_spark

    local, info = sample_frame(
        data, label="y", pilot=pilot, rate=0.2, seed=11, key="id", return_info=True
    )
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "517")
    try:
        for name, part in _partitionings(sdf):
            out = sample_spark(part, label="y", pilot=pilot, key="id", plan=info["plan"], path=path)
            remote = _to_polars(out)
            _assert_same(local, remote, exact=path == "arrow")
            assert remote.height == info["rows_out"], name
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")


@pytest.mark.parametrize("strategy", ["proportional", "opt-a", "lcc"])
def test_one_pass_matches_local_engine(sdf, data, pilot, strategy):
    """The default one-pass plan is the local engine's (same kappa), and so are the rows."""
    from fastsample.engines.spark import plan_spark, sample_spark

    plan = plan_from_pilot(pilot, strategy=strategy, rate=0.1, seed=4, floor=1e-3)
    assert (
        plan_spark(sdf, label="y", pilot=pilot, strategy=strategy, rate=0.1, seed=4, floor=1e-3)
        == plan
    )
    # The local engine: draw_batch over batches of any size, concatenated.
    local = pl.concat(
        [
            draw_batch(data.slice(s, 777), label="y", pilot=pilot, plan=plan, key="sid")
            for s in range(0, N, 777)
        ]
    )
    for _, part in _partitionings(sdf):
        remote = _to_polars(
            sample_spark(
                part,
                label="y",
                pilot=pilot,
                strategy=strategy,
                rate=0.1,
                seed=4,
                floor=1e-3,
                key="sid",
            )
        )
        _assert_same(local, remote)


def test_composite_key_and_input_types_kept(sdf, data, pilot):
    from fastsample.engines.spark import sample_spark

    out = sample_spark(sdf.repartition(4), label="y", pilot=pilot, rate=0.3, key=["sid", "id"])
    assert out.schema.fieldNames() == [
        *data.columns,
        "sampling_prob",
        "sample_weight",
        "log_odds_offset",
    ]
    assert [f.dataType for f in out.schema.fields[: len(data.columns)]] == [
        f.dataType for f in sdf.schema.fields
    ]
    plan = plan_from_pilot(pilot, strategy="proportional", rate=0.3, seed=0)
    local = draw_batch(data, label="y", pilot=pilot, plan=plan, key=["sid", "id"])
    _assert_same(local, _to_polars(out))


@pytest.mark.parametrize(
    ("rate", "floor"),
    # rate 0.6 and a floor: many scores clip at 1 or at the floor, so the thresholds cut
    # through histogram bins and the straddling scores must be collected.
    [(0.15, None), (0.15, 0.02), (0.6, 0.05)],
)
def test_exact_mode_kappa_equals_in_memory_solve(sdf, data, pilot, rate, floor):
    from fastsample.engines.spark import plan_spark, sample_spark

    frame, info = sample_frame(
        data, label="y", pilot=pilot, rate=rate, seed=2, key="id", floor=floor, return_info=True
    )
    local_plan = info["plan"]
    plan = plan_spark(
        sdf.repartition(3), label="y", pilot=pilot, rate=rate, seed=2, floor=floor, exact=True
    )
    assert plan.method == local_plan.method == "exact"
    # The same root of the same piecewise-linear equation; only the order of summation
    # differs (relative rounding ~1e-16 per term over ~6000 terms), so 1e-11 is loose.
    assert plan.kappa == pytest.approx(local_plan.kappa, rel=1e-11)
    assert plan.target_negatives == local_plan.target_negatives
    assert plan.expected_negatives == pytest.approx(plan.target_negatives, rel=1e-9)
    out = sample_spark(
        sdf, label="y", pilot=pilot, rate=rate, seed=2, floor=floor, key="id", exact=True
    )
    remote, frame = _sorted(_to_polars(out)), _sorted(frame)
    assert remote["id"].to_list() == frame["id"].to_list()
    for name in ("sampling_prob", "sample_weight", "log_odds_offset"):
        np.testing.assert_allclose(remote[name], frame[name], rtol=1e-11, atol=1e-14)


def test_exact_mode_refines_straddling_bins(sdf, data, pilot, monkeypatch):
    """With a tiny collection cap the straddling bins are split in a further Spark pass."""
    import fastsample.core.kappa as core_kappa
    import fastsample.engines.spark.exact as fs

    ref = fs.plan_spark(sdf, label="y", pilot=pilot, rate=0.6, seed=2, floor=0.05, exact=True)
    requests = []

    def counting(hist, target, floor, refine):
        def recorded(request):
            requests.append(request)
            return refine(request)

        return core_kappa.exact_kappa(hist, target, floor, recorded)

    monkeypatch.setattr(fs, "exact_kappa", counting)
    monkeypatch.setattr(core_kappa, "COLLECT_CAP", 3)
    fine = fs.plan_spark(sdf, label="y", pilot=pilot, rate=0.6, seed=2, floor=0.05, exact=True)
    assert any(r.split for r in requests)  # it did split bins on the executors
    assert fine.kappa == pytest.approx(ref.kappa, rel=1e-12)


def test_uniform_without_pilot(sdf, data):
    from fastsample.engines.spark import plan_spark, sample_spark

    local, info = sample_frame(
        data, label="y", strategy="uniform", rate=0.3, key="id", seed=9, return_info=True
    )
    for exact in (False, True):
        args = {"label": "y", "pilot": None, "strategy": "uniform", "rate": 0.3, "seed": 9}
        # h = 1 for every negative: kappa = rate * N0 / N0 on both sides, bit for bit.
        assert plan_spark(sdf, **args, exact=exact).kappa == info["plan"].kappa
        _assert_same(
            local, _to_polars(sample_spark(sdf, **args, key="id", exact=exact)), exact=True
        )


def test_boolean_label(sdf, data, pilot):
    from pyspark.sql import functions as F

    from fastsample.engines.spark import sample_spark

    flagged = sdf.withColumn("y", F.col("y") == 1)
    out = _to_polars(sample_spark(flagged, label="y", pilot=pilot, rate=0.2, key="id", seed=1))
    ref = _to_polars(sample_spark(sdf, label="y", pilot=pilot, rate=0.2, key="id", seed=1))
    assert out["y"].dtype == pl.Boolean
    _assert_same(ref.with_columns(pl.col("y") == 1), out)


def test_bad_input_is_refused_on_the_driver(sdf, pilot):
    from fastsample.engines.spark import sample_spark

    with pytest.raises(InputError, match="needs a key column"):
        sample_spark(sdf, label="y", pilot=pilot, key=None)
    with pytest.raises(InputError, match="'nope' not found"):
        sample_spark(sdf, label="nope", pilot=pilot, key="id")
    with pytest.raises(InputError, match="floating-point"):
        sample_spark(sdf, label="y", pilot=pilot, key="f2")
    with pytest.raises(InputError, match="'sampling_prob' already exists"):
        sample_spark(
            sdf.withColumnRenamed("note", "sampling_prob"), label="y", pilot=pilot, key="id"
        )
    with pytest.raises(InputError, match="feature column 'f1' not found"):
        sample_spark(sdf.drop("f1"), label="y", pilot=pilot, key="id")
    with pytest.raises(InputError, match="rate"):
        sample_spark(sdf, label="y", pilot=pilot, key="id", rate=1.5)


def test_bad_label_values_fail_the_job_with_the_message(spark, pilot):
    from fastsample.engines.spark import sample_spark

    bad = spark.createDataFrame(
        pa.table({"id": [1, 2], "f0": [0.1, 0.2], "f1": [0.0, 1.0], "f2": [1.0, 2.0], "y": [0, 2]})
    )
    with pytest.raises(Exception, match="must be 0 or 1, found value 2"):
        sample_spark(bad, label="y", pilot=pilot, key="id").collect()


# --- against the streaming Parquet engine ---------------------------------------------------


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("spark") / "log.parquet"
    data.write_parquet(path, row_group_size=1000)
    return path


@pytest.mark.parametrize("exact", [False, True])
def test_same_sample_as_sample_parquet(spark, tmp_path, parquet_file, pilot, exact):
    """Spark reading the same Parquet file gives sample_parquet's rows and columns."""
    from pyspark.sql import functions as F

    from fastsample.engines.parquet import sample_parquet
    from fastsample.engines.spark import plan_spark, sample_spark

    out = tmp_path / "local.parquet"
    args = {
        "label": "y",
        "pilot": pilot,
        "strategy": "opt-l",
        "rate": 0.2,
        "seed": 21,
        "key": "sid",
    }
    rep = sample_parquet(parquet_file, out, chunk_rows=999, exact=exact, progress=False, **args)
    local = pl.read_parquet(out)
    sdf = spark.read.parquet(str(parquet_file))
    plan = plan_spark(sdf, **{k: v for k, v in args.items() if k != "key"}, exact=exact)
    # one-pass: the same reference sample; exact: core.kappa's algorithm on both sides (exact
    # integer bin sums, sorted collected scores), so kappa is bit for bit whatever the order
    assert plan.kappa == rep.kappa
    for part in (sdf.repartition(2), sdf.repartition(5, "id").orderBy(F.rand(1))):
        assert plan_spark(part, **{k: v for k, v in args.items() if k != "key"}, exact=exact) == (
            plan
        )
        _assert_same(local, _to_polars(sample_spark(part, **args, exact=exact)))


def test_train_pilot_spark_is_train_pilot(spark, sdf, data, parquet_file):
    from fastsample.engines.spark import train_pilot_spark
    from fastsample.engines.training import train_pilot

    local = train_pilot(parquet_file, label="y", features=FEATURES, key="sid", seed=8)
    for part in (sdf.coalesce(1), sdf.repartition(4, "id")):
        remote = train_pilot_spark(part, label="y", features=FEATURES, key="sid", seed=8)
        assert remote.fingerprint == local.fingerprint
        assert remote.logit_shift == local.logit_shift
        assert (remote.n_positive, remote.n_negative) == (local.n_positive, local.n_negative)
        np.testing.assert_array_equal(remote.reference_X, local.reference_X)
        np.testing.assert_array_equal(remote.info_inv, local.info_inv)
    with pytest.raises(InputError, match="needs a key column"):
        train_pilot_spark(sdf, label="y", features=FEATURES, key=None)


def test_imbalance_report_spark_equals_local_report(spark, data):
    from fastsample.toolkit.report import imbalance_report
    from fastsample.toolkit.report_spark import imbalance_report_spark

    frame = data.with_columns((pl.col("id") % 3).alias("grp"), (pl.col("f2").abs()).alias("w"))
    sdf = spark.createDataFrame(frame.to_arrow()).repartition(3)
    for weight in (None, "w"):
        args = {
            "label": "y",
            "weight": weight,
            "by": "grp",
            "feature": "f0",
            "bins": [-1.0, 0.0, 0.5],
        }
        local = imbalance_report(frame, **args)
        remote = imbalance_report_spark(sdf, **args)
        assert remote.n_rows == local.n_rows == N
        assert remote.positives == pytest.approx(local.positives, rel=1e-12)
        assert remote.rows == pytest.approx(local.rows, rel=1e-12)
        assert remote.imbalance_ratio == pytest.approx(local.imbalance_ratio, rel=1e-12)
        for a, b in ((local.per_group, remote.per_group), (local.per_bin, remote.per_bin)):
            assert a.columns == b.columns
            assert a.to_dict(as_series=False).keys() == b.to_dict(as_series=False).keys()
            for name in a.columns:
                np.testing.assert_allclose(
                    b[name].cast(pl.Float64).to_numpy(),
                    a[name].cast(pl.Float64).to_numpy(),
                    rtol=1e-12,
                )
    approx = imbalance_report_spark(sdf, label="y", feature="f2", bins=4)
    assert approx.per_bin.height == 4 and approx.per_bin["n_rows"].sum() == N
    with pytest.raises(InputError, match="must be 0 or 1"):
        imbalance_report_spark(sdf.withColumn("y", sdf["y"] * 2), label="y")
