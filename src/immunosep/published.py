"""The published figures of the ImmunoSep trial, as printed (JAMA 2025, doi:10.1001/jama.2025.24175).

One home for every published number: the package's data file ``immunosep/data/immunosep_published.json``
(the figures as printed in the paper and its supplement). ``immunosep reproduce``, the report and the
calibration targets of ``simulate/`` read them here instead of retyping them. Imports nothing of ours, so
every layer may use it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _load() -> dict[str, Any]:
    text = resources.files("immunosep").joinpath("data/immunosep_published.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def published_reference() -> dict[str, Any]:
    """The published figures bundled with the package (a fresh copy: callers may not change the source)."""
    return copy.deepcopy(_load())


def counts(*path: str) -> dict[str, tuple[int, int]]:
    """``{"precision": (events, n), "placebo": (events, n)}`` at ``path`` of the published figures.

    Example: ``counts("table2_expected_statistics", "primary_sofa_d9")`` gives ``(46, 131)`` and ``(26, 145)``.
    """
    node: Any = _load()
    for key in path:
        node = node[key]
    return {arm: (int(node[arm][0]), int(node[arm][1])) for arm in ("precision", "placebo")}
