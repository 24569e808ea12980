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

# --- hashing ------------------------------------------------------------------------------

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


# Stand-in for X and info_inv where the strategy reads neither (never indexed).
_NO_ROWS = np.zeros((0, 0), dtype=np.float64)

# --- logits of a linear pilot, a sub-block at a time --------------------------------------
# The fused kernels work on sub-blocks of SUB rows: a sub-block's logits, uniforms and flags
# stay in L1 while the feature columns stream past once. Each pass adds eight columns to a
# row's running sum, in column order, so the bits are those of the plain column-by-column
# sum (the twin's order); one column per pass kept the logits in L2 and was 3x slower.

SUB = 512


@helper
def _add8(eta, m, c0, c1, c2, c3, c4, c5, c6, c7, coef, j):
    """eta[i] += c0[i] coef[j] + ... + c7[i] coef[j + 7], added left to right."""
    w0, w1, w2, w3 = coef[j], coef[j + 1], coef[j + 2], coef[j + 3]
    w4, w5, w6, w7 = coef[j + 4], coef[j + 5], coef[j + 6], coef[j + 7]
    for i in range(m):
        t = eta[i]
        t += c0[i] * w0
        t += c1[i] * w1
        t += c2[i] * w2
        t += c3[i] * w3
        t += c4[i] * w4
        t += c5[i] * w5
        t += c6[i] * w6
        t += c7[i] * w7
        eta[i] = t


@helper
def _add1(eta, m, c, w):
    for i in range(m):
        eta[i] += c[i] * w


@helper
def _matrix_logits(X, coef, intercept, s, e, eta):
    """eta[:e - s] = X[s:e] @ coef + intercept in float64, features added in column order."""
    m = e - s
    for i in range(m):
        eta[i] = intercept
    d = X.shape[1]
    j = 0
    while j + 8 <= d:
        _add8(
            eta,
            m,
            X[s:e, j],
            X[s:e, j + 1],
            X[s:e, j + 2],
            X[s:e, j + 3],
            X[s:e, j + 4],
            X[s:e, j + 5],
            X[s:e, j + 6],
            X[s:e, j + 7],
            coef,
            j,
        )
        j += 8
    while j < d:
        _add1(eta, m, X[s:e, j], coef[j])
        j += 1


@intrinsic
def _pointer_like(typingctx, address, proto):
    """The integer ``address`` as a pointer to ``proto``'s element type."""
    ptr = nb_types.CPointer(proto.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address, proto), codegen


@helper
def _col(addresses, proto, n, j, s, e):
    """Rows s..e-1 of feature j, read in place from the buffer at ``addresses[j]``."""
    return carray(_pointer_like(addresses[j], proto), n)[s:e]


@helper
def _columns_logits(addresses, proto, n, coef, intercept, s, e, eta):
    """``_matrix_logits`` with feature j read from the buffer at ``addresses[j]`` (n elements)."""
    m = e - s
    for i in range(m):
        eta[i] = intercept
    d = addresses.shape[0]
    j = 0
    while j + 8 <= d:
        _add8(
            eta,
            m,
            _col(addresses, proto, n, j, s, e),
            _col(addresses, proto, n, j + 1, s, e),
            _col(addresses, proto, n, j + 2, s, e),
            _col(addresses, proto, n, j + 3, s, e),
            _col(addresses, proto, n, j + 4, s, e),
            _col(addresses, proto, n, j + 5, s, e),
            _col(addresses, proto, n, j + 6, s, e),
            _col(addresses, proto, n, j + 7, s, e),
            coef,
            j,
        )
        j += 8
    while j < d:
        _add1(eta, m, _col(addresses, proto, n, j, s, e), coef[j])
        j += 1


@parallel_kernel
def linear_logits(X, coef, intercept, out):
    """out = X @ coef + intercept, accumulated in float64, column by column within row blocks.

    Walking columns inside a block keeps reads sequential for column-major (Fortran) X, which
    is how feature columns arrive from Polars/Arrow without a row-major copy.
    """
    n = X.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        end = min(n, (b + 1) * BLOCK)
        for s in range(b * BLOCK, end, SUB):
            e = min(end, s + SUB)
            _matrix_logits(X, coef, intercept, s, e, out[s:e])


# --- inclusion scores ---------------------------------------------------------------------


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


