"""Virtual screened and enrolled patients: sites, screening funnel, stratum and Table 1 baseline.

Everything is vectorized over patients with a seeded :class:`numpy.random.Generator`. Baseline organ
failure is driven by one *severity* latent (standard normal): each organ's own latent loads on it
(``baseline.labs.severity_loading``), so sicker patients have lower platelets and PaO2/FiO2, higher
creatinine and bilirubin, more vasopressor and a lower GCS together. Labs are drawn from lognormals
fitted to the published median/IQR (or mean/SD) of Table 1; the SOFA components are then *scored* from
those inputs by :func:`immunosep.clinical.sofa.score_sofa_arrays`, the same code the trial uses, so a
virtual patient's SOFA is always consistent with its recorded inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from immunosep.clinical.immune import STRATA, classify_arrays, classify_codes
from immunosep.clinical.sepsis3 import sepsis3_arrays
from immunosep.clinical.sofa import score_sofa_arrays
from immunosep.clinical.units import clip_plausible
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.simulate.model import (
    FloatArray,
    ModelParameters,
    TruncatedLogNormal,
    categorical,
    correlated_normal,
)

T = TypeVar("T")
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Stratum codes of the model (the protocol's enrolled strata must be these two).
MALS, IMMUNOPARALYSIS, UNCLASSIFIED = STRATA
#: Integer codes of the strata in the Monte Carlo fast path (index into ``STRATA``, as the classifier's).
MALS_CODE, IMMUNOPARALYSIS_CODE, UNCLASSIFIED_CODE = 0, 1, 2
Int8Array = npt.NDArray[np.int8]


def stratum_names(codes: Int8Array) -> npt.NDArray[np.str_]:
    """The stratum names of integer codes (``STRATA[code]``)."""
    return np.asarray(STRATA)[codes]


def stratum_codes(names: npt.NDArray[np.str_]) -> Int8Array:
    """Integer codes of stratum names (-1 for a name that is no stratum)."""
    codes = np.full(names.shape, -1, dtype=np.int8)
    for code, name in enumerate(STRATA):
        codes[names == name] = code
    return codes


# Representative SOFA inputs for a cardiovascular score 0..4 (Vincent 1996 bands): MAP mmHg range and
# the vasopressor given (ug/kg/min range). Scoring them back through clinical.sofa gives the score.
CARDIOVASCULAR_INPUTS: tuple[tuple[tuple[float, float], str | None, tuple[float, float]], ...] = (
    ((70.0, 95.0), None, (0.0, 0.0)),
    ((58.0, 69.0), None, (0.0, 0.0)),
    ((62.0, 80.0), "dobutamine_ug_kg_min", (2.5, 10.0)),
    ((62.0, 80.0), "norepinephrine_ug_kg_min", (0.02, 0.10)),
    ((60.0, 78.0), "norepinephrine_ug_kg_min", (0.12, 0.60)),
)
# Glasgow coma scale range for a CNS score 0..4.
GCS_RANGE = ((15, 15), (13, 14), (10, 12), (6, 9), (3, 5))


@dataclass(frozen=True)
class Sites:
    """The trial's sites: code, country and recruitment weight (probability a patient comes from it)."""

    codes: tuple[str, ...]
    countries: tuple[str, ...]
    weights: FloatArray


def trial_sites(params: ModelParameters, protocol: Protocol) -> Sites:
    """Sites ``S01..SNN`` (as :mod:`immunosep.conduct.sites` names them) spread over the countries."""
    countries: list[str] = []
    for country, count in zip(params.sites.countries, params.sites.sites_per_country, strict=True):
        countries.extend([country] * count)
    n_sites = protocol.trial.sites
    if len(countries) < n_sites:
        countries.extend([params.sites.countries[0]] * (n_sites - len(countries)))
    weights = params.sites.weight_decay ** np.arange(n_sites, dtype=np.float64)
    return Sites(
        codes=tuple(f"S{k + 1:02d}" for k in range(n_sites)),
        countries=tuple(countries[:n_sites]),
        weights=weights / weights.sum(),
    )


