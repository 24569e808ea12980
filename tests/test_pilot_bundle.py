"""Saved pilot bundles (version 2): a lazily unpickled model, stored fingerprint, version 1 still read."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import polars as pl
import pytest
from helpers import FEATURES, make_events

from fastsample.core.pilot import PILOT_FORMAT, PILOT_VERSION, Pilot, as_pilot, fit_pilot
from fastsample.errors import InputError
from fastsample.harness.synthetic import generate


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return make_events(40_000, seed=21)


@pytest.fixture(scope="module")
def linear(data) -> Pilot:
    return fit_pilot(data, data["y"].to_numpy(), features=FEATURES, seed=5, label="y")


def _is_lazy(p: Pilot) -> bool:
    # The model has not been unpickled yet: it is not an instance attribute.
    return "model" not in vars(p)


def test_linear_pilot_is_loaded_and_used_without_sklearn(tmp_path) -> None:
    """Load, fingerprint, one-pass plan and a Parquet sample, all in a fresh interpreter."""
    src = tmp_path / "log.parquet"
    generate(src, rows=30_000, features=4, event_rate=0.05, seed=2)
    frame = pl.read_parquet(src)
    feats = [f"f{j}" for j in range(4)]
    pilot = fit_pilot(frame, frame["y"].to_numpy(), features=feats, seed=3, label="y")
    path = pilot.save(tmp_path / "pilot.joblib")
    out = tmp_path / "sample.parquet"
    code = textwrap.dedent(
        f"""
        import json, sys
        import fastsample
        from fastsample.engines.batch import plan_from_pilot
        p = fastsample.core.pilot.as_pilot({str(path)!r})
        coef, intercept = p.linear
        fp = p.fingerprint
        plan = plan_from_pilot(p, strategy="proportional", rate=0.2, seed=7)
        rep = fastsample.sample_parquet({str(src)!r}, {str(out)!r}, label="y", pilot=p,
                                        rate=0.2, seed=7, progress=False)
        print(json.dumps({{
            "sklearn": sorted(m for m in sys.modules if m.split(".")[0] == "sklearn"),
            "fp": fp, "report_fp": rep.pilot_fingerprint, "kappa": plan.kappa,
            "coef": list(coef), "intercept": intercept, "lazy": "model" not in vars(p),
        }}))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["sklearn"] == []
    assert got["lazy"]
    assert got["fp"] == got["report_fp"] == pilot.fingerprint
    coef, intercept = pilot.linear
    assert got["coef"] == coef.tolist() and got["intercept"] == intercept
    from fastsample.engines.batch import plan_from_pilot

    # json round-trips floats exactly, so the kappa must be the in-memory pilot's bit for bit
    assert got["kappa"] == plan_from_pilot(pilot, strategy="proportional", rate=0.2, seed=7).kappa
    from fastsample.engines.io import read_metadata

    assert read_metadata(out)["pilot_fingerprint"] == pilot.fingerprint


def test_round_trip_keeps_the_fingerprint_and_the_model(tmp_path, data, linear) -> None:
    path = linear.save(tmp_path / "p.joblib")
    q = Pilot.load(path)
    assert _is_lazy(q)
    assert q.fingerprint == linear.fingerprint
    assert q.features == linear.features and q.label == "y" and q.meta == linear.meta
    np.testing.assert_array_equal(q.linear[0], linear.linear[0])
    assert q.linear[1] == linear.linear[1]
    np.testing.assert_array_equal(q.logits(data), linear.logits(data))
    np.testing.assert_array_equal(q.info_inv, linear.info_inv)
    np.testing.assert_array_equal(q.reference_X, linear.reference_X)
    np.testing.assert_array_equal(q.reference_weight, linear.reference_weight)
    assert _is_lazy(q)  # none of the above needed the model
    X = data.select(FEATURES).to_numpy()
    np.testing.assert_array_equal(q.model.predict_proba(X), linear.model.predict_proba(X))
    assert not _is_lazy(q) and type(q.model) is type(linear.model)
    # Saving a loaded pilot (before or after the model was read) keeps its fingerprint.
    r = Pilot.load(Pilot.load(path).save(tmp_path / "again.joblib"))
    s = Pilot.load(q.save(tmp_path / "read.joblib"))
    assert r.fingerprint == s.fingerprint == linear.fingerprint
    np.testing.assert_array_equal(r.model.predict_proba(X), s.model.predict_proba(X))


def test_a_lazy_pilot_pickles_without_reading_its_model(tmp_path, data, linear) -> None:
    """Spark broadcasts the Pilot object itself: the copy stays lazy and scores the same."""
    q = Pilot.load(linear.save(tmp_path / "p.joblib"))
    c = pickle.loads(pickle.dumps(q))
    assert _is_lazy(q) and _is_lazy(c)
    assert c.fingerprint == linear.fingerprint
    np.testing.assert_array_equal(c.logits(data), linear.logits(data))
    X = data.select(FEATURES).to_numpy()[:500]
    np.testing.assert_array_equal(c.model.predict_proba(X), linear.model.predict_proba(X))
    with pytest.raises(AttributeError):
        _ = c.no_such_attribute  # type: ignore[attr-defined]


