"""The pilot does not depend on the order in which its case-control sample arrives."""

from __future__ import annotations

import numpy as np
import polars as pl

from fastsample.core.pilot_fit import fit_pilot


def test_fit_pilot_with_keys_is_invariant_to_row_order():
    rng = np.random.default_rng(3)
    n = 4000
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2.5 + X @ [1.0, -1.0, 0.5])))).astype(np.int8)
    ids = rng.permutation(n).astype(np.int64) * 31 - 17
    frame = pl.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    feats = ["a", "b", "c"]
    base = fit_pilot(frame, y, features=feats, seed=4, keys=ids.view(np.uint64))
    perm = rng.permutation(n)
    moved = fit_pilot(frame[perm], y[perm], features=feats, seed=4, keys=ids[perm].view(np.uint64))
    # Same rows drawn (keyed), fitted in key order: bit-identical model, matrix and sample.
    assert moved.fingerprint == base.fingerprint
    np.testing.assert_array_equal(moved.info_inv, base.info_inv)
    np.testing.assert_array_equal(moved.reference_X, base.reference_X)
    np.testing.assert_array_equal(moved.reference_weight, base.reference_weight)
