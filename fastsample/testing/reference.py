"""Naive NumPy twins of the Numba kernels, and the tutorial's path rebuilt faithfully.

Each twin has the same signature as its kernel in ``core/kernels.py`` and is written to be
obviously correct rather than fast: the tests compare kernels against these, and the
benchmarks use them as baselines. Nothing here is used by the library itself.
"""

from __future__ import annotations

import numpy as np

from fastsample.core.kernels import (
    BLOCK,
    LCC,
    OPT_A,
    OPT_L,
    PI_EPS,
    PROPORTIONAL,
    STRING_TAG,
    UNIFORM,
)
from fastsample.core.logistic import sigmoid

_U64 = np.uint64


def splitmix64(z: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on a uint64 array (arithmetic wraps mod 2^64)."""
    z = np.asarray(z, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def uniform_from_keys(keys, seed_mix, out):
    """Twin of ``kernels.uniform_from_keys``."""
    z = splitmix64(np.asarray(keys, dtype=_U64) ^ _U64(seed_mix))
    out[:] = (z >> _U64(11)).astype(np.float64) * 2.0**-53


def hash_bytes(offsets, data, out):
    """Twin of ``kernels.hash_bytes``: one string at a time, with Python's int.from_bytes."""
    mask = (1 << 64) - 1
    for i in range(out.shape[0]):
        raw = bytes(data[offsets[i] : offsets[i + 1]])
        h = int(splitmix64(np.array([int(STRING_TAG) ^ len(raw)], dtype=_U64))[0])
        for pos in range(0, len(raw), 8):
            word = int.from_bytes(raw[pos : pos + 8], "little")
            h = int(splitmix64(np.array([(h ^ word) & mask], dtype=_U64))[0])
        out[i] = h


def combine_keys(acc, keys, out):
    """Twin of ``kernels.combine_keys``."""
    out[:] = splitmix64(np.asarray(acc, dtype=_U64) ^ np.asarray(keys, dtype=_U64))


def _norms(code, X, info_inv):
    X = np.asarray(X, dtype=np.float64)
    if code == OPT_L:
        return np.sqrt((X * X).sum(axis=1))
    if code == OPT_A:
        Z = np.column_stack([np.ones(X.shape[0]), X])
        return np.linalg.norm(Z @ np.asarray(info_inv).T, axis=1)
    return None


def _scores(code, eta, norms):
    eta = np.asarray(eta, dtype=np.float64)
    p = sigmoid(eta)
    minus = -np.ones_like(eta)
    if code == UNIFORM:
        return np.ones_like(eta), minus
    if code == PROPORTIONAL:
        return p, minus
    if code == LCC:
        return p, sigmoid(-eta)
    return p * np.sqrt(sigmoid(-eta)) * norms, minus


def strategy_scores(code, logits, X, info_inv, out_h0, out_h1):
    """Twin of ``kernels.strategy_scores``."""
    out_h0[:], out_h1[:] = _scores(code, logits, _norms(code, X, info_inv))


def linear_logits(X, coef, intercept, out):
    """Twin of ``kernels.linear_logits``."""
    out[:] = np.asarray(X, dtype=np.float64) @ np.asarray(coef, dtype=np.float64) + intercept


def linear_scores(X, coef, intercept, code, info_inv, out_h0, out_h1):
    """Twin of ``kernels.linear_scores``."""
    eta = np.asarray(X, dtype=np.float64) @ np.asarray(coef, dtype=np.float64) + intercept
    h0, h1 = _scores(code, eta, _norms(code, X, info_inv))
    out_h0[:] = np.where(np.isfinite(eta), h0, np.nan)
    if len(out_h1):
        out_h1[:] = h1


def _probabilities(h0, h1, kappa, floor):
    lower = max(floor, PI_EPS)
    a0 = np.clip(kappa * np.asarray(h0), lower, 1.0)
    a1 = np.where(np.asarray(h1) < 0, 1.0, np.clip(kappa * np.asarray(h1), lower, 1.0))
    return a0, a1


def _fill_blocks(keep, a, off, out_idx, out_prob, out_offset, out_counts):
    """Lay kept rows out exactly as the compacting kernels do (block b at offset b*BLOCK)."""
    for b in range(out_counts.shape[0]):
        sl = slice(b * BLOCK, min(keep.shape[0], (b + 1) * BLOCK))
        idx = np.flatnonzero(keep[sl]) + b * BLOCK
        k = idx.shape[0]
        out_idx[b * BLOCK : b * BLOCK + k] = idx
        out_prob[b * BLOCK : b * BLOCK + k] = a[idx]
        out_offset[b * BLOCK : b * BLOCK + k] = off[idx]
        out_counts[b] = k


def draw(h0, h1, y, keys, seed_mix, kappa, floor, out_idx, out_prob, out_offset, out_counts):
    """Twin of ``kernels.draw`` (an empty ``h1``: every h1 is -1)."""
    h1 = np.full(len(h0), -1.0) if len(h1) == 0 else h1
    a0, a1 = _probabilities(h0, h1, kappa, floor)
    a = np.where(np.asarray(y) != 0, a1, a0)
    u = np.empty(len(a))
    uniform_from_keys(keys, seed_mix, u)
    _fill_blocks(u < a, a, np.log(a1) - np.log(a0), out_idx, out_prob, out_offset, out_counts)


def linear_draw(
    X, coef, intercept, code, info_inv, y, keys, seed_mix, kappa, floor,
    out_idx, out_prob, out_offset, out_counts,
):  # fmt: skip
    """Twin of ``kernels.linear_draw``."""
    n = np.asarray(y).shape[0]
    h0, h1 = np.empty(n), np.empty(n)
    linear_scores(X, coef, intercept, code, info_inv, h0, h1)
    draw(h0, h1, y, keys, seed_mix, kappa, floor, out_idx, out_prob, out_offset, out_counts)
    for b in range(out_counts.shape[0]):
        if np.isnan(h0[b * BLOCK : (b + 1) * BLOCK]).any():
            out_counts[b] = -1


def _stacked(addresses, proto, n):
    """The matrix whose column j is the buffer at ``addresses[j]`` (n elements of proto's type)."""
    ctype = np.ctypeslib.as_ctypes_type(proto.dtype)
    cols = [np.ctypeslib.as_array((ctype * n).from_address(int(a))) for a in addresses]
    return np.column_stack(cols) if cols and n else np.zeros((n, len(cols)), dtype=proto.dtype)


def linear_draw_columns(addresses, proto, coef, intercept, code, y, *draw_args):
    """Twin of ``kernels.linear_draw_columns``: the columns stacked into a matrix.

    ``draw_args``: ``keys, seed_mix, kappa, floor`` and the four outputs, as in the kernel.
    """
    X = _stacked(addresses, proto, np.asarray(y).shape[0])
    linear_draw(X, coef, intercept, code, np.zeros((0, 0)), y, *draw_args)


def linear_scores_columns(addresses, proto, coef, intercept, code, out_h0, out_h1):
    """Twin of ``kernels.linear_scores_columns``: the columns stacked into a matrix."""
    X = _stacked(addresses, proto, np.asarray(out_h0).shape[0])
    linear_scores(X, coef, intercept, code, np.zeros((0, 0)), out_h0, out_h1)


def compact(out_idx, out_prob, out_offset, out_counts):
    """Twin of ``kernels.compact``."""
    parts = [np.arange(b * BLOCK, b * BLOCK + c) for b, c in enumerate(out_counts)]
    sel = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    total = sel.shape[0]
    out_idx[:total] = out_idx[sel]
    out_prob[:total] = out_prob[sel]
    out_offset[:total] = out_offset[sel]
    return total


def expected_count(h, w, kappa, floor):
    """Twin of ``kernels.expected_count`` (an empty ``w``: unit weights)."""
    w = np.asarray(w) if np.asarray(w).size else 1.0
    return float(np.sum(w * np.clip(kappa * np.asarray(h), max(floor, PI_EPS), 1.0)))


def solve_kappa(h, w, target, floor, k_max, out_expected):
    """Twin of ``kernels.solve_kappa``: plain bisection on g(k) = sum w clip(k h, floor, 1)."""
    h = np.asarray(h, dtype=np.float64)
    w = np.ones(h.shape[0]) if np.asarray(w).size == 0 else np.asarray(w, dtype=np.float64)
    lo, hi = 0.0, float(k_max)
    for _ in range(3000):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if float(np.sum(w * np.clip(mid * h, floor, 1.0))) < target:
            lo = mid
        else:
            hi = mid
    out_expected[0] = expected_count(h, w, hi, floor)
    return hi


def correct_proba(proba, offset, out):
    """Twin of ``kernels.correct_proba``: the textbook sigmoid(logit(p) - offset)."""
    p = np.asarray(proba, dtype=np.float64)
    o = np.asarray(offset, dtype=np.float64)
    bad = ~((p >= 0) & (p <= 1)) | np.isnan(o)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logit = np.log(p) - np.log1p(-p)
        out[:] = np.where((p == 0) | (p == 1), p, sigmoid(logit - o))
    out[bad] = np.nan
    return int(bad.sum())


def correct_log_odds(log_odds, offset, out):
    """Twin of ``kernels.correct_log_odds``."""
    out[:] = np.asarray(log_odds, dtype=np.float64) - np.asarray(offset, dtype=np.float64)


# --- the tutorial's path, rebuilt faithfully (benchmark baseline only; it has known bugs) ---


def tutorial_negative_sampling(X, y, pilot_model, sampling_rate=0.5, rng=None):
    """The seed tutorial's "TikTok" sampler: predict_proba, scale by the mean, no clipping.

    Kept as the benchmark baseline. Its bugs (unclipped probabilities, unseeded draws) are
    deliberate here; fastsample's own path does not share them.
    """
    rng = np.random.default_rng() if rng is None else rng
    probs = pilot_model.predict_proba(X)[:, 1]
    avg_prob = np.mean(probs[y == 0])
    sampling_probs = sampling_rate * probs / avg_prob
    neg_mask = y == 0
    random_nums = rng.random(int(np.sum(neg_mask)))
    keep_mask = random_nums < sampling_probs[neg_mask]
    final_mask = ~neg_mask
    final_mask[y == 0] = keep_mask
    return X[final_mask], y[final_mask], sampling_probs[final_mask]


def tutorial_correct_probabilities(raw_probs, sampling_probs):
    """The tutorial's correction, wrong sign included (logit - log pi); baseline only."""
    log_odds = np.log(raw_probs / (1 - raw_probs))
    corrected_log_odds = log_odds - np.log(sampling_probs)
    return 1 / (1 + np.exp(-corrected_log_odds))
