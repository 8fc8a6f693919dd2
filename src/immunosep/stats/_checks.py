"""Input checks shared by the statistics functions: bad input raises ImmunoSepError saying what to fix."""

from __future__ import annotations

import math
from numbers import Integral

from immunosep.errors import ImmunoSepError

MAX_COUNT = 10**9
"""Largest number of patients in one group (a billion): far above any trial, and below where the exact
tests' integer arithmetic (int64 in numpy and scipy) would overflow or their enumeration would not end."""


def check_count(x: object, n: object, label: str = "count") -> tuple[int, int]:
    """Validate ``x`` events out of ``n``: non-negative integers with ``0 <= x <= n`` and ``n > 0``."""
    for value, what in ((x, "events"), (n, "total")):
        if isinstance(value, bool) or not isinstance(value, Integral | float):
            raise ImmunoSepError(f"{label}: {what} must be a whole number, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise ImmunoSepError(f"{label}: {what} must be a whole number, got {value!r}")
        if value < 0:
            raise ImmunoSepError(f"{label}: {what} must not be negative, got {value}")
        if int(value) > MAX_COUNT:
            raise ImmunoSepError(
                f"{label}: {what} {value} is more than {MAX_COUNT:,} patients; check the number"
            )
    xi, ni = int(x), int(n)  # type: ignore[call-overload]
    if ni == 0:
        raise ImmunoSepError(f"{label}: the total must be at least 1")
    if xi > ni:
        raise ImmunoSepError(f"{label}: {xi} events is more than the total {ni}; give events/total")
    return xi, ni


def check_probability(value: float, name: str) -> float:
    """A probability strictly between 0 and 1 (alpha, power, a proportion to plan for)."""
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value < 1:
        raise ImmunoSepError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return float(value)


def check_conf_level(conf_level: float) -> float:
    """Confidence level in (0, 1), e.g. 0.95."""
    return check_probability(conf_level, "conf_level")
