"""Figures for the commands (matplotlib, Agg backend), and the check of a ``--plot`` path.

Rule: plotting only; the numbers come from the library. A plot path is checked before a
command runs (``check_plot_path``), so a long run never ends in a failed write.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

from becomingone.errors import InputError, StorageError

#: File types ``--plot`` writes (matplotlib picks the format from the suffix).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
BANDS = ((0.30, "FORMING"), (0.60, "SYMBOLIC"), (0.75, "SHARED"))


def check_plot_path(path: str | Path, suffixes: Sequence[str] = PLOT_SUFFIXES) -> Path:
    """The plot path, once it has a known suffix and a writable place; nothing is created.

    Bad paths (empty, unknown suffix, a directory, a path under a regular file) are an
    ``InputError`` naming ``plot``; a directory that cannot be written is a ``StorageError``.
    """
    if not str(path):
        raise InputError("plot", "must be a file path, got ''")
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise InputError(
            "plot", f"{target}: unsupported extension {target.suffix!r}; use {', '.join(suffixes)}"
        )
    if target.is_dir():
        raise InputError("plot", f"{target} is a directory; name a file inside it")
    place = target.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise InputError("plot", f"{target}: {place} is a file, not a directory")
    try:
        if target.exists():
            with target.open("ab"):
                pass
        else:
            with tempfile.TemporaryFile(dir=place):
                pass
    except OSError as exc:
        raise StorageError(f"cannot write plot {target}: {exc.strerror or exc}") from exc
    return target


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
