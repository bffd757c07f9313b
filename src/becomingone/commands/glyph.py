"""``becomingone glyph submit|list|cancel|top``: the glyphs of a running cluster, through its API.

Rule: argument checks, then :class:`~becomingone.api.CellClient` calls and printing. The cluster
is one started with ``becomingone cluster --cells full --serve PORT`` (``--data-dir D`` keeps
its write tokens); ``submit`` and ``cancel`` send the token in ``BECOMINGONE_TOKEN``. ``top``
follows the ``cluster.tick`` stream: glyphs, energy, fires and the latest value per cell, and
the migrations so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from becomingone.commands._api import DEFAULT_URL, add_url_arguments, api_client
from becomingone.errors import InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["register", "top_table"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``glyph`` with ``submit``, ``list``, ``cancel`` and ``top``."""
    p = sub.add_parser("glyph", help="submit, list, cancel or watch a running cluster's glyphs")
    inner = p.add_subparsers(dest="glyph_command", metavar="ACTION")
    inner.required = True
    q = inner.add_parser("submit", help="run a new glyph on the cluster (least-loaded cell)")
    q.add_argument("kind", help="handler kind: probe, command, python, ...")
    q.add_argument(
        "--payload", default="{}", help='JSON object for the handler, e.g. {"probe": "loadavg"}'
    )
    q.add_argument("--theta", type=float, default=0.0, help="phase it fires at, cycles [0, 1)")
    q.add_argument("--energy", type=float, default=100.0, help="work it may spend (default 100)")
    q.add_argument("--lifetime", type=int, default=1000, help="cycles it lives (default 1000)")
    q.add_argument("--kappa", type=float, default=0.0, help="strictness κ (default 0)")
    q.add_argument("--id", help="its id (default: drawn)")
    q.add_argument("--cell", help="the owning cell (default: the least loaded)")
    q.set_defaults(handler=_submit)
    q = inner.add_parser("list", help="every glyph with its owner")
    q.set_defaults(handler=_list)
    q = inner.add_parser("cancel", help="end a glyph on its owner (witnessed)")
    q.add_argument("glyph_id", metavar="ID")
    q.set_defaults(handler=_cancel)
    q = inner.add_parser("top", help="live view: glyphs, energy and fires per cell, migrations")
    q.add_argument("--duration", type=float, help="stop after S seconds (default: until ^C)")
    q.set_defaults(handler=_top)
    for q in inner.choices.values():
        add_url_arguments(q, default=DEFAULT_URL)
        q.add_argument("--json", action="store_true", help="machine-readable output")


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("--payload", f"not JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(value, dict):
        raise InputError("--payload", f"must be a JSON object, got {type(value).__name__}")
    return value


def _line(g: Mapping[str, Any]) -> str:
    k = g.get("kairos")  # a probe's self-observation stream on its owner
    return (
        f"{g['id']:<16} {g['kind']:<8} {g['owner']:<10} θ {g['theta']:.3f}  "
        f"energy {g['energy']:<10.4g} lifetime {g['lifetime']:<7} "
        f"coherence {g['coherence']:.3f}  {g['state']}"
        + (f"  |T|² {k['coherence']:.3f} ({k['samples']} readings)" if k else "")
        + ("  *this node" if g.get("mine") else "")
    )


def _submit(args: argparse.Namespace) -> int:
    fields = {
        "payload": _payload(args.payload),
        "theta": args.theta,
        "energy": args.energy,
        "lifetime": args.lifetime,
        "kappa": args.kappa,
        "id": args.id,
    }
    with api_client(args.url, args.ca) as client:
        glyph = client.submit_glyph(args.kind, cell=args.cell, **fields)
    print(_written("submitted", glyph, args.json))
    return 0


def _written(done: str, answer: BaseModel, as_json: bool) -> str:
    """What a submit or cancel did: the glyph, or the proposal it became (AUTONOMOUS)."""
    from becomingone.api.schemas import ProposalPublic

    if as_json:
        return answer.model_dump_json()
    if isinstance(answer, ProposalPublic):
        return (
            f"proposed {answer.id} ({answer.kind}): the cluster is AUTONOMOUS, its Validators "
            f"decide ({answer.needed} of {len(answer.eligible)} yes needed)"
        )
    row = answer.model_dump()
    if row.get("state") == "ended":
        done = f"had already ended ({row.get('reason')})"
    return f"{done} {_line(row)}"


def _list(args: argparse.Namespace) -> int:
    with api_client(args.url, args.ca) as client:
        listing = client.glyphs()
    if args.json:
        print(listing.model_dump_json())
    else:
        for g in listing.glyphs:
            print(_line(g.model_dump()))
        print(f"{listing.count} glyphs")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with api_client(args.url, args.ca) as client:
        glyph = client.cancel_glyph(args.glyph_id)
    print(_written("cancelled", glyph, args.json))
    return 0


def top_table(frame: Mapping[str, Any]) -> Table:
    """The ``glyph top`` view of one ``cluster.tick`` frame."""
    migrations = frame.get("migrations") or {}
    title = (
        f"tick {frame['tick']} · C {frame['c_cluster']:.3f} {frame['band']} · "
        f"migrations {migrations.get('migrations', 0)}"
    )
    table = Table(title=title)
    for column in ("cell", "glyphs", "energy", "fires", "failed", "ended", "value", "|T|²"):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for m in frame["members"]:
        g = m.get("glyphs") or {}
        value, kairos = g.get("value"), g.get("kairos")
        table.add_row(
            m["name"],
            str(g.get("glyphs", "-")),
            f"{g.get('energy', 0.0):.4g}",
            str(g.get("fires", "-")),
            str(g.get("failed", "-")),
            str(g.get("ended", "-")),
            "-" if value is None else f"{value:.4g}",
            "-" if kairos is None else f"{kairos:.3f}",
        )
    return table


def _top(args: argparse.Namespace) -> int:
    if args.duration is not None and not args.duration > 0:
        raise InputError("--duration", f"must be > 0 seconds, got {args.duration}")
    with api_client(args.url, args.ca) as client:
        now = client.cluster()  # a clear error now if nothing serves a cluster there
        since = now.frame.tick - 1 if now.frame is not None else None
        with _view(args.json) as show:
            last = asyncio.run(_follow(client, since, args.duration, show))
    if last is not None and not args.json and not Console().is_terminal:
        Console().print(top_table(last))
    return 0


@contextlib.contextmanager
def _view(as_json: bool) -> Iterator[Any]:
    """Where frames go: JSON lines, a live table on a terminal, or nowhere until the end."""
    if as_json:

        def emit(frame: Mapping[str, Any]) -> None:
            cells = {m["name"]: m.get("glyphs") for m in frame["members"]}
            row = {k: frame.get(k) for k in ("tick", "band", "c_cluster", "migrations")}
            print(json.dumps(row | {"cells": cells}), flush=True)

        yield emit
    elif Console().is_terminal:
        with Live(refresh_per_second=4) as live:
            yield lambda frame: live.update(top_table(frame))
    else:
        yield lambda frame: None


async def _follow(
    client: Any, since: int | None, duration: float | None, show: Any
) -> Mapping[str, Any] | None:
    """Show every frame after tick ``since`` until ``duration`` or ^C."""
    end = None if duration is None else time.monotonic() + duration
    last: Mapping[str, Any] | None = None
    stream = client.cluster_events(["cluster.tick"], since=since, reconnects=3)
    try:
        while end is None or time.monotonic() < end:
            left = None if end is None else max(0.0, end - time.monotonic())
            try:
                message = await asyncio.wait_for(anext(stream), left)
            except (TimeoutError, StopAsyncIteration):
                break
            if message["type"] == "cluster.tick":
                last = message["data"]
                show(last)
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        await stream.aclose()
    return last
