"""`immunosep reproduce`: every Table 2 and stratum statistic of the published trial beside its recomputation.

Published figures are read from the package's reference file (``immunosep.published``), never retyped here;
recomputed figures are compared with R (validation/published.R, validation/proportions.R,
validation/sample_size.R: run ``make validate`` to regenerate validation/reference/*.json).
"""

from __future__ import annotations

import copy
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path

import pytest

from immunosep.published import counts, published_reference
from immunosep.reproduce import (
    MATCH,
    MISMATCH,
    NOT_IN_REFERENCE,
    NOT_RECOMPUTABLE,
    STATUSES,
    as_json,
    double_rounded_p,
    logistic_profile_ci,
    reproduce_published,
    wald_shaped,
)
from immunosep.stats import format_p

#: The reference file in the repository, which the installed package must be reading.
REPO_REFERENCE = (
    Path(__file__).resolve().parents[2] / "src" / "immunosep" / "data" / "immunosep_published.json"
)
PUB = published_reference()
ROWS = reproduce_published()
BINARY = (
    "primary_sofa_d9",
    "primary_mals",
    "primary_immunoparalysis",
    "mortality_28d",
    "mortality_90d",
    "sofa_d15_decrease",
    "sidf_reversal",
)
BINARY_STATISTICS = [
    "precision, n/N (%)",
    "placebo, n/N (%)",
    "difference, % (95% CI)",
    "odds ratio (95% CI)",
    "P",
]


def rows_of(endpoint: str, rows=ROWS) -> dict:
    return {r.statistic: r for r in rows if r.endpoint == endpoint}


def ci(values, decimals: int) -> str:
    est, low, high = values
    return f"{est:.{decimals}f} ({low:.{decimals}f} to {high:.{decimals}f})"


def count(events: int, total: int) -> str:
    return f"{events}/{total} ({100 * events / total:.1f})"


# --------------------------------------------------------------------------------------- what is listed


def test_every_table2_row_and_stratum_row_is_listed_with_every_statistic():
    endpoints = list(dict.fromkeys(r.endpoint for r in ROWS))
    assert endpoints[: len(BINARY) + 2] == [*BINARY, "infection_day15", "adjusted_primary"]
    for endpoint in BINARY:
        assert list(rows_of(endpoint)) == BINARY_STATISTICS, endpoint
    levels = PUB["outcome_rates_for_calibration"]["infection_day15"]["levels"]
    assert list(rows_of("infection_day15")) == [
        *(f"{level}, {arm} n/N (%)" for level in levels for arm in ("precision", "placebo")),
        "OR of a worse state (95% CI)",
        "P",
    ]
    assert list(rows_of("adjusted_primary")) == ["adjusted odds ratio (95% CI)"]


def test_nothing_is_merely_recomputed_and_published_is_none_only_when_the_file_lacks_it():
    assert {r.status for r in ROWS} == set(STATUSES)
    for r in ROWS:
        assert (r.published is None) == (r.status == NOT_IN_REFERENCE), r
        assert r.status == MATCH or r.explanation or r.status == NOT_IN_REFERENCE, r
    # the counts of every Table 2 row are in the file, so every n/N (%) has its published figure
    assert all(r.published is not None for r in ROWS if "n/N (%)" in r.statistic)


