"""Every Table 2 and stratum statistic of the published ImmunoSep trial, printed figure beside recomputed one.

Reads the published figures through :mod:`immunosep.published` (JAMA 2025, doi:10.1001/jama.2025.24175),
recomputes each statistic with :mod:`immunosep.stats` from the published counts and compares them at the
printed precision (percent 1 decimal, ratios 2 decimals, P in JAMA style). Each statistic gets one status:

- ``match``: the recomputed figure, printed the paper's way, is the printed figure;
- ``mismatch``: it is not; the row says why and lists the other computations tried, each marked with whether
  it gives the printed figure (the double-rounded Fisher P, the reversed difference of a paper convention, the
  sample size of another method), so an explanation is a computation, not a claim;
- ``not in the published reference file``: the paper's figure for this statistic is not in the package's
  reference file; the recomputed figure is shown and nothing is compared;
- ``not recomputable``: the paper prints the figure, but it needs patient-level data (the adjusted OR); the
  closest count-based computations are listed with the reason.

Where the reference file holds only counts for a Table 2 row, the counts and their percentages are the
printed figures: they are checked against another part of the paper (N against the CONSORT numbers analysed,
events of the primary endpoint against the sum over the strata, the day-15 infection levels against N).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import statsmodels.api as sm
from scipy import optimize
from scipy import stats as sps

from immunosep.published import published_reference
from immunosep.stats import (
    Estimate,
    compare_proportions,
    format_p,
    logistic_regression,
    mantel_haenszel,
    proportional_odds_counts,
    sample_size_two_proportions,
    two_by_two_test,
)

MATCH = "match"
MISMATCH = "mismatch"
NOT_IN_REFERENCE = "not in the published reference file"
NOT_RECOMPUTABLE = "not recomputable"
STATUSES = (MATCH, MISMATCH, NOT_IN_REFERENCE, NOT_RECOMPUTABLE)

ARMS = ("precision", "placebo")
Counts = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class Alternative:
    """Another computation of a statistic, printed the paper's way, and whether it gives the printed figure."""

    method: str
    value: str
    reproduces_published: bool


@dataclass(frozen=True)
class ReproducedRow:
    """One statistic of the paper: the printed figure (``None``: not in the reference file) beside ours.

    ``exact`` holds the recomputed values at full precision (percent for proportions and differences),
    ``explanation`` says why a mismatch differs or why a figure is not recomputable, ``note`` adds facts
    found on the way (e.g. that the difference of the printed percentages is not the printed difference).
    """

    section: str
    endpoint: str
    statistic: str
    published: str | None
    recomputed: str
    status: str
    method: str
    explanation: str = ""
    alternatives: tuple[Alternative, ...] = ()
    note: str = ""
    exact: tuple[float, ...] = ()


# ---------------------------------------------------------------------------------------------- printing


def _fmt(value: float, decimals: int) -> str:
    if math.isnan(value):
        return "NA"
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _with_ci(estimate: float, low: float, high: float, decimals: int) -> str:
    return f"{_fmt(estimate, decimals)} ({_fmt(low, decimals)} to {_fmt(high, decimals)})"


def _pct_ci(d: Estimate) -> str:
    return _with_ci(100 * d.estimate, 100 * d.ci_low, 100 * d.ci_high, 1)


def _ratio_ci(o: Estimate) -> str:
    return _with_ci(o.estimate, o.ci_low, o.ci_high, 2)


def _count(events: int, total: int) -> str:
    return f"{events}/{total} ({_fmt(100 * events / total, 1)})"


def double_rounded_p(p: float) -> str:
    """P rounded half-up to 3 decimals, then the result rounded again as JAMA prints it (.3349 -> .335 -> .34)."""
    once = Decimal(repr(p)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    if once < Decimal("0.01"):
        return format_p(float(once))
    return format_p(float(once.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)))


def wald_shaped(estimate: float, low: float, high: float, decimals: int = 2) -> bool:
    """Whether a printed ratio and CI can be a Wald interval: symmetric about the ratio on the log scale.

    Each printed value stands for an interval of half a unit in its last decimal; a Wald interval has
    ``log(estimate) = (log(low) + log(high)) / 2`` exactly, so the ranges of both sides must overlap.
    """
    half = 0.5 * 10.0**-decimals
    mid_low = (math.log(low - half) + math.log(high - half)) / 2
    mid_high = (math.log(low + half) + math.log(high + half)) / 2
    return math.log(estimate - half) <= mid_high and mid_low <= math.log(estimate + half)


