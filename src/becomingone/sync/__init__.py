"""Sync layer: sans-IO protocol machines for phase lock (CPS, SSEP packets, topologies, stability).

Rule: no clocks and no I/O here; time arrives as ``now`` and outgoing bytes are returned.
"""

from becomingone.sync.topology import Plan, Topology, fractal_levels, is_twisted, winding_number

__all__ = [
    "Plan",
    "Topology",
    "fractal_levels",
    "is_twisted",
    "winding_number",
]
