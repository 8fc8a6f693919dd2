"""Tables 1-3 of the report, built from the analysis datasets and results.json.

A :class:`ReportTable` is plain text cells (already formatted in journal style by
``immunosep.stats.formatting``), rendered to HTML by the report template and to text for snapshot tests.
Every table exists in two versions: ``by_arm=True`` (DSMB, unblinded) and ``by_arm=False`` (steering
committee, pooled: no arm, no comparison).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.stats.formatting import format_ci, format_number, format_p, format_pct

POOLED = "All patients"


@dataclass(frozen=True)
class ReportTable:
    """A table: ``rows`` are lists of cell texts; a row whose ``indent`` is 1 is a sub-row of the one above."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    indent: tuple[int, ...]
    footnote: str = ""
    header_rows: tuple[int, ...] = field(default_factory=tuple)
    #: A spanning header over the data columns (HTML): ``(label, number of columns)`` pairs whose spans add
    #: up to ``len(columns) - 1``; ``short_columns`` then names the data columns under them. ``columns`` keep
    #: the full names (the text rendering and the CSV).
    column_groups: tuple[tuple[str, int], ...] = ()
    short_columns: tuple[str, ...] = ()
    #: A listing (text in every column, left-aligned and wrapping) rather than a table of numbers.
    listing: bool = False

    @property
    def group_starts(self) -> frozenset[int]:
        """Indexes (in ``columns``) of the first column of each column group after the first (HTML rules)."""
        starts, at = set(), 1
        for _, span in self.column_groups:
            if at > 1:
                starts.add(at)
            at += span
        return frozenset(starts)

    def to_text(self) -> str:
        """A fixed-width text rendering (for snapshot tests and the console)."""
        widths = [max(len(str(c)) for c in col) for col in zip(self.columns, *self.rows, strict=True)]
        lines = [
            self.title,
            "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip(),
        ]
        for row, ind in zip(self.rows, self.indent, strict=True):
            cells = [("  " * ind + row[0]).ljust(widths[0] + 2 * ind)]
            cells += [c.ljust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
        if self.footnote:
            lines.append(self.footnote)
        return "\n".join(lines) + "\n"


def _arm_labels(protocol: Protocol) -> dict[str, str]:
    return {a.code: a.label for a in protocol.arms}


def _groups(adsl: pd.DataFrame, protocol: Protocol, by_arm: bool) -> list[tuple[str, pd.DataFrame]]:
    a = adsl.loc[adsl["analysed"] == 1]
    if not by_arm:
        return [(POOLED, a)]
    labels = _arm_labels(protocol)
    return [(labels[arm], a.loc[a["arm"] == arm]) for arm in protocol.arm_codes]


def n_pct(x: int, n: int) -> str:
    """``46/131 (35.1)``."""
    return f"{x}/{n} ({format_pct(x / n)})" if n else "0/0"


def _count(frame: pd.DataFrame, mask: pd.Series) -> str:
    n = len(frame)
    x = int(mask.sum())
    return f"{x} ({format_pct(x / n)})" if n else "0"


def _median_iqr(values: pd.Series, decimals: int = 0) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "NA"
    q1, med, q3 = v.quantile([0.25, 0.5, 0.75])
    return f"{med:.{decimals}f} ({q1:.{decimals}f}-{q3:.{decimals}f})"


def _mean_sd(values: pd.Series, decimals: int = 0) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return "NA" if v.empty else f"{v.mean():.{decimals}f} ({v.std(ddof=1):.{decimals}f})"


def _at_least(values: pd.Series, cutoff: float) -> str:
    """Patients with a value >= ``cutoff``, No. (%) of those with a value."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    return f"{int((v >= cutoff).sum())} ({format_pct(float((v >= cutoff).mean()))})" if len(v) else "NA"


#: Baseline scores of Table 1: ADSL variable -> row label (the ">= cut-off" rows use the same label).
TABLE1_SCORES = {
    "apache2": "APACHE II score",
    "cci": "Charlson comorbidity index",
    "sofa_baseline": "SOFA score",
}
#: SOFA components in the order of the published Table 1: ADSL organ -> row label.
TABLE1_SOFA_COMPONENTS = {
    "respiration": "Respiratory",
    "coagulation": "Coagulation",
    "cns": "Neurologic (Glasgow coma scale)",
    "cardiovascular": "Cardiovascular",
    "liver": "Liver",
    "renal": "Renal",
}
#: Laboratory values of the baseline day: ADSL variable -> (row label, "mean"/"median", decimals).
TABLE1_LABS = {
    "platelets_baseline": ("Platelets, mean (SD), x10^3/uL", "mean", 1),
    "creatinine_baseline": ("Creatinine, median (IQR), mg/dL", "median", 1),
    "bilirubin_baseline": ("Bilirubin, median (IQR), mg/dL", "median", 1),
    "pao2_fio2_baseline": ("PaO2/FiO2, median (IQR), mm Hg", "median", 1),
}
#: Rows of the published Table 1 this platform's CRF does not collect (said under the table).
TABLE1_NOT_COLLECTED = "medical history (comorbidities), white blood cell count and lactate"


def _has_values(adsl: pd.DataFrame, column: str) -> bool:
    """True when ``column`` exists and at least one analysed patient has a value (else the row is left out)."""
    if column not in adsl.columns:
        return False
    return bool(pd.to_numeric(adsl.loc[adsl["analysed"] == 1, column], errors="coerce").notna().any())


def table1(adsl: pd.DataFrame, protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """Table 1: baseline characteristics of the analysed patients (by arm or pooled), in the rows of the
    published Table 1 that the platform collects; a row no analysed patient has a value for is left out."""
    groups = _groups(adsl, protocol, by_arm)
    rows: list[tuple[str, ...]] = []
    indent: list[int] = []
    at_least = protocol.report.table1_at_least
    unknown = sorted(set(at_least) - set(TABLE1_SCORES))
    if unknown:
        raise ImmunoSepError(
            f"protocol [report.table1_at_least] names {unknown}; Table 1 knows the scores {list(TABLE1_SCORES)}"
        )

    def add(label: str, cells: Sequence[str], level: int = 0) -> None:
        rows.append((label, *cells))
        indent.append(level)

    def header(label: str) -> None:
        add(label, ["" for _ in groups])

    add("Male sex, No. (%)", [_count(g, g["sex"] == "male") for _, g in groups])
    add("Age, mean (SD), y", [_mean_sd(g["age"]) for _, g in groups])
    header("Immune stratum, No. (%)")
    for s in protocol.strata:
        if s.enrolled:
            add(s.label, [_count(g, g["stratum"] == s.code) for _, g in groups], 1)
    if _has_values(adsl, "mv_baseline"):
        add("Mechanical ventilation, No. (%)", [_count(g, g["mv_baseline"] == 1) for _, g in groups])
    if _has_values(adsl, "ckrt_baseline"):
        add(
            "Continuous kidney replacement therapy (CVVH), No. (%)",
            [_count(g, g["ckrt_baseline"] == 1) for _, g in groups],
        )
    header("Type of infection, No. (%)")
    for code in protocol.eligibility.infection_types:
        add(
            protocol.eligibility.infection_label(code),
            [_count(g, g["infection_type"] == code) for _, g in groups],
            1,
        )
    for variable, label in TABLE1_SCORES.items():
        if not _has_values(adsl, variable):
            continue
        add(f"{label}, median (IQR)", [_median_iqr(g[variable]) for _, g in groups])
        if variable in at_least:
            cut = at_least[variable]
            add(f"{label} >= {cut:g}, No. (%)", [_at_least(g[variable], cut) for _, g in groups], 1)
    components = {
        o: lab for o, lab in TABLE1_SOFA_COMPONENTS.items() if _has_values(adsl, f"sofa_{o}_baseline")
    }
    if components:
        header("SOFA components, median (IQR)")
        for organ, label in components.items():
            add(label, [_median_iqr(g[f"sofa_{organ}_baseline"]) for _, g in groups], 1)
    for column, label, unit in (
        ("ferritin_baseline", "Ferritin", protocol.classification.ferritin_unit),
        ("hla_dr_baseline", "Monocyte HLA-DR", "receptors/cell"),
    ):
        if not _has_values(adsl, column):
            continue
        header(f"{label}, median (IQR), {unit}")
        for s in protocol.strata:
            if s.enrolled:
                add(s.label, [_median_iqr(g.loc[g["stratum"] == s.code, column]) for _, g in groups], 1)
    for column, (label, summary, decimals) in TABLE1_LABS.items():
        if _has_values(adsl, column):
            summarise = _mean_sd if summary == "mean" else _median_iqr
            add(label, [summarise(g[column], decimals) for _, g in groups])
    if _has_values(adsl, "hours_onset_to_dose"):
        add(
            "Sepsis onset to first dose, median (IQR), h",
            [_median_iqr(g["hours_onset_to_dose"]) for _, g in groups],
        )
    columns = ("Characteristic", *(f"{name} (n = {len(g)})" for name, g in groups))
    return ReportTable(
        "table1",
        "Table 1. Baseline characteristics of the analysed patients",
        columns,
        tuple(rows),
        tuple(indent),
        "APACHE II, Acute Physiology and Chronic Health Evaluation II; CVVH, continuous venovenous "
        "hemofiltration; IQR, interquartile range; SOFA, Sequential Organ Failure Assessment. Scores, SOFA "
        "components, organ support and laboratory values are those of day "
        f"{protocol.endpoints.primary.baseline_day}, before the first dose. Percentages in the >= rows are "
        "of the patients with the score. The published Table 1 also lists "
        f"{TABLE1_NOT_COLLECTED}: this platform's case report form does not collect them.",
    )


def _estimate(e: dict[str, Any] | None, decimals: int = 2) -> str:
    if not e or e.get("estimate") is None:
        return "NA"
    return (
        f"{format_number(e['estimate'], decimals)} ({format_ci(_f(e['ci_low']), _f(e['ci_high']), decimals)})"
    )


def _f(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _p(e: dict[str, Any] | None) -> str:
    return "NA" if not e or e.get("p") is None else format_p(e["p"])


def table2(results: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """Table 2: primary and secondary outcomes. DSMB: by arm with difference (Newcombe), OR (Woolf), Fisher P;
    blinded: pooled counts only."""
    treat, control = protocol.arm_codes[0], protocol.arm_codes[1]
    labels = _arm_labels(protocol)
    rows: list[tuple[str, ...]] = []
    indent: list[int] = []
    for key, entry in results["binary_endpoints"].items():
        counts = entry["counts"]
        level = 1 if key.startswith("primary_") and key != "primary_sensitivity" else 0
        if not by_arm:
            x = sum(c["events"] for c in counts.values())
            n = sum(c["n"] for c in counts.values())
            rows.append((entry["label"], n_pct(x, n)))
            indent.append(level)
            continue
        comp = entry["comparison"] or {}
        diff = entry.get("difference_reported")
        diff_text = "NA"
        if diff and diff.get("estimate") is not None:
            diff_text = f"{format_pct(diff['estimate'])} ({format_ci(100 * _f(diff['ci_low']), 100 * _f(diff['ci_high']))})"
        rows.append(
            (
                entry["label"],
                n_pct(counts[treat]["events"], counts[treat]["n"]),
                n_pct(counts[control]["events"], counts[control]["n"]),
                diff_text,
                _estimate(comp.get("odds_ratio")),
                _p(comp.get("test")),
            )
        )
        indent.append(level)
    inf = results["infection_day15"]
    if by_arm:

        def model_row(label: str, estimate: dict[str, Any], test: dict[str, Any] | None) -> None:
            """A model's treatment effect: no counts or difference, the estimate with its CI and P."""
            rows.append((label, "", "", "", _estimate(estimate), _p(test)))
            indent.append(0)

        for paramcd, surv in results["survival"].items():
            if paramcd != "SIDFREV" and surv.get("hazard_ratio"):
                label = f"Hazard ratio of death to day {surv['horizon_day']} (Cox)"
                model_row(label, surv["hazard_ratio"], surv["logrank"])
        adjusted = results["adjusted_primary"]
        if adj := adjusted.get("arm_odds_ratio_stepwise"):
            flag = " (separation in site terms)" if adjusted.get("separation") else ""
            model_row(f"Primary endpoint, adjusted OR (stepwise logistic){flag}", adj, adj)
        if stratified := adjusted.get("arm_odds_ratio_site_stratified"):
            label = "Primary endpoint, adjusted OR (site as stratum, conditional logistic)"
            model_row(label, stratified, stratified)
        if inf.get("ordinal"):
            odds = inf["ordinal"]["odds_ratio"]
            model_row("Worse infection state on day 15 (proportional odds)", odds, odds)
    rows.append(
        (
            f"Infection state on day {protocol.endpoints.infection_day15.day}, No. (%)",
            *([""] * (5 if by_arm else 1)),
        )
    )
    indent.append(0)
    for lv in inf["levels"]:
        if by_arm:
            cells = []
            for arm in (treat, control):
                n = sum(inf["counts"][arm].values())
                cells.append(n_pct(inf["counts"][arm][lv], n))
            rows.append((lv, *cells, "", "", ""))
        else:
            n = sum(sum(c.values()) for c in inf["counts"].values())
            rows.append((lv, n_pct(sum(c[lv] for c in inf["counts"].values()), n)))
        indent.append(1)
    if by_arm:
        columns: tuple[str, ...] = (
            "Outcome",
            labels[treat],
            labels[control],
            f"Difference favouring {labels[treat]}, percentage points (95% CI)",
            "OR or HR (95% CI)",
            "P value",
        )
        foot = (
            f"Differences are signed as in the published Table 2, so that a positive difference favours "
            f"{labels[treat]}: {labels[treat]} minus {labels[control]} for the SOFA and reversal endpoints, "
            f"{labels[control]} minus {labels[treat]} for mortality (Newcombe hybrid score CI). Odds and hazard "
            f"ratios are {labels[treat]} versus {labels[control]} (Woolf logit CI); P by the two-sided Fisher "
            "exact test (log-rank for hazard ratios, Wald otherwise)."
        )
    else:
        columns = ("Outcome", POOLED)
        foot = "Pooled over both arms (blinded steering-committee version)."
    return ReportTable(
        "table2", "Table 2. Primary and secondary outcomes", columns, tuple(rows), tuple(indent), foot
    )


def _drug_label(protocol: Protocol, stratum: str, arm: str) -> str:
    """What the arm gives in the stratum: its active drugs (``anakinra``), or the arm's label when every
    injection is a dummy (placebo)."""
    drugs = [i.drug for i in protocol.regimen_for(stratum, arm) if not i.dummy]
    return " + ".join(d[:1].upper() + d[1:] for d in drugs) if drugs else _arm_labels(protocol)[arm]


def _pct_cell(x: int, n: int) -> str:
    """``47 (35.9)``: patients and percent of the column's patients; ``0`` alone for none."""
    return f"{x} ({format_pct(x / n)})" if n and x else str(x)


def _table3_label(row: dict[str, Any]) -> str:
    return {"any": "Any serious adverse event", "soc": row["soc"], "pt": row["pt"]}[row["level"]]


def table3(results: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """Table 3: patients with serious adverse events, No. (%), by MedDRA SOC and preferred term, relatedness
    and arm (pooled when blinded)."""
    safety = results["safety"]
    labels = _arm_labels(protocol)
    groups = safety["relatedness_groups"]
    arms = protocol.arm_codes
    n_by_arm = safety["n_by_arm"]
    n_all = sum(n_by_arm.values())
    rows: list[tuple[str, ...]] = []
    indent: list[int] = []
    for row in safety["table3"]:
        patients = row["patients"]
        if by_arm:
            cells = [_pct_cell(patients[arm][g], n_by_arm[arm]) for g in groups for arm in arms]
        else:
            cells = [_pct_cell(sum(patients[arm][g] for arm in arms), n_all) for g in groups]
        rows.append((_table3_label(row), *cells))
        indent.append(1 if row["level"] == "pt" else 0)
    if by_arm:
        short = tuple(f"{labels[arm]} (n = {n_by_arm[arm]})" for _ in groups for arm in arms)
        columns = ("Event", *(f"{g.capitalize()}: {c}" for g in groups for c in short[: len(arms)]))
        column_groups = tuple((g.capitalize(), len(arms)) for g in groups)
    else:
        short = ()
        columns = ("Event", *(f"{g.capitalize()} (n = {n_all})" for g in groups))
        column_groups = ()
    foot = (
        "Patients with at least one serious treatment-emergent event, No. (% of the analysed patients of the "
        "column), on every row; results.json keeps the event counts of the preferred terms as the published "
        "Table 3 prints them. Related = probably or possibly related; not related = probably not related or "
        f"unrelated. Serious events in all: {safety['serious_events_total']}."
    )
    return ReportTable(
        "table3",
        "Table 3. Serious treatment-emergent adverse events by MedDRA system organ class and preferred term",
        columns,
        tuple(rows),
        tuple(indent),
        foot,
        column_groups=column_groups,
        short_columns=short,
    )


def table3_by_stratum(results: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """Table 3 within each immune stratum, where each stratum has its own study drug (MALS: anakinra;
    immunoparalysis: interferon gamma-1b), so a drug's safety signal is not diluted by the other stratum:
    patients, No. (%), by stratum x arm (by stratum only when blinded, without drug names) x relatedness."""
    safety = results["safety"]
    groups = safety["relatedness_groups"]
    arms = protocol.arm_codes
    strata = [s for s in protocol.strata if s.enrolled]
    n = safety["n_by_stratum_arm"]
    if by_arm:
        panels = [
            (f"{s.label}: {_drug_label(protocol, s.code, arm)}", n[s.code][arm], [(s.code, arm)])
            for s in strata
            for arm in arms
        ]
    else:
        panels = [(s.label, sum(n[s.code].values()), [(s.code, arm) for arm in arms]) for s in strata]
    rows: list[tuple[str, ...]] = []
    indent: list[int] = []
    for row in safety["table3"]:
        cells = []
        for _, size, cells_of in panels:
            for g in groups:
                cells.append(_pct_cell(sum(row["by_stratum"][st][arm][g] for st, arm in cells_of), size))
        rows.append((_table3_label(row), *cells))
        indent.append(1 if row["level"] == "pt" else 0)
    column_groups = tuple((f"{name} (n = {size})", len(groups)) for name, size, _ in panels)
    short = tuple(g.capitalize() for _ in panels for g in groups)
    columns = ("Event", *(f"{name} (n = {size}): {g}" for name, size, _ in panels for g in groups))
    foot = (
        "Patients with at least one serious treatment-emergent event, No. (% of the column's patients). "
        + (
            "Each stratum's precision arm received its own study drug; its placebo arm received dummies of both."
            if by_arm
            else "Arms pooled within each stratum."
        )
    )
    return ReportTable(
        "table3_strata",
        "Table 3 (continued). Serious adverse events within each immune stratum"
        + (" and its study drug" if by_arm else ""),
        columns,
        tuple(rows),
        tuple(indent),
        foot,
        column_groups=column_groups,
        short_columns=short,
    )


def table_susars(results: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """The listing of SUSARs (serious, related and unexpected adverse events), by onset day; the arm and the
    study drug are shown only by arm."""
    strata = {s.code: s.label for s in protocol.strata}
    arm_labels = _arm_labels(protocol)
    head = ["Patient", "Immune stratum"]
    if by_arm:
        head.append("Arm (study drug)")
    head += ["Onset day", "System organ class", "Preferred term", "Relatedness"]
    rows: list[tuple[str, ...]] = []
    for e in results["safety"]["susars"]:
        cells = [e["usubjid"], strata.get(e["stratum"], e["stratum"])]
        if by_arm:
            drug = _drug_label(protocol, e["stratum"], e["arm"])
            arm = arm_labels[e["arm"]]
            cells.append(arm if drug == arm else f"{arm} ({drug})")
        onset = "NA" if e["onset_day"] is None else str(e["onset_day"])
        cells += [onset, e["soc"], e["pt"], e["relatedness"]]
        rows.append(tuple(cells))
    if not rows:
        rows.append(("None reported", *([""] * (len(head) - 1))))
    return ReportTable(
        "table_susars",
        "Table 3 (continued). Suspected unexpected serious adverse reactions (SUSARs)",
        tuple(head),
        tuple(rows),
        tuple(0 for _ in rows),
        "A SUSAR is serious, probably or possibly related to the study drug and unexpected; each was flagged "
        f"when recorded. {len(results['safety']['susars'])} event(s).",
        listing=True,
    )
