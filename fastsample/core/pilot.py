"""The pilot model: the bundle, population-scale scoring in chunks, and its file.

A :class:`Pilot` wraps any fitted scikit-learn binary classifier (or Pipeline) together with
the feature columns it reads, the shift that puts its logits on the population scale, and a
small reference sample of negatives from which the sampling scale ``kappa`` can be estimated
in one pass (Horvitz–Thompson, as in Wang, Zhang & Wang 2021). Pilots are trained by
:mod:`fastsample.core.pilot_fit`.

Linear pilots (LogisticRegression, SGDClassifier with log loss, optionally behind
StandardScalers in a Pipeline) are reduced to one coefficient vector and scored inside the
Numba kernels straight from float32 feature columns; any other classifier is scored through
``decision_function`` / ``predict_proba`` in chunks.

A saved pilot (:mod:`fastsample.core.pilot_io`) is data, not code: a linear pilot is its
coefficients and arrays, read without pickle and without scikit-learn. Only a non-linear model
is stored pickled, and loading it needs ``trusted=True``.
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
from fastsample.core.pilot_io import read_pilot_file, write_pilot_file
from fastsample.errors import InputError

DEFAULT_CHUNK_ROWS = 1 << 18


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
    # Imported here, not at the top: a loaded linear pilot scores without scikit-learn.
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
    On a pilot read by :meth:`load`, ``model`` is built on first access (importing
    scikit-learn): for a linear pilot, a ``LogisticRegression`` carrying the stored
    coefficients (scalers folded in); for a trusted non-linear pilot, the unpickled model.
    Linear scoring and ``fingerprint`` never need it.
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

    @classmethod
    def from_linear(cls, coef: Any, intercept: float, features: list[str], **fields_: Any) -> Pilot:
        """A linear pilot from its coefficients, without a fitted scikit-learn model.

        Parameters
        ----------
        coef : array-like of shape (n_features,)
            Coefficients on the pilot's (sampled) logit scale.
        intercept : float
        features : list of str
        **fields_
            Other :class:`Pilot` fields (``logit_shift``, ``info_inv``, ...).
        """
        state = {
            f.name: f.default_factory() if callable(f.default_factory) else f.default
            for f in fields(cls)
            if f.name != "model"
        }
        if set(fields_) - set(state):
            raise TypeError(f"unknown Pilot fields: {sorted(set(fields_) - set(state))}")
        state.update(fields_, features=list(features), model_pickle=None)
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        derived = {"positive": 1, "linear": (coef, intercept), "n_features_in": coef.shape[0]}
        return cls._from_state(state, {**derived, "fingerprint": None}, source="")

    if not TYPE_CHECKING:  # at run time only, so mypy still flags unknown attributes

        def __getattr__(self, name: str) -> Any:
            # Only reached when ``model`` is not set yet: a loaded pilot or from_linear.
            if name == "model" and self.__dict__.get("_model_blob") is not None:
                return self._unpickle_model()
            if name == "model" and self.__dict__.get("_linear") is not None:
                return self._linear_model()
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _linear_model(self) -> Any:
        """A fitted LogisticRegression computing this pilot's (sampled-scale) logit."""
        from sklearn.linear_model import LogisticRegression  # see _linear_parts

        assert self._linear is not None
        coef, intercept = self._linear
        model = LogisticRegression()
        model.classes_ = np.array([0, 1])
        model.coef_ = coef.reshape(1, -1).copy()
        model.intercept_ = np.array([intercept])
        model.n_features_in_ = coef.shape[0]
        self.model = model
        return model

    def _unpickle_model(self) -> Any:
        import joblib  # only for a trusted pickled model

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
                import joblib  # non-linear models only: a linear fingerprint needs no pickle

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
        """Write the pilot file (atomically: a temporary file, then a rename).

        A linear pilot is written as data only (no pickle); a non-linear one also stores its
        model pickled, which :meth:`load` reads only when trusted.
        """
        header = {
            "features": self.features,
            "label": self.label,
            "logit_shift": float(self.logit_shift),
            "n_rows": self.n_rows,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "meta": self.meta,
            "positive": self._positive,
            "n_features_in": self._n_features_in,
            # The in-memory fingerprint, so a reloaded pilot records the same one in outputs.
            "fingerprint": self.fingerprint,
            "linear_intercept": None if self._linear is None else self._linear[1],
            "model_type": None,
        }
        blob = None
        if self._linear is None:
            blob = self._model_pickle()
            model = self.model
            header["model_type"] = f"{type(model).__module__}.{type(model).__qualname__}"
        arrays = {
            "coef": None if self._linear is None else self._linear[0],
            "info_inv": self.info_inv,
            "reference_X": self.reference_X,
            "reference_weight": self.reference_weight,
        }
        return write_pilot_file(path, header, arrays, blob)

    def _model_pickle(self) -> bytes:
        if "model" not in self.__dict__ and self._model_blob is not None:
            return self._model_blob  # loaded and never unpickled: write the same bytes back
        import joblib  # pickling a non-linear model

        buf = io.BytesIO()
        joblib.dump(self.model, buf)
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, trusted: bool = False) -> Pilot:
        """Read a pilot file written by :meth:`save`; ``InputError`` if the file is not one.

        Parameters
        ----------
        path : str or os.PathLike
        trusted : bool, default=False
            Allow unpickling: needed for a non-linear pilot and for files written by
            fastsample before pilot files became pickle-free. Unpickling runs whatever code
            the file names, so pass it only for files from a source you trust. A linear
            pilot file never needs it.
        """
        source = str(Path(path))
        version, state = read_pilot_file(path, trusted=trusted)
        try:
            if version == 1:
                # The model object itself: unpickling it imports scikit-learn.
                return cls(**state)
            return cls._from_state(state, state["derived"], source=source)
        except InputError:
            raise  # already one line naming what is wrong (InputError is a ValueError)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{source!r} is not a fastsample pilot file (malformed {type(exc).__name__})"
            ) from None

    @classmethod
    def _from_state(cls, state: dict[str, Any], derived: dict[str, Any], *, source: str) -> Pilot:
        """A pilot whose model is built or unpickled on first read (no __post_init__)."""
        pilot = cls.__new__(cls)
        for f in fields(cls):
            if f.name != "model":
                setattr(pilot, f.name, state[f.name])
        pilot.features = [str(f) for f in pilot.features]
        pilot._positive = int(derived["positive"])
        lin = derived["linear"]
        pilot._linear = (
            None if lin is None else (np.asarray(lin[0], dtype=np.float64), float(lin[1]))
        )
        n_in = derived["n_features_in"]
        pilot._n_features_in = None if n_in is None else int(n_in)
        _check_n_features(pilot._n_features_in, pilot.features)
        fp = derived["fingerprint"]
        pilot._fingerprint = None if fp is None else str(fp)
        blob = state["model_pickle"]
        if blob is None and pilot._linear is None:
            raise TypeError("model_pickle")  # a non-linear pilot without its model
        if blob is not None and not isinstance(blob, bytes):
            raise TypeError("model_pickle")
        pilot._model_blob = blob
        pilot._model_source = source
        return pilot


def as_pilot(obj: Any, features: list[str] | None = None, *, trusted: bool = False) -> Pilot:
    """A :class:`Pilot` from a bundle, a path to a saved bundle, or a fitted classifier.

    Parameters
    ----------
    obj : Pilot, str, os.PathLike or fitted sklearn classifier
    features : list of str, optional
        Needed for a bare classifier fitted without column names. For a bundle, when given,
        it must match the bundle's features.
    trusted : bool, default=False
        For a path: allow unpickling a non-linear model or an old bundle (see
        :meth:`Pilot.load`).
    """
    if isinstance(obj, (str, os.PathLike)):
        obj = Pilot.load(obj, trusted=trusted)
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
