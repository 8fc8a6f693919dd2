"""The virtual trial runner: virtual patients driven through the real conduct services into a real database.

Nothing here writes a table directly. Every patient of a drawn screening log is screened by the
investigator of their site, the central lab enters the baseline draw, the investigator classifies, takes
consent and randomizes from the sealed lists; the site's unblinded pharmacist reads the allocation (the only
way the runner learns an arm) and the course of the randomized patients is then drawn by the calibrated
model (:func:`immunosep.simulate.cohort.simulate_course`) for those arms. Day by day the investigator enters
the CRF (inputs that the trial's SOFA code scores to the model's SOFA; checked for every day), the
pharmacist prepares and logs every IV and SC injection of the double dummy with the renal adjustment of
the day, the lab enters the protocol draws; then outcomes, serious adverse events (MedDRA-coded, SUSARs
flagged by the service) and withdrawals with removal of data. Finally the data manager locks every patient
and the trial, so the database is what a real trial hands to its statistician.

Times run on a virtual calendar (recruitment from :data:`RECRUITMENT_START` over
:data:`RECRUITMENT_DAYS`): sepsis onset, screening, consent, draws and doses carry their virtual times; the
audit trail's own timestamps are the wall clock of the run.

A virtual patient's values are drawn inside the plausible ranges the bedside rules check
(``clinical.units.PLAUSIBLE``), so the services should never refuse one. Should a service refuse a value
all the same, the trial does not stop: the site handles it as a real one would. A refused CRF form is
re-entered with the item corrected from the source (the nearest plausible value) or, when no correction
is possible, left missing; the data manager raises a query on the item, the investigator answers it and
the data manager closes it before the lock. A refused dose or draw is left out. Each such event is
counted in :class:`VirtualTrialRun` (``crf_values_corrected``, ``crf_values_left_missing``, ``queries``,
``entries_refused``) so that a run that needed them says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import Engine

from immunosep.clinical.units import PLAUSIBLE, clip_plausible, unit_factor
from immunosep.conduct import (
    adverse_events,
    biospecimens,
    classification,
    crf,
    dosing,
    lock,
    outcomes,
    queries,
    randomization,
    screening,
    withdrawal,
)
from immunosep.conduct.access import Actor, actor_for
from immunosep.conduct.meddra import demo_meddra
from immunosep.conduct.trial import init_trial, protocol_of
from immunosep.conduct.users import create_user
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.simulate.cohort import VirtualTrial, check_model_protocol, simulate_course
from immunosep.simulate.daily_inputs import ORGANS, baseline_inputs, inputs_for_scores, split_total
from immunosep.simulate.model import ModelParameters, default_parameters
from immunosep.simulate.population import (
    MALS,
    Baseline,
    Enrolled,
    ScreenedPatient,
    draw_baseline,
    draw_screening_log,
)
from immunosep.store.db import make_engine, session_scope

#: Virtual calendar: first sepsis onset, and the span over which screened patients arrive (days).
RECRUITMENT_START = datetime(2021, 4, 1, tzinfo=UTC)
RECRUITMENT_DAYS = 900
#: Share of scheduled injections logged as missed (with a reason), and of serious AEs unexpected.
MISSED_DOSE_FRACTION = 0.01
UNEXPECTED_AE_FRACTION = 0.05
MISSED_DOSE_REASONS = ("patient off the unit for imaging", "line occluded, dose not given")
#: Default number of screened patients: the published CONSORT flow (672 screened, 281 randomized).
PUBLISHED_SCREENED = 672

#: ``progress(stage, done, total)``; ``total`` is the stage's size.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class VirtualTrialRun:
    """What a run put into the database (counts; the arms only in aggregate)."""

    db_url: str
    seed: int
    screened: int
    eligible: int
    randomized: int
    randomized_by_arm: dict[str, int]
    withdrawn: int
    crf_days: int
    doses_logged: int
    draws: int
    adverse_events: int
    susars: int
    locked: bool
    #: Values a service refused and the site re-entered corrected from the source, or left missing; the
    #: queries raised on them (answered and closed); doses and draws refused and left out.
    crf_values_corrected: int = 0
    crf_values_left_missing: int = 0
    queries: int = 0
    entries_refused: int = 0
    #: Queries the edit checks opened by themselves (``conduct.edit_checks``: soft limits, cross-field),
    #: each answered by the site and closed by the data manager before the lock.
    automatic_queries: int = 0


@dataclass
class _Staff:
    investigator: dict[str, Actor]
    pharmacist: dict[str, Actor]
    lab: Actor
    data_manager: Actor


@dataclass(frozen=True)
class _Randomized:
    """A randomized patient: index in the screening log, pseudonym, site, arm (read by the pharmacist)."""

    log_index: int
    pseudonym: str
    site: str
    stratum: str
    arm: str


def _create_staff(engine: Engine, site_codes: list[str]) -> _Staff:
    """One investigator and one pharmacist per site, a central lab and a data manager.

    The accounts have no password (nobody logs in as virtual staff); their actions are audited as theirs.
    """
    names: dict[str, tuple[str, str | None]] = {}
    for code in site_codes:
        names[f"investigator.{code.lower()}"] = ("investigator", code)
        names[f"pharmacist.{code.lower()}"] = ("pharmacist", code)
    names["central.lab"] = ("lab", None)
    names["data.manager"] = ("data_manager", None)
    actors: dict[str, Actor] = {}
    with session_scope(engine) as s:
        for username, (role, site) in names.items():
            user = create_user(s, None, username, None, role, site)
            actors[username] = actor_for(s, user)
    return _Staff(
        investigator={c: actors[f"investigator.{c.lower()}"] for c in site_codes},
        pharmacist={c: actors[f"pharmacist.{c.lower()}"] for c in site_codes},
        lab=actors["central.lab"],
        data_manager=actors["data.manager"],
    )


def _screening_input(
    patient: ScreenedPatient,
    baseline: dict[str, np.ndarray],
    i: int,
    onset: datetime,
    screened_at: datetime,
    protocol: Protocol,
) -> screening.ScreeningInput:
    """The investigator's screening answers for screened patient ``i`` (its exclusion reason built in)."""
    infection = str(baseline["infection"][i])
    if infection not in protocol.eligibility.infection_types:
        infection = protocol.eligibility.infection_types[0]
    if patient.reason == "sars_cov2_without_mals":
        infection = "sars_cov2_pneumonia"
    elif infection in protocol.eligibility.infections_requiring_mals and patient.stratum != MALS:
        infection = protocol.eligibility.infection_types[0]
    enrolled = patient.reason in ("", "consent_refused")
    exclusion_codes = {x.code for x in protocol.eligibility.exclusions}
    return screening.ScreeningInput(
        age_years=int(baseline["age_years"][i]) if enrolled else int(patient.age_years),
        sex=str(baseline["sex"][i]),
        infection_type=infection,
        sepsis_onset_at=onset,
        sofa_now=int(baseline["sofa_total"][i]),  # the model's patients meet Sepsis-3; the service checks it
        neutrophils_per_mm3=900.0 if patient.reason == "neutropenia" else 11000.0,
        weight_kg=float(baseline["weight_kg"][i]),
        height_cm=float(baseline["height_cm"][i]),
        exclusions=(patient.reason,) if patient.reason in exclusion_codes else (),
        screened_at=screened_at,
        cci=int(baseline["charlson"][i]),
        apache2=int(baseline["apache2"][i]),
    )


