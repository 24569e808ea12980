"""``python -m fastsample``: the same command line as the ``fastsample`` script."""

from __future__ import annotations

from fastsample.cli import run

if __name__ == "__main__":
    run()
