"""``becomingone choir ...``: a small community by hand (users, a thread, a post, a spec, the
votes, balances) in text and JSON, on the data dir's SQLite ledger and on PostgreSQL, and bad
input as one line on stderr with exit status 2 before the data dir is touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from becomingone.cli import main
from tests.choir.conftest import pg_server  # noqa: F401  (the session's PostgreSQL server)
from tests.choir.pgserver import PgServer


def choir(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``becomingone choir ARGS``: (status, stdout, stderr)."""
    status = main(["choir", *args])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """Run with --json; the parsed output (status must be 0)."""
    status, out, err = choir(capsys, *args, "--json")
    assert status == 0, err
    return json.loads(out)


def community(capsys: pytest.CaptureFixture[str], where: list[str]) -> None:
    """ada opens a thread, bob's spec is approved, the balances move and the invariant holds."""
    assert run_json(capsys, "users", "add", "ada", *where)["wallet"] == 1000
    run_json(capsys, "users", "add", "bob", *where)
    thread = run_json(capsys, "threads", "create", "On time", "--as", "ada", *where)
    assert thread["price"] == 50
    t = thread["thread"]
    run_json(capsys, "post", t, "first light", "--as", "ada", *where)
    spec = run_json(capsys, "submit", t, "a second voice", "--as", "bob", *where)
    assert spec["stake"] == 50
    [pending] = run_json(capsys, "specs", *where)
    assert pending["author"] == "bob" and pending["status"] == "pending"
    vote = run_json(capsys, "vote", spec["spec"], "approve", "--as", "ada", *where)
    assert vote["status"] == "approved"
    assert run_json(capsys, "balance", "ada", *where) == {"name": "ada", "wallet": 1050}
    totals = run_json(capsys, "balance", *where)
    assert totals["invariant"] == "holds" and totals["total"] == totals["supply"]
    [listed] = run_json(capsys, "threads", *where)
    assert listed["coauthors"] == ["ada", "bob"] and listed["pending"] == 0
    assert run_json(capsys, "specs", "--all", *where)[0]["votes"] == {"ada": "approve"}


def test_a_community_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole flow on the data dir's SQLite ledger; text output names users and amounts."""
    where = ["--data-dir", str(tmp_path)]
    community(capsys, where)
    status, out, _ = choir(capsys, "users", *where)
    assert status == 0 and "name=ada" in out and "wallet=1050" in out
    assert (tmp_path / "choir" / "ledger.sqlite3").exists()
    assert (tmp_path / "choir" / "users" / "bob.key").stat().st_mode & 0o777 == 0o600


def test_a_community_on_postgres(
    tmp_path: Path,
    pg_server: PgServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same flow with --ledger postgresql://...: no SQLite ledger file is made."""
    where = ["--data-dir", str(tmp_path), "--ledger", pg_server.create_database()]
    community(capsys, where)
    assert not (tmp_path / "choir" / "ledger.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "a b"], "name: must be 1-64"),
        (["users", "add"], "name: must be 1-64"),
        (["threads", "create", "x"], "title: threads create needs TITLE and --as NAME"),
        (["post", "t", "  ", "--as", "ada"], "text: must not be empty"),
        (["submit", "t", "x", "--as", "ada", "--stake", "0"], "--stake: must be a positive"),
        (["vote", "s", "approve", "--as", "no body"], "--as: must be 1-64"),
        (["balance", "--ledger", "mysql://x"], "--ledger: must be a postgresql:// URL"),
        (["close", "a/b", "--as", "ada"], "spec: must be an id"),
        (["divest", "", "--as", "ada"], "thread: must be an id"),
    ],
)
def test_bad_arguments_touch_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Malformed arguments: one line, exit 2, and the data dir is not created."""
    data_dir = tmp_path / "dir"
    status, out, err = choir(capsys, *args, "--data-dir", str(data_dir))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err
    assert not data_dir.exists()


def test_an_unreachable_or_unusable_ledger_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server behind --ledger, or a ledger path that is a directory: exit 1, one line."""
    where = ["--data-dir", str(tmp_path)]
    status, out, err = choir(capsys, "balance", *where, "--ledger", "postgresql://u@127.0.0.1:1/x")
    assert (status, out, err.count("\n")) == (1, "", 1) and "StorageError: ledger" in err
    (tmp_path / "choir" / "ledger.sqlite3").mkdir(parents=True)
    status, out, err = choir(capsys, "balance", *where)
    assert (status, out, err.count("\n")) == (1, "", 1) and "cannot open ledger" in err, err


def test_refused_transactions_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown user, unknown thread, insufficient funds, double vote: one line, exit 2."""
    where = ["--data-dir", str(tmp_path)]
    run_json(capsys, "users", "add", "ada", *where)
    run_json(capsys, "users", "add", "bob", *where)
    t = run_json(capsys, "threads", "create", "T", "--as", "ada", *where)["thread"]
    spec = run_json(capsys, "submit", t, "hi", "--as", "bob", *where)["spec"]
    run_json(capsys, "users", "add", "cy", *where)
    cases = [
        (["submit", t, "x", "--as", "carl"], "--as: no user 'carl'"),
        (["submit", "nope", "x", "--as", "bob"], "thread: unknown thread nope"),
        (["submit", t, "x", "--as", "cy", "--stake", "5000"], "stake: insufficient funds"),
        (["vote", spec, "deny", "--as", "cy"], "cy is not a co-author"),
        (["users", "add", "ada"], "name: 'ada' is taken"),
        (["balance", "zed"], "name: unknown user 'zed'"),
    ]
    for args, message in cases:
        status, out, err = choir(capsys, *args, *where)
        assert (status, out, err.count("\n")) == (2, "", 1) and message in err, err
    status, _, err = choir(capsys, "close", spec, "--as", "cy", *where)
    assert status == 2 and f"spec {spec} is open for votes until" in err
    run_json(capsys, "vote", spec, "deny", "--as", "ada", *where)
    status, _, err = choir(capsys, "vote", spec, "deny", "--as", "ada", *where)
    assert status == 2 and "is already denied" in err
    assert run_json(capsys, "divest", t, "--as", "ada", *where) == {
        "thread": t,
        "name": "ada",
        "paid": 50,
    }
    status, _, err = choir(capsys, "divest", t, "--as", "ada", *where)
    assert status == 2 and "ada is not a co-author" in err


@pytest.mark.parametrize(
    "args",
    [
        ["balance", "ada"],
        ["balance"],
        ["users"],
        ["users", "list"],
        ["threads"],
        ["specs", "--all"],
        ["check"],
        ["search", "light"],
    ],
)
@pytest.mark.parametrize("exists", [False, True])
def test_read_only_commands_create_nothing_where_there_is_no_choir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], exists: bool
) -> None:
    """A read-only command on a data dir with no Choir (absent, or empty) says so in one line
    naming --data-dir, exits 2, and leaves the directory as it was."""
    data_dir = tmp_path / "new"
    if exists:
        data_dir.mkdir()
    status, out, err = choir(capsys, *args, "--data-dir", str(data_dir))
    assert (status, out, err.count("\n")) == (2, "", 1), err
    assert f"--data-dir: no Choir in {data_dir} yet" in err
    assert data_dir.exists() == exists
    assert not exists or list(data_dir.iterdir()) == []