def test_published_figures_are_those_of_the_reference_file():
    t2 = PUB["table2_expected_statistics"]
    prim, m28, adj = rows_of("primary_sofa_d9"), rows_of("mortality_28d"), rows_of("adjusted_primary")
    p = t2["primary_sofa_d9"]
    assert prim["difference, % (95% CI)"].published == ci([p["difference_pct"], *p["difference_ci95"]], 1)
    assert prim["odds ratio (95% CI)"].published == ci([p["odds_ratio"], *p["odds_ratio_ci95"]], 2)
    assert prim["P"].published == format_p(p["p"])
    m = t2["mortality_28d"]
    assert m28["difference, % (95% CI)"].published == ci(
        [m["difference_pct_placebo_minus_precision"], *m["difference_ci95"]], 1
    )
    assert m28["P"].published == format_p(m["p_printed"])
    a = PUB["adjusted_primary"]
    assert adj["adjusted odds ratio (95% CI)"].published == ci([a["odds_ratio"], *a["odds_ratio_ci95"]], 2)
    paths = {
        "primary_sofa_d9": ("table2_expected_statistics", "primary_sofa_d9"),
        "mortality_28d": ("table2_expected_statistics", "mortality_28d"),
        "mortality_90d": ("outcome_rates_for_calibration", "mortality_90d"),
        "sofa_d15_decrease": ("outcome_rates_for_calibration", "sofa_d15_decrease"),
        "sidf_reversal": ("outcome_rates_for_calibration", "sidf_reversal"),
        "primary_mals": ("outcome_rates_for_calibration", "primary_by_stratum", "mals"),
        "primary_immunoparalysis": ("outcome_rates_for_calibration", "primary_by_stratum", "immunoparalysis"),
    }
    for endpoint, path in paths.items():
        c = counts(*path)
        rows = rows_of(endpoint)
        for arm in ("precision", "placebo"):
            assert rows[f"{arm}, n/N (%)"].published == count(*c[arm])
            assert rows[f"{arm}, n/N (%)"].status == MATCH
    # what the file does not print is said so, not shown as published
    for endpoint in (
        "primary_mals",
        "primary_immunoparalysis",
        "mortality_90d",
        "sofa_d15_decrease",
        "sidf_reversal",
    ):
        for statistic in ("difference, % (95% CI)", "odds ratio (95% CI)", "P"):
            assert rows_of(endpoint)[statistic].status == NOT_IN_REFERENCE


def test_primary_endpoint_matches_at_printed_precision():
    rows = rows_of("primary_sofa_d9")
    assert all(r.status == MATCH and r.published == r.recomputed for r in rows.values())
    # the OR's note shows the printed CI is the Wald (Woolf) one: the profile interval prints differently
    assert "profile-likelihood" in rows["odds ratio (95% CI)"].note


def test_counts_are_checked_against_consort_and_the_strata():
    analysed = PUB["consort"]["analysed"]
    strata = PUB["outcome_rates_for_calibration"]["primary_by_stratum"]
    prim = rows_of("primary_sofa_d9")
    for arm in ("precision", "placebo"):
        events = sum(s[arm][0] for s in strata.values())
        assert prim[f"{arm}, n/N (%)"].recomputed == count(events, analysed[arm])
        assert (
            rows_of("mortality_90d")[f"{arm}, n/N (%)"].recomputed.split(" ")[0].endswith(f"/{analysed[arm]}")
        )
    for r in rows_of("infection_day15").values():
        if "n/N" in r.statistic:
            assert r.status == MATCH and r.recomputed.split(" ")[0].endswith(
                f"/{analysed['precision' if 'precision' in r.statistic else 'placebo']}"
            )


# --------------------------------------------------------------------------------------- mismatches


def test_every_mismatch_is_explained_by_a_computation_that_gives_the_printed_figure():
    mismatches = [r for r in ROWS if r.status == MISMATCH]
    assert {(r.endpoint, r.statistic) for r in mismatches} == {
        ("mortality_28d", "difference, % (95% CI)"),
        ("mortality_28d", "P"),
        ("sample_size", "total planned, with dropout"),
    }
    for r in mismatches:
        found = [a for a in r.alternatives if a.reproduces_published]
        assert found and all(a.value == r.published for a in found), r
        assert all(a.value != r.published for a in r.alternatives if not a.reproduces_published)


def test_28_day_p_is_the_double_rounded_fisher_p(r_reference):
    """R: fisher.test(matrix(c(57, 74, 72, 73), 2, byrow = TRUE))$p.value; chisq.test(..., correct = F/T)."""
    ref = r_reference("published")
    fisher = ref["binary"]["mortality_28d"]["fisher_p"]
    printed = format_p(PUB["table2_expected_statistics"]["mortality_28d"]["p_printed"])
    row = rows_of("mortality_28d")["P"]
    assert row.status == MISMATCH and row.published == printed
    assert row.recomputed == format_p(fisher) != printed  # Fisher, rounded once, is not the printed P
    # rounded to 3 decimals half-up, then to 2: the printed P (written out here, independent of the code)
    once = Decimal(repr(fisher)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    assert format_p(float(once.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))) == printed
    # neither chi-square test gives it
    assert printed not in {
        format_p(ref["mortality_28d_p"]["chisq"]),
        format_p(ref["mortality_28d_p"]["yates"]),
    }
    values = {a.method: a.value for a in row.alternatives}
    assert values["pearson chi-square, no continuity correction"] == format_p(ref["mortality_28d_p"]["chisq"])
    assert values["pearson chi-square with Yates continuity correction"] == format_p(
        ref["mortality_28d_p"]["yates"]
    )
    assert "rounded twice" in row.explanation


