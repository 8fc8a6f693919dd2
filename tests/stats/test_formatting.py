"""Journal style (JAMA/AMA manual of style, 11th ed., 19.5: P values; percentages)."""

from __future__ import annotations

import math

import pytest

from immunosep.stats.formatting import format_ci, format_number, format_p, format_pct


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0015176, ".002"),
        (0.0004, "<.001"),
        (0.001, ".001"),
        (0.3349, ".33"),
        (0.3451, ".35"),
        (0.0099, ".01"),
        (0.0094, ".009"),
        (0.00996, ".01"),
        (0.049, ".05"),  # JAMA: 2 decimals unless P < .01
        (0.995, ">.99"),
        (0.99, ".99"),
        (1.0, ">.99"),
        (math.nan, "NA"),
    ],
)
@pytest.mark.requirement("STAT-06")
def test_format_p(p, text):
    assert format_p(p) == text


def test_percent_ci_and_numbers():
    assert format_pct(0.1718347) == "17.2"
    assert format_ci(6.7878, 27.2417) == "6.8 to 27.2"
    assert format_ci(-5.58, 17.61) == "-5.6 to 17.6"
    assert format_number(2.476923) == "2.48"
    assert format_number(math.inf) == "infinity"
