"""Lazy import of optional dependencies with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

# The example below imports matplotlib: without it the example is skipped (see conftest.py).
__doctest_requires__ = {"require": ("matplotlib",)}


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` naming the extra that provides it.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"matplotlib.pyplot"``.
    extra : str
        The fastsample extra that installs it, e.g. ``"plot"``.

    Examples
    --------
    >>> require("matplotlib.figure", "plot").__name__
    'matplotlib.figure'
    >>> require("no_such_module", "plot")
    Traceback (most recent call last):
    ...
    ImportError: no_such_module is required for this feature; install it with: pip install 'fastsample[plot]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(
            f"{top} is required for this feature; install it with: pip install 'fastsample[{extra}]'"
        ) from exc