def test_28_day_difference_is_placebo_minus_precision_in_the_paper(r_reference):
    """R: Newcombe method 10 with the arms swapped (validation/published.R, mortality_28d_placebo_minus_precision)."""
    ref = r_reference("published")["binary"]
    row = rows_of("mortality_28d")["difference, % (95% CI)"]
    ours = [100 * v for v in ref["mortality_28d"]["difference"]]
    swapped = [100 * v for v in ref["mortality_28d_placebo_minus_precision"]["difference"]]
    assert row.recomputed == ci(ours, 1) != row.published
    assert ci(swapped, 1) == row.published
    assert row.alternatives[0].value == row.published and "placebo minus precision" in row.explanation
    # rounding of percentages: subtracting the printed percentages would give another figure than the paper's
    assert "rounding of percentages" in row.note


def test_planned_total_is_the_fleiss_corrected_size_not_the_exact_one(r_reference):
    """R: power.prop.test-style Fleiss 2003 eq 4.15 (normal_cc_n) and fisher.test enumeration (sample_size.R)."""
    s = PUB["design"]["sample_size_inputs"]
    ref = r_reference("sample_size")
    design = next(
        d
        for d in ref["designs"]
        if (d["p1"], d["p2"], d["power"]) == (s["p_precision"], s["p_placebo"], s["power"])
    )
    fisher = {p["n"]: p["power"] for p in ref["fisher_power_40_20"]}
    exact_n = min(
        n for n, power in fisher.items() if power >= s["power"] and fisher.get(n - 1, 0) < s["power"]
    )
    fleiss_n = math.ceil(design["normal_cc_n"])
    rows = rows_of("sample_size")
    assert rows["per group"].recomputed == str(exact_n) and rows["per group"].status == NOT_IN_REFERENCE
    total = rows["total planned, with dropout"]
    assert total.published == str(s["total_planned"])
    assert total.recomputed == str(math.ceil(round(2 * exact_n / (1 - s["dropout"]), 9)))
    fleiss = next(a for a in total.alternatives if "Fleiss" in a.method)
    assert fleiss.value == str(math.ceil(round(2 * fleiss_n / (1 - s["dropout"]), 9))) == total.published


def test_adjusted_or_is_not_recomputable_and_its_printed_ci_is_wald_shaped(r_reference):
    """R: glm(y ~ arm (+ stratum), binomial); confint.default (Wald) and confint (profile, MASS)."""
    ref = r_reference("published")["logistic"]
    row = rows_of("adjusted_primary")["adjusted odds ratio (95% CI)"]
    assert row.status == NOT_RECOMPUTABLE and "CCI" in row.explanation and "site" in row.explanation
    assert not any(a.reproduces_published for a in row.alternatives)
    values = {a.method: a.value for a in row.alternatives}
    adj, un = ref["stratum_adjusted"], ref["unadjusted"]
    assert row.recomputed == ci([adj["odds_ratio"], *adj["wald"]], 2)
    assert values["logistic regression arm + stratum from counts, profile-likelihood CI"] == ci(
        [adj["odds_ratio"], *adj["profile"]], 2
    )
    assert values["unadjusted logistic regression, profile-likelihood CI"] == ci(
        [un["odds_ratio"], *un["profile"]], 2
    )
    # Wald vs profile CI, computed: the printed interval has the shape of a Wald interval, a profile one has not
    a = PUB["adjusted_primary"]
    assert wald_shaped(a["odds_ratio"], *a["odds_ratio_ci95"])
    assert not wald_shaped(*(round(v, 2) for v in [un["odds_ratio"], *un["profile"]]))
    assert wald_shaped(*(round(v, 2) for v in [un["odds_ratio"], *un["wald"]]))
    assert "Wald vs profile CI" in row.explanation