@dataclass(frozen=True)
class BiomarkerDistributions:
    """Ferritin (ng/mL) and mHLA-DR (receptors/monocyte) per stratum, truncated at the thresholds."""

    ferritin: dict[str, TruncatedLogNormal]
    hla_dr: dict[str, TruncatedLogNormal]


_FITTED: dict[tuple[str, int, int], tuple[ModelParameters, Protocol, object]] = {}


def fitted_once(kind: str, params: ModelParameters, protocol: Protocol, build: Callable[[], T]) -> T:
    """Fit once per (parameters, protocol) object pair; the pair is kept so its ids stay unique."""
    key = (kind, id(params), id(protocol))
    if key not in _FITTED:
        if len(_FITTED) > 32:
            _FITTED.clear()
        _FITTED[key] = (params, protocol, build())
    return cast(T, _FITTED[key][2])


def fitted_values(params: ModelParameters, protocol: Protocol) -> dict[str, object]:
    """The fits made so far for this (parameters, protocol) pair, by kind: to ship them to Dask workers."""
    return {
        kind: value for (kind, p, q), (_, _, value) in _FITTED.items() if (p, q) == (id(params), id(protocol))
    }


def install_fitted(params: ModelParameters, protocol: Protocol, fitted: dict[str, object]) -> None:
    """Make fits computed elsewhere (:func:`fitted_values` of an equal pair) this pair's, where it has none."""
    for kind, value in fitted.items():
        fitted_once(kind, params, protocol, lambda value=value: value)  # type: ignore[misc]


def biomarker_distributions(params: ModelParameters, protocol: Protocol) -> BiomarkerDistributions:
    """Fit the stratum distributions so that every draw classifies into its stratum by the protocol."""
    return fitted_once("biomarkers", params, protocol, lambda: _fit_biomarkers(params, protocol))


def _fit_biomarkers(params: ModelParameters, protocol: Protocol) -> BiomarkerDistributions:
    truth = params.biology
    c = protocol.classification
    b = params.biomarkers
    hla_below = float(np.nextafter(truth.immunoparalysis_hla_dr_below, 0.0))  # strictly below
    fit = TruncatedLogNormal.fit_quantiles
    ferritin_max, hla_max = c.ferritin_max_plausible, c.hla_dr_max_plausible
    ferritin = {
        MALS: fit(*b.mals_ferritin_median_iqr, lower=truth.mals_ferritin_above, upper=ferritin_max),
        IMMUNOPARALYSIS: fit(*b.immunoparalysis_ferritin_median_iqr, upper=truth.mals_ferritin_above),
        UNCLASSIFIED: fit(*b.unclassified_ferritin_median_iqr, upper=truth.mals_ferritin_above),
    }
    hla_dr = {
        MALS: fit(*b.mals_hla_dr_median_iqr, upper=hla_max),
        IMMUNOPARALYSIS: fit(*b.immunoparalysis_hla_dr_median_iqr, upper=hla_below),
        UNCLASSIFIED: fit(*b.unclassified_hla_dr_median_iqr, lower=hla_below, upper=hla_max),
    }
    return BiomarkerDistributions(ferritin=ferritin, hla_dr=hla_dr)


@dataclass(frozen=True)
class LabDistributions:
    wbc_per_ul: TruncatedLogNormal
    platelets_1e3_ul: TruncatedLogNormal
    creatinine_mg_dl: TruncatedLogNormal
    bilirubin_mg_dl: TruncatedLogNormal
    pao2_fio2_mmhg: TruncatedLogNormal
    lactate_mg_dl: TruncatedLogNormal
    hours_onset_to_drug: TruncatedLogNormal


