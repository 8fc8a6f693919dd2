"""Investigator pages: dashboard, screening with live eligibility, the patient page (consent,
classification, randomization with confirmation), the daily CRF with live SOFA, adverse events, outcomes,
emergency unblinding, withdrawal of consent."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, get_patient, scope_site_ids
from immunosep.conduct.adverse_events import RELATEDNESS, adverse_events, record_adverse_event, susar_report
from immunosep.conduct.classification import classify_patient
from immunosep.conduct.crf import DailyInputs, daily_records, record_day
from immunosep.conduct.dosing import administrations
from immunosep.conduct.outcomes import OUTCOME_DAYS, get_outcome, record_outcome
from immunosep.conduct.permissions import require
from immunosep.conduct.randomization import allocate
from immunosep.conduct.screening import (
    CONSENT_GIVERS,
    SEXES,
    ScreeningInput,
    eligibility_reasons,
    record_consent,
    screen,
)
from immunosep.conduct.sites import list_sites
from immunosep.conduct.trial import protocol_of
from immunosep.conduct.unblinding import MIN_REASON_LENGTH, emergency_unblind
from immunosep.conduct.withdrawal import compact, withdraw
from immunosep.conduct.worklist import worklist
from immunosep.errors import ImmunoSepError
from immunosep.store.models import utcnow
from immunosep.web.deps import TransactionRoute, current_actor, get_db, inline
from immunosep.web.forms import FormErrors, checked, form_data, number, text
from immunosep.web.meddra_search import search_terms
from immunosep.web.pages._render import flash, render
from immunosep.web.sofa_form import score_form, sofa_inputs

router = APIRouter(route_class=TransactionRoute)


def _values(form: FormData) -> dict[str, Any]:
    """The form as a dict: a field sent more than once (and ``exclusions`` always) becomes a list."""
    values: dict[str, Any] = {}
    for key in form:
        items = form.getlist(key)
        values[key] = items if len(items) > 1 or key == "exclusions" else items[0]
    return values


# -- dashboard ------------------------------------------------------------------------------------------
@router.get("/dashboard")
@inline
def dashboard(
    request: Request,
    site: str | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> Response:
    """Patients in scope, today's tasks, overdue CRFs and draws (investigators, monitors, data managers);
    ``?site=S03`` narrows the list to one site for those who see several."""
    if scope_site_ids(actor) is None:
        sites = [info.code for info in list_sites(db, actor)]
    else:
        sites = list(actor.site_codes) if len(actor.site_codes) > 1 else []
    work = worklist(db, actor, site=site or None)
    return render(
        request, "dashboard.html", actor, db, title="Dashboard", work=work, sites=sites, site=site or ""
    )


# -- screening ------------------------------------------------------------------------------------------
def _screening_input(form: dict[str, Any], errors: FormErrors) -> ScreeningInput | None:
    age = number(form, "age_years", errors, required=True, integer=True)
    sofa_now = number(form, "sofa_now", errors, required=True, integer=True)
    neutrophils = number(form, "neutrophils_per_mm3", errors, required=True)
    sofa_baseline = number(form, "sofa_baseline", errors, integer=True)
    weight = number(form, "weight_kg", errors)
    height = number(form, "height_cm", errors)
    cci = number(form, "cci", errors, integer=True)
    apache2 = number(form, "apache2", errors, integer=True)
    sex = text(form, "sex")
    if sex not in SEXES:
        errors.add("sex", "choose male or female")
    infection = text(form, "infection_type")
    if not infection:
        errors.add("infection_type", "required")
    onset_raw = text(form, "sepsis_onset_at")
    onset = None
    if not onset_raw:
        errors.add("sepsis_onset_at", "required")
    else:
        try:
            onset = datetime.fromisoformat(onset_raw)
            onset = onset.replace(tzinfo=UTC) if onset.tzinfo is None else onset
        except ValueError:
            errors.add("sepsis_onset_at", "give date and time as YYYY-MM-DDTHH:MM (UTC)")
    exclusions = form.get("exclusions", [])
    if isinstance(exclusions, str):
        exclusions = [exclusions]
    if errors:
        return None
    assert age is not None and sofa_now is not None and neutrophils is not None and onset is not None
    return ScreeningInput(
        age_years=int(age),
        sex=sex,
        infection_type=infection,
        sepsis_onset_at=onset,
        sofa_now=int(sofa_now),
        neutrophils_per_mm3=neutrophils,
        suspected_infection=checked(form, "suspected_infection"),
        sofa_baseline=None if sofa_baseline is None else int(sofa_baseline),
        weight_kg=weight,
        height_cm=height,
        exclusions=tuple(exclusions),
        cci=None if cci is None else int(cci),
        apache2=None if apache2 is None else int(apache2),
    )


def _screening_page(
    request: Request,
    actor: Actor,
    db: Session,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    p = protocol_of(db)
    return render(
        request,
        "screening.html",
        actor,
        db,
        status_code=status_code,
        title="Screening",
        v=values,
        errors=errors,
        infection_types=[(t, p.eligibility.infection_label(t)) for t in p.eligibility.infection_types],
        exclusions=p.eligibility.exclusions,
        sexes=[("", "—"), *((s, s) for s in SEXES)],
        reasons=None,
    )


@router.get("/screening")
def screening_form(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "screen")
    now = utcnow().strftime("%Y-%m-%dT%H:%M")
    return _screening_page(
        request, actor, db, {"suspected_infection": "on", "sepsis_onset_at": now}, FormErrors()
    )


@router.get("/fragments/eligibility")
def eligibility_fragment(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Live eligibility while the screening form is filled in (nothing is stored)."""
    require(actor, "screen")
    values: dict[str, Any] = dict(request.query_params)
    values["exclusions"] = request.query_params.getlist("exclusions")
    errors = FormErrors()
    data = _screening_input(values, errors)
    reasons = eligibility_reasons(db, data, utcnow()) if data is not None else None
    return render(request, "_eligibility.html", actor, reasons=reasons, errors=errors)


