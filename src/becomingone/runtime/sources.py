"""Where a cell's samples come from: ``synthetic``, ``csv:PATH``, ``stdin``, ``text:PATH``.

Rule: a source is an async iterator of batches (arrays of shape (k,) or (k, C)); it knows its
channel count and nothing about the cell. Unreadable values become NaN rows, which the cell drops,
counts and witnesses — a bad line never stops a stream. The synthetic source is paced in real
time and is a pure function of the sample index, so a restarted cell continues the same stream.
File sources resume: a :class:`SourceCursor` says how far the file was read (rows, byte offset,
hash of the bytes read); the cell stores it with each batch, and a restart continues after it
or refuses a file that is not the one that was read. ``stdin`` is a new stream on every start.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np
from numpy.typing import NDArray

from becomingone.core.encoders import phase_from_embeddings
from becomingone.errors import InputError
from becomingone.ingest.files import DT_TOLERANCE, TIME_COLUMNS, read_messages
from becomingone.ingest.text import embed_messages

__all__ = ["Source", "SourceCursor", "open_source", "parse_row", "synthetic_phase"]


_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(slots=True)
class SourceCursor:
    """How far a file source has been read: ``rows`` samples, ending at byte ``offset``.

    ``sha256`` is the hash of the file's first ``offset`` bytes: the identity of what was read.
    The source advances the cursor as it yields each batch; the cell stores :meth:`stored`
    with the batch. :meth:`resume` continues after a stored position, or refuses when the file
    at ``path`` is not the one that was read (shorter, or changed before the offset).
    """

    key: str
    path: Path
    rows: int = 0
    offset: int = 0
    sha256: str = _EMPTY_SHA256

    def stored(self) -> tuple[str, dict[str, Any]]:
        """(key, position) as the cell stores it."""
        return self.key, {"rows": self.rows, "offset": self.offset, "sha256": self.sha256}

    def resume(self, position: Mapping[str, Any] | None) -> None:
        """Continue after ``position`` (None: the file was never read, start at row 1)."""
        if not position:
            return
        try:
            rows, offset, digest = (
                int(position["rows"]),
                int(position["offset"]),
                str(position["sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("source", f"stored position of {self.key} is unreadable") from exc
        actual = _prefix_sha256(self.path, offset)
        if actual != digest:
            what = "is shorter than" if actual is None else "changed within"
            raise InputError(
                "source",
                f"{self.path} {what} the first {offset} bytes ({rows} rows) this data dir has "
                "already read, so it is not the same stream; restore the file or use a new "
                "--data-dir to read it from the start",
            )
        self.rows, self.offset, self.sha256 = rows, offset, digest


def _prefix_sha256(path: Path, size: int) -> str | None:
    """SHA-256 of the first ``size`` bytes of ``path`` (None if the file is shorter)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            if _hash_into(fh, size, digest) < size:
                return None
    except OSError as exc:
        raise InputError("source", f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _hash_into(fh: BinaryIO, size: int, digest: Any) -> int:
    """Feed the next ``size`` bytes of ``fh`` to ``digest`` (1 MiB at a time); bytes read."""
    done = 0
    while done < size:
        chunk = fh.read(min(size - done, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        done += len(chunk)
    return done


@dataclass(slots=True)
class Source:
    """A named stream of batches with ``channels`` values per sample.

    File sources (``csv:``, ``text:``) carry a :class:`SourceCursor`; ``synthetic`` continues
    from the cell's sample count and ``stdin`` is a new stream every time (no cursor).
    """

    name: str
    channels: int
    batches: AsyncIterator[NDArray[Any]]
    cursor: SourceCursor | None = None


def synthetic_phase(
    start: int,
    count: int,
    *,
    dt: float,
    frequency_hz: float = 1.0,
    coherent_s: float = 4.0,
    stalled_s: float = 2.0,
    jitter: float = 0.1,
    seed: int = 7,
) -> NDArray[np.float64]:
    """Phase (radians) of samples ``start … start+count−1`` of the synthetic stream.

    The rhythm turns steadily at ``frequency_hz`` for ``coherent_s`` seconds, then stalls for
    ``stalled_s`` seconds with a white jitter of ``jitter`` · 2π·f·dt radians (a zero-mean phase
    velocity: no resonance), and so on. A pure function of the index: chunks join exactly.
    """
    n = np.arange(start, start + count, dtype=np.int64)
    on, off = round(coherent_s / dt), round(stalled_s / dt)
    period = on + off
    cycle, pos = np.divmod(n, period)
    advanced = cycle * on + np.minimum(pos, on)  # coherent samples before n
    phase = 2 * math.pi * frequency_hz * dt * advanced.astype(np.float64)
    stalled = pos >= on
    if np.any(stalled):
        amp = jitter * 2 * math.pi * frequency_hz * dt
        for c in np.unique(cycle[stalled]):
            rng = np.random.default_rng([seed, int(c)])
            noise = rng.standard_normal(off)
            sel = stalled & (cycle == c)
            phase[sel] += amp * noise[pos[sel] - on]
    return phase


async def _synthetic(
    dt: float, batch: int, start: int, clock: Callable[[], float] = time.monotonic
) -> AsyncIterator[NDArray[Any]]:
    index, began = start, clock()
    sent = 0
    while True:
        due = began + (sent + batch) * dt
        await asyncio.sleep(max(0.0, due - clock()))
        yield synthetic_phase(index, batch, dt=dt)
        index += batch
        sent += batch


def parse_row(line: str, channels: int | None = None) -> list[float] | None:
    """Numbers of a CSV/whitespace line; None for a blank or comment line; NaN if unreadable."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = [math.nan] * (channels or len(parts))
    if channels is not None and len(values) != channels:
        values = [math.nan] * channels
    return values


@dataclass(frozen=True, slots=True)
class _CsvLayout:
    """Columns per row, whether the first row is a header, and the data columns to keep."""

    columns: int
    header: bool
    keep: tuple[int, ...]
    time_column: int | None


def _csv_layout(path: Path) -> _CsvLayout:
    """The layout from the first non-blank line; a header column named like a time column
    (``t``, ``time``, ``timestamp``, ...) is dropped from the samples."""
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                row = parse_row(line)
                if row is None:
                    continue
                if not all(math.isnan(v) for v in row):
                    return _CsvLayout(len(row), False, tuple(range(len(row))), None)
                names = [n.strip().lower() for n in line.replace(",", " ").split()]
                times = [i for i, n in enumerate(names) if n in TIME_COLUMNS]
                keep = tuple(i for i in range(len(names)) if i not in times)
                if not keep:
                    raise InputError("source", f"{path}: no data column besides the time column")
                return _CsvLayout(len(names), True, keep, times[0] if times else None)
    except OSError as exc:
        raise InputError("source", f"cannot read {path}: {exc.strerror or exc}") from exc
    raise InputError("source", f"{path} has no samples")


def _check_time_step(path: Path, layout: _CsvLayout, dt: float) -> None:
    """A time column must step by the cell's dt (within 1 %): the engines assume it."""
    if layout.time_column is None:
        return
    times: list[float] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = parse_row(line, layout.columns)
            if row is not None and not math.isnan(row[layout.time_column]):
                times.append(row[layout.time_column])
            if len(times) == 2:
                step = times[1] - times[0]
                if not math.isclose(step, dt, rel_tol=DT_TOLERANCE):
                    raise InputError(
                        "source",
                        f"{path}: time column steps by {step:g} s but kairos.dt is {dt:g} s; "
                        "set kairos.dt (or sample_rate) in the config to match",
                    )
                return


async def _csv(
    path: Path, layout: _CsvLayout, batch: int, cursor: SourceCursor
) -> AsyncIterator[NDArray[Any]]:
    """Rows after ``cursor`` in batches; the cursor moves to the end of each batch as it is
    yielded (rows, byte offset, SHA-256 of the bytes read so far)."""
    rows: list[list[float]] = []
    keep = list(layout.keep)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        offset = cursor.offset
        _hash_into(fh, offset, digest)  # checked by cursor.resume; rebuilds the running hash
        skipped_header = not layout.header or offset > 0
        for raw in fh:
            offset += len(raw)
            digest.update(raw)
            row = parse_row(raw.decode("utf-8", errors="replace"), layout.columns)
            if row is None:
                continue
            if not skipped_header:
                skipped_header = True
                continue
            rows.append([row[i] for i in keep])
            if len(rows) >= batch:
                cursor.rows, cursor.offset = cursor.rows + len(rows), offset
                cursor.sha256 = digest.hexdigest()
                yield np.asarray(rows, np.float64)
                rows = []
                await asyncio.sleep(0)
    if rows:
        cursor.rows, cursor.offset, cursor.sha256 = (
            cursor.rows + len(rows),
            offset,
            digest.hexdigest(),
        )
        yield np.asarray(rows, np.float64)


async def _stdin(stream: TextIO, interval: float) -> AsyncIterator[NDArray[Any]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="becomingone-stdin", daemon=True).start()
    done = False
    while not done:
        rows: list[list[float]] = []
        deadline = loop.time() + interval
        while (left := deadline - loop.time()) > 0:
            try:
                line = await asyncio.wait_for(queue.get(), timeout=left)
            except TimeoutError:
                break
            if line is None:
                done = True
                break
            row = parse_row(line, 1)
            if row is not None:
                rows.append(row)
        if rows:
            yield np.asarray(rows, np.float64)


def _text(path: Path, batch: int, cursor: SourceCursor) -> tuple[int, AsyncIterator[NDArray[Any]]]:
    """Messages of a text file (one per line) as sentence embeddings, one sample per message,
    from message ``cursor.rows`` on (the cursor's offset and hash cover the whole file).

    The embedding is the MiniLM model when the ``text`` extra is installed, else the lexical
    fallback (see :mod:`becomingone.ingest.text`).
    """
    try:
        data = path.read_bytes()
        messages = read_messages(path)
    except OSError as exc:
        raise InputError("source", f"cannot read {path}: {exc.strerror or exc}") from exc
    except InputError as exc:
        raise InputError("source", exc.message) from exc
    vectors = phase_from_embeddings(embed_messages(messages))

    async def gen() -> AsyncIterator[NDArray[Any]]:
        cursor.offset, cursor.sha256 = len(data), hashlib.sha256(data).hexdigest()
        for i in range(cursor.rows, vectors.shape[0], batch):
            chunk = vectors[i : i + batch]
            cursor.rows = i + len(chunk)
            yield chunk
            await asyncio.sleep(0)

    return vectors.shape[1], gen()


def open_source(spec: str, *, dt: float, flush_interval: float, start: int = 0) -> Source:
    """The source named by ``spec`` (see module doc); ``start`` is the cell's sample count."""
    batch = max(1, round(flush_interval / dt))
    kind, _, arg = spec.partition(":")
    if kind == "synthetic" and not arg:
        return Source("synthetic", 1, _synthetic(dt, batch, start))
    if kind == "stdin" and not arg:
        return Source("stdin", 1, _stdin(sys.stdin, flush_interval))
    if kind == "csv" and arg:
        path = Path(arg).expanduser()
        layout = _csv_layout(path)
        _check_time_step(path, layout, dt)
        cursor = SourceCursor(f"csv:{path.resolve()}", path)
        return Source(f"csv:{path}", len(layout.keep), _csv(path, layout, batch, cursor), cursor)
    if kind == "text" and arg:
        path = Path(arg).expanduser()
        cursor = SourceCursor(f"text:{path.resolve()}", path)
        channels, gen = _text(path, batch, cursor)
        return Source(f"text:{arg}", channels, gen, cursor)
    raise InputError("source", f"{spec!r}: use synthetic, stdin, csv:PATH or text:PATH")
