"""Calibration report: every published target against its mean over many simulated trials.

Each target is a statistic of one trial (a proportion, a median, a mean, a count) computed on a simulated
trial as on the published one; the report gives its mean and standard deviation over ``trials`` simulated
trials of the published size, the published value and a tolerance. A target is *within* when
``|mean - published| <= tolerance``.

**Tolerance principle.** A target's tolerance is :data:`TOL_STANDARD_ERRORS` (one half) of the standard error
with which a trial of the published size estimates the figure, computed from the published figures
themselves: binomial for a proportion (``sqrt(p (1 - p) / n)`` with ``p = (x + 1/2) / (n + 1)``, so that a
published 0/131 still has a tolerance), ``SD / sqrt(n)`` for a mean, ``sqrt(pi / 2) x (IQR / 1.349) /
sqrt(n)`` for a median (a normal approximation from the published interquartile range) and ``sqrt(count)``
(Poisson) for a count of patients. A median of whole-number scores moves in steps of half a point, so its
tolerance is at least :data:`TOL_SCORE_MEDIAN_FLOOR` points. A model that misses a figure by half a
standard error is indistinguishable from the trial (z = 0.5), while the Monte Carlo error of the mean over
200 trials is about 1/14 of a standard error: so a tolerance is a property of the published trial, not of
the number of simulated trials. Example: the renal SOFA median (published 0.5 and 0 by arm, pooled 0.25)
has tolerance 0.25, so a model whose median is three times too high (0.75) fails.

Published figures are read from the package's data file through :mod:`immunosep.published` (JAMA 2025,
doi:10.1001/jama.2025.24175); no published number is written here. Statistics the trial's analysis derives
(death by day 28, "died before day 9" of the CONSORT flow, the Youden cut-offs of the post hoc subgroups)
are computed on a simulated trial by the analysis code itself (:mod:`immunosep.analysis`), so the model is
calibrated to the figures as the analysis counts them.

The report also shows the severity check of the post hoc subgroup analyses: per simulated trial, the ROC
AUC and Youden cut-off of baseline APACHE II, Charlson index and SOFA for 28-day mortality (by
:func:`immunosep.analysis.sap.youden_cutoffs`), beside the paper's cut-offs (its Table 1 categories).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunosep.analysis.adsl import derive_vars_mortality, mortality_variable
from immunosep.analysis.datasets import AnalysisDatasets, derive_consort
from immunosep.analysis.sap import YOUDEN_VARIABLES, youden_cutoffs
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol
from immunosep.published import counts, published_reference
from immunosep.simulate.cohort import VirtualTrial, simulate_trial
from immunosep.simulate.model import ModelParameters, default_parameters
from immunosep.simulate.population import draw_screening_log

ARMS = ("precision", "placebo")

#: Tolerance of a target, in standard errors of the published figure (see the module docstring).
TOL_STANDARD_ERRORS = 0.5
#: Least tolerance of a median of whole-number scores (points): such a median moves in steps of 0.5.
TOL_SCORE_MEDIAN_FLOOR = 0.25
#: Absolute tolerance (proportion) of targets still given as fractions rather than published counts.
TOL_OUTCOME = 0.03

#: ADSL columns of the baseline scores of the post hoc subgroups, from the virtual trial's baseline columns.
SEVERITY_COLUMNS = {"apache2": "apache2", "cci": "charlson", "sofa_baseline": "sofa_total"}

#: Baseline laboratory column of the virtual trial -> its median/IQR in the published Table 1.
LAB_MEDIANS = {
    "creatinine_mg_dl": "creatinine_median_iqr_mg_dl",
    "bilirubin_mg_dl": "bilirubin_median_iqr_mg_dl",
    "pao2_fio2_mmhg": "pao2_fio2_median_iqr_mmhg",
    "lactate_mg_dl": "lactate_median_iqr_mg_dl",
}

Statistic = Callable[[VirtualTrial, np.ndarray], float]


def published_screened() -> int:
    """Patients screened (CONSORT, published)."""
    return int(published_reference()["consort"]["screened"])


def published_randomized() -> int:
    """Patients randomized (CONSORT, published): the size of every simulated trial of the report."""
    return int(published_reference()["consort"]["randomized"])


# Kept as module constants for callers; their values come from the data file.
PUBLISHED_SCREENED = published_screened()
PUBLISHED_RANDOMIZED = published_randomized()


# -- standard errors of published figures (the tolerance principle) ---------------------------------------


def se_proportion(events: float, n: float) -> float:
    """Binomial SE of ``events / n``, with ``p = (events + 1/2) / (n + 1)`` so that 0/n has one too."""
    p = (events + 0.5) / (n + 1.0)
    return math.sqrt(p * (1.0 - p) / n)


def se_mean(sd: float, n: float) -> float:
    """SE of a mean with standard deviation ``sd`` over ``n`` patients."""
    return sd / math.sqrt(n)


def se_median(q1: float, q3: float, n: float) -> float:
    """SE of a median from the interquartile range: ``sqrt(pi/2) * sigma / sqrt(n)``, ``sigma = IQR / 1.349``."""
    return math.sqrt(math.pi / 2.0) * ((q3 - q1) / 1.349) / math.sqrt(n)


def se_count(count: float) -> float:
    """Poisson SE of a count of patients (at least that of a count of 1)."""
    return math.sqrt(max(count, 1.0))


def tolerance(se: float, *, score_median: bool = False) -> float:
    """:data:`TOL_STANDARD_ERRORS` standard errors; at least the score-median floor for whole-number scores."""
    tol = TOL_STANDARD_ERRORS * se
    return max(tol, TOL_SCORE_MEDIAN_FLOOR) if score_median else tol


@dataclass(frozen=True)
class Target:
    """A published figure and how to compute it on a simulated trial (``mask`` = the group's patients)."""

    name: str
    group: str  # "precision", "placebo" or "all"
    published: float
    tolerance: float
    statistic: Statistic
    kind: str  # "proportion", "median", "mean", "count"


@dataclass(frozen=True)
class CalibrationRow:
    name: str
    group: str
    kind: str
    published: float
    simulated_mean: float
    simulated_sd: float
    tolerance: float

    @property
    def within(self) -> bool:
        return bool(abs(self.simulated_mean - self.published) <= self.tolerance)


@dataclass(frozen=True)
class SeverityRow:
    """ROC of one baseline score for 28-day mortality over the simulated trials (post hoc subgroups).

    ``auc_*`` summarise the per-trial AUC (Mann-Whitney, as the analysis computes it); ``cutoff_*`` the
    per-trial Youden cut-off (a midpoint between observed scores); ``share_auc_above_half`` the share of
    trials whose AUC exceeds 0.5; ``published_cutoff`` the paper's cut-off (its Table 1 category "score >=
    c" has the Youden midpoint ``c - 0.5``); ``published_q1``/``published_q3`` the pooled published IQR of
    the score. ``plausible``: AUC clearly above 0.5 (mean > 0.5 + 2 SD / sqrt(trials) and above 0.5 in
    most trials) and the median cut-off inside the published IQR.
    """

    variable: str
    label: str
    auc_mean: float
    auc_sd: float
    share_auc_above_half: float
    cutoff_median: float
    cutoff_q1: float
    cutoff_q3: float
    published_cutoff: float
    published_q1: float
    published_q3: float
    trials: int

    @property
    def auc_clearly_above_half(self) -> bool:
        return bool(
            self.auc_mean > 0.5 + 2.0 * self.auc_sd / math.sqrt(self.trials)
            and self.share_auc_above_half > 0.5
        )

    @property
    def cutoff_plausible(self) -> bool:
        return bool(self.published_q1 <= self.cutoff_median <= self.published_q3)

    @property
    def plausible(self) -> bool:
        return self.auc_clearly_above_half and self.cutoff_plausible


@dataclass(frozen=True)
class CalibrationReport:
    trials: int
    seed: int
    rows: tuple[CalibrationRow, ...]
    severity: tuple[SeverityRow, ...] = ()

    @property
    def all_within(self) -> bool:
        return all(r.within for r in self.rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "trials": self.trials,
            "seed": self.seed,
            "all_within": self.all_within,
            "targets": [
                {
                    "target": r.name,
                    "group": r.group,
                    "kind": r.kind,
                    "published": r.published,
                    "simulated_mean": r.simulated_mean,
                    "simulated_sd": r.simulated_sd,
                    "tolerance": r.tolerance,
                    "within": r.within,
                }
                for r in self.rows
            ],
            "severity": [
                {
                    "variable": s.variable,
                    "label": s.label,
                    "auc_mean": s.auc_mean,
                    "auc_sd": s.auc_sd,
                    "share_auc_above_half": s.share_auc_above_half,
                    "youden_cutoff_median": s.cutoff_median,
                    "youden_cutoff_iqr": [s.cutoff_q1, s.cutoff_q3],
                    "published_cutoff": s.published_cutoff,
                    "published_iqr": [s.published_q1, s.published_q3],
                    "auc_clearly_above_half": s.auc_clearly_above_half,
                    "cutoff_plausible": s.cutoff_plausible,
                }
                for s in self.severity
            ],
        }


# -- statistics of a simulated trial ------------------------------------------------------------------


def _rate(values: Callable[[VirtualTrial], np.ndarray]) -> Statistic:
    return lambda t, m: float(np.mean(values(t)[m])) if m.any() else float("nan")


def _rate_within(
    values: Callable[[VirtualTrial], np.ndarray], among: Callable[[VirtualTrial], np.ndarray]
) -> Statistic:
    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        sel = m & among(t)
        return float(np.mean(values(t)[sel])) if sel.any() else float("nan")

    return stat


def _median(column: str) -> Statistic:
    return lambda t, m: float(np.median(np.asarray(t.baseline.columns[column], dtype=float)[m]))


def _median_within(column: str, stratum: str) -> Statistic:
    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        sel = m & (t.strata == stratum)
        return (
            float(np.median(np.asarray(t.baseline.columns[column], dtype=float)[sel]))
            if sel.any()
            else float("nan")
        )

    return stat


def _mean(column: str) -> Statistic:
    return lambda t, m: float(np.mean(np.asarray(t.baseline.columns[column], dtype=float)[m]))


def _column_rate(column: str, predicate: Callable[[np.ndarray], np.ndarray] | None = None) -> Statistic:
    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        values = np.asarray(t.baseline.columns[column])
        flags = predicate(values) if predicate is not None else values.astype(bool)
        return float(np.mean(flags[m]))

    return stat


def _patients_with_term(term: str, related: bool, params: ModelParameters) -> Statistic:
    levels = set(params.adverse_events.related_levels if related else params.adverse_events.unrelated_levels)

    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        hit = np.zeros(m.shape[0], dtype=bool)
        idx = [e.patient for e in t.adverse_events if e.preferred_term == term and e.relatedness in levels]
        hit[idx] = True
        return float(np.mean(hit[m]))

    return stat


def _any_sae(related: bool, params: ModelParameters) -> Statistic:
    levels = set(params.adverse_events.related_levels if related else params.adverse_events.unrelated_levels)

    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        hit = np.zeros(m.shape[0], dtype=bool)
        hit[[e.patient for e in t.adverse_events if e.relatedness in levels]] = True
        return float(np.mean(hit[m]))

    return stat


def _stratum_is(stratum: str) -> Callable[[VirtualTrial], np.ndarray]:
    return lambda t: np.asarray(t.strata == stratum)


def _infection_is(level: int) -> Callable[[VirtualTrial], np.ndarray]:
    return lambda t: np.asarray(t.infection_day15 == level)


def _equals(value: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: np.asarray(v == value)


def _carried_forward_alive(last_day: int) -> Callable[[VirtualTrial], np.ndarray]:
    """Alive patients whose SOFA was carried forward within the window (discharged or lost)."""
    return lambda t: np.asarray(
        t.primary.carried_forward[:, :last_day].any(axis=1) & ~t.primary.imputed_death.any(axis=1)
    )


def _count_withdrawn(t: VirtualTrial, m: np.ndarray) -> float:
    return float(np.sum(t.outcomes.withdrawn & m))


def _by_arm(
    name: str, published: dict[str, float], tolerance: float, stat: Statistic, kind: str
) -> list[Target]:
    return [Target(name, arm, published[arm], tolerance, stat, kind) for arm in ARMS]


def _by_arm_counts(name: str, published: dict[str, tuple[int, int]], stat: Statistic) -> list[Target]:
    """A proportion per arm from published ``(events, n)``, with the binomial tolerance."""
    return [
        Target(name, arm, x / n, tolerance(se_proportion(x, n)), stat, "proportion")
        for arm, (x, n) in ((a, published[a]) for a in ARMS)
    ]


_LAST_ADSL: list[tuple[VirtualTrial, Protocol, pd.DataFrame]] = []


def virtual_adsl(t: VirtualTrial, protocol: Protocol) -> pd.DataFrame:
    """The ADSL variables the calibration needs, derived from a virtual trial by the analysis code.

    Withdrawn patients keep their row with ``analysed = 0`` and nothing else, as after erasure; death by
    each protocol mortality day is added by :func:`immunosep.analysis.adsl.derive_vars_mortality`. The
    last trial's ADSL is kept (every statistic of a trial reads the same one); do not modify it.
    """
    if _LAST_ADSL and _LAST_ADSL[0][0] is t and _LAST_ADSL[0][1] is protocol:
        return _LAST_ADSL[0][2]
    adsl = _derive_virtual_adsl(t, protocol)
    _LAST_ADSL[:] = [(t, protocol, adsl)]
    return adsl


def _derive_virtual_adsl(t: VirtualTrial, protocol: Protocol) -> pd.DataFrame:
    n = int(t.arms.shape[0])
    analysed = np.asarray(t.analysed)
    ids = [f"V{i:05d}" for i in range(n)]
    base = pd.DataFrame({"usubjid": ids, "randfl": 1, "analysed": analysed.astype(int), "arm": t.arms})
    base["stratum"] = pd.Series(t.strata, dtype=object).where(analysed, None)
    for variable, column in SEVERITY_COLUMNS.items():
        base[variable] = np.where(analysed, np.asarray(t.baseline.columns[column], dtype=float), np.nan)
    last_day = max(protocol.endpoints.mortality.days)
    death = np.where(analysed & (t.outcomes.death_day <= last_day), t.outcomes.death_day, np.nan)
    vital = pd.DataFrame({"usubjid": ids, "death_day": death})
    return derive_vars_mortality(base, vital, protocol)


def virtual_consort(t: VirtualTrial, protocol: Protocol) -> dict[str, Any]:
    """The CONSORT counts of the randomized patients of a virtual trial, by the analysis's derivation."""
    adsl = virtual_adsl(t, protocol)
    screening = pd.DataFrame({"randomized": True, "exclusion_reasons": "", "stratum": adsl["stratum"]})
    return derive_consort(screening, adsl, protocol)


def _died_before_primary_window_end(arm: str, protocol: Protocol) -> Statistic:
    """Share of the arm's analysed patients counted as "died before day 9" by the analysis's CONSORT."""

    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        consort = virtual_consort(t, protocol)
        analysed = consort["analysed_by_arm"][arm]
        return consort["died_before_primary_window_end_by_arm"][arm] / analysed if analysed else float("nan")

    return stat


def _mortality_by_day(day: int, protocol: Protocol) -> Statistic:
    """Death by study day ``day`` as the analysis's ADSL counts it (``death_28d``)."""
    variable = mortality_variable(day)

    def stat(t: VirtualTrial, m: np.ndarray) -> float:
        flags = virtual_adsl(t, protocol)[variable].to_numpy(dtype=float, na_value=np.nan)
        return float(np.nanmean(flags[m])) if m.any() else float("nan")

    return stat


def _at_least(threshold: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: np.asarray(v >= threshold)


def _ge_threshold(key: str) -> float:
    """The category threshold of a published Table 1 key such as ``apache2_ge25`` (25)."""
    match = re.search(r"_ge(\d+(?:\.\d+)?)$", key)
    if match is None:
        raise KeyError(f"{key} is not a '<score>_ge<threshold>' category")
    return float(match.group(1))


def _frac(counts: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {arm: counts[arm][0] / counts[arm][1] for arm in ARMS}


def _pooled(by_arm: dict[str, float], n: dict[str, int]) -> float:
    return sum(by_arm[a] * n[a] for a in ARMS) / sum(n.values())


def _pool_median_iqr(by_arm: dict[str, list[float]]) -> tuple[float, float, float]:
    """Median, Q1, Q3 pooled over the arms as the average of the arms' printed values."""
    med, q1, q3 = (float(np.mean([by_arm[a][k] for a in ARMS])) for k in range(3))
    return med, q1, q3


def targets(params: ModelParameters, protocol: Protocol) -> list[Target]:
    """Every calibration target with its published value (JAMA 2025 Tables 1-3, Figure 1, via the data file).

    Table 1 figures are pooled over the arms (randomization makes the arms' distributions equal): counts
    are summed, means weighted by the arms' sizes, medians and quartiles averaged.
    """
    pub = published_reference()
    consort, table1, rates = pub["consort"], pub["table1"], pub["outcome_rates_for_calibration"]
    n = {arm: int(consort["analysed"][arm]) for arm in ARMS}
    n_all = sum(n.values())
    out: list[Target] = []
    achieved = lambda t: t.primary.achieved  # noqa: E731
    out += _by_arm_counts(
        "primary endpoint (SOFA decrease >= 1.4 at day 9)",
        counts("table2_expected_statistics", "primary_sofa_d9"),
        _rate(achieved),
    )
    for stratum in ("mals", "immunoparalysis"):
        out += _by_arm_counts(
            f"primary endpoint, {stratum}",
            counts("outcome_rates_for_calibration", "primary_by_stratum", stratum),
            _rate_within(achieved, _stratum_is(stratum)),
        )
    out += _by_arm_counts(
        "SOFA decrease >= 1.4 at day 15",
        counts("outcome_rates_for_calibration", "sofa_d15_decrease"),
        _rate(lambda t: t.sofa_d15.achieved),
    )
    died = consort["died_before_day9"]
    for arm in ARMS:
        x = int(died[arm])
        out.append(
            Target(
                "died before day 9",
                arm,
                x / n[arm],
                tolerance(se_proportion(x, n[arm])),
                _died_before_primary_window_end(arm, protocol),
                "proportion",
            )
        )
    first_day, last_day = protocol.endpoints.mortality.days[0], max(protocol.endpoints.mortality.days)
    out += _by_arm_counts(
        f"{first_day}-day mortality",
        counts("table2_expected_statistics", "mortality_28d"),
        _mortality_by_day(first_day, protocol),
    )
    out += _by_arm_counts(
        f"{last_day}-day mortality",
        counts("outcome_rates_for_calibration", "mortality_90d"),
        _mortality_by_day(last_day, protocol),
    )
    out += _by_arm(
        "SIDF assessable",
        _frac({"precision": (59, 131), "placebo": (66, 145)}),
        TOL_OUTCOME,
        _rate(lambda t: t.sidf_assessable),
        "proportion",
    )
    out += _by_arm(
        "SIDF reversal among assessable",
        _frac({"precision": (46, 59), "placebo": (32, 66)}),
        TOL_OUTCOME,
        _rate_within(lambda t: t.sidf_reversed, lambda t: t.sidf_assessable),
        "proportion",
    )
    levels = protocol.endpoints.infection_day15.levels
    infection = rates["infection_day15"]
    for i, level in enumerate(levels):
        out += _by_arm_counts(
            f"infection day 15: {level}",
            {arm: (int(infection[arm][i]), n[arm]) for arm in ARMS},
            _rate(_infection_is(i)),
        )
    carried = float(consort["sofa_carried_forward_pct_all"]) / 100.0
    out.append(
        Target(
            "SOFA carried forward (alive, discharged before day 9)",
            "all",
            carried,
            tolerance(se_proportion(carried * n_all, n_all)),
            _rate(_carried_forward_alive(protocol.endpoints.primary.window_last_day)),
            "proportion",
        )
    )
    mals = sum(int(v) for v in consort["strata_analysed"]["mals"].values())
    out.append(
        Target(
            "MALS share of analysed",
            "all",
            mals / n_all,
            tolerance(se_proportion(mals, n_all)),
            _rate(lambda t: t.strata == "mals"),
            "proportion",
        )
    )
    for arm in ARMS:
        withdrawn = int(consort["withdrew_consent_removed_data"][arm])
        out.append(
            Target(
                "withdrew consent, data removed (patients)",
                arm,
                withdrawn,
                tolerance(se_count(withdrawn)),
                _count_withdrawn,
                "count",
            )
        )

    # Table 1 (pooled over arms: randomization makes the arms' distributions equal).
    def pooled_rate(name: str, by_arm: dict[str, Any], stat: Statistic) -> Target:
        x = sum(int(by_arm[a]) for a in ARMS)
        return Target(name, "all", x / n_all, tolerance(se_proportion(x, n_all)), stat, "proportion")

    def pooled_mean(name: str, by_arm: dict[str, list[float]], column: str) -> Target:
        mean = sum(by_arm[a][0] * n[a] for a in ARMS) / n_all
        sd = math.sqrt(sum(by_arm[a][1] ** 2 * n[a] for a in ARMS) / n_all)
        return Target(name, "all", mean, tolerance(se_mean(sd, n_all)), _mean(column), "mean")

    def pooled_median(
        name: str, by_arm: dict[str, list[float]], stat: Statistic, size: int, *, score: bool
    ) -> Target:
        med, q1, q3 = _pool_median_iqr(by_arm)
        return Target(
            name, "all", med, tolerance(se_median(q1, q3, size), score_median=score), stat, "median"
        )

    out.append(pooled_rate("male", table1["male"], _column_rate("sex", lambda v: v == "male")))
    out.append(pooled_mean("age, mean (years)", table1["age_mean_sd"], "age_years"))
    for name, by_arm in table1["history"].items():
        out.append(pooled_rate(f"history: {name}", by_arm, _column_rate(f"history_{name}")))
    out.append(
        pooled_rate("mechanical ventilation", table1["mechanical_ventilation"], _column_rate("ventilated"))
    )
    out.append(pooled_rate("CVVH", table1["cvvh"], _column_rate("cvvh")))
    for name, by_arm in table1["infection"].items():
        out.append(pooled_rate(f"infection: {name}", by_arm, _column_rate("infection", _equals(name))))
    for label, key, column in (
        ("APACHE II", "apache2", "apache2"),
        ("Charlson comorbidity index", "cci", "charlson"),
        ("SOFA", "sofa", "sofa_total"),
    ):
        out.append(
            pooled_median(f"{label}, median", table1[f"{key}_median_iqr"], _median(column), n_all, score=True)
        )
        (category,) = [k for k in table1 if k.startswith(f"{key}_ge")]
        threshold = _ge_threshold(category)
        out.append(
            pooled_rate(
                f"{label} >= {threshold:g}",
                table1[category],
                _column_rate(column, _at_least(threshold)),
            )
        )
    components = {
        "respiration": "respiratory",
        "coagulation": "coagulation",
        "cns": "neurologic",
        "cardiovascular": "cardiovascular",
        "liver": "liver",
        "renal": "renal",
    }
    for comp, key in components.items():
        out.append(
            pooled_median(
                f"SOFA {comp}, median",
                table1["sofa_components_median_iqr"][key],
                _median(f"sofa_{comp}"),
                n_all,
                score=True,
            )
        )
    strata_n = {s: sum(int(v) for v in by_arm.values()) for s, by_arm in consort["strata_analysed"].items()}
    for column, key in (("ferritin_ng_ml", "ferritin_median_iqr_ng_ml"), ("hla_dr", "hla_dr_median_iqr")):
        for stratum in ("mals", "immunoparalysis"):
            out.append(
                pooled_median(
                    f"{column}, median, {stratum}",
                    table1[key][stratum],
                    _median_within(column, stratum),
                    strata_n[stratum],
                    score=False,
                )
            )
    out.append(pooled_mean("WBC per uL, mean", table1["wbc_mean_sd_per_ul"], "wbc_per_ul"))
    out.append(
        pooled_mean("platelets x10^3/uL, mean", table1["platelets_mean_sd_1e3_ul"], "platelets_1e3_ul")
    )
    for column, key in LAB_MEDIANS.items():
        out.append(
            pooled_median(
                f"{column}, median",
                table1[key],
                _median(column),
                n_all,
                score=False,
            )
        )

    # Table 3 serious adverse events: patients with >= 1 (any) and with each preferred term.
    table3 = pub["table3_serious_aes_patients"]
    for label, related in (("related", True), ("unrelated", False)):
        out += _by_arm_counts(
            f"any serious AE, {label}",
            {arm: (int(table3["any_sae"][label][arm]), n[arm]) for arm in ARMS},
            _any_sae(related, params),
        )
    term_of = {spec.published: term for term, spec in params.adverse_events.terms.items()}
    for key, entry in table3.items():
        if key == "any_sae" or not isinstance(entry, dict) or not ({"related", "unrelated"} & set(entry)):
            continue
        term = term_of.get(key, key)
        for label, related in (("related", True), ("unrelated", False)):
            if label not in entry:
                continue
            out += _by_arm_counts(
                f"SAE {term}, {label}",
                {arm: (int(entry[label][arm]), n[arm]) for arm in ARMS},
                _patients_with_term(term, related, params),
            )
    return out


def _screened_randomized_fraction(
    rng: np.random.Generator, params: ModelParameters, protocol: Protocol
) -> float:
    log = draw_screening_log(rng, PUBLISHED_SCREENED, params, protocol)
    return sum(1 for p in log if p.reason == "") / PUBLISHED_SCREENED


def severity_of_trial(t: VirtualTrial, protocol: Protocol) -> dict[str, tuple[float, float]]:
    """``variable -> (AUC, Youden cut-off)`` of each post hoc subgroup score for death by the first mortality
    day, by the analysis's :func:`immunosep.analysis.sap.youden_cutoffs` (NaN when not estimable).

    The AUC is that of "higher score = death" (the paper's direction), whatever direction the analysis
    picked for this trial, so a trial where the score goes the wrong way shows an AUC below 0.5.
    """
    empty = pd.DataFrame()
    ds = AnalysisDatasets(adsl=virtual_adsl(t, protocol), adsofa=empty, adtte=empty, adae=empty, consort={})
    result = youden_cutoffs(ds, protocol)
    out: dict[str, tuple[float, float]] = {}
    for variable in YOUDEN_VARIABLES:
        entry = result[variable]
        roc = entry.get("roc")
        if roc is None:
            out[variable] = (float("nan"), float("nan"))
            continue
        auc = float(roc["auc"]["estimate"])
        out[variable] = (auc if roc["direction"] == ">" else 1.0 - auc, float(entry["cutoff"]))
    return out


def _severity_rows(values: dict[str, np.ndarray], trials: int) -> tuple[SeverityRow, ...]:
    table1 = published_reference()["table1"]
    keys = {"apache2": "apache2", "cci": "cci", "sofa_baseline": "sofa"}
    rows = []
    for variable, label in YOUDEN_VARIABLES.items():
        auc, cut = values[variable][:, 0], values[variable][:, 1]
        key = keys[variable]
        (category,) = [k for k in table1 if k.startswith(f"{key}_ge")]
        _, q1, q3 = _pool_median_iqr(table1[f"{key}_median_iqr"])
        c_q1, c_med, c_q3 = (float(v) for v in np.nanquantile(cut, [0.25, 0.5, 0.75]))
        rows.append(
            SeverityRow(
                variable=variable,
                label=label,
                auc_mean=float(np.nanmean(auc)),
                auc_sd=float(np.nanstd(auc, ddof=1)) if trials > 1 else float("nan"),
                share_auc_above_half=float(np.mean(auc > 0.5)),
                cutoff_median=c_med,
                cutoff_q1=c_q1,
                cutoff_q3=c_q3,
                published_cutoff=_ge_threshold(category) - 0.5,
                published_q1=q1,
                published_q3=q3,
                trials=trials,
            )
        )
    return tuple(rows)


def calibration_report(
    trials: int = 200,
    *,
    seed: int = 20251208,
    params: ModelParameters | None = None,
    protocol: Protocol | None = None,
) -> CalibrationReport:
    """Simulate ``trials`` trials of the published size and compare every target with the paper."""
    params = params or default_parameters()
    protocol = protocol or default_protocol()
    all_targets = targets(params, protocol)
    values = np.full((trials, len(all_targets)), np.nan)
    funnel = np.empty(trials)
    severity = {variable: np.full((trials, 2), np.nan) for variable in YOUDEN_VARIABLES}
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(trials)):
        rng = np.random.default_rng(child)
        trial = simulate_trial(rng, PUBLISHED_RANDOMIZED, params, protocol)
        analysed = trial.analysed
        for j, target in enumerate(all_targets):
            if target.kind == "count":
                mask = trial.arms == target.group
            elif target.group == "all":
                mask = analysed
            else:
                mask = analysed & (trial.arms == target.group)
            values[k, j] = target.statistic(trial, mask)
        for variable, (auc, cut) in severity_of_trial(trial, protocol).items():
            severity[variable][k] = (auc, cut)
        funnel[k] = _screened_randomized_fraction(rng, params, protocol)
    rows = [
        CalibrationRow(
            name="randomized of screened",
            group="all",
            kind="proportion",
            published=PUBLISHED_RANDOMIZED / PUBLISHED_SCREENED,
            simulated_mean=float(funnel.mean()),
            simulated_sd=float(funnel.std(ddof=1)) if trials > 1 else float("nan"),
            tolerance=tolerance(se_proportion(PUBLISHED_RANDOMIZED, PUBLISHED_SCREENED)),
        )
    ]
    for j, target in enumerate(all_targets):
        column = values[:, j]
        rows.append(
            CalibrationRow(
                name=target.name,
                group=target.group,
                kind=target.kind,
                published=float(target.published),
                simulated_mean=float(np.nanmean(column)),
                simulated_sd=float(np.nanstd(column, ddof=1)) if trials > 1 else float("nan"),
                tolerance=float(target.tolerance),
            )
        )
    return CalibrationReport(
        trials=trials, seed=seed, rows=tuple(rows), severity=_severity_rows(severity, trials)
    )


def report_markdown(report: CalibrationReport) -> str:
    """The report as Markdown tables (for docs/simulate.md): the targets, then the severity check."""
    lines = [
        f"Mean over {report.trials} simulated trials of {PUBLISHED_RANDOMIZED} randomized patients "
        f"(seed {report.seed}); SD = spread between simulated trials.",
        "",
        "| target | group | published | simulated mean | SD | tolerance | within |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.name} | {r.group} | {r.published:.3g} | {r.simulated_mean:.3g} | {r.simulated_sd:.2g} | "
            f"{r.tolerance:.3g} | {'yes' if r.within else '**no**'} |"
        )
    if report.severity:
        lines += [
            "",
            "Post hoc subgroups: ROC of each baseline score for 28-day mortality per simulated trial (the "
            'analysis\'s `youden_cutoffs`); AUC for "higher score = death"; Youden cut-off as a midpoint '
            'between observed scores (the paper\'s category "score >= c" is the midpoint c - 0.5).',
            "",
            "| score | AUC mean | AUC SD | trials with AUC > 0.5 | Youden cut-off median (IQR) | paper's cut-off "
            "| published IQR | plausible |",
            "|---|---:|---:|---:|---:|---:|---:|:---:|",
        ]
        for s in report.severity:
            lines.append(
                f"| {s.label} | {s.auc_mean:.3f} | {s.auc_sd:.3f} | {s.share_auc_above_half:.0%} | "
                f"{s.cutoff_median:g} ({s.cutoff_q1:g}-{s.cutoff_q3:g}) | {s.published_cutoff:g} | "
                f"{s.published_q1:g}-{s.published_q3:g} | {'yes' if s.plausible else '**no**'} |"
            )
    return "\n".join(lines) + "\n"
