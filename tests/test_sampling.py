"""The draw: output contract, invariances and seeded Monte Carlo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from helpers import FEATURES, make_events
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.plan import OutputColumns, plan_from_pilot
from fastsample.core.strategies import STRATEGIES, inclusion_probabilities
from fastsample.engines.batch import batch_scores, draw_batch, draw_indices
from fastsample.engines.memory import sample_frame
from fastsample.errors import InputError

OUT = ["sampling_prob", "sample_weight", "log_odds_offset"]


@pytest.fixture(scope="module")
def pilot(events):
    return fit_pilot(events, events["y"].to_numpy(), features=FEATURES, seed=1, label="y")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_output_contract(events, pilot, strategy: str) -> None:
    out, info = sample_frame(
        events, label="y", pilot=pilot, strategy=strategy, rate=0.05, key="id", return_info=True
    )
    assert out.columns == [*events.columns, *OUT]
    assert out.schema[OUT[0]] == pl.Float64
    # input columns unchanged: the kept rows are exactly the input rows with those ids
    joined = out.select(events.columns).join(events, on="id", how="left", suffix="_in")
    for c in events.columns[1:]:
        assert (joined[c] == joined[f"{c}_in"]).all()
    # info["indices"]: the kept rows' positions in the input
    assert (np.diff(info["indices"]) > 0).all()
    assert out.select(events.columns).equals(events[info["indices"]])
    prob = out["sampling_prob"].to_numpy()
    assert ((prob > 0) & (prob <= 1)).all()
    np.testing.assert_array_equal(out["sample_weight"].to_numpy(), 1.0 / prob)
    # the offset is log a1 - log a0 on every kept row, positives included
    X = out.select(FEATURES).to_numpy()
    a0, a1 = inclusion_probabilities(
        strategy, pilot.logits(X), kappa=info["plan"].kappa, X=X, info_inv=pilot.info_inv
    )
    y = out["y"].to_numpy()
    np.testing.assert_allclose(prob, np.where(y == 1, a1, a0), rtol=1e-12)
    np.testing.assert_allclose(
        out["log_odds_offset"].to_numpy(), np.log(a1) - np.log(a0), rtol=1e-12, atol=1e-12
    )
    if strategy != "lcc":
        assert (prob[y == 1] == 1.0).all()
        pos_off = out.filter(pl.col("y") == 1)["log_odds_offset"].to_numpy()
        # positives carry -log a0 too: zero only where a0 is capped at 1
        assert (pos_off >= 0).all() and (pos_off > 0).mean() > 0.5
    assert info["positives_in"] + info["negatives_in"] == events.height
    assert info["rows_out"] == out.height


@pytest.mark.parametrize("strategy", ["proportional", "lcc", "uniform"])
def test_column_buffers_and_feature_matrix_draw_the_same(events, pilot, strategy: str) -> None:
    """Float columns of one dtype are read in place; anything else goes through one matrix.

    float32 -> float64 is exact and both kernels accumulate the logit in float64 in the same
    order, so all three layouts must agree bit for bit.
    """
    plan = plan_from_pilot(pilot, strategy=strategy, rate=0.05, seed=3)
    f32 = events  # float32 features: the column kernel on the frame's own buffers
    f64 = events.with_columns(pl.col(FEATURES).cast(pl.Float64))  # column kernel, float64
    mixed = events.with_columns(pl.col(FEATURES[0]).cast(pl.Float64))  # one float64 matrix
    got = [
        draw_indices(df, label="y", pilot=pilot, plan=plan, key="id") for df in (f32, f64, mixed)
    ]
    assert got[0].index.size > 100
    for other in got[1:]:
        np.testing.assert_array_equal(other.index, got[0].index)
        np.testing.assert_array_equal(other.prob, got[0].prob)
        np.testing.assert_array_equal(other.offset, got[0].offset)
    np.testing.assert_array_equal(got[0].labels, events["y"].to_numpy())
    whole = draw_batch(f32, label="y", pilot=pilot, plan=plan, key="id")
    np.testing.assert_array_equal(whole["id"].to_numpy(), events["id"].to_numpy()[got[0].index])
    np.testing.assert_array_equal(whole["sampling_prob"].to_numpy(), got[0].prob)
    # the scores behind sample_frame's exact kappa take the same two routes
    frames = [
        sample_frame(
            df, label="y", pilot=pilot, strategy=strategy, rate=0.05, key="id", return_info=True
        )
        for df in (f32, mixed)
    ]
    assert frames[0][1]["plan"].kappa == frames[1][1]["plan"].kappa
    for c in ["id", *OUT]:
        np.testing.assert_array_equal(frames[0][0][c].to_numpy(), frames[1][0][c].to_numpy())


@pytest.mark.parametrize("strategy", ["proportional", "lcc", "uniform"])
def test_draw_without_h1_values_is_the_same(events, pilot, strategy: str) -> None:
    """sample_frame's scores leave h1 empty where every h1 is -1; the draw reads it so."""
    plan = plan_from_pilot(pilot, strategy=strategy, rate=0.05, seed=3)
    f64 = events.with_columns(pl.col(FEATURES).cast(pl.Float64))
    for df in (events, f64, events.with_columns(pl.col(FEATURES[0]).cast(pl.Float64))):
        full = batch_scores(df, pilot, plan.code, plan.info_inv)
        lean = batch_scores(df, pilot, plan.code, plan.info_inv, h1_values=False)
        np.testing.assert_array_equal(lean[0], full[0])
        if strategy == "lcc":
            np.testing.assert_array_equal(lean[1], full[1])
        else:
            assert (full[1] == -1.0).all() and lean[1].size in (0, df.height)
        got = [
            draw_indices(df, label="y", pilot=pilot, plan=plan, key="id", scores=scores)
            for scores in (full, lean)
        ]
        assert got[0].index.size > 100
        for field in ("index", "prob", "offset"):
            assert getattr(got[1], field).tobytes() == getattr(got[0], field).tobytes()
    # the frame's own float32 columns take the column kernel: h1 is not written at all
    lean = batch_scores(events, pilot, plan.code, plan.info_inv, h1_values=False)
    assert lean[1].size == (events.height if strategy == "lcc" else 0)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65_536])
