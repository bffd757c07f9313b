"""Choosing the content-store engine: ``choir.store_engine`` (auto, edge, local) in the config
and :class:`ChoirHome`, the copy of an existing local-mode store into a new edge store, and the
one-line error when the edge engine is asked for but ``qdrant-edge-py`` is not installed (a real
process in which the package cannot be imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from becomingone.choir import (
    PUBLISHED,
    ChoirHome,
    EdgeStore,
    QdrantStore,
    StoredMessage,
    StoredThread,
)
from becomingone.config import load_config
from becomingone.errors import InputError, StorageError
from becomingone.ingest.text import EMBEDDING_DIM

REPO = Path(__file__).resolve().parents[2]


def _message(i: int) -> StoredMessage:
    return StoredMessage(
        thread_id="t1",
        message_id=f"m{i}",
        author="a",
        content_hash="0" * 64,
        status=PUBLISHED,
        created_at=float(i),
        text=f"message {i}",
    )


def test_each_engine_opens_its_own_directory(tmp_path: Path) -> None:
    """auto and edge open qdrant-edge under store-edge/, local opens local mode under store/;
    a URL is a server whatever the engine; an unknown engine is refused naming it."""
    assert ChoirHome(tmp_path).engine() == "edge"
    assert ChoirHome(tmp_path, store_engine="local").engine("http://127.0.0.1:1") == "server"
    for engine, kind, folder in (
        ("auto", EdgeStore, "store-edge"),
        ("edge", EdgeStore, "store-edge"),
        ("local", QdrantStore, "store"),
    ):
        store = ChoirHome(tmp_path / engine, store_engine=engine).open_store()
        try:
            assert isinstance(store, kind)
            assert store.where == str(tmp_path / engine / "choir" / folder)
        finally:
            store.close()
    with pytest.raises(InputError, match=r"^store_engine: must be one of auto, edge, local"):
        ChoirHome(tmp_path, store_engine="qdrant")


def test_the_config_names_the_engine(tmp_path: Path) -> None:
    """choir.store_engine is read from becomingone.yaml (default auto); another value is an
    error naming the key."""
    assert load_config(None, environ={}).choir.store_engine == "auto"
    good = tmp_path / "good.yaml"
    good.write_text("becomingone:\n  choir:\n    store_engine: local\n")
    assert load_config(good, environ={}).choir.store_engine == "local"
    bad = tmp_path / "bad.yaml"
    bad.write_text("becomingone:\n  choir:\n    store_engine: qdrant\n")
    with pytest.raises(InputError, match="store_engine"):
        load_config(bad, environ={})


def test_a_local_store_is_copied_into_edge_once_and_back(tmp_path: Path) -> None:
    """A data dir whose store is local mode: the first edge open copies its messages, vectors
    and threads into store-edge/ (no partial copy left); later edge writes stay in edge; going
    back to local copies edge's content (the later writes too) back, and local's writes go to
    edge the next time edge opens."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, EMBEDDING_DIM))
    local = ChoirHome(tmp_path, store_engine="local").open_store()
    local.put_messages([(_message(i), vectors[i]) for i in range(30)])
    local.put_thread(StoredThread(thread_id="t1", coauthors=("a", "b")))
    want, threads = local.messages(), local.threads()
    local.close()
    edge = ChoirHome(tmp_path).open_store()
    try:
        assert isinstance(edge, EdgeStore)
        assert edge.messages() == want and edge.threads() == threads
        [hit] = edge.search(vectors[12], k=1, statuses=[PUBLISHED])
        assert hit.message.message_id == "m12"
        edge.put_messages([(_message(99), vectors[0])])
    finally:
        edge.close()
    assert not (tmp_path / "choir" / "store-edge.partial").exists()
    again = ChoirHome(tmp_path).open_store()  # no second copy: m99 is still there
    try:
        assert len(again.messages()) == 31
    finally:
        again.close()
    assert (tmp_path / "choir" / "store-engine").read_text() == "edge"
    local = ChoirHome(tmp_path, store_engine="local").open_store()
    try:
        assert isinstance(local, QdrantStore)
        assert [m.message_id for m in local.messages()] == [f"m{i}" for i in (*range(30), 99)]
        assert local.threads() == threads
        [hit] = local.search(vectors[7], k=1, statuses=[PUBLISHED])
        assert hit.message.message_id == "m7"
        local.put_messages([(_message(100), vectors[1])])
    finally:
        local.close()
    assert (tmp_path / "choir" / "store-engine").read_text() == "local"
    assert not (tmp_path / "choir" / "store.partial").exists()
    edge = ChoirHome(tmp_path).open_store()
    try:
        assert len(edge.messages()) == 32 and len(edge.get_messages(["m100"])) == 1
    finally:
        edge.close()


def test_two_unmarked_stores_go_to_edge_and_local_is_refused(tmp_path: Path) -> None:
    """A data dir from before the marker with both store/ and store-edge/: local does not
    guess which is current (one line naming the way out); edge takes store-edge/, and local
    then copies it back."""
    local = ChoirHome(tmp_path, store_engine="local").open_store()
    local.put_messages([(_message(1), np.ones(EMBEDDING_DIM))])
    local.close()
    edge = ChoirHome(tmp_path).open_store()
    edge.put_messages([(_message(2), np.ones(EMBEDDING_DIM))])
    edge.close()
    (tmp_path / "choir" / "store-engine").unlink()  # as the code before the marker left it
    with pytest.raises(StorageError, match="neither is marked current") as info:
        ChoirHome(tmp_path, store_engine="local").open_store()
    assert "store_engine: edge" in str(info.value) and "\n" not in str(info.value)
    ChoirHome(tmp_path).open_store().close()
    local = ChoirHome(tmp_path, store_engine="local").open_store()
    try:
        assert [m.message_id for m in local.messages()] == ["m1", "m2"]
    finally:
        local.close()


def _without_edge(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``becomingone ARGS`` in a real process where ``import qdrant_edge`` fails."""
    code = (
        "import sys; sys.modules['qdrant_edge'] = None\n"
        "from becomingone.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )


@pytest.mark.timeout(240)
def test_without_qdrant_edge_auto_is_local_and_edge_is_one_line(tmp_path: Path) -> None:
    """Without the package, auto falls back to local mode (the post lands in store/), and
    store_engine: edge is one line on stderr, exit status 1, before the ledger changes."""
    where = ["--data-dir", str(tmp_path)]
    assert _without_edge(["choir", "users", "add", "ada", *where]).returncode == 0
    created = _without_edge(["choir", "threads", "create", "T", "--as", "ada", *where, "--json"])
    assert created.returncode == 0, created.stderr
    thread = json.loads(created.stdout)["thread"]
    assert (tmp_path / "choir" / "store").is_dir()
    assert not (tmp_path / "choir" / "store-edge").exists()
    config = tmp_path / "edge.yaml"
    config.write_text("becomingone:\n  choir:\n    store_engine: edge\n")
    done = _without_edge(
        ["choir", "post", thread, "hello", "--as", "ada", *where, "--config", str(config)]
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "becomingone choir: StorageError: the content-store engine 'edge' needs the qdrant-edge-py"
        " package (pip install qdrant-edge-py), or set choir.store_engine: local"
    ]
    checked = _without_edge(["choir", "check", *where, "--json"])
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["messages"] == 0  # the refused post is not in the ledger
