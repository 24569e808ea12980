"""Progress bars (tqdm) shown only on a terminal and never with ``--quiet``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


@contextlib.contextmanager
def progress_bar(
    *, total: int | None, desc: str, unit: str = "rows", enabled: bool = True
) -> Iterator[Any]:
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal; otherwise a no-op."""
    if not enabled or not sys.stderr.isatty():
        yield _Silent()
        return
    from tqdm.auto import tqdm  # lazy: start-up time (tqdm only when a bar is drawn)

    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    try:
        yield bar
    finally:
        bar.close()
