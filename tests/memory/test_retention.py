"""Tests of the plain Retention value the memory layer takes instead of a config section."""

from __future__ import annotations

import pytest

from becomingone.errors import InputError
from becomingone.memory import Retention


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"raw_seconds": 0}, "raw_seconds"),
        ({"coarse_step": float("nan")}, "coarse_step"),
        ({"coarse_seconds": True}, "coarse_seconds"),
        ({"signatures": 0}, "signatures"),
        ({"signatures": 2.0}, "signatures"),
        ({"raw_seconds": 10, "coarse_step": 60}, "coarse_step"),
    ],
)
def test_bad_retention_names_the_parameter(kwargs: dict[str, object], parameter: str) -> None:
    """A bad field raises InputError naming that field."""
    with pytest.raises(InputError) as err:
        Retention(**kwargs)  # type: ignore[arg-type]
    assert err.value.parameter == parameter