@router.post("/screening")
def screening_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values = _values(form)
    errors = FormErrors()
    data = _screening_input(values, errors)
    if data is not None:
        try:
            result = screen(db, actor, data)
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            if result.eligible:
                flash(
                    request,
                    "ok",
                    f"{result.pseudonym} screened: eligible. Next: baseline draw to the central lab.",
                )
            else:
                flash(
                    request,
                    "warn",
                    f"{result.pseudonym} screened: not eligible ({'; '.join(result.reasons)}).",
                )
            return RedirectResponse(f"/patients/{result.pseudonym}", status_code=303)
    return _screening_page(request, actor, db, values, errors, status_code=422)


# -- patient page ---------------------------------------------------------------------------------------
@router.get("/patients/{pseudonym}")
def patient_page(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "open_patient_record")
    patient = get_patient(db, actor, pseudonym)
    randomized = patient.status == "randomized"
    p = protocol_of(db)
    return render(
        request,
        "patient.html",
        actor,
        db,
        title=pseudonym,
        patient=patient,
        stratum_label={s.code: s.label for s in p.strata}.get(patient.stratum or "", ""),
        days=daily_records(db, actor, pseudonym) if randomized else [],
        doses=administrations(db, actor, pseudonym) if randomized else [],
        aes=adverse_events(db, actor, pseudonym) if randomized else [],
        outcome=get_outcome(db, actor, pseudonym) if randomized else None,
        givers=CONSENT_GIVERS,
        treatment_days=p.treatment.days,
    )


