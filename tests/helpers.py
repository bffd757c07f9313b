"""Shared test helpers: small cell configs, a tamper helper for stored witness records, and
`gone` for tests that stop processes by pid."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from becomingone.config import BecomingOneConfig, CellConfig


def small_config(**sections: dict[str, Any]) -> CellConfig:
    """A fast cell config (short windows, 100 Hz) with ``sections`` merged in."""
    data: dict[str, Any] = {
        "kairos": {"dt": 0.01, "tau_scale": 0.05},
        "master": {"tau_max": 30.0, "witness_interval": 5.0},
        "emissary": {"tau_max": 1.0, "witness_interval": 1.0},
        "witnessing": {"meta_interval": 1.0, "meta_window": 50},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return BecomingOneConfig.model_validate({"becomingone": data}).becomingone


def sql(db: Path, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement on a cell database (as an attacker with file access would)."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        return con.execute(statement, args).fetchall()
    finally:
        con.close()


def gone(pid: int) -> bool:
    """True iff no process has ``pid`` (or only an unreaped zombie of it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True