@helper
def _score_sub(eta, s, e, code, X, info_inv, z, out_h0, out_h1):
    """Scores of rows s..e-1 from their logits ``eta``; NaN h0 flags a bad row.

    An empty ``out_h1`` is not written (uniform and proportional: every h1 is -1).
    """
    if code in (UNIFORM, PROPORTIONAL):
        # apart from the sigmoid, plain arithmetic: the loop vectorizes except for the exp
        for k in range(e - s):
            x = eta[k]
            h0 = 1.0 if code == UNIFORM else sigmoid(x)
            # a NaN or infinite feature always makes the logit non-finite: flag it as NaN
            out_h0[s + k] = h0 if math.isfinite(x) else math.nan
        if out_h1.shape[0]:
            for k in range(e - s):
                out_h1[s + k] = -1.0
        return
    for i in range(s, e):
        norm = 1.0
        if code in (OPT_L, OPT_A):
            norm = _row_norm(code, X, i, info_inv, z)
        x = eta[i - s]
        h0, h1 = _score_pair(code, x, norm)
        out_h0[i] = h0 if math.isfinite(x) else math.nan
        out_h1[i] = h1


@helper
def _logits_sub(X, addresses, proto, n, coef, intercept, s, e, eta):
    """Logits of rows s..e-1: from the column buffers when there are any, else from X."""
    if addresses.shape[0]:
        _columns_logits(addresses, proto, n, coef, intercept, s, e, eta)
    else:
        _matrix_logits(X, coef, intercept, s, e, eta)


@helper
def _scores_block(b, n, X, addresses, proto, coef, intercept, code, info_inv, out_h0, out_h1):
    """Block b of the fused scores (logits then scores, a sub-block at a time)."""
    eta = np.empty(SUB)
    z = np.empty(info_inv.shape[0], dtype=np.float64)
    end = min(n, (b + 1) * BLOCK)
    for s in range(b * BLOCK, end, SUB):
        e = min(end, s + SUB)
        _logits_sub(X, addresses, proto, n, coef, intercept, s, e, eta)
        _score_sub(eta, s, e, code, X, info_inv, z, out_h0, out_h1)


# Stand-ins for the column buffers where a kernel reads the matrix (never indexed).
_NO_ADDRESSES = np.zeros(0, dtype=np.uint64)
_NO_PROTO = np.zeros(0, dtype=np.float64)


@parallel_kernel
def linear_scores(X, coef, intercept, code, info_inv, out_h0, out_h1):
    """strategy_scores fused with linear_logits: one read of X, no logits array."""
    n = X.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        _scores_block(
            b, n, X, _NO_ADDRESSES, _NO_PROTO, coef, intercept, code, info_inv, out_h0, out_h1
        )


@parallel_kernel
def linear_scores_columns(addresses, proto, coef, intercept, code, out_h0, out_h1):
    """``linear_scores`` reading each feature from its own column buffer (see
    ``linear_draw_columns``); bit-identical to it, for the strategies without a row norm.

    Under uniform and proportional ``out_h1`` may be empty: every h1 is -1, and ``draw``
    reads an empty ``h1`` so (no n-sized array of -1 written and read back)."""
    n = out_h0.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        _scores_block(
            b, n, _NO_ROWS, addresses, proto, coef, intercept, code, _NO_ROWS, out_h0, out_h1
        )


# --- the draw -----------------------------------------------------------------------------


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
def _offset(a0, a1):
    """log(a1) - log(a0), sparing the log of a1 = 1 (positives always kept): log(1) is +0.0
    exactly, so the bits are the same."""
    la1 = 0.0 if a1 == 1.0 else math.log(a1)
    return la1 - math.log(a0)


@helper
def _decide_u(h0, h1, y, u, kappa, floor):
    """(kept, a_y, a_0, a_1) for one row and its uniform ``u``."""
    a0 = _clip(kappa * h0, floor)
    a1 = 1.0 if h1 < 0.0 else _clip(kappa * h1, floor)
    a = a1 if y != 0 else a0
    return u < a, a, a0, a1


@helper
def _decide(h0, h1, y, key, seed_mix, kappa, floor):
    """(kept, a_y, a_0, a_1) for one row; the caller takes logs only for kept rows."""
    return _decide_u(h0, h1, y, _uniform(key, seed_mix), kappa, floor)


