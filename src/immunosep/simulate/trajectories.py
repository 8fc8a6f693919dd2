"""Outcomes of virtual patients after randomization: daily SOFA, ICU discharge, death, biomarkers,
infection on day 15, serious adverse events and consent withdrawal.

Each patient has a standard-normal *response* latent ``z``. The daily SOFA falls with a slope
(points/day) ``mean[stratum, arm] + baseline_coef * (baseline - 9.5) + sd * z`` until ``plateau_day``,
plus daily noise, rounded and clipped to 0..24. Death time, infection state on day 15 and SIDF
reversal use Gaussian copulas on ``z`` (loadings in the parameter file): their marginal distributions
by arm reproduce the published rates exactly, and patients whose SOFA improves die less, resolve their
infection more often and reverse their immune dysfunction more often. Death also depends on the baseline
(APACHE II, Charlson index, SOFA, stratum) through the normal score of a baseline risk. ICU discharge while alive is a
daily hazard that grows with the slope; after discharge, death or withdrawal the SOFA is not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize
from scipy.special import expit, ndtr, ndtri

from immunosep.clinical.sidf import SidfReversals, sidf_reversal_arrays
from immunosep.protocol.schema import Protocol
from immunosep.simulate.model import (
    FloatArray,
    ModelParameters,
    categorical,
    correlated_normal,
    ordinal_from_latent,
)
from immunosep.simulate.population import (
    IMMUNOPARALYSIS,
    MALS,
    MALS_CODE,
    Baseline,
    Int8Array,
    draw_baseline,
    draw_enrolled,
    fitted_once,
)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Centre of the baseline SOFA for the slope's baseline coefficient (pooled Table 1 median, points).
BASELINE_SOFA_CENTRE = 9.5
SOFA_MAX = 24.0


def n_study_days(protocol: Protocol) -> int:
    """Days of daily SOFA to simulate: the longest endpoint window, imputation or treatment period."""
    e = protocol.endpoints
    return max(
        e.primary.window_last_day,
        e.sofa_d15.window_last_day,
        e.primary.death_imputed_until_day,
        protocol.treatment.days,
        e.infection_day15.day,
    )


def effective_treatment(
    biology: npt.NDArray[np.str_], strata: npt.NDArray[np.str_], arms: npt.NDArray[np.str_]
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]:
    """The state and arm that drive a patient's outcomes: ``(outcome_stratum, effective_arm)``.

    The precision drug of a stratum helps only a patient whose true state is that stratum: a patient
    classified into another stratum than its own (possible with other thresholds than the published
    ones) fares as on placebo. A patient with neither true state fares like immunoparalysis on placebo.
    """
    effective = np.where((arms == "precision") & (strata == biology), "precision", "placebo")
    outcome_stratum = np.where(biology == MALS, MALS, IMMUNOPARALYSIS)
    return outcome_stratum, effective


def effective_treatment_flags(
    biology: Int8Array, strata: Int8Array, allocated_precision: BoolArray
) -> tuple[BoolArray, BoolArray]:
    """:func:`effective_treatment` on stratum codes: ``(true MALS, effective precision)`` flags."""
    return biology == MALS_CODE, allocated_precision & (strata == biology)


def draw_slopes(
    z: FloatArray,
    strata: npt.NDArray[np.str_],
    arms: npt.NDArray[np.str_],
    baseline_sofa: FloatArray,
    params: ModelParameters,
) -> FloatArray:
    """Daily SOFA improvement (points/day, positive = improving) of each patient (``strata``: the
    outcome strata, MALS or immunoparalysis; ``arms``: the effective arms)."""
    return _slopes(z, strata == MALS, arms == "precision", baseline_sofa, params)


def _slopes(
    z: FloatArray, mals: BoolArray, precision: BoolArray, baseline_sofa: FloatArray, params: ModelParameters
) -> FloatArray:
    t = params.sofa_trajectory
    means = np.array(
        [
            [t.slope_mean_points_per_day[f"{stratum}_{arm}"] for arm in ("placebo", "precision")]
            for stratum in (IMMUNOPARALYSIS, MALS)
        ]
    )
    mean = means[mals.astype(np.intp), precision.astype(np.intp)]
    return np.asarray(
        mean + t.slope_baseline_coef * (baseline_sofa - BASELINE_SOFA_CENTRE) + t.slope_sd_points_per_day * z,
        dtype=np.float64,
    )


#: Patients of the reference population that standardizes the baseline death risk (fixed seed).
RISK_REFERENCE_PATIENTS = 200_000
RISK_REFERENCE_SEED = 20251208
#: Values 0..size-1 of each integer risk score whose rank in the reference population is tabulated once
#: (APACHE II 0-71 and SOFA 0-24 are their whole ranges; a Charlson index above 39, or a score that is not
#: a whole number, is looked up by a binary search instead: same answer, only slower).
RISK_TABLE_SIZE = {"apache2": 72, "charlson": 40, "sofa_total": 25}


@dataclass(frozen=True)
class RiskReference:
    """The baseline death risk in the model's randomized population: score centres and scales (mean, SD)
    and the sorted risks of :data:`RISK_REFERENCE_PATIENTS` reference patients (its distribution).

    The risk is a function of MALS (yes/no) and whole-number scores, so it takes few distinct values: for
    every combination in :data:`RISK_TABLE_SIZE` the table holds how many reference risks lie below it
    (``below``) and at or below it (``at_or_below``), the two binary searches of
    :func:`baseline_death_risk` done once (cell index: MALS, then the scores in ``columns`` order, C order).
    """

    centre: dict[str, float]
    scale: dict[str, float]
    sorted_risk: FloatArray
    columns: tuple[str, ...]
    below: IntArray
    at_or_below: IntArray


def _linear_risk(
    columns: dict[str, np.ndarray],
    mals: BoolArray,
    params: ModelParameters,
    centre: dict[str, float],
    scale: dict[str, float],
) -> FloatArray:
    m = params.mortality
    risk = m.risk_mals * mals.astype(np.float64)
    for column, weight in m.risk_per_sd.items():
        risk = (
            risk + weight * (np.asarray(columns[column], dtype=np.float64) - centre[column]) / scale[column]
        )
    return np.asarray(risk, dtype=np.float64)


def risk_reference(params: ModelParameters, protocol: Protocol) -> RiskReference:
    """The reference distribution of the baseline death risk (drawn once per parameters and protocol)."""
    return fitted_once("death-risk", params, protocol, lambda: _build_risk_reference(params, protocol))


def _build_risk_reference(params: ModelParameters, protocol: Protocol) -> RiskReference:
    rng = np.random.default_rng(RISK_REFERENCE_SEED)
    enrolled = draw_enrolled(rng, 1, RISK_REFERENCE_PATIENTS, params, protocol)
    columns = draw_baseline(rng, enrolled, params, protocol, full=False).columns
    mals = enrolled.biology == MALS
    values = {c: np.asarray(columns[c], dtype=np.float64) for c in params.mortality.risk_per_sd}
    centre = {c: float(v.mean()) for c, v in values.items()}
    scale = {c: float(v.std()) or 1.0 for c, v in values.items()}
    sorted_risk = np.sort(_linear_risk(columns, mals, params, centre, scale))
    # The table: the same arithmetic (_linear_risk) on every cell gives bit for bit the risk of a patient
    # with those scores, so its counts are those the binary searches would find.
    names = tuple(params.mortality.risk_per_sd)
    grid = np.indices((2, *(RISK_TABLE_SIZE[c] for c in names))).reshape(len(names) + 1, -1)
    cell_risk = _linear_risk(
        {c: grid[k + 1] for k, c in enumerate(names)}, grid[0] == 1, params, centre, scale
    )
    return RiskReference(
        centre=centre,
        scale=scale,
        sorted_risk=sorted_risk,
        columns=names,
        below=np.searchsorted(sorted_risk, cell_risk, side="left").astype(np.int64),
        at_or_below=np.searchsorted(sorted_risk, cell_risk, side="right").astype(np.int64),
    )


def _risk_counts(
    ref: RiskReference, columns: dict[str, np.ndarray], mals: BoolArray, params: ModelParameters
) -> tuple[IntArray, IntArray]:
    """Reference risks below and at or below each patient's risk: from the table, else by binary search."""
    n = int(mals.shape[0])
    cell = mals.astype(np.int64)
    inside = np.ones(n, dtype=np.bool_)
    for name in ref.columns:
        values = np.asarray(columns[name])
        size = RISK_TABLE_SIZE[name]
        if values.dtype.kind not in "iu":
            inside[:] = False
            break
        whole = values.astype(np.int64)
        inside &= (whole >= 0) & (whole < size)
        cell = cell * size + np.clip(whole, 0, size - 1)
    below, at_or_below = ref.below[cell], ref.at_or_below[cell]
    if not inside.all():
        out = ~inside
        risk = _linear_risk(
            {c: np.asarray(columns[c])[out] for c in ref.columns}, mals[out], params, ref.centre, ref.scale
        )
        below[out] = np.searchsorted(ref.sorted_risk, risk, side="left")
        at_or_below[out] = np.searchsorted(ref.sorted_risk, risk, side="right")
    return below, at_or_below