def test_batches_of_any_size_give_the_same_rows(events, pilot, chunk: int) -> None:
    # per-batch overhead dominates tiny chunks, so they get a shorter input
    data = events.head(3000) if chunk < 100 else events
    whole, info = sample_frame(data, label="y", pilot=pilot, rate=0.1, seed=5, return_info=True)
    parts = [
        draw_batch(data.slice(s, chunk), label="y", pilot=pilot, plan=info["plan"], row_offset=s)
        for s in range(0, data.height, chunk)
    ]
    assert pl.concat(parts).equals(whole)


def test_non_linear_pilot_batches_match(events) -> None:
    X, y = events.select(FEATURES).to_numpy(), events["y"].to_numpy()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    whole, info = sample_frame(
        events,
        label="y",
        pilot=model,
        features=FEATURES,
        strategy="opt-l",
        rate=0.1,
        key="id",
        return_info=True,
    )
    from fastsample.core.pilot import as_pilot

    p = as_pilot(model, FEATURES)
    parts = [
        draw_batch(events.slice(s, 9999), label="y", pilot=p, plan=info["plan"], key="id")
        for s in range(0, events.height, 9999)
    ]
    assert pl.concat(parts).equals(whole)


def test_row_order_does_not_matter_with_a_key(events, pilot) -> None:
    a = sample_frame(events, label="y", pilot=pilot, rate=0.1, key="id")
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=3)
    b = sample_frame(shuffled, label="y", pilot=pilot, rate=0.1, key="id")
    a, b = a.sort("id"), b.sort("id")
    # the same rows are kept; kappa is summed in another order, so values agree to rounding
    assert a["id"].equals(b["id"])
    np.testing.assert_allclose(
        b["sampling_prob"].to_numpy(), a["sampling_prob"].to_numpy(), rtol=1e-12
    )


