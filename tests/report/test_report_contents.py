"""What the report must show beside the paper: Table 1's rows, the signed mortality difference, Table 3 by
stratum and drug with the SUSARs, the 90-day forest plot, Figure 2B over the primary window, the summary
tile's words; and the blinded version still shows no arm and no drug."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest

from immunosep.analysis.datasets import AnalysisDatasets
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import ReportSettings
from immunosep.report.figures import heatmap_days, heatmap_panels
from immunosep.report.html import _cards, render_report
from immunosep.report.tables import table1, table2, table3, table3_by_stratum, table_susars
from immunosep.stats.formatting import format_pct

Trial = tuple[AnalysisDatasets, dict[str, Any]]
ARM_OR_DRUG = re.compile(r"precision|placebo|anakinra|interferon", re.IGNORECASE)


def _cell(x: int, n: int) -> str:
    """A Table 3 cell: patients (percent), or 0 alone."""
    return f"{x} ({format_pct(x / n)})" if x else "0"


def _row(table: Any, label: str) -> tuple[str, ...]:
    return next(r for r in table.rows if r[0] == label)


def test_table1_has_the_papers_cutoff_rows_from_the_protocol(analysed_trial: Trial) -> None:
    ds, _ = analysed_trial
    p = default_protocol()
    t = table1(ds.adsl, p)
    a = ds.adsl.loc[ds.adsl["analysed"] == 1]
    for variable, label in (("apache2", "APACHE II score"), ("cci", "Charlson comorbidity index")):
        cut = p.report.table1_at_least[variable]
        row = _row(t, f"{label} >= {cut:g}, No. (%)")
        for arm, cell in zip(p.arm_codes, row[1:], strict=True):
            v = pd.to_numeric(a.loc[a["arm"] == arm, variable]).dropna()
            assert cell == f"{int((v >= cut).sum())} ({format_pct((v >= cut).mean())})"
    assert _row(t, "SOFA score >= 10, No. (%)")  # the published cut-off, read from the protocol file
    other = p.model_copy(update={"report": ReportSettings(table1_at_least={"apache2": 30})})
    labels = [r[0] for r in table1(ds.adsl, other).rows]
    assert "APACHE II score >= 30, No. (%)" in labels and not any("SOFA score >=" in x for x in labels)
    wrong = p.model_copy(update={"report": ReportSettings(table1_at_least={"lactate": 2})})
    with pytest.raises(ImmunoSepError, match="lactate"):
        table1(ds.adsl, wrong)


def test_table1_has_components_and_laboratory_values(analysed_trial: Trial) -> None:
    ds, _ = analysed_trial
    t = table1(ds.adsl, default_protocol(), by_arm=False)
    labels = [r[0] for r in t.rows]
    for label in (
        "SOFA components, median (IQR)",
        "Respiratory",
        "Renal",
        "Platelets, mean (SD), x10^3/uL",
        "Creatinine, median (IQR), mg/dL",
        "Bilirubin, median (IQR), mg/dL",
        "PaO2/FiO2, median (IQR), mm Hg",
        "Continuous kidney replacement therapy (CVVH), No. (%)",
    ):
        assert label in labels
    a = ds.adsl.loc[ds.adsl["analysed"] == 1]
    q1, med, q3 = a["creatinine_baseline"].quantile([0.25, 0.5, 0.75])
    assert _row(t, "Creatinine, median (IQR), mg/dL")[1] == f"{med:.1f} ({q1:.1f}-{q3:.1f})"
    assert "white blood cell count and lactate" in t.footnote  # said, not silently dropped
    # a trial whose CRF has no laboratory values shows no empty laboratory rows
    bare = ds.adsl.drop(columns=["platelets_baseline", "creatinine_baseline"])
    bare_labels = [r[0] for r in table1(bare, default_protocol()).rows]
    assert not any(x.startswith(("Platelets", "Creatinine")) for x in bare_labels)


def test_table2_mortality_difference_is_placebo_minus_precision(analysed_trial: Trial) -> None:
    _, results = analysed_trial
    p = default_protocol()
    t = table2(results, p)
    assert "Difference favouring Precision immunotherapy, percentage points" in t.columns[3]
    for key in ("mortality_28d", "mortality_90d"):
        c = results["binary_endpoints"][key]["counts"]
        placebo_minus_precision = (
            c["placebo"]["events"] / c["placebo"]["n"] - c["precision"]["events"] / c["precision"]["n"]
        )
        row = _row(t, results["binary_endpoints"][key]["label"])
        assert row[3].startswith(f"{format_pct(placebo_minus_precision)} (")
    c = results["binary_endpoints"]["primary"]["counts"]
    precision_minus_placebo = (
        c["precision"]["events"] / c["precision"]["n"] - c["placebo"]["events"] / c["placebo"]["n"]
    )
    assert t.rows[0][3].startswith(f"{format_pct(precision_minus_placebo)} (")
    assert "Placebo minus Precision immunotherapy for mortality" in t.footnote


def test_table3_counts_patients_with_percent_per_arm(analysed_trial: Trial) -> None:
    ds, results = analysed_trial
    t = table3(results, default_protocol())
    sae = ds.adae.loc[ds.adae["aeser"] == 1]
    n = results["safety"]["n_by_arm"]["precision"]
    x = sae.loc[
        (sae["aedecod"] == "Anaemia") & (sae["arm"] == "precision") & (sae["arelgr1"] == "not related")
    ]
    col = t.columns.index(f"Not related: Precision immunotherapy (n = {n})")
    assert _row(t, "Anaemia")[col] == _cell(x["usubjid"].nunique(), n)
    assert t.column_groups == (("Related", 2), ("Not related", 2))


def test_table3_by_stratum_shows_each_drug_against_its_placebo(analysed_trial: Trial) -> None:
    ds, results = analysed_trial
    p = default_protocol()
    t = table3_by_stratum(results, p)
    assert [g for g, _ in t.column_groups] == [
        f"Macrophage activation-like syndrome: Anakinra (n = {results['safety']['n_by_stratum_arm']['mals']['precision']})",
        f"Macrophage activation-like syndrome: Placebo (n = {results['safety']['n_by_stratum_arm']['mals']['placebo']})",
        "Sepsis-induced immunoparalysis: Interferon gamma-1b "
        f"(n = {results['safety']['n_by_stratum_arm']['immunoparalysis']['precision']})",
        "Sepsis-induced immunoparalysis: Placebo "
        f"(n = {results['safety']['n_by_stratum_arm']['immunoparalysis']['placebo']})",
    ]
    sae = ds.adae.loc[ds.adae["aeser"] == 1]
    row = _row(t, "Anaemia")
    k = 0
    for stratum in ("mals", "immunoparalysis"):
        for arm in ("precision", "placebo"):
            n = results["safety"]["n_by_stratum_arm"][stratum][arm]
            for group in ("related", "not related"):
                k += 1
                rows = sae.loc[
                    (sae["aedecod"] == "Anaemia")
                    & (sae["stratum"] == stratum)
                    & (sae["arm"] == arm)
                    & (sae["arelgr1"] == group)
                ]
                x = rows["usubjid"].nunique()
                assert row[k] == _cell(x, n), (stratum, arm, group)
    blinded = table3_by_stratum(results, p, by_arm=False)
    assert not ARM_OR_DRUG.search(blinded.to_text())
    assert len(blinded.columns) == 1 + 2 * 2  # stratum x relatedness


def test_susar_listing(analysed_trial: Trial) -> None:
    ds, results = analysed_trial
    p = default_protocol()
    susars = ds.adae.loc[ds.adae["susar"] == 1]
    t = table_susars(results, p)
    assert len(t.rows) == len(susars) > 0
    assert sorted(r[0] for r in t.rows) == sorted(susars["usubjid"])
    assert "Arm (study drug)" in t.columns
    blinded = table_susars(results, p, by_arm=False)
    assert "Arm (study drug)" not in blinded.columns and not ARM_OR_DRUG.search(blinded.to_text())
    empty = table_susars({**results, "safety": {**results["safety"], "susars": []}}, p)
    assert empty.rows[0][0] == "None reported"


def test_heatmap_shows_the_nine_days_of_the_primary_window(analysed_trial: Trial) -> None:
    ds, _ = analysed_trial
    p = default_protocol()
    e = p.endpoints.primary
    days = heatmap_days(p)
    assert days == list(range(e.baseline_day, e.window_last_day + 1)) and len(days) == 9
    assert (
        ds.adsofa["ady"].max() > e.window_last_day
    )  # the dataset has later days: the figure leaves them out
    for by_arm in (True, False):
        panels = heatmap_panels(ds.adsofa, p, by_arm=by_arm)
        assert [len(row) for row in panels] == ([2, 2] if by_arm else [1, 1])
        patients = 0
        for row in panels:
            for _, matrix in row:
                assert list(matrix.columns) == days
                patients += len(matrix)
        assert patients == ds.adsofa["usubjid"].nunique()


def test_report_has_the_90_day_forest_plot_and_the_tile_in_percentage_points(analysed_trial: Trial) -> None:
    ds, results = analysed_trial
    p = default_protocol()
    html = render_report(ds, results, p)
    for key in ("primary", "mortality_28d", "mortality_90d"):
        assert f'alt="Forest plot {key}"' in html
    assert "90-day mortality by subgroup" in html
    cards = _cards(results, p, blinded=False)
    tile = next(c for c in cards if "primary endpoint" in c["label"])
    assert tile["value"].endswith(" percentage points") and "pts" not in tile["value"]
    blinded = render_report(ds, results, p, blinded=True)
    assert "Forest plot" not in blinded
    assert 'alt="Infection state on day 15"' in html and 'alt="Infection state on day 15"' in blinded
    visible = re.sub(r"<[^>]+>|data:image/png;base64,[A-Za-z0-9+/=]+", " ", blinded)
    assert not ARM_OR_DRUG.search(visible), ARM_OR_DRUG.search(visible)
