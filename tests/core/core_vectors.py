"""Loader for the reference vectors of DESIGN.md §3–§4 (``data/kairos_vectors.json``).

The file holds numbers copied from ``shared/vectors/kairos.json`` (an independent
implementation); this module only reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "kairos_vectors.json"


def load_vectors() -> dict[str, Any]:
    """The parsed reference vectors."""
    with DATA.open(encoding="utf-8") as fh:
        out: dict[str, Any] = json.load(fh)
    return out
