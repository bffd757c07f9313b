"""One router module per resource (choir, node, coherence, signals, witness, resonance, events,
cluster, glyphs, partifacts, metrics) and the dashboard (ui).

Rule: handlers are short; access and shared objects come from :mod:`becomingone.api.deps`;
every status a route can answer is listed in its ``responses`` (a test checks the schema).
"""

from becomingone.api.routers import (
    choir,
    cluster,
    coherence,
    events,
    glyphs,
    metrics,
    node,
    partifacts,
    resonance,
    signals,
    ui,
    witness,
)

__all__ = [
    "choir",
    "cluster",
    "coherence",
    "events",
    "glyphs",
    "metrics",
    "node",
    "partifacts",
    "resonance",
    "signals",
    "ui",
    "witness",
]