def lab_distributions(params: ModelParameters, protocol: Protocol) -> LabDistributions:
    """Lognormals of Table 1 labs (fitted once per parameter set)."""
    return fitted_once("labs", params, protocol, lambda: _fit_labs(params, protocol))


def _fit_labs(params: ModelParameters, protocol: Protocol) -> LabDistributions:
    labs = params.baseline.labs
    fit = TruncatedLogNormal.fit_quantiles
    return LabDistributions(
        wbc_per_ul=TruncatedLogNormal.from_mean_sd(*labs.wbc_mean_sd_per_ul),
        platelets_1e3_ul=TruncatedLogNormal.from_mean_sd(*labs.platelets_mean_sd_1e3_ul),
        creatinine_mg_dl=fit(*labs.creatinine_median_iqr_mg_dl),
        bilirubin_mg_dl=fit(*labs.bilirubin_median_iqr_mg_dl),
        pao2_fio2_mmhg=fit(*labs.pao2_fio2_median_iqr_mmhg, upper=600.0),
        lactate_mg_dl=fit(*labs.lactate_median_iqr_mg_dl),
        hours_onset_to_drug=fit(
            *params.baseline.hours_onset_to_drug_median_iqr,
            upper=protocol.treatment.first_dose_max_hours_after_onset,
        ),
    )


def draw_biology(rng: np.random.Generator, n: int, params: ModelParameters) -> npt.NDArray[np.str_]:
    """True immune state of ``n`` patients who pass the clinical criteria (before classification).

    A share ``unclassified_fraction`` is neither MALS nor immunoparalysis; of the others a share
    ``mals_fraction_of_classified`` has MALS.
    """
    return stratum_names(draw_biology_codes(rng, n, params))


def draw_biology_codes(rng: np.random.Generator, n: int, params: ModelParameters) -> Int8Array:
    """:func:`draw_biology` as stratum codes (the same draw)."""
    bio = params.screening.biomarkers
    u = rng.random(n)
    mals_cut = (1.0 - bio.unclassified_fraction) * bio.mals_fraction_of_classified
    codes = (u >= mals_cut).astype(np.int8)
    codes += u >= 1.0 - bio.unclassified_fraction
    return codes


def draw_biomarkers(
    rng: np.random.Generator, strata: npt.NDArray[np.str_], params: ModelParameters, protocol: Protocol
) -> tuple[FloatArray, FloatArray]:
    """Baseline ferritin (ng/mL) and mHLA-DR (receptors/monocyte) of patients of these true states."""
    return draw_biomarkers_codes(rng, stratum_codes(strata), params, protocol)


def draw_biomarkers_codes(
    rng: np.random.Generator, codes: Int8Array, params: ModelParameters, protocol: Protocol
) -> tuple[FloatArray, FloatArray]:
    """:func:`draw_biomarkers` of true states given as stratum codes (the same draw)."""
    n = int(codes.shape[0])
    u_ferritin, u_hla = rng.random(n), rng.random(n)
    return _biomarker_values(codes, u_ferritin, u_hla, params, protocol)


def _biomarker_values(
    codes: Int8Array, u_ferritin: FloatArray, u_hla: FloatArray, params: ModelParameters, protocol: Protocol
) -> tuple[FloatArray, FloatArray]:
    dist = biomarker_distributions(params, protocol)
    n = int(codes.shape[0])
    ferritin = np.empty(n)
    hla_dr = np.empty(n)
    for code, stratum in enumerate(STRATA):
        sel = codes == code
        if sel.any():
            ferritin[sel] = dist.ferritin[stratum].quantile(u_ferritin[sel])
            hla_dr[sel] = dist.hla_dr[stratum].quantile(u_hla[sel])
    return ferritin, hla_dr