@router.post("/patients/{pseudonym}/consent")
def consent_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    try:
        record_consent(db, actor, pseudonym, text(_values(form), "given_by"))
        flash(request, "ok", "Consent recorded.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
    return RedirectResponse(f"/patients/{pseudonym}", status_code=303)


@router.post("/patients/{pseudonym}/classify")
def classify_submit(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    try:
        r = classify_patient(db, actor, pseudonym)
        if r.enrolled:
            flash(request, "ok", f"Stratum: {r.stratum}. The patient can be randomized after consent.")
        else:
            flash(request, "warn", f"Stratum: {r.stratum}; not enrolled ({r.reason}).")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
    return RedirectResponse(f"/patients/{pseudonym}", status_code=303)


@router.get("/patients/{pseudonym}/randomize")
def randomize_confirm(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Ask for confirmation before the allocation, which cannot be undone."""
    require(actor, "randomize")
    patient = get_patient(db, actor, pseudonym)
    return render(request, "randomize.html", actor, db, title="Randomize", patient=patient, allocation=None)


@router.post("/patients/{pseudonym}/randomize")
def randomize_submit(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    try:
        allocation = allocate(db, actor, pseudonym)
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
        return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    patient = get_patient(db, actor, pseudonym)
    return render(
        request, "randomize.html", actor, db, title="Randomized", patient=patient, allocation=allocation
    )


# -- daily CRF ------------------------------------------------------------------------------------------
CRF_FLAGS = ("mechanical_ventilation", "vasopressors", "ckrt")


def _crf_page(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    study_day: int,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    existing: bool,
    status_code: int = 200,
) -> Response:
    score = score_form(values, FormErrors()) if values else None
    return render(
        request,
        "crf.html",
        actor,
        db,
        status_code=status_code,
        title=f"{pseudonym} day {study_day}",
        pseudonym=pseudonym,
        study_day=study_day,
        v=values,
        errors=errors,
        score=score,
        existing=existing,
        labels={},
    )


@router.get("/patients/{pseudonym}/crf/{study_day}")
def crf_form(
    pseudonym: str,
    study_day: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> Response:
    require(actor, "enter_crf")
    stored = next((r for r in daily_records(db, actor, pseudonym) if r.study_day == study_day), None)
    values: dict[str, Any] = {}
    if stored is not None:
        # As the form would send them (strings, "on" for ticked boxes), so the live score starts right.
        values = {
            k: "on" if v is True else str(v)
            for k, v in asdict(stored.inputs).items()
            if v is not None and v is not False
        }
    return _crf_page(
        request, actor, db, pseudonym, study_day, values, FormErrors(), existing=stored is not None
    )


@router.post("/patients/{pseudonym}/crf/{study_day}")
def crf_submit(
    pseudonym: str,
    study_day: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values = _values(form)
    errors = FormErrors()
    kwargs = sofa_inputs(values, errors)
    weight = number(values, "weight_kg", errors)
    existing = checked(values, "existing")
    if not errors:
        inputs = DailyInputs(
            weight_kg=weight,
            pao2_fio2_mmhg=kwargs["pao2_fio2_mmhg"],
            ventilated=kwargs["ventilated"],
            platelets_1e3_ul=kwargs["platelets_1e3_ul"],
            bilirubin=kwargs["bilirubin"],
            bilirubin_unit=kwargs["bilirubin_unit"],
            map_mmhg=kwargs["map_mmhg"],
            dopamine_ug_kg_min=kwargs["dopamine"],
            dobutamine_ug_kg_min=kwargs["dobutamine"],
            epinephrine_ug_kg_min=kwargs["epinephrine"],
            norepinephrine_ug_kg_min=kwargs["norepinephrine"],
            gcs=None if kwargs["gcs"] is None else int(kwargs["gcs"]),
            creatinine=kwargs["creatinine"],
            creatinine_unit=kwargs["creatinine_unit"],
            urine_ml_day=kwargs["urine_ml_day"],
            **{f: checked(values, f) for f in CRF_FLAGS},
        )
        try:
            record = record_day(db, actor, pseudonym, study_day, inputs, reason=text(values, "reason"))
        except ImmunoSepError as exc:
            db.rollback()
            from immunosep.web.sofa_form import ERROR_FIELDS

            errors.add_error(exc, ERROR_FIELDS)
        else:
            flash(request, "ok", f"Day {study_day} saved: SOFA {record.sofa_total}.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _crf_page(
        request, actor, db, pseudonym, study_day, values, errors, existing=existing, status_code=422
    )


def _form_page(
    request: Request,
    actor: Actor,
    db: Session,
    template: str,
    title: str,
    pseudonym: str,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A form about one patient: the values as typed and, after a refusal, a message next to each field."""
    return render(
        request,
        template,
        actor,
        db,
        status_code=status_code,
        title=title,
        pseudonym=pseudonym,
        v=values,
        errors=errors,
        **context,
    )


# -- adverse events -------------------------------------------------------------------------------------
@router.get("/ae")
def ae_overview(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """SUSARs in scope and the randomized patients to report an event for."""
    work = worklist(db, actor)
    return render(
        request,
        "ae_overview.html",
        actor,
        db,
        title="Adverse events",
        susars=susar_report(db, actor),
        patients=[line for line in work.patients if line.status == "randomized"],
    )


def _ae_page(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    return _form_page(
        request,
        actor,
        db,
        "ae.html",
        f"{pseudonym} adverse event",
        pseudonym,
        values,
        errors,
        status_code,
        relatedness=[("", "—"), *((r, r) for r in RELATEDNESS)],
        events=adverse_events(db, actor, pseudonym),
    )


@router.get("/patients/{pseudonym}/ae")
def ae_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "record_ae")
    get_patient(db, actor, pseudonym)
    return _ae_page(request, actor, db, pseudonym, {}, FormErrors())


@router.get("/fragments/meddra")
def meddra_fragment(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """Up to a dozen MedDRA terms containing the typed text, to pick from."""
    query = request.query_params.get("term", "")
    terms = search_terms(request.app.state.meddra, query)
    return render(request, "_meddra.html", actor, terms=terms, query=query)


@router.post("/patients/{pseudonym}/ae")
def ae_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values = _values(form)
    errors = FormErrors()
    onset = number(values, "onset_day", errors, required=True, integer=True)
    term = text(values, "term")
    if not term:
        errors.add("term", "required: search and pick a MedDRA term")
    relatedness = text(values, "relatedness")
    if relatedness not in RELATEDNESS:
        errors.add("relatedness", "choose one")
    if not errors:
        assert onset is not None
        try:
            ae = record_adverse_event(
                db,
                actor,
                pseudonym,
                onset_day=int(onset),
                term=term,
                serious=checked(values, "serious"),
                relatedness=relatedness,
                expected=checked(values, "expected"),
                verbatim=text(values, "verbatim"),
                meddra=request.app.state.meddra,
            )
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            if ae.susar:
                flash(request, "bad", f"SUSAR: {ae.pt_name} was flagged and reported at once.")
            else:
                flash(request, "ok", f"Adverse event {ae.pt_name} ({ae.soc_name}) recorded.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _ae_page(request, actor, db, pseudonym, values, errors, status_code=422)


# -- outcomes -------------------------------------------------------------------------------------------
def _outcome_page(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    stored: bool,
    status_code: int = 200,
) -> Response:
    p = protocol_of(db)
    return _form_page(
        request,
        actor,
        db,
        "outcome.html",
        f"{pseudonym} outcome",
        pseudonym,
        values,
        errors,
        status_code,
        stored=stored,
        last_day=max(p.endpoints.mortality.days),
        infection_day=p.endpoints.infection_day15.day,
        levels=[("", "not assessed yet"), *((lv, lv) for lv in p.endpoints.infection_day15.levels)],
    )


@router.get("/patients/{pseudonym}/outcome")
def outcome_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Vital status, ICU discharge and the infection state on day 15, prefilled with what is stored."""
    require(actor, "record_outcome")
    current = asdict(get_outcome(db, actor, pseudonym))
    shown = {k: current[k] for k in (*OUTCOME_DAYS, "infection_day15")}
    values = {k: "" if v is None else str(v) for k, v in shown.items()}
    stored = any(v is not None for v in shown.values())
    return _outcome_page(request, actor, db, pseudonym, values, FormErrors(), stored=stored)


@router.post("/patients/{pseudonym}/outcome")
def outcome_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Set the outcome as the form shows it: a blank field is not known (yet); changing a stored value,
    or blanking it, needs a reason (the service refuses otherwise and nothing is stored)."""
    values = _values(form)
    errors = FormErrors()
    days = {k: number(values, k, errors, integer=True) for k in OUTCOME_DAYS}
    infection = text(values, "infection_day15") or None
    if not errors:
        try:
            record_outcome(
                db,
                actor,
                pseudonym,
                **{k: None if v is None else int(v) for k, v in days.items()},
                infection_day15=infection,
                reason=text(values, "reason"),
            )
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            flash(request, "ok", f"Outcome of {pseudonym} saved.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _outcome_page(
        request, actor, db, pseudonym, values, errors, stored=checked(values, "stored"), status_code=422
    )


# -- emergency unblinding -------------------------------------------------------------------------------
@router.get("/patients/{pseudonym}/unblind")
def unblind_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Ask for the reason and a confirmation before the one disclosure of an arm to the ward."""
    require(actor, "unblind_emergency")
    get_patient(db, actor, pseudonym)
    return _form_page(
        request,
        actor,
        db,
        "unblind.html",
        f"{pseudonym} emergency unblinding",
        pseudonym,
        {},
        FormErrors(),
        min_reason=MIN_REASON_LENGTH,
    )


@router.post("/patients/{pseudonym}/unblind")
def unblind_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Unblind and show the arm on this response only: no redirect, so the arm never rides in a flash
    message in the session cookie."""
    values = _values(form)
    errors = FormErrors()
    if not checked(values, "confirm"):
        errors.add("confirm", "tick to confirm that the patient's care depends on knowing the treatment")
    reason = text(values, "reason")
    if len(reason) < MIN_REASON_LENGTH:
        errors.add("reason", f"give the clinical reason, at least {MIN_REASON_LENGTH} characters")
    if not errors:
        try:
            disclosure = emergency_unblind(db, actor, pseudonym, reason)
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            return _form_page(
                request,
                actor,
                db,
                "unblind.html",
                f"{pseudonym} unblinded",
                pseudonym,
                values,
                errors,
                disclosure=disclosure,
            )
    return _form_page(
        request,
        actor,
        db,
        "unblind.html",
        f"{pseudonym} emergency unblinding",
        pseudonym,
        values,
        errors,
        422,
        min_reason=MIN_REASON_LENGTH,
    )


# -- withdrawal of consent ------------------------------------------------------------------------------
WITHDRAWAL_CHOICES = {
    "keep": "stop the study treatment and follow-up; keep the data collected so far",
    "erase": "remove all the patient's data from the trial (nothing can be recovered)",
}


@router.get("/patients/{pseudonym}/withdraw")
def withdraw_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Ask what the patient (or relative) withdrew and for a confirmation: neither can be undone."""
    require(actor, "record_withdrawal")
    get_patient(db, actor, pseudonym)
    return _form_page(
        request,
        actor,
        db,
        "withdraw.html",
        f"{pseudonym} withdrawal",
        pseudonym,
        {},
        FormErrors(),
        choices=list(WITHDRAWAL_CHOICES.items()),
    )


@router.post("/patients/{pseudonym}/withdraw")
def withdraw_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Record the withdrawal; with removal of data, commit the erasure and compact the database (as the
    API does), so the values leave the database files too."""
    values = _values(form)
    errors = FormErrors()
    choice = text(values, "choice")
    if choice not in WITHDRAWAL_CHOICES:
        errors.add("choice", "choose whether the data collected so far are kept or removed")
    if not checked(values, "confirm"):
        errors.add("confirm", "tick to confirm that consent was withdrawn")
    if choice == "erase" and text(values, "typed").upper() != pseudonym.upper():
        errors.add("typed", f"type {pseudonym} to confirm the removal of all its data")
    if not errors:
        try:
            result = withdraw(db, actor, pseudonym, erase_data=choice == "erase")
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            if result.data_erased:
                db.commit()
                compact(request.app.state.engine)
                rows = sum(result.rows_erased.values())
                flash(request, "ok", f"{pseudonym} withdrew consent; its data were removed ({rows} records).")
                return RedirectResponse("/dashboard", status_code=303)
            flash(request, "ok", f"{pseudonym} withdrew consent; the data collected so far are kept.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _form_page(
        request,
        actor,
        db,
        "withdraw.html",
        f"{pseudonym} withdrawal",
        pseudonym,
        values,
        errors,
        422,
        choices=list(WITHDRAWAL_CHOICES.items()),
    )
