"""Start-up of ``fastsample sample`` on a tiny file, against the bare heavy imports.

Whole processes, interleaved: ``python -c "import pyarrow.parquet, numba"`` (the floor the
issue measures against) and ``fastsample sample`` with a saved linear pilot on a 1,000-row
file, for each checkout given (``PYTHONPATH``). Prints medians and the difference to the floor,
of wall time and of CPU time (user + system of the child): on a shared machine the load
stretches wall time, while CPU time shows the work a start-up does.

    python scripts/bench_startup.py SMALL.parquet PILOT.joblib /path/to/checkout [...]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    small, pilot, *checkouts = sys.argv[1:]
    repeats = int(os.environ.get("REPEATS", "7"))
    out = os.path.join(tempfile.mkdtemp(), "o.parquet")
    runs: dict[str, list[tuple[float, float]]] = {"import pyarrow.parquet, numba": []}
    base_env = dict(os.environ)
    for _ in range(repeats):
        runs["import pyarrow.parquet, numba"].append(
            _time([sys.executable, "-c", "import pyarrow.parquet, numba"], base_env)
        )
        for co in checkouts:
            env = {**base_env, "PYTHONPATH": co}
            cmd = [sys.executable, "-m", "fastsample", "sample", small, "-o", out, "--label", "y"]
            cmd += ["--pilot", pilot, "--rate", "0.1", "--overwrite", "--quiet"]
            runs.setdefault(co, []).append(_time(cmd, env))
    base = runs["import pyarrow.parquet, numba"]
    floor = statistics.median(w for w, _ in base)
    cpu_floor = statistics.median(c for _, c in base)
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {repeats} interleaved runs")
    for name, ts in runs.items():
        wall = statistics.median(w for w, _ in ts)
        cpu = statistics.median(c for _, c in ts)
        print(
            f"  {name}: wall {wall:.3f} s (+{wall - floor:.3f} s over the import floor), "
            f"cpu {cpu:.3f} s (+{cpu - cpu_floor:.3f} s)"
        )


if __name__ == "__main__":
    main()
