"""Start-up cost of a process: what ``import becomingone.cli`` pulls in.

Every ``becomingone node`` process pays its imports; ``scipy.signal`` alone costs about as
much CPU as the rest of the package together, and only encoding a real signal or computing a
resonance map needs it, so it is imported there (``core.encoders``, ``core.resmap``).
"""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_does_not_import_scipy_signal() -> None:
    """A fresh interpreter that imports the CLI has not loaded ``scipy.signal`` (a node
    process never needs it), while encoding a real signal still works and loads it."""
    code = (
        "import sys, numpy as np, becomingone.cli\n"
        "print('scipy.signal' in sys.modules)\n"
        "from becomingone.core.encoders import phase_from_signal\n"
        "phase_from_signal(np.cos(np.arange(64) * 0.3), 0.01, band=(2.0, 10.0))\n"
        "print('scipy.signal' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "True"]
