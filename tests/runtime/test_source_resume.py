"""File sources resume where the data dir stopped reading them (in-process): the position is
stored with each batch, a restart skips the consumed rows, a changed file is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from becomingone.errors import InputError
from becomingone.ingest.text import lexical_embedding
from becomingone.runtime import Cell, open_source, run_cell, sources
from becomingone.runtime.sources import Source, synthetic_phase
from tests.helpers import small_config

ROWS = 1000


def write_csv(path: Path, start: int, count: int, header: bool = True) -> None:
    """``count`` synthetic phase rows from sample ``start``, with a ``phase`` header."""
    values = synthetic_phase(start, count, dt=0.01)
    text = "".join(f"{v:.9f}\n" for v in values)
    if header:
        text = "phase\n# a comment line\n" + text
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


def open_csv(cell: Cell, path: Path) -> Source:
    """Open csv:path, resume it from the cell's stored position and let the cell track it."""
    source = open_source(f"csv:{path}", dt=0.01, flush_interval=0.5)
    assert source.cursor is not None
    source.cursor.resume(cell.source_position(source.cursor.key))
    cell.track(source.cursor)
    return source


async def run(cell: Cell, source: Source, batches: int | None = None) -> None:
    """Feed ``batches`` batches (all when None) from ``source`` through ``run_cell``."""
    stop = asyncio.Event()
    seen = 0

    async def limited():  # type: ignore[no-untyped-def]
        nonlocal seen
        async for batch in source.batches:
            yield batch
            seen += 1
            if batches is not None and seen >= batches:
                stop.set()
                return

    await run_cell(cell, limited(), stop=stop)


async def test_restart_continues_after_the_last_stored_row(tmp_path: Path) -> None:
    """Part of a CSV, a crash (no close), a restart: every row is ingested exactly once and
    the engines equal a cell that read the file in one go."""
    csv = tmp_path / "in.csv"
    write_csv(csv, 0, ROWS)
    ref = Cell(small_config(), tmp_path / "ref")
    await run(ref, open_csv(ref, csv))
    assert ref.samples == ROWS

    cell = Cell(small_config(), tmp_path / "data")
    await run(cell, open_csv(cell, csv), batches=7)
    assert cell.samples == 7 * 50
    cell.memory._db.close()  # crash: nothing but the committed batches survives
    cell.lock.release()
    cell = Cell(small_config(), tmp_path / "data")
    source = open_csv(cell, csv)
    assert source.cursor is not None and source.cursor.rows == 7 * 50
    await run(cell, source)
    assert cell.samples == ROWS and cell.counts["rejected"] == 0
    assert cell.master.engine.last == ref.master.engine.last
    assert cell.source_position(source.cursor.key) == {
        "rows": ROWS,
        "offset": csv.stat().st_size,
        "sha256": source.cursor.sha256,
    }
    cell.close()
    ref.close()


async def test_fully_read_file_feeds_nothing_again(tmp_path: Path) -> None:
    """Running the same file again on the same data dir ingests no row twice."""
    csv = tmp_path / "in.csv"
    write_csv(csv, 0, 300)
    cell = Cell(small_config(), tmp_path / "data")
    await run(cell, open_csv(cell, csv))
    cell.close()
    cell = Cell(small_config(), tmp_path / "data")
    await run(cell, open_csv(cell, csv))
    assert cell.samples == 300
    cell.close()


async def test_appended_rows_are_read_on_restart(tmp_path: Path) -> None:
    """A file that grew since (a log being appended) continues with the new rows only."""
    csv = tmp_path / "in.csv"
    write_csv(csv, 0, 400)
    cell = Cell(small_config(), tmp_path / "data")
    await run(cell, open_csv(cell, csv))
    cell.close()
    write_csv(csv, 400, 250, header=False)
    cell = Cell(small_config(), tmp_path / "data")
    await run(cell, open_csv(cell, csv))
    assert cell.samples == 650
    cell.close()


@pytest.mark.parametrize("change", ["edit", "shrink", "replace"])
async def test_changed_file_is_refused(tmp_path: Path, change: str) -> None:
    """A file changed before the stored offset, shrunk, or replaced: InputError on resume."""
    csv = tmp_path / "in.csv"
    write_csv(csv, 0, 600)
    cell = Cell(small_config(), tmp_path / "data")
    await run(cell, open_csv(cell, csv), batches=4)
    cell.close()
    text = csv.read_text()
    if change == "edit":
        csv.write_text(text.replace("0.", "1.", 1))
    elif change == "shrink":
        csv.write_text(text[: len(text) // 10])
    else:
        csv.unlink()
        write_csv(csv, 5, 600)
    cell = Cell(small_config(), tmp_path / "data")
    with pytest.raises(InputError) as err:
        open_csv(cell, csv)
    assert err.value.parameter == "source" and "200 rows" in str(err.value)
    assert "new --data-dir" in str(err.value)
    cell.close()


async def test_text_source_resumes_by_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """text:PATH skips the messages already read; a changed file is refused (lexical
    embeddings, so the test does not load the sentence model three times)."""
    monkeypatch.setattr(sources, "embed_messages", lexical_embedding)
    msgs = tmp_path / "msgs.txt"
    msgs.write_text("".join(f"message {i % 7} about the cell\n" for i in range(120)))
    cell = Cell(small_config(), tmp_path / "data", channels=384)
    source = open_source(f"text:{msgs}", dt=0.01, flush_interval=0.5)
    assert source.cursor is not None
    cell.track(source.cursor)
    await run(cell, source, batches=1)
    assert cell.samples == 50
    cell.close()
    cell = Cell(small_config(), tmp_path / "data", channels=384)
    source = open_source(f"text:{msgs}", dt=0.01, flush_interval=0.5)
    assert source.cursor is not None
    source.cursor.resume(cell.source_position(source.cursor.key))
    cell.track(source.cursor)
    await run(cell, source)
    assert cell.samples == 120
    cell.close()
    msgs.write_text("another conversation\n" * 130)
    cell = Cell(small_config(), tmp_path / "data", channels=384)
    source = open_source(f"text:{msgs}", dt=0.01, flush_interval=0.5)
    assert source.cursor is not None
    with pytest.raises(InputError, match="not the same stream"):
        source.cursor.resume(cell.source_position(source.cursor.key))
    cell.close()


def test_stdin_and_synthetic_have_no_cursor() -> None:
    """stdin is a new stream every time and synthetic follows the sample count: no cursor."""
    assert open_source("stdin", dt=0.01, flush_interval=0.5).cursor is None
    assert open_source("synthetic", dt=0.01, flush_interval=0.5).cursor is None
    assert np.isfinite(synthetic_phase(0, 3, dt=0.01)).all()
