"""`becomingone analyze` at its boundaries: every bad input is one line on stderr with exit 2
(bad input) or 1 (environment), never a traceback (issue 7 §6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "buried.csv"


def _fails(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run analyze in-process; an uncaught exception fails the test. Returns (status, stderr)."""
    code = main(["analyze", *args])
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("becomingone analyze: "), captured.err
    return code, lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--window", "1e12"], "fewer than one window needs"),
        (["--window", "1e300"], "more than 1e15 samples"),
        (["--lag", "1e300", "--window", "1e300"], "lag: 1e+300 s at dt 0.01"),
        (["--hop", "1e300"], "hop"),
    ],
)
def test_absurd_window_lag_or_hop_is_refused_before_allocating(capsys, args, needle):
    """A window of 10^17 samples would allocate petabytes; it is refused up front."""
    code, err = _fails(capsys, str(EXAMPLE), *args)
    assert code == 2 and needle in err


def test_tiny_dt_is_refused_before_allocating(tmp_path, capsys):
    """--dt 1e-300 on a CSV without time column makes the window 2e300 samples: refused."""
    f = tmp_path / "x.csv"
    f.write_text("".join(f"{i % 5}\n" for i in range(100)))
    code, err = _fails(capsys, str(f), "--dt", "1e-300", "--kind", "phase")
    assert code == 2 and "0.1 s at dt 1e-300 is more than 1e15 samples" in err


def test_event_grid_beyond_the_memory_limit_is_refused(tmp_path, capsys):
    """Events a day apart at --dt 1e-9 would need a 1.3 PB grid: refused naming dt."""
    f = tmp_path / "events.csv"
    f.write_text("t\n0\n86400\n172800\n")
    code, err = _fails(capsys, str(f), "--kind", "events", "--dt", "1e-9")
    assert code == 2 and "dt: the event grid needs" in err and "GiB limit" in err


def test_band_far_below_the_resolution_is_one_line(capsys):
    """A band of nanohertz on 60 s of data would be a singular filter: exit 2 naming band."""
    code, err = _fails(capsys, str(EXAMPLE), "--band", "1e-9", "2e-9")
    assert code == 2 and "band:" in err and "resolution" in err


@pytest.mark.parametrize(
    ("plot", "code", "needle"),
    [
        ("out.jpgx", 2, "unsupported extension '.jpgx'"),
        ("out", 2, "unsupported extension ''"),
        ("file.csv/x.png", 2, "is a file, not a directory"),
        ("dir", 2, "is a directory"),
        ("/proc/becomingone-test/x.png", 1, "cannot write plot"),
    ],
)
def test_bad_plot_path_is_refused_before_the_run(tmp_path, capsys, plot, code, needle):
    """The plot path is checked before anything is read: with a missing input file too, the
    error is about the plot (an unwritable place is an environment error, exit 1)."""
    (tmp_path / "file.csv").write_text("1\n")
    (tmp_path / "dir.png").mkdir()
    target = plot if plot.startswith("/") else str(tmp_path / plot)
    if plot == "dir":
        target = str(tmp_path / "dir.png")
    status, err = _fails(capsys, str(tmp_path / "missing.csv"), "--plot", target)
    assert status == code and needle in err


def test_plot_to_a_new_directory_still_works(tmp_path, capsys):
    """A plot under directories that do not exist yet is allowed (they are created)."""
    out = tmp_path / "a" / "b" / "plot.svg"
    assert main(["analyze", str(EXAMPLE), "--band", "3", "8", "--plot", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (bytes(range(256)) * 4, "not UTF-8"),
        (b"1,2\n\x00\x00\x7f,3\n4,5\n", "binary file"),
    ],
)
def test_binary_file_as_csv(tmp_path, capsys, content, needle):
    """A binary file given as CSV is one line, exit 2."""
    f = tmp_path / "blob.csv"
    f.write_bytes(content)
    code, err = _fails(capsys, str(f), "--dt", "0.01")
    assert code == 2 and needle in err


def test_header_only_csv_reads_like_an_empty_one(tmp_path, capsys):
    """A CSV with only a header gives exactly the message of an empty CSV."""
    empty, header = tmp_path / "e.csv", tmp_path / "h.csv"
    empty.write_text("")
    header.write_text("time,x\n")
    _, err_empty = _fails(capsys, str(empty))
    _, err_header = _fails(capsys, str(header))
    assert err_empty.replace("e.csv", "h.csv") == err_header
    assert "no data rows" in err_header


@pytest.mark.parametrize("rows", ["0", "-3"])
def test_rows_below_one_is_refused(capsys, rows):
    """--rows 0 (or negative) is bad input, not silently raised to 1."""
    code, err = _fails(capsys, str(EXAMPLE), "--rows", rows)
    assert code == 2 and "rows" in err


def test_json_into_a_closed_pipe_exits_without_a_traceback():
    """`analyze ... --json | head -c 10` with the reader gone: status 141, nothing on stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "becomingone.cli", "analyze", str(EXAMPLE), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes
    try:
        err = proc.stderr.read().decode()
        status = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