def _stratum_by_support(
    ferritin: TruncatedLogNormal, hla_dr: TruncatedLogNormal, protocol: Protocol
) -> int | None:
    """The stratum the classifier gives every candidate of a true state, when the supports of its two
    biomarker distributions decide it: each within the plausible range the classifier checks and on one
    side of the thresholds (with the published thresholds, every state: the true state's distributions
    are truncated at them). None when the drawn values must be classified one by one."""
    c = protocol.classification
    f_low, f_high = ferritin.support()
    h_low, h_high = hla_dr.support()
    if f_low < 0 or h_low < 0 or f_high > c.ferritin_max_plausible or h_high > c.hla_dr_max_plausible:
        return None
    if f_low > c.mals_ferritin_above:
        return MALS_CODE
    if f_high <= c.mals_ferritin_above:
        if h_high < c.immunoparalysis_hla_dr_below:
            return IMMUNOPARALYSIS_CODE
        if h_low >= c.immunoparalysis_hla_dr_below:
            return UNCLASSIFIED_CODE
    return None


def _classify_candidates(
    codes: Int8Array, u_ferritin: FloatArray, u_hla: FloatArray, params: ModelParameters, protocol: Protocol
) -> Int8Array:
    """``classify_codes`` of the biomarkers ``_biomarker_values`` would draw, computing (and classifying)
    the values only for the true states whose distributions do not decide the stratum by their support."""
    dist = biomarker_distributions(params, protocol)
    stratum = np.empty(codes.shape[0], dtype=np.int8)
    for code, state in enumerate(STRATA):
        sel = codes == code
        decided = _stratum_by_support(dist.ferritin[state], dist.hla_dr[state], protocol)
        if decided is not None:
            stratum[sel] = decided
        elif sel.any():
            stratum[sel] = classify_codes(
                dist.ferritin[state].quantile(u_ferritin[sel]),
                dist.hla_dr[state].quantile(u_hla[sel]),
                protocol,
            )
    return stratum


@dataclass(frozen=True)
class Enrolled:
    """Enrolled patients: true immune state, stratum by the protocol's classification, biomarkers."""

    biology: npt.NDArray[np.str_]
    stratum: npt.NDArray[np.str_]
    ferritin_ng_ml: FloatArray
    hla_dr: FloatArray


def draw_enrolled(
    rng: np.random.Generator, n_trials: int, n_per_trial: int, params: ModelParameters, protocol: Protocol
) -> Enrolled:
    """The first ``n_per_trial`` enrolled patients of each of ``n_trials`` trials (flat, trial-major).

    Candidates who pass the clinical criteria are drawn with their true state and biomarkers and
    classified by the protocol's thresholds (:func:`immunosep.clinical.immune.classify_arrays`); those
    in an enrolled stratum are enrolled. With the published thresholds the stratum is the true state;
    with other thresholds some patients are enrolled into a stratum that is not theirs.
    """
    codes = draw_enrolled_codes(rng, n_trials, n_per_trial, params, protocol)
    return Enrolled(
        biology=stratum_names(codes.biology),
        stratum=stratum_names(codes.stratum),
        ferritin_ng_ml=codes.ferritin_ng_ml,
        hla_dr=codes.hla_dr,
    )


@dataclass(frozen=True)
class EnrolledCodes:
    """:class:`Enrolled` with the true state and the stratum as codes (index into ``STRATA``)."""

    biology: Int8Array
    stratum: Int8Array
    ferritin_ng_ml: FloatArray
    hla_dr: FloatArray


