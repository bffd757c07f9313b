"""The witnessing layer by the seed's names: one method per level over one signed chain.

Rule: a thin layer over :class:`~becomingone.witnessing.WitnessChain`, not a second chain.
Each method appends one record at its level and returns it, exactly as
:meth:`WitnessChain.append` would (same fields, same canonical payload, same hash), so chains
written before this layer existed verify unchanged. Sans-IO like the chain: the caller stores
the records it gets, then calls :meth:`WitnessChain.commit` (or ``rollback``).

=========================  =====  ========================================================
method                     level  what it witnesses (DESIGN.md §5)
=========================  =====  ========================================================
``witness_operation(op)``  micro  one operation on the cell: an ingest batch, a rejection,
                                  a veto, a hook failure, a glyph run
``witness_transducer(n)``  meso   an integration cycle of transducer ``n`` (master,
                                  emissary)
``witness_system(event)``  macro  the system deciding: a collapse, a cluster collapse
``witness_self(report)``   meta   the log verifying itself (a self-check, an accepted break)
=========================  =====  ========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from becomingone.errors import InputError
from becomingone.witnessing.chain import VerifyReport, WitnessChain
from becomingone.witnessing.record import Level, WitnessRecord

__all__ = ["WitnessingLayer", "report_payload"]


def report_payload(report: VerifyReport) -> dict[str, Any]:
    """The payload of a META record for a verification ``report``."""
    return {
        "checked": report.checked,
        "ok": report.ok,
        "first_bad": report.first_bad,
        "reason": report.reason,
    }


class WitnessingLayer:
    """The four witnessing levels of a cell, by the seed's names (seed 002 §10).

    Examples
    --------
    >>> from becomingone.keys import NodeKey
    >>> from becomingone.witnessing import WitnessChain, verify
    >>> key = NodeKey.from_seed(b"k" * 32)
    >>> layer = WitnessingLayer(WitnessChain(key))
    >>> op = layer.witness_operation("ingest", {"n": 50}, now=1.0)
    >>> cycle = layer.witness_transducer("emissary", {"cycle": 3, "coherence": 0.99}, now=1.0)
    >>> cycle.level, cycle.kind, cycle.payload
    ('meso', 'cycle', '{"coherence":0.99,"cycle":3,"transducer":"emissary"}')
    >>> collapse = layer.witness_system("collapse", {"coherence": 0.97}, now=1.0)
    >>> report = verify([op, cycle, collapse], key.public_bytes)
    >>> meta = layer.witness_self(report, now=2.0)
    >>> [r.level for r in (op, cycle, collapse, meta)], meta.data()["ok"], layer.chain.count
    (['micro', 'meso', 'macro', 'meta'], True, 4)
    """

    def __init__(self, chain: WitnessChain) -> None:
        self.chain = chain

    def witness_operation(
        self, op: str, payload: Mapping[str, Any] | None = None, *, now: float
    ) -> WitnessRecord:
        """MICRO: operation ``op`` (the record's kind: ``ingest``, ``input.rejected``, …)."""
        return self.record(Level.MICRO, op, payload or {}, now=now)

    def witness_transducer(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        now: float,
        kind: str = "cycle",
    ) -> WitnessRecord:
        """MESO: an integration cycle of transducer ``name`` (``payload["transducer"]``)."""
        given = dict(payload or {})
        if given.get("transducer", name) != name:
            raise InputError("payload", f"names transducer {given['transducer']!r}, not {name!r}")
        return self.record(Level.MESO, kind, {**given, "transducer": name}, now=now)

    def witness_system(
        self, event: str = "collapse", payload: Mapping[str, Any] | None = None, *, now: float
    ) -> WitnessRecord:
        """MACRO: the system's decision ``event`` (``collapse``, ``cluster.collapse``)."""
        return self.record(Level.MACRO, event, payload or {}, now=now)

    def witness_self(
        self,
        report: VerifyReport | Mapping[str, Any],
        *,
        now: float,
        kind: str = "verify",
    ) -> WitnessRecord:
        """META: the log verifying itself: a ``report`` (its checked, ok, first_bad and reason)
        or a payload (``chain.break_accepted`` names the break it accepted)."""
        payload = report_payload(report) if isinstance(report, VerifyReport) else report
        return self.record(Level.META, kind, payload, now=now)

    def record(
        self, level: Level, kind: str, payload: Mapping[str, Any], *, now: float
    ) -> WitnessRecord:
        """Any record at ``level``: the one write path the four names share (drivers use it
        for their own events, such as glyph runs, with the level those events have)."""
        if not isinstance(kind, str) or not kind:
            raise InputError("kind", f"must be a non-empty string, got {kind!r}")
        return self.chain.append(level, kind, payload, now=now)
