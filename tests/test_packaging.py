"""Packaging: what the package imports is declared, and the test lock covers every dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import pathlib
import re
import sys

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements" / "test.lock"


def _root_conftest():
    # The repository's conftest.py (the doctest set-up); tests/conftest.py shadows its name.
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


required_at_import = _root_conftest().required_at_import


def _name(requirement: str) -> str:
    """Normalised distribution name of a requirement string (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_name(r) for r in requirements} - {"fastsample"}


def _module_level_imports(path: pathlib.Path) -> set[str]:
    """Top-level names of the modules a file imports when it is imported (not in functions)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_module_level_imports_are_runtime_dependencies():
    """A module imported at the top of one of ours must be installed with ``pip install fastsample``.

    Optional dependencies (the extras) are imported inside functions, through
    ``fastsample.core.optional.require``; a module that is itself an optional feature (the
    imbalanced-learn samplers) calls ``require(module, extra)`` first, and then the module must
    come with that extra.
    """
    runtime = _declared(PYPROJECT["dependencies"])
    extras = {k: _declared(v) for k, v in PYPROJECT["optional-dependencies"].items()}
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for path in sorted((ROOT / "fastsample").rglob("*.py")):
        guarded = {m.split(".")[0]: extra for m, extra in required_at_import(path).items()}
        for top in _module_level_imports(path):
            if top in sys.stdlib_module_names or top in ("fastsample", "__future__"):
                continue
            dists = {_name(d) for d in distributions.get(top, [top])}
            allowed = runtime | extras.get(guarded.get(top, ""), set())
            if not dists & allowed:
                undeclared.setdefault(str(path.relative_to(ROOT)), []).append(top)
    assert not undeclared, (
        f"imported at module level but not in [project] dependencies: {undeclared}"
    )


def test_the_test_lock_pins_every_declared_dependency():
    """scripts/bootstrap.sh all installs from the lock: a dependency missing there is missing
    from the test environment (refresh it with scripts/lock.sh)."""
    wanted = _declared(PYPROJECT["dependencies"])
    for extra in PYPROJECT["optional-dependencies"].values():
        wanted |= _declared(extra)
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{LOCK.name}: not an exact pin: {line!r}"
            pins[_name(name)] = version.split(";")[0].strip()
    missing = sorted(wanted - pins.keys())
    assert not missing, f"{LOCK.name} lacks {missing}; run scripts/lock.sh"
