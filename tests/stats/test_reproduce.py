"""Reproduction of the published ImmunoSep statistics from the published counts (JAMA 2025)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from immunosep.reproduce import EXPLAINED, MATCH, NOT_RECOMPUTABLE, RECOMPUTED, reproduce_published

SHARED = Path("/work/shared/reference/immunosep_published.json")


ROWS = reproduce_published()


def rows_by(section_start: str):
    return {r.statistic: r for r in ROWS if r.section.startswith(section_start)}


def test_table2_primary_rows_match_at_printed_precision():
    rows = rows_by("Table 2: primary")
    printed = [r for r in rows.values() if r.published]
    assert len(printed) == 7
    assert all(r.status == MATCH and r.published == r.recomputed for r in printed), printed


def test_28_day_mortality_matches_except_the_explained_p():
    rows = rows_by("Table 2: 28-day")
    p = rows["P"]
    assert (p.published, p.recomputed, p.status) == (".34", ".33", EXPLAINED)
    assert "double rounding" in p.note and "0.3349" in p.note
    others = [r for name, r in rows.items() if name != "P" and r.published]
    assert len(others) == 6 and all(r.status == MATCH for r in others)


def test_sample_size_117_per_group_is_reproduced_and_280_explained():
    rows = rows_by("Sample size")
    assert rows["per group"].status == MATCH and rows["per group"].recomputed == "117"
    total = rows["total planned (15% dropout)"]
    assert total.status == EXPLAINED and "280" in total.note and "119 per group" in total.note


def test_every_row_has_a_known_status_and_mismatches_are_explained():
    rows = ROWS
    assert {r.status for r in rows} <= {MATCH, EXPLAINED, RECOMPUTED, NOT_RECOMPUTABLE}
    assert all(r.note for r in rows if r.status in (EXPLAINED, NOT_RECOMPUTABLE))
    sections = {r.section for r in rows}
    for expected in (
        "90-day mortality",
        "SOFA decrease by day 15",
        "SIDF reversal",
        "Infection state on day 15",
    ):
        assert expected in sections
    assert sum(r.section.startswith("Table 3") for r in rows) == 27  # 4 terms x 2 + 19


def test_bundled_reference_is_the_shared_one():
    bundled = json.loads(resources.files("immunosep").joinpath("data/immunosep_published.json").read_text())
    if SHARED.exists():
        assert bundled == json.loads(SHARED.read_text())
    assert bundled["table2_expected_statistics"]["primary_sofa_d9"]["p"] == 0.002
