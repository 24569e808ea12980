"""sample_spark against a plain PySpark pipeline computing the same probabilities.

The baseline (``spark_baseline.sql_baseline``) is what a Spark user would write by hand.
``scripts/bench_spark.py`` times both on a generated log and writes the README table;
here they run as smoke tests on small data (timing off by default).
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from typing import Any

import numpy as np
import pytest

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'fastsample[spark]')")

if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java: no java on PATH and no JAVA_HOME", allow_module_level=True)

from spark_baseline import sql_baseline  # noqa: E402  (benchmarks/ is on sys.path under pytest)


@pytest.fixture(scope="session")
def spark():
    from fastsample.engines.spark import local_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = local_session(2, **{"spark.driver.memory": "1g"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def setup(spark):
    import polars as pl

    from fastsample.core.pilot_fit import fit_pilot
    from fastsample.core.plan import plan_from_pilot
    from fastsample.harness.synthetic import click_log

    table = click_log(20_000, features=4, event_rate=0.05, seed=1)
    frame = pl.from_arrow(table)
    feats = [f"f{j}" for j in range(4)]
    pilot = fit_pilot(frame, frame["y"].to_numpy(), features=feats, seed=1, label="y")
    plan = plan_from_pilot(pilot, strategy="proportional", rate=0.1, seed=3)
    sdf = spark.createDataFrame(table.drop(["device", "ts"])).repartition(2).cache()
    sdf.count()
    return sdf, pilot, plan, feats


def _run(df: Any) -> None:
    df.write.format("noop").mode("overwrite").save()


def test_bench_sample_spark(benchmark, setup):
    from fastsample.engines.spark import sample_spark

    sdf, pilot, plan, _ = setup
    benchmark(_run, sample_spark(sdf, label="y", pilot=pilot, key="id", plan=plan))


def test_bench_sql_baseline(benchmark, setup):
    sdf, pilot, plan, feats = setup
    coef, intercept = pilot.linear
    from fastsample.core.strategies import effective_floor

    base = sql_baseline(
        sdf,
        label="y",
        features=feats,
        coef=coef,
        intercept=intercept,
        kappa=plan.kappa,
        floor=effective_floor(plan.floor),
        seed=3,
    )
    benchmark(_run, base)


def test_baseline_computes_the_same_probabilities(setup):
    """The baseline does the same work: equal a_y on rows both keep, similar kept counts."""
    from fastsample.core.strategies import effective_floor
    from fastsample.engines.spark import sample_spark

    sdf, pilot, plan, feats = setup
    coef, intercept = pilot.linear
    ours = sample_spark(sdf, label="y", pilot=pilot, key="id", plan=plan).select(
        "id", "y", "sampling_prob", "log_odds_offset"
    )
    base = sql_baseline(
        sdf,
        label="y",
        features=feats,
        coef=coef,
        intercept=intercept,
        kappa=plan.kappa,
        floor=effective_floor(plan.floor),
        seed=3,
    )
    both = ours.join(
        base.select("id", "sampling_prob", "log_odds_offset").withColumnsRenamed(
            {"sampling_prob": "p2", "log_odds_offset": "o2"}
        ),
        "id",
    ).toArrow()
    a, b = both.column("sampling_prob").to_numpy(), both.column("p2").to_numpy()
    # Same float64 arithmetic on the same float32 features, sigmoid computed differently:
    # agreement to a few ulps relative.
    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(
        both.column("log_odds_offset"), both.column("o2"), rtol=1e-9, atol=1e-12
    )
    n_ours, n_base = ours.count(), base.count()
    # Both keep every positive plus Bernoulli(a0) negatives with the same a0: the kept
    # counts differ by a difference of two independent sums, sd = sqrt(2 sum a0(1-a0)) <=
    # sqrt(2 E[kept negatives]); allow 5 sd.
    positives = sdf.filter("y = 1").count()
    expected_neg = plan.expected_negatives * (sdf.count() - positives) / pilot.n_negative
    assert abs(n_ours - n_base) < 5 * np.sqrt(2 * expected_neg)
