"""The sampling engine on Apache Spark: the local engine's sample, whatever the partitioning.

A row's fate depends only on its key, the seed and its pilot score, so the
sample does not change with the number of partitions, the batch size or the order of the rows
— unlike Spark's own ``sample``/``rand``, which are seeded per partition.

Modules: :mod:`~fastsample.engines.spark.native` (the keep/drop decision as Spark SQL
expressions; :mod:`~fastsample.engines.spark.limbs` is the keyed hash, whose wrapping arithmetic never
raises under ANSI mode),
:mod:`~fastsample.engines.spark.arrow` (the kernels inside ``mapInArrow``),
:mod:`~fastsample.engines.spark.exact` (kappa), :mod:`~fastsample.engines.spark.pilot`,
:mod:`~fastsample.engines.spark.session` (sessions, checks, the workers' environment).

pyspark is an optional dependency (``pip install '.[spark]'``) imported lazily.
"""

from fastsample.engines.spark.exact import plan_spark
from fastsample.engines.spark.pilot import train_pilot_spark
from fastsample.engines.spark.sample import sample_spark, spark_path
from fastsample.engines.spark.session import local_session

__all__ = ["local_session", "plan_spark", "sample_spark", "spark_path", "train_pilot_spark"]