def test_non_linear_pilot_round_trip_scores_identically(tmp_path, data) -> None:
    p = fit_pilot(data, data["y"].to_numpy(), features=FEATURES, model="hgb", seed=5)
    q = Pilot.load(p.save(tmp_path / "hgb.joblib"))
    assert q.linear is None and _is_lazy(q)
    assert q.fingerprint == p.fingerprint
    np.testing.assert_array_equal(q.logits(data), p.logits(data))
    assert not _is_lazy(q)  # scoring a non-linear pilot had to read the model


def test_version_1_bundle_still_loads(tmp_path, data, linear) -> None:
    """A bundle as written before version 2: the model object itself in the payload."""
    state = {
        "model": linear.model,
        "features": linear.features,
        "label": linear.label,
        "logit_shift": linear.logit_shift,
        "info_inv": linear.info_inv,
        "reference_X": linear.reference_X,
        "reference_weight": linear.reference_weight,
        "n_rows": linear.n_rows,
        "n_positive": linear.n_positive,
        "n_negative": linear.n_negative,
        "meta": linear.meta,
    }
    path = tmp_path / "v1.joblib"
    joblib.dump({"format": PILOT_FORMAT, "version": 1, "pilot": state}, path)
    q = as_pilot(path)
    assert not _is_lazy(q) and q.features == linear.features
    np.testing.assert_array_equal(q.linear[0], linear.linear[0])
    np.testing.assert_array_equal(q.logits(data), linear.logits(data))
    X = data.select(FEATURES).to_numpy()[:500]
    np.testing.assert_array_equal(q.model.predict_proba(X), linear.model.predict_proba(X))
    # Re-saved, it becomes a version-2 bundle with the fingerprint it had as version 1.
    r = Pilot.load(q.save(tmp_path / "v2.joblib"))
    assert _is_lazy(r) and r.fingerprint == q.fingerprint
    assert joblib.load(tmp_path / "v2.joblib")["version"] == PILOT_VERSION == 2


def _rewrite(src, dst, **changes) -> None:
    payload = joblib.load(src)
    payload["pilot"].update(changes)
    joblib.dump(payload, dst)


def test_corrupt_model_blob_is_a_one_line_error_naming_the_file(tmp_path, data, linear) -> None:
    path = linear.save(tmp_path / "p.joblib")
    bad = tmp_path / "bad-model.joblib"
    _rewrite(path, bad, model_pickle=b"not a pickle")
    q = Pilot.load(bad)  # lazy: the linear parts still work
    np.testing.assert_array_equal(q.logits(data), linear.logits(data))
    with pytest.raises(InputError, match=r"bad-model\.joblib.*model cannot be unpickled") as err:
        _ = q.model
    assert "\n" not in str(err.value)


def test_bad_version_2_bundles(tmp_path, linear) -> None:
    path = linear.save(tmp_path / "p.joblib")
    payload = joblib.load(path)
    payload["version"] = 3
    joblib.dump(payload, tmp_path / "v3.joblib")
    with pytest.raises(InputError, match="unsupported version 3"):
        Pilot.load(tmp_path / "v3.joblib")
    _rewrite(path, tmp_path / "nomodel.joblib", model_pickle=None)
    with pytest.raises(InputError, match=r"nomodel\.joblib.*not a fastsample pilot file"):
        Pilot.load(tmp_path / "nomodel.joblib")
    payload = joblib.load(path)
    del payload["pilot"]["derived"]
    joblib.dump(payload, tmp_path / "noderived.joblib")
    with pytest.raises(InputError, match=r"noderived\.joblib.*not a fastsample pilot file"):
        Pilot.load(tmp_path / "noderived.joblib")
    payload = joblib.load(path)
    payload["pilot"]["features"] = ["f0"]
    joblib.dump(payload, tmp_path / "features.joblib")
    with pytest.raises(InputError, match="reads 4 features but 1 feature names"):
        Pilot.load(tmp_path / "features.joblib")


def test_linear_fingerprint_does_not_depend_on_the_process_history(tmp_path, linear) -> None:
    """The same fit, in a fresh process and in one that loaded a pilot first, same fingerprint.

    A joblib dump of the model depended on what pickle had shared before; a linear pilot is
    now identified by its features and population-scale coefficients.
    """
    path = linear.save(tmp_path / "other.joblib")
    fit = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, "tests")
        from helpers import FEATURES, make_events
        from fastsample.core.pilot import as_pilot, fit_pilot
        if len(sys.argv) > 1:
            as_pilot(sys.argv[1]).model  # load and unpickle a bundle first
        data = make_events(20_000, seed=4)
        print(fit_pilot(data, data["y"].to_numpy(), features=FEATURES, seed=9).fingerprint)
        """
    )
    fresh = subprocess.run([sys.executable, "-c", fit], capture_output=True, text=True, check=True)
    after = subprocess.run(
        [sys.executable, "-c", fit, str(path)], capture_output=True, text=True, check=True
    )
    assert fresh.stdout.strip() and fresh.stdout == after.stdout
    # and it tracks the coefficients: a different fit, a different fingerprint
    assert linear.fingerprint != fresh.stdout.strip()