def draw_enrolled_codes(
    rng: np.random.Generator,
    n_trials: int,
    n_per_trial: int,
    params: ModelParameters,
    protocol: Protocol,
    *,
    values: bool = True,
) -> EnrolledCodes:
    """:func:`draw_enrolled` with codes for strings (the same draw; the Monte Carlo engine's fast path).

    Biomarker values are computed only where needed: to classify a candidate whose true state does not
    decide the stratum by the support of its distributions (never with the published thresholds), and,
    with ``values``, for the enrolled. Without ``values`` the enrolled have empty biomarker arrays.
    """
    enrolled_codes = stratum_codes(np.array(protocol.enrolled_strata))
    per_trial = max(2 * n_per_trial, 16)
    while True:
        n = n_trials * per_trial
        biology = draw_biology_codes(rng, n, params)
        u_ferritin, u_hla = rng.random(n), rng.random(n)  # the draw of draw_biomarkers_codes
        stratum = _classify_candidates(biology, u_ferritin, u_hla, params, protocol)
        enrolled = np.isin(stratum, enrolled_codes).reshape(n_trials, per_trial)
        if enrolled.sum(axis=1).min() >= n_per_trial:
            break
        if enrolled.mean() < 0.02:
            raise ImmunoSepError(
                "the protocol's classification thresholds enroll almost nobody in the model's population "
                f"({enrolled.mean():.1%} of the candidates); check classification in the protocol file"
            )
        per_trial *= 2
    take = enrolled & (np.cumsum(enrolled, axis=1) <= n_per_trial)
    flat = take.ravel()
    if values:
        ferritin, hla_dr = _biomarker_values(biology[flat], u_ferritin[flat], u_hla[flat], params, protocol)
    else:
        ferritin, hla_dr = np.empty(0), np.empty(0)
    return EnrolledCodes(
        biology=biology[flat], stratum=stratum[flat], ferritin_ng_ml=ferritin.round(), hla_dr=hla_dr.round()
    )


def draw_baseline_sofa_inputs(
    rng: np.random.Generator, severity: FloatArray, params: ModelParameters, protocol: Protocol
) -> dict[str, npt.NDArray[np.float64] | BoolArray]:
    """The day-1 SOFA inputs (labs, ventilation, MAP, vasopressors, GCS, urine) of each patient."""
    n = int(severity.shape[0])
    b = params.baseline
    loading = b.labs.severity_loading
    dist = lab_distributions(params, protocol)
    organ = {
        name: correlated_normal(rng, severity, loading)
        for name in ("resp", "coag", "liver", "cv", "cns", "renal")
    }
    u = {name: ndtr(z) for name, z in organ.items()}
    pao2_fio2 = dist.pao2_fio2_mmhg.quantile(1.0 - u["resp"])
    # Ventilation goes with a low PaO2/FiO2, CVVH with a high creatinine: their own latents load on the organ's.
    ventilated = correlated_normal(rng, organ["resp"], b.ventilation_respiratory_loading) > -_probit(
        b.mechanical_ventilation
    )
    cvvh = correlated_normal(rng, organ["renal"], b.cvvh_renal_loading) > -_probit(b.cvvh)

    cv_score = categorical_from_uniform(u["cv"], b.cardiovascular.score_probabilities)
    map_mmhg = np.empty(n)
    pressor = {"dobutamine_ug_kg_min": np.zeros(n), "norepinephrine_ug_kg_min": np.zeros(n)}
    for score, ((map_lo, map_hi), drug, (dose_lo, dose_hi)) in enumerate(CARDIOVASCULAR_INPUTS):
        sel = cv_score == score
        k = int(sel.sum())
        map_mmhg[sel] = rng.uniform(map_lo, map_hi, k).round()
        if drug is not None:
            pressor[drug][sel] = rng.uniform(dose_lo, dose_hi, k).round(3)
    cns_score = categorical_from_uniform(u["cns"], b.cns.score_probabilities)
    gcs_low = np.array([r[0] for r in GCS_RANGE])[cns_score]
    gcs_high = np.array([r[1] for r in GCS_RANGE])[cns_score]
    gcs = rng.integers(gcs_low, gcs_high + 1).astype(np.float64)
    urine = np.where(cvvh, rng.uniform(20.0, 190.0, n), rng.uniform(600.0, 2800.0, n)).round()
    # labs inside the plausible ranges the bedside rules check (clinical.units.PLAUSIBLE)
    platelets = clip_plausible("platelets_1e3_ul", dist.platelets_1e3_ul.quantile(1.0 - u["coag"]))
    bilirubin = clip_plausible("bilirubin_mg_dl", dist.bilirubin_mg_dl.quantile(u["liver"]))
    creatinine = clip_plausible("creatinine_mg_dl", dist.creatinine_mg_dl.quantile(u["renal"]))
    return {
        "pao2_fio2_mmhg": clip_plausible("pao2_fio2_mmhg", pao2_fio2).round(1),
        "ventilated": ventilated,
        "cvvh": cvvh,
        "platelets_1e3_ul": platelets.round(),
        "bilirubin_mg_dl": bilirubin.round(2),
        "creatinine_mg_dl": creatinine.round(2),
        "map_mmhg": map_mmhg,
        "dobutamine_ug_kg_min": pressor["dobutamine_ug_kg_min"],
        "norepinephrine_ug_kg_min": pressor["norepinephrine_ug_kg_min"],
        "gcs": gcs,
        "urine_ml_day": urine,
    }


