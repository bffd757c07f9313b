"""``becomingone propose | proposals | vote``: the consensus of a running ``cluster --roles``,
through its API.

Rule: argument checks, then :class:`~becomingone.api.CellClient` calls and printing. The cluster
is one started with ``becomingone cluster --roles --serve PORT --data-dir D`` (its write tokens
are kept in ``D``); writes send the token in ``BECOMINGONE_TOKEN``. ``vote --as CELL`` votes
as that cell: its key signs the vote inside the cluster process (every cell lives there), and
the consensus refuses a cell that is not an eligible Validator, a second vote and a late one.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from typing import Any

from becomingone.commands._api import DEFAULT_URL, add_url_arguments, api_client
from becomingone.errors import InputError

__all__ = ["proposal_line", "register"]

_ID = re.compile(r"[0-9a-f]{16}")
_CELL = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``propose``, ``proposals`` and ``vote``."""
    p = sub.add_parser(
        "propose", help="put a text or a glyph to a running `cluster --roles`' Validators"
    )
    p.add_argument("text", nargs="?", metavar="TEXT", help="what to decide (a command)")
    p.add_argument("--glyph", metavar="KIND", help="propose running a glyph of this kind instead")
    p.add_argument("--payload", default="{}", help="with --glyph: JSON object for the handler")
    p.add_argument("--energy", type=float, default=100.0, help="with --glyph: work it may spend")
    p.add_argument("--lifetime", type=int, default=1000, help="with --glyph: cycles it lives")
    p.add_argument("--theta", type=float, default=0.0, help="with --glyph: phase, cycles [0, 1)")
    p.add_argument("--cell", help="with --glyph: the owning cell (default: the least loaded)")
    p.set_defaults(handler=_propose)
    p = sub.add_parser("proposals", help="the proposals of a running `cluster --roles`")
    p.add_argument("--all", action="store_true", help="also the cluster's own (roles, intents)")
    p.add_argument("--limit", type=int, default=100, help="at most this many, newest first")
    p.set_defaults(handler=_proposals)
    p = sub.add_parser("vote", help="vote yes or no on a proposal as one of the cluster's cells")
    p.add_argument("proposal_id", metavar="ID")
    p.add_argument("choice", metavar="yes|no", choices=("yes", "no"))
    p.add_argument(
        "--as", dest="cell", required=True, metavar="CELL", help="the Validator to vote as"
    )
    p.set_defaults(handler=_vote)
    for name in ("propose", "proposals", "vote"):
        q = sub.choices[name]
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


def proposal_line(p: Mapping[str, Any]) -> str:
    """One proposal: id, status, kind, yes/no against what it needs, and what it says."""
    what = p["payload"].get("what", "")
    if p["kind"] == "glyph.submit":
        glyph = p["payload"].get("glyph") or {}
        what = f"glyph {glyph.get('id')} ({glyph.get('kind')})"
    elif p["kind"] == "glyph.cancel":
        what = f"cancel glyph {p['payload'].get('glyph_id')}"
    elif p["kind"] == "roles":
        what = f"roles, term {p['payload'].get('term')}"
    line = (
        f"{p['id']}  {p['status']:<8} {p['kind']:<12} yes {p['yes']} no {p['no']} "
        f"(needs {p['needed']} of {len(p['eligible'])})  by {p['proposer']}  {what}"
    )
    executed = p.get("executed")
    if executed:
        line += f"  → {'done' if executed['ok'] else 'failed'}: {executed['detail']}"
    task = p.get("task")
    if task:  # a delegated intent or command: where it is, who ran it
        line += f"  task {task['state']} on {task['executor']}"
        if task["ok"] is False:
            line += f" ({task['result'][:80]})"
    return line


def _glyph(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from becomingone.api.schemas import GlyphCreate

    try:
        return GlyphCreate(
            kind=args.glyph,
            payload=_payload(args.payload),
            energy=args.energy,
            lifetime=args.lifetime,
            theta=args.theta,
            cell=args.cell,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"--{first['loc'][0]}", first["msg"]) from None


def _propose(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.glyph is None):
        raise InputError("TEXT", "give a text or --glyph KIND (one of them)")
    if args.text is not None and not args.text.strip():
        raise InputError("TEXT", "must not be blank")
    glyph = _glyph(args) if args.glyph is not None else None
    with api_client(args.url, args.ca) as client:
        p = client.propose(args.text, glyph=glyph)
    if args.json:
        print(p.model_dump_json())
    else:
        print(f"proposed {proposal_line(p.model_dump())}")
        print(f"deadline {p.deadline:.1f} s (cluster time); vote with: becomingone vote {p.id}")
    return 0


def _proposals(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise InputError("--limit", f"must be 1 to 1000, got {args.limit}")
    with api_client(args.url, args.ca) as client:
        listing = client.proposals(operator=not args.all, limit=args.limit)
        roles = client.roles()
    if args.json:
        print(listing.model_dump_json())
        return 0
    print(
        f"lifecycle {roles.lifecycle}  genesis {roles.genesis or '-'}  "
        f"validators {', '.join(roles.validators) or '-'}"
    )
    for p in listing.proposals:
        print(proposal_line(p.model_dump()))
    print(f"{listing.count} proposals")
    return 0


def _vote(args: argparse.Namespace) -> int:
    if not _ID.fullmatch(args.proposal_id):
        raise InputError(
            "ID", f"must be 16 hex digits (from `proposals`), got {args.proposal_id!r}"
        )
    if not _CELL.fullmatch(args.cell):
        raise InputError("--as", f"must be a cell's node id, got {args.cell!r}")
    with api_client(args.url, args.ca) as client:
        p = client.vote(args.proposal_id, args.cell, args.choice == "yes")
    if args.json:
        print(p.model_dump_json())
    else:
        print(f"voted {args.choice} as {args.cell}: {proposal_line(p.model_dump())}")
    return 0