def run_virtual_trial(
    db_url: str,
    *,
    seed: int,
    n_screened: int = PUBLISHED_SCREENED,
    protocol_path: str | Path | None = None,
    params: ModelParameters | None = None,
    lock_at_end: bool = True,
    progress: Progress | None = None,
    durable: bool = True,
) -> VirtualTrialRun:
    """Run a whole virtual trial into the empty database ``db_url`` (created and seeded here).

    ``seed`` drives the virtual patients and the sealed randomization lists, so a run is reproducible.
    ``durable=False`` (the demo's throwaway SQLite file) skips the sync to disk at each of the run's
    thousands of commits (``store.db.make_engine``); what is stored and audited is the same.
    """
    if n_screened < 1:
        raise ImmunoSepError("a virtual trial needs at least one screened patient (--screened)")

    def tick(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    params = params or default_parameters()
    init = init_trial(db_url, protocol_path, seed=f"virtual-trial-{seed}")
    engine = make_engine(db_url, durable=durable)
    try:
        with session_scope(engine) as s:
            protocol = protocol_of(s)
        check_model_protocol(protocol)
        staff = _create_staff(engine, list(init.site_codes))
        rng = np.random.default_rng(seed)
        chores = np.random.default_rng([seed, 1])  # missed doses, CRF values: apart from the model's stream
        details = np.random.default_rng([seed, 2])  # AE criteria, action, outcome, end: apart from both
        log = draw_screening_log(rng, n_screened, params, protocol)
        known_sites = set(init.site_codes)
        log = [p if p.site in known_sites else _on_site(p, init.site_codes, rng) for p in log]
        everyone = Enrolled(
            biology=np.array([p.biology for p in log]),
            stratum=np.array([p.stratum for p in log]),
            ferritin_ng_ml=np.array([p.ferritin_ng_ml for p in log]),
            hla_dr=np.array([p.hla_dr for p in log]),
        )
        baseline = draw_baseline(rng, everyone, params, protocol, full=True)
        hours_to_dose = np.clip(
            np.asarray(baseline.columns["hours_onset_to_drug"], dtype=np.float64),
            2.0,
            protocol.treatment.first_dose_max_hours_after_onset - 1.0,
        )
        onsets = sorted(rng.uniform(0, RECRUITMENT_DAYS * 24.0, len(log)))
        if protocol.randomization.design == "adaptive":
            eligible, randomized, counts, withdrawn = _enrol_adaptive(
                engine,
                staff,
                log,
                baseline,
                everyone,
                onsets,
                hours_to_dose,
                protocol,
                rng,
                params,
                chores,
                details,
                tick,
            )
        else:
            eligible, randomized = _enrol(
                engine, staff, log, baseline.columns, onsets, hours_to_dose, protocol, tick
            )
            course = _course_of(rng, everyone, baseline, randomized, params, protocol)
            counts = _follow_up(
                engine,
                staff,
                randomized,
                course,
                [
                    RECRUITMENT_START + timedelta(hours=onsets[k] + hours_to_dose[k])
                    for k in (r.log_index for r in randomized)
                ],
                protocol,
                chores,
                tick,
                details,
            )
            withdrawn = course.outcomes.withdrawn
        arms = np.array([r.arm for r in randomized])
        counts["automatic_queries"] = _answer_automatic_queries(engine, staff, randomized)
        if lock_at_end:
            _lock(engine, staff, randomized, withdrawn, tick)
        return VirtualTrialRun(
            db_url=db_url,
            seed=seed,
            screened=len(log),
            eligible=eligible,
            randomized=len(randomized),
            randomized_by_arm={a: int((arms == a).sum()) for a in protocol.arm_codes},
            withdrawn=int(withdrawn.sum()),
            locked=lock_at_end,
            **counts,
        )
    finally:
        engine.dispose()


def _on_site(
    patient: ScreenedPatient, codes: tuple[str, ...] | list[str], rng: np.random.Generator
) -> ScreenedPatient:
    """A screened patient moved to one of the database's sites (a database seeded with fewer sites)."""
    return replace(patient, site=str(codes[int(rng.integers(0, len(codes)))]))


def _subset(baseline: Baseline, idx: np.ndarray) -> Baseline:
    """The baseline of the patients ``idx`` (the randomized among the screened)."""
    return Baseline(
        columns={k: np.asarray(v)[idx] for k, v in baseline.columns.items()}, severity=baseline.severity[idx]
    )


def _course_of(
    rng: np.random.Generator,
    everyone: Enrolled,
    baseline: Baseline,
    randomized: list[_Randomized],
    params: ModelParameters,
    protocol: Protocol,
) -> VirtualTrial:
    """The simulated 15-day course of the ``randomized`` patients (rows of ``everyone`` and ``baseline``
    by their screening-log index), with the stratum, arm and site the services gave them."""
    idx = np.array([r.log_index for r in randomized], dtype=np.int64)
    return simulate_course(
        rng,
        Enrolled(
            biology=everyone.biology[idx],
            stratum=np.array([r.stratum for r in randomized]),
            ferritin_ng_ml=everyone.ferritin_ng_ml[idx],
            hla_dr=everyone.hla_dr[idx],
        ),
        np.array([r.arm for r in randomized]),
        np.array([r.site for r in randomized]),
        _subset(baseline, idx),
        params,
        protocol,
    )


def _enrol(
    engine: Engine,
    staff: _Staff,
    log: list[ScreenedPatient],
    columns: dict[str, np.ndarray],
    onsets: list[float],
    hours_to_dose: np.ndarray,
    protocol: Protocol,
    tick: Progress,
    before_screening: Callable[[int, list[_Randomized]], None] | None = None,
) -> tuple[int, list[_Randomized]]:
    """Screen every patient; draw, classify, consent and randomize those who get that far.

    Returns how many the screening service found eligible, and the randomized patients.
    ``before_screening(i, randomized)`` runs before patient ``i`` is screened (the adaptive trial's
    follow-up of the patients whose primary endpoint is due by then).
    """
    limit = protocol.treatment.first_dose_max_hours_after_onset
    randomized: list[_Randomized] = []
    eligible = 0
    for i, patient in enumerate(log):
        if before_screening is not None:
            before_screening(i, randomized)
        inv, lab = staff.investigator[patient.site], staff.lab
        onset = RECRUITMENT_START + timedelta(hours=float(onsets[i]))
        if patient.reason == "onset_to_dose_over_72h":
            screened_at = onset + timedelta(hours=limit + 6.0)
        else:
            screened_at = onset + timedelta(hours=float(hours_to_dose[i]) * 0.5)
        data = _screening_input(patient, columns, i, onset, screened_at, protocol)
        # One transaction per screened patient (each service call is as it would be on its own; their
        # times are the virtual ones they are given): a commit is most of what a short service costs.
        with session_scope(engine) as s:
            result = screening.screen(s, inv, data)
            p = result.pseudonym
            if not result.eligible:
                tick("screening and randomization", i + 1, len(log))
                continue
            eligible += 1
            biospecimens.record_draw(
                s,
                lab,
                p,
                protocol.biospecimens.baseline_day,
                ferritin_ng_ml=patient.ferritin_ng_ml,
                hla_dr_per_monocyte=patient.hla_dr,
                drawn_at=screened_at + timedelta(minutes=30),
            )
            classified = classification.classify_patient(s, inv, p)
            if classified.enrolled and patient.reason != "consent_refused":
                screening.record_consent(s, inv, p, "relative", consented_at=screened_at + timedelta(hours=1))
                randomization.allocate(s, inv, p)
                disclosed = randomization.arm_of(s, staff.pharmacist[patient.site], p)
                randomized.append(_Randomized(i, p, patient.site, classified.stratum, disclosed.arm))
        tick("screening and randomization", i + 1, len(log))
    return eligible, randomized


def _enrol_adaptive(
    engine: Engine,
    staff: _Staff,
    log: list[ScreenedPatient],
    baseline: Baseline,
    everyone: Enrolled,
    onsets: list[float],
    hours_to_dose: np.ndarray,
    protocol: Protocol,
    rng: np.random.Generator,
    params: ModelParameters,
    chores: np.random.Generator,
    details: np.random.Generator,
    tick: Progress,
) -> tuple[int, list[_Randomized], dict[str, int], np.ndarray]:
    """Enrolment and follow-up interleaved on the virtual calendar, for a response-adaptive design.

    The adaptive draw reads the outcomes known at each allocation, so before each screening the patients
    whose primary endpoint window has ended by the patient's sepsis onset (first dose plus
    ``window_last_day`` days) are followed up (their course drawn by the model for the arms they got,
    then their whole follow-up entered); the rest are followed up at the end. Returns the eligible
    count, the randomized patients, the follow-up counts and who withdrew (in randomization order).
    """
    window = timedelta(days=protocol.endpoints.primary.window_last_day)
    done = 0
    counts = dict.fromkeys(
        (
            "crf_days",
            "doses_logged",
            "draws",
            "adverse_events",
            "susars",
            "crf_values_corrected",
            "crf_values_left_missing",
            "queries",
            "entries_refused",
        ),
        0,
    )
    withdrawn: list[np.ndarray] = []

    def first_dose(r: _Randomized) -> datetime:
        return RECRUITMENT_START + timedelta(hours=onsets[r.log_index] + float(hours_to_dose[r.log_index]))

    def follow(batch: list[_Randomized]) -> None:
        course = _course_of(rng, everyone, baseline, batch, params, protocol)
        got = _follow_up(
            engine, staff, batch, course, [first_dose(r) for r in batch], protocol, chores, tick, details
        )
        for key, value in got.items():
            counts[key] = counts.get(key, 0) + value
        withdrawn.append(np.asarray(course.outcomes.withdrawn, dtype=bool))

    def due(i: int, randomized: list[_Randomized]) -> None:
        nonlocal done
        now = RECRUITMENT_START + timedelta(hours=float(onsets[i]))
        end = done
        while end < len(randomized) and first_dose(randomized[end]) + window <= now:
            end += 1  # first doses follow the order of randomization closely; stop at the first not due
        if end > done:
            follow(randomized[done:end])
            done = end

    eligible, randomized = _enrol(
        engine, staff, log, baseline.columns, onsets, hours_to_dose, protocol, tick, due
    )
    if done < len(randomized):
        follow(randomized[done:])
    return eligible, randomized, counts, np.concatenate(withdrawn) if withdrawn else np.zeros(0, dtype=bool)


def _follow_up(
    engine: Engine,
    staff: _Staff,
    randomized: list[_Randomized],
    course: VirtualTrial,
    first_dose: list[datetime],
    protocol: Protocol,
    chores: np.random.Generator,
    tick: Progress,
    details: np.random.Generator,
) -> dict[str, int]:
    """Day by day for each randomized patient: CRF, doses, draws; then outcomes, AEs, withdrawal.

    The outcome goes in before the AEs, so that the event that ends in a death can be recorded as fatal.
    """
    o = course.outcomes
    levels = protocol.endpoints.infection_day15.levels
    last_follow_up = max(protocol.endpoints.mortality.days)
    draw_days = course.biomarkers.draw_days
    n_days = o.sofa.shape[1]
    meddra = demo_meddra()
    events: dict[int, list[Any]] = {}
    for event in course.adverse_events:
        events.setdefault(event.patient, []).append(event)
    counts = {
        "crf_days": 0,
        "doses_logged": 0,
        "draws": 0,
        "adverse_events": 0,
        "susars": 0,
        "crf_values_corrected": 0,
        "crf_values_left_missing": 0,
        "queries": 0,
        "entries_refused": 0,
    }
    columns = course.baseline.columns
    for k, r in enumerate(randomized):
        inv, pharm = staff.investigator[r.site], staff.pharmacist[r.site]
        death = o.death_day[k]
        last_day = o.withdrawal_day[k] if o.withdrawn[k] else np.inf  # withdrawal ends all follow-up
        # One transaction per patient: the days in the ICU, the later draws, AEs and the outcome.
        with session_scope(engine) as s:
            for day in range(1, max(draw_days[-1], n_days) + 1):
                if day > last_day:
                    break
                alive = bool(np.isnan(death) or day < death)
                start = first_dose[k] + timedelta(days=day - 1)
                # Day 1's CRF (always with the baseline creatinine) is entered before the first dose, so
                # the pharmacist's renal adjustment always has a clearance to start from.
                if day <= n_days and not np.isnan(o.sofa[k, day - 1]):
                    entry = _record_crf(s, inv, r.pseudonym, day, int(o.sofa[k, day - 1]), columns, k, chores)
                    counts["crf_days"] += 1
                    for fix in entry:
                        counts["crf_values_corrected" if fix.corrected else "crf_values_left_missing"] += 1
                        counts["queries"] += _query_and_close(s, staff, inv, r.pseudonym, day, fix)
                    if alive and day <= protocol.treatment.days:
                        logged, refused = _dose_day(s, pharm, r.pseudonym, day, start, chores)
                        counts["doses_logged"] += logged
                        counts["entries_refused"] += refused
                if day in draw_days[1:] and alive:
                    try:
                        counts["draws"] += _record_draw(
                            s,
                            staff.lab,
                            r.pseudonym,
                            course,
                            k,
                            draw_days.index(day),
                            start + timedelta(hours=6),
                        )
                    except ImmunoSepError:  # the lab leaves a refused draw out
                        counts["entries_refused"] += 1
            dies = bool(not o.withdrawn[k] and not np.isnan(death) and death <= last_follow_up)
            if not o.withdrawn[k]:
                discharge = o.discharge_day[k]
                outcomes.record_outcome(
                    s,
                    inv,
                    r.pseudonym,
                    death_day=int(death) if dies else None,
                    last_known_alive_day=(int(death) - 1 or None) if dies else last_follow_up,
                    icu_discharge_day=None if np.isnan(discharge) else int(discharge),
                    infection_day15=levels[int(course.infection_day15[k])],
                )
            mine = [e for e in events.get(k, []) if e.onset_day <= last_day]
            # the death is put down to the latest-onset event, when the patient had any
            fatal = max(range(len(mine)), key=lambda i: mine[i].onset_day) if dies and mine else -1
            for i, event in enumerate(mine):
                ae = adverse_events.record_adverse_event(
                    s,
                    inv,
                    r.pseudonym,
                    onset_day=event.onset_day,
                    term=event.preferred_term,
                    serious=True,
                    relatedness=event.relatedness,
                    expected=bool(chores.random() >= UNEXPECTED_AE_FRACTION),
                    meddra=meddra,
                    **_ae_course(
                        details,
                        event.onset_day,
                        event.relatedness,
                        death_day=int(death) if dies else None,
                        fatal=i == fatal,
                        last_day=int(min(last_day, last_follow_up)),
                        treatment_days=protocol.treatment.days,
                    ),
                )
                counts["adverse_events"] += 1
                counts["susars"] += int(ae.susar)
        if o.withdrawn[k]:
            withdrawal.withdraw_and_erase(engine, inv, r.pseudonym)
        tick("daily follow-up", k + 1, len(randomized))
    return counts


#: A survivor's serious AE: outcome weights (resolved, with sequelae, not resolved), and the criterion it
#: meets (prolonged hospitalization, life-threatening, other medically important): ICU patients, plausible.
AE_OUTCOME_WEIGHTS = (0.75, 0.10, 0.15)
AE_CRITERION_WEIGHTS = (0.5, 0.3, 0.2)
#: Longest course of a resolved AE, days.
AE_LONGEST_DAYS = 14


def _ae_course(
    rng: np.random.Generator,
    onset_day: int,
    relatedness: str,
    *,
    death_day: int | None,
    fatal: bool,
    last_day: int,
    treatment_days: int,
) -> dict[str, Any]:
    """Seriousness criteria, action taken, outcome and end day of a virtual serious AE, consistent with
    the patient's death (the fatal event ends on the day of death; the others end before it or go on)."""
    if onset_day > treatment_days:
        action = "NOT APPLICABLE"  # after the last study injection
    elif relatedness in adverse_events.RELATED:
        action = str(
            rng.choice(("DRUG WITHDRAWN", "DRUG INTERRUPTED", "DOSE NOT CHANGED"), p=(0.4, 0.2, 0.4))
        )
    else:
        action = "DOSE NOT CHANGED"
    if fatal:
        assert death_day is not None
        return {"criteria": ("death",), "action": action, "outcome": "FATAL", "end_day": death_day}
    criterion = str(
        rng.choice(("hospitalization", "life_threatening", "medically_important"), p=AE_CRITERION_WEIGHTS)
    )
    last = last_day if death_day is None else min(last_day, death_day - 1)
    outcome = str(
        rng.choice(
            ("RECOVERED/RESOLVED", "RECOVERED/RESOLVED WITH SEQUELAE", "NOT RECOVERED/NOT RESOLVED"),
            p=AE_OUTCOME_WEIGHTS,
        )
    )
    if outcome == "NOT RECOVERED/NOT RESOLVED" or last < onset_day:
        return {
            "criteria": (criterion,),
            "action": action,
            "outcome": "NOT RECOVERED/NOT RESOLVED",
            "end_day": None,
        }
    end = min(onset_day + int(rng.integers(0, AE_LONGEST_DAYS)), last)
    return {"criteria": (criterion,), "action": action, "outcome": outcome, "end_day": end}


@dataclass(frozen=True)
class _SiteFix:
    """A CRF value a service refused, and what the site entered instead (``None``: left missing)."""

    field: str
    refused: Any
    entered: Any
    message: str

    @property
    def corrected(self) -> bool:
        return self.entered is not None


def _source_value(field: str, value: Any, inputs: crf.DailyInputs) -> Any:
    """What the site finds in the source for a refused value: the nearest plausible value in the form's
    unit (the model's value, which only a bug can put outside), or ``None`` when there is none."""
    name = crf.CLINICAL_NAME.get(field, field)
    if name not in PLAUSIBLE or value is None or not np.isfinite(float(value)):
        return None
    unit = {"bilirubin": inputs.bilirubin_unit, "creatinine": inputs.creatinine_unit}.get(field)
    _, factor = unit_factor(name, unit)
    fixed = float(clip_plausible(name, float(value) / factor)) * factor
    if PLAUSIBLE[name].whole:
        return round(fixed)
    return None if fixed == float(value) else fixed


def _enter_crf(
    s: Any, inv: Actor, pseudonym: str, day: int, inputs: crf.DailyInputs
) -> tuple[Any, list[_SiteFix]]:
    """Enter the day's form as a site does: a refused value is corrected from the source and the form
    entered again, or the item is left missing; a refusal that names no CRF item is not the data's fault
    and stops the run (a bug, never silenced)."""
    fixes: list[_SiteFix] = []
    while True:
        try:
            return crf.record_day(s, inv, pseudonym, day, inputs), fixes
        except ImmunoSepError as exc:
            field = crf.item_of_error(exc.field)
            if field is None or any(f.field == field for f in fixes):
                raise
            refused = getattr(inputs, field)
            entered = _source_value(field, refused, inputs)
            fixes.append(_SiteFix(field, refused, entered, exc.message))
            inputs = replace(inputs, **{field: entered})


def _fill_form(weight_kg: float, values: dict[str, Any]) -> tuple[crf.DailyInputs, list[_SiteFix]]:
    """The day's form filled in. A value the form itself refuses (not a finite number, say) has nothing
    plausible in the source to correct it to: the site leaves the item missing, and a query follows as for
    a value the service refuses. A refusal that names no item of the form is a bug and is raised."""
    fixes: list[_SiteFix] = []
    values = dict(values)
    while True:
        try:
            return crf.DailyInputs(weight_kg=weight_kg, **values), fixes
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else ""
            if field not in values or any(f.field == field for f in fixes):
                raise
            fixes.append(_SiteFix(field, values[field], None, str(error["msg"])))
            values[field] = None


def _query_and_close(s: Any, staff: _Staff, inv: Actor, pseudonym: str, day: int, fix: _SiteFix) -> int:
    """The data manager's query on a refused value, the investigator's answer, the close: returns 1."""
    q = queries.raise_query(
        s,
        staff.data_manager,
        pseudonym,
        table_name="daily_crf",
        field=fix.field,
        text=f"day {day}: {fix.field} = {fix.refused} was refused at entry ({fix.message}); please check the source",
    )
    answer = (
        f"checked the source: {fix.field} = {fix.entered:g} entered"
        if fix.entered is not None
        else f"checked the source: no plausible {fix.field} for day {day}; left missing"
    )
    queries.answer_query(s, inv, q.id, answer)
    queries.close_query(s, staff.data_manager, q.id)
    return 1


def _record_crf(
    s: Any,
    inv: Actor,
    pseudonym: str,
    day: int,
    sofa_total: int,
    columns: dict[str, np.ndarray],
    k: int,
    chores: np.random.Generator,
) -> list[_SiteFix]:
    """The investigator's CRF of the day: baseline inputs on day 1, then inputs scoring to the model's SOFA.

    Returns the values the service refused and the site corrected or left missing (none, unless a
    virtual value fell outside ``clinical.units.PLAUSIBLE``).
    """
    if day == 1:
        values = baseline_inputs(columns, k)
    else:
        baseline = [int(columns[f"sofa_{organ}"][k]) for organ in ORGANS]
        values = inputs_for_scores(
            split_total(baseline, sofa_total, chores),
            chores,
            ventilated=bool(columns["ventilated"][k]),
            on_ckrt=bool(columns["cvvh"][k]),
        )
    inputs, refused_by_form = _fill_form(float(columns["weight_kg"][k]), values)
    record, fixes = _enter_crf(s, inv, pseudonym, day, inputs)
    fixes = refused_by_form + fixes
    if not fixes and record.sofa_total != sofa_total:
        raise ImmunoSepError(
            f"virtual patient {pseudonym} day {day}: the CRF inputs score {record.sofa_total}, the model drew "
            f"{sofa_total} (a bug in immunosep.simulate.daily_inputs)"
        )
    return fixes


def _record_draw(
    s: Any, lab: Actor, pseudonym: str, course: VirtualTrial, k: int, j: int, drawn_at: datetime
) -> int:
    """The central lab enters draw ``j`` of patient ``k`` when the model has one; returns 1 if entered."""
    ferritin = course.biomarkers.ferritin_ng_ml[k, j]
    hla_dr = course.biomarkers.hla_dr[k, j]
    if np.isnan(ferritin) and np.isnan(hla_dr):
        return 0
    biospecimens.record_draw(
        s,
        lab,
        pseudonym,
        course.biomarkers.draw_days[j],
        ferritin_ng_ml=None if np.isnan(ferritin) else float(ferritin),
        hla_dr_per_monocyte=None if np.isnan(hla_dr) else float(hla_dr),
        drawn_at=drawn_at,
    )
    return 1


def _dose_day(
    s: Any, pharm: Actor, pseudonym: str, day: int, start: datetime, chores: np.random.Generator
) -> tuple[int, int]:
    """The pharmacist prepares the day's regimen and logs every scheduled IV and SC injection.

    Returns (injections logged, entries the service refused and the pharmacist left out): a refused
    regimen leaves the day out, a refused injection that injection only.
    """
    try:
        doses = dosing.day_regimen(s, pharm, pseudonym, day).doses
    except ImmunoSepError:
        return 0, 1
    entries = []
    for dose in doses:
        for hour in range(0, 24):
            if ((day - 1) * 24 + hour) % dose.interval_hours:
                continue
            missed = chores.random() < MISSED_DOSE_FRACTION and not (day == 1 and hour == 0)
            reason = str(chores.choice(MISSED_DOSE_REASONS)) if missed else ""
            entries.append(
                dosing.DoseEntry(
                    dose.route,
                    hour,
                    given=not missed,
                    missed_reason=reason,
                    given_at=None if missed else start + timedelta(hours=hour),
                )
            )
    try:  # the day's sheet at once: each injection checked as record_dose checks it
        results = dosing.record_doses(s, pharm, pseudonym, day, entries)
    except ImmunoSepError:  # refused for the patient or the day: every injection left out
        return 0, len(entries)
    refused = sum(isinstance(r, ImmunoSepError) for r in results)
    return len(results) - refused, refused


def _answer_automatic_queries(engine: Engine, staff: _Staff, randomized: list[_Randomized]) -> int:
    """The queries the edit checks opened (an unusual value, say): the site confirms the value against
    the source and the data manager closes the query. Returns how many."""
    site_of = {r.pseudonym: r.site for r in randomized}
    n = 0
    with session_scope(engine) as s:
        for q in queries.list_queries(s, staff.data_manager, type="automatic"):
            if q.status == "closed":
                continue
            inv = staff.investigator[site_of[q.pseudonym]]
            queries.answer_query(s, inv, q.id, "checked the source: the value is as entered")
            queries.close_query(s, staff.data_manager, q.id, "value confirmed against the source")
            n += 1
    return n


def _lock(
    engine: Engine, staff: _Staff, randomized: list[_Randomized], withdrawn: np.ndarray, tick: Progress
) -> None:
    """The data manager locks every remaining randomized patient (not ``withdrawn``), then the trial."""
    remaining = [r for k, r in enumerate(randomized) if not withdrawn[k]]
    with session_scope(engine) as s:
        for n, r in enumerate(remaining, start=1):
            lock.lock_patient(s, staff.data_manager, r.pseudonym)
            tick("data lock", n, len(remaining))
    with session_scope(engine) as s:
        lock.lock_trial(s, staff.data_manager)