def baseline_death_risk(
    rng: np.random.Generator,
    baseline: Baseline,
    outcome_strata: npt.NDArray[np.str_],
    params: ModelParameters,
    protocol: Protocol,
) -> FloatArray:
    """Normal score of each patient's baseline death risk: standard normal in the model's population.

    The risk is ``risk_mals * [MALS] + sum(risk_per_sd[score] * standardized score)`` over APACHE II,
    Charlson index and baseline SOFA; its normal score is ``Phi^-1`` of its rank in the reference
    population (ties broken at random), so the death latent stays exactly standard normal and the
    marginal mortality by arm stays as published whatever the weights.
    """
    return death_risk_score(rng, baseline.columns, outcome_strata == MALS, params, protocol)


def death_risk_score(
    rng: np.random.Generator,
    columns: dict[str, np.ndarray],
    mals: BoolArray,
    params: ModelParameters,
    protocol: Protocol,
) -> FloatArray:
    """:func:`baseline_death_risk` of patients given by their baseline columns and true MALS (yes/no)."""
    ref = risk_reference(params, protocol)
    below, at_or_below = _risk_counts(ref, columns, mals, params)
    total = ref.sorted_risk.shape[0]
    u = (below + rng.random(mals.shape[0]) * (at_or_below - below)) / total
    return np.asarray(ndtri(np.clip(u, 0.5 / total, 1.0 - 0.5 / total)), dtype=np.float64)


