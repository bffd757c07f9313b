"""Regenerate the example inputs shipped in this folder (deterministic; seed 7).

buried.csv   60 s at 100 Hz: unit broadband noise; from 20 s to 40 s a 5 Hz oscillation of amplitude
             1.5 lies under it (about 0.5 dB above the noise power; a 3-8 Hz band-pass lifts it out,
             so the engine collapses there and dissipates elsewhere).
chat.txt     48 messages: small talk that wanders, then 24 messages that alternate between two
             lines of a deployment discussion (a steady back-and-forth), then scattered remarks.
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


WANDER = [
    "the weather is cold today",
    "did you see the game last night",
    "i need to buy groceries",
    "my cat knocked over a vase",
    "the train was late again",
    "what should we cook for dinner",
]
SCATTER = [
    "bananas are yellow",
    "quantum computers are noisy",
    "my shoes are wet",
    "jazz was playing in the cafe",
    "taxes are due in april",
    "the moon looks huge tonight",
]
TURNS = ["we should deploy the cluster on friday", "the phase lock converged in two hundred ticks"]


def chat() -> str:
    lines = WANDER * 2 + [TURNS[i % 2] for i in range(24)] + SCATTER * 2
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (HERE / "buried.csv").write_text(buried())
    (HERE / "chat.txt").write_text(chat())
    print("wrote", HERE / "buried.csv", HERE / "chat.txt")
