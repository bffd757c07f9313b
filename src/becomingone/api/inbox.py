"""Samples posted to the API, on their way into the running cell; and their parsing.

Rule: the cell has one ingest path. Posted batches wait in a bounded :class:`SignalInbox`, and
:func:`merge_sources` interleaves them with the cell's own source, so ``run_cell`` ingests
every batch in turn (never two at once). Parsing turns JSON or CSV into a float array with
the cell's channel count and refuses NaN, ±inf, ragged rows and too many rows with an
``InputError`` naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError

__all__ = [
    "CSV_NUMBER",
    "CSV_SEPARATOR",
    "SignalInbox",
    "merge_sources",
    "parse_csv",
    "parse_json",
    "samples_array",
]

#: A number as a CSV body may write it: decimal, at most 20 digits before and after the point,
#: an exponent of at most two digits — finite by construction (no inf, nan, ``1_000``).
CSV_NUMBER = r"[-+]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][-+]?[0-9]{1,2})?"
_CSV_NUMBER = re.compile(CSV_NUMBER)
#: What separates the numbers of one CSV line: a comma (blanks around it allowed) or blanks.
CSV_SEPARATOR = r"(?:[ \t]*,[ \t]*|[ \t]+)"
_CSV_SEPARATOR = re.compile(CSV_SEPARATOR)


class SignalInbox:
    """Batches posted to a live cell, at most ``max_batches`` waiting; counts what it took."""

    def __init__(self, channels: int, max_batches: int = 64) -> None:
        self.channels = channels
        self.queue: asyncio.Queue[NDArray[np.float64]] = asyncio.Queue(max_batches)
        self.accepted_batches = 0
        self.accepted_samples = 0

    def put(self, batch: NDArray[np.float64]) -> bool:
        """Queue ``batch`` for the cell; False when the inbox is full (try again later)."""
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            return False
        self.accepted_batches += 1
        self.accepted_samples += len(batch)
        return True


async def merge_sources(
    source: AsyncIterator[NDArray[Any]] | None, inbox: SignalInbox
) -> AsyncIterator[NDArray[Any]]:
    """Batches of ``source`` and of ``inbox`` in arrival order; ends when ``source`` ends
    (a ``None`` source never ends: only posted samples feed the cell)."""
    pending: asyncio.Future[NDArray[Any]] | None = None
    try:
        while True:
            if pending is None and source is not None:
                pending = asyncio.ensure_future(anext(source))
            posted = asyncio.ensure_future(inbox.queue.get())
            waiting = {posted} if pending is None else {posted, pending}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if posted in done:
                yield posted.result()
            else:
                posted.cancel()
            if pending is not None and pending in done:
                try:
                    batch = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                yield batch
    finally:
        for task in (pending,):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await task


def samples_array(rows: Any, channels: int, max_samples: int, field: str) -> NDArray[np.float64]:
    """``rows`` (numbers, or lists of ``channels`` numbers) as a float array (k,) or (k, C)."""
    if not isinstance(rows, list) or not rows:
        raise InputError(field, "must be a non-empty list of samples")
    if len(rows) > max_samples:
        raise InputError(field, f"{len(rows)} samples; at most {max_samples} per request")
    width = 1 if channels == 1 and not isinstance(rows[0], list) else channels
    for i, row in enumerate(rows):
        values = row if isinstance(row, list) else [row]
        if len(values) != width or (width > 1) != isinstance(row, list):
            raise InputError(f"{field}[{i}]", f"must be {_shape(channels)}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InputError(f"{field}[{i}]", f"{v!r} is not a number")
            if not math.isfinite(v):
                raise InputError(f"{field}[{i}]", f"{v!r} is not finite")
    array = np.asarray(rows, dtype=np.float64)
    return array if channels > 1 else array.reshape(-1)


def _shape(channels: int) -> str:
    return "a number" if channels == 1 else f"a list of {channels} numbers"


def parse_json(body: bytes, channels: int, max_samples: int) -> NDArray[np.float64]:
    """``{"samples": [...]}`` → array; bad JSON is an ``InputError`` on ``body``."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("body", f"not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"samples"}:
        raise InputError("body", 'must be an object {"samples": [...]}')
    return samples_array(data["samples"], channels, max_samples, "samples")


def parse_csv(body: bytes, channels: int, max_samples: int) -> NDArray[np.float64]:
    """One sample per line (lines end at ``\\n``, a ``\\r`` before it is dropped), ``channels``
    numbers (:data:`CSV_NUMBER`) separated by a comma or blanks (space, tab); blank lines and
    ``#`` lines are skipped; any other line is an ``InputError`` naming its number — the same
    language as the OpenAPI pattern of the body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("body", "CSV must be UTF-8") from None
    rows: list[Any] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip(" \t")
        if not line or line.startswith("#"):
            continue
        parts = _CSV_SEPARATOR.split(line)
        if not all(_CSV_NUMBER.fullmatch(p) for p in parts):
            raise InputError(f"line {number}", f"{line[:40]!r} is not numbers")
        values = [float(p) for p in parts]
        rows.append(values if channels > 1 else (values[0] if len(values) == 1 else values))
    if not rows:
        raise InputError("body", "no samples in the CSV")
    try:
        return samples_array(rows, channels, max_samples, "samples")
    except InputError as exc:
        row = exc.parameter.partition("[")[2].rstrip("]")
        raise InputError(f"row {int(row) + 1}" if row else exc.parameter, exc.message) from None
