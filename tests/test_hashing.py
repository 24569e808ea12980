"""Key hashing: golden vectors, type rules and batch/order invariance."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastsample.core.hashing import (
    composite_keys,
    derive_seed,
    frame_keys,
    hash_keys,
    key_words_expr,
    uniform_below_expr,
    uniform_expr,
    uniform_from_keys,
)
from fastsample.errors import InputError

# Integer keys: (key, seed, uniform), bit-exact.
INT_GOLDEN = [
    (0, 0, 0.6524484863740322),
    (1, 0, 0.03401170130434639),
    (-1, 0, 0.1790798029343914),
    (42, 7, 0.4323047487697754),
    (1234567890123, 42, 0.9717479626743806),
]

# String key words per the spec in fastsample/core/hashing.py (UTF-8, length-tagged, 8-byte LE words)
STRING_GOLDEN = {
    "": 8124996759449783979,
    "a": 16385199863107907617,
    "user_42": 15243511285857227433,
    "abcdefgh": 13199547619609575301,
    "abcdefghi": 2741210943405562000,
    "ünïcödé": 12683289972237838594,
    "🙂": 7772165106528261744,
}


@pytest.mark.parametrize(("key", "seed", "u"), INT_GOLDEN)
def test_int_golden_values(key: int, seed: int, u: float) -> None:
    assert uniform_from_keys(np.array([key], dtype=np.int64), seed)[0] == u


def test_int_golden_values_vectorised_and_unsigned() -> None:
    keys = np.array([0, 1, -1], dtype=np.int64)
    np.testing.assert_array_equal(uniform_from_keys(keys, 0), [g[2] for g in INT_GOLDEN[:3]])
    # uint64 reinterpretation of -1 is the same key
    assert uniform_from_keys(np.array([2**64 - 1], dtype=np.uint64), 0)[0] == INT_GOLDEN[2][2]


def test_string_golden_vectors() -> None:
    words = hash_keys(pl.Series(list(STRING_GOLDEN)))
    assert words.tolist() == list(STRING_GOLDEN.values())
    # the same strings through every container and Arrow string layout
    for values in (
        np.array(list(STRING_GOLDEN), dtype=object),
        pa.array(list(STRING_GOLDEN), pa.string()),
        pa.array(list(STRING_GOLDEN), pa.large_string()),
        pa.array(list(STRING_GOLDEN), pa.string_view()),
        pl.Series(list(STRING_GOLDEN)).cast(pl.Categorical),
    ):
        assert hash_keys(values).tolist() == list(STRING_GOLDEN.values())
    assert uniform_from_keys(["user_42"], 0)[0] == 0.9704059159938163


def test_string_keys_in_sliced_arrow_arrays() -> None:
    arr = pa.array(["zz", *STRING_GOLDEN, "yy"], pa.large_string()).slice(1, len(STRING_GOLDEN))
    assert hash_keys(arr).tolist() == list(STRING_GOLDEN.values())


def test_composite_golden_and_rules() -> None:
    words = composite_keys([np.array([42]), np.array(["a"], dtype=object)])
    assert words.tolist() == [6456760352733058526]
    # order matters; a one-column composite is that column
    assert composite_keys([np.array(["a"], dtype=object), np.array([42])])[0] != words[0]
    np.testing.assert_array_equal(composite_keys([np.array([5, 6])]), hash_keys(np.array([5, 6])))


def test_integer_widths_and_bools_agree() -> None:
    base = hash_keys(np.array([-3, 0, 7], dtype=np.int64))
    for dtype in (np.int8, np.int16, np.int32):
        np.testing.assert_array_equal(hash_keys(np.array([-3, 0, 7], dtype=dtype)), base)
    np.testing.assert_array_equal(hash_keys(np.array([True, False])), [1, 0])


def test_temporal_keys_use_physical_value() -> None:
    ts = pl.Series([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)])
    np.testing.assert_array_equal(hash_keys(ts), ts.to_physical().to_numpy().view(np.uint64))
    d = pl.Series([dt.date(1970, 1, 3)])
    assert hash_keys(d).tolist() == [2]


def test_bad_keys_raise_naming_the_column() -> None:
    with pytest.raises(InputError, match=r"'price'.*floating"):
        hash_keys(np.array([1.5]), "price")
    with pytest.raises(InputError, match=r"'uid'.*null"):
        hash_keys(pl.Series([1, None]), "uid")
    with pytest.raises(InputError, match="'nope'"):
        frame_keys(pl.DataFrame({"a": [1]}), "nope")
    with pytest.raises(InputError, match="seed"):
        uniform_from_keys([1], seed=2**64)
    with pytest.raises(InputError, match="seed"):
        uniform_from_keys([1], seed=1.5)  # type: ignore[arg-type]


def test_row_index_keys_follow_the_offset() -> None:
    df = pl.DataFrame({"a": [1, 2, 3]})
    assert frame_keys(df, None, 10).tolist() == [10, 11, 12]


def test_derived_seeds_are_distinct_streams() -> None:
    assert derive_seed(0, "pilot") == 15240594589776115500
    assert derive_seed(0, "pilot") != derive_seed(0, "kappa")
    assert derive_seed(0, "pilot") != derive_seed(1, "pilot")
    keys = np.arange(100_000)
    a = uniform_from_keys(keys, 0) < 0.5
    b = uniform_from_keys(keys, derive_seed(0, "pilot")) < 0.5
    # independent streams: agreement 50% +- 5 binomial standard errors (SE = 0.5/sqrt(n))
    assert abs((a == b).mean() - 0.5) < 5 * 0.5 / np.sqrt(len(keys))


@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50), st.integers(0, 2**64 - 1)
)
def test_uniform_is_elementwise(keys: list[int], seed: int) -> None:
    """A key's uniform does not depend on which other keys share its batch, or their order."""
    arr = np.array(keys, dtype=np.int64)
    whole = uniform_from_keys(arr, seed)
    assert ((whole >= 0) & (whole < 1)).all()
    perm = np.random.default_rng(0).permutation(len(arr))
    np.testing.assert_array_equal(uniform_from_keys(arr[perm], seed), whole[perm])
    singles = [uniform_from_keys(arr[i : i + 1], seed)[0] for i in range(len(arr))]
    np.testing.assert_array_equal(singles, whole)


