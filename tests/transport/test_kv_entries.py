"""kv_entries: a KV bucket read is complete even when nats.py marks the replay's end early."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from becomingone.transport.jetstream import kv_entries


class _Watcher:
    """Yields the scripted updates (an entry or None), then times out like nats.py."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.stopped = False

    async def updates(self, timeout: float) -> Any:
        if not self.script:
            raise TimeoutError
        return self.script.pop(0)

    async def stop(self) -> None:
        self.stopped = True


class _Kv:
    def __init__(self, script: list[Any], messages: int, last_seq: int) -> None:
        self.watcher = _Watcher(script)
        state = SimpleNamespace(messages=messages, last_seq=last_seq)
        self._status = SimpleNamespace(stream_info=SimpleNamespace(state=state))

    async def status(self) -> Any:
        return self._status

    async def watchall(self) -> _Watcher:
        return self.watcher


def entry(key: str, revision: int) -> Any:
    return SimpleNamespace(key=key, revision=revision, operation=None)


def test_an_early_end_marker_does_not_cut_the_read() -> None:
    """nats.py issue 842: the end-of-replay None arrives before the last two entries; the read
    still returns all three (it waits for the stream's last sequence) and stops the watcher."""
    kv = _Kv([entry("a", 1), None, entry("b", 2), entry("c", 3)], messages=3, last_seq=3)
    got = asyncio.run(kv_entries(kv, 1.0))
    assert [e.key for e in got] == ["a", "b", "c"]
    assert kv.watcher.stopped


def test_an_empty_bucket_is_read_without_waiting() -> None:
    """No messages: nothing to wait for, no watcher made."""
    kv = _Kv([], messages=0, last_seq=7)
    assert asyncio.run(kv_entries(kv, 1.0)) == []


def test_entries_that_never_come_time_out() -> None:
    """The last sequence never arrives: the watcher's timeout escapes (callers turn it into
    their TransportError/StorageError) and the watcher is stopped."""
    kv = _Kv([entry("a", 1), None], messages=2, last_seq=5)
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(kv_entries(kv, 0.1))
    assert kv.watcher.stopped
