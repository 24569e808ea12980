"""Is the key a row key? A cheap check while streaming: exact within a batch, a sketch across.

Rows that share a key share their uniform, so a key column that is not unique
silently turns row sampling into group sampling. :class:`KeySketch` watches the key words the
engine computes anyway: each batch is checked exactly for repeated words (an open-addressing
hash set, O(n)), and all batches feed a HyperLogLog of 2^12 registers (relative standard error
1.04 / 64 = 1.6%) whose distinct-count estimate is compared with the row count at the end.
Inputs of more than 2^20 rows are checked on a 1/16 hash sample of the keys (the copies of a
key are sampled together), so the cost per row is about one multiply.

The HyperLogLog is a few lines of Numba over the engine's uint64 key words rather than a
library: the sketch libraries at hand take values one Python call at a time, which would cost
more than the draw itself on 2^18-row batches.
"""

from __future__ import annotations

import math

import numpy as np

from fastsample.core.kernels import splitmix64
from fastsample.core.numba_config import serial_kernel

#: log2 of the number of HyperLogLog registers.
HLL_BITS = 12
_M = 1 << HLL_BITS
# Bias correction of the raw HyperLogLog estimate for m >= 128 (Flajolet et al. 2007).
_ALPHA = 0.7213 / (1.0 + 1.079 / _M)
#: A key is reported non-unique when the estimate is below this fraction of the rows: far
#: beyond the sketch's error (8 standard errors), so a unique key is never reported.
UNIQUE_FRACTION = 0.87
#: Inputs of at least this many rows are sketched on a hash sample of 1 in 2^SAMPLE_BITS keys.
SAMPLE_ABOVE = 1 << 20
SAMPLE_BITS = 4


@serial_kernel
def _sketch_batch(words, sample_bits, registers, table):
    """Update ``registers`` with the sampled ``words``; return how many repeat one seen here.

    A word is sampled when the top ``sample_bits`` bits of its Fibonacci hash (one multiply)
    are zero: the copies of a key are sampled together, so repeats and the distinct count
    (times ``2^sample_bits``) are estimated from the sample, and only sampled words pay for
    splitmix64. ``table`` (uint64, a power of two) is the scratch of the exact
    in-batch check; it stores ``hash | 1`` (never 0, which marks an empty slot; splitmix64 is a
    bijection, so two distinct words collide with probability 2^-63) and is never filled
    beyond half (later words are then only sketched).
    """
    mask = np.uint64(table.shape[0] - 1)
    table[:] = 0
    pick = np.uint64(64 - sample_bits)
    fib = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(64 - HLL_BITS)
    sentinel = np.uint64(1) << np.uint64(HLL_BITS)
    top = np.uint64(1) << np.uint64(63)
    room = table.shape[0] // 2
    repeats = 0
    for i in range(words.shape[0]):
        if sample_bits and (words[i] * fib) >> pick:
            continue
        h = splitmix64(words[i])
        # HyperLogLog: register from the top bits, rank = leading zeros of the rest + 1.
        r = h >> shift
        rest = (h << np.uint64(HLL_BITS)) | sentinel
        rank = 1
        while rest & top == 0:
            rest = rest << np.uint64(1)
            rank += 1
        if rank > registers[r]:
            registers[r] = rank
        if room == 0:
            continue
        v = h | np.uint64(1)
        j = (h >> np.uint64(HLL_BITS)) & mask
        while True:
            t = table[j]
            if t == 0:
                table[j] = v
                room -= 1
                break
            if t == v:
                repeats += 1
                break
            j = (j + np.uint64(1)) & mask
    return repeats


class KeySketch:
    """Distinct-count sketch and in-batch repeat counter of a stream of key words.

    Examples
    --------
    >>> s = KeySketch()
    >>> s.add(np.arange(100_000, dtype=np.uint64) % 1000)
    >>> s.rows, s.repeats_in_batches, round(s.distinct() / 1000, 1)
    (100000, 99000, 1.0)
    """

    def __init__(self, rows_hint: int = 0) -> None:
        # Large inputs are sketched on a 1/16 hash sample (the cost per row is then mostly one
        # hash): the distinct-count error from sampling is under 0.5% above 2^20 rows.
        self.sample_bits = SAMPLE_BITS if rows_hint >= SAMPLE_ABOVE else 0
        self.registers = np.zeros(_M, dtype=np.int64)
        self.rows = 0
        self.repeats_in_batches = 0
        self._table = np.zeros(0, dtype=np.uint64)

    def add(self, words: np.ndarray) -> None:
        """Feed one batch of key words (uint64)."""
        n = int(words.shape[0])
        if n == 0:
            return
        expect = n >> self.sample_bits
        size = 1 << max(6, (4 * expect + 63).bit_length())
        if self._table.shape[0] != size:
            self._table = np.zeros(size, dtype=np.uint64)
        w = np.ascontiguousarray(words, dtype=np.uint64)
        seen = _sketch_batch(w, self.sample_bits, self.registers, self._table)
        self.repeats_in_batches += int(seen) << self.sample_bits
        self.rows += n

    def distinct(self) -> float:
        """HyperLogLog estimate of the number of distinct keys seen (1.6% standard error)."""
        if self.rows == 0:
            return 0.0
        z = float(np.sum(np.ldexp(1.0, -self.registers)))
        est = _ALPHA * _M * _M / z
        zeros = int(np.count_nonzero(self.registers == 0))
        if est <= 2.5 * _M and zeros:
            est = _M * math.log(_M / zeros)  # linear counting, exact-ish for small counts
        return min(est * (1 << self.sample_bits), float(self.rows))

    def unique(self) -> bool:
        """Whether the keys look unique: no repeat within a batch, and the estimate is
        within the sketch's error of the row count."""
        return self.repeats_in_batches == 0 and self.distinct() >= UNIQUE_FRACTION * self.rows

    def warning(self, key: list[str]) -> str | None:
        """One line for a key that is not unique, else None."""
        if self.unique():
            return None
        approx = " about" if self.sample_bits else ""
        return (
            f"key {','.join(key)!r} is not unique: about {self.distinct():,.0f} distinct values "
            f"in {self.rows:,} rows ({approx} {self.repeats_in_batches:,} repeats within a batch);"
            " rows sharing a key are kept or dropped together, so variances and standard errors "
            "are understated; use a row key, or group_key / --group-key to sample whole groups"
            " on purpose"
        ).replace("( ", "(")
