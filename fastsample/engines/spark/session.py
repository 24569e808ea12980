"""Spark sessions, driver-side checks and the Python workers' environment.

pyspark is an optional dependency (``pip install '.[spark]'``) imported lazily.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from fastsample.core.optional import require
from fastsample.core.pilot import as_pilot
from fastsample.core.validation import label_error
from fastsample.errors import FastsampleError, InputError


def _pyspark() -> Any:
    return require("pyspark.sql", "spark")


def spark_types() -> Any:
    """``pyspark.sql.types`` (an install hint when pyspark is missing)."""
    return require("pyspark.sql.types", "spark")


def local_session(cores: int = 2, *, app_name: str = "fastsample", **conf: str) -> Any:
    """A local-mode SparkSession set up for fastsample (tests, benchmarks, trying it out).

    Python workers run this interpreter (``PYSPARK_PYTHON``), so the Numba kernels and their
    on-disk cache are the driver's; the UI is off and shuffles use few partitions.

    Parameters
    ----------
    cores : int
        Worker threads (``local[cores]``).
    app_name : str
        Spark application name.
    **conf : str
        Extra Spark settings, e.g. ``**{"spark.driver.memory": "2g"}``.
    """
    sql = _pyspark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        sql.SparkSession.builder.master(f"local[{int(cores)}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(1, int(cores))))
        .config("spark.sql.adaptive.enabled", "false")
    )
    for name, value in conf.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


# --- validation on the driver -----------------------------------------------------------


def key_names(key: Any) -> list[str]:
    if key is None:
        raise InputError(
            "Spark needs a key column (key=...): without one the local engine keys rows by "
            "their global row index, which Spark cannot reproduce across partitionings"
        )
    names = [key] if isinstance(key, str) else list(key)
    if not names or not all(isinstance(k, str) for k in names):
        raise InputError(f"key must be a column name or a list of names, got {key!r}")
    return names


def check_columns(df: Any, label: str, features: Sequence[str], keys: Sequence[str]) -> None:
    """Driver-side checks of names and types, so most bad input fails before any job runs."""
    types = spark_types()
    fields = {f.name: f.dataType for f in df.schema.fields}
    numeric = (types.NumericType, types.BooleanType)
    if label not in fields:
        raise InputError(f"label column {label!r} not found in the Spark DataFrame")
    if not isinstance(fields[label], numeric):
        raise label_error(label, f"type {fields[label].simpleString()}")
    for f in features:
        if f not in fields:
            raise InputError(f"feature column {f!r} not found in the Spark DataFrame")
        if not isinstance(fields[f], numeric) or isinstance(fields[f], types.DecimalType):
            raise InputError(f"feature column {f!r} is not numeric ({fields[f].simpleString()})")
    for k in keys:
        if k not in fields:
            raise InputError(f"key column {k!r} not found in the Spark DataFrame")
        t = fields[k]
        if isinstance(t, (types.FloatType, types.DoubleType, types.DecimalType)):
            raise InputError(
                f"key column {k!r} has floating-point type {t.simpleString()}; use an integer or string key"
            )
        allowed = (
            types.IntegralType,
            types.BooleanType,
            types.StringType,
            types.BinaryType,
            types.DateType,
            types.TimestampType,
            types.TimestampNTZType,
        )
        if not isinstance(t, allowed):
            raise InputError(f"key column {k!r} has unsupported type {t.simpleString()}")


def resolve_pilot(pilot: Any, features: Sequence[str] | None, strategy: str) -> Any:
    if pilot is None:
        if strategy != "uniform":
            raise InputError(f"strategy {strategy!r} needs a pilot")
        return None
    return as_pilot(pilot, list(features) if features is not None else None)


def broadcast(df: Any, value: Any) -> Any:
    """A broadcast handle for ``value`` (plain value under Spark Connect, which has none)."""
    try:
        sc = df.sparkSession.sparkContext
    except Exception:  # Spark Connect: the closure carries the value
        return _Plain(value)
    return sc.broadcast(value)


class _Plain:
    def __init__(self, value: Any) -> None:
        self.value = value


# Spark application ids whose Python workers were found to import fastsample.
_WORKERS_OK: set[str] = set()


def _probe(_: Any) -> tuple[str, str | None]:
    import sys as worker_sys  # lazy: runs on a Spark worker

    try:
        import fastsample.engines.batch  # noqa: F401  (the kernels the workers will run)
    except Exception as exc:  # ModuleNotFoundError for fastsample or one of its dependencies
        return worker_sys.executable, f"{type(exc).__name__}: {exc}"
    return worker_sys.executable, None


# Pickled by value (as if defined in a script): a probe pickled by reference to this module
# would fail to unpickle on exactly the workers it is meant to diagnose.
_probe.__module__ = "__main__"


def check_workers(df: Any) -> None:
    """One line saying how to fix it when Spark's Python workers cannot import fastsample.

    The ``mapInArrow`` path runs fastsample's kernels on the executors. One tiny job (once
    per Spark application) asks a worker whether it can import fastsample, so a virtual
    environment that the workers do not use fails here, before the sampling job, instead of
    with ``ModuleNotFoundError`` under a Java stack trace. Spark Connect sessions are not
    probed.
    """
    try:
        sc = df.sparkSession.sparkContext
    except Exception:  # Spark Connect: no SparkContext to probe with
        return
    app = str(sc.applicationId)
    if app in _WORKERS_OK:
        return
    python, error = sc.parallelize([0], 1).map(_probe).collect()[0]
    if error is not None:
        raise FastsampleError(
            f"Spark's Python workers ({python}) cannot import fastsample ({error}): set "
            f"PYSPARK_PYTHON (or spark.pyspark.python) to an interpreter that has it, e.g. "
            f"{sys.executable}, or ship an environment with spark-submit --archives "
            "env.tar.gz#env (spark.archives) or --py-files; a linear pilot or none needs no "
            "fastsample on the workers (sample_spark's native path)"
        )
    _WORKERS_OK.add(app)
