"""The pilot model: a case-control fit, population-scale scoring in chunks, save and load.

A :class:`Pilot` wraps any fitted scikit-learn binary classifier (or Pipeline) together with
the feature columns it reads, the shift that puts its logits on the population scale, and a
small reference sample of negatives from which the sampling scale ``kappa`` can be estimated
in one pass (Horvitz–Thompson, as in Wang, Zhang & Wang 2021).

Linear pilots (LogisticRegression, SGDClassifier with log loss, optionally behind
StandardScalers in a Pipeline) are reduced to one coefficient vector and scored inside the
Numba kernels straight from float32 feature columns; any other classifier is scored through
``decision_function`` / ``predict_proba`` in chunks.

A saved bundle (version 2) holds the model as pickled bytes next to what is derived from it
(the linear parts, the positive-class column, the feature count and the fingerprint), so
loading it and scoring with a linear pilot neither imports scikit-learn nor unpickles the
model; ``Pilot.model`` is unpickled on first use.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from fastsample.core import kernels as K
from fastsample.core.hashing import derive_seed, seed_mix
from fastsample.errors import InputError

PILOT_FORMAT = "fastsample-pilot"
# 1: the model object stored directly; 2: the model as pickled bytes plus its derived parts.
PILOT_VERSION = 2
DEFAULT_CHUNK_ROWS = 1 << 18
# Negatives kept in the bundle for the one-pass kappa estimate: enough for a relative
# standard error of the expected count well under 1% at ordinary rates, and a few MB on disk.
MAX_REFERENCE_ROWS = 200_000


def _positive_column(model: Any) -> int:
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise InputError(f"pilot model {type(model).__name__} is not fitted (no classes_)")
    classes = list(np.asarray(classes).tolist())
    if len(classes) != 2 or 1 not in classes:
        raise InputError(f"pilot model must be a binary 0/1 classifier, its classes are {classes}")
    return classes.index(1)


def _linear_parts(model: Any) -> tuple[np.ndarray, float] | None:
    """(coef, intercept) of a logistic-link linear model, scalers folded in; else None."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[Any] = list(model.steps) if isinstance(model, Pipeline) else [("m", model)]
    *pre, (_, last) = steps
    is_logistic = isinstance(last, LogisticRegression) or (
        isinstance(last, SGDClassifier) and last.loss == "log_loss"
    )
    if not is_logistic or np.asarray(last.coef_).shape[0] != 1:
        return None
    sign = 1.0 if list(np.asarray(last.classes_).tolist()).index(1) == 1 else -1.0
    coef = sign * np.asarray(last.coef_, dtype=np.float64)[0]
    intercept = sign * float(np.ravel(last.intercept_)[0]) if last.fit_intercept else 0.0
    # Fold scalers from the last one backwards: w.(x - m)/s = (w/s).x - w.m/s
    for _, step in reversed(pre):
        if step is None or step == "passthrough":
            continue
        if not isinstance(step, StandardScaler):
            return None
        scale = step.scale_ if step.with_std else np.ones_like(coef)
        mean = step.mean_ if step.with_mean else np.zeros_like(coef)
        coef = coef / np.asarray(scale, dtype=np.float64)
        intercept -= float(coef @ np.asarray(mean, dtype=np.float64))
    return coef, intercept


def _check_n_features(n_in: Any, features: list[str]) -> None:
    if n_in is not None and n_in != len(features):
        raise InputError(
            f"pilot model reads {n_in} features but {len(features)} feature names were given"
        )


