"""Public names of the subpackages added for the cluster are exported with a sorted __all__."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    ["becomingone.sync", "becomingone.sim", "becomingone.transport", "becomingone.runtime"],
)
def test_all_sorted_and_resolvable(module: str) -> None:
    """__all__ is sorted isort-style (CONSTANTS, Classes, functions), every name exists."""
    mod = importlib.import_module(module)

    def key(name: str) -> tuple[bool, bool, str]:
        return (not name.isupper(), not name[:1].isupper(), name)

    assert list(mod.__all__) == sorted(mod.__all__, key=key)
    for name in mod.__all__:
        assert hasattr(mod, name), name
