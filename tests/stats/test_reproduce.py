"""Reproduction of the published ImmunoSep statistics from the published counts (JAMA 2025)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from immunosep.reproduce import EXPLAINED, MATCH, NOT_RECOMPUTABLE, RECOMPUTED, reproduce_published
from immunosep.stats import format_p

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


def _pct_ci(v):
    return f"{100 * v[0]:.1f} ({100 * v[1]:.1f} to {100 * v[2]:.1f})"


def _ratio_ci(v):
    return f"{v[0]:.2f} ({v[1]:.2f} to {v[2]:.2f})"


def test_every_recomputed_number_equals_r_printed_the_same_way(r_reference):
    """validation/published.R recomputes the same statistics in R from the bundled published counts."""
    ref = r_reference("published")
    prim = rows_by("Table 2: primary")
    d, o = ref["binary"]["primary"]["difference"], ref["binary"]["primary"]["odds_ratio"]
    assert [prim[k].recomputed for k in ("difference, % (precision - placebo)", "difference 95% CI, lower",
                                         "difference 95% CI, upper")] == [f"{100 * v:.1f}" for v in d]  # fmt: skip
    assert [
        prim[k].recomputed for k in ("odds ratio", "odds ratio 95% CI, lower", "odds ratio 95% CI, upper")
    ] == [f"{v:.2f}" for v in o]
    assert prim["P"].recomputed == format_p(ref["binary"]["primary"]["fisher_p"])
    mort = rows_by("Table 2: 28-day")
    d28 = ref["binary"]["mortality_28d_placebo_minus_precision"]["difference"]
    assert mort["difference, % (placebo - precision)"].recomputed == f"{100 * d28[0]:.1f}"
    assert (
        mort["odds ratio (precision vs placebo)"].recomputed
        == f"{ref['binary']['mortality_28d']['odds_ratio'][0]:.2f}"
    )
    assert mort["P"].recomputed == format_p(ref["binary"]["mortality_28d"]["fisher_p"])
    for section, key in (("90-day", "mortality_90d"), ("SOFA decrease by day 15", "sofa_d15_decrease"),
                         ("SIDF", "sidf_reversal")):  # fmt: skip
        rows = rows_by(section)
        assert rows["difference, % (95% CI)"].recomputed == _pct_ci(ref["binary"][key]["difference"])
        assert rows["odds ratio (95% CI)"].recomputed == _ratio_ci(ref["binary"][key]["odds_ratio"])
        assert rows["P"].recomputed == format_p(ref["binary"][key]["fisher_p"])
    strata = rows_by("Primary endpoint by stratum")
    mh = ref["mh"]
    assert strata["Mantel-Haenszel OR over strata (95% CI)"].recomputed == _ratio_ci(
        [mh["odds_ratio"], *mh["ci"]]
    )
    ordinal = next(iter(rows_by("Infection state").values()))
    po = ref["ordinal"]
    assert ordinal.recomputed == f"{_ratio_ci([po['odds_ratio'], *po['ci']])}; P = {format_p(po['p'])}"
    t3 = [r for r in ROWS if r.section.startswith("Table 3")]
    assert len(t3) == len(ref["table3_fisher_p"])
    for row, (key, p) in zip(t3, ref["table3_fisher_p"].items(), strict=True):
        term, relation = key.split(":")
        assert row.statistic == f"{term.replace('_', ' ')}, {relation}"
        assert row.recomputed.endswith(f"P = {format_p(p)}")