def draw_death_days(
    rng: np.random.Generator,
    z: FloatArray,
    risk: FloatArray,
    arms: npt.NDArray[np.str_] | BoolArray,
    params: ModelParameters,
) -> FloatArray:
    """Study day of death (NaN = alive at the last cumulative day, 90).

    The cumulative incidence by arm is piecewise linear through the published points; the death time is
    its inverse at ``Phi(w)`` (a small ``w``, an early death), ``w = response_loading * z - severity_loading
    * risk + noise`` (standard normal): patients whose SOFA improves (high ``z``) die less, patients sicker at
    baseline (``risk``, the normal score of :func:`baseline_death_risk`) die more, and the marginal mortality
    by arm is exactly as published. ``arms``: the effective arms, or a flag "effective precision".
    """
    m = params.mortality
    noise_sd = np.sqrt(1.0 - m.response_loading**2 - m.severity_loading**2)
    w = m.response_loading * z - m.severity_loading * risk + noise_sd * rng.standard_normal(z.shape[0])
    u = ndtr(w)
    knots_day = np.array([0.0, *m.cumulative_days])
    death = np.full(z.shape[0], np.nan)
    precision = np.asarray(arms if arms.dtype == np.bool_ else arms == "precision", dtype=np.bool_)
    for arm in ("precision", "placebo"):
        sel = precision if arm == "precision" else ~precision
        knots_p = np.array([0.0, *getattr(m, arm)])
        dies = sel & (u < knots_p[-1])
        time_days = np.interp(u[dies], knots_p, knots_day)
        death[dies] = np.maximum(np.ceil(time_days), 1.0)
    return death


def draw_discharge_days(rng: np.random.Generator, slopes: FloatArray, params: ModelParameters) -> FloatArray:
    """Study day of ICU discharge if alive then (geometric from ``discharge_first_day``)."""
    t = params.sofa_trajectory
    p_day = expit(t.discharge_daily_logit + t.discharge_slope_coef * slopes)
    return np.asarray(t.discharge_first_day - 1 + rng.geometric(p_day), dtype=np.float64)


