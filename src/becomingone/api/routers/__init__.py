"""One router module per resource (node, coherence, signals, witness, events, cluster, glyphs,
metrics).

Rule: handlers are short; access and shared objects come from :mod:`becomingone.api.deps`;
every status a route can answer is listed in its ``responses`` (a test checks the schema).
"""

from becomingone.api.routers import (
    cluster,
    coherence,
    events,
    glyphs,
    metrics,
    node,
    signals,
    witness,
)

__all__ = ["cluster", "coherence", "events", "glyphs", "metrics", "node", "signals", "witness"]