def feature_matrix(
    frame: pl.DataFrame, features: list[str], *, source: str = "", check_finite: bool = True
) -> np.ndarray:
    """Feature columns as one column-major float matrix, validated.

    float32 columns stay float32 (no widening copy); mixed numeric columns become float64.
    Nulls, NaN, infinities and non-numeric columns raise ``InputError`` naming the column.
    """
    where = f" in {source}" if source else ""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InputError(f"feature column {missing[0]!r} not found{where}")
    sub = frame.select(features)
    for name, dtype in sub.schema.items():
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise InputError(f"feature column {name!r}{where} is not numeric ({dtype})")
    dtypes = set(sub.schema.values())
    target = pl.Float32 if dtypes <= {pl.Float32} else pl.Float64
    sub = sub.select(pl.all().cast(target))
    X = sub.to_numpy(order="fortran")
    if check_finite:
        raise_if_not_finite(X, features, source)
    return X


def raise_if_not_finite(X: np.ndarray, features: list[str], source: str = "") -> None:
    """``InputError`` naming the first feature column with a null, NaN or infinite value."""
    where = f" in {source}" if source else ""
    if X.shape[0] and not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(axis=0))[0])
        raise InputError(
            f"feature column {features[bad]!r}{where} contains null, NaN or infinite values"
        )