def test_wald_shaped_on_constructed_intervals():
    b, se = math.log(2.0), 0.3
    wald = [math.exp(b), math.exp(b - 1.959964 * se), math.exp(b + 1.959964 * se)]
    assert wald_shaped(*(round(v, 2) for v in wald))
    skewed = [wald[0], wald[1] * 1.05, wald[2] * 1.05]
    assert not wald_shaped(*(round(v, 2) for v in skewed))


@pytest.mark.parametrize(
    ("p", "printed"),
    [
        (0.3349, ".34"),
        (0.3344, ".33"),
        (0.0449, ".05"),
        (0.00449, ".004"),
        (0.0004, "<.001"),
        (0.0095, ".01"),
    ],
)
def test_double_rounded_p(p, printed):
    assert double_rounded_p(p) == printed


def test_day15_row_says_the_text_figure_is_not_in_the_reference():
    rows = rows_of("sofa_d15_decrease")
    assert all(
        "not in the published reference file" in rows[f"{arm}, n/N (%)"].note
        for arm in ("precision", "placebo")
    )


# --------------------------------------------------------------------------------------- statuses follow the data


def _altered(change) -> list:
    pub = copy.deepcopy(PUB)
    change(pub)
    return reproduce_published(pub)


def test_a_count_that_disagrees_with_consort_is_a_mismatch():
    rows = _altered(lambda pub: pub["consort"]["analysed"].__setitem__("placebo", 146))
    placebo = rows_of("mortality_90d", rows)["placebo, n/N (%)"]
    assert placebo.status == MISMATCH and "CONSORT" in placebo.explanation
    assert rows_of("sidf_reversal", rows)["placebo, n/N (%)"].status == MATCH  # subset: not checked against N


def test_a_printed_p_no_method_gives_is_a_mismatch_that_says_so():
    def change(pub):
        pub["table2_expected_statistics"]["primary_sofa_d9"]["p"] = 0.2

    row = rows_of("primary_sofa_d9", _altered(change))["P"]
    assert row.status == MISMATCH and not any(a.reproduces_published for a in row.alternatives)
    assert "no 2x2 test gives" in row.explanation


def test_a_printed_profile_likelihood_ci_is_a_mismatch_explained_by_the_profile_computation(r_reference):
    """R: confint(glm(y ~ arm, binomial)) gives the profile interval the altered reference prints."""
    profile = r_reference("published")["logistic"]["unadjusted"]

    def change(pub):
        pub["table2_expected_statistics"]["primary_sofa_d9"]["odds_ratio_ci95"] = [
            round(v, 2) for v in profile["profile"]
        ]

    row = rows_of("primary_sofa_d9", _altered(change))["odds ratio (95% CI)"]
    assert row.status == MISMATCH and row.explanation.startswith("Wald vs profile CI")
    found = [a for a in row.alternatives if a.reproduces_published]
    assert [a.method for a in found] == ["logistic regression on arm, profile-likelihood CI"]


def test_a_printed_figure_equal_to_ours_is_a_match():
    # if the paper printed precision minus placebo for 28-day mortality, the row would match
    def change(pub):
        m = pub["table2_expected_statistics"]["mortality_28d"]
        m["difference_pct_placebo_minus_precision"] = -m["difference_pct_placebo_minus_precision"]
        m["difference_ci95"] = [-m["difference_ci95"][1], -m["difference_ci95"][0]]

    row = rows_of("mortality_28d", _altered(change))["difference, % (95% CI)"]
    assert row.status == MATCH and row.explanation == "" and row.alternatives == ()


# --------------------------------------------------------------------------------------- R and the reference file


def test_bundled_reference_is_the_repository_file():
    """The package reads the repository's data file (not a stale installed copy), and that file is the
    trial that CITATION.cff references."""
    assert REPO_REFERENCE.is_file(), (
        f"{REPO_REFERENCE} is missing: the published figures must be in the repository"
    )
    in_repo = json.loads(REPO_REFERENCE.read_text())
    bundled = json.loads(resources.files("immunosep").joinpath("data/immunosep_published.json").read_text())
    assert bundled == in_repo
    assert in_repo == PUB
    doi = "10.1001/jama.2025.24175"
    assert f"doi:{doi}" in in_repo["source"]
    assert f"doi: {doi}" in (REPO_REFERENCE.parents[3] / "CITATION.cff").read_text()


