"""The package's architecture, checked on its source: layers, cycles, private names, sizes.

Layers, lowest first. A module may import its own layer and the layers listed for it:

- ``fastsample.errors`` (base): imported by everyone, imports nothing of ours;
- ``core``: kernels, hashing, strategies, correction, the plan, the pilot bundle;
- ``engines``: the per-batch step and the in-memory, Parquet and Spark engines (core only);
- ``models``: estimators built on the engines' public API;
- ``toolkit``: report, evaluation, reweighting, monitoring;
- ``testing``: NumPy twins and the kernel registry (core only);
- ``harness`` and the CLI: on top of everything.
"""

from __future__ import annotations

import ast
import pathlib
import re
from collections import defaultdict

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fastsample"
MAX_LINES = 450

ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "core": {"base"},
    "engines": {"base", "core"},
    "models": {"base", "core", "engines"},
    "toolkit": {"base", "core", "engines", "models"},
    "testing": {"base", "core"},
    "harness": {"base", "core", "engines", "models", "toolkit", "testing"},
    "top": {"base", "core", "engines", "models", "toolkit", "testing", "harness"},
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if module in ("fastsample", "fastsample.errors"):  # the package root only holds __version__
        return "base"
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    return "top"  # fastsample itself, cli, __main__


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import of ours in a module."""
    tree = ast.parse(MODULES[module].read_text())
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [
                (a.name, None, node.lineno) for a in node.names if a.name.startswith("fastsample")
            ]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if not target.startswith("fastsample"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from pkg import module`
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return out


def _owner(target: str) -> str | None:
    """The module of ours a dotted import names (a package counts as its __init__)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _, _ in _imports(module):
            owner = _owner(target)
            if owner and owner != module and MODULES[owner].name != "__init__.py":
                graph[module].add(owner)
    return graph


def layer_violations() -> set[str]:
    found = set()
    for module in MODULES:
        mine = _layer(module)
        for target, _, _ in _imports(module):
            owner = _owner(target)
            if owner is None:
                continue
            theirs = _layer(owner)
            if theirs != mine and theirs not in ALLOWED[mine]:
                found.add(f"{module} -> {owner}")
    return found


def private_imports() -> set[str]:
    found = set()
    for module in MODULES:
        for target, name, _ in _imports(module):
            owner = _owner(target)
            if owner is None or owner == module:
                continue
            private_module = any(
                p.startswith("_") and not p.startswith("__") for p in owner.split(".")
            )
            if private_module or (
                name is not None and name.startswith("_") and name != "__version__"
            ):
                found.add(f"{module} -> {owner}.{name or ''}".rstrip("."))
    return found


def cycles() -> set[str]:
    graph = _edges()
    found = set()
    for start in MODULES:
        stack = [(start, (start,))]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    ring = list(path)
                    i = ring.index(min(ring))
                    found.add(" -> ".join(ring[i:] + ring[:i]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    return found


def oversized() -> set[str]:
    return {
        m
        for m, p in MODULES.items()
        if len(p.read_text().splitlines()) > MAX_LINES and not m.endswith("kernels")
    }


# Violations the layout move inherited from the flat package; each entry is removed by the
# change that mends it, and the test fails when an entry is mended but still listed.
KNOWN: dict[str, set[str]] = {
    "layers": set(),
    "private": set(),
    "cycles": set(),
    "oversized": set(),
}

CHECKS = {
    "layers": layer_violations,
    "private": private_imports,
    "cycles": cycles,
    "oversized": oversized,
}


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_architecture(kind):
    found = CHECKS[kind]()
    new = found - KNOWN[kind]
    mended = KNOWN[kind] - found
    assert not new, f"new {kind} violations: {sorted(new)}"
    assert not mended, f"mended {kind} entries still listed in KNOWN: {sorted(mended)}"


def test_the_checks_see_a_violation(tmp_path):
    """Each check fires on a small package laid out wrongly (so an empty result means something)."""
    pkg = tmp_path / "fastsample"
    for sub in ("core", "engines"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from fastsample.engines.b import _helper\n")
    (pkg / "engines" / "b.py").write_text("from fastsample.core import a\n" + "x = 1\n" * 460)
    global PACKAGE, MODULES
    saved = PACKAGE, MODULES
    PACKAGE = pkg
    MODULES = _modules()
    try:
        assert layer_violations() == {"fastsample.core.a -> fastsample.engines.b"}
        assert private_imports() == {"fastsample.core.a -> fastsample.engines.b._helper"}
        assert cycles() == {"fastsample.core.a -> fastsample.engines.b"}
        assert oversized() == {"fastsample.engines.b"}
    finally:
        PACKAGE, MODULES = saved


# Notes that live outside the repository (the team's design notes, references and style guide).
# A comment or docstring says the fact itself, or points at the module that holds it.
OUTSIDE_NOTES = re.compile(r"DESIGN\.md|STYLE\.md|statistics\.md|peers\.md|field\.md|shared/|§")


def test_no_pointers_to_notes_outside_the_repository():
    roots = [PACKAGE, *(PACKAGE.parent / d for d in ("tests", "benchmarks", "scripts"))]
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{i}"
        for root in roots
        for path in sorted(root.rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_NOTES.search(line) and path != pathlib.Path(__file__).resolve()
    ]
    assert not found, f"pointers to notes outside the repository: {found}"
