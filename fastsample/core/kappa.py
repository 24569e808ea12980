"""Exact kappa over any number of scores: bin accumulation, refinement, solve.

The water-filling equation ``sum_i clip(kappa h_i, floor, 1) = target`` is solved over every
negative's score without holding them all: for non-negative doubles the bit pattern orders
like the value, so bins of bit patterns are exact, disjoint value intervals. Each bin enters
the equation as one pseudo-row (its mean, weighted by its count) — exact wherever every value
of the bin is on the same linear piece at the solution (all clipped to 1, all clipped to the
floor, or all in between). Bins that straddle a breakpoint (``1/kappa`` or ``floor/kappa``; at
most a few) are replaced by their exact scores or, when too many, split ``2^SPLIT_BITS``-fold,
and the solve is repeated until no bin straddles. Bin sums are exact integer sums of the
significands (:func:`mantissa_sums`) and collected scores are sorted, so kappa depends on the
multiset of scores alone, not on their order, batching or partitioning.

Every step is a plain function over NumPy arrays and mergeable partial aggregates, so an
engine runs the passes where its data lives:

1. per batch (an executor, a thread): ``bits = score_bits(h0)`` of the negatives' scores,
   then ``top_partial(bits)`` -> ``(bins, count, hi, lo)`` int64 arrays; partials add up
   (sum ``count``, ``hi``, ``lo`` by ``bins``). Accumulate them in a :class:`TopHistogram`
   (``add`` for bits, ``add_partial`` for partials from elsewhere).
2. on the driver: ``exact_kappa(hist, target, floor, refine)`` where ``refine(request)``
   runs one more pass: for every batch, ``refine_part(bits, request)``, merged with
   :meth:`RefinedPart.merge` (any order), and returns the merged part. It is called only when
   a bin straddles a breakpoint (usually once or twice).

The Parquet engine (:mod:`fastsample.engines.exact`) spills the scores to a local file and
refines over it; a Spark engine can run step 1 and each ``refine`` as a ``mapInArrow`` job
plus a sum by bin (or a collect of the few values).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastsample.core.strategies import effective_floor, expected_total, water_filling
from fastsample.errors import InputError

#: Top-level bins: 2^8 per octave of the scores (bit patterns >> 44).
TOP_SHIFT = 44
#: Each refinement splits a bin into 2^16 sub-bins.
SPLIT_BITS = 16
#: At most this many exact scores are collected at once (read at call time).
COLLECT_CAP = 1 << 21
_MANTISSA_SPLIT = 26  # mantissa = hi * 2^26 + lo, hi < 2^27, lo < 2^26
_EXACT_ROWS = 1 << 26  # bincount sums of at most this many parts stay below 2^53: exact
_TOP_SIZE = 1 << (64 - TOP_SHIFT - 1)


def score_bits(h: np.ndarray) -> np.ndarray:
    """The scores' float64 bit patterns (uint64), ``-0.0`` as ``+0.0``; checks the scores."""
    v = np.ascontiguousarray(h, dtype=np.float64) + 0.0  # -0.0 -> +0.0, and a private copy
    if v.size and (not np.isfinite(v).all() or (v < 0).any()):
        raise InputError("pilot scores contain NaN, infinite or negative values")
    return v.view(np.uint64)


