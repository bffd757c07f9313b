"""BecomingONE: turn machines into one coherent, phase-locked cluster.

Layers (imports point downward only): ``core`` (pure math) → ``transducers`` / ``sync`` →
``cluster`` → ``witnessing`` / ``memory`` → ``transport`` → ``config`` → ``runtime`` / ``sim``
→ ``commands`` / ``cli``; the full order is ``becomingone._layers.LAYERS`` (enforced by
tests/test_layers.py, shown in docs/architecture.md).
"""

from becomingone.errors import (
    BecomingOneError,
    ConfigError,
    InputError,
    IntegrityError,
    ProtocolError,
    StorageError,
)

__version__ = "0.1.0"

__all__ = [
    "BecomingOneError",
    "ConfigError",
    "InputError",
    "IntegrityError",
    "ProtocolError",
    "StorageError",
    "__version__",
]