def test_seed_changes_the_sample_and_is_reproducible(events, pilot) -> None:
    a = sample_frame(events, label="y", pilot=pilot, rate=0.1, seed=1, key="id")
    b = sample_frame(events, label="y", pilot=pilot, rate=0.1, seed=1, key="id")
    c = sample_frame(events, label="y", pilot=pilot, rate=0.1, seed=2, key="id")
    assert a.equals(b)
    assert not a["id"].equals(c["id"])


_THREAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from helpers import make_events
    from fastsample.core.pilot_fit import fit_pilot
    from fastsample.engines.memory import sample_frame
    import numba
    df = make_events({rows}, seed=4)
    p = fit_pilot(df, df["y"].to_numpy(), features=["f0", "f1", "f2", "f3"], seed=0)
    out, info = sample_frame(df, label="y", pilot=p, strategy={strategy!r}, rate=0.2, key="id",
                             return_info=True)
    print(json.dumps({{"threads": numba.get_num_threads(), "ids": out["id"].to_list(),
                      "prob": out["sampling_prob"].to_list(),
                      "offset": out["log_odds_offset"].to_list(),
                      "kappa": info["plan"].kappa.hex()}}))
    """
)


# 40,000 rows run the serial builds; 150,000 the parallel kernels (scores, kappa, draw)
@pytest.mark.parametrize(("rows", "strategy"), [(40_000, "opt-a"), (150_000, "proportional")])
def test_thread_count_does_not_matter(rows: int, strategy: str) -> None:
    script = _THREAD_SCRIPT.format(tests=os.path.dirname(__file__), rows=rows, strategy=strategy)
    results = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        run = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert [r["threads"] for r in results] == [1, 2]
    assert results[0]["ids"] == results[1]["ids"]
    assert results[0]["prob"] == results[1]["prob"]
    assert results[0]["offset"] == results[1]["offset"]
    assert results[0]["kappa"] == results[1]["kappa"]


@pytest.mark.parametrize("strategy", ["uniform", "proportional", "opt-a"])
def test_kept_negatives_within_five_standard_errors(strategy: str) -> None:
    """Realised kept negatives ~ sum of Bernoulli(a0): mean = plan's expectation, var = sum a0(1-a0)."""
    df = make_events(200_000, seed=11)
    y = df["y"].to_numpy()
    p = fit_pilot(df, y, features=FEATURES, seed=3)
    _, info = sample_frame(
        df, label="y", pilot=p, strategy=strategy, rate=0.03, seed=9, return_info=True
    )
    assert info["plan"].expected_negatives == pytest.approx(0.03 * info["negatives_in"], rel=1e-9)
    X = df.select(FEATURES).to_numpy()
    a0, _ = inclusion_probabilities(
        strategy, p.logits(X), kappa=info["plan"].kappa, X=X, info_inv=p.info_inv
    )
    a0 = a0[y == 0]
    se = np.sqrt(np.sum(a0 * (1 - a0)))
    assert abs(info["negatives_out"] - a0.sum()) < 5 * se
    assert info["positives_out"] == info["positives_in"]


def test_horvitz_thompson_totals_are_unbiased() -> None:
    """Over 40 seeds, the mean HT estimate of N0 and of sum(f0) over negatives is within 5 SE."""
    df = make_events(50_000, seed=12)
    y = df["y"].to_numpy()
    p = fit_pilot(df, y, features=FEATURES, seed=0)
    neg = df.filter(pl.col("y") == 0)
    true_n0, true_f0 = neg.height, float(neg["f0"].sum())
    est_n0, est_f0 = [], []
    for seed in range(40):
        out = sample_frame(df, label="y", pilot=p, rate=0.05, seed=seed).filter(pl.col("y") == 0)
        w = out["sample_weight"].to_numpy()
        est_n0.append(w.sum())
        est_f0.append(float((w * out["f0"].to_numpy()).sum()))
    for est, truth in ((np.array(est_n0), true_n0), (np.array(est_f0), true_f0)):
        se_mean = est.std(ddof=1) / np.sqrt(est.size)
        assert abs(est.mean() - truth) < 5 * se_mean


