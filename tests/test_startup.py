"""Start-up of a small run: what a fresh interpreter loads and starts (issue 12, item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from fastsample.core.pilot_fit import fit_pilot
from fastsample.harness.synthetic import generate


def test_small_run_starts_no_thread_pool_and_loads_no_heavy_extras(tmp_path):
    src = tmp_path / "log.parquet"
    generate(src, rows=1_000, features=4, event_rate=0.05, seed=1)
    big = tmp_path / "train.parquet"
    generate(big, rows=40_000, features=4, event_rate=0.05, seed=2)
    import polars as pl

    frame = pl.read_parquet(big)
    feats = [f"f{j}" for j in range(4)]
    pilot = fit_pilot(frame, frame["y"].to_numpy(), features=feats, seed=3, label="y")
    assert pilot.reference_X is not None and pilot.reference_X.shape[0] > 65536 // 4
    path = pilot.save(tmp_path / "pilot.npz")
    code = textwrap.dedent(
        f"""
        import json, sys
        import numba.np.ufunc.parallel as par
        from fastsample.engines.parquet import sample_parquet
        rep = sample_parquet({str(src)!r}, {str(tmp_path / "o.parquet")!r}, label="y",
                             pilot={str(path)!r}, rate=0.2, progress=False)
        print(json.dumps({{
            "pool": bool(par._is_initialized),
            "extras": sorted(m for m in ("scipy.linalg", "sklearn", "pandas") if m in sys.modules),
            "rows": rep.rows_in,
        }}))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["rows"] == 1_000
    # Waking Numba's thread pool (and loading the parallel builds) costs more than a small
    # run's whole work: the plan runs serially and the pool is not resized for 1,000 rows.
    assert not got["pool"]
    assert got["extras"] == []
