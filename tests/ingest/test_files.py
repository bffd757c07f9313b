"""CSV and text readers: headers, time columns, and errors that name file, row and column."""

from __future__ import annotations

import numpy as np
import pytest

from becomingone.errors import InputError
from becomingone.ingest.files import read_csv_series, read_messages


def test_csv_with_time_column_gives_dt_t0_and_channels(tmp_path):
    """A header with a time column yields dt, t0 and the other columns as channels."""
    f = tmp_path / "s.csv"
    f.write_text("time,a,b\n10.0,1,2\n10.5,3,4\n11.0,5,6\n")
    s = read_csv_series(f)
    assert s.dt == 0.5 and s.t0 == 10.0 and s.channels == ("a", "b")
    np.testing.assert_array_equal(s.values, [[1, 2], [3, 4], [5, 6]])


def test_csv_without_header_or_time(tmp_path):
    """Plain numeric rows: no dt, channels named ch0.., blank lines skipped."""
    f = tmp_path / "s.csv"
    f.write_text("1,2\n\n3,4\n5,6\n")
    s = read_csv_series(f)
    assert s.dt is None and s.channels == ("ch0", "ch1") and s.values.shape == (3, 2)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("t,x\n0,1\n0.1,oops\n0.2,3\n", "row 3, column 'x': not a number: 'oops'"),
        ("t,x\n0,1\n0.1,nan\n0.2,3\n", "row 3, column 'x': not finite"),
        ("t,x\n0,1\n0.1\n0.2,3\n", "row 3 has 1 columns, expected 2"),
        ("t,x\n0,1\n0.1,2\n0.2,2\n0.6,3\n", "not uniformly increasing at data row 4"),
        ("t,x\n0,1\n", "needs at least 2 data rows"),
        ("", "empty CSV"),
        ("time\n0\n1\n2\n", "no data column"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, text, needle):
    """Every malformed CSV raises InputError with the file and what is wrong."""
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError) as info:
        read_csv_series(f)
    assert needle in str(info.value)
    assert str(f) in str(info.value)


def test_missing_and_binary_files(tmp_path):
    """A missing file and a non-UTF-8 file are reported as such."""
    with pytest.raises(InputError, match="no such file"):
        read_csv_series(tmp_path / "nope.csv")
    f = tmp_path / "bin.txt"
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not UTF-8"):
        read_messages(f)


def test_messages_one_per_non_empty_line(tmp_path):
    """Text files become stripped, non-empty lines; fewer than two is an error."""
    f = tmp_path / "m.txt"
    f.write_text("  hello \n\nworld\n")
    assert read_messages(f) == ["hello", "world"]
    f.write_text("only one\n")
    with pytest.raises(InputError, match="at least 2"):
        read_messages(f)