@dataclass
class Pilot:
    """A fitted pilot model and what is needed to use it on new data.

    Parameters
    ----------
    model : sklearn classifier or Pipeline
        Fitted binary classifier with classes 0 and 1.
    features : list of str
        Feature columns, in the order the model reads them.
    label : str, optional
        Label column it was trained on (informational).
    logit_shift : float
        Added to the model's logit to put it on the population scale (``log(q0/q1)`` after a
        case-control fit; 0 for a model trained on unsampled data).
    info_inv : ndarray, optional
        Inverse information matrix over the pilot sample (used by ``opt-a``).
    reference_X, reference_weight : ndarray, optional
        Negatives of the pilot's own sample and their Horvitz–Thompson weights, for the
        one-pass kappa estimate.
    n_rows, n_positive, n_negative : int, optional
        Counts of the data the pilot was drawn from.
    meta : dict
        Free-form provenance (seed, sample sizes, model name).

    Notes
    -----
    On a pilot read by :meth:`load`, ``model`` is unpickled (importing scikit-learn) on first
    access; linear scoring and ``fingerprint`` never need it.
    """

    model: Any
    features: list[str]
    label: str | None = None
    logit_shift: float = 0.0
    info_inv: np.ndarray | None = None
    reference_X: np.ndarray | None = None
    reference_weight: np.ndarray | None = None
    n_rows: int | None = None
    n_positive: int | None = None
    n_negative: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features = [str(f) for f in self.features]
        self._positive = _positive_column(self.model)
        self._linear = _linear_parts(self.model)
        self._n_features_in: int | None = getattr(self.model, "n_features_in_", None)
        _check_n_features(self._n_features_in, self.features)
        self._fingerprint: str | None = None
        # A loaded bundle keeps the pickled model here until ``model`` is first read.
        self._model_blob: bytes | None = None
        self._model_source = ""

    if not TYPE_CHECKING:  # at run time only, so mypy still flags unknown attributes

        def __getattr__(self, name: str) -> Any:
            # Only reached when ``model`` is not set yet, i.e. on a pilot read by ``load``.
            if name != "model" or self.__dict__.get("_model_blob") is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            return self._unpickle_model()

    def _unpickle_model(self) -> Any:
        import joblib

        blob = self._model_blob
        assert blob is not None  # only called while the model is still pickled
        try:
            model = joblib.load(io.BytesIO(blob))
        except Exception as exc:
            raise InputError(
                f"{self._model_source!r} is not a fastsample pilot file: its model cannot be"
                f" unpickled ({type(exc).__name__})"
            ) from None
        self.model = model
        self._model_blob = None  # the object is the truth from now on (save re-pickles it)
        return model

    @property
    def linear(self) -> tuple[np.ndarray, float] | None:
        """``(coef, intercept)`` on the population scale when the pilot is linear, else None."""
        if self._linear is None:
            return None
        coef, intercept = self._linear
        return coef, intercept + self.logit_shift

    @property
    def fingerprint(self) -> str:
        """Short SHA-256 of what the pilot computes (recorded in outputs).

        A linear pilot is identified by its features and population-scale coefficients, so the
        same fit gives the same fingerprint in any process. Other models by a joblib dump with
        the features and shift, which pickle's object sharing can make depend on what the
        process did before (a saved bundle keeps the fingerprint it was saved with).
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            lin = self.linear
            if lin is not None:
                h.update(b"fastsample-linear-pilot\0")
                h.update("\0".join(self.features).encode())
                h.update(np.ascontiguousarray(lin[0], dtype="<f8").tobytes())
                h.update(np.array([lin[1]], dtype="<f8").tobytes())
            else:
                import joblib

                buf = io.BytesIO()
                joblib.dump((self.model, self.features, float(self.logit_shift)), buf)
                h.update(buf.getvalue())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def logits(
        self, data: pl.DataFrame | np.ndarray, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> np.ndarray:
        """Population-scale logits of every row.

        Parameters
        ----------
        data : polars.DataFrame or 2-D array
            A frame holding the pilot's feature columns, or the feature matrix itself.
        chunk_rows : int
            Rows per ``predict_proba`` call for non-linear models.
        """
        X = (
            feature_matrix(data, self.features)
            if isinstance(data, pl.DataFrame)
            else np.asarray(data)
        )
        n = X.shape[0]
        out = np.empty(n, dtype=np.float64)
        if n == 0:
            return out
        lin = self.linear
        if lin is not None:
            K.for_rows(K.linear_logits, n)(X, lin[0], lin[1], out)
            return out
        for start in range(0, n, chunk_rows):
            out[start : start + chunk_rows] = self._model_logits(X[start : start + chunk_rows])
        out += self.logit_shift
        return out

    def _model_logits(self, X: np.ndarray) -> np.ndarray:
        chunk: Any = X
        if getattr(self.model, "feature_names_in_", None) is not None:
            chunk = pl.DataFrame(np.ascontiguousarray(X), schema=self.features, orient="row")
        if hasattr(self.model, "predict_proba"):
            p = np.asarray(self.model.predict_proba(chunk), dtype=np.float64)[:, self._positive]
            # The smallest/largest probabilities a float64 logit can come back from.
            p = np.clip(p, 1e-300, 1.0 - 2.0**-53)
            return np.log(p) - np.log1p(-p)
        d = np.asarray(self.model.decision_function(chunk), dtype=np.float64)
        return d if self._positive == 1 else -d

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the bundle with joblib (atomically: a temporary file, then a rename).

        The model goes in as pickled bytes beside its linear parts and fingerprint, so
        :meth:`load` can score a linear pilot without importing scikit-learn.
        """
        import joblib

        from fastsample.core.atomic import atomic_path

        target = Path(path)
        payload = {"format": PILOT_FORMAT, "version": PILOT_VERSION, "pilot": self._state()}
        # atomic_path: an anonymous file linked in at the end, so even SIGKILL leaves nothing.
        with atomic_path(target, overwrite=True) as tmp, open(tmp, "wb") as fh:
            joblib.dump(payload, fh)
        return target

    def _state(self) -> dict[str, Any]:
        if "model" not in self.__dict__ and self._model_blob is not None:
            blob = self._model_blob  # loaded and never unpickled: write the same bytes back
        else:
            import joblib

            buf = io.BytesIO()
            joblib.dump(self.model, buf)
            blob = buf.getvalue()
        return {
            "model_pickle": blob,
            # What loading needs without the model; the fingerprint is the in-memory one, so
            # a reloaded pilot records the same fingerprint in outputs as the original.
            "derived": {
                "positive": self._positive,
                "linear": self._linear,
                "n_features_in": self._n_features_in,
                "fingerprint": self.fingerprint,
            },
            "features": self.features,
            "label": self.label,
            "logit_shift": self.logit_shift,
            "info_inv": self.info_inv,
            "reference_X": self.reference_X,
            "reference_weight": self.reference_weight,
            "n_rows": self.n_rows,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "meta": self.meta,
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pilot:
        """Read a bundle written by :meth:`save`; ``InputError`` if the file is not one."""
        import joblib

        p = Path(path)
        if not p.is_file():
            raise InputError(f"pilot file {str(p)!r} does not exist")
        try:
            payload = joblib.load(p)
        except Exception as exc:
            raise InputError(
                f"{str(p)!r} is not a fastsample pilot file ({type(exc).__name__})"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != PILOT_FORMAT:
            raise InputError(f"{str(p)!r} is not a fastsample pilot file")
        version = payload.get("version")
        if version not in (1, PILOT_VERSION):
            raise InputError(f"pilot file {str(p)!r} has unsupported version {version!r}")
        try:
            if version == 1:
                # The model object itself: unpickling it imports scikit-learn.
                return cls(**payload["pilot"])
            return cls._from_state(payload["pilot"], source=str(p))
        except InputError:
            raise  # already one line naming what is wrong (InputError is a ValueError)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{str(p)!r} is not a fastsample pilot file (malformed {type(exc).__name__})"
            ) from None

    @classmethod
    def _from_state(cls, state: dict[str, Any], *, source: str) -> Pilot:
        """A version-2 pilot whose model stays pickled until first read (no __post_init__)."""
        pilot = cls.__new__(cls)
        for f in fields(cls):
            if f.name != "model":
                setattr(pilot, f.name, state[f.name])
        pilot.features = [str(f) for f in pilot.features]
        derived = state["derived"]
        pilot._positive = int(derived["positive"])
        lin = derived["linear"]
        pilot._linear = (
            None if lin is None else (np.asarray(lin[0], dtype=np.float64), float(lin[1]))
        )
        n_in = derived["n_features_in"]
        pilot._n_features_in = None if n_in is None else int(n_in)
        _check_n_features(pilot._n_features_in, pilot.features)
        pilot._fingerprint = str(derived["fingerprint"])
        blob = state["model_pickle"]
        if not isinstance(blob, bytes):
            raise TypeError("model_pickle")
        pilot._model_blob = blob
        pilot._model_source = source
        return pilot


def as_pilot(obj: Any, features: list[str] | None = None) -> Pilot:
    """A :class:`Pilot` from a bundle, a path to a saved bundle, or a fitted classifier.

    Parameters
    ----------
    obj : Pilot, str, os.PathLike or fitted sklearn classifier
    features : list of str, optional
        Needed for a bare classifier fitted without column names. For a bundle, when given,
        it must match the bundle's features.
    """
    if isinstance(obj, (str, os.PathLike)):
        obj = Pilot.load(obj)
    if isinstance(obj, Pilot):
        if features is not None and list(features) != obj.features:
            raise InputError(f"features {list(features)} differ from the pilot's {obj.features}")
        return obj
    if not (hasattr(obj, "predict_proba") or hasattr(obj, "decision_function")):
        raise InputError(
            f"pilot must be a Pilot, a pilot file or a fitted classifier, got {type(obj).__name__}"
        )
    names = getattr(obj, "feature_names_in_", None)
    if features is None:
        if names is None:
            raise InputError("give `features` for a pilot model fitted without column names")
        features = [str(n) for n in names]
    elif names is not None and [str(n) for n in names] != list(features):
        raise InputError(f"features {list(features)} differ from the model's {list(names)}")
    return Pilot(model=obj, features=list(features))


def _make_model(model: Any, seed: int) -> Any:
    from sklearn.base import clone

    if not isinstance(model, str):
        return clone(model)
    if model == "logistic":
        from sklearn.linear_model import LogisticRegression

        # Weak penalty: the pilot should be close to the unpenalised MLE on large samples.
        return LogisticRegression(C=100.0, max_iter=1000)
    if model == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss="log_loss", alpha=1e-6, random_state=seed % (2**32))
    if model in ("hgb", "gbm"):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed % (2**32))
    raise InputError(f"unknown pilot model {model!r}; use 'logistic', 'sgd', 'hgb' or a classifier")


