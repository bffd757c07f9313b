"""Time columns of a CSV: which column holds time, what its values mean, and the sample step.

Rule: a time column gives the sample step ``dt`` and a time unit; it never becomes a data
channel. Recognised by name (case-insensitive, ``TIME_COLUMNS``), by an explicit name, or by
ISO-8601 values. Units:

- numeric ``t``, ``time``, ``timestamp``, ``seconds``, ``time_s``: seconds (``"s"``);
- numeric ``year``/``years``: years (``"year"``);
- numeric ``date``/``datetime`` or any other named column: the column's own numbers (``""``);
- ISO dates on the same day of the month, a whole number of months apart (monthly, quarterly,
  yearly data): decimal years (``"year"``, 1990-04-01 is 1990.25), so periods read in years;
- other ISO dates: days since the first date (``"day"``);
- ISO date-times (optional zone; zoned values are converted to UTC): seconds since the first.

Pure parsing; the callers (``ingest.files``, and the cell's CSV source) read the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError

__all__ = [
    "DT_TOLERANCE",
    "TIME_COLUMNS",
    "TimeAxis",
    "find_time_column",
    "is_timestamp",
    "parse_time_axis",
    "uniform_step",
]

#: Header names recognised as the time column, case-insensitive.
TIME_COLUMNS = (
    "t",
    "time",
    "timestamp",
    "seconds",
    "time_s",
    "year",
    "years",
    "date",
    "datetime",
)
#: Sample steps may vary by this fraction of the median step before the file is rejected.
DT_TOLERANCE = 0.01

_UNIT_BY_NAME = {"t": "s", "time": "s", "timestamp": "s", "seconds": "s", "time_s": "s"}
_UNIT_BY_NAME |= {"year": "year", "years": "year"}
_ISO = re.compile(r"^\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeAxis:
    """Times of the rows in ``unit`` ("s", "day", "year" or "" for the column's own numbers);
    ``origin`` is the first ISO value when the times count from it, else ``None``."""

    values: NDArray[np.float64]
    unit: str
    origin: str | None = None


def is_timestamp(text: str) -> bool:
    """True for an ISO-8601 date (``2024-03-01``, ``2024-03``) or date-time with optional zone."""
    return _parse_iso(text.strip()) is not None


def _parse_iso(text: str) -> datetime | None:
    if not _ISO.match(text):
        return None
    try:
        return datetime.fromisoformat(text + "-01" if len(text) == 7 else text)
    except ValueError:
        return None


def find_time_column(names: Sequence[str], requested: str | None = None) -> int | None:
    """Index of the time column among header ``names``, or ``None``.

    ``requested`` is a column name (case-insensitive) that must exist, or ``"none"`` for no
    time column; without it the first name in ``TIME_COLUMNS`` is taken.
    """
    lowered = [n.strip().lower() for n in names]
    if requested is not None:
        want = requested.strip().lower()
        if want == "none":
            return None
        if want not in lowered:
            raise InputError(
                "time_column", f"no column named {requested!r}; columns: {', '.join(names)}"
            )
        return lowered.index(want)
    return next((j for j, n in enumerate(lowered) if n in TIME_COLUMNS), None)


def parse_time_axis(
    name: str, texts: Sequence[str], where: str, lines: Sequence[int] | None = None
) -> TimeAxis:
    """The times of column ``name`` from its cells ``texts``.

    ``where`` (the file) prefixes errors; ``lines[i]`` is the line number of ``texts[i]`` as the
    user counts them (default ``i + 1``).
    """
    cells = [c.strip() for c in texts]
    rows = list(lines) if lines is not None else list(range(1, len(cells) + 1))
    if cells and is_timestamp(cells[0]):
        return _iso_axis(name, cells, where, rows)
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell)
        except ValueError as exc:
            raise InputError(
                "file",
                f"{where}: row {rows[i]}, time column {name!r}: not a number or an ISO-8601 "
                f"timestamp: {cell!r}",
            ) from exc
        if not math.isfinite(values[i]):
            raise InputError(
                "file", f"{where}: row {rows[i]}, time column {name!r}: not finite: {cell!r}"
            )
    return TimeAxis(values=values, unit=_UNIT_BY_NAME.get(name.strip().lower(), ""))


def _iso_axis(name: str, cells: Sequence[str], where: str, rows: Sequence[int]) -> TimeAxis:
    stamps: list[datetime] = []
    for i, cell in enumerate(cells):
        stamp = _parse_iso(cell)
        problem = "not an ISO-8601 timestamp"
        if stamp is not None and stamps and (stamp.tzinfo is None) != (stamps[0].tzinfo is None):
            problem, stamp = "mixes times with and without a zone", None
        if stamp is None:
            raise InputError(
                "file", f"{where}: row {rows[i]}, time column {name!r}: {problem}: {cell!r}"
            )
        stamps.append(stamp)
    if all(len(c) <= 10 for c in cells):
        days = [s.date() for s in stamps]
        months = _calendar_months(days)
        if months is not None:
            return TimeAxis(values=months / 12.0, unit="year")
        first = days[0].toordinal()
        values = np.asarray([d.toordinal() - first for d in days], dtype=np.float64)
        return TimeAxis(values=values, unit="day", origin=cells[0])
    utc = [s.astimezone(UTC) if s.tzinfo is not None else s for s in stamps]
    seconds = np.asarray([(s - utc[0]).total_seconds() for s in utc], dtype=np.float64)
    return TimeAxis(values=seconds, unit="s", origin=cells[0])


def _calendar_months(days: Sequence[date]) -> NDArray[np.float64] | None:
    """Months since year 0 when every date falls on one day of the month and the dates step
    by one whole number of months; otherwise ``None``."""
    if len(days) < 2 or len({d.day for d in days}) != 1:
        return None
    months = np.asarray([12 * d.year + d.month - 1 for d in days], dtype=np.float64)
    steps = np.diff(months)
    if steps[0] <= 0 or np.any(steps != steps[0]):
        return None
    return months


def uniform_step(
    axis: TimeAxis, column: str, where: str, lines: Sequence[int] | None = None
) -> float:
    """The median step of ``axis`` after checking every step is within ``DT_TOLERANCE`` of it.

    ``lines[i]`` is the line number of ``axis.values[i]`` (default ``i + 1``); the error names
    the first row whose step from the row before is irregular or not increasing.
    """
    steps = np.diff(axis.values)
    if steps.size == 0:
        raise InputError("file", f"{where}: time column {column!r} needs at least 2 rows")
    dt = float(np.median(steps))
    bad = (steps <= 0) | (np.abs(steps - dt) > DT_TOLERANCE * abs(dt))
    if dt <= 0 or np.any(bad):
        i = int(np.flatnonzero(bad)[0]) if np.any(bad) else 0
        row = lines[i + 1] if lines is not None else i + 2
        unit = f" {axis.unit}" if axis.unit else ""
        raise InputError(
            "file",
            f"{where}: time column {column!r} is not uniformly increasing at row {row} "
            f"(step {steps[i]:g}{unit}, median {dt:g}{unit})",
        )
    return dt
