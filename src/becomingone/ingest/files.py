"""Readers for the files a user analyses: CSV series and text files (one message per line).

Every problem is reported as ``InputError`` naming the file, row and column; nothing is guessed
silently. Reads files; no engine state.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError

__all__ = ["DT_TOLERANCE", "TIME_COLUMNS", "Series", "read_csv_series", "read_messages"]

#: Header names recognised as the time column (seconds), case-insensitive.
TIME_COLUMNS = ("t", "time", "timestamp", "seconds", "time_s")
#: Sample steps may vary by this fraction of the median step before the file is rejected.
DT_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True)
class Series:
    """A uniformly sampled multichannel series read from a file."""

    values: NDArray[np.float64]  # shape (N, C)
    dt: float | None  # seconds; None when the file has no time column
    t0: float
    channels: tuple[str, ...]


def _cell(path: Path, row: int, col: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError(
            "file", f"{path}: row {row}, column {col!r}: not a number: {text!r}"
        ) from exc
    if not math.isfinite(value):
        raise InputError("file", f"{path}: row {row}, column {col!r}: not finite: {text!r}")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _open_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("file", f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InputError("file", f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise InputError("file", f"{path}: cannot read: {exc.strerror}") from exc


def read_csv_series(path: Path | str) -> Series:
    """Read a CSV of one or more channels, with an optional header and time column.

    A header row is detected when its cells are not numbers. A time column (named one of
    ``TIME_COLUMNS``) must increase with a uniform step (within 1 %); it gives ``dt`` and ``t0``.
    """
    p = Path(path)
    rows = [r for r in csv.reader(_open_text(p).splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        raise InputError("file", f"{p}: empty CSV")
    header = [c.strip() for c in rows[0]]
    has_header = not all(_is_number(c) for c in header)
    names = header if has_header else [f"ch{i}" for i in range(len(header))]
    body = rows[1:] if has_header else rows
    if len(body) < 2:
        raise InputError("file", f"{p}: needs at least 2 data rows, got {len(body)}")
    data = np.empty((len(body), len(names)))
    for i, r in enumerate(body):
        line = i + (2 if has_header else 1)
        if len(r) != len(names):
            raise InputError("file", f"{p}: row {line} has {len(r)} columns, expected {len(names)}")
        data[i] = [_cell(p, line, names[j], c.strip()) for j, c in enumerate(r)]
    time_idx = next((j for j, n in enumerate(names) if n.lower() in TIME_COLUMNS), None)
    if time_idx is None:
        return Series(values=data, dt=None, t0=0.0, channels=tuple(names))
    t = data[:, time_idx]
    steps = np.diff(t)
    dt = float(np.median(steps))
    if dt <= 0 or np.any(np.abs(steps - dt) > DT_TOLERANCE * dt):
        bad = int(np.flatnonzero((steps <= 0) | (np.abs(steps - dt) > DT_TOLERANCE * dt))[0])
        raise InputError(
            "file",
            f"{p}: time column {names[time_idx]!r} is not uniformly increasing at data row "
            f"{bad + 2} (step {steps[bad]!r}, median {dt!r})",
        )
    keep = [j for j in range(len(names)) if j != time_idx]
    if not keep:
        raise InputError("file", f"{p}: no data column besides time column {names[time_idx]!r}")
    return Series(
        values=data[:, keep], dt=dt, t0=float(t[0]), channels=tuple(names[j] for j in keep)
    )


def read_messages(path: Path | str) -> list[str]:
    """Read a text file as messages, one per non-empty line (surrounding space stripped)."""
    p = Path(path)
    messages = [line.strip() for line in _open_text(p).splitlines() if line.strip()]
    if len(messages) < 2:
        raise InputError("file", f"{p}: needs at least 2 non-empty lines, got {len(messages)}")
    return messages