def daily_sofa(
    rng: np.random.Generator,
    baseline_sofa: FloatArray,
    slopes: FloatArray,
    last_recorded_day: FloatArray,
    n_days: int,
    params: ModelParameters,
) -> FloatArray:
    """[n, n_days] daily SOFA (points), NaN after ``last_recorded_day``; day 1 is the baseline."""
    t = params.sofa_trajectory
    day = np.arange(1, n_days + 1, dtype=np.float64)
    elapsed = np.minimum(day, t.plateau_day) - 1.0
    noise = rng.standard_normal((baseline_sofa.shape[0], n_days))
    noise *= t.daily_noise_sd_points
    noise[:, 0] = 0.0
    # baseline - slope * elapsed + noise, rounded and clipped: the same operations, in place
    sofa = np.multiply(slopes[:, None], elapsed[None, :])
    np.subtract(baseline_sofa[:, None], sofa, out=sofa)
    sofa += noise
    np.rint(sofa, out=sofa)
    np.clip(sofa, 0.0, SOFA_MAX, out=sofa)
    np.copyto(sofa, np.nan, where=day[None, :] > last_recorded_day[:, None])
    return sofa


@dataclass(frozen=True)
class Outcomes:
    """Post-randomization course of each patient (arrays of length n unless noted)."""

    response: FloatArray
    slope_points_per_day: FloatArray
    death_day: FloatArray  # NaN = alive at day 90
    discharge_day: FloatArray  # ICU discharge day if alive then, NaN otherwise
    withdrawn: BoolArray
    withdrawal_day: FloatArray  # NaN = not withdrawn
    sofa: FloatArray  # [n, n_days] daily SOFA, NaN = not recorded


def draw_outcomes(
    rng: np.random.Generator,
    strata: npt.NDArray[np.str_],
    arms: npt.NDArray[np.str_],
    baseline: Baseline,
    params: ModelParameters,
    protocol: Protocol,
    *,
    allocated_arms: npt.NDArray[np.str_] | None = None,
) -> Outcomes:
    """Daily SOFA, ICU discharge, death and withdrawal of randomized patients.

    ``strata`` and ``arms`` are those that drive the outcomes (see :func:`effective_treatment`: MALS or
    immunoparalysis, precision or placebo); withdrawal depends on the arm allocated (``allocated_arms``,
    default ``arms``). Death depends on the baseline (:func:`baseline_death_risk`: APACHE II, Charlson
    index, SOFA, stratum).
    """
    allocated = arms if allocated_arms is None else allocated_arms
    return draw_outcomes_flags(
        rng, strata == MALS, arms == "precision", baseline, params, protocol, allocated == "precision"
    )


def draw_outcomes_flags(
    rng: np.random.Generator,
    mals: BoolArray,
    precision: BoolArray,
    baseline: Baseline,
    params: ModelParameters,
    protocol: Protocol,
    allocated_precision: BoolArray,
) -> Outcomes:
    """:func:`draw_outcomes` with flags for the outcome stratum (MALS), the effective arm (precision)
    and the allocated arm (precision): the same draw, without string arrays (the Monte Carlo engine)."""
    n = int(mals.shape[0])
    n_days = n_study_days(protocol)
    baseline_sofa = baseline.sofa_total
    z = rng.standard_normal(n)
    slopes = _slopes(z, mals, precision, baseline_sofa, params)
    risk = death_risk_score(rng, baseline.columns, mals, params, protocol)
    death = draw_death_days(rng, z, risk, precision, params)
    discharge = draw_discharge_days(rng, slopes, params)
    discharged_alive = (discharge <= n_days) & ~(death <= discharge)
    discharge = np.where(discharged_alive, discharge, np.nan)
    p_withdraw = np.where(allocated_precision, params.withdrawal.precision, params.withdrawal.placebo)
    withdrawn = rng.random(n) < p_withdraw
    withdrawal_day = np.where(withdrawn, rng.integers(1, n_days + 1, n), np.nan)
    last_recorded = np.fmin(np.fmin(death, discharge), withdrawal_day)
    last_recorded = np.where(np.isnan(last_recorded), n_days, last_recorded)
    sofa = daily_sofa(rng, baseline_sofa, slopes, last_recorded, n_days, params)
    return Outcomes(
        response=z,
        slope_points_per_day=slopes,
        death_day=death,
        discharge_day=discharge,
        withdrawn=withdrawn,
        withdrawal_day=withdrawal_day,
        sofa=sofa,
    )


