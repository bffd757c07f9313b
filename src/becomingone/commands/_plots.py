"""Figures for the cluster and simulate commands (matplotlib, Agg backend; writes PNG files).

Rule: plotting only; the numbers come from the library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from becomingone.errors import StorageError

BANDS = ((0.30, "FORMING"), (0.60, "SYMBOLIC"), (0.75, "SHARED"))


def save_phase_and_timeline(
    path: Path,
    thetas: Sequence[float],
    c_series: Sequence[float],
    title: str,
    x_label: str = "tick",
    r_series: Sequence[float] | None = None,
) -> None:
    """A phase circle of ``thetas`` (cycles) beside the C timeline with band limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 4.5))
    ax0 = fig.add_subplot(1, 2, 1, projection="polar")
    angles = [2 * math.pi * t for t in thetas]
    ax0.scatter(angles, [1.0] * len(angles), s=12 if len(angles) < 200 else 2, alpha=0.7)
    ax0.set_ylim(0, 1.1)
    ax0.set_yticks([])
    ax0.set_title("phases (final)")
    ax1 = fig.add_subplot(1, 2, 2)
    ax1.plot(range(len(c_series)), c_series, label="C_cluster")
    if r_series is not None:
        ax1.plot(range(len(r_series)), r_series, label="R", alpha=0.6)
    for level, name in BANDS:
        ax1.axhline(level, color="grey", lw=0.7, ls="--")
        ax1.text(0, level + 0.01, name, fontsize=7, color="grey")
    ax1.set_ylim(0, 1.02)
    ax1.set_xlabel(x_label)
    ax1.legend(loc="lower right")
    ax1.set_title(title)
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise StorageError(f"cannot write plot {path}: {exc}") from exc
    finally:
        plt.close(fig)
