"""Set-up for the docstring examples (``--doctest-modules`` over ``fastsample/``).

A module whose examples need an optional dependency says so in ``__doctest_requires__``, a
dict from the documented names to the modules they import (the convention of
pytest-doctestplus); those examples are skipped, not failed, when a module is not installed.
"""

from __future__ import annotations

import importlib.util

import pytest


def _missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        test = getattr(item, "dtest", None)  # only doctest items carry one
        if test is None:
            continue
        requires = test.globs.get("__doctest_requires__", {})
        name = test.name.split(".")[-1]
        missing = _missing(tuple(requires.get(name, ())))
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)}"))