def draw_infection_day15(
    rng: np.random.Generator, z: FloatArray, arms: npt.NDArray[np.str_], params: ModelParameters
) -> IntArray:
    """Infection state on day 15 as an index into the protocol's ordered levels (0 = best)."""
    p = params.infection_day15
    latent = correlated_normal(rng, -z, p.response_loading)
    state = np.empty(z.shape[0], dtype=np.int64)
    for arm in ("precision", "placebo"):
        sel = arms == arm
        state[sel] = ordinal_from_latent(latent[sel], getattr(p, arm))
    return state


@dataclass(frozen=True)
class BiomarkerDraws:
    """Ferritin or mHLA-DR at the protocol's draw days (the stratum's SIDF biomarker), NaN = not drawn."""

    draw_days: tuple[int, ...]
    ferritin_ng_ml: FloatArray  # [n, n_draws]
    hla_dr: FloatArray  # [n, n_draws]
    intended_reversal: BoolArray


def draw_availability(
    rng: np.random.Generator,
    days: tuple[int, ...],
    death_day: FloatArray,
    discharge_day: FloatArray,
    params: ModelParameters,
) -> BoolArray:
    """[n, draws] whether each protocol draw is taken and measured; the baseline (column 0) always is.

    Why a patient has fewer than two serial draws (outside the SIDF population; 151 of 276 published):
    no serial samples sent for the patient at all (``serial_sampling``: samples for flow cytometry must
    reach the central lab fresh), death before the second serial draw (day 4), and draws missed, more
    often after ICU discharge (``draw_taken_in_icu`` / ``draw_taken_after_icu``). No draw on or after
    the day of death; the ICU discharge day counts as after discharge.
    """
    b = params.biomarkers
    n, k = int(death_day.shape[0]), len(days)
    day = np.asarray(days, dtype=np.float64)[None, :]
    alive = np.isnan(death_day)[:, None] | (day < death_day[:, None])
    in_icu = np.isnan(discharge_day)[:, None] | (day < discharge_day[:, None])
    p_taken = np.where(in_icu, b.draw_taken_in_icu, b.draw_taken_after_icu)
    serial = rng.random(n) < b.serial_sampling
    available = alive & serial[:, None] & (rng.random((n, k)) < p_taken)
    available[:, 0] = True
    return np.asarray(available, dtype=np.bool_)


