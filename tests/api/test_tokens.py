"""Write tokens: created once and shown once, stored only as a SHA-256, listed without the
secret, revocable; the `becomingone tokens` command; the token bucket."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.api import TokenBucket, TokenStore
from becomingone.api.tokens import TOKEN_PREFIX, hash_token
from becomingone.cli import main
from becomingone.errors import InputError
from becomingone.memory.store import DB_NAME


def test_create_check_list_revoke(tmp_path: Path) -> None:
    """A token checks as active until revoked; list shows names and dates only; the raw
    token appears nowhere in the database file, its hash does."""
    store = TokenStore(tmp_path)
    token = store.create("ci", now=10.0)
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    info = store.check(token)
    assert info is not None and info.name == "ci" and info.active
    assert store.check(token + "x") is None
    store.revoke("ci", now=20.0)
    revoked = store.check(token)
    assert revoked is not None and not revoked.active and revoked.revoked_at == 20.0
    assert [(t.name, t.created_at, t.revoked_at) for t in store.list()] == [("ci", 10.0, 20.0)]
    store.close()
    raw = (tmp_path / DB_NAME).read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob(f"{DB_NAME}-wal")
    )
    assert token.encode() not in raw and hash_token(token).encode() in raw


def test_names_are_checked_and_unique(tmp_path: Path) -> None:
    """A bad name, a used name, and revoking an unknown or revoked token are InputErrors."""
    store = TokenStore(tmp_path)
    with pytest.raises(InputError, match="A-Z"):
        store.create("has space")
    store.create("a")
    with pytest.raises(InputError, match="exists"):
        store.create("a")
    with pytest.raises(InputError, match="no active token"):
        store.revoke("b")
    store.revoke("a")
    with pytest.raises(InputError, match="no active token"):
        store.revoke("a")
    store.close()


def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    """A token created by one connection (the CLI) is known to another (the running API),
    and a revoke through one is seen by the other at its next check."""
    api, cli = TokenStore(tmp_path), TokenStore(tmp_path)
    token = cli.create("late")
    assert api.check(token) is not None
    cli.revoke("late")
    info = api.check(token)
    assert info is not None and not info.active
    api.close()
    cli.close()


def test_token_bucket_refills_at_its_rate() -> None:
    """burst requests at once, then one per 1/rate seconds; wait() says how long."""
    bucket = TokenBucket(rate=4.0, burst=2, level=2.0, at=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.wait(0.0) == pytest.approx(0.25)
    assert not bucket.take(0.2) and bucket.take(0.25)
    assert bucket.take(100.0) and bucket.take(100.0) and not bucket.take(100.0)


def test_tokens_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tokens create` prints the token alone on stdout; list never prints it; revoke marks
    it; revoking an unknown name exits 2 with one line."""
    data = str(tmp_path / "d")
    assert main(["tokens", "create", "ops", "--data-dir", data]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith(TOKEN_PREFIX) and "shown only now" in err
    assert main(["tokens", "list", "--data-dir", data, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == ["ops"] and listed[0]["active"] is True
    assert token not in json.dumps(listed)
    assert main(["tokens", "revoke", "ops", "--data-dir", data]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["tokens", "list", "--data-dir", data]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["tokens", "revoke", "nobody", "--data-dir", data]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no active token named 'nobody'" in err


def test_tokens_create_in_a_pipe(tmp_path: Path) -> None:
    """TOKEN=$(becomingone tokens create NAME) captures exactly the token."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "becomingone.cli",
            "tokens",
            "create",
            "x",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.count("\n") == 1 and out.stdout.startswith(TOKEN_PREFIX)


def test_a_bad_token_name_touches_no_data_dir(tmp_path: Path) -> None:
    """``tokens create`` or ``revoke`` with a bad name exits 2 before anything is opened: no
    data dir and no database appear where there were none."""
    data = tmp_path / "none"
    for command in ("create", "revoke"):
        assert main(["tokens", command, "", "--data-dir", str(data)]) == 2
        assert main(["tokens", command, "a b", "--data-dir", str(data)]) == 2
    assert not data.exists()