def case_control_rates(
    n_positive: int,
    n_negative: int,
    *,
    negatives_per_positive: float = 1.0,
    max_rows: int | None = None,
) -> tuple[float, float]:
    """Keep-rates ``(q1, q0)`` of the pilot's case-control sample.

    About ``negatives_per_positive`` negatives per positive; when ``max_rows`` is given, both
    classes are thinned so the expected sample size stays within it.
    """
    if n_positive == 0 or n_negative == 0:
        cls = "positive" if n_positive == 0 else "negative"
        raise InputError(f"cannot train a pilot: the data has no {cls} rows")
    q1 = 1.0
    q0 = min(1.0, negatives_per_positive * n_positive / n_negative)
    if max_rows is not None:
        expected = q1 * n_positive + q0 * n_negative
        if expected > max_rows:
            shrink = max_rows / expected
            q1 *= shrink
            q0 *= shrink
    return q1, q0


def fit_pilot(
    X: Any,
    y: Any,
    *,
    features: list[str] | None = None,
    model: Any = "logistic",
    seed: int = 0,
    keys: Any = None,
    negatives_per_positive: float = 1.0,
    max_rows: int | None = None,
    label: str | None = None,
) -> Pilot:
    """Train a pilot on a case-control sample drawn with the keyed hash, then correct it.

    The sample keeps positives with probability ``q1`` and negatives with ``q0`` (see
    :func:`case_control_rates`), drawn on the independent stream ``derive_seed(seed, "pilot")``.
    The fitted logits are shifted by ``log(q0 / q1)`` (``-log(N0/N1)`` for a half/half sample),
    so the pilot predicts population-scale probabilities.

    Parameters
    ----------
    X : polars.DataFrame or 2-D array
        Features of every row (a frame may hold other columns too).
    y : array-like of 0/1
        Labels.
    features : list of str, optional
        Feature columns (default: all columns of a frame, or ``x0..x{d-1}`` for an array).
    model : str or sklearn classifier
        ``"logistic"`` (default), ``"sgd"``, ``"hgb"`` or an unfitted classifier to clone.
    seed : int
        Sampling seed; the pilot uses its own derived stream.
    keys : array-like, optional
        Row key words (uint64); default the row index.
    negatives_per_positive : float
        Case-control ratio.
    max_rows : int, optional
        Cap on the expected pilot sample size.
    label : str, optional
        Label column name recorded in the bundle.
    """
    if isinstance(X, pl.DataFrame):
        features = list(features) if features is not None else list(X.columns)
        Xm = feature_matrix(X, features)
    else:
        Xm = np.asarray(X)
        if Xm.ndim != 2:
            raise InputError(f"X must be two-dimensional, got shape {Xm.shape}")
        features = list(features) if features is not None else [f"x{j}" for j in range(Xm.shape[1])]
        if len(features) != Xm.shape[1]:
            raise InputError(f"{len(features)} feature names for {Xm.shape[1]} columns")
        if not np.isfinite(Xm).all():
            bad = int(np.flatnonzero(~np.isfinite(Xm).all(axis=0))[0])
            raise InputError(f"feature column {features[bad]!r} contains NaN or infinite values")
    yv = np.asarray(y)
    if yv.shape != (Xm.shape[0],):
        raise InputError(f"y has shape {yv.shape}, expected ({Xm.shape[0]},)")
    n1 = int(np.count_nonzero(yv == 1))
    n0 = int(np.count_nonzero(yv == 0))
    if n0 + n1 != yv.shape[0]:
        raise InputError("labels must be 0 or 1")
    q1, q0 = case_control_rates(
        n1, n0, negatives_per_positive=negatives_per_positive, max_rows=max_rows
    )
    words = (
        np.arange(yv.shape[0], dtype=np.uint64)
        if keys is None
        else np.asarray(keys, dtype=np.uint64)
    )
    u = np.empty(yv.shape[0])
    K.for_rows(K.uniform_from_keys, u.size)(words, seed_mix(derive_seed(seed, "pilot")), u)
    q = np.where(yv == 1, q1, q0)
    take = u < q
    return fit_case_control(
        np.ascontiguousarray(Xm[take]),
        yv[take],
        words[take],
        q1=q1,
        q0=q0,
        features=features,
        model=model,
        seed=seed,
        label=label,
        n_positive=n1,
        n_negative=n0,
    )


