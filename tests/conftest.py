"""Shared pytest configuration for the whole suite.

Rule: only settings every layer agrees on live here (Hypothesis profiles); fixtures belong in
the conftest of the layer that uses them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Numeric and I/O tests have run times that vary with the shared machine's load: no deadlines.
settings.register_profile(
    "default", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
# More examples for a nightly or local deep run: HYPOTHESIS_PROFILE=thorough.
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
