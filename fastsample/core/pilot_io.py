"""Pilot files: written and read without pickle, so that reading one cannot run code.

A pilot file (format version 3) is an uncompressed NumPy ``.npz`` archive read with
``numpy.load(allow_pickle=False)``: a ``header`` member (UTF-8 JSON: features, label, shift,
counts, provenance, the linear intercept, positive-class column, feature count and
fingerprint) and plain numeric arrays (``coef``, ``info_inv``, ``reference_X``,
``reference_weight``). A linear pilot — the common case and the one the engines score in their
kernels — is entirely data. A non-linear model can only be stored as pickled bytes
(``model_pickle``); unpickling runs whatever code the bytes name, so such a file is refused
unless the caller opts in with ``trusted=True`` (CLI: ``--trust-pilot``). Bundles written by
earlier versions (1 and 2: joblib pickles) are refused the same way and read only when trusted.

This module knows files and dictionaries only; :mod:`fastsample.core.pilot` builds the
:class:`~fastsample.core.pilot.Pilot` from what it returns.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fastsample.core.atomic import atomic_path
from fastsample.errors import InputError

__all__ = ["PILOT_FORMAT", "PILOT_VERSION", "read_pilot_file", "write_pilot_file"]

PILOT_FORMAT = "fastsample-pilot"
# 1, 2: joblib pickles (the model object; then its pickled bytes beside the derived parts).
# 3: an .npz archive of a JSON header and numeric arrays, no pickle unless the model needs it.
PILOT_VERSION = 3
ARRAYS = ("coef", "info_inv", "reference_X", "reference_weight")
_TRUST_HINT = (
    "unpickling can run arbitrary code: load it only if you trust who wrote it, with "
    "Pilot.load(path, trusted=True) or the CLI's --trust-pilot"
)


def _json_default(obj: Any) -> Any:
    # Provenance may carry NumPy scalars (seeds, rates); JSON has ints and floats.
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_pilot_file(
    path: str | os.PathLike[str],
    header: dict[str, Any],
    arrays: dict[str, np.ndarray | None],
    model_pickle: bytes | None = None,
) -> Path:
    """Write a version-3 pilot file atomically (a temporary file, then a rename).

    Parameters
    ----------
    path : str or os.PathLike
    header : dict
        JSON-serialisable fields; ``format`` and ``version`` are added.
    arrays : dict of str to ndarray or None
        Numeric arrays (None entries are left out).
    model_pickle : bytes, optional
        The pickled model of a non-linear pilot.
    """
    if "://" in os.fspath(path):
        # Path() would fold "s3://b/k" into a local "s3:/b/k" and write there.
        raise InputError(
            f"{os.fspath(path)!r} is a URI: write pilots to storage with "
            "fastsample.engines.publish.save_pilot"
        )
    target = Path(path)
    members: dict[str, np.ndarray] = {
        name: np.asarray(a) for name, a in arrays.items() if a is not None
    }
    for name, a in members.items():
        if a.dtype.hasobject:
            raise TypeError(f"pilot array {name!r} holds Python objects")
    text = json.dumps(
        {"format": PILOT_FORMAT, "version": PILOT_VERSION, **header},
        default=_json_default,
        allow_nan=True,
    )
    members["header"] = np.frombuffer(text.encode(), dtype=np.uint8)
    if model_pickle is not None:
        members["model_pickle"] = np.frombuffer(model_pickle, dtype=np.uint8)
    # atomic_path: an anonymous file linked in at the end, so even SIGKILL leaves nothing.
    # An open handle stops NumPy from appending ".npz" to the name.
    with atomic_path(target, overwrite=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **members)  # type: ignore[arg-type]  # numpy's stub types **kwds badly
    return target


def read_pilot_file(
    path: str | os.PathLike[str], *, trusted: bool = False
) -> tuple[int, dict[str, Any]]:
    """``(version, state)`` of a pilot file; ``InputError`` naming the file if it is not one.

    For version 3 the state holds the header's fields, the arrays (None when absent),
    ``model_pickle`` (bytes or None) and ``derived`` (as version 2 stored it). A pickled
    model, or a whole earlier-version bundle, is refused before any byte of it is unpickled
    unless ``trusted`` is true; a trusted earlier bundle is returned as its joblib payload's
    ``pilot`` entry.
    """
    p = Path(path)
    name = str(p)
    if not p.is_file():
        raise InputError(f"pilot file {name!r} does not exist")
    if not zipfile.is_zipfile(p):
        if not trusted:
            raise InputError(
                f"{name!r} is not a fastsample pilot file that loads without pickle; if it is a "
                f"pilot saved by an earlier version (a pickle), {_TRUST_HINT}, then re-save it"
            )
        return _read_legacy(p)
    try:
        with np.load(p, allow_pickle=False) as npz:
            header = json.loads(bytes(npz["header"]).decode())
            if not isinstance(header, dict) or header.get("format") != PILOT_FORMAT:
                raise InputError(f"{name!r} is not a fastsample pilot file")
            version = header.get("version")
            if version != PILOT_VERSION:
                raise InputError(f"pilot file {name!r} has unsupported version {version!r}")
            has_model = "model_pickle" in npz.files
            if has_model and not trusted:
                kind = header.get("model_type") or "non-linear"
                raise InputError(f"pilot file {name!r} holds a pickled {kind} model; {_TRUST_HINT}")
            state = dict(header)
            for key in ARRAYS:
                value = npz[key] if key in npz.files else None
                if value is not None and not (
                    isinstance(value, np.ndarray) and value.dtype.kind in "fiub"
                ):
                    raise ValueError(key)
                state[key] = value
            state["model_pickle"] = bytes(npz["model_pickle"]) if has_model else None
        coef = state["coef"]
        # What a Pilot derives from its model, in the layout version 2 stored it.
        state["derived"] = {
            "positive": state["positive"],
            "linear": None if coef is None else (coef, state["linear_intercept"]),
            "n_features_in": state["n_features_in"],
            "fingerprint": state["fingerprint"],
        }
    except InputError:
        raise
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        # ValueError includes a member that is not a plain .npy array (NumPy refuses to
        # unpickle object arrays when allow_pickle is False) and malformed JSON.
        raise InputError(
            f"{name!r} is not a fastsample pilot file (malformed {type(exc).__name__})"
        ) from None
    return PILOT_VERSION, state


def _read_legacy(p: Path) -> tuple[int, dict[str, Any]]:
    """A version-1 or version-2 joblib bundle (the caller trusts the file)."""
    import joblib  # only for trusted pickles

    name = str(p)
    try:
        payload = joblib.load(p)
    except Exception as exc:
        raise InputError(
            f"{name!r} is not a fastsample pilot file ({type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != PILOT_FORMAT:
        raise InputError(f"{name!r} is not a fastsample pilot file")
    version = payload.get("version")
    if version not in (1, 2):
        raise InputError(f"pilot file {name!r} has unsupported version {version!r}")
    state = payload.get("pilot")
    if not isinstance(state, dict):
        raise InputError(f"{name!r} is not a fastsample pilot file (malformed pilot entry)")
    return int(version), state
