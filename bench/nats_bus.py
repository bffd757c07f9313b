"""NatsBus on real nats-servers vs MemoryBus in the same run, and the kill -9 failover time.

Throughput: one publisher hands ``--messages`` packets of ``--size`` bytes to the bus in batches
of ``--batch`` (``publish_many``), one subscriber on another connection drains them; messages/s
end to end for NatsBus (one local nats-server) and for MemoryBus, and their ratio.

Failover: ``--rounds`` times, a fresh 3-server cluster; a publisher connected to n1 (all three
URLs, in order) sends one message every 2 ms to a subscriber on n3; n1 is killed with SIGKILL;
the time from the kill to the first message published after it that reaches the subscriber.

Run: ``.venv/bin/python bench/nats_bus.py [--messages N] [--size B] [--batch K] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from becomingone.transport import Bus, MemoryBus, NatsServers, Subscription, connect_nats


async def pump(pub: Bus, sub: Subscription, n: int, size: int, batch: int) -> float:
    """Messages/s from ``pub`` to ``sub`` (every message received; at most 60 s)."""
    payload = b"x" * size
    got = 0
    t0 = time.perf_counter()
    deadline = t0 + 60.0
    for start in range(0, n, batch):
        await pub.publish_many([("bench.s", payload)] * min(batch, n - start))
        await asyncio.sleep(0)
        got += len(sub.drain())
    while got < n and time.perf_counter() < deadline:
        await sub.next_msg(timeout=5.0)
        got += 1 + len(sub.drain())
    if got < n:
        raise SystemExit(f"only {got} of {n} messages arrived")
    return n / (time.perf_counter() - t0)


async def throughput(n: int, size: int, batch: int) -> tuple[float, float]:
    """(NatsBus msgs/s, MemoryBus msgs/s), queues large enough that nothing drops."""
    mem = MemoryBus(maxsize=n)
    mem_rate = await pump(
        mem.connect("p"), await mem.connect("r").subscribe("bench.s"), n, size, batch
    )
    with tempfile.TemporaryDirectory() as tmp, NatsServers(tmp, servers=1) as servers:
        pub = await connect_nats(servers.urls, name="p")
        rx = await connect_nats(servers.urls, name="r", maxsize=n)
        try:
            nats_rate = await pump(pub, await rx.subscribe("bench.s"), n, size, batch)
        finally:
            await pub.aclose()
            await rx.aclose()
    return nats_rate, mem_rate


async def failover_once() -> float:
    """Seconds from kill -9 of the publisher's server to the first later message received."""
    with tempfile.TemporaryDirectory() as tmp, NatsServers(tmp, servers=3) as servers:
        pub = await connect_nats(servers.urls, name="p")
        rx = await connect_nats([servers.urls[2]], name="r")
        try:
            sub = await rx.subscribe("bench.f")
            for _ in range(500):  # interest crosses the routes within a few ms
                await pub.publish("bench.f", b"\0\0\0\0")
                if sub.drain():
                    break
                await asyncio.sleep(0.01)
            killed = time.monotonic()
            servers.kill(0)
            for seq in range(1, 5000):  # at most ~10 s
                await pub.publish("bench.f", seq.to_bytes(4, "big"))
                await asyncio.sleep(0.002)
                if any(int.from_bytes(m, "big") > 0 for m in sub.drain()):
                    return time.monotonic() - killed
            raise SystemExit("no message after the kill within 5000 sends")
        finally:
            await pub.aclose()
            await rx.aclose()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=50_000)
    p.add_argument("--size", type=int, default=200, help="bytes per message (an SSEP packet)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    nats_rate, mem_rate = await throughput(a.messages, a.size, a.batch)
    print(f"{'bus':<10}{'msgs/s':>12}")
    print(f"{'nats':<10}{nats_rate:>12,.0f}")
    print(f"{'memory':<10}{mem_rate:>12,.0f}")
    print(f"ratio nats/memory: {nats_rate / mem_rate:.3f}")
    times = [await failover_once() for _ in range(a.rounds)]
    ms = sorted(t * 1000 for t in times)
    print(
        f"kill -9 failover over {a.rounds} rounds: median {statistics.median(ms):.1f} ms, "
        f"min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
