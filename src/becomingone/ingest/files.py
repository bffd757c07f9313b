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
from becomingone.ingest.times import (
    DT_TOLERANCE,
    TIME_COLUMNS,
    TimeAxis,
    find_time_column,
    is_timestamp,
    parse_time_axis,
    uniform_step,
)

__all__ = [
    "DT_TOLERANCE",
    "TIME_COLUMNS",
    "Series",
    "read_csv_series",
    "read_event_times",
    "read_messages",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """A uniformly sampled multichannel series read from a file.

    ``dt`` and ``t0`` are in ``time_unit`` ("s", "day", "year", or "" for a time column's own
    numbers); ``dt`` is ``None`` when the file has no time column. ``time_origin`` is the first
    ISO timestamp when times count from it (days or seconds since then).
    """

    values: NDArray[np.float64]  # shape (N, C)
    dt: float | None
    t0: float
    channels: tuple[str, ...]
    time_column: str | None = None
    time_unit: str = "s"
    time_origin: str | None = None


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("file", f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError("file", f"{path}: is a directory, not a file") from exc
    except UnicodeDecodeError as exc:
        raise InputError("file", f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise InputError("file", f"{path}: cannot read: {exc.strerror}") from exc
    if "\x00" in text:
        raise InputError("file", f"{path}: a binary file (it contains NUL bytes), not text")
    return text


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row."""
    lines = _open_text(path).splitlines()
    try:
        rows = list(csv.reader(lines))
    except csv.Error as exc:
        raise InputError("file", f"{path}: not a readable CSV: {exc}") from exc
    return [
        (i + 1, [c.strip() for c in r]) for i, r in enumerate(rows) if any(c.strip() for c in r)
    ]


def _table(p: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Column names (from the header, else ch0, ch1, ...) and the (line, cells) of each data row.

    A header row is detected when one of its cells is neither a number nor an ISO-8601
    timestamp. No data rows (an empty file, or a header alone) is an ``InputError``, and so is
    a row with a different number of columns.
    """
    rows = _csv_rows(p)
    first = rows[0][1] if rows else []
    has_header = not all(_is_number(c) or is_timestamp(c) for c in first)
    names = first if has_header else [f"ch{i}" for i in range(len(first))]
    body = rows[1:] if has_header else rows
    if not body:
        raise InputError("file", f"{p}: no data rows (the file is empty or holds only a header)")
    for line, r in body:
        if len(r) != len(names):
            raise InputError("file", f"{p}: row {line} has {len(r)} columns, expected {len(names)}")
    return names, body


def read_event_times(path: Path | str, *, time_column: str | None = None) -> TimeAxis:
    """Read a CSV of event times: its only column, or ``time_column``, or its time column.

    Numbers are seconds unless the column is named ``year``; ISO-8601 values follow the units of
    ``becomingone.ingest.times``. The times need not be uniform (they are events).
    """
    p = Path(path)
    names, body = _table(p)
    idx = find_time_column(names, time_column) if time_column != "none" else None
    if idx is None and len(names) != 1:
        raise InputError("file", f"{p}: events need one column of times, got {', '.join(names)}")
    col = 0 if idx is None else idx
    lines = [line for line, _ in body]
    axis = parse_time_axis(names[col], [r[col] for _, r in body], str(p), lines)
    return axis if axis.unit else TimeAxis(values=axis.values, unit="s", origin=axis.origin)


def read_csv_series(path: Path | str, *, time_column: str | None = None) -> Series:
    """Read a CSV of one or more channels, with an optional header and time column.

    The header is read as in ``_table``. The time column is ``time_column`` (a header name,
    or ``"none"`` for no time column), else the first header named like one of
    ``TIME_COLUMNS`` (case-insensitive), else the first column holding ISO-8601 timestamps. It
    must increase with a uniform step (within 1 %), gives ``dt``, ``t0`` and the time unit (see
    ``becomingone.ingest.times``), and is never a data channel. At least 2 data rows.
    """
    p = Path(path)
    names, body = _table(p)
    if len(body) < 2:
        raise InputError("file", f"{p}: needs at least 2 data rows, got {len(body)}")
    time_idx = find_time_column(names, time_column)
    if time_idx is None and time_column is None:
        time_idx = next((j for j, c in enumerate(body[0][1]) if is_timestamp(c)), None)
    keep = [j for j in range(len(names)) if j != time_idx]
    if not keep:
        raise InputError("file", f"{p}: no data column besides the time column {names[0]!r}")
    data = np.asarray([[_cell(p, line, names[j], r[j]) for j in keep] for line, r in body])
    channels = tuple(names[j] for j in keep)
    if time_idx is None:
        return Series(values=data, dt=None, t0=0.0, channels=channels)
    lines = [line for line, _ in body]
    axis = parse_time_axis(names[time_idx], [r[time_idx] for _, r in body], str(p), lines)
    dt = uniform_step(axis, names[time_idx], str(p), lines)
    return Series(
        values=data,
        dt=dt,
        t0=float(axis.values[0]),
        channels=channels,
        time_column=names[time_idx],
        time_unit=axis.unit,
        time_origin=axis.origin,
    )


def read_messages(path: Path | str) -> list[str]:
    """Read a text file as messages, one per non-empty line (surrounding space stripped)."""
    p = Path(path)
    messages = [line.strip() for line in _open_text(p).splitlines() if line.strip()]
    if len(messages) < 2:
        raise InputError("file", f"{p}: needs at least 2 non-empty lines, got {len(messages)}")
    return messages
