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


def _mean_sd(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return "NA" if v.empty else f"{v.mean():.0f} ({v.std(ddof=1):.0f})"


def table1(adsl: pd.DataFrame, protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """Table 1: baseline characteristics of the analysed patients (by arm or pooled)."""
    groups = _groups(adsl, protocol, by_arm)
    rows: list[tuple[str, ...]] = []
    indent: list[int] = []

    def add(label: str, cells: Sequence[str], level: int = 0) -> None:
        rows.append((label, *cells))
        indent.append(level)

    add("Male sex, No. (%)", [_count(g, g["sex"] == "male") for _, g in groups])
    add("Age, mean (SD), y", [_mean_sd(g["age"]) for _, g in groups])
    add("Immune stratum, No. (%)", ["" for _ in groups])
    for s in protocol.strata:
        if s.enrolled:
            add(s.label, [_count(g, g["stratum"] == s.code) for _, g in groups], 1)
    add("Type of infection, No. (%)", ["" for _ in groups])
    for code in protocol.eligibility.infection_types:
        add(
            protocol.eligibility.infection_label(code),
            [_count(g, g["infection_type"] == code) for _, g in groups],
            1,
        )
    add("Mechanical ventilation, No. (%)", [_count(g, g["mv_baseline"] == 1) for _, g in groups])
    add("Kidney replacement therapy, No. (%)", [_count(g, g["ckrt_baseline"] == 1) for _, g in groups])
    add("APACHE II score, median (IQR)", [_median_iqr(g["apache2"]) for _, g in groups])
    add("Charlson comorbidity index, median (IQR)", [_median_iqr(g["cci"]) for _, g in groups])
    add("SOFA score, median (IQR)", [_median_iqr(g["sofa_baseline"]) for _, g in groups])
    organs = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
    component_columns = [f"sofa_{o}_baseline" for o in organs if f"sofa_{o}_baseline" in adsl.columns]
    if any(pd.to_numeric(adsl[c], errors="coerce").notna().any() for c in component_columns):
        for organ in organs:
            add(f"{organ}", [_median_iqr(g[f"sofa_{organ}_baseline"]) for _, g in groups], 1)
    add(f"Ferritin, median (IQR), {protocol.classification.ferritin_unit}", ["" for _ in groups])
    for s in protocol.strata:
        if s.enrolled:
            add(
                s.label,
                [_median_iqr(g.loc[g["stratum"] == s.code, "ferritin_baseline"]) for _, g in groups],
                1,
            )
    add("Monocyte HLA-DR, median (IQR), receptors/cell", ["" for _ in groups])
    for s in protocol.strata:
        if s.enrolled:
            add(
                s.label, [_median_iqr(g.loc[g["stratum"] == s.code, "hla_dr_baseline"]) for _, g in groups], 1
            )
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
        "APACHE II, Acute Physiology and Chronic Health Evaluation II; IQR, interquartile range; SOFA, "
        "Sequential Organ Failure Assessment (day 1, before the first dose).",
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
        diff = comp.get("difference")
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
            "Difference, % (95% CI)",
            "OR or HR (95% CI)",
            "P value",
        )
        foot = (
            f"Differences are {labels[treat]} minus {labels[control]} (Newcombe hybrid score CI); odds ratios by the "
            "Woolf logit method; P by the two-sided Fisher exact test (log-rank for hazard ratios, Wald otherwise)."
        )
    else:
        columns = ("Outcome", POOLED)
        foot = "Pooled over both arms (blinded steering-committee version)."
    return ReportTable(
        "table2", "Table 2. Primary and secondary outcomes", columns, tuple(rows), tuple(indent), foot
    )


def table3(results: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> ReportTable:
    """Table 3: serious adverse events by SOC (patients) and preferred term (events), split by relatedness."""
    safety = results["safety"]
    labels = _arm_labels(protocol)
    groups = safety["relatedness_groups"]
    rows: list[tuple[str, ...]] = []
    indent: list[int] = []
    for row in safety["table3"]:
        label = {"any": "Any serious adverse event", "soc": row["soc"], "pt": row["pt"]}[row["level"]]
        if by_arm:
            cells = [str(row["counts"][arm][g]) for g in groups for arm in protocol.arm_codes]
        else:
            cells = [str(sum(row["counts"][arm][g] for arm in protocol.arm_codes)) for g in groups]
        rows.append((label, *cells))
        indent.append({"any": 0, "soc": 0, "pt": 1}[row["level"]])
    if by_arm:
        columns = (
            "Event",
            *(f"{g.capitalize()}: {labels[arm]}" for g in groups for arm in protocol.arm_codes),
        )
    else:
        columns = ("Event", *(g.capitalize() for g in groups))
    n = ", ".join(f"{labels[a]} n = {safety['n_by_arm'][a]}" for a in protocol.arm_codes)
    foot = (
        "System organ class rows count patients with at least one event; preferred-term rows count events. "
        "Related = probably or possibly related; not related = probably not related or unrelated. "
        + (n if by_arm else f"n = {sum(safety['n_by_arm'].values())}")
        + "."
    )
    return ReportTable(
        "table3",
        "Table 3. Serious treatment-emergent adverse events by MedDRA system organ class and preferred term",
        columns,
        tuple(rows),
        tuple(indent),
        foot,
    )
