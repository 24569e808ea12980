"""Start-up of ``fastsample sample`` on a tiny file, against the bare heavy imports.

Whole processes, interleaved: ``python -c "import pyarrow.parquet, numba"`` (the floor the
issue measures against) and ``fastsample sample`` with a saved linear pilot on a 1,000-row
file, for each checkout given (``PYTHONPATH``). Prints medians and the difference to the floor.

    python scripts/bench_startup.py SMALL.parquet PILOT.joblib /path/to/checkout [...]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    small, pilot, *checkouts = sys.argv[1:]
    repeats = int(os.environ.get("REPEATS", "7"))
    out = os.path.join(tempfile.mkdtemp(), "o.parquet")
    runs: dict[str, list[float]] = {"import pyarrow.parquet, numba": []}
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
    floor = statistics.median(runs["import pyarrow.parquet, numba"])
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {repeats} interleaved runs")
    for name, ts in runs.items():
        med = statistics.median(ts)
        print(f"  {name}: {med:.3f} s (+{med - floor:.3f} s over the import floor)")


if __name__ == "__main__":
    main()