def mantissa_sums(bits: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin integer sums of the significands of non-negative doubles, split in two parts.

    Every value of a bin shares its binary exponent (a bin never spans two binades), so a bin's
    sum is ``(hi * 2^26 + lo) * 2^exponent`` with integer ``hi``, ``lo``: exact, whatever the
    order or grouping of the rows. float64 ``bincount`` adds integers exactly while the sums
    stay below 2^53, hence the chunks of at most 2^26 rows. The arrays run up to the largest
    bin present.
    """
    size = int(bins.max()) + 1 if bins.size else 0
    exp = (bits >> np.uint64(52)) & np.uint64(0x7FF)
    sig = (bits & np.uint64((1 << 52) - 1)) | np.where(exp > 0, np.uint64(1 << 52), np.uint64(0))
    hi_all = (sig >> np.uint64(_MANTISSA_SPLIT)).astype(np.float64)
    lo_all = (sig & np.uint64((1 << _MANTISSA_SPLIT) - 1)).astype(np.float64)
    hi = np.zeros(size, dtype=np.int64)
    lo = np.zeros(size, dtype=np.int64)
    for start in range(0, bins.shape[0], _EXACT_ROWS):
        part = slice(start, start + _EXACT_ROWS)
        hi += np.bincount(bins[part], weights=hi_all[part], minlength=size).astype(np.int64)
        lo += np.bincount(bins[part], weights=lo_all[part], minlength=size).astype(np.int64)
    return hi, lo


def bin_total(hi: int, lo: int, bits: int) -> float:
    """A bin's exact sum from :func:`mantissa_sums`, rounded once; ``bits``: any of its values."""
    exp = max((bits >> 52) & 0x7FF, 1) - 1075
    return math.ldexp(float((int(hi) << _MANTISSA_SPLIT) + int(lo)), exp)


def top_partial(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One batch's top-level histogram: ``(bins, count, hi, lo)`` of its non-empty bins."""
    b = (bits >> np.uint64(TOP_SHIFT)).astype(np.int64)
    counts = np.bincount(b)
    hi, lo = mantissa_sums(bits, b)
    nz = np.flatnonzero(counts)
    return nz.astype(np.int64), counts[nz], hi[nz], lo[nz]


class TopHistogram:
    """Top-level bins of the scores (count and exact significand sums), dense, mergeable."""

    def __init__(self) -> None:
        self.count = np.zeros(_TOP_SIZE, dtype=np.int64)
        self.hi = np.zeros(_TOP_SIZE, dtype=np.int64)
        self.lo = np.zeros(_TOP_SIZE, dtype=np.int64)

    @property
    def total(self) -> int:
        """Number of scores added."""
        return int(self.count.sum())

    def add(self, bits: np.ndarray) -> None:
        """Add the scores with these bit patterns (from :func:`score_bits`)."""
        if not bits.size:
            return
        b = (bits >> np.uint64(TOP_SHIFT)).astype(np.int64)
        counts = np.bincount(b)
        self.count[: counts.size] += counts
        hi, lo = mantissa_sums(bits, b)
        self.hi[: hi.size] += hi
        self.lo[: lo.size] += lo

    def add_partial(
        self, bins: np.ndarray, count: np.ndarray, hi: np.ndarray, lo: np.ndarray
    ) -> None:
        """Add a :func:`top_partial` computed elsewhere (bins may repeat)."""
        np.add.at(self.count, bins, count)
        np.add.at(self.hi, bins, hi)
        np.add.at(self.lo, bins, lo)

    def segments(self) -> list[Segment]:
        """The non-empty bins, in increasing order."""
        return [
            Segment(
                int(i) << TOP_SHIFT,
                (int(i) + 1) << TOP_SHIFT,
                int(self.count[i]),
                bin_total(int(self.hi[i]), int(self.lo[i]), int(i) << TOP_SHIFT),
            )
            for i in np.flatnonzero(self.count)
        ]


@dataclass
class Segment:
    """A range ``[lo, hi)`` of bit patterns with its count and exact (rounded) sum."""

    lo: int
    hi: int
    count: int
    total: float
    values: np.ndarray | None = None  # the scores themselves, sorted, once collected


@dataclass(frozen=True)
class Refinement:
    """What one refinement pass asks of every batch.

    ``collect``: bit ranges ``[lo, hi)`` whose scores are wanted; ``split``: ``(lo, hi, shift)``
    ranges whose sub-bin histogram (``(bits - lo) >> shift``, ``2^SPLIT_BITS`` bins) is wanted.
    """

    collect: tuple[tuple[int, int], ...]
    split: tuple[tuple[int, int, int], ...]


@dataclass
class RefinedPart:
    """The answer of some batches to a :class:`Refinement`; merge the parts in any order."""

    values: list[list[np.ndarray]]
    count: list[np.ndarray]
    hi: list[np.ndarray]
    lo: list[np.ndarray]

    @classmethod
    def empty(cls, request: Refinement) -> RefinedPart:
        """The part of no rows."""
        n = 1 << SPLIT_BITS
        k = len(request.split)
        return cls(
            [[] for _ in request.collect],
            [np.zeros(n, np.int64) for _ in range(k)],
            [np.zeros(n, np.int64) for _ in range(k)],
            [np.zeros(n, np.int64) for _ in range(k)],
        )

    def merge(self, other: RefinedPart) -> RefinedPart:
        """Add ``other`` into this part (returned)."""
        for mine, theirs in zip(self.values, other.values, strict=True):
            mine.extend(theirs)
        for acc, add in zip(
            [*self.count, *self.hi, *self.lo], [*other.count, *other.hi, *other.lo], strict=True
        ):
            acc += add
        return self


def refine_part(bits: np.ndarray, request: Refinement) -> RefinedPart:
    """One batch's answer to ``request`` (``bits`` from :func:`score_bits`)."""
    part = RefinedPart.empty(request)
    for j, (lo, hi) in enumerate(request.collect):
        m = (bits >= np.uint64(lo)) & (bits < np.uint64(hi))
        part.values[j].append(bits[m].view(np.float64))
    for j, (lo, hi, shift) in enumerate(request.split):
        m = (bits >= np.uint64(lo)) & (bits < np.uint64(hi))
        sub = ((bits[m] - np.uint64(lo)) >> np.uint64(shift)).astype(np.int64)
        part.count[j] += np.bincount(sub, minlength=1 << SPLIT_BITS)
        s_hi, s_lo = mantissa_sums(bits[m], sub)
        part.hi[j][: s_hi.size] += s_hi
        part.lo[j][: s_lo.size] += s_lo
    return part


def _bits_value(bits: int) -> float:
    return float(np.array([min(bits, 0x7FF0000000000000)], dtype=np.uint64).view(np.float64)[0])


def solve_segments(
    segs: list[Segment], target: float, floor: float | None
) -> tuple[float, float, list[Segment]]:
    """kappa over the segments as pseudo-rows: ``(kappa, expected, straddling segments)``."""
    f = effective_floor(floor)
    hs: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    for s in segs:
        if s.values is not None:
            hs.append(s.values)
            ws.append(np.ones(s.values.size))
        else:
            hs.append(np.array([s.total / s.count if s.hi - s.lo > 1 else _bits_value(s.lo)]))
            ws.append(np.array([float(s.count)]))
    h = np.concatenate(hs) if hs else np.zeros(0)
    w = np.concatenate(ws) if ws else np.zeros(0)
    kappa = water_filling(h, target, f, weights=w, floor=floor)
    straddling = []
    for s in segs:
        if s.values is not None or s.hi - s.lo == 1:
            continue
        lo_v = kappa * _bits_value(s.lo)
        hi_v = kappa * _bits_value(s.hi)
        if hi_v <= f or lo_v >= 1.0 or (lo_v >= f and hi_v <= 1.0):
            continue
        straddling.append(s)
    return kappa, expected_total(h, w, kappa, f), straddling


def plan_refinement(straddling: list[Segment], cap: int | None = None) -> Refinement:
    """Collect the straddling segments' scores while at most ``cap`` in all; split the rest."""
    budget = COLLECT_CAP if cap is None else cap
    collect: list[tuple[int, int]] = []
    split: list[tuple[int, int, int]] = []
    for s in straddling:
        if s.count <= budget:
            collect.append((s.lo, s.hi))
            budget -= s.count
        else:
            split.append((s.lo, s.hi, max(0, (s.hi - s.lo).bit_length() - 1 - SPLIT_BITS)))
    return Refinement(tuple(collect), tuple(split))


def apply_refinement(segs: list[Segment], request: Refinement, part: RefinedPart) -> list[Segment]:
    """The segments with the refined ones replaced (by their scores or their sub-bins)."""
    collected = {lo_hi: j for j, lo_hi in enumerate(request.collect)}
    splits = {(lo, hi): j for j, (lo, hi, _) in enumerate(request.split)}
    new: list[Segment] = []
    for s in segs:
        if s.values is None and (s.lo, s.hi) in collected:
            found = part.values[collected[(s.lo, s.hi)]]
            # sorted: the solve then sees the same sequence whatever the input order
            vals = np.sort(np.concatenate(found)) if found else np.zeros(0)
            new.append(Segment(s.lo, s.hi, s.count, s.total, vals))
        elif s.values is None and (s.lo, s.hi) in splits:
            j = splits[(s.lo, s.hi)]
            width = 1 << request.split[j][2]
            for k in np.flatnonzero(part.count[j]):
                lo = s.lo + int(k) * width
                total = bin_total(int(part.hi[j][k]), int(part.lo[j][k]), lo)
                new.append(Segment(lo, min(lo + width, s.hi), int(part.count[j][k]), total))
        else:
            new.append(s)
    return new


def exact_kappa(
    hist: TopHistogram,
    target: float,
    floor: float | None,
    refine: Callable[[Refinement], RefinedPart],
) -> tuple[float, float]:
    """Solve ``sum_i clip(kappa h_i, floor, 1) = target`` exactly over every score.

    Parameters
    ----------
    hist : TopHistogram
        The top-level histogram of every score.
    target : float
        Expected kept count wanted (``rate * N0``).
    floor : float or None
        The floor as asked.
    refine : callable
        ``refine(request)`` makes one more pass over every score and returns the merged
        :func:`refine_part` of all batches.

    Returns
    -------
    (kappa, expected kept count at kappa)
    """
    segs = hist.segments()
    while True:
        kappa, expected, straddling = solve_segments(segs, target, floor)
        if not straddling:
            return kappa, expected
        request = plan_refinement(straddling)
        segs = apply_refinement(segs, request, refine(request))


__all__ = [
    "COLLECT_CAP",
    "SPLIT_BITS",
    "TOP_SHIFT",
    "RefinedPart",
    "Refinement",
    "Segment",
    "TopHistogram",
    "apply_refinement",
    "bin_total",
    "exact_kappa",
    "mantissa_sums",
    "plan_refinement",
    "refine_part",
    "score_bits",
    "solve_segments",
    "top_partial",
]
