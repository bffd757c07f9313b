"""Regenerate the example inputs shipped in this folder (deterministic; seed 7).

buried.csv   60 s at 100 Hz: unit broadband noise; from 20 s to 40 s a 5 Hz oscillation of amplitude
             1.5 lies under it (about 0.5 dB above the noise power; a 3-8 Hz band-pass lifts it out,
             so the engine collapses there and dissipates elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def buried(seed: int = 7) -> str:
    rng = np.random.default_rng(seed)
    dt = 0.01
    t = np.arange(6000) * dt
    noise = rng.normal(size=t.size)
    envelope = np.clip(np.minimum(t - 20.0, 40.0 - t), 0.0, 1.0)  # 1 s ramps in and out
    x = noise + 1.5 * envelope * np.sin(2 * np.pi * 5.0 * t)
    rows = ["time,signal"] + [f"{a:.2f},{b:.5f}" for a, b in zip(t, x)]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    (HERE / "buried.csv").write_text(buried())
    print("wrote", HERE / "buried.csv")
