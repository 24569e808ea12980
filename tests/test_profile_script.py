"""scripts/profile_engine.py: its reading of ``perf report`` (perf itself is not run here)."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "profile_engine.py"


def _module():
    spec = importlib.util.spec_from_file_location("profile_engine", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REPORT = """
    30.00%  libpython3.11.so.1.0  [.] _PyEval_EvalFrameDefault
    20.00%  _polars_runtime.abi3.so  [.] ZSTD_decompressSequences_default
    15.00%  [unknown]  [.] 0x00007f3a2c001234
     5.00%  [kernel.kallsyms]  [k] clear_page_erms
     4.00%  libfoo.so  [.] foo
"""


def test_stages_by_library_and_zstd_by_symbol():
    shares, syms = _module().parse_report(REPORT)
    assert shares == {
        "Python interpreter (glue, imports)": 30.0,
        "zstd (de)compression": 20.0,  # inside Polars' library, still zstd
        "Numba kernels (JIT code)": 15.0,
        "kernel (page faults, file reads)": 5.0,  # "[k]": time the process spent in the kernel
        "other": 4.0,
    }
    assert syms[0] == (30.0, "_PyEval_EvalFrameDefault (libpython3.11.so.1.0)")


def test_table_gives_cpu_seconds_per_stage():
    mod = _module()
    shares, syms = mod.parse_report(REPORT)
    text = mod.table({"run": (2.0, shares, syms)})
    assert "| Python interpreter (glue, imports) | 30% (0.60 s) |" in text
    assert "| CPU seconds (samples / 499 Hz) | 2.00 |" in text


def test_docstring_examples():
    assert doctest.testmod(_module()).failed == 0
