"""Set-up for the docstring examples (``--doctest-modules`` over ``fastsample/``).

Examples that need an optional dependency are skipped, not failed, when it is not installed:

* a module whose examples need one says so in ``__doctest_requires__``, a dict from the
  documented names to the modules they import (the convention of pytest-doctestplus);
* a module that is itself an optional feature starts with ``require("module", "extra")``
  (:func:`fastsample.core.optional.require`); without that module it is not collected.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent / "fastsample"


def _missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None]


def required_at_import(path: pathlib.Path) -> dict[str, str]:
    """``{module: extra}`` of the module-level ``require(module, extra)`` calls of a file."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "require"
            and len(call.args) == 2
            and all(isinstance(a, ast.Constant) for a in call.args)
        ):
            out[str(call.args[0].value)] = str(call.args[1].value)
    return out


def pytest_ignore_collect(collection_path: pathlib.Path) -> bool | None:
    in_package = collection_path.suffix == ".py" and PACKAGE in collection_path.parents
    if in_package and _missing(tuple(required_at_import(collection_path))):
        return True
    return None


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
