"""``python -m fastsample``: the same command line as the ``fastsample`` script."""

from __future__ import annotations

import sys

from fastsample.cli import main

if __name__ == "__main__":
    sys.exit(main())
