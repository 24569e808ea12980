"""The streaming engine (fastsample.engines.parquet): equality with the in-memory path, invariance to
chunk size, threads and file layout, exact kappa, metadata and reports."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from fastsample.core import kappa as kappa_mod
from fastsample.core.pilot import Pilot
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.strategies import expected_count, inclusion_scores, solve_kappa
from fastsample.engines import exact, training
from fastsample.engines import parquet as pipeline
from fastsample.engines.memory import sample_frame
from fastsample.engines.sinks import read_metadata
from fastsample.harness.synthetic import click_log

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return pl.from_arrow(click_log(6000, features=4, event_rate=0.08, seed=3))


@pytest.fixture(scope="module")
def log_file(tmp_path_factory, data) -> str:
    path = tmp_path_factory.mktemp("log") / "log.parquet"
    pq.write_table(data.to_arrow(), path, row_group_size=1000)
    return str(path)


@pytest.fixture(scope="module")
def pilot(data) -> Pilot:
    y = data["y"].to_numpy()
    return fit_pilot(data, y, features=FEATURES, seed=5, label="y")


@pytest.fixture(scope="module")
def pilot_file(tmp_path_factory, pilot) -> str:
    path = tmp_path_factory.mktemp("pilot") / "p.pilot"
    pilot.save(path)
    return str(path)


def _sample(src, out, **kw):
    kw.setdefault("label", "y")
    kw.setdefault("progress", False)
    return pipeline.sample_parquet(src, out, **kw)


def _read(path) -> pl.DataFrame:
    return pl.read_parquet(path)


@pytest.mark.parametrize("key", [None, "id"])
@pytest.mark.parametrize("strategy", ["proportional", "opt-l", "lcc"])
def test_streaming_equals_sample_frame(tmp_path, data, log_file, pilot, key, strategy):
    out = tmp_path / "o.parquet"
    rep = _sample(
        log_file,
        out,
        pilot=pilot,
        strategy=strategy,
        rate=0.2,
        seed=9,
        key=key,
        exact=True,
        chunk_rows=777,
    )
    mem, info = sample_frame(
        data, label="y", pilot=pilot, strategy=strategy, rate=0.2, seed=9, key=key, return_info=True
    )
    got = _read(out)
    assert got["id"].to_list() == mem["id"].to_list()
    for col in data.columns:
        assert got[col].equals(mem[col].cast(got[col].dtype)), col
    # kappa comes from a different (bounded-memory) summation order: equal to rounding.
    assert rep.kappa == pytest.approx(info["plan"].kappa, rel=1e-12)
    for col in ("sampling_prob", "sample_weight", "log_odds_offset"):
        np.testing.assert_allclose(got[col].to_numpy(), mem[col].to_numpy(), rtol=1e-11)
    assert rep.rows_out == info["rows_out"] and rep.positives_out == info["positives_out"]


def _kept(path) -> list[int]:
    return _read(path)["id"].to_list()


def test_same_rows_for_any_chunk_size(tmp_path, log_file, pilot_file):
    results = {}
    for chunk in (1, 7, 65536, None):
        out = tmp_path / f"o{chunk}.parquet"
        _sample(log_file, out, pilot=pilot_file, rate=0.1, seed=4, chunk_rows=chunk)
        results[chunk] = _read(out)
    base = results[None]
    assert base.height > 300
    for chunk, frame in results.items():
        assert frame.equals(base), chunk


def test_same_rows_for_any_chunk_size_exact_mode(tmp_path, log_file, pilot_file):
    outs = []
    for chunk in (7, None):
        out = tmp_path / f"o{chunk}.parquet"
        _sample(log_file, out, pilot=pilot_file, rate=0.1, seed=4, chunk_rows=chunk, exact=True)
        outs.append(_read(out))
    assert outs[0].equals(outs[1])


_THREAD_RUN = textwrap.dedent(
    """
    import sys
    import numba
    from fastsample.engines.parquet import sample_parquet
    assert numba.config.NUMBA_NUM_THREADS == int(sys.argv[4])
    sample_parquet(sys.argv[1], sys.argv[2], label="y", pilot=sys.argv[3], rate=0.1, seed=4,
                   exact=True, progress=False)
    """
)


def test_same_rows_for_one_and_two_threads(tmp_path, log_file, pilot_file):
    frames = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.parquet"
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
        subprocess.run(
            [sys.executable, "-c", _THREAD_RUN, log_file, str(out), pilot_file, str(threads)],
            check=True,
            env=env,
            timeout=600,
        )
        frames.append(_read(out))
    assert frames[0]["id"].to_list() == frames[1]["id"].to_list()
    np.testing.assert_allclose(
        frames[0]["sampling_prob"].to_numpy(), frames[1]["sampling_prob"].to_numpy(), rtol=1e-12
    )


def test_same_rows_when_split_across_files_in_another_order(tmp_path, data, log_file, pilot_file):
    whole = tmp_path / "whole.parquet"
    _sample(log_file, whole, pilot=pilot_file, rate=0.1, seed=4, key="id")
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=1)
    parts = tmp_path / "parts"
    parts.mkdir()
    files = []
    for i, start in enumerate(range(0, shuffled.height, 1700)):
        f = parts / f"part-{i}.parquet"
        pq.write_table(shuffled.slice(start, 1700).to_arrow(), f)
        files.append(str(f))
    split = tmp_path / "split.parquet"
    _sample(list(reversed(files)), split, pilot=pilot_file, rate=0.1, seed=4, key="id")
    a = _read(whole).sort("id")
    b = _read(split).sort("id")
    assert a.equals(b)


def test_hive_partitioned_directory(tmp_path, data, pilot_file):
    root = tmp_path / "hive"
    for dev in ("desktop", "mobile", "tablet"):
        d = root / f"device={dev}"
        d.mkdir(parents=True)
        sub = data.filter(pl.col("device").cast(pl.String) == dev).drop("device")
        pq.write_table(sub.to_arrow(), d / "part.parquet")
    out = tmp_path / "o.parquet"
    rep = _sample(root, out, pilot=pilot_file, rate=0.1, seed=4, key="id")
    got = _read(out)
    assert got.columns[-4] == "device" and got.schema["device"] == pl.String
    assert rep.rows_in == data.height
    joined = got.join(data.select("id", pl.col("device").cast(pl.String).alias("d0")), on="id")
    assert (joined["device"] == joined["d0"]).all()


def test_output_contract_and_metadata_round_trip(tmp_path, log_file, pilot_file, pilot):
    out = tmp_path / "o.parquet"
    report = tmp_path / "r.json"
    rep = _sample(log_file, out, pilot=pilot_file, rate=0.1, seed=4, report=report)
    table = pq.read_table(out)
    src_schema = pq.read_schema(log_file).remove_metadata()
    assert table.schema.remove_metadata().names == [
        *src_schema.names,
        "sampling_prob",
        "sample_weight",
        "log_odds_offset",
    ]
    for f in src_schema:
        assert table.schema.field(f.name).type == f.type
    got = pl.from_arrow(table)
    prob = got["sampling_prob"].to_numpy()
    np.testing.assert_array_equal(got["sample_weight"].to_numpy(), 1.0 / prob)
    # proportional: positives kept with a_1 = 1, offset -log a_0 on every row (positives too)
    assert (prob[got["y"].to_numpy() == 1] == 1.0).all()
    h0, _ = inclusion_scores("proportional", pilot.logits(got))
    a0 = np.clip(rep.kappa * h0, 2.0**-53, 1.0)
    np.testing.assert_allclose(
        got["log_odds_offset"].to_numpy(), -np.log(a0), rtol=1e-12, atol=1e-15
    )
    meta = read_metadata(out)
    assert meta["plan"]["kappa"] == rep.kappa
    assert meta["plan"]["seed"] == 4 and meta["plan"]["strategy"] == "proportional"
    assert meta["pilot_fingerprint"] == pilot.fingerprint
    assert meta["counts"]["rows_out"] == got.height
    js = json.loads(report.read_text())
    for k in (
        "rows_in",
        "positives_in",
        "negatives_in",
        "rows_out",
        "positives_out",
        "negatives_out",
        "expected_rows_out",
        "seconds",
        "rate",
        "seed",
        "strategy",
    ):
        assert k in js, k
    assert js["rows_out"] == got.height == js["positives_out"] + js["negatives_out"]
    assert js["rows_in"] == 6000


@pytest.mark.parametrize(
    ("strategy", "floor"),
    [
        ("proportional", None),
        ("opt-l", None),
        ("proportional", 0.02),
        ("uniform", None),
        ("lcc", None),
        ("opt-a", 0.001),
    ],
)
def test_exact_mode_hits_the_target(tmp_path, data, log_file, pilot, strategy, floor):
    out = tmp_path / "o.parquet"
    rep = _sample(
        log_file,
        out,
        pilot=pilot,
        strategy=strategy,
        rate=0.15,
        floor=floor,
        exact=True,
        chunk_rows=1000,
    )
    y = data["y"].to_numpy()
    X = data.select(FEATURES).to_numpy()
    h0, _ = inclusion_scores(strategy, pilot.logits(data), X, pilot.info_inv)
    n0 = int((y == 0).sum())
    target = 0.15 * n0
    assert rep.target_negatives_out == pytest.approx(target, rel=1e-12)
    assert expected_count(h0[y == 0], rep.kappa, floor=floor) == pytest.approx(target, rel=1e-9)
    assert rep.expected_negatives_out == pytest.approx(target, rel=1e-9)
    assert rep.kappa == pytest.approx(solve_kappa(h0[y == 0], target, floor=floor), rel=1e-12)


def test_exact_kappa_refinement_paths(monkeypatch):
    # Force the split path (tiny collect budget) and ties (many equal scores); compare with the
    # in-memory water-filling over the same scores.
    rng = np.random.default_rng(0)
    h = np.concatenate([rng.lognormal(-3, 1.5, 20000), np.full(5000, 0.05), np.zeros(10)])
    rng.shuffle(h)
    for cap in (1 << 21, 50):
        monkeypatch.setattr(kappa_mod, "COLLECT_CAP", cap)
        monkeypatch.setattr(exact, "SPILL_BLOCK", 4096)
        for target, floor in ((0.1 * h.size, None), (0.5 * h.size, 0.01), (0.9 * h.size, None)):
            spill = exact.Spill()
            for chunk in np.array_split(h, 7):
                spill.add(chunk)
            kappa, expected = spill.kappa(target, floor)
            spill.close()
            assert kappa == pytest.approx(solve_kappa(h, target, floor=floor), rel=1e-12)
            assert expected_count(h, kappa, floor=floor) == pytest.approx(target, rel=1e-10)
            assert expected == pytest.approx(target, rel=1e-10)


def test_exact_bin_sums_are_exact_and_order_free():
    """Per-bin sums from integer significands equal the exact rational sums, rounded once."""
    from fractions import Fraction

    rng = np.random.default_rng(3)
    h = np.concatenate([rng.lognormal(-3, 2.0, 5000), [0.0, 5e-324, 2.2e-308, 1.0, 0.5]])
    bits = h.view(np.uint64)
    bins = (bits >> np.uint64(kappa_mod.TOP_SHIFT)).astype(np.int64)
    hi, lo = kappa_mod.mantissa_sums(bits, bins)
    for i in np.unique(bins):
        exact = sum((Fraction(float(v)) for v in h[bins == i]), Fraction(0))
        assert kappa_mod.bin_total(int(hi[i]), int(lo[i]), int(i) << kappa_mod.TOP_SHIFT) == float(
            exact
        )


@pytest.mark.parametrize("cap", [1 << 21, 50])  # collect the straddling bins, or split them
def test_exact_kappa_does_not_depend_on_row_order_or_batches(monkeypatch, cap):
    """kappa is a function of the multiset of scores: bit-identical for any order and grouping."""
    monkeypatch.setattr(kappa_mod, "COLLECT_CAP", cap)
    monkeypatch.setattr(exact, "SPILL_BLOCK", 4096)
    rng = np.random.default_rng(1)
    h = np.concatenate([rng.lognormal(-3, 1.5, 30000), np.full(3000, 0.05)])
    results = set()
    # float sums of these scores in these orders and groupings differed in their last bits
    for trial, pieces in enumerate([7, 13, 1000, 1001, 3, 50]):
        order = rng.permutation(h.size) if trial else np.arange(h.size)
        spill = exact.Spill()
        for chunk in np.array_split(h[order], pieces):
            spill.add(chunk)
        results.add(
            (
                spill.kappa(0.1 * h.size, 0.001),
                spill.kappa(0.5 * h.size, None),
            )
        )
        spill.close()
    assert len(results) == 1


def test_realised_counts_match_expected_within_poisson_binomial_error(tmp_path, log_file, pilot):
    out = tmp_path / "o.parquet"
    rep = _sample(log_file, out, pilot=pilot, rate=0.3, seed=11, exact=True)
    # Kept negatives are a sum of independent Bernoulli(a_i): variance sum a_i(1-a_i) <= E.
    sd = math.sqrt(rep.expected_negatives_out)
    assert abs(rep.negatives_out - rep.expected_negatives_out) < 4 * sd
    assert rep.positives_out == rep.positives_in


def test_one_pass_kappa_is_close_to_exact(tmp_path, log_file, pilot):
    one = _sample(log_file, tmp_path / "a.parquet", pilot=pilot, rate=0.1)
    exact = _sample(log_file, tmp_path / "b.parquet", pilot=pilot, rate=0.1, exact=True)
    assert one.method == "pilot-sample" and exact.method == "exact"
    # The pilot's reference sample holds ~N1 negatives here (about 480); the relative error of
    # a Horvitz-Thompson total from n draws is ~1/sqrt(n) ~ 5%; allow 4 of those.
    assert one.kappa == pytest.approx(exact.kappa, rel=0.2)


def test_train_pilot_equals_fit_pilot_in_memory(data, log_file):
    from_stream = training.train_pilot(log_file, label="y", features=["f*"], seed=5, chunk_rows=333)
    in_memory = fit_pilot(data, data["y"].to_numpy(), features=FEATURES, seed=5, label="y")
    assert from_stream.fingerprint == in_memory.fingerprint
    assert from_stream.logit_shift == in_memory.logit_shift
    assert from_stream.n_negative == in_memory.n_negative
    np.testing.assert_array_equal(from_stream.reference_X, in_memory.reference_X)
    capped = training.train_pilot(log_file, label="y", features=FEATURES, seed=5, rows=300)
    assert capped.meta["sample_rows"] < 400
    assert (
        capped.fingerprint
        == fit_pilot(
            data, data["y"].to_numpy(), features=FEATURES, seed=5, max_rows=300, label="y"
        ).fingerprint
    )


def test_train_pilot_seed_stream_is_independent_of_sampling(data, log_file):
    # The pilot's case-control sample uses derive_seed(seed, "pilot"): the negatives it keeps
    # are not the ones the sampler keeps with the same seed (overlap at chance level).
    p = training.train_pilot(log_file, label="y", features=FEATURES, seed=5)
    assert p.meta["q0"] < 0.2


def test_train_pilot_saves_and_loads(tmp_path, log_file):
    p = training.train_pilot(log_file, label="y", features=FEATURES, model="sgd", seed=1)
    path = tmp_path / "p.pilot"
    p.save(path)
    q = Pilot.load(path)
    assert q.fingerprint == p.fingerprint and q.features == FEATURES and q.label == "y"
    assert sorted(os.listdir(tmp_path)) == ["p.pilot"]


def test_empty_input_gives_empty_valid_output(tmp_path, data, pilot_file):
    empty = tmp_path / "empty.parquet"
    pq.write_table(data.head(0).to_arrow(), empty)
    for kw in (
        {"pilot": pilot_file},
        {"strategy": "uniform"},
        {"features": FEATURES},
        {"pilot": pilot_file, "exact": True},
    ):
        out = tmp_path / "o.parquet"
        rep = _sample(empty, out, overwrite=True, **kw)
        assert rep.rows_in == rep.rows_out == 0
        got = pq.read_table(out)
        assert got.num_rows == 0
        assert got.schema.names[-3:] == ["sampling_prob", "sample_weight", "log_odds_offset"]


def test_training_a_pilot_on_the_fly(tmp_path, log_file):
    out = tmp_path / "o.parquet"
    rep = _sample(log_file, out, features=FEATURES, rate=0.1, seed=2)
    assert rep.pilot_fingerprint is not None
    meta = read_metadata(out)
    assert meta["pilot_features"] == FEATURES


def test_uniform_without_pilot_keeps_rate(tmp_path, log_file):
    rep = _sample(log_file, tmp_path / "o.parquet", strategy="uniform", rate=0.25, seed=1)
    assert rep.kappa == 0.25 and rep.pilot_fingerprint is None
    sd = math.sqrt(rep.negatives_in * 0.25 * 0.75)
    assert abs(rep.negatives_out - 0.25 * rep.negatives_in) < 4 * sd


def test_columns_of_any_arrow_type_pass_through_unchanged(tmp_path, pilot):
    """The kept rows are gathered from the Arrow batches, so every input column keeps its exact
    type and values: nested, dictionary, decimal, unsigned, binary, dates, nulls."""
    import datetime
    import decimal

    import pyarrow as pa

    n = 3000
    rng = np.random.default_rng(8)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (rng.random(n) < 0.1).astype(np.int8)
    extra = {
        "tags": pa.array([[i, i + 1] if i % 3 else None for i in range(n)], pa.list_(pa.int32())),
        "pos": pa.array(
            [{"x": i, "s": str(i)} for i in range(n)],
            pa.struct([("x", pa.int64()), ("s", pa.string())]),
        ),
        "dev": pa.array(["ios", "android", None] * (n // 3)).dictionary_encode(),
        "flag": pa.array([i % 2 == 0 for i in range(n)]),
        "price": pa.array([decimal.Decimal(i) / 100 for i in range(n)], pa.decimal128(10, 2)),
        "small": pa.array([i % 250 if i % 7 else None for i in range(n)], pa.uint8()),
        "blob": pa.array([bytes([i % 256]) * (i % 5) for i in range(n)], pa.binary()),
        "big": pa.array([f"s{i}" for i in range(n)], pa.large_string()),
        "day": pa.array(
            [datetime.date(2026, 1, 1) + datetime.timedelta(days=i % 300) for i in range(n)],
            pa.date32(),
        ),
    }
    table = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            **{f: pa.array(X[:, j]) for j, f in enumerate(FEATURES)},
            "y": pa.array(y),
            **extra,
        }
    )
    src = tmp_path / "typed.parquet"
    pq.write_table(table, src, row_group_size=700)
    out = tmp_path / "out.parquet"
    rep = _sample(str(src), str(out), pilot=pilot, rate=0.3, key="id", chunk_rows=512)
    got = pq.read_table(out)
    assert got.num_rows == rep.rows_out > 100
    src_schema = pq.read_schema(src).remove_metadata()
    assert got.schema.remove_metadata().names[: len(src_schema)] == src_schema.names
    for fld in src_schema:
        assert got.schema.field(fld.name).type == fld.type, fld.name
    expected = pq.read_table(src).take(pa.array(got["id"].to_numpy()))
    assert got.select(src_schema.names).equals(expected.select(src_schema.names))


def test_sample_with_a_linear_pilot_loads_only_what_it_needs(tmp_path, log_file, pilot_file):
    """Start-up: no scikit-learn, pandas or SciPy's linalg (Numba's BLAS probe is skipped)."""
    out = tmp_path / "o.parquet"
    code = (
        "import sys\n"
        "from fastsample.cli import main\n"
        f"code = main(['sample', {log_file!r}, '-o', {str(out)!r}, '--label', 'y',\n"
        f"             '--pilot', {pilot_file!r}, '--rate', '0.2', '--quiet'])\n"
        "heavy = ('sklearn', 'pandas', 'scipy.linalg')\n"
        "print(code, sorted(m for m in heavy if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "0 []"
