"""The layer order of the package: the one table that ``tests/test_layers.py`` enforces.

Rule: a module may import from its own layer and the layers before it in :data:`LAYERS`, never
from a later one. docs/architecture.md shows the same table (a test checks that its first
column lists these names in this order); change both together.
"""

from __future__ import annotations

__all__ = ["LAYERS", "PLANNED", "layer_of"]

#: Top-level names under ``becomingone`` (a module ``x.py`` or a subpackage ``x/``), lowest
#: layer first. ``__init__`` is the package's own ``becomingone/__init__.py``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "_layers", "errors", "keys", "certs", "events"),
    ("core",),
    ("ingest",),
    ("transducers", "sync"),
    ("cluster",),
    ("witnessing", "memory"),
    ("choir",),
    ("cell",),
    ("transport",),
    ("config",),
    ("runtime", "sim"),
    ("analysis",),
    ("api",),
    ("commands", "cli"),
)

#: Names in :data:`LAYERS` that later issues add (no code yet); empty while every layer exists.
PLANNED: frozenset[str] = frozenset()


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of a dotted module name under ``becomingone`` (else ``None``).

    >>> layer_of("becomingone.memory.store"), layer_of("becomingone"), layer_of("numpy")
    (5, 0, None)
    """
    parts = module.split(".")
    if parts[0] != "becomingone":
        return None
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    return None
