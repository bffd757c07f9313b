"""Imports point down the layer order: every ``becomingone`` import in the package, found with
``ast`` (``import``, ``from ... import``, relative imports, imports inside functions and under
``TYPE_CHECKING``), lands in the importer's layer or a lower one of ``becomingone._layers``.

The same table is printed in docs/architecture.md; a test checks the two agree.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import becomingone
from becomingone._layers import LAYERS, PLANNED, layer_of

ROOT = Path(becomingone.__file__).parent
DOC = ROOT.parents[1] / "docs" / "architecture.md"


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of a file under the package directory ``root`` (``becomingone.memory``
    for its ``__init__.py``)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of every import anywhere in ``tree``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            if target == "becomingone":  # `from becomingone import memory` names a layer
                for alias in node.names:
                    if layer_of(f"becomingone.{alias.name}") is not None:
                        yield node.lineno, f"becomingone.{alias.name}"


def upward_imports(root: Path) -> list[str]:
    """One line per import that points up (or to a module missing from the table)."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        where = path.relative_to(root.parent)
        if own is None:
            problems.append(f"{where}: {module} is in no layer of becomingone._layers")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported(tree, module, path.name == "__init__.py"):
            theirs = layer_of(target)
            if not target.startswith("becomingone"):
                continue
            if theirs is None:
                problems.append(f"{where}:{line}: imports {target}, which is in no layer")
            elif theirs > own:
                problems.append(
                    f"{where}:{line}: imports {target}: layer {theirs} "
                    f"({', '.join(LAYERS[theirs])}) is above layer {own} ({', '.join(LAYERS[own])})"
                )
    return problems


def test_no_import_points_up() -> None:
    """No module imports from a layer above its own (names file:line and both layers)."""
    assert upward_imports(ROOT) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The checker flags an upward import inside a function, a relative one and a plain one."""
    pkg = tmp_path / "becomingone"
    (pkg / "memory").mkdir(parents=True)
    (pkg / "config").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "config" / "__init__.py").write_text("")
    (pkg / "memory" / "__init__.py").write_text("from ..config import schema\n")
    (pkg / "memory" / "store.py").write_text(
        "import numpy\nfrom becomingone.errors import InputError\n\n"
        "def f():\n    import becomingone.runtime.cell\n"
    )
    (pkg / "newthing.py").write_text("")
    problems = upward_imports(pkg)
    assert any(
        p.startswith("becomingone/memory/__init__.py:1: imports becomingone.config")
        for p in problems
    ), problems
    assert any(
        p.startswith(
            "becomingone/memory/store.py:5: imports becomingone.runtime.cell: "
            f"layer {layer_of('becomingone.runtime')} (runtime, sim) is above layer 5 "
            "(witnessing, memory)"
        )
        for p in problems
    ), problems
    assert any(
        p.startswith("becomingone/newthing.py: becomingone.newthing is in no layer")
        for p in problems
    ), problems
    assert len(problems) == 3


def doc_layers() -> list[tuple[str, ...]]:
    """First-column names of the layer table in docs/architecture.md, in order."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            cell = line.split("|")[1]
            names = [
                n.removesuffix(".py").removesuffix("/") for n in re.findall(r"`([^`]+)`", cell)
            ]
            rows.append(tuple(names))
    return rows


def test_doc_table_matches_the_layers_module() -> None:
    """docs/architecture.md lists the layers of ``becomingone._layers`` in the same order."""
    code = [tuple(n for n in names if n not in ("__init__", "_layers")) for names in LAYERS]
    assert doc_layers() == code


def test_planned_layers_are_in_the_table_and_have_no_code() -> None:
    """Every planned layer has a place in the order before its code exists, and a layer
    whose code exists (``cluster`` since the glyphs) is no longer listed as planned."""
    for name in PLANNED:
        assert layer_of(f"becomingone.{name}") is not None
        assert not (ROOT / name).exists() and not (ROOT / f"{name}.py").exists()
    assert (ROOT / "cluster" / "__init__.py").exists() and "cluster" not in PLANNED