@parallel_kernel
def draw(h0, h1, y, keys, seed_mix, kappa, floor, out_idx, out_prob, out_offset, out_counts):
    """Keyed Bernoulli draw; kept rows of block b go to the front of its slice of the outputs.

    ``out_counts[b]`` receives the number kept in block b; ``compact`` then gathers the
    blocks. Keys are uint64; a_y = clip(kappa * h_y, floor, 1) and the exact value compared
    with the uniform is the one written. An empty ``h1`` means every h1 is -1 (every
    positive kept).
    """
    n = y.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    all_kept = h1.shape[0] == 0
    for b in prange(nblocks):
        start = b * BLOCK
        c = start
        for i in range(start, min(n, start + BLOCK)):
            h1_i = -1.0 if all_kept else h1[i]
            kept, a, a0, a1 = _decide(h0[i], h1_i, y[i], keys[i], seed_mix, kappa, floor)
            if kept:
                out_idx[c] = i
                out_prob[c] = a
                out_offset[c] = _offset(a0, a1)
                c += 1
        out_counts[b] = c - start


# The bound that spares most rows their exp. For x = eta * log2(e), the double whose bits are
# (x + 1023) * 2^52 (as an integer) is 2^floor(x) * (1 + frac(x)): the chord of 2^x, which lies
# above 2^x. With x raised by BOUND_SHIFT, which dwarfs every rounding on the way (< 1e-12),
# E >= e^eta > sigmoid(eta) for sure, and kappa * E * (1 + BOUND_SLACK) bounds the exact
# kappa * sigmoid(eta) the draw computes (itself within a few ulps of the true value). A
# negative whose uniform is at or above max(that bound, floor) is certainly not kept; every
# other row (and every positive) takes the exact path, whose value is the one compared and
# written. The bound is at most ~6% (chord) + p (e^eta vs sigmoid) above the exact value.
LOG2E = 1.4426950408889634
BOUND_SHIFT = 2.0**-20
BOUND_SLACK = 2.0**-20
TWO_POW_52 = 4503599627370496.0


@intrinsic
def _as_float64(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (a register move, no memory)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(nb_types.float64))

    return nb_types.float64(nb_types.int64), codegen


@helper
def _exp_bound(x):
    """A cheap E >= e^x for any float x (NaN gives a tiny E); see the comment above."""
    t = x * LOG2E + BOUND_SHIFT
    if not t > -1020.0:  # NaN too: a NaN logit's exact path never keeps a negative
        t = -1020.0
    if t > 60.0:  # the bound only needs to exceed 1
        t = 60.0
    return _as_float64(np.int64((t + 1023.0) * TWO_POW_52))


@helper
def _draw_sub(
    eta, s, e, code, y, keys, seed_mix, kappa, floor, flag, out_idx, out_prob, out_offset, c
):
    """Draw of rows s..e-1 (no row norm) from their logits; returns (next c, any bad logit).

    ``flag`` is SUB-row scratch: the rows the bound cannot decide.
    """
    m = e - s
    scale = kappa * (1.0 + BOUND_SLACK)
    lo = max(floor, PI_EPS)
    bad = 0
    # plain arithmetic, no branch: this loop vectorizes (exp and log only come after it)
    for k in range(m):
        x = eta[k]
        bad += not math.isfinite(x)
        bound = scale * (1.0 if code == UNIFORM else _exp_bound(x))
        u = _uniform(keys[s + k], seed_mix)
        flag[k] = (y[s + k] != 0) | (u < max(bound, lo))
    for k in range(m):
        if flag[k]:
            h0, h1 = _score_pair(code, eta[k], 1.0)
            u = _uniform(keys[s + k], seed_mix)
            kept, a, a0, a1 = _decide_u(h0, h1, y[s + k], u, kappa, floor)
            if kept:
                out_idx[c] = s + k
                out_prob[c] = a
                out_offset[c] = _offset(a0, a1)
                c += 1
    return c, bad > 0


@helper
def _draw_sub_norm(
    eta, s, e, code, X, info_inv, z, y, keys, seed_mix, kappa, floor,
    out_idx, out_prob, out_offset, c,
):  # fmt: skip
    """``_draw_sub`` for opt-l / opt-a: the row norm makes every row's score its own work."""
    bad = False
    for i in range(s, e):
        norm = _row_norm(code, X, i, info_inv, z)
        x = eta[i - s]
        bad |= not math.isfinite(x)
        h0, h1 = _score_pair(code, x, norm)
        kept, a, a0, a1 = _decide(h0, h1, y[i], keys[i], seed_mix, kappa, floor)
        if kept:
            out_idx[c] = i
            out_prob[c] = a
            out_offset[c] = _offset(a0, a1)
            c += 1
    return c, bad