def fit_case_control(
    Xs: np.ndarray,
    ys: Any,
    sample_keys: np.ndarray,
    *,
    q1: float,
    q0: float,
    features: list[str],
    model: Any = "logistic",
    seed: int = 0,
    label: str | None = None,
    n_positive: int,
    n_negative: int,
) -> Pilot:
    """Fit a pilot on an already-drawn case-control sample and put it on the population scale.

    The second half of :func:`fit_pilot`, shared with the streaming
    :func:`fastsample.engines.parquet.train_pilot` (which draws the sample from Parquet batches).

    Parameters
    ----------
    Xs, ys : arrays
        Features and 0/1 labels of the sampled rows.
    sample_keys : ndarray of uint64
        Key words of the sampled rows: rows are fitted in key order (so the pilot does not
        depend on the order they arrived in), and they seed the reference subsample's stream.
    q1, q0 : float
        Keep-rates the sample was drawn with (see :func:`case_control_rates`).
    n_positive, n_negative : int
        Class counts of the whole data.
    """
    # Put the rows in key order first: the fit, the information matrix and the reference
    # sample all sum over rows, and the pilot must not depend on the order in which an engine
    # (Parquet files, Spark partitions) delivered its sample (DESIGN.md §3).
    sample_keys = np.asarray(sample_keys, dtype=np.uint64)
    order = np.argsort(sample_keys, kind="stable")
    Xs, sample_keys = np.ascontiguousarray(np.asarray(Xs)[order]), sample_keys[order]
    ys = np.asarray(ys)[order].astype(np.int64)
    if ys.min(initial=1) == ys.max(initial=0):
        raise InputError("the pilot's case-control sample holds only one class; use more rows")
    fitted = _make_model(model, seed)
    fitted.fit(Xs, ys)
    pilot = Pilot(
        model=fitted,
        features=features,
        label=label,
        logit_shift=float(np.log(q0) - np.log(q1)),
        n_rows=int(n_positive + n_negative),
        n_positive=int(n_positive),
        n_negative=int(n_negative),
        meta={
            "seed": int(seed),
            "q0": q0,
            "q1": q1,
            "sample_rows": int(ys.shape[0]),
            "model": model if isinstance(model, str) else type(model).__name__,
        },
    )
    eta = pilot.logits(Xs)
    weights = np.where(ys == 1, 1.0 / q1, 1.0 / q0)
    from fastsample.core.strategies import information_inverse

    pilot.info_inv = information_inverse(Xs, eta, weights)
    neg = ys == 0
    ref_X, ref_w = Xs[neg], weights[neg]
    if ref_X.shape[0] > MAX_REFERENCE_ROWS:
        # Keep a keyed subsample (independent of the pilot draw) and reweight it.
        sub_u = np.empty(ref_X.shape[0])
        keys_neg = np.ascontiguousarray(np.asarray(sample_keys, dtype=np.uint64)[neg])
        K.uniform_from_keys(keys_neg, seed_mix(derive_seed(seed, "pilot-reference")), sub_u)
        frac = MAX_REFERENCE_ROWS / ref_X.shape[0]
        keep = sub_u < frac
        ref_X, ref_w = ref_X[keep], ref_w[keep] / frac
    pilot.reference_X = np.asarray(
        ref_X, dtype=np.float32 if Xs.dtype == np.float32 else np.float64
    )
    pilot.reference_weight = ref_w
    return pilot