@given(st.lists(st.text(max_size=20), min_size=1, max_size=30))
def test_string_hash_matches_pure_python_spec(texts: list[str]) -> None:
    from fastsample.core.hashing import _string_word

    assert hash_keys(pl.Series(texts, dtype=pl.String)).tolist() == [_string_word(t) for t in texts]


def test_uniforms_are_uniform() -> None:
    """Kolmogorov–Smirnov-style check of the whole stream against U(0, 1)."""
    u = np.sort(uniform_from_keys(np.arange(200_000), 12345))
    ecdf = np.arange(1, u.size + 1) / u.size
    d = np.max(np.abs(ecdf - u))
    # KS critical value at alpha = 1e-4 is about 2.0 / sqrt(n)
    assert d < 2.0 / np.sqrt(u.size)


@pytest.mark.parametrize(
    "dtype", [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64]
)
def test_polars_expression_matches_the_kernels(dtype: pl.DataType) -> None:
    # key words and uniforms built as a Polars query have the kernels' bits, extremes included
    rng = np.random.default_rng(3)
    info = np.iinfo(np.dtype(str(dtype).lower()))
    raw = rng.integers(info.min, info.max, size=5000, endpoint=True, dtype=np.dtype(info.dtype))
    values = pl.Series("k", np.concatenate([raw, [info.min, info.max, 0]]).astype(info.dtype))
    frame = pl.DataFrame({"k": values})
    words = frame.select(key_words_expr(["k"], [dtype])).to_series().to_numpy()
    np.testing.assert_array_equal(words, hash_keys(values))
    for seed in (0, -1, 2**64 - 1, 12345):
        u = frame.select(uniform_expr(key_words_expr(["k"], [dtype]), seed)).to_series()
        assert u.to_numpy().tobytes() == uniform_from_keys(values, seed).tobytes()


def test_polars_expression_composite_and_boolean_keys() -> None:
    rng = np.random.default_rng(4)
    frame = pl.DataFrame(
        {
            "a": rng.integers(-(2**63), 2**63 - 1, 3000, dtype=np.int64),
            "b": rng.integers(0, 2, 3000).astype(bool),
            "c": rng.integers(0, 2**32 - 1, 3000, dtype=np.uint32),
        }
    )
    expr = key_words_expr(["a", "b", "c"], [pl.Int64, pl.Boolean, pl.UInt32])
    words = frame.select(expr).to_series().to_numpy()
    np.testing.assert_array_equal(words, frame_keys(frame, ["a", "b", "c"]))
    assert key_words_expr(["a", "s"], [pl.Int64, pl.String]) is None
    assert key_words_expr(["t"], [pl.Datetime("us")]) is None


def test_polars_comparison_with_a_probability_is_exact() -> None:
    # u < a as one integer comparison: ties (a equal to a row's uniform), the smallest and
    # the largest probabilities
    keys = pl.Series("k", np.arange(20_000, dtype=np.uint64))
    for seed in (0, 99):
        u = uniform_from_keys(keys, seed)
        probes = [u[5], u[17], np.nextafter(u[5], 1.0), np.nextafter(u[5], 0.0), 2.0**-53, 1.0]
        for a in [*probes, 0.05, 1.0 / 3.0, 0.999999]:
            kept = pl.DataFrame({"k": keys}).select(uniform_below_expr(pl.col("k"), seed, a))
            np.testing.assert_array_equal(kept.to_series().to_numpy(), u < a)


def test_keyexpr_constants_are_the_kernels() -> None:
    # the Numba-free module spells the specification's words once more, as Python integers
    from fastsample.core import kernels as K
    from fastsample.core import keyexpr

    for name in ("GOLDEN", "MIX1", "MIX2", "COMPOSITE_TAG"):
        assert getattr(keyexpr, name) == int(getattr(K, name))
    assert keyexpr.TWO_POW_M53 == K.TWO_POW_M53
