"""Names of the events a cell fires to its hooks: the one definition config and runtime share.

Rule: a hook event name exists iff it is a member of :class:`HookEvent`; configuration
validation (``becomingone.hooks``) and the hook registry both ask :func:`parse_hook_event`, so
the two can never disagree. Each event also has a ``before_<name>`` variant that may veto.
"""

from __future__ import annotations

import enum

from becomingone.errors import InputError

__all__ = ["BEFORE", "HookEvent", "parse_hook_event"]

#: Prefix of the vetoing variant of an event (``before_collapse``).
BEFORE = "before_"


class HookEvent(enum.StrEnum):
    """Every event a cell fires to its hooks (the value is the name used in config).

    >>> HookEvent("signal.received") is HookEvent.SIGNAL_RECEIVED
    True
    """

    CLUSTER_COLLAPSE = "cluster.collapse"  #: |T_global|² crossed I_c (mesh synchronisation)
    COLLAPSE = "collapse"
    DISSIPATE = "dissipate"
    GLYPH_FIRED = "glyph.fired"  #: a glyph's run completed (ok or failed), witnessed
    GLYPH_MIGRATE = "glyph.migrate"  #: a glyph is offered to this cell (``before_`` vetoes it)
    GLYPH_MIGRATED = "glyph.migrated"  #: a migrated glyph now runs on this cell, witnessed
    PROPOSAL_DECIDED = "proposal.decided"  #: a proposal of this cell passed, failed or expired
    PROPOSAL_OPENED = "proposal.opened"  #: this cell put a proposal to the Validators
    REALIGN = "realign"
    ROLE_CHANGED = "role.changed"  #: this cell holds a new role (partifacts)
    ROLE_TRANSFER = "role.transfer"  #: a role was handed to this cell (ROLE_TRANSFER)
    SIGNAL_RECEIVED = "signal.received"
    WITNESS = "witness"


def parse_hook_event(name: str) -> tuple[HookEvent, bool]:
    """The event a hook key names and whether it is the ``before_`` (vetoing) variant.

    Raises ``InputError`` (parameter ``event``) listing the known names.

    >>> parse_hook_event("before_collapse")
    (<HookEvent.COLLAPSE: 'collapse'>, True)
    """
    base = name.removeprefix(BEFORE)
    try:
        return HookEvent(base), base != name
    except ValueError:
        known = ", ".join(e.value for e in HookEvent)
        raise InputError(
            "event", f"unknown hook event {name!r}; known: {known} (or {BEFORE}*)"
        ) from None
