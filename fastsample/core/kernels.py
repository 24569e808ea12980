"""Numba kernels: plain loops that trust their inputs and write into ``out`` arrays.

Validation, dtype coercion and allocation live in the public wrappers (core/hashing.py,
core/strategies.py, core/correction.py, engines/batch.py). Every kernel here has a NumPy twin
with the same signature in ``testing/reference.py``; ``testing/registry.py`` pairs them for the
tests and benchmarks. Build flags and the serial/parallel dispatch: ``numba_config.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray, prange
from numba import types as nb_types
from numba.extending import intrinsic

# The dispatch lives in numba_config; callers reach it here, next to the kernels it picks.
from fastsample.core.numba_config import (  # noqa: F401
    PARALLEL_MIN_ROWS,
    SERIAL,
    for_rows,
    helper,
    parallel_kernel,
    register_serial,
    serial_kernel,
    serial_twin,
)

# --- hashing (DESIGN.md §3) ---------------------------------------------------------------

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
# Domain tags keep string and composite keys from colliding with plain integer keys.
STRING_TAG = np.uint64(0x66735F7374725F31)  # b"fs_str_1" read big-endian
COMPOSITE_TAG = np.uint64(0x66735F636D705F31)  # b"fs_cmp_1" read big-endian
TWO_POW_M53 = 1.0 / 9007199254740992.0

# Strategy codes shared with strategies.py
UNIFORM, PROPORTIONAL, OPT_L, OPT_A, LCC = 0, 1, 2, 3, 4

# Smallest inclusion probability ever used: 2^-53 is the resolution of the uniforms, so a
# row at this floor is still kept with probability exactly 2^-53 and its offset stays finite.
PI_EPS = TWO_POW_M53

# Rows per block in the compacting draw kernels: each block writes its kept rows to the front
# of its own slice of the output buffers, so untouched pages are never faulted in.
BLOCK = 16384


@helper
def splitmix64(z):
    z = z + GOLDEN
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@helper
def _uniform(key, seed_mix):
    return np.float64(splitmix64(key ^ seed_mix) >> np.uint64(11)) * TWO_POW_M53


@parallel_kernel
def uniform_from_keys(keys, seed_mix, out):
    """out[i] = u(keys[i], seed); ``seed_mix`` is splitmix64(seed)."""
    for i in prange(keys.shape[0]):
        out[i] = _uniform(keys[i], seed_mix)


@parallel_kernel
def hash_bytes(offsets, data, out):
    """64-bit key of each byte string ``data[offsets[i]:offsets[i+1]]``.

    h = splitmix64(STRING_TAG ^ length); then for each 8-byte little-endian word w (the last
    one zero-padded) h = splitmix64(h ^ w).
    """
    for i in prange(out.shape[0]):
        start = offsets[i]
        end = offsets[i + 1]
        h = splitmix64(STRING_TAG ^ np.uint64(end - start))
        pos = start
        while pos < end:
            w = np.uint64(0)
            stop = min(pos + 8, end)
            for j in range(pos, stop):
                w |= np.uint64(data[j]) << np.uint64(8 * (j - pos))
            h = splitmix64(h ^ w)
            pos += 8
        out[i] = h


@parallel_kernel
def combine_keys(acc, keys, out):
    """One step of the composite-key fold: out[i] = splitmix64(acc[i] ^ keys[i])."""
    for i in prange(out.shape[0]):
        out[i] = splitmix64(acc[i] ^ keys[i])


# --- inclusion scores (DESIGN.md §2.2) ----------------------------------------------------


# --- the logistic function: the one Numba sigmoid / softplus, shared by every kernel -------
# One exp of -|x| serves both, so neither overflows (scalar twins of core/logistic.py).


@helper
def softplus_sigmoid(x):
    """(log(1 + e^x), 1 / (1 + e^-x)) of a scalar with one exp, stable for any x."""
    e = math.exp(-abs(x))
    if x >= 0.0:
        return x + math.log1p(e), 1.0 / (1.0 + e)
    return math.log1p(e), e / (1.0 + e)


@helper
def sigmoid(x):
    """1 / (1 + e^-x) of a scalar, without overflow (bit-equal to ``softplus_sigmoid``'s)."""
    e = math.exp(-abs(x))
    if x >= 0.0:
        return 1.0 / (1.0 + e)
    return e / (1.0 + e)


@helper
def _score_pair(code, eta, norm):
    """(h0, h1) for one row; h1 < 0 means "positives are always kept" (a_1 = 1)."""
    if code == UNIFORM:
        return 1.0, -1.0
    p = sigmoid(eta)
    if code == PROPORTIONAL:
        return p, -1.0
    if code == LCC:
        return p, sigmoid(-eta)
    # opt-l and opt-a: p * sqrt(1 - p) * norm, with 1 - p computed without cancellation
    return p * math.sqrt(sigmoid(-eta)) * norm, -1.0


# Callers guard the call with the strategy code: merely passing X and z to this inlined helper
# on every row costs reference-count updates that made the serial draw kernels 3x slower.
@helper
def _row_norm(code, X, i, info_inv, z):
    if code == OPT_L:
        s = 0.0
        for j in range(X.shape[1]):
            v = np.float64(X[i, j])
            s += v * v
        return math.sqrt(s)
    if code == OPT_A:
        z[0] = 1.0
        for j in range(X.shape[1]):
            z[j + 1] = X[i, j]
        s = 0.0
        for r in range(info_inv.shape[0]):
            t = 0.0
            for c in range(info_inv.shape[1]):
                t += info_inv[r, c] * z[c]
            s += t * t
        return math.sqrt(s)
    return 1.0


@parallel_kernel
def strategy_scores(code, logits, X, info_inv, out_h0, out_h1):
    """Scores h0 (negatives) and h1 (positives; -1 = always kept) from pilot logits.

    ``X`` (n, d) is read only by opt-l / opt-a; ``info_inv`` ((d+1, d+1)) only by opt-a.
    """
    n = logits.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        z = np.empty(info_inv.shape[0], dtype=np.float64)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            norm = 1.0
            if code in (OPT_L, OPT_A):
                norm = _row_norm(code, X, i, info_inv, z)
            h0, h1 = _score_pair(code, logits[i], norm)
            out_h0[i] = h0
            out_h1[i] = h1


@parallel_kernel
def linear_logits(X, coef, intercept, out):
    """out = X @ coef + intercept, accumulated in float64, column by column within row blocks.

    Walking columns inside a block keeps reads sequential for column-major (Fortran) X, which
    is how feature columns arrive from Polars/Arrow without a row-major copy.
    """
    n, d = X.shape
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        start = b * BLOCK
        end = min(n, start + BLOCK)
        for i in range(start, end):
            out[i] = intercept
        for j in range(d):
            w = coef[j]
            for i in range(start, end):
                out[i] += X[i, j] * w


@helper
def _block_logits(X, coef, intercept, start, end):
    """Logits of rows start..end-1, column by column (sequential reads of column-major X)."""
    eta = np.full(end - start, intercept)
    for j in range(X.shape[1]):
        w = coef[j]
        for i in range(start, end):
            eta[i - start] += X[i, j] * w
    return eta


@helper
def _score_block(eta, start, code, X, info_inv, out_h0, out_h1):
    """Scores of rows ``start .. start + len(eta)`` from their logits; NaN h0 flags a bad row."""
    z = np.empty(info_inv.shape[0], dtype=np.float64)
    for i in range(start, start + eta.shape[0]):
        norm = 1.0
        if code in (OPT_L, OPT_A):
            norm = _row_norm(code, X, i, info_inv, z)
        e = eta[i - start]
        h0, h1 = _score_pair(code, e, norm)
        # a NaN or infinite feature always makes the logit non-finite: flag it as NaN
        out_h0[i] = h0 if math.isfinite(e) else math.nan
        out_h1[i] = h1


@parallel_kernel
def linear_scores(X, coef, intercept, code, info_inv, out_h0, out_h1):
    """strategy_scores fused with linear_logits: one read of X, no logits array."""
    n = X.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        start = b * BLOCK
        end = min(n, start + BLOCK)
        eta = _block_logits(X, coef, intercept, start, end)
        _score_block(eta, start, code, X, info_inv, out_h0, out_h1)


# Stand-in for X and info_inv where the strategy reads neither (never indexed).
_NO_ROWS = np.zeros((0, 0), dtype=np.float64)

# --- the draw (DESIGN.md §2.1, §2.5, §4) --------------------------------------------------


@helper
def _clip(v, floor):
    if v > 1.0:
        v = 1.0
    if v < floor:
        v = floor
    if v < PI_EPS:
        v = PI_EPS
    return v


@helper
def _decide(h0, h1, y, key, seed_mix, kappa, floor):
    """(kept, a_y, a_0, a_1) for one row; the caller takes logs only for kept rows."""
    a0 = _clip(kappa * h0, floor)
    a1 = 1.0 if h1 < 0.0 else _clip(kappa * h1, floor)
    a = a1 if y != 0 else a0
    u = _uniform(key, seed_mix)
    return u < a, a, a0, a1


@parallel_kernel
def draw(h0, h1, y, keys, seed_mix, kappa, floor, out_idx, out_prob, out_offset, out_counts):
    """Keyed Bernoulli draw; kept rows of block b go to the front of its slice of the outputs.

    ``out_counts[b]`` receives the number kept in block b; ``compact`` then gathers the
    blocks. Keys are uint64; a_y = clip(kappa * h_y, floor, 1) and the exact value compared
    with the uniform is the one written.
    """
    n = y.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        start = b * BLOCK
        c = start
        for i in range(start, min(n, start + BLOCK)):
            kept, a, a0, a1 = _decide(h0[i], h1[i], y[i], keys[i], seed_mix, kappa, floor)
            if kept:
                out_idx[c] = i
                out_prob[c] = a
                out_offset[c] = math.log(a1) - math.log(a0)
                c += 1
        out_counts[b] = c - start


@helper
def _draw_block(
    eta, start, code, X, info_inv, y, keys, seed_mix, kappa, floor, out_idx, out_prob, out_offset
):
    """Scores and draw of rows ``start .. start + len(eta)`` from their logits ``eta``.

    Kept rows go to the front of the block's slice of the outputs; returns how many, or -1
    when a logit is non-finite (a NaN or infinite feature).
    """
    z = np.empty(info_inv.shape[0], dtype=np.float64)
    c = start
    bad = False
    for i in range(start, start + eta.shape[0]):
        norm = 1.0
        if code in (OPT_L, OPT_A):
            norm = _row_norm(code, X, i, info_inv, z)
        e = eta[i - start]
        bad |= not math.isfinite(e)
        h0, h1 = _score_pair(code, e, norm)
        kept, a, a0, a1 = _decide(h0, h1, y[i], keys[i], seed_mix, kappa, floor)
        if kept:
            out_idx[c] = i
            out_prob[c] = a
            out_offset[c] = math.log(a1) - math.log(a0)
            c += 1
    return -1 if bad else c - start


@parallel_kernel
def linear_draw(
    X,
    coef,
    intercept,
    code,
    info_inv,
    y,
    keys,
    seed_mix,
    kappa,
    floor,
    out_idx,
    out_prob,
    out_offset,
    out_counts,
):
    """One pass for a linear pilot and a known kappa: logits, scores and draw, fused.

    A block with a non-finite logit gets ``out_counts[b] = -1`` (the caller raises).
    """
    n = X.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        start = b * BLOCK
        end = min(n, start + BLOCK)
        eta = _block_logits(X, coef, intercept, start, end)
        out_counts[b] = _draw_block(
            eta,
            start,
            code,
            X,
            info_inv,
            y,
            keys,
            seed_mix,
            kappa,
            floor,
            out_idx,
            out_prob,
            out_offset,
        )


@intrinsic
def _pointer_like(typingctx, address, proto):
    """The integer ``address`` as a pointer to ``proto``'s element type."""
    ptr = nb_types.CPointer(proto.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address, proto), codegen


@helper
def _column_logits(addresses, proto, n, coef, intercept, start, end):
    """``_block_logits`` reading feature j from the buffer at ``addresses[j]`` (n elements)."""
    eta = np.full(end - start, intercept)
    for j in range(addresses.shape[0]):
        col = carray(_pointer_like(addresses[j], proto), n)
        w = coef[j]
        for i in range(start, end):
            eta[i - start] += col[i] * w
    return eta


@parallel_kernel
def linear_draw_columns(
    addresses,
    proto,
    coef,
    intercept,
    code,
    y,
    keys,
    seed_mix,
    kappa,
    floor,
    out_idx,
    out_prob,
    out_offset,
    out_counts,
):
    """``linear_draw`` reading each feature from its own column buffer: no matrix copy.

    ``addresses[j]`` is the address of feature j's contiguous buffer of ``len(y)`` elements of
    ``proto``'s dtype; the caller keeps those buffers alive. For the strategies without a row
    norm (uniform, proportional, lcc). Same arithmetic in the same order as ``linear_draw``,
    so the results are bit-identical.
    """
    n = y.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        start = b * BLOCK
        end = min(n, start + BLOCK)
        eta = _column_logits(addresses, proto, n, coef, intercept, start, end)
        out_counts[b] = _draw_block(
            eta,
            start,
            code,
            _NO_ROWS,
            _NO_ROWS,
            y,
            keys,
            seed_mix,
            kappa,
            floor,
            out_idx,
            out_prob,
            out_offset,
        )


@parallel_kernel
def linear_scores_columns(addresses, proto, coef, intercept, code, out_h0, out_h1):
    """``linear_scores`` reading each feature from its own column buffer (see
    ``linear_draw_columns``); bit-identical to it, for the strategies without a row norm."""
    n = out_h0.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        start = b * BLOCK
        end = min(n, start + BLOCK)
        eta = _column_logits(addresses, proto, n, coef, intercept, start, end)
        _score_block(eta, start, code, _NO_ROWS, _NO_ROWS, out_h0, out_h1)


@serial_kernel
def compact(out_idx, out_prob, out_offset, out_counts):
    """Move each block's kept rows to the front, in row order; returns the number kept."""
    total = 0
    for b in range(out_counts.shape[0]):
        start = b * BLOCK
        for k in range(out_counts[b]):
            out_idx[total] = out_idx[start + k]
            out_prob[total] = out_prob[start + k]
            out_offset[total] = out_offset[start + k]
            total += 1
    return total


# --- water-filling (DESIGN.md §2.2) -------------------------------------------------------


@parallel_kernel
def _piece(h, w, kappa, floor):
    """Linear piece of g(k) = sum w clip(k h, floor, 1) that holds at k = kappa.

    Sums are taken per fixed block and then over blocks in order, so the result is
    bit-identical whatever the number of threads.
    """
    n = h.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    part = np.zeros((nblocks, 5))
    for b in prange(nblocks):
        n_hi = 0.0
        n_lo = 0.0
        s_mid = 0.0
        c_hi = 0.0
        c_lo = 0.0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            v = kappa * h[i]
            if v >= 1.0:
                n_hi += w[i]
                c_hi += 1.0
            elif v <= floor:
                n_lo += w[i]
                c_lo += 1.0
            else:
                s_mid += w[i] * h[i]
        part[b, 0] = n_hi
        part[b, 1] = n_lo
        part[b, 2] = s_mid
        part[b, 3] = c_hi
        part[b, 4] = c_lo
    tot = np.zeros(5)
    for b in range(nblocks):
        for j in range(5):
            tot[j] += part[b, j]
    return tot[0], tot[1], tot[2], int(tot[3]), int(tot[4])


@serial_kernel
def solve_kappa(h, w, target, floor, k_max):
    """Solve sum_i w_i clip(kappa h_i, floor, 1) = target for kappa in (0, k_max].

    Safeguarded Newton on a piecewise-linear monotone function: on the piece holding the
    current guess the equation is linear, so its root is exact as soon as the root lies on
    that same piece; otherwise the bracket shrinks (bisection as the fallback). The caller
    guarantees g(0) < target <= g(k_max).
    """
    # g(k) <= floor * W + k * sum(w h), so this k is a valid lower end of the bracket.
    total_w = 0.0
    total_wh = 0.0
    for i in range(h.shape[0]):
        total_w += w[i]
        total_wh += w[i] * h[i]
    lo = (target - floor * total_w) / total_wh
    hi = k_max
    if not lo < hi:
        lo = 0.0
    k = lo if lo > 0.0 else 0.5 * hi
    prev_hi = -1
    prev_lo = -1
    for _ in range(400):
        n_hi, n_lo, s_mid, c_hi, c_lo = _piece(h, w, k, floor)
        g = n_hi + floor * n_lo + k * s_mid
        if g == target:
            return k
        if c_hi == prev_hi and c_lo == prev_lo:
            # k was solved on this very piece: it is the root (up to rounding)
            return k
        if g < target:
            lo = k
        else:
            hi = k
        prev_hi = c_hi
        prev_lo = c_lo
        if s_mid > 0.0:
            k_new = (target - n_hi - floor * n_lo) / s_mid
            if k_new == k:
                return k
            if lo < k_new < hi:
                k = k_new
                continue
        prev_hi = -1  # a bisection step: the next piece was not solved for
        if hi - lo <= 1e-15 * hi:
            return hi
        # geometric steps while the bracket spans orders of magnitude
        k = 0.5 * (lo + hi) if lo == 0.0 or hi / lo < 4.0 else math.sqrt(lo) * math.sqrt(hi)
    return hi


@parallel_kernel
def expected_count(h, w, kappa, floor):
    """sum_i w_i clip(kappa h_i, floor, 1), with the same clipping as the draw.

    Summed per fixed block, then over blocks in order: independent of the thread count.
    """
    n = h.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    part = np.zeros(nblocks)
    for b in prange(nblocks):
        s = 0.0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            s += w[i] * _clip(kappa * h[i], floor)
        part[b] = s
    total = 0.0
    for b in range(nblocks):
        total += part[b]
    return total


# --- correction (DESIGN.md §2.3) ----------------------------------------------------------


@parallel_kernel
def correct_proba(proba, offset, out):
    """Population-scale probability from a sampled-scale one: sigmoid(logit(p) - offset).

    Evaluated as a ratio that never forms logit(p), so p = 0 and p = 1 map to themselves.
    Checks its input on the way (no separate passes): returns the number of rows whose p is
    outside [0, 1] or NaN, or whose offset is NaN; their ``out`` is NaN.
    """
    bad = 0
    for i in prange(proba.shape[0]):
        p = np.float64(proba[i])
        o = np.float64(offset[i])
        if not (p >= 0.0 and p <= 1.0) or math.isnan(o):
            bad += 1
            out[i] = math.nan
        else:
            if o >= 0.0:
                a = p * math.exp(-o)
                den = a + (1.0 - p)
            else:
                a = p
                den = p + (1.0 - p) * math.exp(o)
            out[i] = a / den if den > 0.0 else p
    return bad


@parallel_kernel
def correct_log_odds(log_odds, offset, out):
    """Population-scale log-odds: out = log_odds - offset."""
    for i in prange(log_odds.shape[0]):
        out[i] = np.float64(log_odds[i]) - np.float64(offset[i])


# --- serial twins (numba_config.for_rows picks them for small inputs) ----------------------

register_serial(
    uniform_from_keys,
    hash_bytes,
    combine_keys,
    strategy_scores,
    linear_logits,
    linear_scores,
    linear_scores_columns,
    draw,
    linear_draw,
    linear_draw_columns,
    expected_count,
    correct_proba,
    correct_log_odds,
)
register_serial(solve_kappa, _piece=serial_twin(_piece))