def draw_biomarker_course(
    rng: np.random.Generator,
    z: FloatArray,
    strata: npt.NDArray[np.str_],
    arms: npt.NDArray[np.str_],
    baseline_ferritin: FloatArray,
    baseline_hla_dr: FloatArray,
    death_day: FloatArray,
    discharge_day: FloatArray,
    params: ModelParameters,
    protocol: Protocol,
) -> BiomarkerDraws:
    """Biomarkers at the draw days, built so that the protocol's SIDF rule sees the intended course.

    Draws are taken as :func:`draw_availability` says. A patient *reverses* with probability
    ``Phi(reversal_probit[stratum_arm])`` (a probit latent loading on the response latent): the stratum's
    marker crosses the SIDF criterion (MALS: ferritin at least ``mals_ferritin_min_fall_fraction`` below
    baseline; immunoparalysis: mHLA-DR above ``immunoparalysis_hla_dr_above``, or that much above
    baseline under the "rise" reading) at a serial draw, earlier ones likelier, and stays across at
    every later draw taken, so at least ``min_confirming_draws`` draws confirm it. A non-reverser ends
    on the wrong side, or (share ``unconfirmed_change``) crosses at fewer than ``min_confirming_draws``
    last draws: a change the protocol does not count. Before the draw that starts the final run, draws
    may dip across and back. The other biomarker drifts around its baseline.
    """
    b = params.biomarkers
    rule = protocol.sidf
    days = tuple(protocol.biospecimens.days)
    n, k = int(z.shape[0]), len(days)
    available = draw_availability(rng, days, death_day, discharge_day, params)
    probit = (
        np.array([b.reversal_probit[f"{s}_{a}"] for s, a in zip(strata.tolist(), arms.tolist(), strict=True)])
        if n
        else np.zeros(0)
    )
    # -z: a patient whose SOFA improves (high z) reverses more often, as infection and mortality do.
    intended = correlated_normal(rng, -z, b.response_loading) < probit
    # Rank of each serial draw among those taken (0 = first); the final run starts at rank run_start.
    serial = available[:, 1:]
    taken = serial.sum(axis=1)
    rank = np.cumsum(serial, axis=1) - 1
    confirming = rule.min_confirming_draws
    early = rng.geometric(0.5, n) - 1  # reversers: earlier serial draws likelier
    reverser_start = np.minimum(early, np.maximum(taken - confirming, 0))
    short_run = np.where(rng.random(n) < b.unconfirmed_change, rng.integers(1, max(confirming, 2), n), 0)
    short_run = np.minimum(short_run, max(confirming - 1, 0))
    run_start = np.where(intended, reverser_start, taken - np.minimum(short_run, taken))
    dip = (rng.random(serial.shape) < 0.3) & (rank < run_start[:, None] - 1)
    across = np.zeros((n, k), dtype=np.bool_)
    across[:, 1:] = (rank >= run_start[:, None]) | dip
    margin = np.abs(rng.normal(0.25, 0.15, (n, k))) + 0.02  # log-scale distance from the criterion
    noise = rng.normal(0.0, b.draw_noise_log_sd, (n, k))

    ferritin_limit = baseline_ferritin * (1.0 - rule.mals_ferritin_min_fall_fraction)
    log_ferritin = np.log(ferritin_limit)[:, None] + np.where(across, -margin, margin)
    ferritin = np.exp(log_ferritin)
    hla_limit = rule.immunoparalysis_hla_dr_above + (
        baseline_hla_dr if rule.immunoparalysis_hla_dr_criterion == "rise" else 0.0
    )
    log_hla = np.log(hla_limit) + np.where(across, margin, -margin - np.abs(noise))
    hla = np.exp(log_hla)
    # The stratum's own biomarker follows the construction; the other drifts around its baseline.
    is_mals = (strata == MALS)[:, None]
    ferritin = np.where(is_mals, ferritin, baseline_ferritin[:, None] * np.exp(noise))
    hla = np.where(is_mals, baseline_hla_dr[:, None] * np.exp(noise), hla)
    ferritin[:, 0] = baseline_ferritin
    hla[:, 0] = baseline_hla_dr
    ferritin = np.where(available, ferritin.round(), np.nan)
    hla = np.where(available, hla.round(), np.nan)
    return BiomarkerDraws(draw_days=days, ferritin_ng_ml=ferritin, hla_dr=hla, intended_reversal=intended)


def sidf_of_draws(strata: npt.NDArray[np.str_], draws: BiomarkerDraws, protocol: Protocol) -> SidfReversals:
    """SIDF reversal of every virtual patient by the one rule, :func:`immunosep.clinical.sidf.sidf_reversal_arrays`,
    on the stratum's marker (ferritin for MALS, mHLA-DR for immunoparalysis)."""
    marker = np.where((strata == MALS)[:, None], draws.ferritin_ng_ml, draws.hla_dr)
    return sidf_reversal_arrays(strata, draws.draw_days, marker, protocol)


def _unrelated_prone_share(params: ModelParameters, arm: str) -> float:
    """Share of patients prone to unrelated serious AEs, so that the share with >= 1 is as published.

    Solves ``s * (1 - prod_t(1 - p_t / s)) = any_unrelated / analysed`` for ``s`` (brentq), where
    ``p_t`` are the per-term rates; ``s = 1`` when even independent terms do not reach the total.
    """
    ae = params.adverse_events
    rates = np.array([getattr(spec, arm)[1] / ae.analysed[arm] for spec in ae.terms.values()])
    target = ae.any_unrelated[arm] / ae.analysed[arm]

    def gap(share: float) -> float:
        return float(share * (1.0 - np.prod(1.0 - rates / share)) - target)

    low = float(rates.max()) + 1e-9
    if gap(1.0) <= 0 or gap(low) >= 0:
        return 1.0
    return float(optimize.brentq(gap, low, 1.0))