# ---------------------------------------------------------------------------------------------- rows


def _row(
    section: str,
    endpoint: str,
    statistic: str,
    published: str | None,
    recomputed: str,
    method: str,
    *,
    exact: Sequence[float] = (),
    explanation: str = "",
    alternatives: Sequence[Alternative] = (),
    note: str = "",
    status: str = "",
) -> ReproducedRow:
    if not status:
        status = NOT_IN_REFERENCE if published is None else (MATCH if published == recomputed else MISMATCH)
    if status == MATCH:
        explanation, alternatives = "", ()
    return ReproducedRow(
        section,
        endpoint,
        statistic,
        published,
        recomputed,
        status,
        method,
        explanation,
        tuple(alternatives),
        note,
        tuple(float(v) for v in exact),
    )


def _alternatives(published: str | None, candidates: Sequence[tuple[str, str]]) -> tuple[Alternative, ...]:
    return tuple(Alternative(m, v, v == published) for m, v in candidates)


def _reproducing(alternatives: Sequence[Alternative]) -> list[Alternative]:
    return [a for a in alternatives if a.reproduces_published]


@dataclass(frozen=True)
class _Printed:
    """What the reference file prints for a binary endpoint (``None``: not in the file)."""

    difference: tuple[float, float, float] | None = None
    difference_order: str = "precision - placebo"
    odds_ratio: tuple[float, float, float] | None = None
    p: float | None = None


def _count_rows(
    section: str,
    endpoint: str,
    published: Counts,
    checked: Counts,
    check_method: str,
    labels: Mapping[str, str] | None = None,
) -> list[ReproducedRow]:
    """n/N (%) per arm: the printed counts beside the same events over N from another part of the paper."""
    rows = []
    for arm in ARMS:
        (pe, pn), (ce, cn) = published[arm], checked[arm]
        label = (labels or {}).get(arm, f"{arm}, n/N (%)")
        rows.append(
            _row(
                section,
                endpoint,
                label,
                _count(pe, pn),
                _count(ce, cn),
                check_method,
                exact=(ce, cn, 100 * ce / cn),
                explanation=f"the printed counts disagree with {check_method}",
            )
        )
    return rows


