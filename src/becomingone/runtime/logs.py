"""The one logging setup of a process (``up``, ``cluster``, ``node``): text or JSON lines.

Rule: only the command line calls :func:`setup_logging`, once, before it opens a cell; library
code only logs to named loggers under ``becomingone`` (``logging.getLogger(__name__)`` or a
fixed ``becomingone.*`` name) and passes structured fields as ``extra``: ``event`` (what
happened, a short dotted name), ``cell`` (the cell the line is about, when a process runs
several) and ``seq`` (the witness record's sequence number, where there is one). The handler
sits on the ``becomingone`` logger, so other libraries' logs are left alone.

``logging.format: structured`` writes one JSON object per line::

    {"time": "2026-12-02T11:30:31.123Z", "level": "INFO", "cell": "demo",
     "event": "witness", "seq": 12, "logger": "becomingone.witness", "message": "..."}

``time`` is ISO-8601 UTC with milliseconds; ``event`` is the record's ``event`` or, when the
code gave none, its logger's name; any other ``extra`` field that is JSON-able is kept.
``text`` writes ``TIME LEVEL LOGGER [cell] message`` lines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Literal

__all__ = ["LOGGER", "StructuredFormatter", "TextFormatter", "setup_logging"]

#: The logger every handler is installed on (the package's root logger).
LOGGER = "becomingone"

# Attributes every LogRecord has: not copied into the JSON object as extra fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_FIRST = ("time", "level", "cell", "event", "seq", "logger", "message")


def _utc(created: float) -> str:
    """ISO-8601 UTC with milliseconds: ``2026-12-02T11:30:31.123Z``."""
    whole = int(created)
    millis = int((created - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class StructuredFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring); ``cell`` defaults to ``cell``."""

    def __init__(self, cell: str) -> None:
        super().__init__()
        self.cell = cell

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (never raises for an odd ``extra``)."""
        out: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "cell": getattr(record, "cell", None) or self.cell,
            "event": getattr(record, "event", None) or record.name,
        }
        seq = getattr(record, "seq", None)
        if isinstance(seq, int):
            out["seq"] = seq
        out["logger"] = record.name
        out["message"] = record.getMessage()
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and key not in _FIRST:
                out[key] = _jsonable(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, allow_nan=False, default=str)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER [cell] message`` (the cell only when the record names one)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The plain line, with ``[cell]`` before the message when the record has a cell."""
        line = super().formatMessage(record)
        cell = getattr(record, "cell", None)
        if cell:
            head, sep, message = line.partition(": ")
            line = f"{head}: [{cell}] {message}" if sep else line
        return line


def setup_logging(
    *,
    level: str = "INFO",
    fmt: Literal["structured", "text"] = "text",
    cell: str = "cell",
    file: Path | None = None,
) -> logging.Handler:
    """Send the ``becomingone`` loggers to stderr (or ``file``) at ``level`` in ``fmt``.

    Replaces any handler a previous call installed (so calling it again, as tests do, never
    doubles lines); ``cell`` is the default ``cell`` field. Records still propagate to the
    root logger (which has no handler in the CLI). Returns the handler.
    """
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredFormatter(cell) if fmt == "structured" else TextFormatter())
    root = logging.getLogger(LOGGER)
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