@helper
def _draw_block(
    b, n, X, addresses, proto, coef, intercept, code, info_inv, y, keys, seed_mix, kappa, floor,
    out_idx, out_prob, out_offset,
):  # fmt: skip
    """Block b of the fused draw; returns its kept count, or -1 for a non-finite logit."""
    eta = np.empty(SUB)
    flag = np.empty(SUB, dtype=np.bool_)
    z = np.empty(info_inv.shape[0], dtype=np.float64)
    start = b * BLOCK
    end = min(n, start + BLOCK)
    c = start
    bad = False
    for s in range(start, end, SUB):
        e = min(end, s + SUB)
        _logits_sub(X, addresses, proto, n, coef, intercept, s, e, eta)
        if code in (OPT_L, OPT_A):
            c, bad_s = _draw_sub_norm(
                eta, s, e, code, X, info_inv, z, y, keys, seed_mix, kappa, floor,
                out_idx, out_prob, out_offset, c,
            )  # fmt: skip
        else:
            c, bad_s = _draw_sub(
                eta, s, e, code, y, keys, seed_mix, kappa, floor, flag,
                out_idx, out_prob, out_offset, c,
            )  # fmt: skip
        bad |= bad_s
    return -1 if bad else c - start


@parallel_kernel
def linear_draw(
    X, coef, intercept, code, info_inv, y, keys, seed_mix, kappa, floor,
    out_idx, out_prob, out_offset, out_counts,
):  # fmt: skip
    """One pass for a linear pilot and a known kappa: logits, scores and draw, fused.

    Kept rows of block b go to the front of its slice of the outputs (see ``draw``). A block
    with a non-finite logit gets ``out_counts[b] = -1`` (the caller raises).
    """
    n = X.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        out_counts[b] = _draw_block(
            b, n, X, _NO_ADDRESSES, _NO_PROTO, coef, intercept, code, info_inv, y, keys,
            seed_mix, kappa, floor, out_idx, out_prob, out_offset,
        )  # fmt: skip


@parallel_kernel
def linear_draw_columns(
    addresses, proto, coef, intercept, code, y, keys, seed_mix, kappa, floor,
    out_idx, out_prob, out_offset, out_counts,
):  # fmt: skip
    """``linear_draw`` reading each feature from its own column buffer: no matrix copy.

    ``addresses[j]`` is the address of feature j's contiguous buffer of ``len(y)`` elements of
    ``proto``'s dtype; the caller keeps those buffers alive. For the strategies without a row
    norm (uniform, proportional, lcc). Same arithmetic in the same order as ``linear_draw``,
    so the results are bit-identical.
    """
    n = y.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        out_counts[b] = _draw_block(
            b, n, _NO_ROWS, addresses, proto, coef, intercept, code, _NO_ROWS, y, keys,
            seed_mix, kappa, floor, out_idx, out_prob, out_offset,
        )  # fmt: skip


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


# --- water-filling ------------------------------------------------------------------------


# Weights: an empty ``w`` means every weight is 1 (an in-memory frame's negatives), so no
# n-sized array of ones is built. ``1.0 * x`` is ``x`` exactly, so the sums are the same bits.


@helper
def _weight(w, unit, i):
    return 1.0 if unit else w[i]


@parallel_kernel
def _piece(h, w, kappa, floor):
    """Linear piece of g(k) = sum w clip(k h, floor, 1) that holds at k = kappa, and g(kappa).

    Sums are taken per fixed block and then over blocks in order, so the result is
    bit-identical whatever the number of threads; g(kappa) has the bits of
    ``expected_count(h, w, kappa, floor)`` (same blocks, same terms, same order), so the
    solver needs no extra pass for it. ``w`` empty: unit weights.
    """
    n = h.shape[0]
    unit = w.shape[0] == 0
    nblocks = (n + BLOCK - 1) // BLOCK
    part = np.empty((nblocks, 4))
    counts = np.empty((nblocks, 2), dtype=np.int64)
    for b in prange(nblocks):
        n_hi = 0.0
        n_lo = 0.0
        s_mid = 0.0
        g = 0.0
        c_hi = 0
        c_lo = 0
        # branches, not selects: few rows clip, and the sums' latency bounds the loop anyway
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            x = h[i]
            v = kappa * x
            g += _weight(w, unit, i) * _clip(v, floor)
            if v >= 1.0:
                c_hi += 1
                if not unit:
                    n_hi += w[i]
            elif v <= floor:
                c_lo += 1
                if not unit:
                    n_lo += w[i]
            else:
                s_mid += x if unit else w[i] * x
        part[b, 0] = n_hi
        part[b, 1] = n_lo
        part[b, 2] = s_mid
        part[b, 3] = g
        counts[b, 0] = c_hi
        counts[b, 1] = c_lo
    tot = np.zeros(4)
    tot_c = np.zeros(2, dtype=np.int64)
    for b in range(nblocks):
        for j in range(4):
            tot[j] += part[b, j]
        for j in range(2):
            tot_c[j] += counts[b, j]
    if unit:
        # a sum of ones is its count exactly, in any order
        return float(tot_c[0]), float(tot_c[1]), tot[2], tot_c[0], tot_c[1], tot[3]
    return tot[0], tot[1], tot[2], tot_c[0], tot_c[1], tot[3]


