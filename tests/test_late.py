"""The uniform pass on Polars' engine (engines/late.py) writes what the streaming pass writes.

Every test runs :func:`sample_parquet` twice on the same input: once as the engine chooses (the
Polars query), once with :func:`fastsample.engines.late.late_pass` patched to refuse (the
streaming pass), and compares the outputs as tables, the three added columns byte for byte,
the metadata records and the reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastsample.engines.late as late
import fastsample.engines.stream as stream
from fastsample.engines.parquet import sample_parquet
from fastsample.engines.sources import resolve_source
from fastsample.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::fastsample.errors.FastsampleWarning")

ADDED = ["sampling_prob", "sample_weight", "log_odds_offset"]
VARYING = {"output", "seconds", "rows_per_second"}


def _table(n: int, seed: int, start: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    nulls = rng.random(n) < 0.05
    words = np.array(["alpha", "beta", "gamma", "delta"])[rng.integers(0, 4, n)]
    return pa.table(
        {
            "id": pa.array(np.arange(start, start + n), pa.int64()),
            "k32": pa.array(rng.integers(-(2**31), 2**31 - 1, n), pa.int32()),
            "u16": pa.array(rng.integers(0, 2**16, n), pa.uint16()),
            "flag": pa.array(rng.random(n) < 0.5),
            "f": pa.array(rng.normal(size=n).astype(np.float32), mask=nulls),
            "d": pa.array(rng.normal(size=n)),
            "s": pa.array(words.tolist(), mask=~nulls & (rng.random(n) < 0.1)),
            "cat": pa.array(words.tolist()).dictionary_encode(),
            "ts": pa.array(rng.integers(0, 2**40, n), pa.timestamp("us")),
            "day": pa.array(rng.integers(0, 20000, n).astype(np.int32), pa.date32()),
            "raw": pa.array([w.encode() for w in words], pa.binary()),
            "big": pa.array(words.tolist(), pa.large_string(), mask=nulls),
            "blob": pa.array([w.encode() for w in words], pa.large_binary()),
            "utc": pa.array(rng.integers(0, 2**40, n), pa.timestamp("ms", tz="UTC")),
            "nanos": pa.array(rng.integers(0, 2**60, n), pa.timestamp("ns")),
            "u64": pa.array(rng.integers(0, 2**63, n).astype(np.uint64) * 2, pa.uint64()),
            "y": pa.array((rng.random(n) < 0.1).astype(np.int8)),
        }
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("late")
    one = root / "one.parquet"
    pq.write_table(_table(9000, 1), one, row_group_size=2500)
    files = []
    for i, n in enumerate((3000, 4100, 2500)):
        path = root / f"part{i}.parquet"
        pq.write_table(_table(n, 10 + i, start=10_000 * i), path, row_group_size=1500)
        files.append(str(path))
    hive = root / "hive"
    for i, (year, region) in enumerate(
        [(2023, "eu"), (2023, "us"), (2024, "eu"), (2024, "__HIVE_DEFAULT_PARTITION__")]
    ):
        part = hive / f"year={year}" / f"region={region}"
        part.mkdir(parents=True)
        pq.write_table(_table(2000 + 300 * i, 20 + i, start=5000 * i), part / "data.parquet")
    return {"one": str(one), "files": files, "hive": str(hive), "root": root}


def _read(path: str) -> tuple[dict[str, pa.Table], Any]:
    """Every file of an output (one file or a dataset) as a table, and its metadata record."""
    if os.path.isdir(path):
        with open(os.path.join(path, "_fastsample.json")) as fh:
            record = json.load(fh)
        return {
            f["path"]: pq.read_table(os.path.join(path, f["path"])) for f in record["files"]
        }, record
    meta = pq.read_metadata(path).metadata[b"fastsample"]
    return {"": pq.read_table(path)}, json.loads(meta)


def _decoded(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary columns decoded to their values."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


def _both(source: Any, out: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[Any, Any]:
    """Run the Polars path (the streaming pass is made to fail) and then the streaming pass."""
    kw = {"label": "y", "strategy": "uniform", "rate": 0.2, "seed": 7, "chunk_rows": 1000, **kw}

    def no_stream(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the streaming pass ran")

    with monkeypatch.context() as m:
        m.setattr(stream, "stream_sample", no_stream)
        fast = sample_parquet(source, str(out) + ".late", progress=False, **kw)
    with monkeypatch.context() as m:
        m.setattr(late, "late_pass", lambda *a: False)
        slow = sample_parquet(source, str(out) + ".stream", progress=False, **kw)
    files_a, meta_a = _read(str(out) + ".late")
    files_b, meta_b = _read(str(out) + ".stream")
    assert list(files_a) == list(files_b)
    for name, a in files_a.items():
        b = files_b[name]
        assert a.schema.equals(b.schema, check_metadata=True)
        assert a.num_rows == b.num_rows > 0
        # Dictionary columns hold the same values; the order of a dictionary (an encoding
        # detail: Polars' categories vs the input file's) may differ, so they are compared
        # decoded. Every other column is compared as stored.
        assert _decoded(a).equals(_decoded(b)), name
        assert [c for c in a.column_names if not a.column(c).equals(b.column(c))] == [
            c for c in a.column_names if pa.types.is_dictionary(a.schema.field(c).type)
        ] or all(a.column(c).equals(b.column(c)) for c in a.column_names)
        for col in ADDED:
            got = a.column(col).to_numpy()
            assert got.tobytes() == b.column(col).to_numpy().tobytes()
    if "files" in meta_a:
        for entry in (*meta_a["files"], *meta_b["files"]):
            entry.pop("path")
    assert meta_a == meta_b
    da, db = fast.to_dict(), slow.to_dict()
    assert {k: v for k, v in da.items() if k not in VARYING} == {
        k: v for k, v in db.items() if k not in VARYING
    }
    return fast, slow


@pytest.mark.parametrize("key", [None, "id", "k32", "u16", "flag", ["k32", "id"]])
def test_one_file_keyed_and_keyless(
    inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: Any
) -> None:
    fast, _ = _both(inputs["one"], tmp_path / "out.parquet", monkeypatch, key=key)
    assert fast.rows_in == 9000
    assert fast.positives_out + fast.negatives_out == fast.rows_out


@pytest.mark.parametrize("key", [None, "id"])
def test_many_files_and_hive(
    inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: Any
) -> None:
    # key-less rows are numbered across files in input order
    _both(inputs["files"], tmp_path / "files.parquet", monkeypatch, key=key)
    fast, _ = _both(inputs["hive"], tmp_path / "hive.parquet", monkeypatch, key=key)
    assert fast.rows_in == 2000 * 4 + 300 * 6


def test_group_key_floor_rate_and_repeated_key(
    inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _both(inputs["one"], tmp_path / "g.parquet", monkeypatch, group_key="flag", floor=0.01)
    _both(inputs["one"], tmp_path / "r.parquet", monkeypatch, rate=1.0, seed=-3)
    # a key that repeats: the same warning, with the same in-batch repeat count
    fast, _ = _both(inputs["one"], tmp_path / "k.parquet", monkeypatch, key="u16")
    assert fast.key_distinct is not None


def test_datasets(inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _both(inputs["files"], tmp_path / "rows", monkeypatch, max_rows_per_file=700)
    _both(inputs["hive"], tmp_path / "parts", monkeypatch, partition_by="year", key="id")


def test_which_inputs_take_the_polars_path(inputs: dict, tmp_path: Path) -> None:
    src = resolve_source(inputs["one"])
    assert late.late_pass(src, [])
    assert late.late_pass(src, ["k32", "flag"])
    assert not late.late_pass(src, ["s"])  # string keys: the streaming pass
    assert not late.late_pass(src, ["ts"])
    assert not late.late_pass(src, ["missing"])
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"y": pa.array([0, 1], pa.int8()), "l": [[1], [2, 3]]}), nested)
    assert not late.late_pass(resolve_source(str(nested)), [])
    # a hive key that the files also hold is checked row by row by the streaming pass
    both = tmp_path / "both" / "y=1"
    both.mkdir(parents=True)
    pq.write_table(pa.table({"y": pa.array([1, 1], pa.int8()), "a": [1, 2]}), both / "d.parquet")
    assert not late.late_pass(resolve_source(str(tmp_path / "both")), [])


@pytest.mark.parametrize("bad", ["label", "key"])
def test_nulls_are_refused_as_by_the_streaming_pass(
    inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    files = list(inputs["files"])
    table = pq.read_table(files[1])
    column = "y" if bad == "label" else "id"
    values = table.column(column).to_pylist()
    values[3500] = None
    broken = tmp_path / "broken.parquet"
    pq.write_table(
        table.set_column(
            table.schema.get_field_index(column),
            column,
            pa.array(values, table.schema.field(column).type),
        ),
        broken,
    )
    files[1] = str(broken)
    kw = {"label": "y", "strategy": "uniform", "rate": 0.2, "key": "id", "progress": False}
    messages = []
    for patched in (False, True):
        with monkeypatch.context() as m:
            if patched:
                m.setattr(late, "late_pass", lambda *a: False)
            out = tmp_path / f"out{patched}.parquet"
            with pytest.raises(InputError) as err:
                sample_parquet(files, str(out), **kw)
            assert not out.exists()
            messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "null" in messages[0]
    assert bad == "key" or "broken.parquet" in messages[0]


def test_the_query_starts_before_the_plan_and_is_checked_against_it(
    inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    original = late.kept_query

    def counting(*args: Any) -> Any:
        calls.append(args[-1])
        return original(*args)

    monkeypatch.setattr(late, "kept_query", counting)
    _both(inputs["one"], tmp_path / "early.parquet", monkeypatch, key="id", floor=0.01)
    assert len(calls) == 1  # the query started early was the one used
    # a wrong guess is discarded: the query is built again with the plan's a0, same output
    calls.clear()
    monkeypatch.setattr(late, "guess_probability", lambda rate, floor: 0.5)
    _both(inputs["one"], tmp_path / "guess.parquet", monkeypatch, key="id")
    assert calls == [0.5, 0.2]