def score_inputs(inputs: dict[str, npt.NDArray[np.float64] | BoolArray]) -> dict[str, npt.NDArray[np.int8]]:
    """SOFA components and total of the inputs, by the trial's own SOFA code."""
    scored = score_sofa_arrays(
        pao2_fio2_mmhg=inputs["pao2_fio2_mmhg"],
        ventilated=inputs["ventilated"],
        platelets_1e3_ul=inputs["platelets_1e3_ul"],
        bilirubin_mg_dl=inputs["bilirubin_mg_dl"],
        map_mmhg=inputs["map_mmhg"],
        dobutamine_ug_kg_min=inputs["dobutamine_ug_kg_min"],
        norepinephrine_ug_kg_min=inputs["norepinephrine_ug_kg_min"],
        gcs=inputs["gcs"],
        creatinine_mg_dl=inputs["creatinine_mg_dl"],
        urine_ml_day=inputs["urine_ml_day"],
        validate=False,
    )
    return {k: v for k, v in scored.items() if k.startswith("sofa_") and k != "sofa_missing_mask"}


def categorical_from_uniform(u: FloatArray, probabilities: list[float]) -> IntArray:
    """Category index of uniforms ``u`` (comonotone: a larger ``u`` gives a larger category)."""
    cumulative = np.cumsum(np.asarray(probabilities) / sum(probabilities))
    return np.minimum(np.searchsorted(cumulative, u, side="right"), len(probabilities) - 1).astype(np.int64)