def _binary_rows(
    section: str,
    endpoint: str,
    published: Counts,
    checked: Counts,
    check_method: str,
    printed: _Printed,
    *,
    outcome: str,
) -> list[ReproducedRow]:
    """n/N (%) per arm, difference (precision - placebo) with 95% CI, Woolf OR with 95% CI, Fisher P."""
    rows = _count_rows(section, endpoint, published, checked, check_method)
    (x1, n1), (x2, n2) = checked["precision"], checked["placebo"]
    r = compare_proportions(x1, n1, x2, n2, outcome=outcome)
    d, o = r.difference, r.odds_ratio

    # difference, precision minus placebo throughout the platform
    pub_d = None if printed.difference is None else _with_ci(*printed.difference, 1)
    recomputed_d = _pct_ci(d)
    alternatives: tuple[Alternative, ...] = ()
    explanation = ""
    if pub_d is not None and pub_d != recomputed_d:
        reversed_d = compare_proportions(x2, n2, x1, n1, outcome=outcome).difference
        alternatives = _alternatives(
            pub_d, [(f"{reversed_d.method}, placebo - precision", _pct_ci(reversed_d))]
        )
        if printed.difference_order == "placebo - precision" and _reproducing(alternatives):
            explanation = (
                "paper convention: Table 2 prints this difference as placebo minus precision (positive = fewer "
                "events with precision); the platform reports precision minus placebo throughout. Reversed, the "
                f"recomputed difference is {alternatives[0].value}, the printed figure"
            )
        else:
            explanation = "the printed difference is not reproduced by either order of subtraction"
    printed_pcts = round(100 * x1 / n1, 1) - round(100 * x2 / n2, 1)
    note = ""
    if _fmt(printed_pcts, 1) != _fmt(100 * d.estimate, 1):
        note = (
            f"rounding of percentages: the difference of the printed percentages is {_fmt(printed_pcts, 1)} "
            f"({_fmt(100 * x1 / n1, 1)} - {_fmt(100 * x2 / n2, 1)}), the exact difference rounds to "
            f"{_fmt(100 * d.estimate, 1)}" + ("; the paper prints the latter" if pub_d is not None else "")
        )
    rows.append(
        _row(
            section,
            endpoint,
            "difference, % (95% CI)",
            pub_d,
            recomputed_d,
            f"{d.method}; precision - placebo",
            exact=(100 * d.estimate, 100 * d.ci_low, 100 * d.ci_high),
            explanation=explanation,
            alternatives=alternatives,
            note=note,
        )
    )

    pub_o = None if printed.odds_ratio is None else _with_ci(*printed.odds_ratio, 2)
    recomputed_o = _ratio_ci(o)
    note, explanation, alternatives = "", "", ()
    if pub_o is not None:
        prof = logistic_profile_ci([(x1, n1, x2, n2)])
        note = (
            f"the profile-likelihood interval of the same logistic model would print {_fmt(prof[1], 2)} to "
            f"{_fmt(prof[2], 2)}"
        )
        if pub_o != recomputed_o:
            conditional = sps.contingency.odds_ratio([[x1, n1 - x1], [x2, n2 - x2]], kind="conditional")
            exact_ci = conditional.confidence_interval(0.95)
            alternatives = _alternatives(
                pub_o,
                [
                    ("logistic regression on arm, profile-likelihood CI", _with_ci(*prof, 2)),
                    (
                        "conditional maximum likelihood with exact CI (R fisher.test)",
                        _with_ci(float(conditional.statistic), exact_ci.low, exact_ci.high, 2),
                    ),
                ],
            )
            found = _reproducing(alternatives)
            explanation = (
                f"Wald vs profile CI: the printed OR is what the {found[0].method} gives, not the Woolf (Wald) one"
                if found
                else "neither the Woolf, the profile-likelihood nor the conditional (exact) OR gives the printed one"
            )
    rows.append(
        _row(
            section,
            endpoint,
            "odds ratio (95% CI)",
            pub_o,
            recomputed_o,
            f"{o.method}; precision vs placebo",
            exact=(o.estimate, o.ci_low, o.ci_high),
            explanation=explanation,
            alternatives=alternatives,
            note=note,
        )
    )

    fisher = r.test.p
    pub_p = None if printed.p is None else format_p(printed.p)
    alternatives = ()
    explanation = ""
    if pub_p is not None and pub_p != format_p(fisher):
        chi2 = two_by_two_test(x1, n1, x2, n2, test="chi2")
        yates = two_by_two_test(x1, n1, x2, n2, test="chi2-yates")
        alternatives = _alternatives(
            pub_p,
            [
                (
                    f"{r.test.method}, rounded to 3 decimals and then to 2 (double rounding)",
                    double_rounded_p(fisher),
                ),
                (chi2.method, format_p(chi2.p)),
                (yates.method, format_p(yates.p)),
            ],
        )
        found = _reproducing(alternatives)
        explanation = f"Fisher vs printed P: the two-sided Fisher P is {fisher:.4f}, which prints as {format_p(fisher)}; "
        if found and found[0] is alternatives[0]:
            once = Decimal(repr(fisher)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
            explanation += (
                f"the printed {pub_p} is the Fisher P rounded twice ({fisher:.4f} -> {once} -> {pub_p})"
            )
        elif found:
            explanation += f"the printed {pub_p} is what the {found[0].method} gives"
        else:
            explanation += (
                f"no 2x2 test gives the printed {pub_p}; probably a survival-based P (log-rank), which needs "
                "patient-level times"
            )
    rows.append(
        _row(
            section,
            endpoint,
            "P",
            pub_p,
            format_p(fisher),
            r.test.method,
            exact=(fisher,),
            explanation=explanation,
            alternatives=alternatives,
        )
    )
    return rows


def _printed(ref: Mapping[str, Any], difference_key: str = "difference_pct", p_key: str = "p") -> _Printed:
    return _Printed(
        difference=(ref[difference_key], *ref["difference_ci95"]),
        difference_order="placebo - precision"
        if "placebo_minus_precision" in difference_key
        else "precision - placebo",
        odds_ratio=(ref["odds_ratio"], *ref["odds_ratio_ci95"]),
        p=ref[p_key],
    )


def _counts(pub: Mapping[str, Any], *path: str) -> dict[str, tuple[int, int]]:
    """``{"precision": (events, n), "placebo": (events, n)}`` at ``path`` of ``pub`` (as ``published.counts``)."""
    node: Any = pub
    for key in path:
        node = node[key]
    return {arm: (int(node[arm][0]), int(node[arm][1])) for arm in ARMS}


def _analysed(pub: Mapping[str, Any], events: Counts) -> dict[str, tuple[int, int]]:
    return {arm: (events[arm][0], int(pub["consort"]["analysed"][arm])) for arm in ARMS}


_CONSORT_N = "events as printed over N analysed in the CONSORT flow"


def _table2_rows(pub: Mapping[str, Any]) -> list[ReproducedRow]:
    t2 = pub["table2_expected_statistics"]
    rows: list[ReproducedRow] = []

    prim = _counts(pub, "table2_expected_statistics", "primary_sofa_d9")
    strata = pub["outcome_rates_for_calibration"]["primary_by_stratum"]
    stratum_events = {arm: sum(int(strata[s][arm][0]) for s in strata) for arm in ARMS}
    checked = {arm: (stratum_events[arm], int(pub["consort"]["analysed"][arm])) for arm in ARMS}
    rows += _binary_rows(
        "Primary: SOFA decrease >= 1.4 by day 9",
        "primary_sofa_d9",
        prim,
        checked,
        "events summed over the two strata, over N analysed in the CONSORT flow",
        _printed(t2["primary_sofa_d9"]),
        outcome="good",
    )
    for stratum in strata:
        c = _counts(pub, "outcome_rates_for_calibration", "primary_by_stratum", stratum)
        n = pub["consort"]["strata_analysed"][stratum]
        rows += _binary_rows(
            f"Primary in the {_STRATUM_NAMES.get(stratum, stratum)} stratum",
            f"primary_{stratum}",
            c,
            {arm: (c[arm][0], int(n[arm])) for arm in ARMS},
            "events as printed over the stratum's N analysed in the CONSORT flow",
            _Printed(),
            outcome="good",
        )
    m28 = _counts(pub, "table2_expected_statistics", "mortality_28d")
    rows += _binary_rows(
        "28-day mortality",
        "mortality_28d",
        m28,
        _analysed(pub, m28),
        _CONSORT_N,
        _printed(t2["mortality_28d"], "difference_pct_placebo_minus_precision", "p_printed"),
        outcome="bad",
    )
    m90 = _counts(pub, "outcome_rates_for_calibration", "mortality_90d")
    rows += _binary_rows(
        "90-day mortality", "mortality_90d", m90, _analysed(pub, m90), _CONSORT_N, _Printed(), outcome="bad"
    )
    d15 = _counts(pub, "outcome_rates_for_calibration", "sofa_d15_decrease")
    rows += [
        _with_note(
            r,
            "the reference file holds one set of day-15 counts; the text/table disagreement on day 15 cannot be "
            "checked because the other figure is not in the published reference file",
        )
        if r.statistic.endswith("n/N (%)")
        else r
        for r in _binary_rows(
            "SOFA decrease >= 1.4 by day 15",
            "sofa_d15_decrease",
            d15,
            _analysed(pub, d15),
            _CONSORT_N,
            _Printed(),
            outcome="good",
        )
    ]
    sidf = _counts(pub, "outcome_rates_for_calibration", "sidf_reversal")
    rows += _binary_rows(
        "SIDF reversal",
        "sidf_reversal",
        sidf,
        sidf,
        "counts as printed (the subset with serial draws: no other printed N to check against)",
        _Printed(),
        outcome="good",
    )
    rows += _ordinal_rows(pub)
    rows += _adjusted_rows(pub)
    return rows


_STRATUM_NAMES = {"mals": "MALS", "immunoparalysis": "immunoparalysis"}


def _with_note(row: ReproducedRow, note: str) -> ReproducedRow:
    return replace(row, note=note)


def _ordinal_rows(pub: Mapping[str, Any]) -> list[ReproducedRow]:
    section, endpoint = "Infection state on day 15 (ordinal)", "infection_day15"
    inf = pub["outcome_rates_for_calibration"]["infection_day15"]
    levels = [str(v) for v in inf["levels"]]
    rows: list[ReproducedRow] = []
    for i, level in enumerate(levels):
        published = {arm: (int(inf[arm][i]), sum(int(v) for v in inf[arm])) for arm in ARMS}
        checked = {arm: (published[arm][0], int(pub["consort"]["analysed"][arm])) for arm in ARMS}
        rows += _count_rows(
            section,
            endpoint,
            published,
            checked,
            "count as printed over N analysed in the CONSORT flow (the printed levels sum to N)",
            labels={arm: f"{level}, {arm} n/N (%)" for arm in ARMS},
        )
    r = proportional_odds_counts(levels, inf["precision"], inf["placebo"])
    o = r.odds_ratio
    rows += [
        _row(
            section,
            endpoint,
            "OR of a worse state (95% CI)",
            None,
            _ratio_ci(o),
            f"{r.method}; precision vs placebo",
            exact=(o.estimate, o.ci_low, o.ci_high),
            note=f"levels best to worst: {', '.join(r.levels)}",
        ),
        _row(section, endpoint, "P", None, format_p(o.p), r.method, exact=(o.p,)),
    ]
    return rows


def _cells(strata: Mapping[str, Any]) -> list[tuple[int, int, int, int]]:
    return [
        (int(s["precision"][0]), int(s["precision"][1]), int(s["placebo"][0]), int(s["placebo"][1]))
        for s in strata.values()
    ]


def _patients(cells: Sequence[tuple[int, int, int, int]]) -> pd.DataFrame:
    """One row per patient (outcome 0/1, arm 1 = precision, stratum index) from per-stratum counts."""
    parts = []
    for k, (x1, n1, x2, n2) in enumerate(cells):
        for arm, x, n in ((1, x1, n1), (0, x2, n2)):
            parts.append(pd.DataFrame({"y": [1] * x + [0] * (n - x), "arm": arm, "stratum": k}))
    return pd.concat(parts, ignore_index=True).astype(float)


def logistic_profile_ci(
    cells: Sequence[tuple[int, int, int, int]], conf_level: float = 0.95
) -> tuple[float, float, float]:
    """OR of arm with its profile-likelihood CI (R ``confint(glm)``) in a logistic model of arm (+ stratum).

    ``cells`` holds ``(x1, n1, x2, n2)`` per stratum; with more than one stratum the model adjusts for it.
    statsmodels has no profile interval: the arm coefficient is fixed as an offset and the deviance found by
    root finding where it exceeds its minimum by the chi-square(1) quantile.
    """
    data = _patients(cells)
    exog = pd.get_dummies(data["stratum"], prefix="s", drop_first=True, dtype=float)
    exog = sm.add_constant(exog, has_constant="add")
    full = sm.GLM(data["y"], pd.concat([exog, data["arm"]], axis=1), family=sm.families.Binomial()).fit()
    beta, se = float(full.params["arm"]), float(full.bse["arm"])
    limit = float(sps.chi2.ppf(conf_level, 1))

    def excess(b: float) -> float:
        fixed = sm.GLM(data["y"], exog, family=sm.families.Binomial(), offset=b * data["arm"]).fit()
        return 2 * (full.llf - fixed.llf) - limit

    low = optimize.brentq(excess, beta - 6 * se, beta, xtol=1e-12)
    high = optimize.brentq(excess, beta, beta + 6 * se, xtol=1e-12)
    return math.exp(beta), math.exp(low), math.exp(high)


def _adjusted_rows(pub: Mapping[str, Any]) -> list[ReproducedRow]:
    section, endpoint = "Adjusted primary odds ratio", "adjusted_primary"
    adj = pub["adjusted_primary"]
    low, high = (float(v) for v in adj["odds_ratio_ci95"])
    printed = (float(adj["odds_ratio"]), low, high)
    published = _with_ci(*printed, 2)
    strata = pub["outcome_rates_for_calibration"]["primary_by_stratum"]
    cells = _cells(strata)
    fit = logistic_regression(_patients(cells), "y", ["arm", "stratum"], categorical=["stratum"])
    arm = next(t for t in fit.terms if t.name == "arm")
    prof = logistic_profile_ci(cells)
    mh = mantel_haenszel(cells, names=list(strata)).odds_ratio
    x1, n1, x2, n2 = (sum(c[i] for c in cells) for i in range(4))
    total = [(x1, n1, x2, n2)]
    unadjusted = compare_proportions(x1, n1, x2, n2).odds_ratio
    prof_unadj = logistic_profile_ci(total)
    alternatives = _alternatives(
        published,
        [
            ("logistic regression arm + stratum from counts, wald CI", _ratio_ci(arm)),
            ("logistic regression arm + stratum from counts, profile-likelihood CI", _with_ci(*prof, 2)),
            (f"Mantel-Haenszel over strata, {mh.method}", _ratio_ci(mh)),
            ("unadjusted, woolf logit (= logistic regression on arm, wald CI)", _ratio_ci(unadjusted)),
            ("unadjusted logistic regression, profile-likelihood CI", _with_ci(*prof_unadj, 2)),
        ],
    )
    lo, hi = math.log(printed[0]) - math.log(printed[1]), math.log(printed[2]) - math.log(printed[0])
    wald = wald_shaped(*printed)
    explanation = (
        f"the model ({adj['model']}) needs each patient's baseline CCI, SOFA and site, which the paper does not "
        "publish; from counts only the stratum can be adjusted for (alternatives). Wald vs profile CI: the printed "
        f"interval is {'' if wald else 'not '}symmetric about the printed OR on the log scale within rounding "
        f"(log distances {lo:.3f} below, {hi:.3f} above), as a Wald interval is"
        + (
            "; a profile-likelihood interval is not (unadjusted model: "
            f"{math.log(prof_unadj[0] / prof_unadj[1]):.3f} below, {math.log(prof_unadj[2] / prof_unadj[0]):.3f} above)"
            if not wald_shaped(round(prof_unadj[0], 2), round(prof_unadj[1], 2), round(prof_unadj[2], 2))
            else ""
        )
    )
    return [
        _row(
            section,
            endpoint,
            "adjusted odds ratio (95% CI)",
            published,
            _ratio_ci(arm),
            arm.method,
            exact=(arm.estimate, arm.ci_low, arm.ci_high),
            explanation=explanation,
            alternatives=alternatives,
            status=MATCH if _ratio_ci(arm) == published else NOT_RECOMPUTABLE,
        )
    ]


def _strata_pooled_rows(pub: Mapping[str, Any]) -> list[ReproducedRow]:
    section, endpoint = "Primary endpoint over the strata", "primary_by_stratum"
    strata = pub["outcome_rates_for_calibration"]["primary_by_stratum"]
    mh = mantel_haenszel(_cells(strata), names=list(strata))
    o = mh.odds_ratio
    return [
        _row(
            section,
            endpoint,
            "Mantel-Haenszel OR (95% CI)",
            None,
            _ratio_ci(o),
            o.method,
            exact=(o.estimate, o.ci_low, o.ci_high),
        ),
        _row(
            section,
            endpoint,
            "Breslow-Day homogeneity P",
            None,
            format_p(mh.homogeneity.p),
            mh.homogeneity.method,
            exact=(mh.homogeneity.p,),
        ),
    ]


def _table3_rows(pub: Mapping[str, Any]) -> list[ReproducedRow]:
    t3 = pub["table3_serious_aes_patients"]
    n_prec, n_plac = (int(pub["consort"]["analysed"][arm]) for arm in ARMS)
    rows = []
    for term, value in t3.items():
        if not isinstance(value, dict):
            continue
        for relation in ("related", "unrelated"):
            if relation not in value:
                continue
            a, b = int(value[relation]["precision"]), int(value[relation]["placebo"])
            t = two_by_two_test(a, n_prec, b, n_plac)
            unit = (
                "patients with >= 1 event"
                if term == "any_sae"
                else "the reference counts events for this term; Fisher treats them as patients (approximation)"
            )
            rows.append(
                _row(
                    "Table 3: serious adverse events",
                    f"table3_{term}_{relation}",
                    f"{term.replace('_', ' ')}, {relation}: Fisher P ({a}/{n_prec} vs {b}/{n_plac})",
                    None,
                    format_p(t.p),
                    t.method,
                    exact=(t.p,),
                    note=unit,
                )
            )
    return rows


def _sample_size_rows(pub: Mapping[str, Any]) -> list[ReproducedRow]:
    s = pub["design"]["sample_size_inputs"]
    section = (
        f"Sample size ({100 * s['p_precision']:g}% vs {100 * s['p_placebo']:g}%, alpha {s['alpha_two_sided']:g}, "
        f"power {s['power']:g}, dropout {100 * s['dropout']:g}%)"
    )

    def size(method: str) -> Any:
        return sample_size_two_proportions(
            s["p_precision"],
            s["p_placebo"],
            alpha=s["alpha_two_sided"],
            power=s["power"],
            dropout=s["dropout"],
            method=method,
        )

    exact = size("fisher-exact")
    published = str(int(s["total_planned"]))
    recomputed = str(exact.total_with_dropout)
    others = [size(m) for m in ("normal-cc", "normal", "arcsine")]
    alternatives = _alternatives(published, [(o.method, str(o.total_with_dropout)) for o in others])
    found = _reproducing(alternatives)
    return [
        _row(
            section,
            "sample_size",
            "per group",
            None,
            str(exact.per_group),
            exact.method,
            exact=(exact.per_group_exact, exact.achieved_power),
            note=f"exact Fisher power at {exact.per_group} = {exact.achieved_power:.4f}",
        ),
        _row(
            section,
            "sample_size",
            "total planned, with dropout",
            published,
            recomputed,
            exact.method,
            exact=(exact.total_with_dropout,),
            explanation=(
                f"the exact Fisher size ({exact.per_group} per group) with {100 * s['dropout']:g}% dropout gives "
                f"{recomputed}; "
                + (
                    f"the planned {published} is what the {found[0].method} gives"
                    if found
                    else f"no sample-size method gives the planned {published}"
                )
            ),
            alternatives=alternatives,
        ),
    ]


def reproduce_published(reference: Mapping[str, Any] | None = None) -> list[ReproducedRow]:
    """All rows: Table 2 in the paper's order (strata after the primary), then Table 3 and the sample size.

    ``reference`` defaults to the published figures of the package (:func:`published_reference`); another
    dict of the same shape (e.g. a test's altered copy) is compared instead.
    """
    pub = published_reference() if reference is None else reference
    rows = _table2_rows(pub)
    rows += _strata_pooled_rows(pub)
    rows += _table3_rows(pub)
    rows += _sample_size_rows(pub)
    for r in rows:
        if r.status not in STATUSES:
            raise AssertionError(f"unknown status {r.status!r}: {r.section} / {r.statistic}")
        if r.status in (MISMATCH, NOT_RECOMPUTABLE) and not r.explanation:
            raise AssertionError(f"unexplained {r.status}: {r.section} / {r.statistic}")
        if (r.published is None) != (r.status == NOT_IN_REFERENCE):
            raise AssertionError(f"published value and status disagree: {r.section} / {r.statistic}")
    return rows


def summary(rows: Sequence[ReproducedRow]) -> dict[str, int]:
    """Count of statistics per status."""
    out: dict[str, int] = {}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return out


def as_json(rows: Sequence[ReproducedRow], reference: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of ``immunosep reproduce --json`` and ``reproduce.json``."""
    pub = published_reference() if reference is None else reference
    return {
        "source": pub["source"],
        "statuses": list(STATUSES),
        "summary": summary(rows),
        "rows": [_jsonable(r) for r in rows],
    }


def _jsonable(row: ReproducedRow) -> dict[str, Any]:
    out = asdict(row)
    out["exact"] = [v if math.isfinite(v) else None for v in row.exact]
    return out


def _flat(row: ReproducedRow) -> dict[str, Any]:
    out = asdict(row)
    out["published"] = "" if row.published is None else row.published
    out["alternatives"] = "; ".join(
        f"{a.method}: {a.value}{' (gives the printed figure)' if a.reproduces_published else ''}"
        for a in row.alternatives
    )
    out["exact"] = " ".join(repr(v) for v in row.exact)
    return out


def write_outputs(rows: Sequence[ReproducedRow], out_dir: Path) -> tuple[Path, Path]:
    """Write ``reproduce.json`` and ``reproduce.csv`` to ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "reproduce.json"
    json_path.write_text(json.dumps(as_json(rows), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    csv_path = out_dir / "reproduce.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ReproducedRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(_flat(r) for r in rows)
    return json_path, csv_path


__all__ = [
    "MATCH",
    "MISMATCH",
    "NOT_IN_REFERENCE",
    "NOT_RECOMPUTABLE",
    "STATUSES",
    "Alternative",
    "ReproducedRow",
    "as_json",
    "double_rounded_p",
    "logistic_profile_ci",
    "reproduce_published",
    "summary",
    "wald_shaped",
    "write_outputs",
]
