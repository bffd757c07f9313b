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
        ("t,x\n0,1\n0.1,2\n0.2,2\n0.6,3\n", "not uniformly increasing at row 5"),
        ("t,x\n0,1\n", "needs at least 2 data rows"),
        ("", "no data rows"),
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


def test_header_only_csv_is_reported_like_an_empty_one(tmp_path):
    """A header with no rows gives the same message as an empty file (no data rows)."""
    messages = []
    for text in ("", "\n\n", "time,x\n", "a,b\n\n"):
        f = tmp_path / "h.csv"
        f.write_text(text)
        with pytest.raises(InputError) as info:
            read_csv_series(f)
        messages.append(str(info.value))
    assert set(messages) == {
        f"file: {tmp_path / 'h.csv'}: no data rows (the file is empty or holds only a header)"
    }


@pytest.mark.parametrize("name", ["t", "Time", "TIMESTAMP", "seconds", "Year", "date", "DateTime"])
def test_time_column_names_are_recognised_case_insensitively(tmp_path, name):
    """Each common time-column name gives dt and is never a data channel."""
    f = tmp_path / "s.csv"
    f.write_text(f"{name},x\n1,5\n2,6\n3,7\n")
    s = read_csv_series(f)
    assert s.channels == ("x",) and s.dt == 1.0 and s.t0 == 1.0 and s.time_column == name
    unit = {"year": "year", "date": "", "datetime": ""}.get(name.lower(), "s")
    assert s.time_unit == unit


def test_yearly_column_gives_years(tmp_path):
    """A `year` column is in years: dt 1, t0 the first year."""
    f = tmp_path / "sun.csv"
    f.write_text("Year,sunspots\n" + "".join(f"{1700 + i},{i % 11}\n" for i in range(30)))
    s = read_csv_series(f)
    assert (s.dt, s.t0, s.time_unit, s.channels) == (1.0, 1700.0, "year", ("sunspots",))


def test_iso_month_column_gives_decimal_years(tmp_path):
    """Monthly ISO dates (any column name) are decimal years, dt = 1/12 year, not a channel."""
    f = tmp_path / "m.csv"
    f.write_text("Month,value\n1749-01,96.7\n1749-02,104.3\n1749-03,116.7\n1749-04,92.8\n")
    s = read_csv_series(f)
    assert s.channels == ("value",) and s.time_unit == "year" and s.time_column == "Month"
    assert s.dt == pytest.approx(1 / 12) and s.t0 == pytest.approx(1749.0)


def test_iso_daily_dates_give_days_since_the_first(tmp_path):
    """Daily ISO dates across a month end are uniform in days, counted from the first date."""
    f = tmp_path / "d.csv"
    days = ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
    f.write_text("date,x\n" + "".join(f"{d},{i}\n" for i, d in enumerate(days)))
    s = read_csv_series(f)
    assert (s.dt, s.t0, s.time_unit, s.time_origin) == (1.0, 0.0, "day", "2024-02-27")


def test_iso_datetimes_with_zones_give_seconds_in_utc(tmp_path):
    """Date-times with different zones are converted to UTC; the step is in seconds."""
    f = tmp_path / "z.csv"
    f.write_text(
        "2024-01-01T00:00:00Z,1\n2024-01-01T01:00:30+01:00,2\n2024-01-01T00:01:00+00:00,3\n"
    )
    s = read_csv_series(f)
    assert (s.dt, s.time_unit, s.channels) == (30.0, "s", ("ch1",))


def test_explicit_time_column_and_none(tmp_path):
    """--time-column NAME picks any column; "none" keeps every column as data."""
    f = tmp_path / "s.csv"
    f.write_text("t,clock,x\n0,10,1\n1,12,2\n2,14,3\n")
    s = read_csv_series(f, time_column="CLOCK")
    assert s.dt == 2.0 and s.channels == ("t", "x") and s.time_unit == ""
    s = read_csv_series(f, time_column="none")
    assert s.dt is None and s.channels == ("t", "clock", "x")
    with pytest.raises(InputError, match="no column named 'tick'") as info:
        read_csv_series(f, time_column="tick")
    assert info.value.parameter == "time_column"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("date,x\n2024-01-01,1\n2024-01-02,2\n2024-01-04,3\n2024-01-05,4\n", "row 4"),
        ("date,x\n2024-01-01,1\n2024-01-02,2\nyesterday,3\n", "row 4, time column 'date'"),
        ("t,x\n2024-01-01T00:00Z,1\n2024-01-01T00:01,2\n", "mixes times with and without"),
        ("year,x\n2000,1\n2001,2\n2002,3\n2002,4\n2003,5\n", "increasing at row 5"),
    ],
)
def test_irregular_time_columns_name_the_first_bad_row(tmp_path, text, needle):
    """A time column that skips, repeats or mixes formats is refused naming the row."""
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=needle):
        read_csv_series(f)


def test_missing_and_binary_files(tmp_path):
    """A missing file and a non-UTF-8 file are reported as such."""
    with pytest.raises(InputError, match="no such file"):
        read_csv_series(tmp_path / "nope.csv")
    f = tmp_path / "bin.txt"
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not UTF-8"):
        read_messages(f)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"1,2\n\x00\x00\x01,3\n")
    with pytest.raises(InputError, match="binary file"):
        read_csv_series(nul)


def test_messages_one_per_non_empty_line(tmp_path):
    """Text files become stripped, non-empty lines; fewer than two is an error."""
    f = tmp_path / "m.txt"
    f.write_text("  hello \n\nworld\n")
    assert read_messages(f) == ["hello", "world"]
    f.write_text("only one\n")
    with pytest.raises(InputError, match="at least 2"):
        read_messages(f)
