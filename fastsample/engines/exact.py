"""Exact mode's first pass: every negative's score to a spill file, then kappa exactly.

The scores go to an anonymous temporary file (8 bytes a negative, on disk) while their
top-level histogram is accumulated; :func:`fastsample.core.kappa.exact_kappa` then refines
over the file (usually one or two more reads of it) until the water-filling root is exact.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

import numpy as np

from fastsample.core.kappa import RefinedPart, Refinement, TopHistogram, refine_part, score_bits
from fastsample.core.kappa import exact_kappa as solve_exact
from fastsample.core.pilot import Pilot
from fastsample.core.plan import OutputColumns, Parameters, SamplingPlan
from fastsample.core.progress import progress_bar
from fastsample.engines.batch import batch_scores, label_array
from fastsample.engines.sources import Source, iter_frames

#: Scores read back from the spill file at a time (read at call time).
SPILL_BLOCK = 1 << 20


class Spill:
    """Scores of every negative in an anonymous temporary file (float64, input order)."""

    def __init__(self) -> None:
        self._fh: IO[bytes] = tempfile.TemporaryFile(prefix="fastsample-scores-")  # noqa: SIM115
        self.count = 0
        self.histogram = TopHistogram()

    def add(self, h: np.ndarray) -> None:
        """Append scores (checked: finite and non-negative)."""
        bits = score_bits(h)
        if not bits.size:
            return
        self._fh.write(bits.tobytes())
        self.histogram.add(bits)
        self.count += bits.size

    def blocks(self) -> Iterator[np.ndarray]:
        """The spilled scores' bit patterns, ``SPILL_BLOCK`` at a time."""
        self._fh.flush()
        self._fh.seek(0)
        while True:
            bits = np.fromfile(self._fh, dtype=np.uint64, count=SPILL_BLOCK)
            if not bits.size:
                return
            yield bits

    def refine(self, request: Refinement) -> RefinedPart:
        """One pass over the file answering ``request``."""
        part = RefinedPart.empty(request)
        for bits in self.blocks():
            part.merge(refine_part(bits, request))
        return part

    def kappa(self, target: float, floor: float | None) -> tuple[float, float]:
        """``(kappa, expected kept negatives)`` solved exactly over every spilled score."""
        return solve_exact(self.histogram, target, floor, self.refine)

    def close(self) -> None:
        """Delete the file."""
        self._fh.close()


def exact_plan(
    src: Source,
    label: str,
    pilot: Pilot | None,
    params: Parameters,
    columns: OutputColumns,
    batch: int,
    progress: bool,
) -> tuple[SamplingPlan, int]:
    """First pass of exact mode: spill every negative's score, solve kappa; ``(plan, N0)``."""
    info_inv = pilot.info_inv if pilot is not None else None
    needed = list(dict.fromkeys([label, *(pilot.features if pilot is not None else [])]))
    spill = Spill()
    try:
        with progress_bar(total=src.num_rows, desc="exact kappa", enabled=progress) as bar:
            for frame, path in iter_frames(src, batch_rows=batch, columns=needed):
                y = label_array(frame, label, source=repr(path))
                h0, _ = batch_scores(frame, pilot, params.code, info_inv, repr(path))
                spill.add(h0[y == 0])
                bar.update(frame.height)
        n0 = spill.count
        target = params.rate * n0
        kappa, expected = spill.kappa(target, params.floor) if n0 else (1.0, 0.0)
    finally:
        spill.close()
    plan = params.with_kappa(
        float(kappa), target, expected, method="exact", info_inv=info_inv, columns=columns
    )
    return plan, n0


__all__ = ["SPILL_BLOCK", "Spill", "exact_plan"]
