"""Saved pilot files (version 3): data, not code.

A linear pilot is read without pickle and without scikit-learn; a non-linear model and the
pickled bundles of versions 1 and 2 load only with ``trusted=True``, and a crafted pickle is
refused before anything in it runs.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile

import joblib
import numpy as np
import polars as pl
import pytest
from helpers import FEATURES, make_events
from sklearn.linear_model import LogisticRegression

from fastsample.cli import main
from fastsample.core.pilot import Pilot, as_pilot
from fastsample.core.pilot_fit import fit_pilot
from fastsample.core.pilot_io import PILOT_FORMAT, PILOT_VERSION
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
        from fastsample.core.plan import plan_from_pilot
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
    from fastsample.core.plan import plan_from_pilot

    # json round-trips floats exactly, so the kappa must be the in-memory pilot's bit for bit
    assert got["kappa"] == plan_from_pilot(pilot, strategy="proportional", rate=0.2, seed=7).kappa
    from fastsample.engines.sinks import read_metadata

    assert read_metadata(out)["pilot_fingerprint"] == pilot.fingerprint


def _assert_same_model(a, b, X) -> None:
    # A loaded linear pilot's model is a LogisticRegression with any scaler folded in: the
    # same function up to the rounding of the fold (in float64: a Pipeline given float32 rows
    # standardises them in float32).
    X = np.asarray(X, dtype=np.float64)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9, atol=1e-15)


def test_round_trip_keeps_the_fingerprint_and_the_model(tmp_path, data, linear) -> None:
    path = linear.save(tmp_path / "p.npz")
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as npz:  # nothing in it needs pickle
        assert "model_pickle" not in npz.files
        assert json.loads(bytes(npz["header"]))["version"] == PILOT_VERSION == 3
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
    _assert_same_model(q.model, linear.model, X)
    assert not _is_lazy(q) and type(q.model) is LogisticRegression
    # Saving a loaded pilot (before or after the model was read) keeps its fingerprint.
    r = Pilot.load(Pilot.load(path).save(tmp_path / "again.npz"))
    s = Pilot.load(q.save(tmp_path / "read.npz"))
    assert r.fingerprint == s.fingerprint == linear.fingerprint
    _assert_same_model(r.model, s.model, X)


def test_a_lazy_pilot_pickles_without_reading_its_model(tmp_path, data, linear) -> None:
    """Spark broadcasts the Pilot object itself: the copy stays lazy and scores the same."""
    q = Pilot.load(linear.save(tmp_path / "p.npz"))
    c = pickle.loads(pickle.dumps(q))
    assert _is_lazy(q) and _is_lazy(c)
    assert c.fingerprint == linear.fingerprint
    np.testing.assert_array_equal(c.logits(data), linear.logits(data))
    X = data.select(FEATURES).to_numpy()[:500]
    _assert_same_model(c.model, linear.model, X)
    with pytest.raises(AttributeError):
        _ = c.no_such_attribute  # type: ignore[attr-defined]


def test_non_linear_pilot_needs_trust_and_then_scores_identically(tmp_path, data) -> None:
    p = fit_pilot(data, data["y"].to_numpy(), features=FEATURES, model="hgb", seed=5)
    path = p.save(tmp_path / "hgb.npz")
    with pytest.raises(InputError, match=r"hgb\.npz.*pickled .*HistGradientBoosting.*trusted=True"):
        Pilot.load(path)
    with pytest.raises(InputError, match="--trust-pilot"):
        as_pilot(path)
    q = Pilot.load(path, trusted=True)
    assert q.linear is None and _is_lazy(q)
    assert q.fingerprint == p.fingerprint
    np.testing.assert_array_equal(q.logits(data), p.logits(data))
    assert not _is_lazy(q)  # scoring a non-linear pilot had to read the model
    assert as_pilot(path, trusted=True).fingerprint == p.fingerprint


def _state(linear) -> dict:
    return {
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


def _version_2_bundle(path, linear) -> None:
    """A bundle as version 2 wrote it: the model pickled inside a joblib pickle."""
    buf = io.BytesIO()
    joblib.dump(linear.model, buf)
    state = {
        **_state(linear),
        "model_pickle": buf.getvalue(),
        "derived": {
            "positive": 1,
            "linear": linear._linear,
            "n_features_in": len(linear.features),
            "fingerprint": linear.fingerprint,
        },
    }
    joblib.dump({"format": PILOT_FORMAT, "version": 2, "pilot": state}, path)


def test_old_bundles_load_only_when_trusted(tmp_path, data, linear) -> None:
    """Versions 1 (the model object in the payload) and 2 (its pickled bytes) are pickles."""
    v1 = tmp_path / "v1.joblib"
    joblib.dump(
        {"format": PILOT_FORMAT, "version": 1, "pilot": {"model": linear.model, **_state(linear)}},
        v1,
    )
    v2 = tmp_path / "v2.joblib"
    _version_2_bundle(v2, linear)
    X = data.select(FEATURES).to_numpy()[:500]
    for path in (v1, v2):
        with pytest.raises(
            InputError, match=rf"{path.name}.*earlier version.*--trust-pilot"
        ) as err:
            as_pilot(path)
        assert "\n" not in str(err.value)
        q = as_pilot(path, trusted=True)
        assert q.features == linear.features and q.fingerprint == linear.fingerprint
        np.testing.assert_array_equal(q.linear[0], linear.linear[0])
        np.testing.assert_array_equal(q.logits(data), linear.logits(data))
        np.testing.assert_array_equal(q.model.predict_proba(X), linear.model.predict_proba(X))
        # Re-saved, it is a version-3 file that loads without trust, same fingerprint.
        r = Pilot.load(q.save(tmp_path / f"{path.stem}-resaved.npz"))
        assert _is_lazy(r) and r.fingerprint == linear.fingerprint


class _Evil:
    """A pickle that creates a file when it is unpickled (what an attacker would ship)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite(src, dst, header=None, drop=(), **arrays) -> None:
    """Copy a version-3 file, changing header fields (None: removed) and members."""
    with np.load(src, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files if k not in drop}
    head = json.loads(bytes(members["header"]))
    head.update(header or {})
    head = {k: v for k, v in head.items() if v is not None or k not in (header or {})}
    members["header"] = np.frombuffer(json.dumps(head).encode(), dtype=np.uint8)
    members.update(arrays)
    with open(dst, "wb") as fh:
        np.savez(fh, **members)