def test_input_containers(events) -> None:
    pd_out = sample_frame(events.to_pandas(), label="y", strategy="uniform", rate=0.2, key="id")
    assert type(pd_out).__name__ == "DataFrame" and type(pd_out).__module__.startswith("pandas")
    pl_out = sample_frame(events, label="y", strategy="uniform", rate=0.2, key="id")
    np.testing.assert_array_equal(pd_out["id"].to_numpy(), pl_out["id"].to_numpy())
    arr = events.select(["f0", "y"]).to_numpy()
    np_out = sample_frame(arr, label=1, strategy="uniform", rate=0.2)
    assert np_out.columns[:2] == ["column_0", "column_1"]


def test_sklearn_pilot_fitted_on_a_frame(events) -> None:
    model = LogisticRegression().fit(events.select(FEATURES).to_pandas(), events["y"].to_numpy())
    out = sample_frame(events, label="y", pilot=model, rate=0.1)
    assert out.height > 0


def test_trains_a_pilot_when_none_is_given(events) -> None:
    out = sample_frame(events, label="y", features=FEATURES, rate=0.1, seed=3)
    assert out.height > 0


def test_empty_frame_gives_an_empty_valid_output(events, pilot) -> None:
    out = sample_frame(events.head(0), label="y", pilot=pilot, rate=0.1)
    assert out.height == 0 and out.columns == [*events.columns, *OUT]


def test_one_pass_plan_from_the_pilot_is_close_to_exact(pilot, events) -> None:
    exact = sample_frame(events, label="y", pilot=pilot, rate=0.05, return_info=True)[1]["plan"]
    one_pass = plan_from_pilot(pilot, strategy="proportional", rate=0.05, seed=0)
    assert one_pass.method == "pilot-sample"
    # the HT estimate from ~N1 reference negatives: a few percent is expected at this size
    assert one_pass.kappa == pytest.approx(exact.kappa, rel=0.1)


def test_bad_inputs_raise_one_line_errors(events, pilot) -> None:
    cases = [
        ({"rate": 0.0}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"label": "nope"}, "label column 'nope'"),
        ({"strategy": "best"}, "unknown strategy"),
        ({"floor": -0.1}, "floor"),
        ({"columns": OutputColumns(prob="f0")}, "'f0' already exists"),
    ]
    for kwargs, message in cases:
        args = {"label": "y", "pilot": pilot, "rate": 0.1} | kwargs
        with pytest.raises(InputError, match=message) as exc:
            sample_frame(events, **args)
        assert "\n" not in str(exc.value)
    with pytest.raises(InputError, match="must be 0 or 1, found value 2"):
        sample_frame(events.with_columns(pl.lit(2).alias("y")), label="y", pilot=pilot)
    with pytest.raises(InputError, match="null"):
        sample_frame(events.with_columns(pl.lit(None, pl.Int64).alias("y")), label="y", pilot=pilot)
    with pytest.raises(InputError, match="must be 0 or 1, found type"):
        sample_frame(events.with_columns(pl.lit("a").alias("y")), label="y", pilot=pilot)
    nan_df = events.with_columns(
        pl.when(pl.col("id") == 13).then(float("nan")).otherwise(pl.col("f2")).alias("f2")
    )
    with pytest.raises(InputError, match="feature column 'f2'"):
        sample_frame(nan_df, label="y", pilot=pilot)
    with pytest.raises(InputError, match="feature column 'f1' not found"):
        sample_frame(events.drop("f1"), label="y", pilot=pilot)
    with pytest.raises(InputError, match="needs a pilot"):
        sample_frame(events, label="y", strategy="proportional")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_non_finite_features_are_caught_by_the_fused_kernels(events, pilot, bad) -> None:
    """The linear path skips a separate finiteness pass; the kernels must still catch it."""
    df = events.with_columns(
        pl.when(pl.col("id") == 13 + 7919 * 40_000).then(bad).otherwise(pl.col("f3")).alias("f3")
    )
    plan = sample_frame(events, label="y", pilot=pilot, rate=0.1, return_info=True)[1]["plan"]
    with pytest.raises(InputError, match=r"feature column 'f3' in part-7\.parquet"):
        draw_batch(df, label="y", pilot=pilot, plan=plan, source="part-7.parquet")
    with pytest.raises(InputError, match="feature column 'f3'"):
        sample_frame(df, label="y", pilot=pilot, rate=0.1)