def _other_related_probability(params: ModelParameters, arm: str) -> float:
    """Probability of one related serious AE of a term Table 3 lists without a related row, so that the share
    of patients with >= 1 related serious AE is as published: ``1 - (1 - q)(1 - r) = any_related / analysed``,
    ``q`` the share the listed related rows give (independent terms); 0 when they already reach it."""
    ae = params.adverse_events
    rates = np.array([getattr(spec, arm)[0] / ae.analysed[arm] for spec in ae.terms.values()])
    listed = 1.0 - float(np.prod(1.0 - rates))
    target = ae.any_related[arm] / ae.analysed[arm]
    return max(0.0, 1.0 - (1.0 - target) / (1.0 - listed))


@dataclass(frozen=True)
class AdverseEvent:
    """One serious treatment-emergent adverse event of a patient (index into the cohort)."""

    patient: int
    preferred_term: str
    system_organ_class: str
    relatedness: str
    onset_day: int


def draw_serious_adverse_events(
    rng: np.random.Generator, arms: npt.NDArray[np.str_], death_day: FloatArray, params: ModelParameters
) -> list[AdverseEvent]:
    """Serious AEs at the Table 3 rates (patients with the term / analysed patients, per arm).

    Patients with a related serious AE outnumber the related rows of Table 3 (8 vs 5 + 2 precision, 3 vs
    1 + 1 placebo: related events of terms listed only as unrelated or not at all). The model gives the
    missing share (:func:`_other_related_probability`) one related event of a listed term drawn in
    proportion to the term's published events in the arm, so no single term's related rate moves much.
    """
    ae = params.adverse_events
    n = int(arms.shape[0])
    last_day = np.fmin(np.nan_to_num(death_day, nan=ae.onset_last_day), ae.onset_last_day).astype(np.int64)
    prone_share = {arm: _unrelated_prone_share(params, arm) for arm in ("precision", "placebo")}
    share = np.where(arms == "precision", prone_share["precision"], prone_share["placebo"])
    prone = rng.random(n) < share
    events: list[AdverseEvent] = []
    for term, spec in ae.terms.items():
        for related, levels in ((0, ae.related_levels), (1, ae.unrelated_levels)):
            p = np.where(
                arms == "precision",
                spec.precision[related] / ae.analysed["precision"],
                spec.placebo[related] / ae.analysed["placebo"],
            )
            if related == 1:
                p = np.where(prone, p / share, 0.0)
            hit = np.flatnonzero(rng.random(n) < p)
            events.extend(_events(rng, hit, term, spec.soc, levels, last_day))
    names = list(ae.terms)
    for arm in ("precision", "placebo"):
        weights = np.array([sum(getattr(spec, arm)) for spec in ae.terms.values()], dtype=np.float64)
        hit = np.flatnonzero((arms == arm) & (rng.random(n) < _other_related_probability(params, arm)))
        if hit.size == 0 or weights.sum() <= 0:
            continue
        chosen = categorical(rng, weights, hit.size)
        for k in np.unique(chosen):
            term = names[int(k)]
            events.extend(
                _events(rng, hit[chosen == k], term, ae.terms[term].soc, ae.related_levels, last_day)
            )
    return events


def _events(
    rng: np.random.Generator,
    patients: npt.NDArray[np.intp],
    term: str,
    soc: str,
    levels: list[str],
    last_day: npt.NDArray[np.int64],
) -> list[AdverseEvent]:
    """One event of ``term`` for each of ``patients``: onset uniform up to ``last_day``, level among ``levels``."""
    if patients.size == 0:
        return []
    onset = rng.integers(1, last_day[patients] + 1)
    level = rng.integers(0, len(levels), patients.size)
    return [
        AdverseEvent(
            patient=int(i),
            preferred_term=term,
            system_organ_class=soc,
            relatedness=levels[int(lv)],
            onset_day=int(d),
        )
        for i, d, lv in zip(patients, onset, level, strict=True)
    ]
