"""Every module of ``becomingone`` that defines ``__all__`` exports names that exist, once each,
in sorted order; every subpackage is a regular package whose ``__init__`` has an ``__all__``.

"Sorted" is the isort-style order that ruff's RUF022 enforces on this project (SCREAMING_CASE
constants, then CamelCase classes, then everything else; natural order within each group), so
this test and ``ruff check`` can never disagree. Modules are found by walking the source tree,
not ``pkgutil``, so namespace packages (a directory without ``__init__.py``) are not skipped.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

import becomingone

ROOT = Path(becomingone.__file__).parent


def module_names() -> list[str]:
    """Dotted names of every Python module under the package directory."""
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] != "__main__":
            names.append(".".join(parts))
    return names


def subpackage_dirs() -> list[Path]:
    """Every directory under the package (the package itself too) holding Python files."""
    dirs = {path.parent for path in ROOT.rglob("*.py")}
    return sorted(d for d in dirs if "__pycache__" not in d.parts)


def load(name: str) -> ModuleType:
    """Import a module; skip when it needs an optional third-party dependency not installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("becomingone"):
            pytest.skip(f"{name} needs the optional dependency {exc.name!r}")
        raise


def isort_key(name: str) -> tuple[int, list[tuple[int, int, str]]]:
    """ruff's RUF022 order: constants (all caps, > 1 char), classes, the rest; natural
    order within a group (digit runs compare as numbers)."""
    if len(name) > 1 and name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    runs = [(0, int(r), "") if r.isdigit() else (1, 0, r) for r in re.findall(r"\d+|\D+", name)]
    return group, runs


def test_isort_key_orders_like_ruff() -> None:
    """The key reproduces RUF022's documented order on a mixed example."""
    names = ["helper", "Band", "MAX_2", "MAX_10", "__version__", "X", "a10", "a9", "Zeta"]
    assert sorted(names, key=isort_key) == [
        "MAX_2",
        "MAX_10",
        "Band",
        "X",
        "Zeta",
        "__version__",
        "a9",
        "a10",
        "helper",
    ]


@pytest.mark.parametrize("name", module_names())
def test_all_is_sorted_unique_and_exists(name: str) -> None:
    """If the module defines ``__all__``: it is a list or tuple of strings with no duplicates,
    in RUF022 order, and every name is an attribute of the module."""
    module = load(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert isinstance(exported, list | tuple)
    assert all(isinstance(item, str) for item in exported)
    assert len(set(exported)) == len(exported), f"duplicates in {name}.__all__"
    assert list(exported) == sorted(exported, key=isort_key), f"{name}.__all__ is not sorted"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


def test_the_walk_finds_the_core_modules() -> None:
    """The module walk sees the numeric core (so the test above is not vacuous)."""
    names = module_names()
    for expected in ("becomingone", "becomingone.errors", "becomingone.core.kairos"):
        assert expected in names


def _package_params() -> list[object]:
    params: list[object] = []
    for d in subpackage_dirs():
        rel = d.relative_to(ROOT.parent).as_posix()
        params.append(pytest.param(d, id=rel))
    return params


@pytest.mark.parametrize("directory", _package_params())
def test_subpackages_are_regular_packages_with_all(directory: Path) -> None:
    """Each (sub)package directory has an ``__init__.py`` that defines ``__all__`` (public
    names are re-exported from the subpackage, STYLE.md)."""
    init = directory / "__init__.py"
    assert init.exists(), f"{directory} has no __init__.py"
    module = load(".".join(directory.relative_to(ROOT.parent).parts))
    assert hasattr(module, "__all__"), f"{module.__name__} defines no __all__"
