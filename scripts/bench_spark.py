"""Time sample_spark in Spark local mode against a plain PySpark pipeline; write the README table.

Usage: .venv/bin/python scripts/bench_spark.py [--rows 4M] [--features 16] [--cores 2]
       [--repeats 3] [--dir DIR] [--no-readme]

Generates the synthetic click log once into --dir (default .benchmarks/spark/, git-ignored),
trains a linear pilot with the local engine, then, in one Spark session, runs each pipeline
once to warm up (JVM, Python workers, Numba cache) and --repeats times alternately, every run
building its DataFrame (``sample_spark``'s driver-side set-up is part of its cost, and the
plain query's is part of the baseline's), reading the same Parquet file and ending in Spark's
``noop`` sink (everything computed, nothing written). One row times the plain query built
once outside the runs, as this script did before. Reports the median wall time and rows/s.
Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
START, END = "<!-- spark-bench:start -->", "<!-- spark-bench:end -->"


def _count(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def _noop(df: Any) -> None:
    df.write.format("noop").mode("overwrite").save()


def _xxhash64_uniform(frame: Any, keys: list[str], seed: int) -> Any:
    """Route (b) of the keyed uniform: Spark's ``xxhash64`` seeded by chaining the seed first."""
    from pyspark.sql import functions as F

    bits = F.shiftrightunsigned(F.xxhash64(F.lit(seed), *[F.col(k) for k in keys]), 11)
    return frame.bind(bits.cast("double") * F.lit(2.0**-53))


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=_count, default=4_000_000)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default=os.path.join(ROOT, ".benchmarks", "spark"))
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    args = ap.parse_args()

    # One Spark task per core, each in its own Python worker: one Numba thread per worker.
    os.environ["NUMBA_NUM_THREADS"] = "1"
    os.environ["PYSPARK_PYTHON"] = sys.executable

    from pyspark.sql import functions as F
    from spark_baseline import sql_baseline

    from fastsample.core.strategies import effective_floor
    from fastsample.engines.spark import limbs, local_session, native, plan_spark, sample_spark
    from fastsample.engines.spark import sample as spark_sample
    from fastsample.engines.training import train_pilot
    from fastsample.harness.synthetic import generate

    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"clicks-{args.rows}x{args.features}.parquet")
    if not os.path.exists(path):
        generate(path, rows=args.rows, features=args.features, event_rate=0.01, seed=0)
    feats = [f"f{j}" for j in range(args.features)]
    pilot = train_pilot(path, label="y", features=feats, key="id", seed=1)
    coef, intercept = pilot.linear

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spark = local_session(args.cores, **{"spark.driver.memory": "4g"})
    spark.sparkContext.setLogLevel("ERROR")
    sdf = spark.read.parquet(path)
    plan = plan_spark(sdf, label="y", pilot=pilot, rate=args.rate, seed=7)
    batch_conf = "spark.sql.execution.arrow.maxRecordsPerBatch"

    def fastsample_run(batch: int | None, path: str = "arrow") -> Callable[[], None]:
        def run() -> None:
            if batch is not None:
                spark.conf.set(batch_conf, str(batch))
            try:
                _noop(sample_spark(sdf, label="y", pilot=pilot, key="id", plan=plan, path=path))
            finally:
                spark.conf.unset(batch_conf)

        return run

    def native_run(data: Any, key: str, hash_route: str) -> Callable[[], None]:
        """The native path; ``hash_route="halves"`` forces the overflow-free arithmetic of Spark
        Connect sessions, ``"xxhash64"`` swaps in Spark's own hash (route b)."""

        def run() -> None:
            saved = native.uniform_column, spark_sample.arithmetic
            if hash_route == "xxhash64":
                native.uniform_column = _xxhash64_uniform
            if hash_route == "halves":
                spark_sample.arithmetic = lambda session: limbs.Halves()
            try:
                _noop(sample_spark(data, label="y", pilot=pilot, key=key, plan=plan, path="native"))
            finally:
                native.uniform_column, spark_sample.arithmetic = saved

        return run

    keyed = sdf.withColumn("sid", F.concat(F.lit("user-"), F.col("id").cast("string")))

    def baseline() -> Any:
        return sql_baseline(
            sdf,
            label="y",
            features=feats,
            coef=coef,
            intercept=intercept,
            kappa=plan.kappa,
            floor=effective_floor(plan.floor),
            seed=7,
        )

    prebuilt = baseline()
    pipelines: dict[str, Callable[[], None]] = {
        "Spark Parquet scan only (noop sink; the floor)": lambda: _noop(sdf),
        "plain PySpark: SQL expressions + `rand()` filter": lambda: _noop(baseline()),
        "plain PySpark, the query built once before the runs (not timed)": lambda: _noop(prebuilt),
        "`mapInArrow` identity (the Arrow round trip alone)": lambda: _noop(
            sdf.mapInArrow(lambda batches: batches, sdf.schema)
        ),
        "fastsample `sample_spark` native (splitmix64 in wrapping arithmetic; what `auto` runs)": (
            native_run(sdf, "id", "wrapping")
        ),
        "native, overflow-free 32-bit halves (the Spark Connect fallback)": native_run(
            sdf, "id", "halves"
        ),
        "native, Spark's `xxhash64` instead (hash route b, not adopted)": native_run(
            sdf, "id", "xxhash64"
        ),
        "native, string key `user-<id>` (splitmix64 per 8 bytes)": native_run(
            keyed, "sid", "wrapping"
        ),
        "`mapInArrow` path (Arrow batches of 10,000, Spark's default)": fastsample_run(None),
        "`mapInArrow` path, string key `user-<id>` (what `auto` runs)": lambda: _noop(
            sample_spark(keyed, label="y", pilot=pilot, key="sid", plan=plan, path="arrow")
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for name, run in pipelines.items():
        run()  # warm-up
        print(f"warmed up: {name}", flush=True)
    for r in range(args.repeats):
        for name, run in pipelines.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
        print(f"repeat {r + 1}/{args.repeats} done", flush=True)
    spark.stop()

    base_name = "plain PySpark: SQL expressions + `rand()` filter"
    base_rate = args.rows / statistics.median(times[base_name])
    lines = [
        f"Spark {spark.version} local[{args.cores}], {args.rows:,} rows x {args.features} float32 "
        f"features (synthetic click log, 1% positives, zstd Parquet), linear pilot, "
        f"`proportional`, rate {args.rate}; median of {args.repeats} alternating runs after a "
        f"warm-up, measured by `scripts/bench_spark.py --rows {args.rows:,}` on a shared 2-core "
        f"machine (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        "| pipeline | median s | rows/s | vs plain PySpark |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = args.rows / med
        lines.append(f"| {name} | {med:.2f} | {rate / 1e6:.2f} M | {rate / base_rate:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.no_readme:
        return 0
    readme = os.path.join(ROOT, "README.md")
    with open(readme, encoding="utf-8") as fh:
        text = fh.read()
    if START not in text or END not in text:
        print("README.md has no spark-bench markers; table not written", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    tmp = readme + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{head}{START}\n{table}\n{END}{tail}")
    os.replace(tmp, readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
