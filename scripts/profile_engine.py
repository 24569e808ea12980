"""Where the CPU of a whole run goes, by library: ``perf`` around ``fastsample sample`` and its floors.

Runs, under ``perf record`` (sampling every thread of the process, the C++ thread pools of
Arrow and Polars included, which a Python-level profiler does not see), on one generated log:
Polars' streaming decode of every column (the floor of issue 12), ``fastsample sample`` with a
saved linear pilot, and ``fastsample sample --strategy uniform``. For each it prints the CPU
seconds (``perf``'s task clock) and the share of samples by shared object, grouped into the
stages they stand for, plus the hottest symbols; ``--readme`` also writes that table into
``benchmarks/README.md`` between the ``profile`` markers.

    python scripts/profile_engine.py --rows 8000000 [--workdir DIR] [--readme]

Needs ``perf`` (Linux; ``kernel.perf_event_paranoid`` <= 2 profiles one's own processes).
Numba's compiled kernels live in anonymous executable memory, so ``perf`` reports them as
``[unknown]`` or ``[JIT]``; other anonymous code (ctypes/cffi trampolines) lands there too, but it is a
small part of any run here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

# The benchmark's own floor: decode every column, keep one value per column (nothing held).
from fastsample.harness.bench import _POLARS_DECODE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "benchmarks", "README.md")
START, END = "<!-- profile:start -->", "<!-- profile:end -->"

#: Shared objects (by a substring of their file name) and the stage they stand for.
STAGES = [
    ("[kernel.kallsyms]", "kernel (page faults, file reads)"),
    ("libparquet", "Parquet (pyarrow: decode, encode)"),
    ("libarrow", "Arrow (pyarrow: buffers, compute, take)"),
    ("libzstd", "zstd (de)compression"),
    ("polars", "Polars"),
    ("[unknown]", "Numba kernels (JIT code)"),
    ("[JIT]", "Numba kernels (JIT code)"),
    ("openblas", "OpenBLAS (NumPy's BLAS threads)"),
    ("libllvmlite", "LLVM (Numba's loader)"),
    ("libpython", "Python interpreter (glue, imports)"),
    ("libc.so", "libc (memcpy, malloc)"),
    ("libm.so", "libm (exp, log)"),
    ("libgomp", "OpenMP runtime"),
    ("libtbb", "TBB runtime"),
    ("numba", "Numba runtime"),
]


#: zstd is linked into both pyarrow and Polars: its symbols are their own stage.
ZSTD_SYMBOLS = ("ZSTD_", "HUF_", "FSE_", "ZSTDMT_")


def stage_of(dso: str, sym: str) -> str:
    if sym.startswith(ZSTD_SYMBOLS):
        return "zstd (de)compression"
    for needle, stage in STAGES:
        if needle in dso:
            return stage
    return "other"


def parse_report(text: str) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """Shares by stage and the eight hottest symbols of ``perf report --sort dso,sym`` output.

    Examples
    --------
    >>> parse_report("  12.50%  libarrow.so.2600  [.] HUF_decompress4X1_usingDTable")[0]
    {'zstd (de)compression': 12.5}
    """
    shares: dict[str, float] = defaultdict(float)
    syms: list[tuple[float, str]] = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
        shares[stage_of(dso, sym)] += pct
        syms.append((pct, f"{sym} ({dso})"))
    return dict(shares), sorted(syms, reverse=True)[:8]


def _report(data: str, *args: str) -> str:
    """``perf report`` of ``data`` as quiet text, with ``args``."""
    cmd = ["perf", "report", "-i", data, "--stdio", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def perf_run(cmd: list[str], data: str) -> tuple[float, dict[str, float], list[tuple[float, str]]]:
    """CPU seconds, share by stage and the top symbols of ``cmd`` under ``perf record``."""
    stat = subprocess.run(
        ["perf", "record", "-F", "499", "-q", "-o", data, "--", *cmd],
        capture_output=True,
        text=True,
    )
    if stat.returncode != 0:
        raise SystemExit(f"perf record failed on {cmd[:4]}: {stat.stderr.strip()[-300:]}")
    rep = _report(data, "--no-children", "--sort", "dso,sym")
    # Samples are at 499 Hz per busy thread: their count over the rate is the CPU time.
    samples = _report(data, "--sort", "comm", "--show-nr-samples")
    total = sum(int(m.group(1)) for m in re.finditer(r"%\s+(\d+)\s", samples))
    shares, syms = parse_report(rep)
    return total / 499.0, shares, syms


def table(results: dict[str, tuple[float, dict[str, float], list[tuple[float, str]]]]) -> str:
    names = list(results)
    stages = sorted(
        {s for _, sh, _ in results.values() for s in sh},
        key=lambda s: -max(results[n][1].get(s, 0.0) for n in names),
    )
    lines = ["| stage (shared object) | " + " | ".join(names) + " |"]
    lines.append("| --- |" + " ---: |" * len(names))
    lines.append(
        "| CPU seconds (samples / 499 Hz) | "
        + " | ".join(f"{results[n][0]:.2f}" for n in names)
        + " |"
    )
    for s in stages:
        cells = []
        for n in names:
            cpu, sh, _ = results[n]
            pct = sh.get(s, 0.0)
            cells.append(f"{pct:.0f}% ({cpu * pct / 100:.2f} s)" if pct >= 0.5 else "")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    for n in names:
        top = "; ".join(f"{sym} {pct:.1f}%" for pct, sym in results[n][2][:5])
        lines.append(f"\nHottest symbols, {n}: {top}.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=8_000_000)
    ap.add_argument("--workdir", default=None, help="where the log and pilot are kept")
    ap.add_argument(
        "--readme", action="store_true", help="write the table into benchmarks/README.md"
    )
    args = ap.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (Debian: apt install linux-perf)")
    work = args.workdir or tempfile.mkdtemp(prefix="fastsample-profile-")
    os.makedirs(work, exist_ok=True)
    py = sys.executable
    fs = [py, "-m", "fastsample"]
    log = os.path.join(work, f"log-{args.rows}.parquet")
    pilot = os.path.join(work, "pilot.npz")
    out = os.path.join(work, "out.parquet")
    if not os.path.exists(log):
        subprocess.run([*fs, "generate", log, "--rows", str(args.rows), "--quiet"], check=True)
    if not os.path.exists(pilot):
        feats = ",".join(f"f{j}" for j in range(16))
        cmd = [*fs, "pilot", log, "-o", pilot, "--label", "y", "--features", feats, "--quiet"]
        subprocess.run(cmd, check=True)
    sample = [*fs, "sample", log, "-o", out, "--label", "y", "--rate", "0.05", "--overwrite"]
    runs = {
        "polars decode (all columns)": [py, "-c", _POLARS_DECODE, log],
        "fastsample sample (linear pilot)": [*sample, "--pilot", pilot, "--quiet"],
        "fastsample sample --strategy uniform": [*sample, "--strategy", "uniform", "--quiet"],
    }
    results = {}
    for name, cmd in runs.items():
        # A warm run first: the page cache holds the log, Numba's on-disk cache the kernels.
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        results[name] = perf_run(cmd, os.path.join(work, "perf.data"))
        print(f"{name}: {results[name][0]:.2f} CPU s", file=sys.stderr)
    load = os.getloadavg()[0]
    text = (
        f"`python scripts/profile_engine.py --rows {args.rows:,}` (perf record at 499 Hz, every"
        f" thread; load average {load:.1f} at the end). Shares of CPU samples by shared"
        " object:\n\n" + table(results)
    )
    print(text)
    if args.readme:
        with open(README, encoding="utf-8") as fh:
            doc = fh.read()
        if START not in doc:
            raise SystemExit(f"{README}: no {START} marker")
        pre, rest = doc.split(START, 1)
        post = rest.split(END, 1)[1]
        with open(README, "w", encoding="utf-8") as fh:
            fh.write(f"{pre}{START}\n{text}\n{END}{post}")


if __name__ == "__main__":
    main()
