"""Module crossings per batch of ``fastsample sample`` (a profile hook over fastsample code).

A crossing is a call from a function of one fastsample module into a function of another
(Python-level calls only; Numba kernels count as calls into their module). The per-batch figure
is the difference between two runs of the same file with N and 2N batches, divided by N, so
the run's set-up (pilot, plan, writer) cancels out. Every thread is traced (the reader and
the writer threads included).

    python scripts/module_crossings.py            # prints crossings and modules per batch
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import fastsample

ROOT = str(Path(fastsample.__file__).resolve().parent)  # the package being measured


def _module(filename: str) -> str | None:
    if not filename.startswith(ROOT):
        return None
    rel = filename[len(ROOT) - len("fastsample") :].removesuffix(".py").replace("/", ".")
    return rel.removesuffix(".__init__")


def _traced(fn):  # type: ignore[no-untyped-def]
    crossings: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def hook(frame, event, arg):  # type: ignore[no-untyped-def]
        if event != "call":
            return
        callee = _module(frame.f_code.co_filename)
        if callee is None or frame.f_back is None:
            return
        caller = _module(frame.f_back.f_code.co_filename)
        if caller is not None and caller != callee:
            with lock:
                crossings[(caller, callee)] += 1

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return crossings


def main() -> None:
    import fastsample.harness.synthetic as syn
    from fastsample import fit_pilot, sample_parquet

    rows, chunk = 64_000, 2_000
    tmp = Path(tempfile.mkdtemp())
    table = syn.click_log(rows, features=4, event_rate=0.05, seed=1)
    import polars as pl
    import pyarrow.parquet as pq

    pq.write_table(table, tmp / "log.parquet")
    df = pl.from_arrow(table)
    feats = [c for c in df.columns if c.startswith("f")]
    pilot = fit_pilot(df, df["y"].to_numpy(), features=feats, seed=0, label="y")
    pilot_path = tmp / "pilot.joblib"
    pilot.save(pilot_path)

    def run(n_chunk: int, name: str, trace: bool = True) -> Counter[tuple[str, str]]:
        def go() -> None:
            sample_parquet(
                tmp / "log.parquet",
                tmp / name,
                label="y",
                pilot=pilot_path,
                rate=0.1,
                chunk_rows=n_chunk,
                progress=False,
            )

        if not trace:
            go()
            return Counter()
        return _traced(go)

    run(chunk, "warm.parquet", trace=False)  # compile and import outside the count
    a = run(2 * chunk, "a.parquet")  # N batches
    b = run(chunk, "b.parquet")  # 2N batches
    n = rows // (2 * chunk)
    print(f"total crossings: {sum(a.values())} ({n} batches), {sum(b.values())} ({2 * n})")
    per = {k: (b[k] - a[k]) / n for k in set(a) | set(b) if b[k] - a[k]}
    total = sum(per.values())
    modules = sorted({m for pair in per for m in pair})
    print(f"batches: {n} vs {2 * n}")
    print(f"module crossings per batch: {total:.1f} among {len(modules)} modules")
    for (src, dst), v in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {v:5.1f}  {src} -> {dst}")


if __name__ == "__main__":
    main()
