"""One virtual trial as arrays: randomized patients, their baseline, course and derived endpoints.

This is what the calibration report averages over many trials, and what the trial runner feeds,
patient by patient and day by day, through the real conduct services. The endpoints are derived by
the same kernel as the analysis of a real trial (:func:`immunosep.clinical.sofa_endpoint.sofa_decrease`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from immunosep.clinical.sofa_endpoint import SofaDecrease, sofa_decrease
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.simulate.model import ModelParameters, categorical
from immunosep.simulate.population import Baseline, Enrolled, draw_baseline, draw_enrolled, trial_sites
from immunosep.simulate.trajectories import (
    AdverseEvent,
    BiomarkerDraws,
    Outcomes,
    draw_biomarker_course,
    draw_infection_day15,
    draw_outcomes,
    draw_serious_adverse_events,
    effective_treatment,
    sidf_of_draws,
)

BoolArray = npt.NDArray[np.bool_]


def allocate_arms(
    rng: np.random.Generator, n: int, protocol: Protocol, *, trials: int | None = None
) -> npt.NDArray[np.str_]:
    """Arms of ``n`` randomized patients in the protocol's ratio (exact counts, random order): shape
    ``[n]``, or ``[trials, n]`` with ``trials`` (each trial permuted independently; the Monte Carlo engine).

    The trial itself allocates with per-site permuted blocks (conduct); for the model only the counts
    and the independence from everything else matter. With ``trials=1`` the single row is the same draw
    as without ``trials`` (one random stream, whichever way it is asked).
    """
    return np.asarray(np.array(protocol.arm_codes)[allocate_arm_codes(rng, n, protocol, trials=trials)])


def allocate_arm_codes(
    rng: np.random.Generator, n: int, protocol: Protocol, *, trials: int | None = None
) -> npt.NDArray[np.int8]:
    """:func:`allocate_arms` as indices into ``protocol.arm_codes`` (the same draw: a permutation moves
    elements whatever their type)."""
    ratio = np.asarray(protocol.randomization.ratio, dtype=np.float64)
    codes = protocol.arm_codes
    if set(codes) != {"precision", "placebo"}:
        raise ImmunoSepError(f"the virtual-patient model knows arms 'precision' and 'placebo', got {codes}")
    counts = np.floor(n * ratio / ratio.sum()).astype(np.int64)
    counts[: n - int(counts.sum())] += 1
    arms = np.repeat(np.arange(len(codes), dtype=np.int8), counts)
    if trials is None:
        return np.asarray(rng.permutation(arms))
    return np.asarray(rng.permuted(np.tile(arms, (trials, 1)), axis=1))


def check_model_protocol(protocol: Protocol) -> None:
    """The model simulates the two enrolled strata of ImmunoSep; say so if a protocol differs."""
    if sorted(protocol.enrolled_strata) != ["immunoparalysis", "mals"]:
        raise ImmunoSepError(
            "the virtual-patient model simulates the enrolled strata 'mals' and 'immunoparalysis'; the "
            f"protocol enrolls {protocol.enrolled_strata}"
        )


@dataclass(frozen=True)
class VirtualTrial:
    """A simulated trial: ``n`` randomized patients (withdrawn included; ``analysed`` excludes them)."""

    strata: npt.NDArray[np.str_]
    biology: npt.NDArray[np.str_]
    arms: npt.NDArray[np.str_]
    sites: npt.NDArray[np.str_]
    baseline: Baseline
    outcomes: Outcomes
    primary: SofaDecrease
    sofa_d15: SofaDecrease
    infection_day15: npt.NDArray[np.int64]
    biomarkers: BiomarkerDraws
    sidf_reversed: BoolArray  # by clinical.sidf: confirmed reversal (False outside the SIDF population)
    sidf_assessable: BoolArray  # in the SIDF population: baseline and >= min_later_draws serial draws
    adverse_events: list[AdverseEvent]

    @property
    def analysed(self) -> BoolArray:
        """Patients who did not withdraw consent with removal of data."""
        return ~self.outcomes.withdrawn


def simulate_trial(
    rng: np.random.Generator, n_randomized: int, params: ModelParameters, protocol: Protocol
) -> VirtualTrial:
    """Simulate every randomized patient of one trial with the full model."""
    check_model_protocol(protocol)
    enrolled = draw_enrolled(rng, 1, n_randomized, params, protocol)
    arms = allocate_arms(rng, n_randomized, protocol)
    site_table = trial_sites(params, protocol)
    sites = np.array(site_table.codes)[categorical(rng, site_table.weights, n_randomized)]
    baseline = draw_baseline(rng, enrolled, params, protocol, full=True)
    return simulate_course(rng, enrolled, arms, sites, baseline, params, protocol)


def simulate_course(
    rng: np.random.Generator,
    enrolled: Enrolled,
    arms: npt.NDArray[np.str_],
    sites: npt.NDArray[np.str_],
    baseline: Baseline,
    params: ModelParameters,
    protocol: Protocol,
) -> VirtualTrial:
    """Everything after randomization of patients already enrolled and allocated: daily SOFA, death,
    discharge, withdrawal, infection state, biomarker draws, SIDF reversal and serious AEs.

    :func:`simulate_trial` allocates with :func:`allocate_arms`; the trial runner passes the arms the
    real sealed lists gave, read back by the pharmacist.
    """
    strata = enrolled.stratum
    outcome_strata, effective_arms = effective_treatment(enrolled.biology, strata, arms)
    outcomes = draw_outcomes(
        rng, outcome_strata, effective_arms, baseline, params, protocol, allocated_arms=arms
    )
    primary = sofa_decrease(outcomes.sofa, outcomes.death_day, protocol.endpoints.primary)
    sofa_d15 = sofa_decrease(outcomes.sofa, outcomes.death_day, protocol.endpoints.sofa_d15)
    infection = draw_infection_day15(rng, outcomes.response, effective_arms, params)
    biomarkers = draw_biomarker_course(
        rng,
        outcomes.response,
        strata,
        effective_arms,
        np.asarray(baseline.columns["ferritin_ng_ml"], dtype=np.float64),
        np.asarray(baseline.columns["hla_dr"], dtype=np.float64),
        outcomes.death_day,
        outcomes.discharge_day,
        params,
        protocol,
    )
    sidf = sidf_of_draws(strata, biomarkers, protocol)
    events = draw_serious_adverse_events(rng, arms, outcomes.death_day, params)
    return VirtualTrial(
        strata=strata,
        biology=enrolled.biology,
        arms=arms,
        sites=sites,
        baseline=baseline,
        outcomes=outcomes,
        primary=primary,
        sofa_d15=sofa_d15,
        infection_day15=infection,
        biomarkers=biomarkers,
        sidf_reversed=sidf.reversed,
        sidf_assessable=sidf.assessable,
        adverse_events=events,
    )