def test_a_crafted_pickle_is_refused_without_running(tmp_path, data, linear, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(InputError, match=r"evil\.joblib.*--trust-pilot"):
        Pilot.load(evil)
    assert not marker.exists()
    # the CLI too: one line, exit 2, nothing ran
    src = tmp_path / "log.parquet"
    data.write_parquet(src)
    code = main(
        [
            "sample",
            str(src),
            "-o",
            str(tmp_path / "out.parquet"),
            "--label",
            "y",
            "--pilot",
            str(evil),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--trust-pilot" in err and err.count("\n") == 1
    assert not marker.exists()
    # The same bytes as the model of a version-3 file, and as a pickled object array member.
    hgb = fit_pilot(data, data["y"].to_numpy(), features=FEATURES, model="hgb", seed=5)
    good = hgb.save(tmp_path / "hgb.npz")
    _rewrite(
        good,
        tmp_path / "evil-model.npz",
        model_pickle=np.frombuffer(pickle.dumps(_Evil(marker)), dtype=np.uint8),
    )
    with pytest.raises(InputError, match="trusted=True"):
        Pilot.load(tmp_path / "evil-model.npz")
    buf = io.BytesIO()
    np.save(buf, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    lin = linear.save(tmp_path / "lin.npz")
    with zipfile.ZipFile(tmp_path / "evil-array.npz", "w") as z:
        with zipfile.ZipFile(lin) as zin:
            for item in zin.namelist():
                if item != "reference_X.npy":
                    z.writestr(item, zin.read(item))
        z.writestr("reference_X.npy", buf.getvalue())
    with pytest.raises(InputError, match=r"evil-array\.npz.*not a fastsample pilot file"):
        Pilot.load(tmp_path / "evil-array.npz")
    assert not marker.exists()
    # What the refusal prevents: trusting the file runs its code.
    with pytest.raises(InputError):
        Pilot.load(evil, trusted=True)
    assert marker.exists()


def test_from_linear_is_the_linear_pilot_of_the_same_coefficients(data) -> None:
    """The online learner's pilot: no fitted model, same logits and fingerprint as a fitted one."""
    X = data.select(FEATURES).to_numpy()
    model = LogisticRegression().fit(X, data["y"].to_numpy())
    fitted = Pilot(model, FEATURES, logit_shift=-1.5)
    bare = Pilot.from_linear(model.coef_[0], float(model.intercept_[0]), FEATURES, logit_shift=-1.5)
    assert bare.fingerprint == fitted.fingerprint and _is_lazy(bare)
    np.testing.assert_array_equal(bare.logits(data), fitted.logits(data))
    _assert_same_model(bare.model, model, X[:500])
    with pytest.raises(TypeError, match="unknown Pilot fields"):
        Pilot.from_linear(model.coef_[0], 0.0, FEATURES, shift=1.0)
    with pytest.raises(InputError, match="reads 4 features but 2"):
        Pilot.from_linear(model.coef_[0], 0.0, ["a", "b"])


def test_trust_pilot_flag_samples_with_a_non_linear_pilot(tmp_path, data, capsys) -> None:
    src = tmp_path / "log.parquet"
    data.write_parquet(src)
    path = tmp_path / "hgb.npz"
    train = ["pilot", str(src), "-o", str(path), "--label", "y", "-f", "f*", "--model", "hgb"]
    assert main(train) == 0
    assert "sample --trust-pilot" in capsys.readouterr().out  # the summary says so
    out = tmp_path / "out.parquet"
    args = ["sample", str(src), "-o", str(out), "--label", "y", "--pilot", str(path), "--quiet"]
    assert main(args) == 2
    assert "--trust-pilot" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--trust-pilot"]) == 0 and out.exists()


def test_corrupt_model_blob_is_a_one_line_error_naming_the_file(tmp_path, data) -> None:
    p = fit_pilot(data, data["y"].to_numpy(), features=FEATURES, model="hgb", seed=5)
    bad = tmp_path / "bad-model.npz"
    _rewrite(p.save(tmp_path / "hgb.npz"), bad, model_pickle=np.frombuffer(b"junk", np.uint8))
    q = Pilot.load(bad, trusted=True)  # lazy: the model is read on first use
    with pytest.raises(InputError, match=r"bad-model\.npz.*model cannot be unpickled") as err:
        _ = q.model
    assert "\n" not in str(err.value)


def test_bad_version_3_files(tmp_path, linear) -> None:
    path = linear.save(tmp_path / "p.npz")
    _rewrite(path, tmp_path / "v4.npz", header={"version": 4})
    with pytest.raises(InputError, match="unsupported version 4"):
        Pilot.load(tmp_path / "v4.npz")
    _rewrite(path, tmp_path / "other.npz", header={"format": "something-else"})
    with pytest.raises(InputError, match=r"other\.npz.*not a fastsample pilot file"):
        Pilot.load(tmp_path / "other.npz")
    _rewrite(path, tmp_path / "nocoef.npz", drop=("coef",))
    with pytest.raises(InputError, match=r"nocoef\.npz.*not a fastsample pilot file"):
        Pilot.load(tmp_path / "nocoef.npz")
    _rewrite(path, tmp_path / "nofp.npz", header={"fingerprint": None})
    with pytest.raises(InputError, match=r"nofp\.npz.*not a fastsample pilot file"):
        Pilot.load(tmp_path / "nofp.npz")
    _rewrite(path, tmp_path / "features.npz", header={"features": ["f0"]})
    with pytest.raises(InputError, match="reads 4 features but 1 feature names"):
        Pilot.load(tmp_path / "features.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(InputError, match="not a fastsample pilot file"):
        Pilot.load(tmp_path / "empty.npz")


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
        from fastsample.core.pilot import as_pilot
        from fastsample.core.pilot_fit import fit_pilot
        if len(sys.argv) > 1:
            as_pilot(sys.argv[1]).model  # load a pilot and build its model first
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