def _exact(endpoint: str, statistic: str) -> tuple[float, ...]:
    return rows_of(endpoint)[statistic].exact


def test_every_recomputed_number_equals_r(r_reference):
    """validation/published.R recomputes the same statistics in R from the bundled published counts."""
    ref = r_reference("published")
    for endpoint in BINARY:
        b = ref["binary"]["primary" if endpoint == "primary_sofa_d9" else endpoint]
        assert _exact(endpoint, "difference, % (95% CI)") == pytest.approx(
            [100 * v for v in b["difference"]], rel=1e-6
        )
        assert _exact(endpoint, "odds ratio (95% CI)") == pytest.approx(b["odds_ratio"], rel=1e-6)
        assert _exact(endpoint, "P")[0] == pytest.approx(b["fisher_p"], rel=1e-6)
        assert rows_of(endpoint)["P"].recomputed == format_p(b["fisher_p"])
    mh = r_reference("mantel_haenszel")["cases"][0]  # the ImmunoSep strata (validation/proportions.R)
    strata = PUB["outcome_rates_for_calibration"]["primary_by_stratum"]
    assert mh["strata"] == [[*strata[s]["precision"], *strata[s]["placebo"]] for s in strata]
    pooled = rows_of("primary_by_stratum")
    assert pooled["Mantel-Haenszel OR (95% CI)"].exact == pytest.approx(
        [ref["mh"]["odds_ratio"], *ref["mh"]["ci"]], rel=1e-6
    )
    assert pooled["Breslow-Day homogeneity P"].exact[0] == pytest.approx(mh["breslow_day_p"], rel=1e-6)
    po = ref["ordinal"]
    inf = rows_of("infection_day15")
    assert inf["OR of a worse state (95% CI)"].exact == pytest.approx([po["odds_ratio"], *po["ci"]], rel=1e-5)
    assert inf["P"].exact[0] == pytest.approx(po["p"], rel=1e-5)
    adj = ref["logistic"]["stratum_adjusted"]
    assert _exact("adjusted_primary", "adjusted odds ratio (95% CI)") == pytest.approx(
        [adj["odds_ratio"], *adj["wald"]], rel=1e-6
    )
    t3 = [r for r in ROWS if r.endpoint.startswith("table3_")]
    assert [r.endpoint for r in t3] == [f"table3_{k.replace(':', '_')}" for k in ref["table3_fisher_p"]]
    for row, p in zip(t3, ref["table3_fisher_p"].values(), strict=True):
        assert row.exact[0] == pytest.approx(p, rel=1e-6) and row.recomputed == format_p(p)


def test_profile_likelihood_ci_equals_r(r_reference):
    """R: confint(glm(y ~ arm (+ stratum), binomial)) (MASS profile; it interpolates the profile by spline, so 1e-4)."""
    ref = r_reference("published")["logistic"]
    strata = PUB["outcome_rates_for_calibration"]["primary_by_stratum"]
    cells = [(*strata[s]["precision"], *strata[s]["placebo"]) for s in strata]
    total = [tuple(sum(c[i] for c in cells) for i in range(4))]
    for key, data in (("stratum_adjusted", cells), ("unadjusted", total)):
        est, low, high = logistic_profile_ci(data)
        assert est == pytest.approx(ref[key]["odds_ratio"], rel=1e-8)
        assert [low, high] == pytest.approx(ref[key]["profile"], rel=1e-4)


def test_json_document_has_a_published_value_and_a_status_for_every_statistic():
    doc = json.loads(json.dumps(as_json(ROWS)))
    assert doc["statuses"] == list(STATUSES) and sum(doc["summary"].values()) == len(doc["rows"])
    for row in doc["rows"]:
        assert "published" in row and row["status"] in STATUSES
        assert row["status"] != NOT_IN_REFERENCE or row["published"] is None
