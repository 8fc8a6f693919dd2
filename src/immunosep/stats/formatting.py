"""Journal-style number formatting (JAMA/AMA style): P ``.002``, ``<.001``, ``.34``; percent 1 decimal."""

from __future__ import annotations

import math


def format_p(p: float) -> str:
    """P without a leading zero: 3 decimals below .01, 2 decimals otherwise; ``<.001`` and ``>.99`` at the ends."""
    if not math.isfinite(p) or p < 0 or p > 1:
        return "NA"
    if p < 0.001:
        return "<.001"
    if p > 0.99:
        return ">.99"
    text = f"{p:.3f}" if p < 0.01 else f"{p:.2f}"
    if text in ("0.010",):  # 0.00995..0.01 rounds up into the 2-decimal range
        text = "0.01"
    return text[1:] if text.startswith("0") else text


def format_pct(fraction: float, decimals: int = 1) -> str:
    """A fraction (0.172) as a percentage with one decimal (``17.2``), without the % sign."""
    return f"{100 * fraction:.{decimals}f}" if math.isfinite(fraction) else "NA"


def format_number(value: float, decimals: int = 2) -> str:
    """A ratio or any other number to ``decimals`` places; infinities and NaN spelled out."""
    if math.isnan(value):
        return "NA"
    if math.isinf(value):
        return "infinity" if value > 0 else "-infinity"
    return f"{value:.{decimals}f}"


def format_ci(low: float, high: float, decimals: int = 1) -> str:
    """A confidence interval as ``6.8 to 27.2`` (the word "to" avoids the ambiguity of a hyphen)."""
    return f"{format_number(low, decimals)} to {format_number(high, decimals)}"
