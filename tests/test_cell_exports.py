"""Every public name of the cell subpackages is exported, with a sorted ``__all__``."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "becomingone.config",
    "becomingone.memory",
    "becomingone.runtime",
    "becomingone.sync",
    "becomingone.transducers",
    "becomingone.witnessing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    """__all__ is sorted as ruff sorts it (constants, classes, functions), has no duplicates,
    and every name exists in the package."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    isort_style = sorted(exported, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert exported == isort_style and len(set(exported)) == len(exported)
    for item in exported:
        assert hasattr(module, item), item
