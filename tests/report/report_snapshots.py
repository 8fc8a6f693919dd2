"""Snapshot comparison for the report tests (a uniquely named module, importable from the test files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"


def check_snapshot(name: str, text: str) -> None:
    """Compare with ``snapshots/<name>``; ``IMMUNOSEP_UPDATE_SNAPSHOTS=1`` rewrites it (review the diff)."""
    path = SNAPSHOTS / name
    if os.environ.get("IMMUNOSEP_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(text, encoding="utf-8")
        if os.environ.get("IMMUNOSEP_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"snapshot {name} did not exist and was written: review and commit it")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed; rerun with IMMUNOSEP_UPDATE_SNAPSHOTS=1 if intended"
    )
