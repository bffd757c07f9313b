"""Asyncio drivers: thin loops that move bytes and time for the sans-IO protocol objects.

Rule: no protocol decisions here; see :mod:`becomingone.sync`.
"""

from becomingone.runtime.cluster import (
    ClusterMember,
    ClusterSummary,
    LocalCluster,
    TickReport,
    build_supervisors,
    subject_for,
)

__all__ = [
    "ClusterMember",
    "ClusterSummary",
    "LocalCluster",
    "TickReport",
    "build_supervisors",
    "subject_for",
]