def _probit(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


#: Redraws of the patients whose baseline SOFA fails Sepsis-3 before giving up (each round redraws only them).
SEPSIS3_MAX_REDRAWS = 200


def draw_sepsis_baseline(
    rng: np.random.Generator, n: int, params: ModelParameters, protocol: Protocol
) -> tuple[FloatArray, dict[str, npt.NDArray[np.float64] | BoolArray], dict[str, npt.NDArray[np.int8]]]:
    """Severity latent, day-1 SOFA inputs and their scores of ``n`` patients who meet Sepsis-3.

    Screening applies the protocol's Sepsis-3 rule (:func:`immunosep.clinical.sepsis3.sepsis3_arrays`: suspected
    infection and a SOFA of at least ``eligibility.min_sofa`` on arrival); the model's screened population
    is therefore drawn from the patients who meet it: a patient whose inputs score below it is drawn again
    (severity and inputs), which is the model's population conditioned on the rule.
    """
    severity = rng.standard_normal(n)
    inputs = draw_baseline_sofa_inputs(rng, severity, params, protocol)
    scores = score_inputs(inputs)
    for _ in range(SEPSIS3_MAX_REDRAWS):
        fails = ~sepsis3_arrays(scores["sofa_total"], None, True, protocol)
        if not fails.any():
            return severity, inputs, scores
        idx = np.flatnonzero(fails)
        severity[idx] = rng.standard_normal(idx.size)
        again = draw_baseline_sofa_inputs(rng, severity[idx], params, protocol)
        for name, values in again.items():
            inputs[name][idx] = values
        scores = score_inputs(inputs)
    raise ImmunoSepError(
        "the model's patients almost never meet the protocol's Sepsis-3 rule (eligibility.min_sofa = "
        f"{protocol.eligibility.min_sofa}); check eligibility in the protocol file"
    )


def draw_risk_columns(
    rng: np.random.Generator, severity: FloatArray, params: ModelParameters
) -> dict[str, np.ndarray]:
    """Age, the Table 1 histories, Charlson comorbidity index and APACHE II (the baseline death risk).

    The Charlson index is age points + history points + other comorbidities (Poisson); APACHE II loads on the
    severity latent. Drawn on both paths of :func:`draw_baseline`, since death depends on them.
    """
    n = int(severity.shape[0])
    b = params.baseline
    age = np.clip(rng.normal(b.age_mean_years, b.age_sd_years, n), b.age_min_years, b.age_max_years).round()
    history = {name: rng.random(n) < p for name, p in b.history.items()}
    charlson = np.searchsorted(np.asarray(b.charlson.age_points_from_years), age, side="right").astype(
        np.int64
    )
    for name, points in b.charlson.history_points.items():
        charlson += points * history[name].astype(np.int64)
    charlson += rng.poisson(b.charlson.other_points_mean, n)
    apache_z = correlated_normal(rng, severity, b.apache2.severity_loading)
    apache2 = np.clip(np.round(b.apache2.mean + b.apache2.sd * apache_z), 0, 71).astype(np.int64)
    return {
        "age_years": age,
        **{f"history_{name}": flag for name, flag in history.items()},
        "charlson": charlson,
        "apache2": apache2,
    }


@dataclass(frozen=True)
class Baseline:
    """Table 1 characteristics of enrolled patients (arrays of length n) and the latent severity."""

    columns: dict[str, np.ndarray]
    severity: FloatArray

    @property
    def sofa_total(self) -> FloatArray:
        return np.asarray(self.columns["sofa_total"], dtype=np.float64)


def draw_outcome_baseline(
    rng: np.random.Generator, n: int, params: ModelParameters, protocol: Protocol
) -> Baseline:
    """What the outcome model needs of ``n`` patients' baseline (SOFA and its inputs, age, histories,
    Charlson index, APACHE II; no stratum column): :func:`draw_baseline` with ``full=False`` draws this."""
    severity, inputs, scores = draw_sepsis_baseline(rng, n, params, protocol)
    columns: dict[str, np.ndarray] = {**inputs, **scores}
    columns.update(draw_risk_columns(rng, severity, params))
    return Baseline(columns=columns, severity=severity)


def draw_baseline(
    rng: np.random.Generator,
    enrolled: Enrolled,
    params: ModelParameters,
    protocol: Protocol,
    *,
    full: bool = True,
) -> Baseline:
    """Baseline characteristics of enrolled patients, who meet Sepsis-3 (:func:`draw_sepsis_baseline`).

    With ``full=False`` only what the outcome model needs (SOFA and its inputs, age, histories, Charlson
    index, APACHE II) is drawn: the Monte Carlo engine's fast path. The random stream differs between the
    two, each is reproducible.
    """
    strata = enrolled.stratum
    n = int(strata.shape[0])
    b = params.baseline
    outcome_baseline = draw_outcome_baseline(rng, n, params, protocol)
    severity = outcome_baseline.severity
    columns: dict[str, np.ndarray] = {"stratum": strata, **outcome_baseline.columns}
    if not full:
        return Baseline(columns=columns, severity=severity)

    dist = lab_distributions(params, protocol)
    male = rng.random(n) < b.male
    height = np.where(male, b.height_mean_cm_male, b.height_mean_cm_female) + rng.normal(0, b.height_sd_cm, n)
    weight = np.clip(rng.normal(b.weight_mean_kg, b.weight_sd_kg, n) + np.where(male, 4.0, -6.0), 38.0, 180.0)
    infection = np.empty(n, dtype=object)
    for stratum in (MALS, IMMUNOPARALYSIS):
        sel = strata == stratum
        probs = b.infection[stratum]
        names = np.array(list(probs))
        infection[sel] = names[categorical(rng, list(probs.values()), int(sel.sum()))]
    lactate_z = correlated_normal(rng, severity, b.labs.severity_loading)
    columns.update(
        sex=np.where(male, "male", "female"),
        weight_kg=weight.round(1),
        height_cm=clip_plausible("height_cm", height).round(),
        infection=infection.astype(str),
        ferritin_ng_ml=enrolled.ferritin_ng_ml,
        hla_dr=enrolled.hla_dr,
        wbc_per_ul=dist.wbc_per_ul.quantile(rng.random(n)).round(-1),
        lactate_mg_dl=dist.lactate_mg_dl.quantile(ndtr(lactate_z)).round(1),
        hours_onset_to_drug=dist.hours_onset_to_drug.quantile(rng.random(n)).round(1),
    )
    return Baseline(columns=columns, severity=severity)


# -- the screening funnel ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenedPatient:
    """One screened patient: the reason for not being randomized ("" when eligible) and the biomarkers."""

    reason: str
    stratum: str
    biology: str
    ferritin_ng_ml: float
    hla_dr: float
    site: str
    age_years: float


def draw_screening_log(
    rng: np.random.Generator, n_screened: int, params: ModelParameters, protocol: Protocol
) -> list[ScreenedPatient]:
    """A screening log: each screened patient's exclusion reason, stratum and biomarkers.

    Reasons other than "unclassified" are drawn with the fractions of ``screening.reasons``; patients
    passing them are classified by the protocol from their biomarkers, and those in no enrolled stratum
    are "unclassified".
    """
    reasons = params.screening.reasons
    names = [*reasons, ""]
    probabilities = [*reasons.values(), 1.0 - sum(reasons.values())]
    reason = np.array(names, dtype=object)[categorical(rng, probabilities, n_screened)]
    biology = draw_biology(rng, n_screened, params)
    ferritin, hla_dr = draw_biomarkers(rng, biology, params, protocol)
    ferritin, hla_dr = ferritin.round(), hla_dr.round()
    strata = classify_arrays(ferritin, hla_dr, protocol)
    # SARS-CoV-2 pneumonia excludes only patients without MALS.
    reason = np.where((reason == "sars_cov2_without_mals") & (strata == MALS), "", reason)
    not_enrolled = ~np.isin(strata, np.array(protocol.enrolled_strata))
    reason = np.where((reason == "") & not_enrolled, UNCLASSIFIED, reason)
    sites = trial_sites(params, protocol)
    site = np.array(sites.codes)[categorical(rng, sites.weights, n_screened)]
    age = np.clip(
        rng.normal(params.baseline.age_mean_years, params.baseline.age_sd_years, n_screened),
        protocol.eligibility.min_age_years,
        99,
    )
    return [
        ScreenedPatient(
            reason=str(reason[i]),
            stratum=str(strata[i]),
            biology=str(biology[i]),
            ferritin_ng_ml=float(ferritin[i]),
            hla_dr=float(hla_dr[i]),
            site=str(site[i]),
            age_years=float(round(age[i])),
        )
        for i in range(n_screened)
    ]


def expected_randomized_fraction(params: ModelParameters) -> float:
    """Fraction of screened patients randomized by the funnel (before consent withdrawal)."""
    return (1.0 - sum(params.screening.reasons.values())) * (
        1.0 - params.screening.biomarkers.unclassified_fraction
    )
