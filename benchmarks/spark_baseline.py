"""The plain-PySpark baseline of the Spark benchmark (shared by bench_spark.py and the script).

What a Spark user would write by hand: the pilot's logit as a Spark SQL expression,
``a0 = clip(kappa * sigmoid(logit), floor, 1)``, and a filter on ``rand(seed)`` (seeded per
partition, so its sample changes with the partitioning — the property fastsample adds).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sql_baseline(
    df: Any,
    *,
    label: str,
    features: list[str],
    coef: np.ndarray,
    intercept: float,
    kappa: float,
    floor: float,
    seed: int,
) -> Any:
    """Proportional negative sampling in plain Spark SQL expressions, kept by ``rand(seed)``."""
    from pyspark.sql import functions as F

    logit = F.lit(float(intercept))
    for name, c in zip(features, coef, strict=True):
        logit = logit + F.lit(float(c)) * F.col(name).cast("double")
    p = F.lit(1.0) / (F.lit(1.0) + F.exp(-logit))
    a0 = F.least(F.lit(1.0), F.greatest(F.lit(float(floor)), F.lit(float(kappa)) * p))
    positive = F.col(label) == 1
    prob = F.when(positive, F.lit(1.0)).otherwise(a0)
    return (
        df.withColumn("__a0", a0)
        .filter(positive | (F.rand(seed) < F.col("__a0")))
        .withColumn("sampling_prob", F.when(positive, F.lit(1.0)).otherwise(F.col("__a0")))
        .withColumn("sample_weight", F.lit(1.0) / prob)
        .withColumn("log_odds_offset", -F.log(F.col("__a0")))
        .drop("__a0")
    )
