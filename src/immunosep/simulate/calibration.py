"""Calibration report: every published target against its mean over many simulated trials.

Each target is a statistic of one trial (a proportion, a median, a mean) computed on a simulated trial
exactly as on the published one; the report gives its mean and standard deviation over ``trials``
simulated trials of the published size (281 randomized), the published value, and a tolerance. A
target is *within* when ``|mean - published| <= tolerance``. Tolerances are stated per kind of target:
outcome rates by arm 0.03 (absolute proportion), baseline proportions 0.04, medians 10% of the
published value (at least 1 unit for scores), CONSORT counts 1.5 patients.

Published figures come from ``shared/reference/immunosep_published.json`` (JAMA 2025,
doi:10.1001/jama.2025.24175), repeated here as the targets of the model so the package is self-contained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol
from immunosep.simulate.cohort import VirtualTrial, simulate_trial
from immunosep.simulate.model import ModelParameters, default_parameters
from immunosep.simulate.population import draw_screening_log

ARMS = ("precision", "placebo")
#: Published sizes (CONSORT): randomized, screened.
PUBLISHED_RANDOMIZED = 281
PUBLISHED_SCREENED = 672

TOL_OUTCOME = 0.03
TOL_BASELINE = 0.04
TOL_MEDIAN_FRACTION = 0.10
TOL_COUNT = 1.5

Statistic = Callable[[VirtualTrial, np.ndarray], float]


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
class CalibrationReport:
    trials: int
    seed: int
    rows: tuple[CalibrationRow, ...]

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


def _frac(counts: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {arm: counts[arm][0] / counts[arm][1] for arm in ARMS}


def _pooled(by_arm: dict[str, float], n: dict[str, int]) -> float:
    return sum(by_arm[a] * n[a] for a in ARMS) / sum(n.values())


def targets(params: ModelParameters, protocol: Protocol) -> list[Target]:
    """Every calibration target with its published value (source: JAMA 2025 Tables 1-3, Figure 1)."""
    n = {"precision": 131, "placebo": 145}
    out: list[Target] = []
    achieved = lambda t: t.primary.achieved  # noqa: E731
    out += _by_arm(
        "primary endpoint (SOFA decrease >= 1.4 at day 9)",
        _frac({"precision": (46, 131), "placebo": (26, 145)}),
        TOL_OUTCOME,
        _rate(achieved),
        "proportion",
    )
    for stratum, stratum_counts in (
        ("mals", {"precision": (12, 25), "placebo": (4, 23)}),
        ("immunoparalysis", {"precision": (34, 106), "placebo": (22, 122)}),
    ):
        out += _by_arm(
            f"primary endpoint, {stratum}",
            _frac(stratum_counts),
            0.05,
            _rate_within(achieved, _stratum_is(stratum)),
            "proportion",
        )
    out += _by_arm(
        "SOFA decrease >= 1.4 at day 15",
        _frac({"precision": (52, 131), "placebo": (34, 145)}),
        TOL_OUTCOME,
        _rate(lambda t: t.sofa_d15.achieved),
        "proportion",
    )
    out += _by_arm(
        "died before day 9",
        _frac({"precision": (21, 131), "placebo": (29, 145)}),
        TOL_OUTCOME,
        _rate(lambda t: t.outcomes.death_day <= 8),
        "proportion",
    )
    out += _by_arm(
        "28-day mortality",
        _frac({"precision": (57, 131), "placebo": (72, 145)}),
        TOL_OUTCOME,
        _rate(lambda t: t.outcomes.death_day <= 28),
        "proportion",
    )
    out += _by_arm(
        "90-day mortality",
        _frac({"precision": (90, 131), "placebo": (98, 145)}),
        TOL_OUTCOME,
        _rate(lambda t: t.outcomes.death_day <= 90),
        "proportion",
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
    published_infection = {"precision": (58, 11, 32, 30), "placebo": (46, 9, 44, 46)}
    for i, level in enumerate(levels):
        out += _by_arm(
            f"infection day 15: {level}",
            {arm: published_infection[arm][i] / n[arm] for arm in ARMS},
            TOL_OUTCOME,
            _rate(_infection_is(i)),
            "proportion",
        )
    out.append(
        Target(
            "SOFA carried forward (alive, discharged before day 9)",
            "all",
            0.083,
            TOL_OUTCOME,
            _rate(_carried_forward_alive(protocol.endpoints.primary.window_last_day)),
            "proportion",
        )
    )
    out.append(
        Target(
            "MALS share of analysed",
            "all",
            48 / 276,
            TOL_OUTCOME,
            _rate(lambda t: t.strata == "mals"),
            "proportion",
        )
    )
    out.append(
        Target(
            "withdrew consent, data removed (patients)", "precision", 4, TOL_COUNT, _count_withdrawn, "count"
        )
    )
    out.append(
        Target(
            "withdrew consent, data removed (patients)", "placebo", 1, TOL_COUNT, _count_withdrawn, "count"
        )
    )

    # Table 1 (pooled over arms: randomization makes the arms' distributions equal).
    out.append(
        Target(
            "male", "all", 183 / 276, TOL_BASELINE, _column_rate("sex", lambda v: v == "male"), "proportion"
        )
    )
    out.append(
        Target(
            "age, mean (years)",
            "all",
            _pooled({"precision": 69, "placebo": 70}, n),
            1.5,
            _mean("age_years"),
            "mean",
        )
    )
    history = {
        "diabetes": (45, 48),
        "covid19_resolved": (34, 35),
        "copd": (26, 39),
        "coronary_heart_disease": (25, 34),
        "atrial_fibrillation": (23, 36),
        "heart_failure": (19, 22),
        "stroke": (18, 18),
        "chronic_kidney_disease": (13, 16),
        "solid_tumor_no_metastasis": (12, 9),
        "cerebral_hemorrhage": (9, 9),
    }
    for name, (a, b) in history.items():
        out.append(
            Target(
                f"history: {name}",
                "all",
                (a + b) / 276,
                TOL_BASELINE,
                _column_rate(f"history_{name}"),
                "proportion",
            )
        )
    out.append(
        Target(
            "mechanical ventilation", "all", 245 / 276, TOL_BASELINE, _column_rate("ventilated"), "proportion"
        )
    )
    out.append(Target("CVVH", "all", 47 / 276, TOL_BASELINE, _column_rate("cvvh"), "proportion"))
    for name, (a, b) in {
        "vap": (48, 54),
        "hap": (35, 32),
        "cap": (31, 44),
        "primary_bacteremia": (16, 12),
        "sars_cov2_pneumonia": (1, 3),
    }.items():
        out.append(
            Target(
                f"infection: {name}",
                "all",
                (a + b) / 276,
                TOL_BASELINE,
                _column_rate("infection", _equals(name)),
                "proportion",
            )
        )
    out.append(Target("APACHE II, median", "all", 19.5, 2.0, _median("apache2"), "median"))
    out.append(
        Target(
            "APACHE II >= 25",
            "all",
            78 / 276,
            TOL_BASELINE,
            _column_rate("apache2", lambda v: v >= 25),
            "proportion",
        )
    )
    out.append(Target("Charlson comorbidity index, median", "all", 4.5, 1.0, _median("charlson"), "median"))
    out.append(
        Target(
            "Charlson comorbidity index >= 5",
            "all",
            130 / 276,
            TOL_BASELINE + 0.02,
            _column_rate("charlson", lambda v: v >= 5),
            "proportion",
        )
    )
    out.append(Target("SOFA, median", "all", 9.5, 1.0, _median("sofa_total"), "median"))
    out.append(
        Target(
            "SOFA >= 10",
            "all",
            135 / 276,
            TOL_BASELINE,
            _column_rate("sofa_total", lambda v: v >= 10),
            "proportion",
        )
    )
    components = {
        "respiration": 3,
        "coagulation": 0,
        "cns": 1,
        "cardiovascular": 4,
        "liver": 0,
        "renal": 0.25,
    }
    for comp, median in components.items():
        out.append(Target(f"SOFA {comp}, median", "all", median, 1.0, _median(f"sofa_{comp}"), "median"))
    bio = {
        ("ferritin_ng_ml", "mals"): (5438 + 6221) / 2,
        ("ferritin_ng_ml", "immunoparalysis"): (633 + 703) / 2,
        ("hla_dr", "mals"): (3576 + 4990) / 2,
        ("hla_dr", "immunoparalysis"): (3043 + 3078) / 2,
    }
    for (column, stratum), median in bio.items():
        out.append(
            Target(
                f"{column}, median, {stratum}",
                "all",
                median,
                TOL_MEDIAN_FRACTION * median * (2.5 if stratum == "mals" else 1.0),
                _median_within(column, stratum),
                "median",
            )
        )
    out.append(
        Target(
            "WBC per uL, mean",
            "all",
            _pooled({"precision": 17003.8, "placebo": 16904.6}, n),
            1000.0,
            _mean("wbc_per_ul"),
            "mean",
        )
    )
    out.append(
        Target(
            "platelets x10^3/uL, mean",
            "all",
            _pooled({"precision": 201.4, "placebo": 209.5}, n),
            15.0,
            _mean("platelets_1e3_ul"),
            "mean",
        )
    )
    for column, median in {
        "creatinine_mg_dl": 1.15,
        "bilirubin_mg_dl": 0.65,
        "pao2_fio2_mmhg": 166.0,
        "lactate_mg_dl": 15.3,
    }.items():
        out.append(
            Target(
                f"{column}, median", "all", median, TOL_MEDIAN_FRACTION * median, _median(column), "median"
            )
        )

    # Table 3 serious adverse events: patients with >= 1 (any) and with each preferred term.
    out += _by_arm(
        "any serious AE, related",
        {"precision": 8 / 131, "placebo": 3 / 145},
        TOL_OUTCOME,
        _any_sae(True, params),
        "proportion",
    )
    out += _by_arm(
        "any serious AE, unrelated",
        {"precision": 108 / 131, "placebo": 126 / 145},
        TOL_OUTCOME,
        _any_sae(False, params),
        "proportion",
    )
    for term, spec in params.adverse_events.terms.items():
        for related, index in ((True, 0), (False, 1)):
            term_counts: dict[str, int] = {"precision": spec.precision[index], "placebo": spec.placebo[index]}
            if term_counts["precision"] == 0 and term_counts["placebo"] == 0:
                continue
            label = "related" if related else "unrelated"
            out += _by_arm(
                f"SAE {term}, {label}",
                {arm: term_counts[arm] / n[arm] for arm in ARMS},
                TOL_OUTCOME,
                _patients_with_term(term, related, params),
                "proportion",
            )
    return out


def _screened_randomized_fraction(
    rng: np.random.Generator, params: ModelParameters, protocol: Protocol
) -> float:
    log = draw_screening_log(rng, PUBLISHED_SCREENED, params, protocol)
    return sum(1 for p in log if p.reason == "") / PUBLISHED_SCREENED


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
        funnel[k] = _screened_randomized_fraction(rng, params, protocol)
    rows = [
        CalibrationRow(
            name="randomized of screened",
            group="all",
            kind="proportion",
            published=PUBLISHED_RANDOMIZED / PUBLISHED_SCREENED,
            simulated_mean=float(funnel.mean()),
            simulated_sd=float(funnel.std(ddof=1)) if trials > 1 else float("nan"),
            tolerance=TOL_OUTCOME,
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
    return CalibrationReport(trials=trials, seed=seed, rows=tuple(rows))


def report_markdown(report: CalibrationReport) -> str:
    """The report as a Markdown table (for docs/simulate.md)."""
    lines = [
        f"Mean over {report.trials} simulated trials of {PUBLISHED_RANDOMIZED} randomized patients (seed {report.seed}); "
        "SD = spread between simulated trials.",
        "",
        "| target | group | published | simulated mean | SD | tolerance | within |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.name} | {r.group} | {r.published:.3g} | {r.simulated_mean:.3g} | {r.simulated_sd:.2g} | "
            f"{r.tolerance:.3g} | {'yes' if r.within else '**no**'} |"
        )
    return "\n".join(lines) + "\n"
