"""BecomingONE: turn machines into one coherent, phase-locked cluster.

Layers (imports point downward only): ``core`` (pure math) → ``transducers`` / ``sync`` →
``cluster`` → ``witnessing`` / ``memory`` → ``transport`` → ``runtime`` / ``sim`` → ``choir`` →
``api`` → ``cli``. See docs/architecture.md.
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
