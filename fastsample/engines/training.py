"""The pilot from a Parquet source: a case-control sample streamed out of it, then fitted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from fastsample.core.hashing import derive_seed, frame_keys, seed_mix, uniform_from_keys
from fastsample.core.pilot import feature_matrix
from fastsample.core.pilot_fit import case_control_rates, fit_case_control
from fastsample.core.progress import progress_bar
from fastsample.core.reference import reference_rate, reference_take, reference_weight
from fastsample.engines.args import check_label_type, key_arg, key_list
from fastsample.engines.args import chunk_rows as check_chunk_rows
from fastsample.engines.batch import label_array
from fastsample.engines.sources import (
    Source,
    expand_columns,
    iter_frames,
    require_columns,
    resolve_source,
)
from fastsample.engines.storage import PathLike
from fastsample.errors import InputError

#: Default cap on the pilot's case-control sample (rows, expected).
DEFAULT_PILOT_ROWS = 1_000_000


def train_pilot(
    source: PathLike | Sequence[PathLike] | Source,
    *,
    label: str,
    features: Sequence[str],
    model: Any = "logistic",
    rows: int | None = None,
    seed: int = 0,
    key: str | Sequence[str] | None = None,
    negatives_per_positive: float = 1.0,
    chunk_rows: int | None = None,
    progress: bool = False,
    storage_options: dict[str, Any] | None = None,
    format: str | None = None,
) -> Any:
    """Train a pilot on a case-control sample streamed out of a Parquet source.

    A first pass counts the classes; a second keeps positives with probability ``q1`` and
    negatives with ``q0`` (about ``negatives_per_positive`` negatives per positive, and at most
    ``rows`` rows expected) with the keyed hash on ``derive_seed(seed, "pilot")`` — a stream
    independent of the sampling seed's. The model is fitted on that sample and shifted by
    ``log(q0/q1)`` so it predicts population-scale probabilities
    (:func:`fastsample.core.pilot_fit.fit_case_control`).

    Parameters
    ----------
    source : path, glob, directory or list of them
    label : str
        0/1 label column.
    features : list of str
        Feature columns (shell patterns such as ``f*`` are expanded against the schema).
    model : str or sklearn classifier
        ``"logistic"`` (default), ``"sgd"``, ``"hgb"``, or an unfitted classifier / Pipeline.
    rows : int, optional
        Cap on the expected sample size (default 1,000,000).
    seed : int
        Sampling seed (the pilot derives its own stream from it).
    key : str or list of str, optional
        Key column(s); default the global row index.

    Returns
    -------
    fastsample.core.pilot.Pilot
        Save it with ``pilot.save(path)``.
    """
    seed_mix(seed)  # validates the seed
    cap = DEFAULT_PILOT_ROWS if rows is None else rows
    if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap <= 0:
        raise InputError(f"rows must be a positive integer, got {rows!r}")
    batch = check_chunk_rows(chunk_rows)
    src = resolve_source(source, storage_options=storage_options, format=format)
    if not src.reusable:
        raise InputError(
            f"training a pilot reads {src.files[0]} twice, but it can be read only once; "
            "train the pilot on a file or a re-readable source and pass it"
        )
    check_label_type(src, label)
    if isinstance(features, str):
        features = [features]
    feats = expand_columns(src, list(features), "feature")
    keys = key_list(key)
    require_columns(src, keys, "key")
    n1 = n0 = 0
    with progress_bar(total=src.num_rows, desc="pilot: count", enabled=progress) as bar:
        for frame, path in iter_frames(src, batch_rows=max(batch, 1 << 16), columns=[label]):
            y = label_array(frame, label, source=path)
            k = int(np.count_nonzero(y))
            n1 += k
            n0 += frame.height - k
            bar.update(frame.height)
    q1, q0 = case_control_rates(
        n1, n0, negatives_per_positive=negatives_per_positive, max_rows=int(cap)
    )
    stream = derive_seed(seed, "pilot")
    cols = list(dict.fromkeys([label, *feats, *keys]))
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ks: list[np.ndarray] = []
    # The kappa reference sample is drawn in the same pass (see fastsample.core.reference).
    itemsize = 4 if all(src.schema.field(f).type == pa.float32() for f in feats) else 8
    q_ref = reference_rate(n0, len(feats), itemsize)
    refs: list[np.ndarray] = []
    ref_keys: list[np.ndarray] = []
    offset = 0
    with progress_bar(total=src.num_rows, desc="pilot: sample", enabled=progress) as bar:
        for frame, path in iter_frames(src, batch_rows=batch, columns=cols):
            y = label_array(frame, label, source=path)
            words = frame_keys(frame, key_arg(keys), offset)
            offset += frame.height
            u = uniform_from_keys(words, stream)
            take = u < np.where(y == 1, q1, q0)
            ref = reference_take(y, words, seed, q_ref, take)
            if take.any():
                sub = frame.filter(pl.Series(take))
                xs.append(np.ascontiguousarray(feature_matrix(sub, feats, source=path)))
                ys.append(y[take])
                ks.append(np.asarray(words)[take])
            if ref.any():
                refs.append(feature_matrix(frame.filter(pl.Series(ref)), feats, source=path))
                ref_keys.append(np.asarray(words)[ref])
            bar.update(frame.height)
    if not xs:
        raise InputError("the pilot's case-control sample is empty; use more rows")
    X = np.concatenate(xs)
    ref_X = np.concatenate(refs) if refs else np.zeros((0, len(feats)))
    ref_words = np.concatenate(ref_keys) if ref_keys else np.zeros(0, dtype=np.uint64)
    return fit_case_control(
        X,
        np.concatenate(ys),
        np.concatenate(ks),
        q1=q1,
        q0=q0,
        features=feats,
        model=model,
        seed=seed,
        label=label,
        n_positive=n1,
        n_negative=n0,
        reference=(ref_X, ref_words, reference_weight(q_ref, q0)),
    )


__all__ = ["DEFAULT_PILOT_ROWS", "train_pilot"]