@serial_kernel
def solve_kappa(h, w, target, floor, k_max, out_expected):
    """Solve sum_i w_i clip(kappa h_i, floor, 1) = target for kappa in (0, k_max].

    Safeguarded Newton on a piecewise-linear monotone function: on the piece holding the
    current guess the equation is linear, so its root is exact as soon as the root lies on
    that same piece; otherwise the bracket shrinks (bisection as the fallback). The caller
    guarantees g(0) < target <= g(k_max). ``out_expected[0]`` receives
    ``expected_count(h, w, kappa, floor)`` at the returned kappa (bit for bit), from the
    step's own pass when it has one. ``w`` empty: unit weights.
    """
    # g(k) <= floor * W + k * sum(w h), so this k is a valid lower end of the bracket.
    unit = w.shape[0] == 0
    total_w = 0.0
    total_wh = 0.0
    for i in range(h.shape[0]):
        wi = _weight(w, unit, i)
        total_w += wi
        total_wh += wi * h[i]
    lo = (target - floor * total_w) / total_wh
    hi = k_max
    g_hi = -1.0  # g(hi) once a step has evaluated it (k_max never is)
    if not lo < hi:
        lo = 0.0
    k = lo if lo > 0.0 else 0.5 * hi
    prev_hi = -1
    prev_lo = -1
    for _ in range(400):
        n_hi, n_lo, s_mid, c_hi, c_lo, g_k = _piece(h, w, k, floor)
        g = n_hi + floor * n_lo + k * s_mid
        if g == target:
            out_expected[0] = g_k
            return k
        if c_hi == prev_hi and c_lo == prev_lo:
            # k was solved on this very piece: it is the root (up to rounding)
            out_expected[0] = g_k
            return k
        if g < target:
            lo = k
        else:
            hi = k
            g_hi = g_k
        prev_hi = c_hi
        prev_lo = c_lo
        if s_mid > 0.0:
            k_new = (target - n_hi - floor * n_lo) / s_mid
            if k_new == k:
                out_expected[0] = g_k
                return k
            if lo < k_new < hi:
                k = k_new
                continue
        prev_hi = -1  # a bisection step: the next piece was not solved for
        if hi - lo <= 1e-15 * hi:
            break
        # geometric steps while the bracket spans orders of magnitude
        k = 0.5 * (lo + hi) if lo == 0.0 or hi / lo < 4.0 else math.sqrt(lo) * math.sqrt(hi)
    out_expected[0] = g_hi if g_hi >= 0.0 else expected_count(h, w, hi, floor)
    return hi


@parallel_kernel
def expected_count(h, w, kappa, floor):
    """sum_i w_i clip(kappa h_i, floor, 1), with the same clipping as the draw.

    Summed per fixed block, then over blocks in order: independent of the thread count.
    ``w`` empty: unit weights.
    """
    n = h.shape[0]
    unit = w.shape[0] == 0
    nblocks = (n + BLOCK - 1) // BLOCK
    part = np.zeros(nblocks)
    for b in prange(nblocks):
        s = 0.0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            s += _weight(w, unit, i) * _clip(kappa * h[i], floor)
        part[b] = s
    total = 0.0
    for b in range(nblocks):
        total += part[b]
    return total


# --- correction ---------------------------------------------------------------------------


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
register_serial(solve_kappa, _piece=serial_twin(_piece), expected_count=SERIAL[expected_count])
